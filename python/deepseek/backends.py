"""``deepseek.backends``: what PyTorch scripts commonly query or set. There is no cuDNN or
MPS backend: ``cudnn.is_available()`` and ``mps.is_available()`` are False, and the cuDNN
flags (``benchmark``, ``deterministic``, ``enabled``) are plain attributes with no effect
(the CPU kernels are deterministic). ``cuda.matmul.allow_tf32``,
``cuda.matmul.allow_fp16_reduced_precision_reduction`` and ``cuda.matmul.
allow_bf16_reduced_precision_reduction`` are settable flags (PyTorch's defaults) that the
CPU matmul does not read: it always computes in the tensors' own precision. They become
real switches with a CUDA backend."""


class _Cudnn:
    def __init__(self):
        self.benchmark = False
        self.deterministic = False
        self.enabled = False
        self.allow_tf32 = False

    @staticmethod
    def is_available():
        return False


class _Mps:
    @staticmethod
    def is_available():
        return False

    @staticmethod
    def is_built():
        return False


cudnn = _Cudnn()
mps = _Mps()


class _CudaMatmul:
    """``torch.backends.cuda.matmul``: reduced-precision switches for CUDA matmuls. Only
    the known flags can be set (a misspelt one raises, as in PyTorch)."""

    _FLAGS = ("allow_tf32", "allow_fp16_reduced_precision_reduction",
              "allow_bf16_reduced_precision_reduction", "allow_fp16_accumulation")

    def __init__(self):
        object.__setattr__(self, "allow_tf32", False)
        object.__setattr__(self, "allow_fp16_reduced_precision_reduction", True)
        object.__setattr__(self, "allow_bf16_reduced_precision_reduction", True)
        object.__setattr__(self, "allow_fp16_accumulation", False)

    def __setattr__(self, name, value):
        if name not in self._FLAGS:
            raise AttributeError(f"Unknown attribute {name}")
        object.__setattr__(self, name, bool(value))


class _Cuda:
    """``torch.backends.cuda``: deepseek has no CUDA backend (``is_built()`` is False)."""

    def __init__(self):
        self.matmul = _CudaMatmul()

    @staticmethod
    def is_built():
        return False

    @staticmethod
    def preferred_linalg_library(backend=None):
        return "default"

    @staticmethod
    def flash_sdp_enabled():
        return False

    @staticmethod
    def mem_efficient_sdp_enabled():
        return False

    @staticmethod
    def math_sdp_enabled():
        return True

    @staticmethod
    def enable_flash_sdp(enabled):
        pass

    @staticmethod
    def enable_mem_efficient_sdp(enabled):
        pass

    @staticmethod
    def enable_math_sdp(enabled):
        if not enabled:
            raise RuntimeError("enable_math_sdp(False): deepseek's attention runs on the CPU "
                               "with the math kernel only")


cuda = _Cuda()

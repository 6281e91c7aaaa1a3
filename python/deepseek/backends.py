"""``deepseek.backends``: what PyTorch scripts commonly query or set. There is no cuDNN or
MPS backend: ``cudnn.is_available()`` and ``mps.is_available()`` are False, and the cuDNN
flags (``benchmark``, ``deterministic``, ``enabled``) are plain attributes with no effect
(the CPU kernels are deterministic)."""


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

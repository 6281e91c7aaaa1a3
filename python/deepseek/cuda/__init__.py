"""``deepseek.cuda``: deepseek has no CUDA backend yet, so ``is_available()`` is False and
moving anything to a CUDA device raises RuntimeError. ``deepseek.cuda.amp`` holds
``GradScaler`` and ``autocast``, which work on the CPU (see ``deepseek.amp``)."""

from . import amp  # noqa: F401


def is_available():
    return False


def device_count():
    return 0


def _no_cuda(what):
    raise RuntimeError(f"{what}: CUDA is not available (this build of deepseek has only the CPU "
                       "backend; deepseek.cuda.is_available() is False)")


def current_device():
    _no_cuda("cuda.current_device")


def set_device(device):
    _no_cuda("cuda.set_device")


def synchronize(device=None):
    """Nothing to wait for without a GPU (kept so timing code runs unchanged)."""
    return None


def manual_seed(seed):
    """Accepted for compatibility; there is no CUDA generator to seed."""
    return None


def manual_seed_all(seed):
    return None


def empty_cache():
    return None

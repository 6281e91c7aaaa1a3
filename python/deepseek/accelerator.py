"""``deepseek.accelerator`` (PyTorch's device-agnostic accelerator queries): deepseek has
only the CPU backend, so no accelerator is available."""


def is_available():
    return False


def current_accelerator(check_available=False):
    return None


def device_count():
    return 0

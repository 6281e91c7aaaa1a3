"""Grad-mode switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (each a context
manager and a decorator, like PyTorch's)."""

import functools

from . import _C


class _GradMode:
    _mode = None

    def __init__(self):
        self._prev = []

    def __enter__(self):
        self._prev.append(_C.set_grad_enabled(self._mode))
        return None

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper

    def clone(self):
        return self.__class__()


class no_grad(_GradMode):
    """Disables gradient recording inside the block (or the decorated function)."""

    _mode = False


class enable_grad(_GradMode):
    """Enables gradient recording inside the block (e.g. within ``no_grad``)."""

    _mode = True


class inference_mode(_GradMode):
    """Like ``no_grad`` (deepseek has no separate inference mode)."""

    _mode = False

    def __init__(self, mode=True):
        super().__init__()
        self._mode = not mode


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)``: sets grad mode now; as a context manager it restores the
    previous mode on exit."""

    def __init__(self, mode):
        super().__init__()
        self._mode = mode
        self._prev.append(_C.set_grad_enabled(mode))

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev.pop())
        return False

    def __call__(self, fn):
        _C.set_grad_enabled(self._prev.pop())
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper

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

    def __new__(cls, *args, **kwargs):
        # `@no_grad` / `@enable_grad` without parentheses, as PyTorch allows.
        if cls in (no_grad, enable_grad) and len(args) == 1 and callable(args[0]) \
                and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _C.set_grad_enabled(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _C.set_grad_enabled(prev)

        return wrapper

    def clone(self):
        c = object.__new__(self.__class__)
        _GradMode.__init__(c)
        c._mode = self._mode
        return c


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

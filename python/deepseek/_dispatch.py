"""A small override hook for deepseek's module-level functions, in the spirit of PyTorch's
``__torch_function__``: while some transform holds wrapper objects alive (``deepseek.vmap``'s
batched tensors), a function wrapped by ``overridable`` looks for an argument whose type
defines ``__deepseek_function__(func, args, kwargs)`` and hands the call to it.

Outside such transforms the wrapper costs one list lookup and one extra call frame.
``func`` given to the handler is the original (unwrapped) function, so a handler can
call it with plain tensors or key its rules on it."""

import functools

# How many transforms currently may pass override-capable objects (see ``activate``).
_ACTIVE = [0]


class activate:
    """Context manager: turns the argument scan of ``overridable`` functions on."""

    def __enter__(self):
        _ACTIVE[0] += 1
        return self

    def __exit__(self, *exc):
        _ACTIVE[0] -= 1
        return False


def _handler(args, kwargs):
    for a in args:
        h = getattr(type(a), "__deepseek_function__", None)
        if h is not None:
            return h
        if type(a) in (list, tuple):
            for b in a:
                h = getattr(type(b), "__deepseek_function__", None)
                if h is not None:
                    return h
    for a in kwargs.values():
        h = getattr(type(a), "__deepseek_function__", None)
        if h is not None:
            return h
    return None


def overridable(fn, module=None, name=None):
    """Wraps ``fn`` so that calls with an override-capable argument go to its handler."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _ACTIVE[0]:
            h = _handler(args, kwargs)
            if h is not None:
                return h(fn, args, kwargs)
        return fn(*args, **kwargs)

    wrapper.__wrapped__ = fn
    wrapper._deepseek_overridable = True
    if module is not None:
        wrapper.__module__ = module
    if name is not None:
        wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


def wrap_namespace(ns, names, module):
    """Replaces each function ``ns[name]`` by its ``overridable`` wrapper (once); returns
    ``{id(original): wrapper}``."""
    done = {}
    for n in names:
        f = ns.get(n)
        if f is None or isinstance(f, type) or not callable(f):
            continue
        if getattr(f, "_deepseek_overridable", False):
            continue
        ns[n] = done[id(f)] = overridable(f, module, n)
    return done

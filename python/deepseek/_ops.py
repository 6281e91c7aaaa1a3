"""Module-level functions (``deepseek.exp(x)``, ``deepseek.sum(x, dim=1)``, ...) that call
the Tensor methods of the same name."""

from . import _C

_METHODS = [
    "neg", "negative", "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt", "rsqrt",
    "abs", "sign", "floor", "ceil", "round", "relu", "sigmoid", "tanh", "sin", "cos",
    "reciprocal", "square", "erf", "clamp", "clip", "pow", "add", "sub", "mul", "div",
    "true_divide", "floor_divide", "remainder", "maximum", "minimum", "eq", "ne", "lt", "le",
    "gt", "ge", "equal", "allclose", "logical_and", "logical_or", "logical_xor", "logical_not",
    "matmul", "mm", "bmm", "dot", "sum", "mean", "prod", "amax", "amin", "max", "min",
    "argmax", "argmin", "logsumexp", "var", "std", "norm", "cumsum", "all", "any",
    "count_nonzero", "softmax", "log_softmax", "reshape", "permute", "transpose", "swapaxes",
    "t", "unsqueeze", "squeeze", "flatten", "unflatten", "narrow", "select", "chunk", "split",
    "unbind", "flip", "tril", "triu", "gather", "index_select", "take_along_dim",
    "masked_fill", "scatter_add", "index_add", "clone", "detach", "sort", "argsort", "topk",
    "multinomial",
]

# Every attribute-less unary primitive declared in the core is a method and a function.
_METHODS += [m for m in _C._unary_methods() if m not in _METHODS]

__all__ = list(_METHODS) + ["subtract", "multiply", "divide", "absolute", "isnan", "isinf",
                            "isfinite", "nan_to_num"]


def _make(name):
    def f(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)

    f.__name__ = name
    f.__qualname__ = name
    f.__doc__ = f"``deepseek.{name}(input, ...)`` is ``input.{name}(...)``."
    return f


for _n in _METHODS:
    globals()[_n] = _make(_n)

subtract = globals()["sub"]
multiply = globals()["mul"]
divide = globals()["div"]
absolute = globals()["abs"]


def isnan(x):
    """``isnan(input)``: elementwise test for NaN, bool result."""
    return x != x


def isinf(x):
    """``isinf(input)``: elementwise test for +/-inf, bool result."""
    return x.abs() == float("inf")


def isfinite(x):
    """``isfinite(input)``: elementwise test for finite values, bool result."""
    return (x == x).logical_and(x.abs() != float("inf"))


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """Replaces NaN / +inf / -inf by finite values (float32 limits by default)."""
    big = 3.4028234663852886e38
    y = x.masked_fill(isnan(x), nan)
    y = y.masked_fill(y == float("inf"), big if posinf is None else posinf)
    return y.masked_fill(y == float("-inf"), -big if neginf is None else neginf)


del _n

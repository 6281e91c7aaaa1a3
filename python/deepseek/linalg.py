"""``deepseek.linalg``: vector norms."""

from ._C import functional as _F


def vector_norm(x, ord=2, dim=None, keepdim=False, dtype=None):
    """``torch.linalg.vector_norm``: any p > 0, inf, -inf or 0."""
    return _F.vector_norm(x, float(ord), dim, keepdim, dtype)


def norm(x, ord=None, dim=None, keepdim=False, dtype=None):
    """Vector 2-norm (``ord`` other than None/2/'fro' on matrices is not supported)."""
    if ord in (None, "fro", 2):
        return _F.vector_norm(x, 2.0, dim, keepdim, dtype)
    if isinstance(ord, str):
        raise NotImplementedError(f"linalg.norm: ord={ord!r} is not supported")
    return _F.vector_norm(x, float(ord), dim, keepdim, dtype)

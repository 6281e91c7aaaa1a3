"""``deepseek.linalg``: vector norms, and the dense factorizations composed in
``deepseek._linalg_ops`` (``det``, ``slogdet``, ``inv``, ``solve``, ``cholesky``,
``matrix_exp``, ``matrix_power``, ``qr``)."""

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


def _ops():
    from . import _linalg_ops, _shape_ops

    return _linalg_ops, _shape_ops


def det(A):
    """Determinant (``torch.linalg.det``)."""
    return _ops()[0].det(A)


def slogdet(A):
    """``(sign, logabsdet)`` (``torch.linalg.slogdet``)."""
    return _ops()[0].slogdet(A)


def inv(A):
    """Inverse (``torch.linalg.inv``)."""
    return _ops()[0].inverse(A)


def solve(A, B, *, left=True):
    """Solution of ``A X = B`` (``torch.linalg.solve``)."""
    return _ops()[0].solve(A, B, left=left)


def cholesky(A, *, upper=False):
    """Cholesky factor (``torch.linalg.cholesky``)."""
    return _ops()[0].cholesky(A, upper)


def matrix_exp(A):
    """Matrix exponential (``torch.linalg.matrix_exp``)."""
    return _ops()[0].matrix_exp(A)


def matrix_power(A, n):
    """``A`` to the integer power ``n`` >= 0 (``torch.linalg.matrix_power``)."""
    return _ops()[1].matrix_power(A, n)


def qr(A, mode="reduced"):
    """``(Q, R)`` (``torch.linalg.qr``; ``mode`` reduced, complete or r)."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr received unrecognized mode '{mode}' but expected one of "
                         f"'reduced' (default), 'r', or 'complete'")
    import collections

    q, r = _ops()[0].qr(A, some=mode != "complete")
    res = collections.namedtuple("qr", ["Q", "R"])
    return res(A.new_zeros((0,)), r) if mode == "r" else res(q, r)

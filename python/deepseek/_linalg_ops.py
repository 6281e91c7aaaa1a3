"""Dense linear algebra composed from the core's ops, one elimination step per column (so
n Python steps for an n x n matrix, each a few batched tensor ops; autograd differentiates
the compositions): LU with partial pivoting (LAPACK's pivot choice and 1-based pivot
format) giving ``det``/``slogdet``/``logdet``/``inverse``/``lu``/``lu_solve``,
Cholesky (``cholesky``/``cholesky_solve``/``cholesky_inverse``), ``triangular_solve``
and ``matrix_exp`` (scaling and squaring of a degree-18 Taylor series). Pivots are chosen
from the values (numpy), like the row orders of ``sort``."""

import math

import numpy as np

from . import _C
from ._math_ops import _op

_where = _C.where


def _square(a, who):
    if a.dim() < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{who}: A must be batches of square matrices, but they are "
                         f"{a.shape[-2] if a.dim() > 1 else '?'} by "
                         f"{a.shape[-1] if a.dim() else '?'} matrices")
    if not a.is_floating_point():
        raise TypeError(f"{who}: Expected a floating point tensor as input. Got {a.dtype}")


def _batched(a):
    n = a.shape[-1]
    lead = list(a.shape[:-2])
    return a.reshape(-1, a.shape[-2], n), lead


def _eye_like(b, n, m, dtype):
    return _C.eye(n, m, dtype=dtype).unsqueeze(0).expand(b, n, m) * 1


def _swap_rows(x, perm):
    """Rows of each batch matrix reordered by ``perm`` [B, n] (numpy)."""
    idx = _C.tensor(perm.astype(np.int64)).unsqueeze(-1).expand(*x.shape)
    return x.gather(1, idx)


def _lu(a):
    """Packed LU of [B, n, n] with partial pivoting: ``(lu, pivots [B, n] 1-based, perm
    [B, n], swaps [B])``; ``perm`` maps rows of U's system to rows of ``a``."""
    b, n, _ = a.shape
    x = a
    pivots = np.zeros((b, n), dtype=np.int64)
    perm = np.tile(np.arange(n), (b, 1))
    swaps = np.zeros(b, dtype=np.int64)
    rows = _C.arange(n).reshape(1, n)
    for k in range(n):
        col = np.abs(x.detach().numpy()[:, k:, k])
        p = col.argmax(1) + k
        pivots[:, k] = p + 1
        step = np.tile(np.arange(n), (b, 1))
        for i in range(b):
            if p[i] != k:
                step[i, [k, p[i]]] = step[i, [p[i], k]]
                perm[i, [k, p[i]]] = perm[i, [p[i], k]]
                swaps[i] += 1
        if (step != np.arange(n)).any():
            x = _swap_rows(x, step)
        pv = x.narrow(1, k, 1).narrow(2, k, 1)  # [B, 1, 1]
        colk = x.narrow(2, k, 1)  # [B, n, 1]
        below = (rows > k).reshape(1, n, 1)
        safe = _where(pv == 0, _C.ones_like(pv), pv)
        f = _where(below, colk / safe, _C.zeros_like(colk))
        rowk = x.narrow(1, k, 1)  # [B, 1, n]
        right = (rows > k).reshape(1, 1, n)
        upd = x - f * _where(right, rowk, _C.zeros_like(rowk))
        # keep the multipliers in column k below the diagonal (packed L)
        is_col = (rows == k).reshape(1, 1, n)
        x = _where(below.logical_and(is_col), f.expand(*x.shape), upd)
    return x, pivots, perm, swaps


def _diag(x):
    n = x.shape[-1]
    flat = x.reshape(*x.shape[:-2], n * n)
    return flat.index_select(flat.dim() - 1, _C.tensor(np.arange(n) * (n + 1)))


@_op("det")
def det(A):
    """Determinant of square matrices (LU with partial pivoting)."""
    _square(A, "linalg.det")
    a, lead = _batched(A)
    if a.shape[-1] == 0:
        return _C.ones(*lead, dtype=A.dtype)
    lu, _, _, swaps = _lu(a)
    sign = _C.tensor(np.where(swaps % 2, -1.0, 1.0)).to(A.dtype)
    return (_diag(lu).prod(-1) * sign).reshape(*lead)


@_op("slogdet")
def slogdet(A):
    """``(sign, log|det|)`` of square matrices."""
    import collections

    _square(A, "linalg.slogdet")
    a, lead = _batched(A)
    lu, _, _, swaps = _lu(a)
    d = _diag(lu)
    sign = _C.tensor(np.where(swaps % 2, -1.0, 1.0)).to(A.dtype) * d.sign().prod(-1)
    logabs = d.abs().log().sum(-1)
    res = collections.namedtuple("slogdet", ["sign", "logabsdet"])
    return res(sign.reshape(*lead), logabs.reshape(*lead))


@_op("logdet")
def logdet(A):
    """``log(det(A))``: NaN for a negative determinant, -inf for a singular matrix."""
    s, la = slogdet(A)
    return _where(s < 0, _C.full_like(la, math.nan), _where(s == 0, _C.full_like(la, -math.inf),
                                                            la))


def _tri_solve(t, b, lower, unit=False):
    """Solves ``t x = b`` for triangular [B, n, n] ``t`` and [B, n, k] ``b``, one row of
    ``x`` per step."""
    n = t.shape[-1]
    xs = [None] * n
    order = range(n) if lower else range(n - 1, -1, -1)
    for i in order:
        acc = b.narrow(1, i, 1)
        for j in (range(i) if lower else range(i + 1, n)):
            acc = acc - t.narrow(1, i, 1).narrow(2, j, 1) * xs[j]
        xs[i] = acc if unit else acc / t.narrow(1, i, 1).narrow(2, i, 1)
    return _C.cat(xs, 1)


def _lu_solve_b(lu, perm, b):
    bp = _swap_rows(b, perm) if b.shape[1] else b
    y = _tri_solve(lu, bp, lower=True, unit=True)
    return _tri_solve(lu, y, lower=False)


@_op("inverse")
def inverse(A):
    """Inverse of square matrices (LU, then two triangular solves against the identity);
    singular matrices raise."""
    _square(A, "linalg.inv")
    a, lead = _batched(A)
    n = a.shape[-1]
    lu, _, perm, _ = _lu(a)
    if (np.abs(_diag(lu).detach().numpy()) == 0).any():
        raise RuntimeError("linalg.inv: The diagonal element of the U factor is zero, the "
                           "inversion could not be completed because the input matrix is "
                           "singular.")
    x = _lu_solve_b(lu, perm, _eye_like(a.shape[0], n, n, A.dtype))
    return x.reshape(*lead, n, n)


@_op("lu", method=False)
def lu(A, pivot=True, get_infos=False):
    """Packed LU factorisation with partial pivoting: ``(LU, pivots)`` (int32, 1-based,
    LAPACK's format), plus ``infos`` with ``get_infos``."""
    if not pivot:
        raise NotImplementedError("lu: pivot=False is not supported on the CPU (as in "
                                  "PyTorch)")
    if A.dim() < 2:
        raise ValueError("lu: expected a tensor with 2 or more dimensions")
    _square(A, "lu")
    a, lead = _batched(A)
    packed, piv, _, _ = _lu(a)
    n = a.shape[-1]
    out = (packed.reshape(*lead, n, n), _C.tensor(piv.astype(np.int32)).reshape(*lead, n))
    if get_infos:
        info = (np.abs(_diag(packed).detach().numpy()) == 0)
        first = np.where(info.any(1), info.argmax(1) + 1, 0).astype(np.int32)
        out += (_C.tensor(first).reshape(*lead),)
    return out


def _lu_method(self, pivot=True, get_infos=False):
    """``lu(pivot=True, get_infos=False)``: the packed LU factorisation and pivots
    (``deepseek.linalg.lu_factor``).
    """
    return lu(self, pivot, get_infos)


def _perm_from_pivots(piv):
    b, n = piv.shape
    perm = np.tile(np.arange(n), (b, 1))
    for i in range(b):
        for k in range(n):
            p = piv[i, k] - 1
            perm[i, [k, p]] = perm[i, [p, k]]
    return perm


@_op("lu_unpack", method=False)
def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    """``(P, L, U)`` from a packed LU with ``A = P L U``."""
    import collections

    n = LU_data.shape[-1]
    a, lead = _batched(LU_data)
    piv = LU_pivots.detach().numpy().reshape(-1, n).astype(np.int64)
    eye = _C.eye(n, dtype=LU_data.dtype)
    L = a.tril(-1) + eye
    U = a.triu()
    perm = _perm_from_pivots(piv)
    P = np.zeros((a.shape[0], n, n))
    for i in range(a.shape[0]):
        P[i, perm[i], np.arange(n)] = 1.0
    res = collections.namedtuple("lu_unpack", ["P", "L", "U"])
    return res(_C.tensor(P).to(LU_data.dtype).reshape(*lead, n, n),
               L.reshape(*lead, n, n), U.reshape(*lead, n, n))


@_op("lu_solve")
def lu_solve(b, LU_data, LU_pivots):
    """Solves ``A x = b`` from ``lu(A)``'s packed factors."""
    n = LU_data.shape[-1]
    a, lead = _batched(LU_data)
    bb = b.reshape(-1, b.shape[-2], b.shape[-1])
    perm = _perm_from_pivots(LU_pivots.detach().numpy().reshape(-1, n).astype(np.int64))
    return _lu_solve_b(a, perm, bb).reshape(*b.shape)


def _cholesky_lower(a, who):
    b, n, _ = a.shape
    rows = _C.arange(n).reshape(1, n)
    L = _C.zeros(b, n, n, dtype=a.dtype)
    for j in range(n):
        lj = L.narrow(1, j, 1)  # [B, 1, n]
        v = a.narrow(2, j, 1) - L.matmul(lj.transpose(1, 2))  # [B, n, 1]
        d2 = v.narrow(1, j, 1)
        if (d2.detach().numpy() <= 0).any() or np.isnan(d2.detach().numpy()).any():
            raise RuntimeError(f"{who}: The factorization could not be completed because the "
                               f"input is not positive-definite (the leading minor of order "
                               f"{j + 1} is not positive-definite).")
        d = d2.sqrt()
        col = _where((rows > j).reshape(1, n, 1), v / d,
                     _where((rows == j).reshape(1, n, 1), d.expand(b, n, 1),
                            _C.zeros_like(v)))
        onehot = (rows == j).to(a.dtype).reshape(1, 1, n)
        L = L + col * onehot
    return L


def cholesky(A, upper=False):
    """Cholesky factor of symmetric positive-definite matrices: lower ``L`` with ``A = L
    L^T`` (``upper=True``: ``U = L^T``); ``deepseek.linalg.cholesky`` (PyTorch removed
    ``torch.cholesky``)."""
    _square(A, "linalg.cholesky")
    a, lead = _batched(A)
    # Values from the lower triangle (as LAPACK); the gradient symmetrised, as PyTorch's.
    sym = (a + a.transpose(1, 2)) / 2
    low = a.tril() + a.tril(-1).transpose(1, 2)
    a = sym + (low - sym).detach()
    L = _cholesky_lower(a, "linalg.cholesky")
    n = A.shape[-1]
    out = L.transpose(1, 2) if upper else L
    return out.reshape(*lead, n, n)


def solve(A, B, *, left=True):
    """Solves ``A X = B`` (``X A = B`` with ``left=False``) for square ``A`` by LU with
    partial pivoting; ``B`` may be a vector."""
    _square(A, "linalg.solve")
    if not left:
        return solve(A.transpose(-2, -1), B.transpose(-2, -1)).transpose(-2, -1)
    vec = B.dim() == 1 or (B.dim() == A.dim() - 1 and
                           tuple(B.shape) == tuple(A.shape[:-1]))
    b = B.unsqueeze(-1) if vec else B
    n = A.shape[-1]
    shape = list(np.broadcast_shapes(tuple(A.shape[:-2]), tuple(b.shape[:-2])))
    a3 = A.expand(*shape, n, n).reshape(-1, n, n)
    b3 = b.expand(*shape, n, b.shape[-1]).reshape(-1, n, b.shape[-1])
    lu_, _, perm, _ = _lu(a3)
    if (np.abs(_diag(lu_).detach().numpy()) == 0).any():
        raise RuntimeError("linalg.solve: The solver failed because the input matrix is "
                           "singular.")
    x = _lu_solve_b(lu_, perm, b3).reshape(*shape, n, b.shape[-1])
    return x.squeeze(-1) if vec else x


def _from_factor(L, upper):
    """``A = L L^T`` (``U^T U``) with values from the factor's triangle and gradients
    through the whole factor, as PyTorch's formulas give them."""
    tri = L.triu() if upper else L.tril()
    f = L + (tri - L).detach()
    ft = f.transpose(-2, -1)
    return ft.matmul(f) if upper else f.matmul(ft)


@_op("cholesky_solve")
def cholesky_solve(B, L, upper=False):
    """Solves ``A X = B`` given the Cholesky factor ``L`` of ``A`` (``U`` with
    ``upper``)."""
    return solve(_from_factor(L, upper), B)


@_op("cholesky_inverse")
def cholesky_inverse(L, upper=False):
    """Inverse of ``A`` from its Cholesky factor."""
    return inverse(_from_factor(L, upper))


@_op("triangular_solve")
def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):
    """Solves ``A x = b`` (``A^T x = b`` with ``transpose``) for triangular ``A``:
    ``(solution, A)``."""
    import collections

    n = A.shape[-1]
    a3, lead = _batched(A)
    b3 = b.reshape(-1, b.shape[-2], b.shape[-1])
    t = a3.transpose(1, 2) if transpose else a3
    lower = (not upper) != transpose
    mask = t.tril() if lower else t.triu()
    x = _tri_solve(mask, b3, lower=lower, unit=unitriangular)
    res = collections.namedtuple("triangular_solve", ["solution", "cloned_coefficient"])
    return res(x.reshape(*b.shape), A.clone())


@_op("matrix_exp")
def matrix_exp(A):
    """Matrix exponential: scaling and squaring of a degree-18 Taylor series."""
    _square(A, "linalg.matrix_exp")
    norm = float(A.detach().abs().sum(-2).amax().item()) if A.numel() else 0.0
    s = max(0, int(math.ceil(math.log2(norm))) + 1) if norm > 0.5 else 0
    x = A / (2 ** s)
    n = A.shape[-1]
    eye = _C.eye(n, dtype=A.dtype).expand(*A.shape) * 1
    term, total = eye, eye
    for k in range(1, 19):
        term = term.matmul(x) / k
        total = total + term
    for _ in range(s):
        total = total.matmul(total)
    return total


def _install():
    from ._math_ops import METHODS

    METHODS["lu"] = _lu_method


def _householder_qr(a, complete):
    """LAPACK's Householder QR (geqrf's reflector and sign choice) of [B, m, n]."""
    b, m, n = a.shape
    k = min(m, n)
    rows = _C.arange(m).reshape(1, m, 1)
    q = _C.eye(m, dtype=a.dtype).unsqueeze(0).expand(b, m, m) * 1
    r = a
    for j in range(k):
        col = r.narrow(2, j, 1)  # [B, m, 1]
        below = (rows > j).to(a.dtype)
        at = (rows == j).to(a.dtype)
        alpha = col.narrow(1, j, 1)  # [B, 1, 1]
        xnorm2 = (col * col * below).sum(1, keepdim=True)
        nonzero = xnorm2 > 0
        norm = (alpha * alpha + xnorm2).sqrt()
        sgn = _where(alpha >= 0, _C.ones_like(alpha), -_C.ones_like(alpha))
        beta = -sgn * norm
        safe_beta = _where(nonzero, beta, _C.ones_like(beta))
        denom = _where(nonzero, alpha - beta, _C.ones_like(alpha))
        tau = _where(nonzero, (beta - alpha) / safe_beta, _C.zeros_like(alpha))
        v = at + col * below / denom  # [B, m, 1], v_j = 1
        r = r - tau * v.matmul(v.transpose(1, 2).matmul(r))
        q = q - tau * q.matmul(v).matmul(v.transpose(1, 2))
    if complete or m <= n:
        return q, r.triu()
    return q.narrow(2, 0, k), r.narrow(1, 0, k).triu()


def qr(input, some=True):
    """QR factorisation (Householder reflections, LAPACK's signs): ``(Q, R)``, reduced
    (``some=True``) or complete; ``deepseek.linalg.qr`` (PyTorch removed ``torch.qr``)."""
    import collections

    if input.dim() < 2:
        raise ValueError("linalg.qr: The input tensor A must have at least 2 dimensions.")
    if not input.is_floating_point():
        raise TypeError(f"linalg.qr: Expected a floating point tensor, got {input.dtype}")
    m, n = input.shape[-2], input.shape[-1]
    lead = list(input.shape[:-2])
    q, r = _householder_qr(input.reshape(-1, m, n), not some)
    res = collections.namedtuple("qr", ["Q", "R"])
    return res(q.reshape(*lead, m, q.shape[-1]), r.reshape(*lead, r.shape[-2], n))

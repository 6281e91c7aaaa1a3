"""Stacking, grids, statistics, searching and sampling functions of PyTorch's API composed
from the core's ops: ``hstack``/``vstack``/``dstack``/``column_stack``/``block_diag``,
``meshgrid``/``cartesian_prod``/``combinations``, ``tril_indices``/``vander``, ``cdist``,
``cov``/``corrcoef``, ``trapezoid``, ``searchsorted``/``bucketize``, the random in-place
fills (``bernoulli_``, ``exponential_``, ...) and ``poisson``/``binomial``."""

import builtins
import math

import numpy as np

from . import _C
from ._math_ops import _op, METHODS, FUNCTIONS  # noqa: F401
from ._shape_ops import _dim, _ints, diagonal

_where = _C.where
_T = _C.Tensor

# --- stacking and grids ---------------------------------------------------------------------

def _atleast(n, tensors):
    single = len(tensors) == 1 and isinstance(tensors[0], _T)
    ts = tensors[0] if len(tensors) == 1 and not single else tensors
    out = []
    for t in ts:
        if n >= 1 and t.dim() == 0:
            t = t.reshape(1)
        if n >= 2 and t.dim() == 1:
            t = t.unsqueeze(0)
        if n >= 3 and t.dim() == 2:
            t = t.unsqueeze(-1)
        out.append(t)
    return out[0] if single else tuple(out)


@_op("atleast_1d", method=False)
def atleast_1d(*tensors):
    """Views with at least one dimension."""
    return _atleast(1, tensors)


@_op("atleast_2d", method=False)
def atleast_2d(*tensors):
    """Views with at least two dimensions (1-D becomes [1, n])."""
    return _atleast(2, tensors)


@_op("atleast_3d", method=False)
def atleast_3d(*tensors):
    """Views with at least three dimensions (2-D becomes [m, n, 1])."""
    return _atleast(3, tensors)


@_op("hstack", method=False)
def hstack(tensors):
    """Concatenates along dimension 1 (0 for 1-D tensors)."""
    ts = atleast_1d(*tensors)
    ts = (ts,) if isinstance(ts, _T) else ts
    return _C.cat(list(ts), 0 if ts[0].dim() == 1 else 1)


@_op("vstack", "row_stack", method=False)
def vstack(tensors):
    """Concatenates along dimension 0 after making each at least 2-D."""
    ts = atleast_2d(*tensors)
    return _C.cat(list((ts,) if isinstance(ts, _T) else ts), 0)


@_op("dstack", method=False)
def dstack(tensors):
    """Concatenates along dimension 2 after making each at least 3-D."""
    ts = atleast_3d(*tensors)
    return _C.cat(list((ts,) if isinstance(ts, _T) else ts), 2)


@_op("column_stack", method=False)
def column_stack(tensors):
    """Stacks 0-/1-D tensors as columns, concatenating 2-D ones along dimension 1."""
    ts = [t.reshape(-1, 1) if t.dim() <= 1 else t for t in tensors]
    return _C.cat(ts, 1)


@_op("block_diag", method=False)
def block_diag(*tensors):
    """The block-diagonal matrix of the given (0-, 1- or 2-D) tensors."""
    ms = []
    for t in tensors:
        if t.dim() > 2:
            raise ValueError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. "
                             f"Input has {t.dim()} dimensions")
        ms.append(t.reshape(1, -1) if t.dim() < 2 else t)
    if not ms:
        return _C.zeros(1, 0)
    cols = builtins.sum(m.shape[1] for m in ms)
    rows, start = [], 0
    for m in ms:
        left, right = start, cols - start - m.shape[1]
        rows.append(_C.functional.pad(m, [left, right]))
        start += m.shape[1]
    return _C.cat(rows, 0)


@_op("meshgrid", method=False)
def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids of 1-D tensors: ``indexing='ij'`` (matrix) or ``'xy'``
    (Cartesian)."""
    ts = list(tensors[0]) if len(tensors) == 1 and not isinstance(tensors[0], _T) else \
        list(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                         f"received: {indexing}")
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = [t.numel() for t in ts]
    out = []
    for i, t in enumerate(ts):
        s = [1] * len(ts)
        s[i] = shape[i]
        out.append(t.reshape(*s).expand(*shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


@_op("cartesian_prod", method=False)
def cartesian_prod(*tensors):
    """The Cartesian product of 1-D tensors, as rows."""
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return _C.stack([g.reshape(-1) for g in grids], 1)


@_op("combinations", method=False)
def combinations(input, r=2, with_replacement=False):
    """The length-``r`` combinations of the elements of a 1-D tensor, as rows."""
    import itertools

    if input.dim() != 1:
        raise ValueError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    n = input.shape[0]
    it = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = np.array(list(it(range(n), r)), dtype=np.int64).reshape(-1, r)
    if idx.size == 0:
        return _C.zeros(0, r, dtype=input.dtype) if r else _C.zeros(0, dtype=input.dtype)
    return input.index_select(0, _C.tensor(idx.reshape(-1))).reshape(-1, r)


@_op("tril_indices", method=False)
def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The [2, N] coordinates of the lower triangle (diagonal ``offset``)."""
    r, c = np.tril_indices(row, offset, col)
    return _C.tensor(np.stack([r, c]).astype(np.int64))


@_op("triu_indices", method=False)
def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The [2, N] coordinates of the upper triangle (diagonal ``offset``)."""
    r, c = np.triu_indices(row, offset, col)
    return _C.tensor(np.stack([r, c]).astype(np.int64))


@_op("vander", method=False)
def vander(x, N=None, increasing=False):
    """The Vandermonde matrix: columns ``x^(N-1), ..., x^0`` (increasing powers with
    ``increasing``)."""
    if x.dim() != 1:
        raise ValueError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise ValueError("N must be non-negative.")
    cols = [x ** 0 if k == 0 else x ** k for k in range(n)]
    if not increasing:
        cols = cols[::-1]
    return _C.stack(cols, 1) if cols else _C.zeros(x.shape[0], 0, dtype=x.dtype)


# --- statistics and distances --------------------------------------------------------------

@_op("cdist", method=False)
def cdist(x1, x2, p=2.0, compute_mode=None):
    """``p``-norm distances between each row of ``x1`` [.., P, M] and of ``x2``
    [.., R, M]: [.., P, R]."""
    if x1.dim() < 2 or x2.dim() < 2:
        raise ValueError(f"cdist only supports at least 2D tensors, X1 got: {x1.dim()}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"X1 and X2 must have the same number of columns. X1: "
                         f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise ValueError("cdist only supports non-negative p values")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 0:
        return (diff != 0).to(x1.dtype).sum(-1)
    return diff.norm(p, -1)


@_op("cov")
def cov(input, *, correction=1, fweights=None, aweights=None):
    """Covariance matrix of the variables in the rows of ``input`` (observations in the
    columns), with frequency and analytic weights."""
    if input.dim() > 2:
        raise ValueError(f"cov(): expected input to have two or fewer dimensions but got an "
                         f"input with {input.dim()} dimensions")
    x = input.reshape(1, -1) if input.dim() < 2 else input
    x = x if x.is_floating_point() else x.to(_C.float32)
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = fweights.to(x.dtype)
    if aweights is not None:
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        avg = x.mean(1, keepdim=True)
        wsum = float(n)
        norm = wsum - correction
        xc = x - avg
        c = xc.matmul(xc.t()) / builtins.max(norm, 0)
    else:
        wsum_t = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum_t
        if correction == 0:
            norm = wsum_t
        elif aweights is None:
            norm = wsum_t - correction
        else:
            norm = wsum_t - correction * (w * aweights.to(x.dtype)).sum() / wsum_t
        xc = x - avg
        c = (xc * w).matmul(xc.t()) / norm.clamp(min=0)
    return c.squeeze() if input.dim() < 2 else c


@_op("corrcoef")
def corrcoef(input):
    """Pearson correlation coefficients of the variables in the rows of ``input``,
    clipped to [-1, 1]."""
    c = cov(input)
    if c.dim() == 0:
        return c / c
    d = diagonal(c).sqrt()
    return (c / d.unsqueeze(1) / d.unsqueeze(0)).clamp(-1, 1)


@_op("trapezoid", "trapz", method=False)
def trapezoid(y, x=None, *, dx=None, dim=-1):
    """Integral of ``y`` along ``dim`` by the trapezoidal rule, with sample points ``x``
    or spacing ``dx`` (1 by default)."""
    d = _dim(dim, y.dim())
    n = y.shape[d]
    if n == 0:
        return y.sum(d)
    a, b = y.narrow(d, 0, n - 1), y.narrow(d, 1, n - 1)
    if x is not None and isinstance(x, _T):
        xd = x.narrow(x.dim() - 1 if x.dim() == 1 else d, 1, n - 1) - \
            x.narrow(x.dim() - 1 if x.dim() == 1 else d, 0, n - 1)
        if x.dim() == 1 and y.dim() > 1:
            shape = [1] * y.dim()
            shape[d] = n - 1
            xd = xd.reshape(*shape)
        return ((a + b) * xd).sum(d) / 2
    h = dx if dx is not None else (x if x is not None else 1.0)
    return (a + b).sum(d) * (h / 2)


@_op("cumulative_trapezoid", method=False)
def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """Running trapezoidal integral of ``y`` along ``dim`` (one element shorter)."""
    d = _dim(dim, y.dim())
    n = y.shape[d]
    a, b = y.narrow(d, 0, builtins.max(n - 1, 0)), y.narrow(d, builtins.min(1, n),
                                                            builtins.max(n - 1, 0))
    if x is not None and isinstance(x, _T):
        xd = x.narrow(x.dim() - 1 if x.dim() == 1 else d, 1, n - 1) - \
            x.narrow(x.dim() - 1 if x.dim() == 1 else d, 0, n - 1)
        if x.dim() == 1 and y.dim() > 1:
            shape = [1] * y.dim()
            shape[d] = n - 1
            xd = xd.reshape(*shape)
        return ((a + b) * xd / 2).cumsum(d)
    h = dx if dx is not None else (x if x is not None else 1.0)
    return ((a + b) * (h / 2)).cumsum(d)


# --- searching ----------------------------------------------------------------------------

@_op("searchsorted", method=False)
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """Insertion indices of ``input`` into the innermost dimension of ``sorted_sequence``
    (``right`` / ``side='right'`` for the last suitable position)."""
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise ValueError("side and right can't be set to opposites, got side of left while "
                             "right was True")
        right = side == "right"
    seq = sorted_sequence.detach().numpy()
    if sorter is not None:
        seq = np.take_along_axis(seq, sorter.detach().numpy().astype(np.int64), -1)
    scalar = not isinstance(input, _T)
    vals = np.asarray(input if scalar else input.detach().numpy())
    s = "right" if right else "left"
    if seq.ndim == 1:
        out = np.searchsorted(seq, vals, side=s)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise ValueError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or "
                             f"the first N-1 dimensions of boundaries tensor and input value "
                             f"tensor must match, but we got boundaries tensor "
                             f"{list(seq.shape)} and input value tensor {list(vals.shape)}")
        out = np.stack([np.searchsorted(r, v, side=s) for r, v in
                        zip(seq.reshape(-1, seq.shape[-1]),
                            vals.reshape(-1, vals.shape[-1]))]).reshape(vals.shape)
    return _C.tensor(np.asarray(out).astype(np.int32 if out_int32 else np.int64))


@_op("bucketize", method=False)
def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The index of the bucket of each element of ``input`` among the sorted 1-D
    ``boundaries`` (``right=True``: ``boundaries[i-1] <= x < boundaries[i]``)."""
    if boundaries.dim() != 1:
        raise ValueError(f"boundaries tensor must be 1 dimension, but got dim("
                         f"{boundaries.dim()})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# --- random in-place fills (deepseek's generator, so manual_seed reproduces them) ---------

def _u(self, generator=None):
    return _C.rand(*self.shape, generator=generator,
                   dtype=self.dtype if self.is_floating_point() else _C.float64)


def _fill(self, values, name):
    return _C._assign_inplace(self, values.to(self.dtype), name)


def _bernoulli(input, p=None, *, generator=None):
    """Samples 0/1 with probability ``input`` (or ``p``) for each element."""
    prob = input if p is None else p
    u = _C.rand(*input.shape, generator=generator,
               dtype=input.dtype if input.is_floating_point() else _C.float32)
    return (u < prob).to(input.dtype)


def _bernoulli_(self, p=0.5, *, generator=None):
    """``bernoulli_(p=0.5)``: fill in place with 0/1 draws, 1 with probability ``p`` (number or
    tensor).
    """
    return _fill(self, (_u(self, generator) < p), "bernoulli_")


def _exponential_(self, lambd=1.0, *, generator=None):
    """``exponential_(lambd=1)``: fill in place with draws from the exponential distribution."""
    return _fill(self, -(1 - _u(self, generator)).log() / lambd, "exponential_")


def _geometric_(self, p, *, generator=None):
    """``geometric_(p)``: fill in place with draws from the geometric distribution (support 1,
    2, ...).
    """
    if not 0 < p < 1:
        raise ValueError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    return _fill(self, ((1 - _u(self, generator)).log() / math.log1p(-p)).ceil().clamp(min=1),
                 "geometric_")


def _log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    """``log_normal_(mean=1, std=2)``: fill in place with draws from the log-normal
    distribution.
    """
    z = _C.randn(*self.shape, generator=generator, dtype=self.dtype)
    return _fill(self, (z * std + mean).exp(), "log_normal_")


def _cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    """``cauchy_(median=0, sigma=1)``: fill in place with draws from the Cauchy distribution."""
    from ._math_ops import tan

    return _fill(self, tan((_u(self, generator) - 0.5) * math.pi) * sigma + median, "cauchy_")


def _random_(self, from_=0, to=None, *, generator=None):
    """``random_(from=0, to=None)``: fill in place with integers drawn uniformly from [from,
    to).
    """
    if to is None:
        lo, hi = 0, from_ if from_ else (2 ** 24 if self.is_floating_point() else 2 ** 31)
        if from_ == 0 and self.dtype == _C.bool:
            hi = 2
    else:
        lo, hi = from_, to
    if hi <= lo:
        raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={lo} >= "
                         f"to={hi}")
    return _fill(self, (_u(self, generator) * (hi - lo)).floor() + lo, "random_")


METHODS.update({"bernoulli": _bernoulli, "bernoulli_": _bernoulli_,
                "exponential_": _exponential_, "geometric_": _geometric_,
                "log_normal_": _log_normal_, "cauchy_": _cauchy_, "random_": _random_})
FUNCTIONS["bernoulli"] = _bernoulli


# --- count sampling ------------------------------------------------------------------------

@_op("poisson", method=False)
def poisson(input, generator=None):
    """Samples Poisson(rate) for each element of ``input`` (the rates), by inversion of
    the CDF with deepseek's generator."""
    if bool((input < 0).any()):
        raise ValueError("poisson: expected all rates to be non-negative")
    lam = input.detach().to(_C.float64)
    u = _C.rand(*input.shape, generator=generator, dtype=_C.float64)
    p = (-lam).exp()
    cdf = p
    k = _C.zeros_like(lam)
    top = float(lam.max().item()) if lam.numel() else 0.0
    for i in range(1, int(top + 12 * math.sqrt(top + 1) + 20)):
        more = u > cdf
        if not bool(more.any()):
            break
        k = k + more.to(_C.float64)
        p = p * lam / i
        cdf = cdf + p
    return k.to(input.dtype)


@_op("binomial", method=False)
def binomial(count, prob, generator=None):
    """Samples Binomial(count, prob) elementwise (the sum of ``count`` Bernoulli draws)."""
    if bool((prob < 0).any()) or bool((prob > 1).any()):
        raise ValueError("binomial: expected prob in [0, 1]")
    c = count.detach().to(_C.float64)
    pr = prob.detach().to(_C.float64) + _C.zeros_like(c)
    c = c + _C.zeros_like(pr)
    n = int(c.max().item()) if c.numel() else 0
    total = _C.zeros_like(c)
    for i in range(n):
        draw = (_C.rand(*c.shape, generator=generator, dtype=_C.float64) < pr).logical_and(c > i)
        total = total + draw.to(_C.float64)
    return total.to(count.dtype)

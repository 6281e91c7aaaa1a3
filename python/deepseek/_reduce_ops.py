"""Reductions, scans and order statistics of PyTorch's API composed from the core's ops:
``aminmax``, ``nansum``/``nanmean``, ``median``/``nanmedian``, ``mode``, ``kthvalue``,
``quantile``, ``cummax``/``cummin``, ``cumprod``, ``logcumsumexp``, ``std_mean``/
``var_mean``, ``dist``, ``renorm``, ``diff``, ``histc``, ``bincount``. Order statistics
pick their positions from the data (``sort``) and gather the values, so they stay
differentiable; scans over a dimension of size n build an n x n triangle (exact, with the
core's backward rules)."""

import math

import numpy as np

from . import _C
from ._math_ops import _op

_where = _C.where


def _dim(d, n):
    if not -max(n, 1) <= d < max(n, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-max(n, 1)}, {max(n, 1) - 1}], but got {d})")
    return d % max(n, 1)


def _rt(name):
    from . import return_types

    return getattr(return_types, name, None)


def _named(name, fields, values):
    import collections

    cls = _rt(name)
    if cls is None:
        cls = collections.namedtuple(name, fields)
    return cls(*values)


@_op("aminmax")
def aminmax(input, *, dim=None, keepdim=False):
    """``(min, max)`` over all elements or along ``dim``."""
    if dim is None:
        return _named("aminmax", ["min", "max"], (input.amin(), input.amax()) if not keepdim
                      else (input.amin(list(range(input.dim())), keepdim=True),
                            input.amax(list(range(input.dim())), keepdim=True)))
    return _named("aminmax", ["min", "max"],
                  (input.amin(dim, keepdim=keepdim), input.amax(dim, keepdim=keepdim)))


def _nan_zero(x):
    return x.masked_fill(x != x, 0.0) if x.is_floating_point() else x


@_op("nansum")
def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum treating NaN as zero."""
    return _nan_zero(input).sum(dim, keepdim, dtype=dtype)


@_op("nanmean")
def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over the non-NaN elements."""
    if not input.is_floating_point():
        raise TypeError(f"nanmean(): expected input to have floating point dtype but got "
                        f"{input.dtype}")
    ok = (input == input).to(input.dtype)
    return nansum(input, dim, keepdim, dtype=dtype) / ok.sum(dim, keepdim, dtype=dtype)


def _sorted_pick(input, dim, keepdim, pos_fn, name):
    """Gathers, along ``dim``, the element at sorted position ``pos_fn(n)``."""
    if dim is None:
        x = input.reshape(-1)
        d = 0
    else:
        x = input
        d = _dim(dim, input.dim())
    if x.dim() == 0:
        x = x.reshape(1)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    s = x.sort(d, stable=True)
    k = pos_fn(n, s)
    if isinstance(k, int):
        idx = s.indices.narrow(d, k, 1)
    else:
        idx = s.indices.gather(d, k)
    vals = x.gather(d, idx)
    if dim is None:
        return vals.reshape([]), idx.reshape([])
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
        if input.dim() == 0:
            vals, idx = vals.reshape([]), idx.reshape([])
    return vals, idx


@_op("median")
def median(input, dim=None, keepdim=False):
    """The lower median (element ``(n - 1) // 2`` in sorted order): a value, or with
    ``dim`` the named tuple ``(values, indices)``. NaN propagates."""
    def pos(n, s):
        has_nan = (s.values != s.values).any(0 if dim is None else _dim(dim, input.dim()),
                                            keepdim=True) if input.is_floating_point() \
            else None
        k = (n - 1) // 2
        if has_nan is None or not bool(has_nan.any()):
            return k
        nan_at = (s.values != s.values).to(_C.int64).argmax(0 if dim is None else
                                                             _dim(dim, input.dim()), keepdim=True)
        return _where(has_nan, nan_at, nan_at * 0 + k)

    v, i = _sorted_pick(input, dim, keepdim, pos, "median")
    if dim is None:
        return v
    return _named("median", ["values", "indices"], (v, i))


@_op("nanmedian")
def nanmedian(input, dim=None, keepdim=False):
    """The lower median of the non-NaN elements (NaN when all are NaN)."""
    d = 0 if dim is None else _dim(dim, input.dim())

    def pos(n, s):
        cnt = (s.values == s.values).to(_C.int64).sum(d, keepdim=True)
        return ((cnt - 1).clamp(min=0) // 2)

    v, i = _sorted_pick(input, dim, keepdim, pos, "nanmedian")
    if dim is None:
        return v
    return _named("nanmedian", ["values", "indices"], (v, i))


@_op("kthvalue")
def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest element (1-based) along ``dim``: ``(values, indices)``."""
    n = input.shape[_dim(dim, input.dim())] if input.dim() else 1
    if not 1 <= k <= n:
        raise IndexError(f"kthvalue(): selected number k out of range for dimension {dim}")
    v, i = _sorted_pick(input, dim, keepdim, lambda n, s: k - 1, "kthvalue")
    return _named("kthvalue", ["values", "indices"], (v, i))


@_op("mode")
def mode(input, dim=-1, keepdim=False):
    """The most frequent value along ``dim`` (the smallest among ties) and an index of it:
    ``(values, indices)``."""
    d = _dim(dim, input.dim())
    a = np.moveaxis(input.detach().numpy(), d, -1) if input.dim() else \
        input.detach().numpy().reshape(1)
    flat = a.reshape(-1, a.shape[-1])
    idx = np.zeros(flat.shape[0], dtype=np.int64)
    for r, row in enumerate(flat):
        vals, counts = np.unique(row, return_counts=True)
        best = vals[np.argmax(counts)]
        idx[r] = np.nonzero(row == best)[0][-1]
    idx = idx.reshape(a.shape[:-1])
    it = _C.tensor(np.ascontiguousarray(idx)).unsqueeze(d) if input.dim() else \
        _C.tensor(idx.reshape(1))
    x = input if input.dim() else input.reshape(1)
    v = x.gather(d if input.dim() else 0, it)
    if not keepdim or input.dim() == 0:
        v, it = v.squeeze(d if input.dim() else 0), it.squeeze(d if input.dim() else 0)
    return _named("mode", ["values", "indices"], (v, it))


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, name):
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"{name}() interpolation must be one of linear, lower, higher, "
                         f"midpoint or nearest. Got {interpolation}")
    if not input.is_floating_point():
        raise TypeError(f"{name}() input tensor must be either float or double dtype")
    scalar_q = not isinstance(q, _C.Tensor)
    qs = np.atleast_1d(np.asarray(q.detach().numpy() if not scalar_q else q, dtype=np.float64))
    if not scalar_q and q.dim() > 1:
        raise ValueError(f"{name}() q must be a scalar or 1D tensor")
    if ((qs < 0) | (qs > 1)).any():
        raise ValueError(f"{name}() q values must be in the range [0, 1]")
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _dim(dim, input.dim())
    if x.dim() == 0:
        x = x.reshape(1)
    s = x.sort(d).values  # NaN sorts last
    n = x.shape[d]
    valid = (s == s).to(_C.int64).sum(d, keepdim=True) if ignore_nan else None
    outs = []
    for qv in qs:
        if ignore_nan:
            rank = (valid - 1).clamp(min=0).to(x.dtype) * qv
        else:
            rank = _C.full((), (n - 1) * qv, dtype=x.dtype)
        lo = rank.floor()
        hi = rank.ceil()
        frac_w = rank - lo
        if interpolation == "lower":
            hi, frac_w = lo, frac_w * 0
        elif interpolation == "higher":
            lo, frac_w = hi, frac_w * 0
        elif interpolation == "nearest":
            r = _round_half_even(rank)
            lo, hi, frac_w = r, r, frac_w * 0
        elif interpolation == "midpoint":
            frac_w = _where(hi > lo, frac_w * 0 + 0.5, frac_w * 0)
        shape = list(s.shape)
        shape[d] = 1
        li = (lo.to(_C.int64) + _C.zeros(*shape, dtype=_C.int64))
        hi_i = (hi.to(_C.int64) + _C.zeros(*shape, dtype=_C.int64))
        a, b = s.gather(d, li), s.gather(d, hi_i)
        v = a + (b - a) * frac_w
        if ignore_nan:
            v = _where(valid == 0, v * 0 + math.nan, v)
        elif input.is_floating_point():
            has_nan = (s != s).any(d, keepdim=True)
            v = _where(has_nan, v * 0 + math.nan, v)
        if dim is None:
            v = v.reshape([1] * input.dim()) if keepdim else v.reshape([])
        elif not keepdim:
            v = v.squeeze(d)
        outs.append(v)
    return outs[0] if scalar_q else _C.stack(outs, 0)


def _round_half_even(x):
    f = x.floor()
    r = x - f
    even = (f.remainder(2) == 0)
    return _where(r > 0.5, f + 1, _where(r < 0.5, f, _where(even, f, f + 1)))


@_op("quantile")
def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The ``q``-th quantiles (a number or a 1-D tensor in [0, 1]) over all elements or
    along ``dim``; ``interpolation`` is linear, lower, higher, midpoint or nearest."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


@_op("nanquantile")
def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """``quantile`` ignoring NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


def _tri(n, dtype=_C.bool):
    """[n, n] lower triangle (j <= i) mask."""
    return _C.tensor(np.tril(np.ones((n, n), dtype=bool)))


def _scan_window(input, dim):
    """``input`` expanded along a new last axis: ``w[..., i, ..., j] = x[..., j, ...]``
    with the mask ``j <= i`` (returns the expanded values moved to [..., n_i, n_j] and the
    mask)."""
    d = _dim(dim, input.dim())
    x = input.movedim(d, -1) if input.dim() else input.reshape(1)
    n = x.shape[-1]
    w = x.unsqueeze(-2).expand(*x.shape[:-1], n, n)
    return w, _tri(n), d


def _unscan(y, input, d):
    return y.movedim(-1, d) if input.dim() else y.reshape([])


@_op("cumprod")
def cumprod(input, dim, *, dtype=None):
    """Cumulative product along ``dim``."""
    x = input if dtype is None else input.to(dtype)
    if x.dtype == _C.bool:
        x = x.to(_C.int64)
    w, m, d = _scan_window(x, dim)
    one = _C.ones_like(w)
    return _unscan(_where(m, w, one).prod(-1), x, d)


@_op("logcumsumexp")
def logcumsumexp(input, dim):
    """``log(cumsum(exp(x)))`` along ``dim``, computed stably."""
    w, m, d = _scan_window(input, dim)
    return _unscan(_where(m, w, _C.full_like(w, -math.inf)).logsumexp(-1), input, d)


def _cum_ext(input, dim, largest, name):
    d = _dim(dim, input.dim())
    a = input.detach().numpy()
    a = np.moveaxis(a, d, -1) if input.dim() else a.reshape(1)
    idx = np.zeros(a.shape, dtype=np.int64)
    best = a[..., 0].copy()
    cur = np.zeros(a.shape[:-1], dtype=np.int64)
    isnan = np.isnan if a.dtype.kind == "f" else (lambda v: np.zeros(v.shape, dtype=bool))
    for i in range(a.shape[-1]):
        v = a[..., i]
        # PyTorch's rule: take x when it ties or beats the running value, or is NaN (a NaN
        # running value is then never beaten).
        take = ((v >= best) if largest else (v <= best)) | isnan(v)
        if i == 0:
            take = np.ones_like(take)
        best = np.where(take, v, best)
        cur = np.where(take, i, cur)
        idx[..., i] = cur
    it = _C.tensor(np.ascontiguousarray(np.moveaxis(idx, -1, d) if input.dim() else
                                        idx.reshape([])))
    x = input if input.dim() else input.reshape(1)
    vals = x.gather(d, it.reshape(*x.shape)) if input.dim() else x.gather(0, it.reshape(1))
    if not input.dim():
        vals, it = vals.reshape([]), it.reshape([])
    return _named(name, ["values", "indices"], (vals, it))


@_op("cummax")
def cummax(input, dim):
    """Running maximum along ``dim`` and the index where it was reached:
    ``(values, indices)``."""
    return _cum_ext(input, dim, True, "cummax")


@_op("cummin")
def cummin(input, dim):
    """Running minimum along ``dim`` and its index: ``(values, indices)``."""
    return _cum_ext(input, dim, False, "cummin")


@_op("std_mean", method=False)
def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` in one call."""
    return (input.std(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim))


@_op("var_mean", method=False)
def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` in one call."""
    return (input.var(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim))


@_op("dist")
def dist(input, other, p=2):
    """``||input - other||_p`` (broadcast)."""
    return (input - other).norm(p)


@_op("renorm")
def renorm(input, p, dim, maxnorm):
    """Rescales each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` to norm
    ``maxnorm``."""
    if p <= 0:
        raise ValueError(f"renorm: non-positive-norm not supported, got p={p}")
    if maxnorm < 0:
        raise ValueError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = _dim(dim, input.dim())
    other = [i for i in range(input.dim()) if i != d]
    norm = input.norm(p, other, keepdim=True) if other else input.abs()
    factor = _where(norm > maxnorm, maxnorm / (norm + 1e-7), _C.ones_like(norm))
    return input * factor


@_op("diff")
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim`` (after concatenating ``prepend`` and
    ``append``)."""
    if input.dim() == 0:
        raise ValueError("diff expects input to be at least one-dimensional")
    d = _dim(dim, input.dim())
    x = input
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        parts = [p if isinstance(p, _C.Tensor) else _C.tensor(p) for p in parts]
        x = _C.cat(parts, d)
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        if x.dtype == _C.bool:
            x = x.narrow(d, 1, m - 1).logical_xor(x.narrow(d, 0, m - 1))
        else:
            x = x.narrow(d, 1, m - 1) - x.narrow(d, 0, m - 1)
    return x


@_op("histc")
def histc(input, bins=100, min=0, max=0):
    """Histogram of the values in ``bins`` equal bins over [min, max] (the data's range when
    both are 0); values outside are ignored."""
    if bins <= 0:
        raise ValueError(f"torch.histc(): bins must be > 0, but got {bins} for dim 0")
    if not input.is_floating_point():
        raise TypeError(f'"histogram_cpu" not implemented for '
                        f'\'{str(input.dtype).split(".")[-1]}\'')
    a = input.detach().numpy().astype(np.float64).reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise ValueError(f"torch.histc(): max must be larger than min, but got min {min} "
                         f"max {max}")
    h, _ = np.histogram(a[(a >= lo) & (a <= hi)], bins=bins, range=(lo, hi))
    return _C.tensor(h.astype(np.float64)).to(input.dtype)


@_op("bincount")
def bincount(input, weights=None, minlength=0):
    """Counts of each non-negative integer in a 1-D ``input`` (weighted sums with
    ``weights``)."""
    if input.dim() != 1 or input.is_floating_point() or input.dtype == _C.bool:
        raise ValueError("bincount only supports 1-d non-negative integral inputs.")
    a = input.detach().numpy().astype(np.int64)
    if a.size and a.min() < 0:
        raise ValueError("bincount only supports 1-d non-negative integral inputs.")
    n = max(int(a.max()) + 1 if a.size else 0, int(minlength))
    if weights is None:
        return _C.tensor(np.bincount(a, minlength=n).astype(np.int64))
    out = _C.zeros(n, dtype=weights.dtype if weights.dtype == _C.float32 else _C.float64)
    return out.index_add(0, input, weights.to(out.dtype))


@_op("msort")
def msort(input):
    """Sorts along the first dimension."""
    return input.sort(0).values

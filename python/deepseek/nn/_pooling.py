"""N-dimensional pooling by window tables: for each output position, the flat indices of
its window's input elements (padding points at a sentinel appended to the input), so one
``index_select`` gathers all windows and a reduction finishes. It gives ``max_pool3d``,
``avg_pool3d``, the adaptive 3-D pools, every ``*_with_indices`` form, ``max_unpool1-3d``
and ``lp_pool3d``; gradients flow through ``index_select`` (the core's max/avg 1-D and 2-D
kernels stay the fast path when no indices are asked for)."""

import math

import numpy as np

from .. import _C
from .._C import functional as _C_F

__all__ = ["max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
           "lp_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "max_pool3d_with_indices", "adaptive_max_pool1d_with_indices",
           "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
           "max_unpool1d", "max_unpool2d", "max_unpool3d", "max_pool2d", "max_pool1d",
           "adaptive_max_pool2d", "adaptive_max_pool1d"]


def _tup(v, n, name):
    if v is None:
        return None
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v}")
    return v


def _out_size(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1  # the last window must start inside the input or the left padding
    return o


def _axis_windows(size, k, s, p, d, ceil_mode):
    """Per output index along one axis: input positions (-1 outside the input) and, for
    averages, the count of positions inside the padded input."""
    o = _out_size(size, k, s, p, d, ceil_mode)
    if o <= 0:
        raise ValueError(f"pooling: output size is too small ({o}) for input size {size}, "
                         f"kernel {k}, stride {s}, padding {p}, dilation {d}")
    start = np.arange(o) * s - p
    pos = start[:, None] + np.arange(k)[None, :] * d
    inside = (pos >= 0) & (pos < size)
    in_pad = (pos >= -p) & (pos < size + p)
    return np.where(inside, pos, -1), in_pad.sum(1), inside.sum(1)


def _adaptive_windows(size, o):
    starts = (np.arange(o) * size) // o
    ends = -((-(np.arange(o) + 1) * size) // o)
    k = int((ends - starts).max())
    pos = starts[:, None] + np.arange(k)[None, :]
    valid = pos < ends[:, None]
    return np.where(valid, pos, -1), valid.sum(1), valid.sum(1)


def _combine(axes, spatial):
    """Cartesian combination of per-axis windows into a [L, K] flat-index table (-1 for
    padding) and per-output counts (padded, valid)."""
    table = np.zeros((1, 1), dtype=np.int64)
    cnt_pad = np.ones(1, dtype=np.int64)
    cnt_in = np.ones(1, dtype=np.int64)
    stride = 1
    strides = []
    for s in reversed(spatial):
        strides.insert(0, stride)
        stride *= s
    for (pos, cp, ci), st in zip(axes, strides):
        o, k = pos.shape
        left = table[:, None, :, None]
        right = pos[None, :, None, :]
        comb = np.where((left >= 0) & (right >= 0), left + right * st, -1)
        table = comb.reshape(table.shape[0] * o, table.shape[1] * k)
        cnt_pad = (cnt_pad[:, None] * cp[None, :]).reshape(-1)
        cnt_in = (cnt_in[:, None] * ci[None, :]).reshape(-1)
    return table, cnt_pad, cnt_in


def _gather_windows(x, table, fill, nsp):
    """x [B..., C, *spatial] -> [B..., C, L, K] with ``fill`` where the table has -1."""
    lead = list(x.shape[:x.dim() - nsp])
    flat = x.reshape(*lead, -1)
    n = flat.shape[-1]
    sentinel = _C.full(tuple(lead) + (1,), float(fill), dtype=x.dtype)
    ext = _C.cat([flat, sentinel], len(lead))
    idx = np.where(table >= 0, table, n).reshape(-1).astype(np.int64)
    g = ext.index_select(len(lead), _C.tensor(idx))
    return g.reshape(*lead, table.shape[0], table.shape[1])


def _prep(input, nsp, who):
    if input.dim() not in (nsp + 1, nsp + 2):
        raise ValueError(f"{who}: Expected {nsp + 1}D or {nsp + 2}D input, but got "
                         f"{input.dim()}D input")
    return input.dim() == nsp + 1


def _max_pool(input, nsp, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              who):
    unbatched = _prep(input, nsp, who)
    k = _tup(kernel_size, nsp, "kernel_size")
    s = _tup(stride, nsp, "stride") if stride not in (None, ()) and stride != [] else k
    p = _tup(padding, nsp, "padding")
    d = _tup(dilation, nsp, "dilation")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"pad should be at most half of effective kernel size, but got "
                         f"pad={p}, kernel_size={k}")
    spatial = list(input.shape[-nsp:])
    axes = [_axis_windows(n, ki, si, pi, di, ceil_mode)
            for n, ki, si, pi, di in zip(spatial, k, s, p, d)]
    table, _, _ = _combine(axes, spatial)
    w = _gather_windows(input, table, -math.inf, nsp)
    outs = [a[0].shape[0] for a in axes]
    vals = w.amax(-1)
    lead = list(input.shape[:input.dim() - nsp])
    vals = vals.reshape(*lead, *outs)
    if not return_indices:
        return vals
    arg = w.argmax(-1, keepdim=True)
    tab = _C.tensor(table)
    ind = tab.expand(*lead, *table.shape).gather(len(lead) + 1, arg).reshape(*lead, *outs)
    return vals, ind


def _avg_pool(input, nsp, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, who):
    _prep(input, nsp, who)
    k = _tup(kernel_size, nsp, "kernel_size")
    s = _tup(stride, nsp, "stride") if stride not in (None, ()) and stride != [] else k
    p = _tup(padding, nsp, "padding")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"pad should be at most half of effective kernel size, but got "
                         f"pad={p}, kernel_size={k}")
    spatial = list(input.shape[-nsp:])
    axes = [_axis_windows(n, ki, si, pi, 1, ceil_mode) for n, ki, si, pi in zip(spatial, k, s, p)]
    table, cnt_pad, cnt_in = _combine(axes, spatial)
    w = _gather_windows(input, table, 0.0, nsp)
    if divisor_override:
        div = np.full(len(cnt_pad), float(divisor_override))
    else:
        div = (cnt_pad if count_include_pad else cnt_in).astype(np.float64)
    out = w.sum(-1) / _C.tensor(div).to(input.dtype)
    lead = list(input.shape[:input.dim() - nsp])
    return out.reshape(*lead, *[a[0].shape[0] for a in axes])


def _adaptive(input, nsp, output_size, kind, who):
    _prep(input, nsp, who)
    spatial = list(input.shape[-nsp:])
    o = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * nsp
    o = [spatial[i] if v is None else int(v) for i, v in enumerate(o)]
    if len(o) != nsp:
        raise ValueError(f"{who}: output_size must have {nsp} elements, got {len(o)}")
    axes = [_adaptive_windows(n, oi) for n, oi in zip(spatial, o)]
    table, cnt, _ = _combine(axes, spatial)
    lead = list(input.shape[:input.dim() - nsp])
    if kind == "avg":
        w = _gather_windows(input, table, 0.0, nsp)
        out = w.sum(-1) / _C.tensor(cnt.astype(np.float64)).to(input.dtype)
        return out.reshape(*lead, *o)
    w = _gather_windows(input, table, -math.inf, nsp)
    vals = w.amax(-1).reshape(*lead, *o)
    arg = w.argmax(-1, keepdim=True)
    ind = _C.tensor(table).expand(*lead, *table.shape).gather(len(lead) + 1, arg)
    return vals, ind.reshape(*lead, *o)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling over [N, C, D, H, W] (or [C, D, H, W])."""
    return _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool3d")


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """1-D max pooling returning ``(values, indices)`` (flat positions in the input)."""
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode, True,
                     "max_pool1d")


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """2-D max pooling returning ``(values, indices)`` (flat positions in each plane)."""
    return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode, True,
                     "max_pool2d")


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """3-D max pooling returning ``(values, indices)``."""
    return _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode, True,
                     "max_pool3d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling (the core's kernel; the window-table path when indices are asked
    for)."""
    if return_indices:
        return max_pool2d_with_indices(input, kernel_size, stride, padding, dilation,
                                       ceil_mode)
    return _C_F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling over [N, C, L] (or [C, L])."""
    if return_indices:
        return max_pool1d_with_indices(input, kernel_size, stride, padding, dilation,
                                       ceil_mode)
    k = _tup(kernel_size, 1, "kernel_size")[0]
    s = k if stride in (None, ()) else _tup(stride, 1, "stride")[0]
    p = _tup(padding, 1, "padding")[0]
    d = _tup(dilation, 1, "dilation")[0]
    y = _C_F.max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d), ceil_mode)
    return y.squeeze(-2)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """3-D average pooling over [N, C, D, H, W] (or [C, D, H, W])."""
    return _avg_pool(input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, "avg_pool3d")


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average 3-D pooling: ``(sum over the window of x^p)^(1/p)``."""
    k = _tup(kernel_size, 3, "kernel_size")
    out = avg_pool3d(input ** norm_type, k, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu() * (k[0] * k[1] * k[2])) ** (1.0 / norm_type)


def adaptive_avg_pool3d(input, output_size):
    """Adaptive average pooling of the last three dimensions to ``output_size``."""
    return _adaptive(input, 3, output_size, "avg", "adaptive_avg_pool3d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive max pooling of the last three dimensions to ``output_size``."""
    v, i = _adaptive(input, 3, output_size, "max", "adaptive_max_pool3d")
    return (v, i) if return_indices else v


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    """Adaptive 1-D max pooling returning ``(values, indices)``."""
    return _adaptive(input, 1, output_size, "max", "adaptive_max_pool1d")


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    """Adaptive 2-D max pooling returning ``(values, indices)``."""
    return _adaptive(input, 2, output_size, "max", "adaptive_max_pool2d")


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=True):
    """Adaptive 3-D max pooling returning ``(values, indices)``."""
    return _adaptive(input, 3, output_size, "max", "adaptive_max_pool3d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive 2-D max pooling (the core's kernel unless indices are asked for)."""
    if return_indices:
        return adaptive_max_pool2d_with_indices(input, output_size)
    return _C_F.adaptive_max_pool2d(input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive max pooling over the last dimension to ``output_size``."""
    if return_indices:
        return adaptive_max_pool1d_with_indices(input, output_size)
    o = _tup(output_size, 1, "output_size")[0]
    return _C_F.adaptive_max_pool2d(input.unsqueeze(-2), (1, o)).squeeze(-2)


def _max_unpool(input, indices, nsp, kernel_size, stride, padding, output_size, who):
    k = _tup(kernel_size, nsp, "kernel_size")
    s = _tup(stride, nsp, "stride") if stride not in (None, ()) else k
    p = _tup(padding, nsp, "padding")
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(f"{who}: Expected shape of indices to be same as that of the input "
                         f"tensor ({tuple(input.shape)}) but got indices tensor with shape: "
                         f"{tuple(indices.shape)}")
    _prep(input, nsp, who)
    ins = list(input.shape[-nsp:])
    default = [(i - 1) * si - 2 * pi + ki for i, si, pi, ki in zip(ins, s, p, k)]
    if output_size is None:
        out = default
    else:
        out = list(output_size)[-nsp:]
        for o, dflt, si in zip(out, default, s):
            if not dflt - si < o < dflt + si:
                raise ValueError(f"{who}: invalid output_size {list(output_size)} (expected "
                                 f"sizes between {[x - y + 1 for x, y in zip(default, s)]} and "
                                 f"{[x + y - 1 for x, y in zip(default, s)]})")
    lead = list(input.shape[:input.dim() - nsp])
    n = int(np.prod(out))
    idx = indices.detach().numpy()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"{who}: found an invalid max index {int(idx.max())} (output volume "
                         f"of size {n})")
    flat = input.reshape(*lead, -1)
    z = _C.zeros(*lead, n, dtype=input.dtype)
    res = z.scatter(len(lead), indices.reshape(*lead, -1), flat)
    return res.reshape(*lead, *out)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of ``max_pool1d``: values placed at ``indices``, zeros elsewhere."""
    return _max_unpool(input, indices, 1, kernel_size, stride, padding, output_size,
                       "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of ``max_pool2d``: values placed at ``indices``, zeros elsewhere."""
    return _max_unpool(input, indices, 2, kernel_size, stride, padding, output_size,
                       "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The inverse of ``max_pool3d``: values placed at ``indices``, zeros elsewhere."""
    return _max_unpool(input, indices, 3, kernel_size, stride, padding, output_size,
                       "max_unpool3d")

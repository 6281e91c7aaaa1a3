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
from ._spatial import _tup

__all__ = ["max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
           "lp_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "max_pool3d_with_indices", "adaptive_max_pool1d_with_indices",
           "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
           "max_unpool1d", "max_unpool2d", "max_unpool3d", "max_pool2d", "max_pool1d",
           "adaptive_max_pool2d", "adaptive_max_pool1d"]



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


# --- 3-D convolutions over the same window tables ------------------------------------------

def _conv_windows(spatial, k, s, p, d):
    axes = [_axis_windows(n, ki, si, pi, di, False)
            for n, ki, si, pi, di in zip(spatial, k, s, p, d)]
    table, _, _ = _combine(axes, spatial)
    return table, [a[0].shape[0] for a in axes]


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution: [N, C_in, D, H, W] with weight [C_out, C_in / groups, kd, kh, kw]
    (windows gathered by a table, then one matmul per group)."""
    unbatched = _prep(input, 3, "conv3d")
    x = input.unsqueeze(0) if unbatched else input
    if weight.dim() != 5:
        raise ValueError(f"conv3d: expected a 5-D weight, got {tuple(weight.shape)}")
    n, c = x.shape[0], x.shape[1]
    cout, cig = weight.shape[0], weight.shape[1]
    if groups <= 0 or c != cig * groups or cout % groups:
        raise ValueError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                         f"input{list(x.shape)} to have {cig * groups} channels, but got {c} "
                         f"channels instead")
    k = tuple(weight.shape[2:])
    s, d = _tup(stride, 3, "stride"), _tup(dilation, 3, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0, 0)
        elif padding == "same":
            if any(si != 1 for si in s):
                raise ValueError("padding='same' is not supported for strided convolutions")
            tot = [di * (ki - 1) for di, ki in zip(d, k)]
            if any(t % 2 for t in tot):
                left = [t // 2 for t in tot]
                x = _C_F.pad(x, [v for t, lo in zip(reversed(tot), reversed(left))
                                 for v in (lo, t - lo)])
                p = (0, 0, 0)
            else:
                p = tuple(t // 2 for t in tot)
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                             f"{{'valid', 'same'}}")
    else:
        p = _tup(padding, 3, "padding")
    spatial = list(x.shape[2:])
    table, outs = _conv_windows(spatial, k, s, p, d)
    w = _gather_windows(x, table, 0.0, 3)  # [N, C, L, K]
    L, K = table.shape
    coutg = cout // groups
    res = []
    for g in range(groups):
        wg = w.narrow(1, g * cig, cig).permute(0, 2, 1, 3).reshape(n, L, cig * K)
        kg = weight.narrow(0, g * coutg, coutg).reshape(coutg, cig * K)
        res.append(wg.matmul(kg.t()))
    y = (res[0] if groups == 1 else _C.cat(res, 2)).permute(0, 2, 1).reshape(n, cout, *outs)
    if bias is not None:
        y = y + bias.reshape(1, cout, 1, 1, 1)
    return y.squeeze(0) if unbatched else y


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 3-D convolution (the adjoint of ``conv3d``); weight
    [C_in, C_out / groups, kd, kh, kw]."""
    unbatched = _prep(input, 3, "conv_transpose3d")
    x = input.unsqueeze(0) if unbatched else input
    n, cin = x.shape[0], x.shape[1]
    if weight.dim() != 5 or weight.shape[0] != cin:
        raise ValueError(f"conv_transpose3d: weight of shape {tuple(weight.shape)} does not "
                         f"match input with {cin} channels (expected [C_in, C_out/groups, kd, "
                         f"kh, kw])")
    if groups <= 0 or cin % groups:
        raise ValueError("conv_transpose3d: in_channels must be divisible by groups")
    s, p = _tup(stride, 3, "stride"), _tup(padding, 3, "padding")
    op, d = _tup(output_padding, 3, "output_padding"), _tup(dilation, 3, "dilation")
    if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
        raise ValueError("output padding must be smaller than either stride or dilation")
    k = tuple(weight.shape[2:])
    ins = list(x.shape[2:])
    outs = [(i - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
            for i, si, pi, di, ki, oi in zip(ins, s, p, d, k, op)]
    axes = []
    for o, i, ki, si, pi, di in zip(outs, ins, k, s, p, d):
        pos, cp, ci = _axis_windows(o, ki, si, pi, di, False)
        axes.append((pos[:i], cp[:i], ci[:i]))
    table, _, _ = _combine(axes, outs)  # [L_in, K] -> flat output index or -1
    L, K = table.shape
    cig = cin // groups
    coutg = weight.shape[1]
    m = int(np.prod(outs))
    idx = _C.tensor(np.where(table >= 0, table, m).reshape(-1).astype(np.int64))
    res = []
    for g in range(groups):
        wg = weight.narrow(0, g * cig, cig).reshape(cig, coutg * K)
        xg = x.narrow(1, g * cig, cig).reshape(n, cig, L)
        cols = wg.t().matmul(xg).reshape(n, coutg, K, L).transpose(2, 3).reshape(n, coutg, L * K)
        z = _C.zeros(n, coutg, m + 1, dtype=x.dtype).index_add(2, idx, cols)
        res.append(z.narrow(2, 0, m))
    y = (res[0] if groups == 1 else _C.cat(res, 1)).reshape(n, coutg * groups, *outs)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1, 1)
    return y.squeeze(0) if unbatched else y


__all__ += ["conv3d", "conv_transpose3d"]


# --- fractional max pooling --------------------------------------------------------------

def _frac_intervals(sample, size, out, k, dt):
    """PyTorch's pseudo-random window starts for one plane (computed in the input's float
    precision, as its kernel does)."""
    seq = np.zeros(out, dtype=np.int64)
    if out > 1:
        alpha = dt(size - k) / dt(out - 1)
        i = np.arange(out - 1, dtype=dt)
        seq[:-1] = ((i + dt(sample)) * alpha).astype(np.int64) - \
            np.int64(dt(dt(sample) * alpha))
    if out > 0:
        seq[-1] = size - k
    return seq


def _fractional(input, nsp, kernel_size, output_size, output_ratio, return_indices,
                _random_samples, who):
    unbatched = _prep(input, nsp, who)
    x = input.unsqueeze(0) if unbatched else input
    k = _tup(kernel_size, nsp, "kernel_size")
    ins = list(x.shape[2:])
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{who} requires specifying either an output_size or an "
                             f"output_ratio")
        ratio = _tup_f(output_ratio, nsp)
        outs = [int(i * r) for i, r in zip(ins, ratio)]
    else:
        outs = list(_tup(output_size, nsp, "output_size"))
    for i, o, ki in zip(ins, outs, k):
        if o + ki - 1 > i:
            raise ValueError(f"{who}(): pool size {ki} too large relative to input size {i} "
                             f"for output size {o}")
    n, c = x.shape[0], x.shape[1]
    if _random_samples is None:
        samples = _C.rand(n, c, nsp, dtype=x.dtype)
    else:
        samples = _random_samples
        if tuple(samples.shape) != (n, c, nsp):
            raise ValueError(f"{who}: expected _random_samples of shape {(n, c, nsp)}, got "
                             f"{tuple(samples.shape)}")
    sm = samples.detach().numpy()
    dt = np.float64 if x.dtype == _C.float64 else np.float32
    # PyTorch's sample order: [W, H] in 2-D, [T, H, W] in 3-D.
    order = [1, 0] if nsp == 2 else [0, 1, 2]
    tables = []
    for a in range(n):
        for b in range(c):
            axes = []
            for d in range(nsp):
                starts = _frac_intervals(sm[a, b, order[d]], ins[d], outs[d], k[d], dt)
                pos = starts[:, None] + np.arange(k[d])[None, :]
                axes.append((pos, None, None))
            axes = [(p_, np.ones(len(p_), np.int64), np.ones(len(p_), np.int64))
                    for p_, _, _ in axes]
            tables.append(_combine(axes, ins)[0])
    tab = np.stack(tables)  # [N*C, L, K]
    L, K = tab.shape[1], tab.shape[2]
    flat = x.reshape(n * c, -1)
    g = flat.gather(1, _C.tensor(tab.reshape(n * c, L * K))).reshape(n * c, L, K)
    vals = g.amax(-1).reshape(n, c, *outs)
    idx = _C.tensor(tab).gather(2, g.argmax(-1, keepdim=True)).reshape(n, c, *outs)
    if unbatched:
        vals, idx = vals.squeeze(0), idx.squeeze(0)
    return (vals, idx) if return_indices else vals


def _tup_f(v, n):
    return (float(v),) * n if isinstance(v, (int, float)) else tuple(float(i) for i in v)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """Fractional max pooling (Graham): ``kernel_size`` windows at pseudo-random
    positions that shrink the plane to ``output_size`` (or ``output_ratio`` of it)."""
    return _fractional(input, 2, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, "fractional_max_pool2d")


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """3-D fractional max pooling."""
    return _fractional(input, 3, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, "fractional_max_pool3d")


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool2d`` returning ``(values, indices)``."""
    return _fractional(input, 2, kernel_size, output_size, output_ratio, True,
                       _random_samples, "fractional_max_pool2d")


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool3d`` returning ``(values, indices)``."""
    return _fractional(input, 3, kernel_size, output_size, output_ratio, True,
                       _random_samples, "fractional_max_pool3d")


__all__ += ["fractional_max_pool2d", "fractional_max_pool3d",
            "fractional_max_pool2d_with_indices", "fractional_max_pool3d_with_indices"]

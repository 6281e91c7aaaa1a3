"""Spatial and distance functions of ``deepseek.nn.functional`` built from the core's ops:
``unfold``/``fold`` (im2col/col2im as ``index_select``/``index_add`` over precomputed
indices), ``conv_transpose1d/2d`` (a matmul then ``fold``), ``pixel_shuffle``,
``interpolate`` (separable nearest/linear), ``pdist``, ``local_response_norm``,
``lp_pool``, ``instance_norm``, ``bilinear`` and the alpha dropouts."""

import math

import numpy as np

from .. import _C
from .._C import functional as _C_F

__all__ = ["unfold", "fold", "conv_transpose1d", "conv_transpose2d", "pixel_shuffle",
           "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "pdist",
           "local_response_norm", "lp_pool1d", "lp_pool2d", "adaptive_avg_pool1d", "bilinear", "instance_norm", "alpha_dropout",
           "feature_alpha_dropout", "interpolate", "upsample", "upsample_nearest",
           "upsample_bilinear"]


def _tup(v, n, name):
    """``v`` as an ``n``-tuple of ints (an int or a 1-tuple is repeated); None stays None."""
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


def _im2col_index(hp, wp, k, d, s, oh, ow):
    ki = np.arange(k[0]).repeat(k[1])
    kj = np.tile(np.arange(k[1]), k[0])
    oi = np.arange(oh).repeat(ow)
    oj = np.tile(np.arange(ow), oh)
    rows = oi[None, :] * s[0] + ki[:, None] * d[0]
    cols = oj[None, :] * s[1] + kj[:, None] * d[1]
    return _C.tensor((rows * wp + cols).reshape(-1).astype(np.int64))


def _blocks(size, k, d, p, s):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extracts sliding local blocks (im2col): [N, C, H, W] -> [N, C * kh * kw, L]."""
    if input.dim() not in (3, 4):
        raise ValueError(f"Input Error: Only 3D or 4D input Tensors are supported "
                         f"(got {input.dim()}D)")
    batched = input.dim() == 4
    x = input if batched else input.unsqueeze(0)
    k, d = _tup(kernel_size, 2, "kernel_size"), _tup(dilation, 2, "dilation")
    p, s = _tup(padding, 2, "padding"), _tup(stride, 2, "stride")
    n, c, h, w = x.shape
    oh, ow = _blocks(h, k[0], d[0], p[0], s[0]), _blocks(w, k[1], d[1], p[1], s[1])
    if oh <= 0 or ow <= 0:
        raise ValueError(f"Given input with spatial size ({h}, {w}), kernel_size {k}, "
                         f"dilation {d}, padding {p}, calculated shape of the array of sliding "
                         f"blocks as ({oh}, {ow}), but its components must be at least one.")
    if p != (0, 0):
        x = _C_F.pad(x, [p[1], p[1], p[0], p[0]])
    hp, wp = h + 2 * p[0], w + 2 * p[1]
    idx = _im2col_index(hp, wp, k, d, s, oh, ow)
    out = x.reshape(n, c, hp * wp).index_select(2, idx).reshape(n, c * k[0] * k[1], oh * ow)
    return out if batched else out.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sums sliding local blocks into a tensor (col2im): [N, C * kh * kw, L] ->
    [N, C, H, W] with ``(H, W) = output_size``; the adjoint of ``unfold``."""
    if input.dim() not in (2, 3):
        raise ValueError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are "
                         f"supported (got {input.dim()}D)")
    batched = input.dim() == 3
    x = input if batched else input.unsqueeze(0)
    o = _tup(output_size, 2, "output_size")
    k, d = _tup(kernel_size, 2, "kernel_size"), _tup(dilation, 2, "dilation")
    p, s = _tup(padding, 2, "padding"), _tup(stride, 2, "stride")
    n, ck, L = x.shape
    kk = k[0] * k[1]
    if ck % kk:
        raise ValueError(f"Expected size of input's dimension 1 to be divisible by the product "
                         f"of kernel_size, but got input.size(1)={ck} and "
                         f"kernel_size={k}")
    oh, ow = _blocks(o[0], k[0], d[0], p[0], s[0]), _blocks(o[1], k[1], d[1], p[1], s[1])
    if oh * ow != L:
        raise ValueError(f"Given output_size={o}, kernel_size={k}, dilation={d}, padding={p}, "
                         f"stride={s}, expected size of input's dimension 2 to match the "
                         f"calculated number of sliding blocks {oh} * {ow} = {oh * ow}, but got "
                         f"input.size(2)={L}.")
    out = _col2im(x, o, k, d, p, s, oh, ow)
    return out if batched else out.squeeze(0)


def _col2im(x, o, k, d, p, s, oh, ow):
    n, ck, L = x.shape
    kk = k[0] * k[1]
    c = ck // kk
    hp, wp = o[0] + 2 * p[0], o[1] + 2 * p[1]
    idx = _im2col_index(hp, wp, k, d, s, oh, ow)
    out = _C.zeros(n, c, hp * wp, dtype=x.dtype).index_add(2, idx, x.reshape(n, c, kk * L))
    out = out.reshape(n, c, hp, wp)
    if p != (0, 0):
        out = out.narrow(2, p[0], o[0]).narrow(3, p[1], o[1])
    return out


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution (the gradient of ``conv2d`` with respect to its input);
    ``weight`` is [C_in, C_out / groups, kh, kw]."""
    if input.dim() not in (3, 4):
        raise ValueError(f"conv_transpose2d: Expected 3D (unbatched) or 4D (batched) input, but "
                         f"got input of size: {tuple(input.shape)}")
    batched = input.dim() == 4
    x = input if batched else input.unsqueeze(0)
    s, p = _tup(stride, 2, "stride"), _tup(padding, 2, "padding")
    op, d = _tup(output_padding, 2, "output_padding"), _tup(dilation, 2, "dilation")
    n, cin, h, w = x.shape
    if weight.dim() != 4 or weight.shape[0] != cin:
        raise ValueError(f"conv_transpose2d: weight of shape {tuple(weight.shape)} does not "
                         f"match input with {cin} channels (expected [C_in, C_out/groups, kh, kw])")
    if cin % groups:
        raise ValueError("conv_transpose2d: in_channels must be divisible by groups")
    if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
        raise ValueError("output padding must be smaller than either stride or dilation")
    cog, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    oh = (h - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
    ow = (w - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1
    cig = cin // groups
    outs = []
    for g in range(groups):
        wg = weight.narrow(0, g * cig, cig).reshape(cig, cog * kh * kw)
        xg = x.narrow(1, g * cig, cig).reshape(n, cig, h * w)
        cols = wg.t().matmul(xg)  # [N, cog*kh*kw, H*W]
        outs.append(_col2im(cols, (oh, ow), (kh, kw), d, p, s, h, w))
    out = outs[0] if groups == 1 else _C.cat(outs, 1)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out if batched else out.squeeze(0)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 1-D convolution; ``weight`` is [C_in, C_out / groups, k]."""
    if input.dim() not in (2, 3):
        raise ValueError(f"conv_transpose1d: Expected 2D (unbatched) or 3D (batched) input, but "
                         f"got input of size: {tuple(input.shape)}")
    f = lambda v: (1, _tup(v, 1, "arg")[0])  # noqa: E731
    g0 = lambda v: (0, _tup(v, 1, "arg")[0])  # noqa: E731
    y = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, f(stride),
                         g0(padding), g0(output_padding), groups, f(dilation))
    return y.squeeze(-2)


def pixel_shuffle(input, upscale_factor):
    """[*, C * r^2, H, W] -> [*, C, H * r, W * r]."""
    r = int(upscale_factor)
    if input.dim() < 3:
        raise ValueError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                         f"input with {input.dim()} dimension(s)")
    *b, c, h, w = input.shape
    if r <= 0 or c % (r * r):
        raise ValueError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                         f"divisible by the square of upscale_factor, but input.size(-3)={c} is "
                         f"not divisible by {r * r}")
    x = input.reshape(-1, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(*b, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """[*, C, H * r, W * r] -> [*, C * r^2, H, W]."""
    r = int(downscale_factor)
    if input.dim() < 3:
        raise ValueError(f"pixel_unshuffle expects input to have at least 3 dimensions, but "
                         f"got input with {input.dim()} dimension(s)")
    *b, c, h, w = input.shape
    if r <= 0 or h % r or w % r:
        raise ValueError(f"pixel_unshuffle expects height and width to be divisible by "
                         f"downscale_factor, but got {h} x {w} and {r}")
    x = input.reshape(-1, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(*b, c * r * r, h // r, w // r)


def channel_shuffle(input, groups):
    """[N, C, *] -> channels regrouped: ``C = g * k`` viewed as [g, k], transposed."""
    if input.dim() < 3:
        raise ValueError(f"channel_shuffle expects input to have at least 3 dimensions, but got "
                         f"input with {input.dim()} dimension(s)")
    n, c = input.shape[0], input.shape[1]
    if groups <= 0 or c % groups:
        raise ValueError(f"Number of channels must be divisible by groups. Got {c} channels "
                         f"and {groups} groups.")
    rest = list(input.shape[2:])
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


native_channel_shuffle = channel_shuffle


def pdist(input, p=2.0):
    """The ``p``-norm distances between the rows of an [N, M] input, for each pair i < j
    (row-major), as a vector of N * (N - 1) / 2."""
    if input.dim() != 2:
        raise ValueError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    if p < 0:
        raise ValueError("pdist only supports non-negative p values")
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    a = input.index_select(0, _C.tensor(i.astype(np.int64)))
    b = input.index_select(0, _C.tensor(j.astype(np.int64)))
    return (a - b).norm(p, 1)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Normalises over neighbouring channels: ``x / (k + alpha * mean_{size}(x^2))^beta``."""
    if input.dim() < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.dim()} "
                         f"dimensions)")
    if input.numel() == 0:
        return input
    n, c = input.shape[0], input.shape[1]
    div = (input * input).reshape(n, 1, c, -1)
    div = _C_F.pad(div, [0, 0, size // 2, (size - 1) // 2])
    div = _C_F.avg_pool2d(div, (size, 1), stride=1).squeeze(1).reshape(*input.shape)
    return input / (div * alpha + k) ** beta


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling: ``(sum over the window of x^p)^(1/p)``."""
    kh, kw = _tup(kernel_size, 2, "kernel_size")
    out = _C_F.avg_pool2d(input ** norm_type, (kh, kw), stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu() * (kh * kw)) ** (1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over the last dimension."""
    k = _tup(kernel_size, 1, "kernel_size")[0]
    s = None if stride is None else (1, _tup(stride, 1, "stride")[0])
    return lp_pool2d(input.unsqueeze(-2), norm_type, (1, k), s, ceil_mode).squeeze(-2)


def adaptive_avg_pool1d(input, output_size):
    """Adaptive average pooling over the last dimension to ``output_size``."""
    o = _tup(output_size, 1, "output_size")[0]
    return _C_F.adaptive_avg_pool2d(input.unsqueeze(-2), (1, o)).squeeze(-2)


def bilinear(input1, input2, weight, bias=None):
    """``y_o = x1^T A_o x2 + b_o`` with ``weight`` [out, in1, in2]."""
    o, i1, i2 = weight.shape
    if input1.shape[-1] != i1 or input2.shape[-1] != i2:
        raise ValueError(f"bilinear: input1 size {input1.shape[-1]} / input2 size "
                         f"{input2.shape[-1]} do not match weight {tuple(weight.shape)}")
    lead = list(input1.shape[:-1])
    x1 = input1.reshape(-1, i1)
    x2 = input2.reshape(-1, i2)
    t = x1.matmul(weight.permute(1, 0, 2).reshape(i1, o * i2)).reshape(-1, o, i2)
    y = (t * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, o)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalises each channel of each sample over its spatial dimensions; with running
    statistics given they are updated (``use_input_stats``) or used instead."""
    if input.dim() < 3:
        raise ValueError(f"instance_norm: expected an input of at least 3 dimensions "
                         f"[N, C, *], got {tuple(input.shape)}")
    dims = tuple(range(2, input.dim()))
    shape = [1, input.shape[1]] + [1] * (input.dim() - 2)
    if use_input_stats:
        mean = input.mean(dims, keepdim=True)
        var = input.var(dims, keepdim=True, correction=0)
        if running_mean is not None or running_var is not None:
            m = 1 if input.dim() == 2 else math.prod(input.shape[2:])
            with _no_grad():
                if running_mean is not None:
                    bm = mean.detach().reshape(input.shape[0], -1).mean(0)
                    running_mean.copy_(running_mean * (1 - momentum) + bm * momentum)
                if running_var is not None:
                    bv = var.detach().reshape(input.shape[0], -1).mean(0) * (m / max(m - 1, 1))
                    running_var.copy_(running_var * (1 - momentum) + bv * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("Expected running_mean and running_var to be defined when "
                             "use_input_stats is false")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (input - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _no_grad():
    from .._grad_mode import no_grad

    return no_grad()


_ALPHA = 1.7580993408473766


def _alpha_dropout(x, p, training, feature, who):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    shape = list(x.shape) if not feature else list(x.shape[:2]) + [1] * (x.dim() - 2)
    noise = (_C.rand(*shape, dtype=x.dtype) >= p).to(x.dtype)
    a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    b = (noise - 1) * (_ALPHA * a) + _ALPHA * a * p
    return x * (noise * a) + b


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout that keeps SELU's self-normalising mean and variance: dropped elements are set
    to SELU's negative saturation value and the result is affinely rescaled."""
    return _alpha_dropout(input, p, training, False, "alpha_dropout")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """``alpha_dropout`` of whole channels."""
    return _alpha_dropout(input, p, training, True, "feature_alpha_dropout")


def _src_index(out, inp, scale, mode, align_corners):
    dst = np.arange(out, dtype=np.float64)
    if mode == "nearest":
        return np.minimum(np.floor(dst * scale).astype(np.int64), inp - 1), None
    if mode == "nearest-exact":
        return np.minimum(np.floor((dst + 0.5) * scale).astype(np.int64), inp - 1), None
    if align_corners:
        src = dst * ((inp - 1) / (out - 1) if out > 1 else 0.0)
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), inp - 1)
    i1 = np.minimum(i0 + 1, inp - 1)
    lam = src - i0
    return (i0, i1), lam


_MODES = {"nearest": None, "nearest-exact": None, "linear": 3, "bilinear": 4, "trilinear": 5,
          "bicubic": 4, "area": None}
_CUBIC_A = -0.75


def _cubic_weights(t):
    """PyTorch's cubic convolution weights (A = -0.75) for the 4 taps around ``t``."""
    a = _CUBIC_A

    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resizes the spatial dimensions (all after the first two) to ``size`` or by
    ``scale_factor``: modes ``nearest``, ``nearest-exact``, ``linear`` (3-D input),
    ``bilinear`` and ``bicubic`` (4-D), ``trilinear`` (5-D), applied one axis at a time,
    and ``area`` (adaptive average pooling)."""
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (supported: "
                                  f"{', '.join(_MODES)})")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if _MODES[mode] is not None and input.dim() != _MODES[mode]:
        raise ValueError(f"Got {input.dim()}D input, but {mode} mode needs "
                         f"{_MODES[mode]}D input")
    nsp = input.dim() - 2
    if nsp < 1:
        raise ValueError(f"interpolate: expected at least a 3-D input [N, C, ...], got "
                         f"{input.dim()}D")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    ins = list(input.shape[2:])
    if size is not None:
        outs = list(_tup(size, nsp, "size"))
        scales = [i / o for i, o in zip(ins, outs)]
    else:
        sf = [float(scale_factor)] * nsp if isinstance(scale_factor, (int, float)) \
            else [float(v) for v in scale_factor]
        if len(sf) != nsp:
            raise ValueError(f"scale_factor shape must match input shape. Input is {nsp}D, "
                             f"scale_factor size is {len(sf)}")
        outs = [int(math.floor(i * f)) for i, f in zip(ins, sf)]
        scales = [i / o for i, o in zip(ins, outs)] if recompute_scale_factor \
            else [1.0 / f for f in sf]
    if mode == "area":
        if nsp == 1:
            return adaptive_avg_pool1d(input, outs[0])
        if nsp == 2:
            return _C_F.adaptive_avg_pool2d(input, outs)
        from ._pooling import adaptive_avg_pool3d

        return adaptive_avg_pool3d(input, outs)
    y = input
    for ax, (i, o, sc) in enumerate(zip(ins, outs, scales)):
        dim = ax + 2
        if mode == "bicubic":
            dst = np.arange(o, dtype=np.float64)
            if align_corners:
                src = dst * ((i - 1) / (o - 1) if o > 1 else 0.0)
            else:
                src = (dst + 0.5) * sc - 0.5
            x0 = np.floor(src).astype(np.int64)
            t = src - x0
            shape = [1] * y.dim()
            shape[dim] = o
            acc = None
            for k, wk in zip(range(-1, 3), _cubic_weights(t)):
                taps = y.index_select(dim, _C.tensor(np.clip(x0 + k, 0, i - 1)))
                term = taps * _C.tensor(wk.reshape(shape)).to(y.dtype)
                acc = term if acc is None else acc + term
            y = acc
            continue
        idx, lam = _src_index(o, i, sc, "nearest" if mode == "nearest" else
                              ("nearest-exact" if mode == "nearest-exact" else "linear"),
                              bool(align_corners))
        if lam is None:
            y = y.index_select(dim, _C.tensor(idx))
            continue
        i0, i1 = idx
        shape = [1] * y.dim()
        shape[dim] = o
        w1 = _C.tensor(lam.reshape(shape)).to(y.dtype)
        a = y.index_select(dim, _C.tensor(i0))
        b = y.index_select(dim, _C.tensor(i1))
        y = a + (b - a) * w1
    return y


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of ``interpolate``."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """``interpolate(..., mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """``interpolate(..., mode='bilinear', align_corners=True)``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _pad_index(n, lo, hi, mode):
    i = np.arange(-lo, n + hi)
    if mode == "reflect":
        if lo >= n or hi >= n:
            raise ValueError(f"Argument #4: Padding size should be less than the corresponding "
                             f"input dimension, but got: padding ({lo}, {hi}) at dimension "
                             f"of size {n}")
        i = np.abs(i)
        i = np.where(i > n - 1, 2 * (n - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, n - 1)
    else:  # circular
        if lo > n or hi > n:
            raise ValueError("Padding value causes wrapping around more than once.")
        i = np.mod(i, n)
    return _C.tensor(i.astype(np.int64))


def pad(input, pad, mode="constant", value=None):
    """Pads ``input``: ``pad`` lists (left, right) pairs from the last dimension backwards.
    ``mode`` is ``constant`` (with ``value``, default 0), ``reflect``, ``replicate`` or
    ``circular``; the non-constant modes pad the last 1, 2 or 3 dimensions of a batched or
    unbatched input and are gathers, so gradients flow back to the mirrored elements."""
    if mode == "constant":
        return _C_F.pad(input, pad, mode, value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    pad = [int(p) for p in pad]
    if len(pad) % 2 or not 2 <= len(pad) <= 6:
        raise ValueError(f"Padding length must be divisible by 2 and at most 6 for mode "
                         f"{mode!r}, got {len(pad)}")
    k = len(pad) // 2
    if input.dim() not in (k + 1, k + 2):
        raise ValueError(f"Only {k + 1}D or {k + 2}D input Tensors are supported for a "
                         f"{len(pad)}-element pad in mode {mode!r} (got {input.dim()}D)")
    if any(p < 0 for p in pad):
        raise NotImplementedError(f"pad: negative padding is not supported in mode {mode!r}")
    y = input
    for j in range(k):
        dim = input.dim() - 1 - j
        lo, hi = pad[2 * j], pad[2 * j + 1]
        if lo or hi:
            y = y.index_select(dim, _pad_index(y.shape[dim], lo, hi, mode))
    return y


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                  padding_idx=None):
    """Sums, averages or takes the maximum of the embeddings of each bag: rows of a 2-D
    ``input``, or the segments of a 1-D ``input`` starting at ``offsets``; entries equal to
    ``padding_idx`` are left out; ``per_sample_weights`` scale the rows (``mode='sum'``)."""
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: max_norm, scale_grad_by_freq and sparse are "
                                  "not supported")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' (got "
                                  f"mode='{mode}'). Please open a feature request on GitHub.")
    idx = input.detach().numpy().astype(np.int64)
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences.")
        b, L = idx.shape
        bag = np.repeat(np.arange(b), L)
        flat = idx.reshape(-1)
        psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    elif input.dim() == 1:
        if offsets is None or offsets.dim() != 1:
            raise ValueError("offsets has to be a 1D Tensor but got None" if offsets is None
                             else "offsets has to be a 1D Tensor")
        off = offsets.detach().numpy().astype(np.int64)
        flat = idx
        psw = per_sample_weights
        if include_last_offset:
            flat = idx[:off[-1]]
            if psw is not None:
                psw = psw.narrow(0, 0, len(flat))
            off = off[:-1]
        b = len(off)
        bag = np.zeros(len(flat), dtype=np.int64)
        for k in range(1, b):
            bag[off[k]:] += 1
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.dim()}")
    keep = np.ones(len(flat), dtype=bool) if padding_idx is None else flat != (
        padding_idx % weight.shape[0])
    d = weight.shape[1]
    sel = _C.tensor(np.nonzero(keep)[0].astype(np.int64))
    rows = weight.index_select(0, _C.tensor(flat[keep]))
    bag_k = bag[keep]
    if psw is not None:
        rows = rows * psw.index_select(0, sel).unsqueeze(1)
    if mode == "max":
        counts = np.bincount(bag_k, minlength=b)
        width = max(int(counts.max()) if len(counts) else 0, 1)
        pos = np.zeros(len(bag_k), dtype=np.int64)
        seen = np.zeros(b, dtype=np.int64)
        for j, g in enumerate(bag_k):
            pos[j] = g * width + seen[g]
            seen[g] += 1
        big = _C.full((b * width, d), float("-inf"), dtype=weight.dtype)
        big = big.scatter(0, _C.tensor(np.repeat(pos[:, None], d, 1)), rows)
        out = big.reshape(b, width, d).amax(1)
        empty = _C.tensor(counts == 0).unsqueeze(1)
        return out.masked_fill(empty, 0.0)
    out = _C.zeros(b, d, dtype=weight.dtype).index_add(0, _C.tensor(bag_k), rows)
    if mode == "mean":
        counts = np.bincount(bag_k, minlength=b).astype(np.float64)
        out = out / _C.tensor(np.maximum(counts, 1.0)).to(weight.dtype).unsqueeze(1)
    return out


__all__ += ["pad", "embedding_bag"]


def affine_grid(theta, size, align_corners=None):
    """Sampling grids for ``grid_sample`` from affine matrices: ``theta`` [N, 2, 3] with
    ``size`` [N, C, H, W] gives [N, H, W, 2]; [N, 3, 4] with [N, C, D, H, W] gives
    [N, D, H, W, 3] (coordinates in [-1, 1], x first)."""
    ac = bool(align_corners)
    size = [int(v) for v in size]
    nsp = len(size) - 2
    if nsp not in (2, 3):
        raise ValueError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine "
                         f"transforms, respectively. Got size {size}.")
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (nsp, nsp + 1) or \
            theta.shape[0] != size[0]:
        raise ValueError(f"Expected a batch of {nsp}D affine matrices of shape Nx{nsp}x"
                         f"{nsp + 1} for size {size}. Got {list(theta.shape)}.")
    if min(size[2:]) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")

    def lin(n):
        if n == 1:
            return np.zeros(1)
        v = np.linspace(-1.0, 1.0, n)
        return v if ac else v * (n - 1) / n

    axes = [lin(n) for n in reversed(size[2:])]  # x (W), y (H), [z (D)]
    grids = np.meshgrid(*axes[::-1], indexing="ij")[::-1]  # each [D?, H, W]
    base = np.stack(list(grids) + [np.ones_like(grids[0])], -1).reshape(-1, nsp + 1)
    b = _C.tensor(base).to(theta.dtype)
    out = b.unsqueeze(0).matmul(theta.transpose(1, 2))  # [N, L, nsp]
    return out.reshape(size[0], *size[2:], nsp)


def _unnormalize(coord, n, ac):
    return (coord + 1) / 2 * (n - 1) if ac else ((coord + 1) * n - 1) / 2


def _reflect(x, lo2, hi2):
    """Reflects ``x`` into [lo2 / 2, hi2 / 2] (PyTorch's reflect_coordinates)."""
    if lo2 == hi2:
        return _C.zeros_like(x)
    mn = lo2 / 2
    span = (hi2 - lo2) / 2
    x = (x - mn).abs()
    flips = (x / span).floor()
    extra = x - flips * span
    even = (flips.remainder(2) == 0)
    return _C.where(even, extra + mn, span - extra + mn)


def _src_coord(coord, n, padding_mode, ac):
    x = _unnormalize(coord, n, ac)
    if padding_mode == "border":
        x = x.clamp(0, n - 1)
    elif padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (n - 1)) if ac else _reflect(x, -1, 2 * n - 1)
        x = x.clamp(0, n - 1)
    return x


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Samples [N, C, H, W] ``input`` at the [-1, 1] coordinates of ``grid`` [N, Ho, Wo, 2]
    (x, y): ``mode`` bilinear or nearest, ``padding_mode`` zeros, border or reflection.
    Differentiable with respect to the input and the grid."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    if mode == "bicubic" or input.dim() != 4:
        raise NotImplementedError("grid_sample: only 4-D inputs with bilinear or nearest "
                                  "sampling are supported")
    if grid.dim() != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample(): expected grid of shape [N, H_out, W_out, 2] for "
                         f"input {list(input.shape)}, got {list(grid.shape)}")
    ac = bool(align_corners)
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]
    x = _src_coord(grid.select(3, 0), w, padding_mode, ac).reshape(n, ho * wo)
    y = _src_coord(grid.select(3, 1), h, padding_mode, ac).reshape(n, ho * wo)
    flat = input.reshape(n, c, h * w)

    def tap(xi, yi):
        valid = (xi >= 0).logical_and(xi <= w - 1).logical_and(yi >= 0) \
            .logical_and(yi <= h - 1)
        xc, yc = xi.clamp(0, w - 1), yi.clamp(0, h - 1)
        idx = (yc * w + xc).to(_C.int64).unsqueeze(1).expand(n, c, ho * wo)
        return flat.gather(2, idx), valid.to(input.dtype).unsqueeze(1)

    if mode == "nearest":
        from .._reduce_ops import _round_half_even

        v, m = tap(_round_half_even(x.detach()), _round_half_even(y.detach()))
        return (v * m).reshape(n, c, ho, wo)
    x0, y0 = x.detach().floor(), y.detach().floor()
    wx1, wy1 = (x - x0).unsqueeze(1), (y - y0).unsqueeze(1)
    wx0, wy0 = 1 - wx1, 1 - wy1
    out = 0
    for xi, yi, wgt in ((x0, y0, wx0 * wy0), (x0 + 1, y0, wx1 * wy0),
                        (x0, y0 + 1, wx0 * wy1), (x0 + 1, y0 + 1, wx1 * wy1)):
        v, m = tap(xi, yi)
        out = out + v * m * wgt
    return out.reshape(n, c, ho, wo)


__all__ += ["affine_grid", "grid_sample"]

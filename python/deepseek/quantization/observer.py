"""Observers: modules that watch the values flowing through a model during calibration and
choose quantization parameters from them (``torch.ao.quantization.observer``).

``MinMaxObserver``, ``MovingAverageMinMaxObserver``, ``PerChannelMinMaxObserver``,
``MovingAveragePerChannelMinMaxObserver`` and ``HistogramObserver`` compute their scales and
zero points with PyTorch's formulas in float32 (the histogram observer's L2-error search
included), so a deepseek model calibrated on the same data gets the same parameters.

Unlike PyTorch, ``calculate_qparams`` on an observer that saw no data, or only NaN/infinite
values, raises instead of warning and returning scale 1.0.
"""

import numpy as np

from ..nn.module import Module
from ._types import (is_per_channel, is_symmetric, per_channel_affine, per_channel_symmetric,
                     per_tensor_affine, per_tensor_symmetric, qint8, quint8)

__all__ = [
    "ObserverBase", "MinMaxObserver", "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver", "HistogramObserver", "PlaceholderObserver",
    "NoopObserver", "default_observer", "default_weight_observer",
    "default_per_channel_weight_observer", "default_histogram_observer",
    "default_dynamic_quant_observer",
]

_EPS = float(np.finfo(np.float32).eps)


class _PartialWrapper:
    """An observer constructor with some arguments bound (``Observer.with_args(...)``)."""

    def __init__(self, cls, **kwargs):
        self.cls = cls
        self.kwargs = kwargs

    def __call__(self, **kwargs):
        return self.cls(**{**self.kwargs, **kwargs})

    def with_args(self, **kwargs):
        return _PartialWrapper(self.cls, **{**self.kwargs, **kwargs})

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"functools.partial({self.cls.__name__}, {args})"


def _to_numpy(x):
    """The values of a deepseek tensor as a float32 numpy array (no autograd)."""
    if hasattr(x, "detach"):
        x = x.detach()
    a = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    return np.asarray(a, dtype=np.float32)


class ObserverBase(Module):
    """Base class of observers: ``forward(x)`` records statistics and returns ``x``."""

    def __init__(self, dtype=quint8, is_dynamic=False):
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic

    @classmethod
    def with_args(cls, **kwargs):
        return _PartialWrapper(cls, **kwargs)

    def calculate_qparams(self):
        raise NotImplementedError


class UniformQuantizationObserverBase(ObserverBase):
    """Shared range handling: ``quant_min``/``quant_max`` (``reduce_range`` drops one bit),
    the scheme and the scale/zero-point formulas (``_calculate_qparams``)."""

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        if dtype not in (qint8, quint8):
            raise ValueError(f"{type(self).__name__}: dtype must be deepseek.qint8 or "
                             f"deepseek.quint8, got {dtype!r}")
        if qscheme not in (per_tensor_affine, per_tensor_symmetric, per_channel_affine,
                           per_channel_symmetric):
            raise ValueError(f"{type(self).__name__}: unsupported qscheme {qscheme!r}")
        self.qscheme = qscheme
        self.reduce_range = reduce_range
        self.eps = np.float32(eps)
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        if self.has_customized_qrange:
            if not quant_min <= 0 <= quant_max:
                raise ValueError(f"{type(self).__name__}: the range [quant_min, quant_max] = "
                                 f"[{quant_min}, {quant_max}] must include 0")
            if quant_max - quant_min > dtype.qmax - dtype.qmin:
                raise ValueError(f"{type(self).__name__}: [{quant_min}, {quant_max}] does not "
                                 f"fit in {dtype!r}")
            self.quant_min, self.quant_max = int(quant_min), int(quant_max)
            if reduce_range:  # PyTorch halves a custom range too
                self.quant_min, self.quant_max = self.quant_min // 2, self.quant_max // 2
        else:
            lo, hi = dtype.qmin, dtype.qmax
            if reduce_range:
                lo, hi = lo // 2, hi // 2
            self.quant_min, self.quant_max = lo, hi

    def _calculate_qparams(self, min_val, max_val):
        """PyTorch's ``_calculate_qparams`` in float32: scale and zero point for each entry of
        ``min_val``/``max_val`` (numpy arrays)."""
        min_val = np.asarray(min_val, dtype=np.float32)
        max_val = np.asarray(max_val, dtype=np.float32)
        qmin, qmax = self.quant_min, self.quant_max
        min_neg = np.minimum(min_val, np.float32(0))
        max_pos = np.maximum(max_val, np.float32(0))
        if is_symmetric(self.qscheme):
            max_pos = np.maximum(-min_neg, max_pos)
            scale = (max_pos / np.float32(float(qmax - qmin) / 2)).astype(np.float32)
            scale = np.maximum(scale, self.eps)
            if self.dtype is quint8:
                zp_val = (qmin + qmax) // 2 if self.has_customized_qrange else 128
            else:
                zp_val = 0
            zero_point = np.full(scale.shape, zp_val, dtype=np.int64)
        else:
            scale = ((max_pos - min_neg) / np.float32(float(qmax - qmin))).astype(np.float32)
            scale = np.maximum(scale, self.eps)
            zero_point = qmin - np.round(min_neg / scale).astype(np.int64)
            zero_point = np.clip(zero_point, qmin, qmax)
        return np.atleast_1d(scale).astype(np.float32), np.atleast_1d(zero_point).astype(np.int64)

    def _check_seen(self, min_val, max_val, what="calibration data"):
        if np.any(np.isinf(min_val)) or np.any(np.isinf(max_val)):
            raise RuntimeError(f"{type(self).__name__}: no {what} was observed; run the "
                               "prepared model on calibration inputs before convert()")

    def qparams(self):
        """``(scale, zero_point)`` as Python numbers (per-tensor observers)."""
        s, z = self.calculate_qparams()
        return float(s[0]), int(z[0])


def _finite_min_max(a, name):
    if a.size and not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)][0]
        raise ValueError(f"{name}: the observed tensor holds a non-finite value ({bad}); "
                         "cannot choose quantization parameters")
    return np.float32(a.min()), np.float32(a.max())


class MinMaxObserver(UniformQuantizationObserverBase):
    """The running minimum and maximum of every value seen (``torch.ao.quantization.
    MinMaxObserver``)."""

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):
        if is_per_channel(qscheme):
            raise ValueError("MinMaxObserver is per tensor; use PerChannelMinMaxObserver for "
                             f"{qscheme!r}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic)
        self.min_val = np.float32(np.inf)
        self.max_val = np.float32(-np.inf)

    def forward(self, x_orig):
        a = _to_numpy(x_orig)
        if a.size == 0:
            return x_orig
        lo, hi = _finite_min_max(a, type(self).__name__)
        self.min_val = np.minimum(self.min_val, lo)
        self.max_val = np.maximum(self.max_val, hi)
        return x_orig

    def calculate_qparams(self):
        self._check_seen(self.min_val, self.max_val)
        return self._calculate_qparams(self.min_val, self.max_val)

    def reset_min_max_vals(self):
        self.min_val = np.float32(np.inf)
        self.max_val = np.float32(-np.inf)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


class MovingAverageMinMaxObserver(MinMaxObserver):
    """An exponential moving average of each batch's min and max (``averaging_constant``
    0.01 by default), the first batch taken as is."""

    def __init__(self, averaging_constant=0.01, dtype=quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, eps=_EPS,
                 is_dynamic=False, **kwargs):
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError("MovingAverageMinMaxObserver: averaging_constant must be in (0, 1], "
                             f"got {averaging_constant}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic)
        self.averaging_constant = averaging_constant

    def forward(self, x_orig):
        a = _to_numpy(x_orig)
        if a.size == 0:
            return x_orig
        lo, hi = _finite_min_max(a, type(self).__name__)
        if np.isinf(self.min_val) and np.isinf(self.max_val):
            self.min_val, self.max_val = lo, hi
        else:
            c = np.float32(self.averaging_constant)
            self.min_val = np.float32(self.min_val + c * (lo - self.min_val))
            self.max_val = np.float32(self.max_val + c * (hi - self.max_val))
        return x_orig


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Min and max of each slice along ``ch_axis`` (the weights' output channels): one scale
    and zero point per channel."""

    def __init__(self, ch_axis=0, dtype=quint8, qscheme=per_channel_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):
        if not is_per_channel(qscheme):
            raise ValueError(f"{type(self).__name__} needs a per-channel qscheme, got "
                             f"{qscheme!r}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic)
        self.ch_axis = ch_axis
        self.min_val = None
        self.max_val = None

    def _batch_min_max(self, x_orig):
        a = _to_numpy(x_orig)
        if a.ndim == 0:
            raise ValueError(f"{type(self).__name__}: cannot observe a 0-d tensor per channel")
        axis = self.ch_axis % a.ndim
        rows = np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
        if rows.size and not np.all(np.isfinite(rows)):
            _finite_min_max(rows, type(self).__name__)
        return rows.min(axis=1).astype(np.float32), rows.max(axis=1).astype(np.float32)

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        lo, hi = self._batch_min_max(x_orig)
        if self.min_val is None or self.min_val.shape != lo.shape:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = np.minimum(self.min_val, lo)
            self.max_val = np.maximum(self.max_val, hi)
        return x_orig

    def calculate_qparams(self):
        if self.min_val is None:
            self._check_seen(np.float32(np.inf), np.float32(-np.inf), "weight or activation")
        return self._calculate_qparams(self.min_val, self.max_val)

    def reset_min_max_vals(self):
        self.min_val = None
        self.max_val = None

    def extra_repr(self):
        return f"ch_axis={self.ch_axis}"


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel moving averages of min and max."""

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=quint8,
                 qscheme=per_channel_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):
        super().__init__(ch_axis, dtype, qscheme, reduce_range, quant_min, quant_max, eps,
                         is_dynamic)
        self.averaging_constant = averaging_constant

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        lo, hi = self._batch_min_max(x_orig)
        if self.min_val is None or self.min_val.shape != lo.shape:
            self.min_val, self.max_val = lo, hi
        else:
            c = np.float32(self.averaging_constant)
            self.min_val = (self.min_val + c * (lo - self.min_val)).astype(np.float32)
            self.max_val = (self.max_val + c * (hi - self.max_val)).astype(np.float32)
        return x_orig


def _histc(a, bins, lo, hi):
    """``torch.histc(a, bins, min=lo, max=hi)`` in float32 (values outside are dropped; the
    maximum lands in the last bin)."""
    lo, hi = np.float32(lo), np.float32(hi)
    if lo == hi:
        lo, hi = lo - np.float32(1), hi + np.float32(1)
    a = a[(a >= lo) & (a <= hi)]
    pos = ((a - lo) / (hi - lo) * np.float32(bins)).astype(np.int64)
    pos = np.clip(pos, 0, bins - 1)
    return np.bincount(pos, minlength=bins)[:bins].astype(np.float32)


class HistogramObserver(UniformQuantizationObserverBase):
    """A running histogram (``bins`` = 2048) of every value seen, widened as the range grows;
    ``calculate_qparams`` searches the histogram for the clipping range [min, max] that
    minimizes the L2 quantization error (PyTorch's ``_non_linear_param_search``), which cuts
    off outliers. PyTorch's default for activations on the x86 engine."""

    def __init__(self, bins=2048, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=_EPS, is_dynamic=False, **kwargs):
        if is_per_channel(qscheme):
            raise ValueError("HistogramObserver supports only per-tensor schemes")
        if is_dynamic:
            raise ValueError("HistogramObserver does not support dynamic quantization")
        if bins < 1:
            raise ValueError(f"HistogramObserver: bins must be positive, got {bins}")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic)
        self.bins = bins
        self.histogram = np.zeros(bins, dtype=np.float32)
        self.min_val = np.float32(np.inf)
        self.max_val = np.float32(-np.inf)
        self.dst_nbins = 256
        self.upsample_rate = 16

    def _upscale_histogram(self, hist, omin, omax, umin, umax):
        r = self.upsample_rate
        hist = np.repeat(hist, r) / np.float32(r)
        bin_size = np.float32((omax - omin) / np.float32(self.bins * r))
        mids = np.linspace(omin, omax, self.bins * r + 1, dtype=np.float32)[:-1] \
            + np.float32(0.5) * bin_size
        bounds = np.linspace(umin, umax, self.bins + 1, dtype=np.float32)
        idx = np.searchsorted(bounds, mids, side="right") - 1
        idx = np.clip(idx, 0, self.bins - 1)
        return np.bincount(idx, weights=hist, minlength=self.bins).astype(np.float32)

    def _combine_histograms(self, ohist, omin, omax, uhist, umin, umax):
        if umin == omin and umax == omax:
            return ohist + uhist
        if omin == omax:
            return _histc(np.array([omin], np.float32), self.bins, umin, umax) * ohist.sum() \
                + uhist
        return uhist + self._upscale_histogram(ohist, omin, omax, umin, umax)

    def forward(self, x_orig):
        a = _to_numpy(x_orig).ravel()
        if a.size == 0:
            return x_orig
        if np.any(np.isnan(a)):
            _finite_min_max(a, "HistogramObserver")
        a = a[np.isfinite(a)]  # PyTorch drops ±inf with a warning
        if a.size == 0:
            return x_orig
        lo, hi = np.float32(a.min()), np.float32(a.max())
        if np.isinf(self.min_val) or np.isinf(self.max_val):
            self.min_val, self.max_val = lo, hi
            self.histogram = _histc(a, self.bins, lo, hi)
            return x_orig
        new_min = np.minimum(self.min_val, lo)
        new_max = np.maximum(self.max_val, hi)
        update = _histc(a, self.bins, new_min, new_max)
        if new_min == self.min_val and new_max == self.max_val:
            self.histogram = self.histogram + update
        else:
            self.histogram = self._combine_histograms(self.histogram, self.min_val,
                                                      self.max_val, update, new_min, new_max)
            self.min_val, self.max_val = new_min, new_max
        return x_orig

    def _compute_quantization_error(self, start, end):
        bin_width = (float(self.max_val) - float(self.min_val)) / self.bins
        dst_w = bin_width * (end - start + 1) / self.dst_nbins
        if dst_w == 0.0:
            return 0.0
        src = np.arange(self.bins, dtype=np.float32)
        begin = ((src - start) * bin_width).astype(np.float32)
        endp = begin + np.float32(bin_width)
        dst_w32 = np.float32(dst_w)
        db = np.clip(np.floor(begin / dst_w32), 0, self.dst_nbins - 1)
        db_center = (db + np.float32(0.5)) * dst_w32
        de = np.clip(np.floor(endp / dst_w32), 0, self.dst_nbins - 1)
        density = self.histogram / np.float32(bin_width)

        def norm(b, e):
            return density * ((e * e * e - b * b * b) / np.float32(3))

        total = norm(begin - db_center, np.full(self.bins, dst_w32 / 2, np.float32))
        total = total + (de - db - 1) * norm(np.float32(-dst_w / 2), np.float32(dst_w / 2))
        de_center = de * dst_w32 + dst_w32 / 2
        total = total + norm(np.float32(-dst_w / 2), endp - de_center)
        return float(total.astype(np.float32).sum(dtype=np.float32))

    def _non_linear_param_search(self):
        bin_width = np.float32((self.max_val - self.min_val) / np.float32(self.bins))
        total = float(self.histogram.sum(dtype=np.float32))
        csum = np.cumsum(self.histogram, dtype=np.float32)
        stepsize, alpha, beta = 1e-5, 0.0, 1.0
        start, end = 0, self.bins - 1
        norm_min = float("inf")
        while alpha < beta:
            next_alpha, next_beta = alpha + stepsize, beta - stepsize
            l, r = start, end
            while l < end and csum[l] < next_alpha * total:
                l += 1
            while r > start and csum[r] > next_beta * total:
                r -= 1
            nstart, nend = start, end
            if (l - start) > (end - r):
                nstart, alpha = l, next_alpha
            else:
                nend, beta = r, next_beta
            if nstart == start and nend == end:
                continue
            n = self._compute_quantization_error(nstart, nend)
            if n > norm_min:
                break
            norm_min, start, end = n, nstart, nend
        new_min = np.float32(self.min_val + bin_width * np.float32(start))
        new_max = np.float32(self.min_val + bin_width * np.float32(end + 1))
        return new_min, new_max

    def calculate_qparams(self):
        self._check_seen(self.min_val, self.max_val)
        new_min, new_max = self._non_linear_param_search()
        return self._calculate_qparams(new_min, new_max)

    def extra_repr(self):
        return f"bins={self.bins}, min_val={self.min_val}, max_val={self.max_val}"


class PlaceholderObserver(ObserverBase):
    """Records nothing; stands for "quantize at run time" (dynamic quantization)."""

    def __init__(self, dtype=quint8, custom_op_name="", compute_dtype=None, quant_min=None,
                 quant_max=None, qscheme=None, eps=None, is_dynamic=False, reduce_range=False):
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = per_tensor_affine if qscheme is None else qscheme
        self.reduce_range = reduce_range

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise RuntimeError("PlaceholderObserver has no quantization parameters (dynamic "
                           "quantization chooses them on each call)")


class NoopObserver(PlaceholderObserver):
    """Records nothing (PyTorch's ``NoopObserver``)."""


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_weight_observer = MinMaxObserver.with_args(dtype=qint8, qscheme=per_tensor_symmetric)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=qint8, qscheme=per_channel_symmetric)
default_histogram_observer = HistogramObserver.with_args(quant_min=0, quant_max=127)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=quint8, quant_min=0, quant_max=255, is_dynamic=True)

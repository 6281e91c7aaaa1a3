"""Fake quantization for quantization-aware training (``torch.ao.quantization.fake_quantize``).

``FakeQuantize`` observes its input (a moving-average min/max observer by default), then
rounds it to the quantization grid and back to float: ``(clamp(round(x/s) + zp) − zp) · s``.
The backward pass is the straight-through estimator: the gradient passes unchanged where the
value lies inside the representable range and is zero where it was clipped, as in
``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine``.
"""

import numpy as np

from .. import _C  # noqa: F401  (keeps the extension loaded first)
from ..nn.module import Module
from ._types import is_per_channel, per_channel_symmetric, per_tensor_symmetric, qint8
from .observer import (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                       _PartialWrapper)

__all__ = ["FakeQuantize", "FakeQuantizeBase", "fake_quantize_per_tensor_affine",
           "fake_quantize_per_channel_affine", "default_fake_quant",
           "default_weight_fake_quant", "default_per_channel_weight_fake_quant",
           "disable_observer", "enable_observer", "disable_fake_quant", "enable_fake_quant"]


def _ds():
    import deepseek
    return deepseek


def _fake_quant(x, scale, zero_point, quant_min, quant_max):
    """Shared body: ``scale``/``zero_point`` are tensors broadcastable to ``x``. The value is
    exactly the fake-quantized one; the gradient is 1 where ``round(x/s + zp)`` lies in
    [quant_min, quant_max] and 0 elsewhere (PyTorch's mask)."""
    ds = _ds()
    with ds.no_grad():
        xd = x.detach()
        q = (xd * (1.0 / scale) + zero_point).round()
        mask = ((q >= quant_min) & (q <= quant_max)).to(x.dtype)
        q = ds.maximum(ds.minimum(q, ds.full_like(xd, float(quant_max))),
                       ds.full_like(xd, float(quant_min)))
        fq = (q - zero_point) * scale
    if not x.requires_grad:
        return fq
    return fq + (x - x.detach()) * mask


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    """``(clamp(round(x / scale + zero_point), quant_min, quant_max) − zero_point) · scale``
    with a straight-through gradient (PyTorch's ``torch.fake_quantize_per_tensor_affine``)."""
    ds = _ds()
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"fake_quantize_per_tensor_affine: scale must be positive, got {scale}")
    if not quant_min <= int(zero_point) <= quant_max:
        raise ValueError(f"fake_quantize_per_tensor_affine: zero_point {int(zero_point)} is "
                         f"outside [{quant_min}, {quant_max}]")
    s = ds.tensor(scale, dtype=input.dtype)
    z = ds.tensor(float(int(zero_point)), dtype=input.dtype)
    return _fake_quant(input, s, z, quant_min, quant_max)


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    """Per-channel fake quantization along ``axis`` (PyTorch's
    ``torch.fake_quantize_per_channel_affine``)."""
    ds = _ds()
    s = np.asarray(scale.numpy() if hasattr(scale, "numpy") else scale, dtype=np.float32)
    z = np.asarray(zero_point.numpy() if hasattr(zero_point, "numpy") else zero_point)
    axis = axis % input.dim()
    if s.shape != (input.shape[axis],) or z.shape != s.shape:
        raise ValueError(f"fake_quantize_per_channel_affine: expected {input.shape[axis]} scales "
                         f"and zero points for axis {axis}, got {s.shape} and {z.shape}")
    if not np.all(s > 0):
        raise ValueError("fake_quantize_per_channel_affine: scales must be positive")
    shape = [1] * input.dim()
    shape[axis] = -1
    st = ds.tensor(s, dtype=input.dtype).reshape(shape)
    zt = ds.tensor(z.astype(np.float32), dtype=input.dtype).reshape(shape)
    return _fake_quant(input, st, zt, quant_min, quant_max)


class FakeQuantizeBase(Module):
    """Observer on/off and fake-quant on/off switches."""

    def __init__(self):
        super().__init__()
        self.fake_quant_enabled = True
        self.observer_enabled = True

    def enable_fake_quant(self, enabled=True):
        self.fake_quant_enabled = bool(enabled)
        return self

    def disable_fake_quant(self):
        return self.enable_fake_quant(False)

    def enable_observer(self, enabled=True):
        self.observer_enabled = bool(enabled)
        return self

    def disable_observer(self):
        return self.enable_observer(False)

    @classmethod
    def with_args(cls, **kwargs):
        return _PartialWrapper(cls, **kwargs)


class FakeQuantize(FakeQuantizeBase):
    """Observe, then fake-quantize (``torch.ao.quantization.FakeQuantize``). ``observer`` is
    the observer class (``MovingAverageMinMaxObserver`` by default); the other keyword
    arguments (``dtype``, ``qscheme``, ``reduce_range``, ``ch_axis``, ...) go to it."""

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None,
                 **observer_kwargs):
        super().__init__()
        if quant_min is not None and quant_max is not None and quant_min > quant_max:
            raise ValueError(f"FakeQuantize: quant_min {quant_min} > quant_max {quant_max}")
        self.activation_post_process = observer(quant_min=quant_min, quant_max=quant_max,
                                                **observer_kwargs)
        obs = self.activation_post_process
        self.quant_min, self.quant_max = obs.quant_min, obs.quant_max
        self.dtype = obs.dtype
        self.qscheme = obs.qscheme
        self.ch_axis = getattr(obs, "ch_axis", -1)
        self.is_per_channel = is_per_channel(obs.qscheme)
        self.scale = np.array([1.0], dtype=np.float32)
        self.zero_point = np.array([0], dtype=np.int64)

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def forward(self, X):
        if self.observer_enabled:
            self.activation_post_process(X.detach())
            self.scale, self.zero_point = self.calculate_qparams()
        if not self.fake_quant_enabled:
            return X
        if self.is_per_channel:
            return fake_quantize_per_channel_affine(X, self.scale, self.zero_point,
                                                    self.ch_axis, self.quant_min, self.quant_max)
        return fake_quantize_per_tensor_affine(X, float(self.scale[0]), int(self.zero_point[0]),
                                               self.quant_min, self.quant_max)

    def extra_repr(self):
        return (f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled="
                f"{self.observer_enabled}, quant_min={self.quant_min}, quant_max="
                f"{self.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
                f"ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")


default_fake_quant = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0,
                                            quant_max=255, reduce_range=True)
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=qint8,
    qscheme=per_tensor_symmetric)
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=qint8, qscheme=per_channel_symmetric, ch_axis=0)


def _apply_to_fake_quants(mod, fn):
    for m in mod.modules():
        if isinstance(m, FakeQuantizeBase):
            fn(m)
    return mod


def disable_observer(mod):
    """Stops every FakeQuantize under ``mod`` from updating its statistics (use as
    ``model.apply(disable_observer)`` or call on the model)."""
    return _apply_to_fake_quants(mod, FakeQuantizeBase.disable_observer)


def enable_observer(mod):
    return _apply_to_fake_quants(mod, FakeQuantizeBase.enable_observer)


def disable_fake_quant(mod):
    return _apply_to_fake_quants(mod, FakeQuantizeBase.disable_fake_quant)


def enable_fake_quant(mod):
    return _apply_to_fake_quants(mod, FakeQuantizeBase.enable_fake_quant)

"""Statically quantized layers (``torch.ao.nn.quantized``): ``Quantize``, ``DeQuantize``,
``Linear``, ``Conv2d`` and ``SameScale`` (pooling, ReLU, flatten, dropout on quantized
tensors). Made by ``deepseek.quantization.convert``; they take and return
``deepseek.quantization.QuantizedTensor`` (uint8 values with one scale and zero point) and run
on the int8 kernels (exact u8 × i8 → i32 products, VNNI where the CPU has it).
"""

import copy

import numpy as np

from ... import _C
from ...quantization._types import is_per_channel, qint8
from ...quantization.qtensor import QuantizedTensor, quantize_per_tensor
from ..module import Module
from . import _state

__all__ = ["Quantize", "DeQuantize", "Linear", "Conv2d", "SameScale"]


def _check_q(x, who):
    if not isinstance(x, QuantizedTensor):
        raise TypeError(f"{who} expects a quantized tensor (deepseek.quint8), got "
                        f"{type(x).__name__}; put a QuantStub before the quantized part of the "
                        "model and a DeQuantStub after it")
    return x


def _activation_qparams(mod, name):
    """The output (scale, zero point) chosen by ``mod.activation_post_process`` (an observer
    or a FakeQuantize), with clear errors for no calibration data and degenerate ranges."""
    app = getattr(mod, "activation_post_process", None)
    if app is None:
        raise RuntimeError(f"convert: layer {name} ({type(mod).__name__}) has no observer; call "
                           "deepseek.quantization.prepare (or prepare_qat) first")
    obs = getattr(app, "activation_post_process", app)  # FakeQuantize wraps an observer
    lo, hi = getattr(obs, "min_val", None), getattr(obs, "max_val", None)
    if lo is None or np.any(np.isinf(np.asarray(lo))):
        raise RuntimeError(f"convert: the observer of layer {name} ({type(mod).__name__}) saw no "
                           "calibration data; run the prepared model on representative inputs "
                           "before convert()")
    if np.all(np.asarray(lo) == 0) and np.all(np.asarray(hi) == 0):
        raise ValueError(f"convert: layer {name} ({type(mod).__name__}) only produced zeros during "
                         "calibration: a degenerate range [0, 0] that cannot be quantized "
                         "(check the calibration data and the layer's weights)")
    scale, zp = app.calculate_qparams()
    return float(np.asarray(scale).ravel()[0]), int(np.asarray(zp).ravel()[0])


def _weight_qparams(mod, weight, name):
    """Runs the weight observer (the QAT module's ``weight_fake_quant``, else a fresh
    ``qconfig.weight()``) on ``weight``; returns (per_channel, scales)."""
    wpp = getattr(mod, "weight_fake_quant", None)
    if wpp is None:
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            raise RuntimeError(f"convert: layer {name} ({type(mod).__name__}) has no qconfig")
        wpp = qconfig.weight()
    obs = getattr(wpp, "activation_post_process", wpp)
    if obs.dtype is not qint8:
        raise ValueError(f"convert: layer {name}: weights must be observed as deepseek.qint8, "
                         f"got {obs.dtype!r}")
    try:
        wpp(weight.detach())
        scales, zps = wpp.calculate_qparams()
    except (ValueError, RuntimeError) as e:
        raise type(e)(f"convert: layer {name} ({type(mod).__name__}) weight: {e}") from None
    if np.any(np.asarray(zps) != 0):
        raise ValueError(f"convert: layer {name}: only symmetric int8 weights (zero point 0) are "
                         "supported by the int8 kernels; use a *_symmetric weight qscheme")
    per_channel = is_per_channel(obs.qscheme)
    if per_channel and getattr(obs, "ch_axis", 0) != 0:
        raise ValueError(f"convert: layer {name}: per-channel weights must use ch_axis=0")
    return per_channel, [float(s) for s in np.asarray(scales).ravel()]


def _wrap_errors(fn, name, mod):
    try:
        return fn()
    except (ValueError, TypeError, RuntimeError) as e:
        raise type(e)(f"convert: layer {name} ({type(mod).__name__}): {e}") from None


class _Packed(Module):
    """Holds an immutable ``_C`` packed layer that deep copies share."""

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = v if k == "_packed" else copy.deepcopy(v, memo)
        return new

    _WEIGHT_PREFIX = ""  # where the weight/bias keys sit ("_packed_params." for Linear)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """PyTorch's keys (see ``deepseek.nn.quantized._state``): ``scale``, ``zero_point``
        and the int8 weight, its scales and the bias."""
        _state.save_qparams(destination, prefix, self.scale, self.zero_point)
        _state.save_weight(destination, prefix + self._WEIGHT_PREFIX, self._packed)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        def load():
            scale, zp = _state.output_qparams(state_dict, prefix)
            q, scales, bias, w = _state.load_weight(
                state_dict, prefix + self._WEIGHT_PREFIX, self._packed)
            packed = self._rebuild(w, bias, scale, zp, [float(v) for v in scales])
            _state.check_rebuilt(packed, q, prefix + self._WEIGHT_PREFIX)
            self.__dict__["_packed"] = packed
        _state.guarded(load, self, state_dict, prefix, error_msgs)

    @property
    def scale(self):
        return self._packed.scale

    @property
    def zero_point(self):
        return self._packed.zero_point

    def weight(self):
        """The dequantized float weight ``scale · q``."""
        q = self._packed.weight_int_repr().float()
        s = self._packed.weight_scales()
        if s.numel() > 1:
            s = s.reshape([-1] + [1] * (q.dim() - 1))
        return q * s

    def weight_int_repr(self):
        """The int8 weight values (as an int32 tensor)."""
        return self._packed.weight_int_repr()

    def weight_scale(self):
        """The weight scales: one, or one per output channel."""
        return self._packed.weight_scales()

    def bias(self):
        return self._packed.bias()

    @property
    def qscheme(self):
        return "per_channel_symmetric" if self._packed.per_channel else "per_tensor_symmetric"


class Quantize(Module):
    """Float → ``QuantizedTensor`` with a fixed scale and zero point (what a calibrated
    ``QuantStub`` becomes)."""

    def __init__(self, scale, zero_point, dtype=None):
        super().__init__()
        self.scale, self.zero_point = float(scale), int(zero_point)

    @classmethod
    def from_float(cls, mod, name="QuantStub"):
        s, z = _activation_qparams(mod, name)
        return cls(s, z)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        _state.save_qparams(destination, prefix, self.scale, self.zero_point, shape=(1,))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        def load():
            self.scale, self.zero_point = _state.output_qparams(state_dict, prefix)
        _state.guarded(load, self, state_dict, prefix, error_msgs)

    def forward(self, x):
        if isinstance(x, QuantizedTensor):
            raise TypeError("Quantize: the input is already quantized")
        return quantize_per_tensor(x, self.scale, self.zero_point)

    def extra_repr(self):
        return f"scale={self.scale}, zero_point={self.zero_point}, dtype=deepseek.quint8"


class DeQuantize(Module):
    """``QuantizedTensor`` → float32 (what a ``DeQuantStub`` becomes)."""

    @classmethod
    def from_float(cls, mod, name="DeQuantStub"):
        return cls()

    def forward(self, x):
        return _check_q(x, "DeQuantize").dequantize()


class Linear(_Packed):
    """Statically quantized ``y = x Wᵀ + b`` (``torch.ao.nn.quantized.Linear``): quint8 input,
    int8 weights (per tensor or per channel), f32 bias, quint8 output with the ``scale`` and
    ``zero_point`` that calibration chose."""

    _FUSED_RELU = False
    _WEIGHT_PREFIX = "_packed_params."

    def __init__(self, packed):
        super().__init__()
        self.__dict__["_packed"] = packed
        self.in_features = packed.in_features
        self.out_features = packed.out_features

    @classmethod
    def from_float(cls, mod, name="Linear"):
        lin = mod[0] if cls._FUSED_RELU and not hasattr(mod, "weight") else mod
        s, z = _activation_qparams(mod, name)
        per_channel, scales = _weight_qparams(mod, lin.weight, name)
        return cls(_wrap_errors(lambda: _C.QuantizedLinear(
            lin.weight.detach(), None if lin.bias is None else lin.bias.detach(), per_channel,
            s, z, cls._FUSED_RELU, scales), name, mod))

    def _rebuild(self, w, bias, scale, zp, scales):
        return _C.QuantizedLinear(w, bias, self._packed.per_channel, scale, zp,
                                  self._packed.relu, scales)

    def forward(self, x):
        x = _check_q(x, type(self).__name__)
        y = self._packed.forward(x.int_repr(), x.q_scale(), x.q_zero_point())
        return QuantizedTensor(y, self._packed.scale, self._packed.zero_point)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"scale={self.scale}, zero_point={self.zero_point}, qscheme={self.qscheme}")


def _conv_args(conv, name):
    if isinstance(conv.padding, str):
        raise ValueError(f"convert: layer {name}: padding={conv.padding!r} is not supported by the "
                         "quantized Conv2d (give the padding as numbers)")
    if getattr(conv, "padding_mode", "zeros") != "zeros":
        raise ValueError(f"convert: layer {name}: padding_mode {conv.padding_mode!r} is not "
                         "supported")
    return (list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups)


class Conv2d(_Packed):
    """Statically quantized 2-D convolution (``torch.ao.nn.quantized.Conv2d``), NCHW, padded
    with the input's zero point."""

    _FUSED_RELU = False

    def __init__(self, packed, in_channels, out_channels, kernel_size, stride, padding,
                 dilation, groups):
        super().__init__()
        self.__dict__["_packed"] = packed
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.padding, self.dilation, self.groups = tuple(padding), tuple(dilation), groups

    @classmethod
    def from_float(cls, mod, name="Conv2d"):
        weight, bias, conv = _float_conv_weights(mod)
        s, z = _activation_qparams(mod, name)
        per_channel, scales = _weight_qparams(mod, weight, name)
        stride, padding, dilation, groups = _conv_args(conv, name)
        packed = _wrap_errors(lambda: _C.QuantizedConv2d(
            weight.detach(), None if bias is None else bias.detach(), stride, padding, dilation,
            groups, per_channel, s, z, cls._FUSED_RELU, scales), name, mod)
        return cls(packed, conv.in_channels, conv.out_channels, conv.kernel_size, stride,
                   padding, dilation, groups)

    def _rebuild(self, w, bias, scale, zp, scales):
        return _C.QuantizedConv2d(w, bias, list(self.stride), list(self.padding),
                                  list(self.dilation), self.groups, self._packed.per_channel,
                                  scale, zp, self._packed.relu, scales)

    def forward(self, x):
        x = _check_q(x, type(self).__name__)
        y = self._packed.forward(x.int_repr(), x.q_scale(), x.q_zero_point())
        return QuantizedTensor(y, self._packed.scale, self._packed.zero_point)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, scale={self.scale}, "
                f"zero_point={self.zero_point}, qscheme={self.qscheme}")


def _float_conv_weights(mod):
    """(weight, bias, conv) of a float/QAT conv, a fused ConvReLU2d, or a QAT ConvBn module
    (BN folded into the weights with its running statistics)."""
    if hasattr(mod, "_folded_weight_bias"):  # intrinsic.qat ConvBn2d / ConvBnReLU2d
        w, b = mod._folded_weight_bias()
        return w, b, mod
    conv = mod if hasattr(mod, "weight") else mod[0]
    return conv.weight, conv.bias, conv


class SameScale(Module):
    """Runs a float module whose outputs stay within its input's range (ReLU, max/avg pooling,
    adaptive average pooling, flatten, dropout, identity) on a quantized tensor: dequantize,
    run, requantize with the input's scale and zero point, as PyTorch's quantized versions of
    these ops do. Exact for ReLU, max pooling and reshapes."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    @classmethod
    def from_float(cls, mod, name=""):
        return cls(mod)

    def forward(self, x):
        if not isinstance(x, QuantizedTensor):
            return self.module(x)
        y = self.module(x.dequantize())
        return quantize_per_tensor(y, x.q_scale(), x.q_zero_point())

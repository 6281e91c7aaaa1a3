"""``deepseek.nn.quantized.dynamic``: dynamically quantized layers
(``torch.ao.nn.quantized.dynamic``), made by ``deepseek.quantization.quantize_dynamic``."""

import copy

from ... import _C
from ..module import Module

__all__ = ["Linear"]


class Linear(Module):
    """``y = x W^T + b`` with int8 weights (symmetric, per tensor or per output channel) and
    u8 activations quantized on each call with one scale and zero point for the whole input,
    as PyTorch's ``torch.ao.nn.quantized.dynamic.Linear`` on the x86/fbgemm engine. The
    product runs in exact int32 arithmetic on AVX-512 VNNI / AVX-VNNI / AVX2 kernels picked at
    run time (``deepseek.quantization.int8_isa()``). Inference only: no gradients.

    ``weight()`` returns the *dequantized* float weight (PyTorch returns a quantized tensor);
    ``weight_int_repr()`` and ``weight_scale()`` give the integers and scales. The packed
    weights are not in ``state_dict()`` yet: save the float model and quantize after loading."""

    _FLOAT_MODULE = None  # set below (nn.Linear), avoiding an import cycle

    def __init__(self, in_features, out_features, bias_=True, dtype=None, *, per_channel=False,
                 reduce_range=True, _packed=None):
        super().__init__()
        if _packed is None:
            from ..layers import Linear as _FloatLinear
            f = _FloatLinear(in_features, out_features, bias=bias_)
            _packed = _C.DynamicQuantLinear(f.weight, f.bias, per_channel, reduce_range)
        self.__dict__["_packed"] = _packed
        self.in_features = _packed.in_features
        self.out_features = _packed.out_features

    @classmethod
    def from_float(cls, mod, qconfig=None, use_precomputed_fake_quant=False):
        """The quantized copy of a float ``nn.Linear`` (``qconfig`` picks per-tensor or
        per-channel weight scales; default per tensor, as PyTorch's
        ``default_dynamic_qconfig``)."""
        from ..layers import Linear as _FloatLinear
        if not isinstance(mod, _FloatLinear):
            raise TypeError(f"nn.quantized.dynamic.Linear.from_float only works for nn.Linear, "
                            f"got {type(mod).__name__}")
        if qconfig is None:
            qconfig = getattr(mod, "qconfig", None)
        per_channel = bool(getattr(getattr(qconfig, "weight", None), "per_channel", False))
        reduce_range = bool(getattr(getattr(qconfig, "activation", None), "reduce_range", True))
        packed = _C.DynamicQuantLinear(mod.weight, mod.bias, per_channel, reduce_range)
        return cls(mod.in_features, mod.out_features, _packed=packed)

    def forward(self, x):
        return self._packed.forward(x)

    def __deepcopy__(self, memo):
        # the packed weights are immutable, so copies share them
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = v if k == "_packed" else copy.deepcopy(v, memo)
        return new

    def weight(self):
        """The dequantized f32 weight ``scale * q``."""
        return self._packed.dequantized_weight()

    def bias(self):
        return self._packed.bias()

    def weight_int_repr(self):
        """The int8 weight values (as an int32 tensor)."""
        return self._packed.weight_int_repr()

    def weight_scale(self):
        """The weight scales: 1 (per tensor) or ``out_features`` (per channel)."""
        return self._packed.weight_scales()

    @property
    def qscheme(self):
        return "per_channel_symmetric" if self._packed.per_channel else "per_tensor_symmetric"

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype=deepseek.qint8, qscheme={self.qscheme}, kernel={self._packed.isa}")

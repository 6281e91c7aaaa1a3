"""``deepseek.nn.qat``: layers for quantization-aware training (``torch.ao.nn.qat``): the
float layer with its weight passed through a fake quantizer (``weight_fake_quant``) on every
forward, so training sees the int8 rounding; gradients pass straight through."""

from . import functional as F
from .layers import Conv2d as _Conv2d, Linear as _Linear

__all__ = ["Linear", "Conv2d"]


def _need_qconfig(cls, qconfig):
    if qconfig is None:
        raise ValueError(f"{cls.__name__} needs a qconfig (e.g. "
                         "deepseek.quantization.get_default_qat_qconfig('x86'))")


class Linear(_Linear):
    """``nn.Linear`` with fake-quantized weights."""

    _FLOAT_MODULE = _Linear

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None,
                 dtype=None):
        super().__init__(in_features, out_features, bias)
        _need_qconfig(type(self), qconfig)
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def forward(self, x):
        return F.linear(x, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT copy of a float ``nn.Linear`` (sharing its parameters); ``mod.qconfig``
        must be set."""
        qconfig = getattr(mod, "qconfig", None)
        _need_qconfig(cls, qconfig)
        new = cls(mod.in_features, mod.out_features, mod.bias is not None, qconfig=qconfig)
        new.weight = mod.weight
        new.bias = mod.bias
        return new


class Conv2d(_Conv2d):
    """``nn.Conv2d`` with fake-quantized weights."""

    _FLOAT_MODULE = _Conv2d

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", qconfig=None, device=None,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode)
        _need_qconfig(type(self), qconfig)
        self.qconfig = qconfig
        self.weight_fake_quant = qconfig.weight()

    def _conv(self, x, w, b):
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x):
        return self._conv(x, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        qconfig = getattr(mod, "qconfig", None)
        _need_qconfig(cls, qconfig)
        new = cls(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding,
                  mod.dilation, mod.groups, mod.bias is not None, mod.padding_mode,
                  qconfig=qconfig)
        new.weight = mod.weight
        new.bias = mod.bias
        return new

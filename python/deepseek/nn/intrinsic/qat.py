"""``deepseek.nn.intrinsic.qat``: fused layers for quantization-aware training
(``torch.ao.nn.intrinsic.qat``). ``ConvBn2d``/``ConvBnReLU2d`` fold the batch norm's scale
into the fake-quantized weight while still training the batch norm on batch statistics
(PyTorch's approximate folding), so the converted int8 conv sees the same rounding."""

from .. import functional as F
from ..qat import Conv2d as _QatConv2d, Linear as _QatLinear

__all__ = ["LinearReLU", "ConvReLU2d", "ConvBn2d", "ConvBnReLU2d"]


class LinearReLU(_QatLinear):
    """QAT Linear + ReLU."""

    def forward(self, x):
        return F.relu(super().forward(x))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        lin = mod[0]
        lin.qconfig = mod.qconfig
        return super().from_float(lin)


class ConvReLU2d(_QatConv2d):
    """QAT Conv2d + ReLU."""

    def forward(self, x):
        return F.relu(super().forward(x))

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        conv = mod[0]
        conv.qconfig = mod.qconfig
        return super().from_float(conv)


class ConvBn2d(_QatConv2d):
    """QAT Conv2d + BatchNorm2d with the batch norm folded into the fake-quantized weight."""

    _RELU = False

    def __init__(self, conv, bn, qconfig):
        c = conv
        super().__init__(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding,
                         c.dilation, c.groups, c.bias is not None, c.padding_mode,
                         qconfig=qconfig)
        self.weight = c.weight
        self.bias = c.bias
        self.bn = bn

    def _scale_factor(self):
        bn = self.bn
        running_std = (bn.running_var + bn.eps).sqrt()
        gamma = bn.weight if bn.weight is not None else running_std * 0 + 1
        return gamma / running_std

    def forward(self, x):
        sf = self._scale_factor()
        w = self.weight_fake_quant(self.weight * sf.reshape(-1, 1, 1, 1))
        y = self._conv(x, w, None) / sf.reshape(1, -1, 1, 1)
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        y = self.bn(y)
        return F.relu(y) if self._RELU else y

    def _folded_weight_bias(self):
        """The conv with the batch norm's running statistics folded in (for convert)."""
        bn = self.bn
        sf = self._scale_factor().detach()
        w = self.weight.detach() * sf.reshape(-1, 1, 1, 1)
        b = self.bias.detach() if self.bias is not None else bn.running_mean * 0
        beta = bn.bias.detach() if bn.bias is not None else bn.running_mean * 0
        return w, (b - bn.running_mean) * sf + beta

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            raise ValueError(f"{cls.__name__} needs a qconfig")
        return cls(mod[0], mod[1], qconfig)


class ConvBnReLU2d(ConvBn2d):
    """QAT Conv2d + BatchNorm2d + ReLU."""

    _RELU = True

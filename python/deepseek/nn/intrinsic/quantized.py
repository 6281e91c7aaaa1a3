"""``deepseek.nn.intrinsic.quantized``: quantized layers with a fused ReLU
(``torch.ao.nn.intrinsic.quantized``): the ReLU is the requantization's lower clamp at the
output zero point."""

from ..quantized.modules import Conv2d as _QConv2d, Linear as _QLinear

__all__ = ["LinearReLU", "ConvReLU2d"]


class LinearReLU(_QLinear):
    """Quantized Linear + ReLU."""

    _FUSED_RELU = True


class ConvReLU2d(_QConv2d):
    """Quantized Conv2d + ReLU."""

    _FUSED_RELU = True

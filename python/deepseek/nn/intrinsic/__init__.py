"""``deepseek.nn.intrinsic``: fused layer sequences (``torch.ao.nn.intrinsic``) made by
``deepseek.quantization.fuse_modules``, and their quantization-aware (``qat``) and quantized
(``quantized``) forms."""

from ..layers import Sequential as _Sequential

__all__ = ["ConvReLU2d", "LinearReLU", "ConvBn2d", "ConvBnReLU2d"]


class _FusedModule(_Sequential):
    """A fused sequence: runs like its parts in order, quantized as one layer."""


class ConvReLU2d(_FusedModule):
    """Conv2d followed by ReLU."""

    def __init__(self, conv, relu):
        super().__init__(conv, relu)


class LinearReLU(_FusedModule):
    """Linear followed by ReLU."""

    def __init__(self, linear, relu):
        super().__init__(linear, relu)


class ConvBn2d(_FusedModule):
    """Conv2d followed by BatchNorm2d, kept apart for quantization-aware training."""

    def __init__(self, conv, bn):
        super().__init__(conv, bn)


class ConvBnReLU2d(_FusedModule):
    """Conv2d, BatchNorm2d and ReLU, kept apart for quantization-aware training."""

    def __init__(self, conv, bn, relu):
        super().__init__(conv, bn, relu)


from . import qat, quantized  # noqa: E402,F401

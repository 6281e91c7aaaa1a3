"""``deepseek.nn.quantized``: quantized layers (``torch.ao.nn.quantized``): the statically
quantized ``Quantize``, ``DeQuantize``, ``Linear``, ``Conv2d`` (and ``SameScale`` for
range-preserving float ops on quantized tensors), and ``dynamic`` (dynamically quantized
``Linear``, ``LSTM``)."""

from . import dynamic  # noqa: F401
from .modules import Conv2d, DeQuantize, Linear, Quantize, SameScale  # noqa: F401

"""``deepseek.nn.quantized``: quantized layers (``torch.ao.nn.quantized``)."""

from . import dynamic  # noqa: F401

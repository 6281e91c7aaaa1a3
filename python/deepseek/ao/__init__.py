"""``deepseek.ao``: PyTorch's ``torch.ao`` spelling (``deepseek.ao.quantization``)."""

from .. import quantization  # noqa: F401
import sys as _sys

_sys.modules[__name__ + ".quantization"] = quantization

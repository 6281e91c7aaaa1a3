"""``deepseek.ao``: PyTorch's ``torch.ao`` spelling: ``deepseek.ao.quantization`` (with its
``observer``, ``fake_quantize``, ``quantize`` and ``qconfig`` submodules) and ``deepseek.ao.nn``
(``quantized``, ``quantized.dynamic``, ``intrinsic``, ``intrinsic.qat``,
``intrinsic.quantized``, ``qat``)."""

import sys as _sys
import types as _types

from .. import quantization  # noqa: F401
from .. import nn as _nn
from ..quantization import fake_quantize as _fq, observer as _obs, quantize as _qz

_sys.modules[__name__ + ".quantization"] = quantization
for _name, _mod in (("observer", _obs), ("fake_quantize", _fq), ("quantize", _qz),
                    ("qconfig", _qz), ("stubs", _qz), ("fuse_modules", _qz)):
    _sys.modules[f"{__name__}.quantization.{_name}"] = _mod

nn = _types.ModuleType(__name__ + ".nn", "torch.ao.nn: quantized, intrinsic and qat layers")
nn.quantized = _nn.quantized
nn.intrinsic = _nn.intrinsic
nn.qat = _nn.qat
_sys.modules[__name__ + ".nn"] = nn
for _name, _mod in (("quantized", _nn.quantized), ("quantized.dynamic", _nn.quantized.dynamic),
                    ("intrinsic", _nn.intrinsic), ("intrinsic.qat", _nn.intrinsic.qat),
                    ("intrinsic.quantized", _nn.intrinsic.quantized), ("qat", _nn.qat)):
    _sys.modules[f"{__name__}.nn.{_name}"] = _mod

"""``deepseek.quantization``: INT8 quantization, after ``torch.ao.quantization``.

- Dynamic: ``quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=deepseek.qint8)`` replaces
  ``nn.Linear`` / ``nn.LSTM`` layers with ``nn.quantized.dynamic`` ones: int8 weights,
  activations quantized per call, exact int32 products on VNNI/AVX2 kernels; outputs match
  PyTorch's ``quantize_dynamic`` (x86 engine) to float rounding.
- Static post-training quantization (eager mode): ``QuantStub``/``DeQuantStub``,
  ``get_default_qconfig("x86")``, ``fuse_modules``, ``prepare``, calibration, ``convert``;
  observers ``MinMaxObserver``, ``MovingAverageMinMaxObserver``, ``HistogramObserver``,
  ``PerChannelMinMaxObserver``.
- Quantization-aware training: ``get_default_qat_qconfig``, ``fuse_modules_qat``,
  ``prepare_qat`` (``FakeQuantize``, straight-through gradients), train, ``convert``.
"""

import copy

from .. import _C
from ..nn.layers import Linear as _Linear, LSTM as _LSTM
from ..nn.module import Module
from ..nn.quantized import dynamic as _qdynamic
from ._types import (qint8, quint8, per_tensor_affine, per_tensor_symmetric,  # noqa: F401
                     per_channel_affine, per_channel_symmetric, is_per_channel)
from .observer import *  # noqa: F401,F403
from .observer import __all__ as _observer_all
from .observer import default_dynamic_quant_observer, default_per_channel_weight_observer, \
    default_weight_observer
from .fake_quantize import *  # noqa: F401,F403
from .fake_quantize import __all__ as _fq_all
from .qtensor import QuantizedTensor, quantize_per_tensor, dequantize  # noqa: F401
from .quantize import *  # noqa: F401,F403
from .quantize import __all__ as _quantize_all
from .quantize import QConfig

__all__ = [
    "qint8", "quint8", "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
    "per_channel_symmetric", "default_dynamic_qconfig", "per_channel_dynamic_qconfig",
    "quantize_dynamic", "int8_isa", "int8_isas", "DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS",
    "QuantizedTensor", "quantize_per_tensor", "dequantize",
] + list(_observer_all) + list(_fq_all) + list(_quantize_all)

default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                  weight=default_weight_observer)
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)

DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS = {_Linear: _qdynamic.Linear, _LSTM: _qdynamic.LSTM}


def int8_isa():
    """The INT8 kernel picked for this CPU: ``avx512_vnni``, ``avx_vnni``, ``avx2`` or
    ``scalar`` (``DEEPSEEK_INT8_ISA`` caps it)."""
    return _C.int8_isa()


def int8_isas():
    """Every INT8 kernel this CPU can run."""
    return _C.int8_isas()


def _type_name(t):
    return getattr(t, "__name__", repr(t))


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False):
    """Replaces the model's ``nn.Linear`` and ``nn.LSTM`` layers with dynamically quantized
    int8 ones (PyTorch's ``torch.ao.quantization.quantize_dynamic``).

    ``qconfig_spec``: None (every Linear and LSTM), a set of layer types
    (``{nn.Linear, nn.LSTM}``), or a dict
    from layer types or qualified submodule names (``"encoder.fc1"``) to a ``QConfig``
    (``default_dynamic_qconfig``, ``per_channel_dynamic_qconfig``) or None (leave float).
    Only ``dtype=deepseek.qint8`` is supported. Returns the quantized model (a copy unless
    ``inplace``). Errors name unsupported layer types and layers whose weights cannot be
    quantized (NaN/infinite or all-zero)."""
    if dtype is not qint8:
        raise ValueError(f"quantize_dynamic: dtype {dtype!r} is not supported "
                         "(only deepseek.qint8)")
    if not isinstance(model, Module):
        raise TypeError(f"quantize_dynamic expects a deepseek.nn.Module, got "
                        f"{type(model).__name__}")
    mapping = dict(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS if mapping is None else mapping)
    if qconfig_spec is None:
        qconfig_spec = {_Linear: default_dynamic_qconfig, _LSTM: default_dynamic_qconfig}
    elif isinstance(qconfig_spec, (set, frozenset, list, tuple)):
        qconfig_spec = {t: default_dynamic_qconfig for t in qconfig_spec}
    elif not isinstance(qconfig_spec, dict):
        raise TypeError("quantize_dynamic: qconfig_spec must be None, a set of layer types or "
                        f"a dict, got {type(qconfig_spec).__name__}")
    for key in qconfig_spec:
        if isinstance(key, type) and key not in mapping:
            raise ValueError(f"quantize_dynamic: no dynamically quantized form of "
                             f"{_type_name(key)} (supported: "
                             f"{', '.join(_type_name(t) for t in mapping)})")
        if not isinstance(key, (type, str)):
            raise TypeError(f"quantize_dynamic: qconfig_spec keys must be layer types or "
                            f"submodule names, got {key!r}")
    if not inplace:
        model = copy.deepcopy(model)

    def qconfig_for(name, mod):
        # names win over types, longer (more specific) prefixes over shorter ones
        best, best_len = None, -1
        for key, qc in qconfig_spec.items():
            if isinstance(key, str) and (name == key or name.startswith(key + ".")
                                         or key == "") and len(key) > best_len:
                best, best_len = (qc,), len(key)
        if best is not None:
            return best[0]
        for key, qc in qconfig_spec.items():
            if isinstance(key, type) and type(mod) is key:
                return qc
        return None

    def convert(mod, name):
        qc = qconfig_for(name, mod)
        target = mapping.get(type(mod))
        if qc is not None and target is not None:
            try:
                return target.from_float(mod, qc)
            except (ValueError, TypeError, RuntimeError) as e:
                raise type(e)(f"quantize_dynamic: layer {name or '<model>'} "
                              f"({type(mod).__name__}): {e}") from None
        for child_name, child in list(mod._modules.items()):
            if child is None:
                continue
            new = convert(child, f"{name}.{child_name}" if name else child_name)
            if new is not child:
                mod._modules[child_name] = new
        return mod

    return convert(model, "")

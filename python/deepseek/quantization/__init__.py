"""``deepseek.quantization``: INT8 quantization, after ``torch.ao.quantization``.

``quantize_dynamic(model, {nn.Linear}, dtype=deepseek.qint8)`` replaces every ``nn.Linear``
(or those named in a dict ``qconfig_spec``) with ``nn.quantized.dynamic.Linear``: int8
weights, activations quantized per call, exact int32 products on VNNI/AVX2 kernels. The
default qconfig quantizes the weight per tensor like PyTorch's ``default_dynamic_qconfig``;
``per_channel_dynamic_qconfig`` gives one scale per output channel. Outputs match PyTorch's
``quantize_dynamic`` (x86 engine) to float rounding.
"""

import copy
from collections import namedtuple

from .. import _C
from ..nn.layers import Linear as _Linear
from ..nn.module import Module
from ..nn.quantized import dynamic as _qdynamic

__all__ = [
    "qint8", "quint8", "QConfig", "default_dynamic_qconfig", "per_channel_dynamic_qconfig",
    "quantize_dynamic", "int8_isa", "int8_isas", "DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS",
]


class _QDType:
    """A quantized dtype marker (``deepseek.qint8``)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"deepseek.{self.name}"


qint8 = _QDType("qint8")
quint8 = _QDType("quint8")

QConfig = namedtuple("QConfig", ["activation", "weight"])


class _WeightObserver:
    """Symmetric int8 min/max weight quantization, per tensor or per output channel."""

    def __init__(self, per_channel):
        self.per_channel = per_channel

    def __repr__(self):
        return ("PerChannelMinMaxObserver(qint8, per_channel_symmetric)" if self.per_channel
                else "MinMaxObserver(qint8, per_tensor_symmetric)")


class _DynamicActivation:
    """Per-call u8 activation range (``reduce_range``: 7 bits, as PyTorch on x86)."""

    def __init__(self, reduce_range=True):
        self.reduce_range = reduce_range

    def __repr__(self):
        return f"PlaceholderObserver(quint8, is_dynamic=True, reduce_range={self.reduce_range})"


default_dynamic_qconfig = QConfig(_DynamicActivation(), _WeightObserver(False))
per_channel_dynamic_qconfig = QConfig(_DynamicActivation(), _WeightObserver(True))

DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS = {_Linear: _qdynamic.Linear}


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
    """Replaces the model's ``nn.Linear`` layers with dynamically quantized int8 ones
    (PyTorch's ``torch.ao.quantization.quantize_dynamic``).

    ``qconfig_spec``: None (every Linear), a set of layer types (``{nn.Linear}``), or a dict
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
        qconfig_spec = {_Linear: default_dynamic_qconfig}
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

"""``state_dict`` / ``load_state_dict`` for the quantized layers.

The keys follow PyTorch's for the same modules: ``scale`` and ``zero_point`` (the output
quantization; ``[1]`` tensors on a ``Quantize``, 0-d elsewhere); a quantized ``Conv2d`` has
``weight`` and ``bias``; a quantized ``Linear`` (static or dynamic) keeps its weight and bias
under ``_packed_params.`` (PyTorch packs both into one ``_packed_params._packed_params``
tuple holding a ``qint8`` tensor, and also stores ``_packed_params.dtype``); a dynamic
``LSTM`` keeps each layer and direction under PyTorch's ``_all_weight_values.<i>.param`` with
``ih.`` and ``hh.`` weights and biases (PyTorch stores an opaque packed object there).
deepseek tensors have no ``qint8`` dtype, so the int8 weight is stored as its two's-complement
bytes in a ``uint8`` tensor (1 byte per weight: about a quarter of the f32 size) with its
scales next to it: ``weight_scale`` (one, or one per output channel; the zero point is 0,
symmetric).
"""

from collections import OrderedDict

import numpy as np

from ... import _C


def int8_bytes(q):
    """An integer tensor of int8 values → a uint8 tensor of their two's-complement bytes."""
    a = np.asarray(q.numpy(force=True))
    if a.size and (a.min() < -128 or a.max() > 127):
        raise ValueError("int8_bytes: values outside the int8 range")
    return _C.from_numpy(np.ascontiguousarray(a.astype(np.int8).view(np.uint8)))


def from_int8_bytes(t, key, shape):
    """The int8 values (numpy) that :func:`int8_bytes` stored, checked against ``shape``."""
    if not isinstance(t, _C.Tensor) or t.dtype != _C.uint8:
        raise ValueError(f'"{key}": expected a uint8 tensor holding int8 weight bytes, got '
                         f"{getattr(t, 'dtype', type(t).__name__)}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"size mismatch for {key}: copying a param with shape {list(t.shape)} "
                         f"from checkpoint, the shape in current model is {list(shape)}.")
    return np.asarray(t.numpy(force=True)).view(np.int8)


def _floats(t, key, n=None):
    if not isinstance(t, _C.Tensor):
        raise ValueError(f'"{key}": expected a tensor, got {type(t).__name__}')
    a = np.asarray(t.float().numpy(force=True), dtype=np.float32).ravel()
    if n is not None and a.size != n:
        raise ValueError(f"size mismatch for {key}: {a.size} values, the current model has {n}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f'"{key}": holds NaN or infinite values')
    return a


def output_qparams(state, prefix):
    """(scale, zero_point) read from ``<prefix>scale`` / ``<prefix>zero_point``."""
    scale = _floats(state[prefix + "scale"], prefix + "scale", 1)[0]
    zp = np.asarray(state[prefix + "zero_point"].numpy(force=True)).ravel()
    if zp.size != 1 or not 0 <= int(zp[0]) <= 255 or scale <= 0:
        raise ValueError(f"{prefix}scale/zero_point: expected a positive scale and a zero point "
                         f"in [0, 255], got {scale} and {zp.tolist()}")
    return float(scale), int(zp[0])


def save_qparams(dest, prefix, scale, zero_point, shape=()):
    s = _C.tensor(float(scale), dtype=_C.float32)
    z = _C.tensor(int(zero_point), dtype=_C.int64)
    dest[prefix + "scale"] = s.reshape(list(shape)) if shape else s
    dest[prefix + "zero_point"] = z.reshape(list(shape)) if shape else z


def save_weight(dest, prefix, packed):
    """``<prefix>weight`` (int8 bytes), ``<prefix>weight_scale`` and ``<prefix>bias``."""
    dest[prefix + "weight"] = int8_bytes(packed.weight_int_repr())
    dest[prefix + "weight_scale"] = packed.weight_scales()
    b = packed.bias()
    if b is not None:
        dest[prefix + "bias"] = b


def load_weight(state, prefix, packed):
    """(int8 values, scales, bias or None, dequantized f32 weight tensor) for a layer shaped
    like ``packed`` (the freshly converted layer being loaded into)."""
    q = from_int8_bytes(state[prefix + "weight"], prefix + "weight",
                        packed.weight_int_repr().shape)
    n_scales = packed.weight_scales().numel()
    scales = _floats(state[prefix + "weight_scale"], prefix + "weight_scale", n_scales)
    if np.any(scales <= 0):
        raise ValueError(f'"{prefix}weight_scale": scales must be positive')
    has_bias = packed.bias() is not None
    if has_bias != (prefix + "bias" in state):
        raise ValueError(f'"{prefix}bias": the checkpoint and the model disagree on whether the '
                         "layer has a bias")
    bias = None
    if has_bias:
        bias = _C.from_numpy(_floats(state[prefix + "bias"], prefix + "bias", q.shape[0]))
    s = scales.reshape([-1] + [1] * (q.ndim - 1))
    w = _C.from_numpy(np.ascontiguousarray(q.astype(np.float32) * s))
    return q, scales, bias, w


def load_dynamic(state, prefix, packed):
    """A ``_C.DynamicQuantLinear`` rebuilt from the ``<prefix>weight``/``weight_scale``/
    ``bias`` entries, shaped and configured like ``packed``."""
    q, scales, bias, _ = load_weight(state, prefix, packed)
    new = _C.DynamicQuantLinear.from_int8(
        _C.from_numpy(q.astype(np.int32)), [float(v) for v in scales], bias,
        packed.per_channel, packed.reduce_range)
    check_rebuilt(new, q, prefix)
    return new


def check_rebuilt(packed, q, prefix):
    got = np.asarray(packed.weight_int_repr().numpy(force=True))
    if not np.array_equal(got, q.astype(got.dtype)):
        raise ValueError(f'"{prefix}weight": the int8 weights could not be restored exactly')


def state_keys(mod, prefix):
    d = OrderedDict()
    mod._save_to_state_dict(d, prefix, True)
    return list(d)


def guarded(fn, mod, state, prefix, errors):
    """Runs a loader, turning its errors into ``load_state_dict`` messages; a layer with keys
    missing is left as it is (``load_state_dict`` reports them, or ignores them when
    ``strict=False``)."""
    if not all(k in state for k in state_keys(mod, prefix)):
        return
    try:
        fn()
    except (ValueError, TypeError, RuntimeError) as e:
        errors.append(f"While loading the quantized layer '{prefix.rstrip('.')}': {e}")

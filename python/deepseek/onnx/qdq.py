"""QDQ export of statically quantized models (``deepseek.quantization.convert``'s output):
each quantized layer becomes its float ONNX op between ``QuantizeLinear`` /
``DequantizeLinear`` pairs, the form ONNX Runtime fuses into its int8 kernels (QLinearConv,
QLinearMatMul):

- ``nn.quantized.Quantize``: ``Q → DQ`` with the stub's scale and zero point (uint8);
- ``nn.quantized.Conv2d`` / ``ConvReLU2d``: ``Conv(x, DQ(w), b) [→ Relu] → Q → DQ`` with the
  layer's output scale and zero point; ``Linear`` / ``LinearReLU`` the same with ``MatMul`` +
  ``Add``;
- ``nn.quantized.SameScale`` (pooling, ReLU, flatten, ...): the float op, then ``Q → DQ``
  with the input's quantization;
- ``nn.quantized.DeQuantize``: the float value itself.

The weights are stored as 8-bit integers, one byte each, so the file is about a quarter of
the float model's: the int8 values are written as uint8 with zero point 128 (``w_u8 = w_i8 +
128``, the same real values ``scale · (w_u8 − 128) = scale · w_i8``), with one scale per
output channel (``axis``) or per tensor.
"""

import numpy as np

from .. import _C


def _qname(g, x, where):
    from ..quantization.qtensor import QuantizedTensor
    if isinstance(x, QuantizedTensor):
        if id(x) in g.env:
            return g.env[id(x)]
        from . import ExportError
        raise ExportError(f"deepseek.onnx.export: the quantized input of {where} was not made "
                          "by an exported quantized layer (QuantStub → ... in modules)")
    return g.name_of(x, where)


def _qdq(g, xn, scale, zero_point, base):
    s = g.const(np.asarray(scale, dtype=np.float32), f"{base}.scale")
    z = g.const(np.asarray(zero_point, dtype=np.uint8), f"{base}.zero_point")
    q = g.node("QuantizeLinear", [xn, s, z], base=f"{base}_q")
    return g.node("DequantizeLinear", [q, s, z], base=f"{base}_dq")


def _weight_dq(g, q_i32, scales, axis, base):
    """DequantizeLinear of an int8 weight stored as uint8 with zero point 128."""
    q = np.asarray(q_i32, dtype=np.int32)
    wq = g.const((q + 128).astype(np.uint8), f"{base}.weight_quantized")
    s = np.asarray(scales, dtype=np.float32).ravel()
    per_channel = s.size > 1
    sn = g.const(s if per_channel else s.reshape(()), f"{base}.weight_scale")
    zn = g.const(np.full(s.shape if per_channel else (), 128, dtype=np.uint8),
                 f"{base}.weight_zero_point")
    attrs = {"axis": int(axis)} if per_channel else {}
    return g.node("DequantizeLinear", [wq, sn, zn], base=f"{base}_wdq", **attrs)


def _quantize(g, m, x, out, name):
    g.bind(out, _qdq(g, g.name_of(x, name), m.scale, m.zero_point, name))


def _dequantize(g, m, x, out, name):
    g.bind(out, g.node("Identity", [_qname(g, x, name)], base=name))


def _qconv(g, m, x, out, name):
    w = _weight_dq(g, m.weight_int_repr().numpy(), m.weight_scale().numpy(), 0, name)
    ins = [_qname(g, x, name), w]
    b = m.bias()
    if b is not None:
        ins.append(g.const(b, f"{name}.bias"))
    pads = list(m.padding)
    y = g.node("Conv", ins, base=name, kernel_shape=list(m.kernel_size),
               strides=list(m.stride), pads=pads + pads, dilations=list(m.dilation),
               group=int(m.groups))
    if m._FUSED_RELU:
        y = g.node("Relu", [y], base=f"{name}_relu")
    g.bind(out, _qdq(g, y, m.scale, m.zero_point, name))


def _qlinear(g, m, x, out, name):
    # MatMul(x, Wᵀ): the transposed int8 weight, per-channel scales along axis 1
    wt = np.ascontiguousarray(m.weight_int_repr().numpy().T)
    w = _weight_dq(g, wt, m.weight_scale().numpy(), 1, name)
    y = g.node("MatMul", [_qname(g, x, name), w], base=name)
    b = m.bias()
    if b is not None:
        y = g.node("Add", [y, g.const(b, f"{name}.bias")], base=name)
    if m._FUSED_RELU:
        y = g.node("Relu", [y], base=f"{name}_relu")
    g.bind(out, _qdq(g, y, m.scale, m.zero_point, name))


def _same_scale(g, m, x, out, name):
    from . import ExportError, _converters
    conv, _ = _converters()
    inner = conv.get(type(m.module))
    if inner is None:
        raise ExportError(f"deepseek.onnx.export: {type(m.module).__name__} ({name}) inside a "
                          "quantized model has no ONNX form in the exporter")
    # run the float converter on proxies bound to the graph values
    proxy_in, proxy_out = _C.zeros(*x.shape), _C.zeros(*out.shape)
    g.bind(proxy_in, _qname(g, x, name))
    inner(g, m.module, proxy_in, proxy_out, name)
    y = g.env[id(proxy_out)]
    g.bind(out, _qdq(g, y, x.q_scale(), x.q_zero_point(), name))


def _identity(g, m, x, out, name):
    from ..quantization.qtensor import QuantizedTensor
    from . import _activation
    if isinstance(x, QuantizedTensor):  # e.g. a batch norm fused away: values pass through
        g.bind(out, _qname(g, x, name))
    else:
        _activation(g, m, x, out, name)


def quantized_converters():
    """Module type → converter for the quantized layers (and Identity, which passes
    quantized values through)."""
    from ..nn.intrinsic import quantized as nniq
    from ..nn.layers import Identity
    from ..nn.quantized import modules as nnq
    return {
        Identity: _identity,
        nnq.Quantize: _quantize, nnq.DeQuantize: _dequantize, nnq.Conv2d: _qconv,
        nniq.ConvReLU2d: _qconv, nnq.Linear: _qlinear, nniq.LinearReLU: _qlinear,
        nnq.SameScale: _same_scale,
    }

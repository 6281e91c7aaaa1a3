"""``deepseek.onnx``: export to ONNX (``torch.onnx.export``'s spelling).

``export(model, args, f, opset_version=17, input_names=..., output_names=...,
dynamic_axes=...)`` traces one forward run of ``model`` (in eval mode) and writes the graph
with deepseek's Rust ONNX writer (``deepseek::onnx``, hand-declared protobuf messages).

How the trace works: the known layers are converted as units, from their parameters and
settings (``Linear``, ``Embedding``, ``LayerNorm``, ``LSTM``/``GRU`` with the gate order
reordered for ONNX, ``Conv1d``/``Conv2d``, pools, ``BatchNorm`` in inference form,
``Dropout``, ``Flatten``, the activations); the code between layers is traced through the
common tensor ops (arithmetic, ``matmul``, ``reshape``/``view``/``flatten``, ``transpose``/
``permute``, indexing with ints and slices, ``mean``/``sum``, ``softmax``, ``cat``, the
functional activations...). Parameters and other constant tensors used directly become
initializers. A deepseek layer or op with no ONNX form is an error that names it (and the
module), never a silently wrong graph. Statically quantized models (``deepseek.quantization.
convert``) are exported in QDQ form (``deepseek.onnx.qdq``), which ONNX Runtime runs on its
int8 kernels.
"""

import math
import numbers

import numpy as np

from .. import _C
from .._grad_mode import enable_grad

__all__ = ["export", "ExportError"]

_FLOAT_TYPES = ("float32", "float64", "float16", "bfloat16")


class ExportError(RuntimeError):
    """The model uses a layer or an op with no ONNX form (the message names it)."""


def _dtype_name(t):
    return str(t.dtype).split(".")[-1]


_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
              "bfloat16": np.float32, "int64": np.int64, "int32": np.int32,
              "uint8": np.uint8, "bool": np.bool_}


def _np_dtype(t):
    return _NP_DTYPES[_dtype_name(t)]


def _np(t):
    return np.asarray(t.detach().float().numpy(force=True)) if t.dtype == _C.bfloat16 \
        else np.asarray(t.detach().numpy(force=True))


class _Graph:
    def __init__(self, opset):
        self.opset = opset
        self.nodes = []
        self.inits = []
        self.env = {}
        self.keep = []
        self.used = set()
        self.depth = 0
        self.counter = 0
        self.states = set()

    def fresh(self, base):
        base = base.replace(".", "_") or "v"
        name = base
        while name in self.used:
            self.counter += 1
            name = f"{base}_{self.counter}"
        self.used.add(name)
        return name

    def bind(self, t, name):
        self.keep.append(t)
        self.env[id(t)] = name

    def traced(self, t):
        return isinstance(t, _C.Tensor) and id(t) in self.env

    def const(self, value, base="const", dtype=None):
        """An initializer from a tensor or array-like value."""
        if isinstance(value, _C.Tensor):
            t = value.detach().contiguous()
        else:
            t = _C.from_numpy(np.ascontiguousarray(np.asarray(value)))
        if dtype is not None:
            t = t.to(dtype)
        name = self.fresh(base)
        self.inits.append((name, t))
        return name

    def ints(self, values, base="shape"):
        return self.const(np.asarray(values, dtype=np.int64), base)

    def node(self, op, inputs, n_out=1, base=None, **attrs):
        outs = [self.fresh(f"{base or op}_out{i if n_out > 1 else ''}") for i in range(n_out)]
        self.nodes.append((op, self.fresh(f"{op}_node"), list(inputs), outs, attrs))
        return outs if n_out > 1 else outs[0]

    def name_of(self, t, where):
        """The graph value of tensor ``t`` (a constant leaf becomes an initializer)."""
        if not isinstance(t, _C.Tensor):
            raise ExportError(f"deepseek.onnx.export: {where} got a {type(t).__name__}, "
                              "expected a tensor")
        if id(t) in self.env:
            return self.env[id(t)]
        gf = t.grad_fn
        # While tracing, parameters do not require grad and the graph's float inputs (and the
        # outputs of converted layers) do: a tensor without history depends on constants only.
        if gf is None and (t.is_floating_point() or id(t) in self.states):
            name = self.const(t, "constant")
            self.bind(t, name)
            return name
        what = f" ({gf})" if gf is not None else ""
        raise ExportError(
            f"deepseek.onnx.export: the input of {where} was computed by an operation with no "
            f"ONNX form in the exporter{what}; supported: the deepseek.nn layers and tensor "
            "ops listed in deepseek.onnx's documentation")


# ----------------------------------------------------------------------------- layers

def _scalar_like(g, v, like, base="scalar"):
    return g.const(np.asarray(v, dtype=_np_dtype(like) if isinstance(like, _C.Tensor)
                              else np.float32), base)


def _linear(g, m, x, out, name):
    xn = g.name_of(x, name)
    w = g.const(m.weight.detach().t().contiguous(), f"{name}.weight_T")
    y = g.node("MatMul", [xn, w], base=name)
    if m.bias is not None:
        y = g.node("Add", [y, g.const(m.bias, f"{name}.bias")], base=name)
    g.bind(out, y)


def _embedding(g, m, x, out, name):
    g.bind(out, g.node("Gather", [g.const(m.weight, f"{name}.weight"), g.name_of(x, name)],
                       base=name, axis=0))


def _layer_norm(g, m, x, out, name):
    if g.opset < 17:
        raise ExportError(f"deepseek.onnx.export: LayerNorm ({name}) needs opset_version >= 17")
    shape = tuple(m.normalized_shape)
    w = m.weight if m.weight is not None else _C.ones(*shape)
    b = m.bias if getattr(m, "bias", None) is not None else _C.zeros(*shape)
    g.bind(out, g.node("LayerNormalization",
                       [g.name_of(x, name), g.const(w, f"{name}.weight"),
                        g.const(b, f"{name}.bias")],
                       base=name, axis=-len(shape), epsilon=float(m.eps)))


def _gelu(g, xn, approximate, like, base):
    if approximate == "tanh":
        x3 = g.node("Mul", [xn, g.node("Mul", [xn, xn])])
        inner = g.node("Add", [xn, g.node("Mul", [x3, _scalar_like(g, 0.044715, like)])])
        t = g.node("Tanh", [g.node("Mul", [inner, _scalar_like(g, math.sqrt(2 / math.pi),
                                                                 like)])])
    else:
        t = g.node("Erf", [g.node("Div", [xn, _scalar_like(g, math.sqrt(2.0), like)])])
    one_plus = g.node("Add", [t, _scalar_like(g, 1.0, like)])
    return g.node("Mul", [g.node("Mul", [xn, one_plus]), _scalar_like(g, 0.5, like)], base=base)


def _activation(g, m, x, out, name):
    xn = g.name_of(x, name)
    kind = type(m).__name__
    if kind == "ReLU":
        y = g.node("Relu", [xn], base=name)
    elif kind == "Tanh":
        y = g.node("Tanh", [xn], base=name)
    elif kind == "Sigmoid":
        y = g.node("Sigmoid", [xn], base=name)
    elif kind == "GELU":
        y = _gelu(g, xn, m.approximate, x, name)
    elif kind == "SiLU":
        y = g.node("Mul", [xn, g.node("Sigmoid", [xn])], base=name)
    elif kind in ("Softmax", "LogSoftmax"):
        if m.dim is None:
            raise ExportError(f"deepseek.onnx.export: {kind} ({name}) needs an explicit dim")
        y = g.node(kind, [xn], base=name, axis=int(m.dim))
    elif kind == "LeakyReLU":
        y = g.node("LeakyRelu", [xn], base=name, alpha=float(m.negative_slope))
    elif kind == "ELU":
        y = g.node("Elu", [xn], base=name, alpha=float(m.alpha))
    elif kind == "Softplus":
        if m.beta == 1:
            y = g.node("Softplus", [xn], base=name)
        else:
            b = _scalar_like(g, m.beta, x)
            y = g.node("Div", [g.node("Softplus", [g.node("Mul", [xn, b])]), b], base=name)
    else:  # Identity, Dropout (eval)
        y = g.node("Identity", [xn], base=name)
    g.bind(out, y)


def _reshape_flatten(g, xn, shape, start, end, base):
    nd = len(shape)
    if nd == 0:
        return g.node("Reshape", [xn, g.ints([1])], base=base)
    s, e = start % nd, end % nd
    target = [0] * s + [-1] + list(shape[e + 1:])
    return g.node("Reshape", [xn, g.ints(target)], base=base)


def _flatten(g, m, x, out, name):
    g.bind(out, _reshape_flatten(g, g.name_of(x, name), tuple(x.shape), m.start_dim,
                                 m.end_dim, name))


def _unflatten(g, m, x, out, name):
    shape = list(x.shape)
    d = m.dim % len(shape)
    # 0 copies the input dim at the same index, so dims after the split are spelled out
    target = [0] * d + list(out.shape[d:])
    g.bind(out, g.node("Reshape", [g.name_of(x, name), g.ints(target)], base=name))


def _conv(g, m, x, out, name):
    k = list(m.kernel_size)
    pads = list(m.padding)
    ins = [g.name_of(x, name), g.const(m.weight, f"{name}.weight")]
    if m.bias is not None:
        ins.append(g.const(m.bias, f"{name}.bias"))
    g.bind(out, g.node("Conv", ins, base=name, kernel_shape=k, strides=list(m.stride),
                       pads=pads + pads, dilations=list(m.dilation), group=int(m.groups)))


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def _max_pool(g, m, x, out, name):
    if getattr(m, "return_indices", False):
        raise ExportError(f"deepseek.onnx.export: MaxPool2d ({name}) with return_indices has "
                          "no ONNX form here")
    p = _pair(m.padding)
    g.bind(out, g.node("MaxPool", [g.name_of(x, name)], base=name,
                       kernel_shape=_pair(m.kernel_size), strides=_pair(m.stride),
                       pads=p + p, dilations=_pair(m.dilation), ceil_mode=int(m.ceil_mode)))


def _avg_pool(g, m, x, out, name):
    if m.divisor_override is not None:
        raise ExportError(f"deepseek.onnx.export: AvgPool2d ({name}) with divisor_override "
                          "has no ONNX form")
    p = _pair(m.padding)
    g.bind(out, g.node("AveragePool", [g.name_of(x, name)], base=name,
                       kernel_shape=_pair(m.kernel_size), strides=_pair(m.stride),
                       pads=p + p, ceil_mode=int(m.ceil_mode),
                       count_include_pad=int(m.count_include_pad)))


def _adaptive_avg(g, m, x, out, name):
    if _pair(m.output_size) != [1, 1]:
        raise ExportError(f"deepseek.onnx.export: AdaptiveAvgPool2d ({name}) is exported only "
                          "for output_size 1 (GlobalAveragePool)")
    g.bind(out, g.node("GlobalAveragePool", [g.name_of(x, name)], base=name))


def _batch_norm(g, m, x, out, name):
    if m.running_mean is None:
        raise ExportError(f"deepseek.onnx.export: {type(m).__name__} ({name}) without running "
                          "statistics has no inference form")
    c = m.num_features
    w = m.weight if m.weight is not None else _C.ones(c)
    b = m.bias if m.bias is not None else _C.zeros(c)
    g.bind(out, g.node("BatchNormalization",
                       [g.name_of(x, name), g.const(w, f"{name}.weight"),
                        g.const(b, f"{name}.bias"), g.const(m.running_mean, f"{name}.mean"),
                        g.const(m.running_var, f"{name}.var")],
                       base=name, epsilon=float(m.eps)))


def _converters():
    from ..nn import layers as L
    conv = {
        L.Linear: _linear, L.Embedding: _embedding, L.LayerNorm: _layer_norm,
        L.Flatten: _flatten, L.Unflatten: _unflatten, L.Conv1d: _conv, L.Conv2d: _conv,
        L.MaxPool2d: _max_pool, L.AvgPool2d: _avg_pool, L.AdaptiveAvgPool2d: _adaptive_avg,
        L.BatchNorm1d: _batch_norm, L.BatchNorm2d: _batch_norm,
    }
    for n in ("ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softmax", "LogSoftmax", "LeakyReLU",
              "ELU", "Softplus", "Identity", "Dropout"):
        conv[getattr(L, n)] = _activation
    from .qdq import quantized_converters
    conv.update(quantized_converters())  # QDQ form of statically quantized models
    from .rnn import rnn
    multi = {L.LSTM: rnn, L.GRU: rnn}
    return conv, multi


# ----------------------------------------------------------------------------- tensor ops

def _binary(op, reverse=False):
    def emit(g, out, a, b):
        if not (g.traced(a) or g.traced(b)):
            return
        like = a if isinstance(a, _C.Tensor) else b
        names = []
        for v in (a, b):
            if isinstance(v, _C.Tensor):
                names.append(g.name_of(v, f"'{op}'"))
            elif isinstance(v, numbers.Number):
                names.append(g.const(np.asarray(v, dtype=_np_dtype(like)), "scalar"))
            else:
                raise ExportError(f"deepseek.onnx.export: {op} with a {type(v).__name__} "
                                  "operand has no ONNX form")
        if reverse:
            names.reverse()
        g.bind(out, g.node(op, names))
    return emit


def _unary(op):
    def emit(g, out, x, *a, **k):
        if g.traced(x):
            g.bind(out, g.node(op, [g.name_of(x, op)]))
    return emit


def _shape_args(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return list(args[0])
    return list(args)


def _reshape(g, out, x, *shape):
    if not g.traced(x):
        return
    target = _shape_args(shape)
    ins = list(x.shape)
    # 0 = "the input's dim at this index", which keeps dynamic axes (e.g. batch) dynamic
    spec = [0 if i < len(ins) and t == ins[i] and t != -1 else int(t)
            for i, t in enumerate(target)]
    g.bind(out, g.node("Reshape", [g.name_of(x, "reshape"), g.ints(spec)]))


def _flatten_op(g, out, x, start_dim=0, end_dim=-1):
    if g.traced(x):
        g.bind(out, _reshape_flatten(g, g.name_of(x, "flatten"), tuple(x.shape), start_dim,
                                     end_dim, "flatten"))


def _transpose(g, out, x, d0, d1):
    if g.traced(x):
        n = x.dim()
        perm = list(range(n))
        perm[d0 % n], perm[d1 % n] = perm[d1 % n], perm[d0 % n]
        g.bind(out, g.node("Transpose", [g.name_of(x, "transpose")], perm=perm))


def _permute(g, out, x, *dims):
    if g.traced(x):
        n = x.dim()
        g.bind(out, g.node("Transpose", [g.name_of(x, "permute")],
                           perm=[d % n for d in _shape_args(dims)]))


def _t(g, out, x):
    if g.traced(x):
        perm = [1, 0] if x.dim() == 2 else list(range(x.dim()))
        g.bind(out, g.node("Transpose", [g.name_of(x, "t")], perm=perm))


def _passthrough(g, out, x, *a, **k):
    if g.traced(x):
        g.bind(out, g.name_of(x, "contiguous"))


def _reduce(op):
    def emit(g, out, x, dim=None, keepdim=False, dtype=None):
        if not g.traced(x):
            return
        xn = g.name_of(x, op)
        n = x.dim()
        axes = list(range(n)) if dim is None else [
            d % n for d in (dim if isinstance(dim, (tuple, list)) else [dim])]
        if op == "ReduceSum" or g.opset >= 18:  # axes became an input
            y = g.node(op, [xn, g.ints(axes)], keepdims=int(keepdim))
        else:
            y = g.node(op, [xn], axes=axes, keepdims=int(keepdim))
        g.bind(out, y)
    return emit


def _softmax_op(op):
    def emit(g, out, x, dim=None, *a, **k):
        if g.traced(x):
            if dim is None:
                raise ExportError(f"deepseek.onnx.export: {op} needs an explicit dim")
            g.bind(out, g.node(op, [g.name_of(x, op)], axis=int(dim)))
    return emit


def _unsqueeze(g, out, x, dim):
    if g.traced(x):
        d = dim % (x.dim() + 1)
        g.bind(out, g.node("Unsqueeze", [g.name_of(x, "unsqueeze"), g.ints([d])]))


def _squeeze(g, out, x, dim=None):
    if g.traced(x):
        if dim is None:
            dims = [i for i, s in enumerate(x.shape) if s == 1]
        else:
            dims = [d % x.dim() for d in (dim if isinstance(dim, (tuple, list)) else [dim])]
            dims = [d for d in dims if x.shape[d] == 1]
        if not dims:
            g.bind(out, g.name_of(x, "squeeze"))
        else:
            g.bind(out, g.node("Squeeze", [g.name_of(x, "squeeze"), g.ints(dims)]))


def _getitem(g, out, x, key):
    if not g.traced(x):
        return
    if not isinstance(key, tuple):
        key = (key,)
    n = x.dim()
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (n - len(key) + 1) + key[i + 1:]
    cur = g.name_of(x, "indexing")
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for d, k in enumerate(key):
        if isinstance(k, bool) or not isinstance(k, (int, slice)):
            raise ExportError(f"deepseek.onnx.export: indexing with {type(k).__name__} has no "
                              "ONNX form here (ints, slices and ... are exported)")
        size = x.shape[d]
        if isinstance(k, int):
            i = k % size
            starts.append(i)
            ends.append(i + 1)
            axes.append(d)
            steps.append(1)
            squeeze.append(d)
        else:
            s, e, st = k.indices(size)
            if st <= 0:
                raise ExportError("deepseek.onnx.export: slices with a non-positive step "
                                  "have no ONNX form here")
            if (s, e, st) == (0, size, 1):
                continue
            # an open end stays open, so a dynamic axis keeps working
            starts.append(s)
            ends.append(e if k.stop is not None else np.iinfo(np.int64).max)
            axes.append(d)
            steps.append(st)
    if axes:
        cur = g.node("Slice", [cur, g.ints(starts), g.ints(ends), g.ints(axes),
                               g.ints(steps)])
    if squeeze:
        cur = g.node("Squeeze", [cur, g.ints(squeeze)])
    g.bind(out, cur)


def _matmul(g, out, a, b):
    if g.traced(a) or g.traced(b):
        g.bind(out, g.node("MatMul", [g.name_of(a, "matmul"), g.name_of(b, "matmul")]))


def _cat(g, out, tensors, dim=0):
    tensors = list(tensors)
    if any(g.traced(t) for t in tensors):
        n = tensors[0].dim()
        g.bind(out, g.node("Concat", [g.name_of(t, "cat") for t in tensors], axis=dim % n))


def _f_gelu(g, out, x, approximate="none"):
    if g.traced(x):
        g.bind(out, _gelu(g, g.name_of(x, "gelu"), approximate, x, "gelu"))


def _f_silu(g, out, x, *a, **k):
    if g.traced(x):
        xn = g.name_of(x, "silu")
        g.bind(out, g.node("Mul", [xn, g.node("Sigmoid", [xn])]))


def _f_linear(g, out, x, w, b=None):
    if g.traced(x) or g.traced(w):
        wt = g.node("Transpose", [g.name_of(w, "linear")], perm=[1, 0])
        y = g.node("MatMul", [g.name_of(x, "linear"), wt])
        if b is not None:
            y = g.node("Add", [y, g.name_of(b, "linear")])
        g.bind(out, y)


def _f_dropout(g, out, x, *a, **k):
    if g.traced(x):
        g.bind(out, g.name_of(x, "dropout"))


def _tensor_patches():
    return {
        "__add__": _binary("Add"), "__radd__": _binary("Add", True),
        "__sub__": _binary("Sub"), "__rsub__": _binary("Sub", True),
        "__mul__": _binary("Mul"), "__rmul__": _binary("Mul", True),
        "__truediv__": _binary("Div"), "__rtruediv__": _binary("Div", True),
        "add": _binary("Add"), "sub": _binary("Sub"), "mul": _binary("Mul"),
        "div": _binary("Div"), "matmul": _matmul, "__matmul__": _matmul,
        "__neg__": _unary("Neg"), "neg": _unary("Neg"), "relu": _unary("Relu"),
        "tanh": _unary("Tanh"), "sigmoid": _unary("Sigmoid"), "exp": _unary("Exp"),
        "log": _unary("Log"), "sqrt": _unary("Sqrt"), "abs": _unary("Abs"),
        "view": _reshape, "reshape": _reshape, "flatten": _flatten_op,
        "transpose": _transpose, "permute": _permute, "t": _t,
        "contiguous": _passthrough, "clone": _passthrough, "detach": _passthrough,
        "mean": _reduce("ReduceMean"), "sum": _reduce("ReduceSum"),
        "amax": _reduce("ReduceMax"), "softmax": _softmax_op("Softmax"),
        "log_softmax": _softmax_op("LogSoftmax"), "unsqueeze": _unsqueeze,
        "squeeze": _squeeze, "__getitem__": _getitem,
    }


def _functional_patches():
    return {
        "relu": _unary("Relu"), "tanh": _unary("Tanh"), "sigmoid": _unary("Sigmoid"),
        "gelu": _f_gelu, "silu": _f_silu, "softmax": _softmax_op("Softmax"),
        "log_softmax": _softmax_op("LogSoftmax"), "linear": _f_linear,
        "dropout": _f_dropout,
    }


def _wrap(g, orig, emit, name):
    def wrapper(*a, **k):
        out = orig(*a, **k)
        if g.depth == 0 and isinstance(out, _C.Tensor):
            try:
                emit(g, out, *a, **k)
            except ExportError:
                raise
            except TypeError as e:
                raise ExportError(f"deepseek.onnx.export: cannot export this call of "
                                  f"'{name}' ({e})") from None
        return out
    wrapper.__name__ = getattr(orig, "__name__", name)
    wrapper.__doc__ = getattr(orig, "__doc__", None)
    return wrapper


# ----------------------------------------------------------------------------- export

def _fresh_leaf(o):
    if isinstance(o, _C.Tensor):
        return o.detach().requires_grad_(True) if o.is_floating_point() else o
    if isinstance(o, tuple):
        return tuple(_fresh_leaf(v) for v in o)
    if isinstance(o, list):
        return [_fresh_leaf(v) for v in o]
    return o


def _flat_outputs(out):
    if isinstance(out, _C.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        r = []
        for o in out:
            r.extend(_flat_outputs(o))
        return r
    if out is None:
        return []
    raise ExportError(f"deepseek.onnx.export: the model returned a {type(out).__name__}; "
                      "tensors, or tuples/lists of them, are exported")


def _dims(name, t, dynamic_axes, dynamic_any):
    dims = [int(s) for s in t.shape]
    spec = (dynamic_axes or {}).get(name)
    if spec is not None:
        if isinstance(spec, dict):
            for ax, label in spec.items():
                dims[int(ax) % len(dims)] = str(label)
        else:
            for ax in spec:
                dims[int(ax) % len(dims)] = f"{name}_dynamic_axes_{int(ax) % len(dims) + 1}"
    return dims


_IN_EXPORT = False


def is_in_onnx_export():
    """True while :func:`export` is tracing a model (PyTorch's
    ``torch.onnx.is_in_onnx_export``)."""
    return _IN_EXPORT


def export(model, args, f, export_params=True, verbose=False, training=None,
           input_names=None, output_names=None, opset_version=17, dynamic_axes=None,
           do_constant_folding=True, **kwargs):
    """Exports ``model`` run on ``args`` (a tensor or a tuple of tensors) to the ONNX file
    ``f`` (a path). ``input_names``/``output_names`` name the graph's inputs and outputs
    (default ``input``/``input_N`` and ``output``/``output_N``); ``dynamic_axes`` maps those
    names to the axes that may change size (``{"x": {0: "batch"}}`` or ``{"x": [0]}``).
    ``opset_version``: 14 to 20 (17 by default; LayerNorm needs 17). Raises
    :class:`ExportError` naming the layer or op that has no ONNX form."""
    from ..nn.module import Module
    from ..nn import functional as F
    import deepseek as _ds

    if kwargs:
        raise TypeError(f"export() got unsupported arguments: {', '.join(kwargs)}")
    if not isinstance(model, Module):
        raise TypeError(f"deepseek.onnx.export expects a deepseek.nn.Module, got "
                        f"{type(model).__name__}")
    if not export_params:
        raise ValueError("deepseek.onnx.export: export_params=False is not supported")
    if not 14 <= int(opset_version) <= 20:
        raise ValueError(f"deepseek.onnx.export: opset_version {opset_version} is not "
                         "supported (14 to 20)")
    if isinstance(args, _C.Tensor):
        args = (args,)
    args = tuple(args)
    if args and isinstance(args[-1], dict):
        if args[-1]:
            raise ExportError("deepseek.onnx.export: keyword inputs are not supported")
        args = args[:-1]
    for a in args:
        if not isinstance(a, _C.Tensor):
            raise ExportError(f"deepseek.onnx.export: inputs must be tensors, got "
                              f"{type(a).__name__}")
    g = _Graph(int(opset_version))
    in_names = list(input_names or [])
    in_names += [("input" if len(args) == 1 else f"input_{i}")
                 for i in range(len(in_names), len(args))]
    for n in in_names:
        g.used.add(n)
    args = tuple(_fresh_leaf(a) for a in args)
    for a, n in zip(args, in_names):
        g.bind(a, n)
    g.states = {id(t) for t in list(model.parameters()) + list(model.buffers())}

    conv, multi = _converters()
    handles, restore = [], []
    converted_prefixes = []
    from .attention import forward_patches
    units = forward_patches(g, model, _fresh_leaf)  # attention modules, converted as units

    def make_pre():
        def pre(mod, inputs):
            g.depth += 1
        return pre

    def make_post(fn, mod_name, is_multi):
        def post(mod, inputs, out):
            g.depth -= 1
            if g.depth != 0:
                return None
            # fresh leaves that require grad: what later ops compute from them has history
            out = _fresh_leaf(out)
            if is_multi:
                fn(g, mod, inputs, out, mod_name)
            else:
                if len(inputs) != 1:
                    raise ExportError(f"deepseek.onnx.export: {type(mod).__name__} "
                                      f"({mod_name}) called with {len(inputs)} inputs")
                fn(g, mod, inputs[0], out, mod_name)
            return out
        return post

    def refuse(mod_name):
        def pre(mod, inputs):
            if g.depth == 0:
                raise ExportError(f"deepseek.onnx.export: {type(mod).__name__} (module "
                                  f"'{mod_name or '<model>'}') has no ONNX form in the "
                                  "exporter")
        return pre

    for mod_name, mod in model.named_modules():
        if any(mod_name.startswith(p + ".") for p in converted_prefixes):
            continue
        t = type(mod)
        label = mod_name or "model"
        if t in units:
            converted_prefixes.append(mod_name)
        elif t in conv or t in multi:
            converted_prefixes.append(mod_name)
            handles.append(mod.register_forward_pre_hook(make_pre()))
            handles.append(mod.register_forward_hook(
                make_post(multi.get(t) or conv[t], label, t in multi)))
        elif t.__module__.startswith("deepseek.nn") and t.__name__ not in (
                "Sequential", "ModuleList", "ModuleDict", "TransformerEncoder"):
            handles.append(mod.register_forward_pre_hook(refuse(mod_name)))

    def patch(owner, name, emit):
        if name not in owner.__dict__ and not hasattr(owner, name):
            return
        orig = getattr(owner, name)
        had = name in owner.__dict__
        setattr(owner, name, _wrap(g, orig, emit, name))
        restore.append((owner, name, orig, had))

    global _IN_EXPORT
    was_training = model.training
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        _IN_EXPORT = True
        for p, _ in grads:
            p.requires_grad_(False)
        for name, emit in _tensor_patches().items():
            patch(_C.Tensor, name, emit)
        for name, emit in _functional_patches().items():
            patch(F, name, emit)
        for cls, fwd in units.items():
            restore.append((cls, "forward", cls.forward, True))
            cls.forward = fwd
        patch(_ds, "cat", _cat)
        model.eval()
        with enable_grad():
            out = model(*args)
    finally:
        _IN_EXPORT = False
        for owner, name, orig, had in reversed(restore):
            if had or isinstance(owner, type):
                setattr(owner, name, orig)
            else:
                delattr(owner, name)
        for h in handles:
            h.remove()
        for p, rg in grads:
            p.requires_grad_(rg)
        model.train(was_training)

    outs = _flat_outputs(out)
    if not outs:
        raise ExportError("deepseek.onnx.export: the model returned no tensor")
    out_names = list(output_names or [])
    out_names += [("output" if len(outs) == 1 else f"output_{i}")
                  for i in range(len(out_names), len(outs))]
    dyn = bool(dynamic_axes)
    for n in list(dynamic_axes or {}):
        if n not in in_names and n not in out_names:
            raise ValueError(f"deepseek.onnx.export: dynamic_axes names {n!r}, which is not an "
                             "input or output name")
    for t, n in zip(outs, out_names):
        src = g.name_of(t, f"the model's output '{n}'")
        g.used.add(n)
        g.nodes.append(("Identity", g.fresh(f"{n}_identity"), [src], [n], {}))
    inputs = [(n, _dtype_name(a), _dims(n, a, dynamic_axes, dyn)) for a, n in zip(args, in_names)]
    outputs = []
    for t, n in zip(outs, out_names):
        dims = _dims(n, t, dynamic_axes, dyn)
        if dyn and (dynamic_axes or {}).get(n) is None:
            # sizes that follow a dynamic input are not known statically
            dims = [f"{n}_dim{i}" for i in range(len(dims))]
        outputs.append((n, _dtype_name(t), dims))
    _C.onnx_save(str(f), "main_graph", g.opset, inputs, outputs, g.inits, g.nodes)
    if verbose:
        print(f"deepseek.onnx.export: {len(g.nodes)} nodes, {len(g.inits)} initializers -> {f}")

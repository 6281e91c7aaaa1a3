"""``prune.shrink``: turn structurally pruned output channels into a smaller dense model.

A deepseek extension (PyTorch has no such call). See :func:`shrink`.
"""

import copy
import warnings

import numpy as np

from ... import _C
from ..._grad_mode import no_grad
from ..parameter import Parameter

_ELEMENTWISE = ("ReLU", "ReLU6", "LeakyReLU", "ELU", "CELU", "SELU", "GELU", "SiLU", "Sigmoid",
                "Tanh", "Hardtanh", "Hardswish", "Hardsigmoid", "Mish", "Softplus", "Softsign",
                "Tanhshrink", "LogSigmoid", "Hardshrink", "Softshrink")
_IDENTITY = ("Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout")
_CONST_POOLS = {  # pools that keep a constant channel constant (number of pooled dims)
    "MaxPool1d": 1, "MaxPool2d": 2, "MaxPool3d": 3, "AdaptiveAvgPool1d": 1,
    "AdaptiveAvgPool2d": 2, "AdaptiveAvgPool3d": 3, "AdaptiveMaxPool1d": 1,
    "AdaptiveMaxPool2d": 2, "AdaptiveMaxPool3d": 3}
_AVG_POOLS = {"AvgPool1d": 1, "AvgPool2d": 2, "AvgPool3d": 3}


def _kinds():
    from ... import nn
    from ...quantization.quantize import DeQuantStub, QuantStub

    def pick(names):
        return tuple(getattr(nn, n) for n in names if hasattr(nn, n))

    return {
        "conv": pick(("Conv1d", "Conv2d", "Conv3d")),
        "linear": (nn.Linear,),
        "bn": pick(("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")),
        "elementwise": pick(_ELEMENTWISE),
        "identity": pick(_IDENTITY) + (QuantStub, DeQuantStub),
        "flatten": (nn.Flatten,),
        "pool": {getattr(nn, n): k for n, k in {**_CONST_POOLS, **_AVG_POOLS}.items()
                 if hasattr(nn, n)},
        "avg": tuple(getattr(nn, n) for n in _AVG_POOLS if hasattr(nn, n)),
        "sequential": nn.Sequential,
    }


def _np(t):
    return None if t is None else np.array(t.detach().numpy(force=True))


def _effective(mod, name):
    """The value ``mod.<name>`` has in a forward: ``<name>_orig * <name>_mask`` while a pruning
    mask is attached, else the plain parameter."""
    if name + "_orig" in mod._parameters and name + "_mask" in mod._buffers:
        return _np(mod._parameters[name + "_orig"]) * _np(mod._buffers[name + "_mask"])
    return _np(getattr(mod, name, None))


class _Step:
    """One call of a leaf module: its name, the module and (when traced) its input and
    output shapes."""

    def __init__(self, name, mod, in_shape=None, out_shape=None):
        self.name, self.mod = name or "<model>", mod
        self.in_shape, self.out_shape = in_shape, out_shape
        self.next = None      # the _Step consuming this step's output, if proven
        self.why = None       # why there is no proven consumer


class ShrinkError(ValueError):
    """``shrink`` cannot prove how to remove the pruned channels (the message names the
    layer)."""


def _sequential_steps(model, kinds):
    """Steps of every maximal chain of (nested) ``Sequential`` containers: each child
    consumes its predecessor's output."""
    seq = kinds["sequential"]
    steps = {}

    def leaves(mod, prefix):
        out = []
        for n, child in mod._modules.items():
            if child is None:
                continue
            name = f"{prefix}.{n}" if prefix else n
            out.extend(leaves(child, name) if isinstance(child, seq) else [(name, child)])
        return out

    def visit(mod, prefix):
        for n, child in mod._modules.items():
            if child is None:
                continue
            name = f"{prefix}.{n}" if prefix else n
            if isinstance(child, seq):
                chain(leaves(child, name), False)
            else:
                visit(child, name)

    def chain(items, is_model):
        prev = None
        for name, mod in items:
            step = _Step(name, mod)
            steps.setdefault(id(mod), []).append(step)
            if prev is not None:
                prev.next = step
            prev = step
            visit(mod, name)
        if prev is not None:
            prev.why = ("its output is the model's output" if is_model else
                        "it is the last layer of a Sequential and the model's forward is not "
                        "traced (pass example_input)")

    if isinstance(model, seq):
        chain(leaves(model, ""), True)
    else:
        visit(model, "")
    return steps


def _flat_tensors(out, acc):
    if isinstance(out, _C.Tensor):
        acc.append(out)
    elif isinstance(out, (tuple, list)):
        for o in out:
            _flat_tensors(o, acc)
    elif isinstance(out, dict):
        for o in out.values():
            _flat_tensors(o, acc)
    return acc


def _traced_steps(model, example_input):
    """Runs ``model`` once on ``example_input`` (eval mode, no grad) with a hook on every
    leaf module; links a call to the single module call that consumes its output tensor.
    Returns (steps by module id, the model's outputs)."""
    calls, keep, handles = [], [], []
    args = example_input if isinstance(example_input, tuple) else (example_input,)

    def hook(name):
        def post(mod, inputs, out):
            tin = [t for t in inputs if isinstance(t, _C.Tensor)]
            if not isinstance(out, _C.Tensor) or (tin and out is tin[0]):
                return None  # an identity that returns its input: the tensor flows through
            keep.extend(tin + [out])
            calls.append((name, mod, [id(t) for t in tin],
                          tuple(tin[0].shape) if tin else None, id(out), tuple(out.shape)))
            return None
        return post

    for name, mod in model.named_modules():
        if not mod._modules:
            handles.append(mod.register_forward_hook(hook(name)))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            out = model(*args)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    outs = _flat_tensors(out, [])
    out_ids = {id(t) for t in outs}
    steps, by_out, consumers = {}, {}, {}
    for name, mod, in_ids, in_shape, out_id, out_shape in calls:
        step = _Step(name, mod, in_shape, out_shape)
        step.n_inputs = len(in_ids)
        steps.setdefault(id(mod), []).append(step)
        by_out[out_id] = step
        for i in in_ids:
            consumers.setdefault(i, []).append(step)
    for out_id, step in by_out.items():
        users = consumers.get(out_id, [])
        if out_id in out_ids:
            step.why = "its output is (part of) the model's output"
        elif len(users) > 1:
            step.why = (f"its output is used by {len(users)} layers "
                        f"({', '.join(u.name for u in users)})")
        elif not users:
            step.why = ("its output is not passed to another layer (a tensor op or functional "
                        "call in the forward consumes it)")
        elif getattr(users[0], "n_inputs", 1) != 1:
            step.why = f"its output goes to '{users[0].name}', which takes several inputs"
        else:
            step.next = users[0]
    del keep
    return steps, outs


def _conv_padded(mod):
    pad = mod.padding
    if isinstance(pad, str):
        return pad == "same" and any(k > 1 for k in mod.kernel_size)
    return any(p != 0 for p in (pad if isinstance(pad, (tuple, list)) else (pad,)))


def _pool_padded(mod):
    pad = getattr(mod, "padding", 0)
    pads = pad if isinstance(pad, (tuple, list)) else (pad,)
    return any(p != 0 for p in pads) and getattr(mod, "count_include_pad", True)


class _Edit:
    def __init__(self):
        self.keep_out = None
        self.keep_in = None
        self.bias_add = None


def _follow(prod, keep, drop, const, kinds, edits, claimed, steps):
    """Walks from producer step ``prod`` to the layer that consumes its channels, shrinking
    the BatchNorms on the way and folding the dropped channels' constant outputs into the
    consumer's bias. Returns None when that folding is exact, else the reason it is not."""
    is_conv = isinstance(prod.mod, kinds["conv"])
    n_ch = len(keep) + len(drop)
    ndim = len(prod.out_shape) if prod.out_shape else None
    if ndim is None and is_conv:
        ndim = _effective(prod.mod, "weight").ndim  # [N, C, *spatial] has the weight's rank
    axis = 1 if is_conv else (ndim - 1 if ndim else -1)
    positions = np.arange(n_ch)[:, None]  # positions[c]: where channel c sits along `axis`
    inexact = None
    step = prod

    def fail(why):
        raise ShrinkError(f"prune.shrink: output channels of '{prod.name}' "
                          f"({type(prod.mod).__name__}) are pruned, but {why}")

    while True:
        if step.next is None:
            fail(f"'{step.name}' has no provable consumer: {step.why}")
        step = step.next
        m = step.mod
        shape = step.in_shape
        if shape is not None:
            ndim = len(shape)
            if axis < 0:
                axis = ndim - 1
        if isinstance(m, kinds["bn"]):
            if ndim is None and axis == -1:   # untraced Linear → BatchNorm1d: [N, F]
                axis, ndim = 1, 2
            if axis != 1 or m.num_features != positions.size:
                fail(f"BatchNorm '{step.name}' does not normalize its channels")
            if not m.track_running_stats or m.running_mean is None:
                fail(f"BatchNorm '{step.name}' has no running statistics")
            if id(m) in claimed or len(steps[id(m)]) != 1:
                fail(f"BatchNorm '{step.name}' is used more than once")
            claimed.add(id(m))
            e = edits.setdefault(id(m), (step, _Edit()))[1]
            e.keep_out = keep
            rm, rv = _np(m.running_mean).astype(np.float64), _np(m.running_var).astype(np.float64)
            w = _np(m.weight).astype(np.float64) if m.weight is not None else np.ones(n_ch)
            b = _np(m.bias).astype(np.float64) if m.bias is not None else np.zeros(n_ch)
            const = (const - rm[drop]) / np.sqrt(rv[drop] + m.eps) * w[drop] + b[drop]
        elif isinstance(m, kinds["elementwise"]):
            if len(const):
                with no_grad():
                    const = _np(m(_C.from_numpy(const.astype(np.float32)))).astype(np.float64)
        elif isinstance(m, kinds["identity"]):
            pass
        elif type(m) in kinds["pool"]:
            k = kinds["pool"][type(m)]
            if ndim is None and not is_conv:
                fail(f"pooling '{step.name}' follows it and the forward is not traced "
                     "(pass example_input)")
            nd = ndim if ndim is not None else len(prod.mod.kernel_size) + 2
            if axis >= nd - k:
                fail(f"pooling '{step.name}' pools over its channel dimension")
            if isinstance(m, kinds["avg"]) and getattr(m, "divisor_override", None):
                fail(f"pooling '{step.name}' has a divisor_override")
            if isinstance(m, kinds["avg"]) and _pool_padded(m) and np.any(const != 0):
                inexact = (f"the dropped channels' constant output passes '{step.name}', whose "
                           "zero padding (count_include_pad) changes it near the border")
        elif isinstance(m, kinds["flatten"]):
            if shape is None:
                if (m.start_dim, m.end_dim) != (1, -1):
                    fail(f"Flatten '{step.name}' (start_dim={m.start_dim}, end_dim={m.end_dim})"
                         " follows it and the forward is not traced (pass example_input)")
                nxt = step.next.mod if step.next is not None else None
                if not isinstance(nxt, kinds["linear"]) or nxt.in_features % positions.size:
                    fail(f"Flatten '{step.name}' is not followed by a Linear whose in_features "
                         "is a multiple of the channel count (pass example_input)")
                rep = nxt.in_features // positions.size
                if is_conv:   # [N, C, *spatial] → channel c covers c*S .. c*S+S-1
                    positions = (positions.reshape(n_ch, -1)[:, :, None] * rep
                                 + np.arange(rep)).reshape(n_ch, -1)
                else:         # [N, T, F] → feature f sits at t*F + f
                    f = positions.size
                    positions = (positions.reshape(n_ch, -1)[:, :, None]
                                 + f * np.arange(rep)).reshape(n_ch, -1)
                axis = 1
                ndim = 2
                continue
            s, e = m.start_dim % ndim, m.end_dim % ndim
            if s <= axis <= e:
                grid = np.arange(int(np.prod(shape[s:e + 1]))).reshape(shape[s:e + 1])
                new = np.empty((n_ch, grid.size // shape[axis] * positions.shape[1]), np.int64)
                for c in range(n_ch):
                    new[c] = np.sort(np.take(grid, positions[c], axis=axis - s).ravel())
                positions, axis = new, s
            elif axis > e:
                axis -= e - s
            ndim -= e - s
        elif isinstance(m, kinds["conv"]) or isinstance(m, kinds["linear"]):
            conv = isinstance(m, kinds["conv"])
            want = 1 if conv else (ndim - 1 if ndim is not None else axis)
            n_in = m.in_channels if conv else m.in_features
            if axis != want or n_in != positions.size:
                fail(f"'{step.name}' ({type(m).__name__}) does not take its channels as input "
                     "features/channels")
            if conv and m.groups != 1:
                fail(f"'{step.name}' is a grouped convolution (groups={m.groups})")
            if len(steps[id(m)]) != 1:
                fail(f"'{step.name}' is called more than once")
            e = edits.setdefault(id(m), (step, _Edit()))[1]
            if e.keep_in is not None:
                fail(f"'{step.name}' already has its inputs shrunk")
            e.keep_in = np.sort(positions[keep].ravel())
            if np.any(const != 0):
                w = _effective(m, "weight").astype(np.float64)
                if conv:  # inside the image a constant input meets every kernel tap
                    w = w.reshape(w.shape[0], w.shape[1], -1).sum(axis=2)
                # each dropped channel's constant, at each input position it occupies
                add = (w[:, positions[drop]] * const[:, None]).sum(axis=(1, 2))
                if conv:
                    if _conv_padded(m):
                        inexact = inexact or (
                            f"the dropped channels carry a non-zero constant (their bias, "
                            f"shifted by the BatchNorm/activation after them) into "
                            f"'{step.name}', whose zero padding makes its contribution "
                            "differ at the border")
                e.bias_add = add if e.bias_add is None else e.bias_add + add
            return inexact
        else:
            fail(f"its output reaches '{step.name}' ({type(m).__name__}), which shrink cannot "
                 "adapt (supported on the way: BatchNorm, elementwise activations, pooling, "
                 "dropout, Flatten; consumers: Conv, Linear)")


def _set_param(mod, name, value, like):
    """Replaces ``mod.<name>`` (and any pruning of it) by a plain Parameter holding ``value``."""
    from .prune import BasePruningMethod
    for k, hook in list(mod._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            del mod._forward_pre_hooks[k]
    mod._parameters.pop(name + "_orig", None)
    mod._buffers.pop(name + "_mask", None)
    mod.__dict__.pop(name, None)
    t = _C.from_numpy(np.ascontiguousarray(value)).to(like.dtype)
    if str(like.device) != "cpu":
        t = t.to(like.device)
    mod._parameters[name] = Parameter(t, requires_grad=like.requires_grad)


def _like(mod, name):
    return mod._parameters.get(name + "_orig", mod._parameters.get(name))


def _apply(step, e, kinds):
    m = step.mod
    if isinstance(m, kinds["bn"]):
        k = e.keep_out
        for n in ("weight", "bias"):
            if m._parameters.get(n) is not None:
                _set_param(m, n, _np(m._parameters[n])[k], m._parameters[n])
        for n in ("running_mean", "running_var"):
            m._buffers[n] = _C.from_numpy(np.ascontiguousarray(_np(m._buffers[n])[k])).to(
                m._buffers[n].dtype)
        m.num_features = len(k)
        return
    w_like, b_like = _like(m, "weight"), _like(m, "bias")
    w, b = _effective(m, "weight"), _effective(m, "bias")
    if e.bias_add is not None:
        b = (b.astype(np.float64) if b is not None else np.zeros(w.shape[0])) + e.bias_add
        b = b.astype(w.dtype)
        b_like = b_like if b_like is not None else w_like
    if e.keep_out is not None:
        w = w[e.keep_out]
        b = b[e.keep_out] if b is not None else None
    if e.keep_in is not None:
        w = w[:, e.keep_in]
    _set_param(m, "weight", w, w_like)
    if b is not None:
        _set_param(m, "bias", b, b_like)
    if isinstance(m, kinds["conv"]):
        m.out_channels, m.in_channels = w.shape[0], w.shape[1]
    else:
        m.out_features, m.in_features = w.shape


def shrink(model, example_input=None, strict=True, atol=1e-4):
    """Builds the smaller dense model that structured pruning along ``dim=0`` implies
    (a deepseek extension; PyTorch has no such call).

    Every ``Conv1d``/``Conv2d``/``Conv3d``/``Linear`` whose weight has all-zero output
    channels/units (pruned with :func:`ln_structured`/:func:`random_structured` ``dim=0``, the
    mask still attached or already :func:`remove`\\ d) loses them, and the layer that consumes
    its output loses the matching input channels/features: through ``BatchNorm`` (shrunk
    too), elementwise activations, pooling, dropout and ``Flatten`` (one channel of an
    ``[N, C, H, W]`` tensor is ``H*W`` features of the flattened one). A dropped channel still
    outputs a constant (its bias, moved by the BatchNorm/activation after it); that constant
    is folded into the consumer's bias, so the shrunk model computes the same outputs as the
    masked one (in eval mode: BatchNorm with its running statistics, no dropout).

    The data flow is taken from ``Sequential`` containers (each child consumes the previous
    one's output) or, with ``example_input`` (a tensor or a tuple of tensors), from one traced
    forward (module hooks); the traced case then re-runs the shrunk model on
    ``example_input`` and checks its outputs against the original's (``atol`` relative to
    the output's scale). A pruned layer whose consumer cannot be proven (functional calls in
    the forward, a residual branch, the model's output) raises :class:`ShrinkError` naming
    it.

    ``strict=True`` also refuses when the constant fold cannot be exact: a constant entering
    a zero-padded convolution contributes less at the image border than inside. With
    ``strict=False`` that contribution is folded with its interior value (the outputs differ
    near the border, as any channel removal does; fine-tuning recovers it) and a warning is
    issued.

    Returns a new model (``model`` is left unchanged); its pruned layers become plain
    parameters (no ``weight_orig``/``weight_mask``)."""
    from ..module import Module
    if not isinstance(model, Module):
        raise TypeError(f"prune.shrink expects a deepseek.nn.Module, got {type(model).__name__}")
    kinds = _kinds()
    model = copy.deepcopy(model)
    if example_input is not None:
        steps, ref = _traced_steps(model, example_input)
    else:
        steps, ref = _sequential_steps(model, kinds), None
    edits, claimed, inexact = {}, set(), []
    for name, mod in model.named_modules():
        if not isinstance(mod, kinds["conv"] + kinds["linear"]):
            continue
        w = _effective(mod, "weight")
        zero = ~np.any(w.reshape(w.shape[0], -1) != 0, axis=1)
        if not zero.any():
            continue
        mod_id, mod_steps = id(mod), steps.get(id(mod), [])
        if not mod_steps:
            raise ShrinkError(
                f"prune.shrink: output channels of '{name}' are pruned, but its consumer is "
                "unknown: " + ("it is not inside a Sequential and the forward is not traced "
                               "(pass example_input)" if ref is None else
                               "it was not called by the forward on example_input"))
        if len(mod_steps) != 1:
            raise ShrinkError(f"prune.shrink: output channels of '{name}' are pruned, but "
                              f"it is called {len(mod_steps)} times")
        if zero.all():
            raise ShrinkError(f"prune.shrink: every output channel of '{name}' is pruned")
        if isinstance(mod, kinds["conv"]) and mod.groups != 1:
            raise ShrinkError(f"prune.shrink: '{name}' is a grouped convolution "
                              f"(groups={mod.groups}); its channels cannot be removed alone")
        keep, drop = np.nonzero(~zero)[0], np.nonzero(zero)[0]
        b = _effective(mod, "bias")
        const = b[drop].astype(np.float64) if b is not None else np.zeros(len(drop))
        edits.setdefault(mod_id, (mod_steps[0], _Edit()))[1].keep_out = keep
        why = _follow(mod_steps[0], keep, drop, const, kinds, edits, claimed, steps)
        if why:
            inexact.append(f"'{name}': {why}")
    if inexact and strict:
        raise ShrinkError("prune.shrink: the shrunk model cannot reproduce the pruned one "
                          "exactly: " + "; ".join(inexact) + ". Pass strict=False to fold the "
                          "interior value anyway (the border outputs then differ).")
    if inexact:
        warnings.warn("prune.shrink: outputs near the border differ from the pruned model's: "
                      + "; ".join(inexact), stacklevel=2)
    with no_grad():
        for step, e in edits.values():
            _apply(step, e, kinds)
    if ref is not None and not inexact:
        _verify(model, example_input, ref, atol)
    return model


def _verify(model, example_input, ref, atol):
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            got = _flat_tensors(model(*args), [])
    except (RuntimeError, ValueError, TypeError) as e:
        raise ShrinkError(f"prune.shrink: the shrunk model fails on example_input ({e}); the "
                          "forward uses a pruned layer's output in a way the module trace "
                          "cannot see (a residual add, a view with fixed sizes...)") from None
    finally:
        model.train(was_training)
    for a, b in zip(ref, got):
        a, b = _np(a).astype(np.float64), _np(b).astype(np.float64)
        if a.shape != b.shape or np.max(np.abs(a - b), initial=0.0) > atol * max(
                1.0, np.max(np.abs(a), initial=0.0)):
            raise ShrinkError("prune.shrink: the shrunk model's outputs differ from the pruned "
                              "model's on example_input; the forward uses a pruned layer's "
                              "output in a way the module trace cannot see")

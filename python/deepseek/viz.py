"""DeepSeek-Visualizer: a self-contained HTML page of a model's traced graph.

``render(model, example_inputs, "model.html", loss_fn=...)`` runs the model once while
recording every tensor op (the methods of ``Tensor``, ``deepseek.nn.functional``, the fused
functions of ``deepseek._C.functional`` and ``deepseek``'s functions; an op called inside
another is part of it) with its inputs' and outputs' shapes and dtypes and the module it ran
in (forward hooks keep the module stack). With ``loss_fn`` it then runs
``loss_fn(output).backward()`` and records the 2-norm of each op output's gradient
(``retain_grad``) and of each parameter's ``.grad``; norms below ``vanishing`` or above
``exploding`` are flagged. Each ``nn.MultiheadAttention`` (also inside the transformer
layers) is called a second time, without recording, with ``need_weights=True,
average_attn_weights=False`` and its per-head weights are kept (sample ``attention_sample``
of the batch); ``F.scaled_dot_product_attention`` calls get their weights computed as
``softmax(q kᵀ · scale + mask)``. Each floating op output gets a histogram of its values.

The page itself is written by the Rust side (``deepseek::viz``; the same writer draws the
training-run pages of ``deepseek viz RUN_DIR``): the layout library (dagre) is inlined, so it
opens without network access. Modules are collapsible groups (click a group's title).

The data (``Graph.to_dict()``) is ``{"kind": "model", "title", "nodes", "modules", "params",
"attention", "thresholds", "backward"}`` with

- ``nodes``: ``{"id", "op", "module" (dotted name or None), "inputs": [{"shape", "dtype",
  "from" (id of the producing node or None), "name" (a parameter's name, an input's
  name)}], "outputs": [{"shape", "dtype", "grad_norm", "flag"}], "hist": {"min", "max",
  "counts"} or None}``; the model's inputs are nodes with ``op == "input"``;
- ``modules``: ``{"name", "type", "parent"}`` for each sub-module that ran;
- ``params``: ``{"name", "shape", "dtype", "grad_norm", "flag"}``;
- ``attention``: ``{"module", "type", "batch", "heads": [L×S matrices]}``.
"""

import inspect
import json
import math
import os

import numpy as np

from . import _C

__all__ = ["Graph", "VizError", "trace", "render", "render_run", "attention"]


class VizError(RuntimeError):
    """The model could not be traced (it raised, or returned no tensor)."""


_DUNDER_OPS = {
    "__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub",
    "__rsub__": "rsub", "__isub__": "sub_", "__mul__": "mul", "__rmul__": "mul",
    "__imul__": "mul_", "__truediv__": "div", "__rtruediv__": "rdiv", "__itruediv__": "div_",
    "__matmul__": "matmul", "__rmatmul__": "matmul", "__neg__": "neg", "__pow__": "pow",
    "__rpow__": "rpow", "__getitem__": "getitem", "__abs__": "abs", "__and__": "logical_and",
    "__or__": "logical_or", "__xor__": "logical_xor", "__invert__": "logical_not",
    "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge", "__floordiv__": "floor_divide",
    "__mod__": "remainder",
}
# Methods that are not ops (or whose output is the same tensor seen differently).
_NOT_OPS = {
    "backward", "register_hook", "retain_grad", "requires_grad_", "numpy", "tolist", "item",
    "size", "dim", "numel", "stride", "data_ptr", "element_size", "storage_offset",
    "is_contiguous", "is_floating_point", "is_complex", "cpu", "cuda", "detach", "detach_",
    "share_memory_", "pin_memory", "allclose", "equal", "type", "get_device", "nelement",
    "untyped_storage", "storage", "is_shared", "is_pinned", "ndimension",
}
_PROPERTY_OPS = {"T": "T", "mT": "mT"}
# Functions of the `deepseek` namespace that are never ops.
_NOT_FUNCS = {"manual_seed", "seed", "initial_seed", "save", "load", "is_tensor",
              "set_num_threads", "get_num_threads", "set_default_dtype", "get_default_dtype"}


def _is_tensor(x):
    return isinstance(x, _C.Tensor)


def _tensors(x, out=None):
    out = [] if out is None else out
    if _is_tensor(x):
        out.append(x)
    elif isinstance(x, (tuple, list)):
        for v in x:
            _tensors(v, out)
    elif isinstance(x, dict):
        for v in x.values():
            _tensors(v, out)
    return out


def _dtype(t):
    return str(t.dtype).split(".")[-1]


def _meta(t):
    return {"shape": [int(s) for s in t.shape], "dtype": _dtype(t)}


def _np64(t):
    return np.asarray(t.detach().float().numpy() if _dtype(t) in ("bfloat16", "float16")
                      else t.detach().numpy(), dtype=np.float64)


class _State:
    def __init__(self, model, hist_bins, attention_sample, max_attention):
        self.depth = 0
        self.paused = 0
        self.nodes = []
        self.producer = {}        # id(tensor) -> node id
        self.keep = []            # every tensor seen (keeps ids unique)
        self.outputs = []         # (node id, output index, tensor)
        self.stack = []           # module names being run
        self.modules = {}         # name -> {"name", "type", "parent"}
        self.names = {}           # id(param/buffer) -> qualified name
        self.hist_bins = hist_bins
        self.attention = []
        self.attention_sample = attention_sample
        self.max_attention = max_attention
        for n, p in model.named_parameters():
            self.names[id(p)] = n
        for n, b in model.named_buffers():
            self.names.setdefault(id(b), n)

    def recording(self):
        return self.depth == 0 and self.paused == 0

    def module(self):
        return self.stack[-1] if self.stack else None

    def add_node(self, op, inputs, outs, module=None):
        nid = len(self.nodes)
        ins = []
        for t in inputs:
            d = _meta(t)
            d["from"] = self.producer.get(id(t))
            name = self.names.get(id(t))
            if name is not None:
                d["name"] = name
            ins.append(d)
            self.keep.append(t)
        node = {"id": nid, "op": op, "module": module if module is not None else self.module(),
                "inputs": ins, "outputs": [], "hist": None}
        self.nodes.append(node)
        for k, t in enumerate(outs):
            o = _meta(t)
            o["grad_norm"], o["flag"] = None, None
            node["outputs"].append(o)
            self.producer[id(t)] = nid
            self.keep.append(t)
            self.outputs.append((nid, k, t))
            if t.requires_grad and not t.is_leaf:
                self.paused += 1
                try:
                    t.retain_grad()
                finally:
                    self.paused -= 1
        if self.hist_bins and outs and outs[0].is_floating_point() and outs[0].numel() > 0:
            v = _np64(outs[0]).ravel()
            v = v[np.isfinite(v)]
            if v.size:
                counts, edges = np.histogram(v, bins=self.hist_bins)
                node["hist"] = {"min": float(edges[0]), "max": float(edges[-1]),
                                "counts": [int(c) for c in counts]}
        return nid


def _wrap(st, orig, op):
    def wrapper(*a, **k):
        if not st.recording():
            return orig(*a, **k)
        st.depth += 1
        try:
            out = orig(*a, **k)
        finally:
            st.depth -= 1
        outs = _tensors(out)
        ins = _tensors(a) + _tensors(k)
        if outs and ins and st.recording():
            st.depth += 1
            try:
                st.add_node(op, ins, outs)
                if op == "scaled_dot_product_attention":
                    _sdpa_weights(st, a, k)
            finally:
                st.depth -= 1
        return out
    wrapper.__name__ = getattr(orig, "__name__", op)
    wrapper.__doc__ = getattr(orig, "__doc__", None)
    return wrapper


def _sdpa_weights(st, a, k):
    names = ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale"]
    args = dict(zip(names, a))
    args.update(k)
    q, kk = _np64(args["query"]), _np64(args["key"])
    if q.ndim < 3 or kk.shape[-2] * q.shape[-2] > st.max_attention ** 2:
        return
    scale = args.get("scale") or 1.0 / math.sqrt(q.shape[-1])
    s = np.matmul(q, np.swapaxes(kk, -1, -2)) * scale
    m = args.get("attn_mask")
    if m is not None:
        mv = m.detach().numpy()
        s = np.where(mv, s, -np.inf) if mv.dtype == np.bool_ else s + mv.astype(np.float64)
    if args.get("is_causal"):
        L, S = s.shape[-2:]
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p = np.nan_to_num(p / p.sum(-1, keepdims=True), nan=0.0)
    p = p.reshape((-1,) + p.shape[-3:]) if p.ndim >= 4 else p[None]
    b = min(st.attention_sample, p.shape[0] - 1)
    st.attention.append({"module": st.module() or "", "type": "scaled_dot_product_attention",
                         "batch": b, "heads": p[b].tolist()})


def _mha_forward(st, mod, name, orig):
    sig = inspect.signature(orig)

    def forward(*a, **k):
        out = orig(*a, **k)
        if st.paused or st.depth:
            return out
        bound = sig.bind(*a, **k)
        bound.apply_defaults()
        bound.arguments["need_weights"] = True
        bound.arguments["average_attn_weights"] = False
        L = bound.arguments["query"].shape[-2 if mod.batch_first else 0]
        S = bound.arguments["key"].shape[-2 if mod.batch_first else 0]
        if L * S > st.max_attention ** 2:
            return out
        st.paused += 1
        try:
            from ._grad_mode import no_grad
            with no_grad():
                _, w = orig(*bound.args, **bound.kwargs)
            w = np.nan_to_num(_np64(w), nan=0.0)
        finally:
            st.paused -= 1
        if w.ndim == 3:  # unbatched: [H, L, S]
            w = w[None]
        b = min(st.attention_sample, w.shape[0] - 1)
        st.attention.append({"module": name, "type": type(mod).__name__, "batch": b,
                             "heads": w[b].tolist()})
        return out
    return forward


def _flag(norm, vanishing, exploding):
    if norm is None:
        return None
    if not math.isfinite(norm) or norm > exploding:
        return "exploding"
    if norm < vanishing:
        return "vanishing"
    return None


def _norm(g):
    return float(np.linalg.norm(_np64(g).ravel()))


class Graph:
    """A traced model: ops, modules, parameters, gradient norms, attention weights and
    activation histograms (see the module's docstring for the fields). ``html()`` gives the
    page, ``save(path)`` writes it."""

    def __init__(self, data):
        self.data = data

    @property
    def nodes(self):
        return self.data["nodes"]

    @property
    def modules(self):
        return self.data["modules"]

    @property
    def params(self):
        return self.data["params"]

    @property
    def attention(self):
        return self.data["attention"]

    def find(self, op=None, module=None):
        """The nodes with this op name and/or module name."""
        return [n for n in self.nodes if (op is None or n["op"] == op)
                and (module is None or n["module"] == module)]

    def to_dict(self):
        return self.data

    def to_json(self):
        return json.dumps(self.data, allow_nan=False)

    def html(self, title=None):
        return _C._viz_render_page(title or self.data["title"], self.to_json())

    def save(self, path, title=None):
        """Writes the page to ``path`` and returns ``path``; OSError when the directory does
        not exist or cannot be written."""
        _C._viz_write_page(os.fspath(path), title or self.data["title"], self.to_json())
        return path

    def __repr__(self):
        return (f"Graph({self.data['title']!r}: {len(self.nodes)} ops, {len(self.modules)} "
                f"modules, backward={self.data['backward']})")


def _clean(x):
    """NaN/inf are not JSON: gradient norms that are not finite become None with their flag
    kept, histogram edges are finite by construction."""
    return x if x is None or math.isfinite(x) else None


def trace(model, example_inputs, loss_fn=None, *, vanishing=1e-6, exploding=1e3,
          histograms=True, hist_bins=30, attention=True, attention_sample=0,
          max_attention=64, title=None):
    """Runs ``model(*example_inputs)`` once, recording its graph, and returns a
    :class:`Graph`. ``example_inputs``: a tensor or a tuple of them (other values are passed
    through). ``loss_fn(output) -> scalar tensor``: when given, backward runs and gradient
    norms are recorded (the parameters' existing ``.grad`` are restored afterwards).
    Attention maps larger than ``max_attention``² are skipped. Raises :class:`VizError` when
    the model raises, naming the module it was in."""
    from .nn.module import Module
    from .nn import functional as F
    from .nn.attention import MultiheadAttention
    import deepseek as ds

    if not isinstance(model, Module):
        raise TypeError(f"deepseek.viz: expected a deepseek.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError("deepseek.viz: loss_fn must be a callable taking the model's output")
    args = (example_inputs,) if _is_tensor(example_inputs) else tuple(example_inputs)
    st = _State(model, hist_bins if histograms else 0, attention_sample, max_attention)
    names = {id(m): n for n, m in model.named_modules()}
    for i, a in enumerate(args):
        if _is_tensor(a):
            nid = st.add_node("input", [], [a], module=None)
            st.nodes[nid]["name"] = f"input_{i}"

    handles, restore = [], []

    def pre(mod, inputs):
        n = names.get(id(mod), type(mod).__name__)
        if n:
            st.modules.setdefault(n, {"name": n, "type": type(mod).__name__,
                                      "parent": st.module()})
        st.stack.append(n or None)

    def post(mod, inputs, out):
        n = st.stack.pop()
        if st.recording():
            # Outputs nothing recorded (a fused kernel reached another way): the module is
            # the op.
            new = [t for t in _tensors(out) if id(t) not in st.producer]
            if new:
                st.depth += 1
                try:
                    st.add_node(type(mod).__name__, _tensors(inputs), new, module=n)
                finally:
                    st.depth -= 1
        return None

    for n, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
        if attention and isinstance(m, MultiheadAttention):
            had = "forward" in m.__dict__
            orig = m.forward
            m.forward = _mha_forward(st, m, n, orig)
            restore.append((m, "forward", orig, had))

    def patch(owner, name, op, prop=False):
        raw = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if raw is None or isinstance(raw, (staticmethod, classmethod, type)):
            return
        if prop:
            w = _wrap(st, lambda t: raw.__get__(t, owner), op)
            setattr(owner, name, property(w))
        else:
            setattr(owner, name, _wrap(st, getattr(owner, name), op))
        restore.append((owner, name, raw, True))

    T = _C.Tensor
    for name, raw in list(T.__dict__.items()):
        if name in _DUNDER_OPS:
            patch(T, name, _DUNDER_OPS[name])
        elif name in _PROPERTY_OPS:
            patch(T, name, _PROPERTY_OPS[name], prop=True)
        elif (not name.startswith("_") and name not in _NOT_OPS and callable(raw)
              and type(raw).__name__ in ("method_descriptor", "function")):
            patch(T, name, name)
    for mod in (F, _C.functional):
        for name in dir(mod):
            f = getattr(mod, name)
            if not name.startswith("_") and (inspect.isfunction(f) or inspect.isbuiltin(f)):
                patch(mod, name, name)
    for name in dir(ds):
        f = getattr(ds, name)
        if (not name.startswith("_") and name not in _NOT_FUNCS
                and (inspect.isfunction(f) or inspect.isbuiltin(f))):
            patch(ds, name, name)

    grads = [(p, p.grad) for p in model.parameters()]
    try:
        try:
            out = model(*args)
        except Exception as e:
            where = " > ".join(n for n in st.stack if n) or "the model's own forward"
            raise VizError(f"deepseek.viz: the model raised {type(e).__name__} while being "
                           f"traced, in {where}: {e}") from e
        finally:
            for owner, name, raw, had in reversed(restore):
                if had:
                    setattr(owner, name, raw)
                else:
                    owner.__dict__.pop(name, None)
            restore.clear()
            for h in handles:
                h.remove()
        outs = _tensors(out)
        if not outs:
            raise VizError(f"deepseek.viz: the model returned {type(out).__name__}, no tensor")
        backward = False
        if loss_fn is not None:
            for p, _ in grads:
                p.grad = None
            loss = loss_fn(out)
            if not _is_tensor(loss) or loss.numel() != 1:
                raise VizError("deepseek.viz: loss_fn must return a tensor with one element")
            loss.backward()
            backward = True
            for nid, k, t in st.outputs:
                g = t.grad if t.requires_grad else None
                if g is not None:
                    n = _norm(g)
                    o = st.nodes[nid]["outputs"][k]
                    o["flag"] = _flag(n, vanishing, exploding)
                    o["grad_norm"] = _clean(n)
        params = []
        for n, p in model.named_parameters():
            d = _meta(p)
            g = p.grad if backward else None
            gn = _norm(g) if g is not None else None
            d["grad_norm"], d["flag"] = (_clean(gn), _flag(gn, vanishing, exploding))
            d["name"] = n
            params.append(d)
    finally:
        if loss_fn is not None:
            for p, g in grads:
                p.grad = g
    return Graph({
        "kind": "model",
        "title": title or f"{type(model).__name__} graph",
        "nodes": st.nodes,
        "modules": list(st.modules.values()),
        "params": params,
        "attention": st.attention,
        "thresholds": {"vanishing": _clean(float(vanishing)),
                       "exploding": _clean(float(exploding))},
        "backward": backward,
        "outputs": [st.producer.get(id(t)) for t in outs],
    })


def render(model, example_inputs, path, loss_fn=None, **kwargs):
    """Traces ``model`` (see :func:`trace`; keyword arguments go there) and writes the page
    to ``path``; returns ``path``. A directory that does not exist is checked before the
    model runs (OSError)."""
    d = os.path.dirname(os.fspath(path)) or "."
    if not os.path.isdir(d):
        raise OSError(f"deepseek.viz: cannot write {os.fspath(path)!r}: directory {d!r} does "
                      "not exist")
    if os.path.isdir(os.fspath(path)):
        raise IsADirectoryError(f"deepseek.viz: {os.fspath(path)!r} is a directory; give a "
                                "file name for the page")
    return trace(model, example_inputs, loss_fn, **kwargs).save(path)


def attention(model, example_inputs, path, *, sample=0, tokens=None, title=None):
    """Writes a page of heat maps, one per head of every attention module of ``model``
    (query × key), for ``model(*example_inputs)`` run once under ``no_grad`` inside
    :func:`deepseek.nn.capture_attention`; returns ``path``. ``sample`` picks the batch item
    drawn; ``tokens`` (a list of strings, optional) labels the page. The data is
    ``{"kind": "attention", "title", "tokens", "attention": [{"module", "type", "batch",
    "heads": [L×S matrices]}]}``. A directory that does not exist is an OSError before the
    model runs; a model that raises gives :class:`VizError`."""
    from .nn.attention_maps import capture_attention
    from ._grad_mode import no_grad

    d = os.path.dirname(os.fspath(path)) or "."
    if not os.path.isdir(d):
        raise OSError(f"deepseek.viz: cannot write {os.fspath(path)!r}: directory {d!r} does "
                      "not exist")
    args = (example_inputs,) if _is_tensor(example_inputs) else tuple(example_inputs)
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    try:
        with no_grad(), capture_attention(model) as maps:
            model(*args)
    except Exception as e:
        raise VizError(f"deepseek.viz: the model raised {type(e).__name__}: {e}") from e
    entries = []
    for name, w in maps.items():
        w = np.nan_to_num(_np64(w), nan=0.0)
        w = w.reshape((-1,) + w.shape[-3:]) if w.ndim >= 4 else w[None]
        if not 0 <= sample < w.shape[0]:
            raise IndexError(f"deepseek.viz: sample {sample} is outside the batch of "
                             f"{w.shape[0]}")
        entries.append({"module": name, "type": types.get(name.split("[")[0], "attention"),
                        "batch": sample, "heads": w[sample].tolist()})
    data = {"kind": "attention", "title": title or f"{type(model).__name__} attention",
            "tokens": list(tokens) if tokens is not None else None, "attention": entries}
    _C._viz_write_page(os.fspath(path), data["title"], json.dumps(data))
    return path


def render_run(run_dir, path=None):
    """Writes the page of the training run in ``run_dir`` (its ``metrics.jsonl``, as
    ``deepseek viz RUN_DIR`` does) to ``path`` (default ``run_dir/viz.html``); returns the
    path."""
    path = os.fspath(path) if path is not None else os.path.join(os.fspath(run_dir), "viz.html")
    data = json.loads(_C._viz_run_data(os.fspath(run_dir)))
    _C._viz_write_page(path, f"Training run {data['title']}", json.dumps(data))
    return path

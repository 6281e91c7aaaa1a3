"""Batching rules for module-level functions (``deepseek.cat``, ``deepseek.einsum``,
``F.linear``, ``F.conv2d``, ``F.cross_entropy``, ...), reached through
``BatchedTensor.__deepseek_function__`` (see ``deepseek._dispatch``), and the randomness
handling of vmap (``randomness='error' | 'different' | 'same'``).

``dispatch`` looks the original function up in ``RULES``; without a rule a function
written in Python runs as is on the batched tensors (it is a composition of Tensor methods,
each with its own rule) and, if that fails, or for a compiled function, the call runs once
per example (``_batched.fallback``)."""

from .. import _C
from .._C import functional as _C_F_module


class _Originals:
    """``deepseek._C.functional`` with its functions unwrapped (the rules are keyed by the
    original functions; ``func._install`` wraps the module's attributes)."""

    def __getattr__(self, name):
        f = getattr(_C_F_module, name)
        return getattr(f, "__wrapped__", f)

    def __dir__(self):
        return dir(_C_F_module)


_C_F = _Originals()
from . import _expanded
from ._batched import (BatchedTensor, STACK, _T, _norm, align, expand_to, fallback,
                       level_sizes, pad_to, parts, wrap)

RULES = {}


def _bt(x):
    return type(x) is BatchedTensor


def _is_t(x):
    return isinstance(x, _T) or type(x) is BatchedTensor


def dispatch(fn, args, kwargs):
    rule = RULES.get(fn)
    if rule is not None:
        return rule(fn, *args, **kwargs)
    if hasattr(fn, "__code__"):
        try:
            return fn(*args, **kwargs)
        except (TypeError, AttributeError, NotImplementedError):
            pass
    return fallback(fn, args, kwargs)


def rule(*fns):
    def deco(r):
        for f in fns:
            if f is not None:
                RULES[f] = r
        return r

    return deco


# ---- randomness ----------------------------------------------------------------------------
def _random_levels(levels=None):
    """The active levels (all, or those in ``levels``) that draw different numbers per
    example; raises under ``randomness='error'``."""
    out = []
    for lv, size, mode in STACK:
        if levels is not None and lv not in levels:
            continue
        if mode == "error":
            raise RuntimeError("vmap: called random operation while in randomness error "
                               "mode. Please either use the 'same' or 'different' randomness "
                               "flags on vmap or perform the randomness operation out of vmap")
        if mode == "different":
            out.append((lv, size))
    return out


def random_batched(gen, shape):
    """``gen(full_shape)`` drawn once per example of every 'different' active level (and
    shared across 'same' levels), as a batched tensor of logical ``shape``."""
    diff = _random_levels()
    v = gen(tuple(s for _, s in diff) + tuple(shape))
    return wrap(v, tuple(lv for lv, _ in diff))


def _size_args(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def random_creation(fn, kind):
    """Wraps a random creation function (``randn(*size)``, ``randint(low, high, size)``,
    ...) so that inside vmap it follows the vmap's randomness setting."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not STACK:
            return fn(*args, **kwargs)
        if kind == "size":
            shape = _size_args(args) if args else tuple(kwargs.pop("size", ()))
            return random_batched(lambda s: fn(*s, **kwargs) if s else fn(**kwargs), shape)
        if kind == "randint":
            a = list(args)
            size = kwargs.pop("size", None)
            if size is None:
                size = a.pop()
            return random_batched(lambda s: fn(*a, tuple(s), **kwargs), tuple(size))
        if kind == "like":
            x = args[0]
            return random_batched(lambda s: fn(_C.zeros(*s, dtype=x.dtype), *args[1:],
                                               **kwargs), x.shape)
        if kind == "perm":
            n = args[0]
            return fallback(lambda _i: fn(n, *args[1:], **kwargs),
                            (_counter(),), {}, name="randperm")
        raise AssertionError(kind)

    wrapper.__wrapped__ = fn
    return wrapper


def _counter():
    diff = _random_levels()
    if not diff:
        return _C.zeros(1)[0]
    v = _C.zeros(*[s for _, s in diff])
    return wrap(v, tuple(lv for lv, _ in diff))


def _dropout_rule(fn, x, p=0.5, training=True, inplace=False):
    if not training or p == 0:
        return x
    if p >= 1:
        return x * 0.0
    keep = random_batched(lambda s: _C.rand(*s, dtype=x.dtype), x.shape) >= p
    return x * keep.to(x.dtype) * (1.0 / (1.0 - p))


# ---- deepseek.* ------------------------------------------------------------------------------
def _cat_like(op, extra):
    def r(fn, tensors, dim=0, **kwargs):
        tensors = list(tensors)
        sizes = level_sizes(tensors)
        lv = tuple(sorted(sizes))
        n = max(t.dim() for t in tensors)
        vals = [expand_to(t, lv, sizes) if t.dim() or extra else t for t in tensors]
        return wrap(op(vals, _norm(dim, n + extra) + len(lv)), lv)

    return r


rule(_C.cat)(_cat_like(_C.cat, 0))
rule(_C.stack)(_cat_like(_C.stack, 1))


@rule(_C.where)
def _where(fn, cond, x=None, y=None):
    if x is None:
        return fallback(fn, (cond,), {}, name="where")
    (c, a, b), lv = align([cond, x, y])
    if not isinstance(a, _T) and not isinstance(b, _T):
        a = _C.full((), float(a))
    return wrap(_C.where(c, a, b), lv)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@rule(_C.einsum)
def _einsum(fn, eq, *ops):
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = tuple(ops[0])
    eq = eq.replace(" ", "")
    lhs, rhs = eq.split("->") if "->" in eq else (eq, None)
    terms = lhs.split(",")
    used = set(eq)
    free = [c for c in _LETTERS if c not in used]
    if rhs is None:
        counts = {}
        for t in terms:
            for c in t.replace("...", ""):
                counts[c] = counts.get(c, 0) + 1
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c, n in counts.items()
                                                                if n == 1))
    sizes = level_sizes(ops)
    lv = tuple(sorted(sizes))
    letter = dict(zip(lv, free))
    new_terms, vals = [], []
    for t, o in zip(terms, ops):
        v, olv = parts(o)
        new_terms.append("".join(letter[x] for x in olv) + t)
        vals.append(v)
    out = "".join(letter[x] for x in lv) + rhs
    return wrap(_C.einsum(",".join(new_terms) + "->" + out, *vals), lv)


def _like(fn, x, *args, **kwargs):
    v, lv = parts(x)
    return wrap(fn(v, *args, **kwargs), lv)


rule(_C.zeros_like, _C.ones_like, _C.full_like, _C.empty_like)(_like)


def _lifted(name):
    """``deepseek.<name>(input, ...)`` is ``input.<name>(...)``: with a plain ``input`` and a
    batched argument after it, the method runs on ``input`` seen as a batched tensor
    without levels, so the batched argument is aligned as usual."""

    def r(fn, input, *args, **kwargs):
        if type(input) is not BatchedTensor and isinstance(input, _T):
            input = BatchedTensor(input, ())
        res = getattr(input, name)(*args, **kwargs)
        return _unlift(res)

    return r


def _unlift(res):
    if type(res) is BatchedTensor and not res._lv:
        return res._v
    if isinstance(res, tuple) and hasattr(type(res), "_fields"):
        return type(res)(*map(_unlift, res))
    if isinstance(res, (tuple, list)):
        return type(res)(map(_unlift, res))
    return res


def _install_ops_rules():
    from .. import _ops

    for n in _ops._METHODS + ["subtract", "multiply", "divide", "absolute"]:
        f = getattr(_ops, n, None)
        if f is not None and f not in RULES:
            RULES[f] = _lifted(f.__name__)


_install_ops_rules()


# ---- deepseek.nn.functional ----------------------------------------------------------------
def _F_orig(name):
    """The function ``deepseek.nn.functional.<name>`` stands for (unwrapped)."""
    from ..nn import functional as Fm

    f = getattr(Fm, name, None)
    return getattr(f, "__wrapped__", f)


def _first_only(fn, x, *args, **kwargs):
    if any(_is_t(a) for a in args) or any(_is_t(a) for a in kwargs.values()) or not _bt(x):
        return fallback(fn, (x,) + args, kwargs)
    return BatchedTensor(fn(x._v, *args, **kwargs), x._lv)


for _n in ("relu", "gelu", "silu", "sigmoid", "tanh", "softplus", "elu", "leaky_relu",
           "one_hot", "relu6", "selu", "celu", "hardtanh", "hardswish", "hardsigmoid", "mish",
           "logsigmoid", "softsign", "tanhshrink", "hardshrink", "softshrink", "glu"):
    for f in (getattr(_C_F, _n, None), _F_orig(_n)):
        if f is not None and _n != "glu":
            RULES[f] = _first_only


def _softmax(method):
    def r(fn, x, dim=None, _stacklevel=3, dtype=None):
        if dim is None:
            dim = 0 if x.dim() in (0, 1, 3) else 1
        if dtype is not None:
            x = x.to(dtype)
        return getattr(x, method)(dim)

    return r


rule(_C_F.softmax)(_softmax("softmax"))
rule(_C_F.log_softmax)(_softmax("log_softmax"))
rule(_C_F.dropout)(_dropout_rule)


@rule(_C_F.linear)
def _linear(fn, x, weight, bias=None):
    r = _expanded.linear(fn, x, weight, bias)
    if r is not None:
        return r
    if not _bt(weight) and not _bt(bias) and _bt(x):
        return BatchedTensor(fn(x._v, weight, bias), x._lv)
    y = x @ (weight.t() if weight.dim() == 2 else weight)
    return y if bias is None else y + bias


def _fold(x, keep):
    """The value of batched ``x`` with its batch dimensions and leading logical ones merged
    into one, keeping the last ``keep`` dimensions; plus the shape to restore the front."""
    v = x._v
    front = tuple(v.shape[:v.dim() - keep])
    return v.reshape(-1, *v.shape[v.dim() - keep:]), front


def _spatial(sd):
    """Ops on (N, C, *spatial) inputs with unbatched weights: merge the batch into N."""

    def r(fn, x, *args, **kwargs):
        if not _bt(x) or any(_bt(a) for a in args) or any(_bt(a) for a in kwargs.values()):
            return fallback(fn, (x,) + args, kwargs)
        flat, front = _fold(x, sd + 1)
        if x.dim() == sd + 1:
            pass  # one unbatched image per example: the batch is N
        res = fn(flat, *args, **kwargs)

        def back(t):
            return BatchedTensor(t.reshape(*front, *t.shape[1:]), x._lv)

        if isinstance(res, tuple):
            return type(res)(back(t) for t in res)
        return back(res)

    return r


def _conv_batched_weight(sd):
    """conv with a batched weight (per-example weights, e.g. inside ``vmap(grad)``): the
    batch goes into the channels and the groups, one convolution for all examples."""

    def r(fn, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if not _bt(weight) and not _bt(bias):
            return _spatial(sd)(fn, x, weight, bias, stride, padding, dilation, groups)
        if isinstance(padding, str):
            return fallback(fn, (x, weight, bias, stride, padding, dilation, groups), {})
        sizes = level_sizes([x, weight, bias])
        lv = tuple(sorted(sizes))
        k = len(lv)
        nb = 1
        for l in lv:
            nb *= sizes[l]
        xv = expand_to(x, lv, sizes)
        wv = expand_to(weight, lv, sizes)
        single = x.dim() == sd + 1
        sp = tuple(xv.shape[xv.dim() - sd:])
        c = xv.shape[xv.dim() - sd - 1]
        if single:
            n = 1
            xf = xv.reshape(1, nb * c, *sp)
        else:
            n = xv.shape[k]
            xf = xv.reshape(nb, n, c, *sp).transpose(0, 1).reshape(n, nb * c, *sp)
        o = wv.shape[k]
        wf = wv.reshape(nb * o, *wv.shape[k + 1:])
        bf = None
        if bias is not None:
            bf = expand_to(bias, lv, sizes).reshape(nb * o) if _bt(bias) else bias.repeat(nb)
        out = fn(xf, wf, bf, stride, padding, dilation, groups * nb)
        osp = tuple(out.shape[2:])
        out = out.reshape(n, nb, o, *osp).transpose(0, 1)
        bs = [sizes[l] for l in lv]
        out = out.reshape(*bs, o, *osp) if single else out.reshape(*bs, n, o, *osp)
        return wrap(out, lv)

    return r


for _n, _sd in (("conv1d", 1), ("conv2d", 2), ("conv3d", 3), ("max_pool1d", 1),
                ("max_pool2d", 2), ("avg_pool2d", 2), ("adaptive_avg_pool2d", 2),
                ("adaptive_max_pool2d", 2), ("avg_pool1d", 1), ("conv_transpose2d", 2),
                ("conv_transpose1d", 1), ("max_pool3d", 3), ("avg_pool3d", 3)):
    f = getattr(_C_F, _n, None)
    if f is not None:
        RULES[f] = _conv_batched_weight(_sd) if _n.startswith("conv") and \
            "transpose" not in _n else _spatial(_sd)


@rule(_C_F.layer_norm, getattr(_C_F, "rms_norm", None))
def _last_dims_norm(fn, x, shape, weight=None, bias=None, *rest, **kwargs):
    if not _bt(x) or _bt(weight) or _bt(bias):
        return fallback(fn, (x, shape, weight, bias) + rest, kwargs)
    if fn is getattr(_C_F, "rms_norm", None):
        return BatchedTensor(fn(x._v, shape, weight, bias, *rest, **kwargs) if bias is not None
                             else fn(x._v, shape, weight, *rest, **kwargs), x._lv)
    return BatchedTensor(fn(x._v, shape, weight, bias, *rest, **kwargs), x._lv)


@rule(_C_F.batch_norm)
def _batch_norm(fn, x, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
    rest = (running_mean, running_var, weight, bias)
    if training or not _bt(x) or any(_bt(a) for a in rest) or x.dim() < 2:
        return fallback(fn, (x,) + rest + (training, momentum, eps), {})
    flat, front = _fold(x, x.dim() - 1)
    res = fn(flat, running_mean, running_var, weight, bias, training, momentum, eps)
    return BatchedTensor(res.reshape(*front, *res.shape[1:]), x._lv)


@rule(_C_F.group_norm)
def _group_norm(fn, x, num_groups, weight=None, bias=None, eps=1e-5):
    if not _bt(x) or _bt(weight) or _bt(bias) or x.dim() < 2:
        return fallback(fn, (x, num_groups, weight, bias, eps), {})
    flat, front = _fold(x, x.dim() - 1)
    res = fn(flat, num_groups, weight, bias, eps)
    return BatchedTensor(res.reshape(*front, *res.shape[1:]), x._lv)


@rule(_C_F.embedding)
def _embedding(fn, idx, weight, *args, **kwargs):
    if _bt(weight):
        return fallback(fn, (idx, weight) + args, kwargs)
    v, lv = parts(idx)
    return wrap(fn(v, weight, *args, **kwargs), lv)


@rule(_C_F.pad)
def _pad(fn, x, pad, mode="constant", value=None):
    if mode == "constant" and _bt(x):
        kw = {} if value is None else {"value": value}
        return BatchedTensor(fn(x._v, pad, mode, **kw), x._lv)
    return fallback(fn, (x, pad, mode) + (() if value is None else (value,)), {})


def _reduce_loss(loss, reduction, x):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.dim() else 1)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _pointwise_loss(fn, input, target, *args, reduction="mean", **kwargs):
    if args or any(_bt(v) for v in kwargs.values()):
        return fallback(fn, (input, target) + args, dict(kwargs, reduction=reduction))
    lv = tuple(sorted(level_sizes([input, target])))
    nd = max(input.dim(), target.dim())
    a, b = pad_to(input, lv, nd), pad_to(target, lv, nd)
    shape = [max(p, q) for p, q in zip(a.shape, b.shape)]
    loss = wrap(fn(a.expand(*shape), b.expand(*shape), reduction="none", **kwargs), lv)
    return _reduce_loss(loss, reduction, input)


for _n in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "soft_margin_loss"):
    f = getattr(_C_F, _n, None)
    if f is not None:
        RULES[f] = _pointwise_loss


def _class_loss(fn, input, target, weight=None, size_average=None, ignore_index=-100,
                reduce=None, reduction="mean", **kwargs):
    if weight is not None or size_average is not None or reduce is not None:
        return fallback(fn, (input, target), dict(kwargs, weight=weight, reduction=reduction,
                                                  ignore_index=ignore_index))
    sizes = level_sizes([input, target])
    lv = tuple(sorted(sizes))
    x = expand_to(input, lv, sizes)
    t = expand_to(target, lv, sizes)
    k, n = len(lv), input.dim()
    probs = target.dim() == input.dim() and target.is_floating_point()
    c = x.shape[k + (0 if n == 1 else 1)]
    if n == 1:
        xf = x.reshape(-1, c)
        tf = t.reshape(-1, c) if probs else t.reshape(-1)
    else:
        xf = x.reshape(-1, *x.shape[k + 1:])
        tf = t.reshape(-1, *t.shape[k + 1:])
    loss = fn(xf, tf, reduction="none", ignore_index=ignore_index, **kwargs)
    lshape = tuple(x.shape[:k]) + (() if n == 1 else (x.shape[k],) + tuple(x.shape[k + 2:]))
    loss = wrap(loss.reshape(*lshape), lv)
    if reduction == "mean" and not probs:
        if n == 1 and not bool((t == ignore_index).any()):
            return loss  # one row per example, none ignored: the mean is the loss itself
        valid = wrap(t.reshape(*lshape) != ignore_index, lv).to(loss.dtype)
        return loss.sum() / valid.sum()
    return _reduce_loss(loss, reduction, input)


rule(_C_F.cross_entropy, _C_F.nll_loss)(_class_loss)


@rule(_C_F.scaled_dot_product_attention)
def _sdpa(fn, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kwargs):
    if dropout_p:
        _random_levels()
        return fallback(fn, (q, k, v, attn_mask, dropout_p, is_causal), kwargs)
    xs = [q, k, v] + ([attn_mask] if attn_mask is not None else [])
    sizes = level_sizes(xs)
    lv = tuple(sorted(sizes))
    nd = max(x.dim() for x in xs)
    vals = [pad_to(x, lv, nd) if _bt(x) else x for x in xs]
    m = vals[3] if attn_mask is not None else None
    return wrap(fn(vals[0], vals[1], vals[2], m, 0.0, is_causal, **kwargs), lv)




def _alias_python_functional():
    """``F.<name>`` written in Python over ``_C.functional.<name>`` gets the same rule."""
    for n in dir(_C_F):
        c = getattr(_C_F, n)
        if callable(c) and c in RULES:
            o = _F_orig(n)
            if o is not None and o is not c and o not in RULES:
                RULES[o] = RULES[c]


_alias_python_functional()
del _n, f

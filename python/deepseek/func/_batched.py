"""The batched tensor of ``vmap``: a plain tensor whose leading dimensions are batch
dimensions, one per vmap level, plus the ordered tuple of those levels.

``BatchedTensor(value, levels)`` shows the *logical* (per-example) tensor to the function
being mapped: ``value.shape == (*batch_sizes, *logical_shape)`` with one batch dimension per
entry of ``levels`` (ascending, so the outermost vmap comes first). Nested vmaps add levels
to the same wrapper instead of wrapping wrappers.

Tensor methods run batching rules (this module): elementwise ops align and broadcast the
batch dimensions, reductions and shape ops shift their dimension arguments past the batch
dimensions, matmul promotes vectors and broadcasts. Module-level functions reach
``BatchedTensor.__deepseek_function__`` through ``deepseek._dispatch`` and use the rules of
``_rules``. A method or function without a rule runs once per example (``fallback``): the
batch is sliced, the op runs on plain tensors and the results are stacked. ``FALLBACKS``
counts those calls by name, so slow paths can be seen."""

import collections

from .. import _C

_T = _C.Tensor

# The active vmap levels, outermost first: [level, batch size, randomness] lists.
STACK = []
# How often each op ran through the per-example loop (see the module docstring).
FALLBACKS = collections.Counter()


def parts(x):
    """``(value, levels)`` of a batched tensor, ``(x, ())`` of anything else."""
    if type(x) is BatchedTensor:
        return x._v, x._lv
    return x, ()


def wrap(value, levels):
    """A batched tensor, or the plain ``value`` when ``levels`` is empty."""
    if not levels:
        return value
    return BatchedTensor(value, levels)


def wrap_tree(res, levels):
    """``wrap`` over tensors in a (possibly nested) tuple/list result."""
    if isinstance(res, _T):
        return wrap(res, levels)
    if isinstance(res, tuple) and hasattr(type(res), "_fields"):
        return type(res)(*[wrap_tree(r, levels) for r in res])
    if isinstance(res, (tuple, list)):
        return type(res)(wrap_tree(r, levels) for r in res)
    return res


def level_sizes(xs):
    """``{level: size}`` over the batched tensors in ``xs``."""
    sizes = {}
    for x in xs:
        if type(x) is BatchedTensor:
            for i, lv in enumerate(x._lv):
                s = x._v.shape[i]
                if sizes.setdefault(lv, s) != s:
                    raise ValueError(f"vmap: batch size mismatch at level {lv}: {sizes[lv]} "
                                     f"and {s}")
    return sizes


def pad_to(x, levels, ndim):
    """The value of ``x`` (batched or plain) laid out over ``levels`` (size-1 dimensions
    for levels it lacks) with ``ndim`` logical dimensions (size-1 ones added in front)."""
    v, lv = parts(x)
    if not lv:
        if not levels:
            return v
        # A plain tensor broadcasts from the right; only its rank may need padding.
        missing = len(levels) + ndim - v.dim()
        for _ in range(missing):
            v = v.unsqueeze(0)
        return v
    if lv != levels:
        for i, l in enumerate(levels):
            if l not in lv:
                v = v.unsqueeze(i)
    extra = ndim - (v.dim() - len(levels))
    for _ in range(extra):
        v = v.unsqueeze(len(levels))
    return v


def expand_to(x, levels, sizes):
    """``x`` materialised over every level of ``levels`` (expanded, not copied): a value of
    shape ``(*sizes, *logical)``."""
    v, lv = parts(x)
    if lv == tuple(levels):
        return v
    if not lv:  # a plain tensor: one reshape and one expand
        shape = tuple(v.shape)
        return v.reshape((1,) * len(levels) + shape).expand(*[sizes[l] for l in levels],
                                                             *shape)
    nd = v.dim() - len(lv)
    v = pad_to(x, tuple(levels), nd)
    return v.expand(*[sizes[l] for l in levels], *v.shape[len(levels):])


def align(xs):
    """Aligns the tensors among ``xs`` for a broadcasting op: returns the list with each
    tensor replaced by its padded value, and the union of the levels."""
    lvs = set()
    nd = 0
    for x in xs:
        if type(x) is BatchedTensor:
            lvs.update(x._lv)
            d = x._v.dim() - len(x._lv)
        elif isinstance(x, _T):
            d = x.dim()
        else:
            continue
        if d > nd:
            nd = d
    levels = tuple(sorted(lvs))
    out = [pad_to(x, levels, nd) if type(x) is BatchedTensor else x for x in xs]
    return out, levels


def _norm(d, n):
    if d < -n or d >= max(n, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}],"
                         f" but got {d})")
    return d % n if n else 0


def fallback(fn, args, kwargs, name=None):
    """Runs ``fn`` once per example: every batched tensor in ``args``/``kwargs`` is
    expanded over all levels present, the batch is flattened and sliced, and the results
    (a tensor, or a tuple/list of them) are stacked and re-batched."""
    from ._pytree import tree_flatten, tree_unflatten

    FALLBACKS[name or getattr(fn, "__name__", repr(fn))] += 1
    leaves, spec = tree_flatten((args, kwargs))
    sizes = level_sizes(leaves)
    levels = tuple(sorted(sizes))
    shape = [sizes[l] for l in levels]
    n = 1
    for s in shape:
        n *= s
    flat = []
    for x in leaves:
        if type(x) is BatchedTensor:
            v = expand_to(x, levels, sizes)
            flat.append(v.reshape(n, *v.shape[len(levels):]))
        else:
            flat.append(None)
    results = []
    for i in range(n):
        cur = [x if f is None else f[i] for x, f in zip(leaves, flat)]
        a, k = tree_unflatten(cur, spec)
        results.append(fn(*a, **k))
    first = results[0]
    out_leaves, out_spec = tree_flatten(first)
    per = [tree_flatten(r)[0] for r in results]
    stacked = []
    for j, leaf in enumerate(out_leaves):
        if isinstance(leaf, _T):
            s = _C.stack([p[j] for p in per], 0)
            stacked.append(wrap(s.reshape(*shape, *s.shape[1:]), levels))
        else:
            if any(p[j] != leaf for p in per):
                raise RuntimeError(f"vmap: {name or fn} returned a non-tensor value that "
                                   f"differs between examples")
            stacked.append(leaf)
    return tree_unflatten(stacked, out_spec)


def _method_fallback(name):
    def m(self, *args, **kwargs):
        return fallback(lambda t, *a, **k: getattr(t, name)(*a, **k), (self,) + args,
                        kwargs, name="Tensor." + name)

    m.__name__ = name
    return m


class BatchedTensor:
    """A tensor seen per example inside ``vmap`` (see the module docstring)."""

    __slots__ = ("_v", "_lv")

    def __init__(self, value, levels):
        self._v = value
        self._lv = tuple(levels)

    # -- metadata ----------------------------------------------------------------------
    @property
    def shape(self):
        return self._v.shape[len(self._lv):]

    def size(self, dim=None):
        s = self.shape
        return s if dim is None else s[dim]

    def dim(self):
        return self._v.dim() - len(self._lv)

    ndim = property(dim)

    def ndimension(self):
        return self.dim()

    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    nelement = numel

    @property
    def dtype(self):
        return self._v.dtype

    @property
    def device(self):
        return self._v.device

    @property
    def requires_grad(self):
        return self._v.requires_grad

    @property
    def is_leaf(self):
        return self._v.is_leaf

    @property
    def grad_fn(self):
        return self._v.grad_fn

    def is_floating_point(self):
        return self._v.is_floating_point()

    def is_complex(self):
        return False

    def element_size(self):
        return self._v.element_size()

    def __len__(self):
        if self.dim() == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        return f"BatchedTensor(levels={self._lv}, value={self._v!r})"

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- data-dependent Python control flow cannot be batched -----------------------------
    def _data_dependent(self, *a, **k):
        raise RuntimeError("vmap: It looks like you're attempting to use a Tensor in some "
                           "data-dependent control flow (item(), tolist(), bool(), numpy()); "
                           "deepseek's vmap does not support this: use deepseek.where")

    item = tolist = numpy = __bool__ = __float__ = __int__ = __index__ = _data_dependent

    # -- override hook for module-level functions ------------------------------------------
    @classmethod
    def __deepseek_function__(cls, fn, args, kwargs):
        from . import _rules

        return _rules.dispatch(fn, args, kwargs)

    # -- unknown methods: per-example loop ---------------------------------------------------
    def __getattr__(self, name):
        if name.startswith("__") or not hasattr(_T, name):
            raise AttributeError(f"'BatchedTensor' object has no attribute {name!r}")
        if name.endswith("_") and not name.endswith("__"):
            raise RuntimeError(f"vmap: in-place Tensor.{name} on a batched tensor is not "
                               f"supported by deepseek's vmap; use the out-of-place form")
        attr = getattr(_T, name)
        if not callable(attr):
            raise AttributeError(f"vmap: Tensor.{name} is not available on batched tensors")
        return _method_fallback(name).__get__(self)


# ---- elementwise rules ---------------------------------------------------------------------
def _unary(name):
    def m(self, *args, **kwargs):
        if (args or kwargs) and (
                any(type(a) is BatchedTensor or isinstance(a, _T) for a in args) or any(
                type(a) is BatchedTensor or isinstance(a, _T) for a in kwargs.values())):
            return _nary(name)(self, *args, **kwargs)
        return BatchedTensor(getattr(self._v, name)(*args, **kwargs), self._lv)

    m.__name__ = name
    return m


def _nary(name):
    def m(self, *args, **kwargs):
        keys = list(kwargs)
        vals, lv = align([self, *args, *[kwargs[k] for k in keys]])
        na = 1 + len(args)
        kw = dict(zip(keys, vals[na:]))
        return wrap(getattr(vals[0], name)(*vals[1:na], **kw), lv)

    m.__name__ = name
    return m


def _reflected(op):
    def m(self, other):
        (o, s), lv = align([other, self])
        if not isinstance(o, _T):
            return wrap(getattr(s, op.replace("__", "__r", 1))(o), lv)
        return wrap(getattr(o, op)(s), lv)

    m.__name__ = op.replace("__", "__r", 1)
    return m


_UNARY = set(_C._unary_methods()) | {
    "negative", "log2", "log10", "sigmoid", "tanh", "sin", "cos", "tan", "sinh", "cosh",
    "asin", "acos", "atan", "asinh", "acosh", "atanh", "arcsin", "arccos", "arctan",
    "arcsinh", "arccosh", "arctanh", "exp2", "erfc", "erfinv", "lgamma", "digamma", "trunc",
    "fix", "frac", "sgn", "logit", "sinc", "deg2rad", "rad2deg", "softplus", "gelu",
    "hardshrink", "clamp", "clip", "clamp_min", "clamp_max", "nan_to_num", "isnan", "isinf",
    "isfinite", "isneginf", "isposinf", "signbit", "logical_not", "bitwise_not", "positive",
    "float", "double", "half", "bfloat16", "long", "int", "bool", "byte", "to", "type_as",
    "contiguous", "clone", "detach", "conj", "resolve_conj", "resolve_neg", "i0",
    "requires_grad_", "pow", "float_power", "realize", "cpu", "cuda", "relu", "silu", "abs",
    "absolute", "neg",
}
_BINARY = {
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide",
    "floor_divide", "remainder", "fmod", "maximum", "minimum", "fmax", "fmin", "eq", "ne",
    "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal",
    "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
    "atan2", "arctan2", "hypot", "copysign", "xlogy", "logaddexp", "logaddexp2", "lerp",
    "addcmul", "addcdiv", "where", "masked_fill", "heaviside", "nextafter", "ldexp",
    "isclose",
}
_DUNDER = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
           "xor", "lt", "le", "gt", "ge", "eq", "ne"]

for _n in _UNARY:
    if hasattr(_T, _n):
        setattr(BatchedTensor, _n, _unary(_n))
for _n in _BINARY:
    if hasattr(_T, _n):
        setattr(BatchedTensor, _n, _nary(_n))
for _n in _DUNDER:
    if _n == "matmul":
        continue
    setattr(BatchedTensor, f"__{_n}__", _nary(f"__{_n}__"))
    if _n not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(BatchedTensor, f"__r{_n}__", _reflected(f"__{_n}__"))
BatchedTensor.__neg__ = _unary("__neg__")
BatchedTensor.__abs__ = _unary("__abs__")
BatchedTensor.__invert__ = _unary("__invert__")
BatchedTensor.__hash__ = object.__hash__
del _n

from . import _batched_ops  # noqa: E402,F401  (reductions, shape ops, matmul, indexing)

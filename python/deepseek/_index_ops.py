"""Indexing compositions of PyTorch's API (``index_fill``/``index_copy``/
``masked_scatter``/``take``/``put``/``*_scatter``, ``scatter_reduce``/``index_reduce``/
``index_put``, ``as_strided``) and small ``Tensor`` utilities (``apply_``, ``new``,
``dim_order``, device predicates). Positions are computed from the index values with numpy;
values move with ``index_select``/``index_add``/gathers, so gradients flow."""

import builtins
import math

import numpy as np

from . import _C
from ._math_ops import _op, METHODS, FUNCTIONS  # noqa: F401
from ._shape_ops import INPLACE, _diag_index, _dim, _ints, movedim

_where = _C.where
_T = _C.Tensor

# --- indexing -----------------------------------------------------------------------------

def _index_mask(input, dim, index):
    d = _dim(dim, input.dim())
    idx = index.reshape(-1).detach().numpy().astype(np.int64) if isinstance(index, _T) else \
        np.asarray(_ints(index))
    n = input.shape[d] if input.dim() else 1
    if idx.size and (idx.max() >= n or idx.min() < -n):
        raise IndexError(f"index out of range in self (size {n} at dim {d})")
    sel = np.zeros(n, dtype=bool)
    sel[idx % n] = True
    shape = [1] * input.dim()
    if input.dim():
        shape[d] = n
    return _C.tensor(sel.reshape(shape)), d


@_op("index_fill")
def index_fill(input, dim, index, value):
    """A copy of ``input`` with ``value`` at ``index`` along ``dim``."""
    mask, _ = _index_mask(input, dim, index)
    if isinstance(value, _T):
        return _where(mask, value.to(input.dtype) + _C.zeros_like(input), input)
    return input.masked_fill(mask, value)


@_op("index_copy")
def index_copy(input, dim, index, source):
    """A copy of ``input`` with the slices of ``source`` written at ``index`` along
    ``dim``."""
    mask, d = _index_mask(input, dim, index)
    placed = _C.zeros_like(input).index_add(d, index, source)
    return _where(mask, placed, input)


@_op("masked_scatter")
def masked_scatter(input, mask, source):
    """A copy of ``input`` with the leading elements of ``source`` written, in order, where
    ``mask`` (broadcast) is True."""
    m = mask.expand(*input.shape) if tuple(mask.shape) != tuple(input.shape) else mask
    pos = np.nonzero(m.detach().numpy().reshape(-1))[0].astype(np.int64)
    if pos.size > source.numel():
        raise ValueError("masked_scatter: expected source to have at least as many elements "
                         "as ones in mask")
    src = source.reshape(-1).narrow(0, 0, int(pos.size))
    flat = input.reshape(-1)
    placed = _C.zeros_like(flat).index_add(0, _C.tensor(pos), src)
    return _where(m.reshape(-1), placed, flat).reshape(*input.shape)


@_op("take")
def take(input, index):
    """The elements of the flattened ``input`` at ``index`` (shaped like ``index``)."""
    flat = input.reshape(-1)
    n = flat.shape[0]
    idx = index.reshape(-1)
    a = idx.detach().numpy()
    if a.size and (a.max() >= n or a.min() < -n):
        raise IndexError(f"out of range: tried to access index {int(a.max())} on a tensor of "
                         f"{n} elements.")
    return flat.index_select(0, _C.tensor(a % n if n else a)).reshape(*index.shape)


@_op("put")
def put(input, index, source, accumulate=False):
    """A copy of ``input`` (flattened view) with ``source`` written (or added, with
    ``accumulate``) at ``index``."""
    flat = input.reshape(-1)
    n = flat.shape[0]
    a = index.reshape(-1).detach().numpy() % builtins.max(n, 1)
    it = _C.tensor(a.astype(np.int64))
    src = source.reshape(-1)
    if accumulate:
        return flat.index_add(0, it, src).reshape(*input.shape)
    return index_copy(flat, 0, it, src).reshape(*input.shape)


@_op("select_scatter")
def select_scatter(input, src, dim, index):
    """A copy of ``input`` with ``src`` embedded at ``index`` of dimension ``dim``."""
    d = _dim(dim, input.dim())
    return index_copy(input, d, _C.tensor([index % input.shape[d]]), src.unsqueeze(d))


@_op("slice_scatter")
def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of ``input`` with ``src`` embedded at ``start:end:step`` of dimension
    ``dim``."""
    d = _dim(dim, input.dim())
    idx = np.arange(input.shape[d])[slice(start, end, step)]
    return index_copy(input, d, _C.tensor(idx.astype(np.int64)), src)


@_op("diagonal_scatter")
def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """A copy of ``input`` with ``src`` embedded on the diagonal ``offset`` of the planes
    ``(dim1, dim2)``."""
    n = input.dim()
    d1, d2 = _dim(dim1, n), _dim(dim2, n)
    x = movedim(input, [d1, d2], [-2, -1])
    r, c = x.shape[-2], x.shape[-1]
    i, j = _diag_index(r, c, offset)
    flat = x.reshape(*x.shape[:-2], r * c)
    out = index_copy(flat, flat.dim() - 1, _C.tensor((i * c + j).astype(np.int64)), src)
    return movedim(out.reshape(*x.shape), [n - 2, n - 1], [d1, d2])


# --- reductions into positions (scatter_reduce, index_reduce) and index_put -------------

_REDUCE_FILL = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -math.inf, "amin": math.inf}


def _reduce_into(input, targets, src, reduce, include_self, who):
    """``input`` with, at each flat position ``targets[j]``, the ``reduce`` of ``src[j]``s
    sent there (and the old value when ``include_self``); a padded gather table per target
    keeps everything differentiable."""
    if reduce not in _REDUCE_FILL:
        raise ValueError(f"{who}: reduce argument must be either sum, prod, mean, amax or amin, "
                         f"got {reduce}")
    flat = input.reshape(-1)
    n = flat.shape[0]
    src_flat = src.reshape(-1).to(input.dtype)
    order = np.argsort(targets, kind="stable")
    t_sorted = targets[order]
    uniq, starts, counts = np.unique(t_sorted, return_index=True, return_counts=True)
    k = int(counts.max()) + 1 if len(uniq) else 1
    sentinel = n + len(targets)
    table = np.full((len(uniq), k), sentinel, dtype=np.int64)
    for r, (s, c) in enumerate(zip(starts, counts)):
        if include_self:
            table[r, 0] = uniq[r]
        table[r, 1:1 + c] = n + order[s:s + c]
    fill = _REDUCE_FILL[reduce]
    ext = _C.cat([flat, src_flat, _C.full((1,), fill, dtype=input.dtype)], 0)
    g = ext.index_select(0, _C.tensor(table.reshape(-1))).reshape(len(uniq), k)
    if reduce in ("sum", "mean"):
        v = g.sum(1)
        if reduce == "mean":
            cnt = counts + (1 if include_self else 0)
            v = v / _C.tensor(cnt.astype(np.float64)).to(input.dtype)
            if not input.is_floating_point():
                v = v.floor()
    elif reduce == "prod":
        v = g.prod(1)
    elif reduce == "amax":
        v = g.amax(1)
    else:
        v = g.amin(1)
    v = v.to(input.dtype)
    out = index_copy(flat, 0, _C.tensor(uniq.astype(np.int64)), v)
    return out.reshape(*input.shape)


def _target_positions(shape, index, dim):
    """Flat positions in ``shape`` for each element of ``index`` (scatter along ``dim``)."""
    idx = index.detach().numpy().astype(np.int64)
    n = shape[dim]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index {int(idx.max())} is out of bounds for dimension {dim} with "
                         f"size {n}")
    coords = list(np.indices(idx.shape))
    coords[dim] = idx % n if n else idx
    return np.ravel_multi_index(tuple(coords), shape).reshape(-1)


@_op("scatter_reduce")
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """``input`` with ``src`` reduced (sum, prod, mean, amax, amin) into the positions
    ``index`` names along ``dim``; ``include_self=False`` leaves the old values out of the
    reduction."""
    d = _dim(dim, input.dim())
    if index.dim() != src.dim() or index.dim() != input.dim():
        raise ValueError("Index tensor must have the same number of dimensions as self and src "
                         "tensors")
    pos = _target_positions(tuple(input.shape), index, d)
    s = src
    if tuple(src.shape) != tuple(index.shape):
        for i, (a, b) in enumerate(zip(index.shape, src.shape)):
            if a > b:
                raise ValueError(f"Expected index {list(index.shape)} to be smaller than src "
                                 f"{list(src.shape)} apart from dimension {d}")
        for i, a in enumerate(index.shape):
            s = s.narrow(i, 0, a)
    return _reduce_into(input, pos, s, reduce, include_self, "scatter_reduce")


@_op("index_reduce")
def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """``input`` with the slices of ``source`` reduced (prod, mean, amax, amin) into the
    slices ``index`` (1-D) names along ``dim``."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ValueError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or "
                         f"amin but got {reduce}.")
    d = _dim(dim, input.dim())
    idx = index.reshape(-1)
    if idx.shape[0] != source.shape[d]:
        raise ValueError(f"index_reduce_(): Number of indices ({idx.shape[0]}) should be equal "
                         f"to source.size(dim) ({source.shape[d]})")
    shape = [1] * source.dim()
    shape[d] = idx.shape[0]
    full_index = idx.reshape(*shape).expand(*source.shape)
    pos = _target_positions(tuple(input.shape), full_index, d)
    return _reduce_into(input, pos, source, reduce, include_self, "index_reduce")


@_op("index_put")
def index_put(input, indices, values, accumulate=False):
    """``input`` with ``values`` (broadcast) written (or added, with ``accumulate``) at the
    advanced index ``indices`` (a tuple of integer or bool tensors, one per leading
    dimension)."""
    idx = []
    for t in indices:
        if t is None:
            raise NotImplementedError("index_put: None entries in indices are not supported")
        a = t.detach().numpy()
        if a.dtype == np.bool_:
            idx.extend(np.nonzero(a))
        else:
            idx.append(a.astype(np.int64))
    if len(idx) > input.dim():
        raise IndexError(f"too many indices for tensor of dimension {input.dim()} (got "
                         f"{len(idx)})")
    idx = np.broadcast_arrays(*idx)
    lead = tuple(input.shape[:len(idx)])
    rest = list(input.shape[len(idx):])
    for a, n in zip(idx, lead):
        if a.size and (a.min() < -n or a.max() >= n):
            raise IndexError(f"index {int(a.max())} is out of bounds for dimension with size {n}")
    rows = np.ravel_multi_index(tuple(a % n for a, n in zip(idx, lead)), lead).reshape(-1)
    m = int(np.prod(rest)) if rest else 1
    base = input.reshape(-1, m)
    vals = values.to(input.dtype) if isinstance(values, _T) else \
        _C.full((), float(values), dtype=input.dtype)
    vals = vals.expand(*(list(idx[0].shape) + rest)).reshape(-1, m)
    rt = _C.tensor(rows.astype(np.int64))
    out = base.index_add(0, rt, vals) if accumulate else index_copy(base, 0, rt, vals)
    return out.reshape(*input.shape)


INPLACE += ["scatter_reduce", "index_reduce", "index_put"]


# --- strided views over the flat elements, and small Tensor utilities --------------------

def _strided_index(input, size, stride, storage_offset, who):
    size, stride = _ints(size), _ints(stride)
    if len(size) != len(stride):
        raise ValueError(f"mismatch in length of strides and shape: {len(size)} vs "
                         f"{len(stride)}")
    off = input.storage_offset() if storage_offset is None else int(storage_offset)
    if not input.is_contiguous() or input.storage_offset() != 0:
        raise NotImplementedError(f"{who}: only contiguous tensors with storage_offset 0 are "
                                  f"supported (deepseek cannot address the rest of a view's "
                                  f"storage); call .contiguous() first")
    if any(s < 0 for s in stride) or any(n < 0 for n in size):
        raise ValueError(f"{who}: negative strides or sizes are not supported")
    idx = np.full(tuple(size), off, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        idx = idx + (np.arange(n) * s).reshape(shape)
    need = int(idx.max()) + 1 if idx.size else 0
    if need > input.numel():
        raise ValueError(f"setStorage: sizes {size}, strides {stride}, storage offset {off} "
                         f"require a storage of size {need}, but the tensor has "
                         f"{input.numel()} elements")
    return idx


@_op("as_strided")
def as_strided(input, size, stride, storage_offset=None):
    """The elements at ``storage_offset + sum_k i_k stride_k`` of ``input``'s (contiguous)
    element sequence, as a tensor of ``size`` (a gather: it copies, unlike PyTorch's
    view)."""
    idx = _strided_index(input, size, stride, storage_offset, "as_strided")
    flat = input.reshape(-1)
    return flat.index_select(0, _C.tensor(idx.reshape(-1))).reshape(*_ints(size))


@_op("as_strided_scatter")
def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """A copy of ``input`` with ``src`` written at the positions ``as_strided`` would
    read."""
    idx = _strided_index(input, size, stride, storage_offset, "as_strided_scatter")
    flat = input.reshape(-1)
    return index_copy(flat, 0, _C.tensor(idx.reshape(-1)), src.reshape(-1)) \
        .reshape(*input.shape)


FUNCTIONS["as_strided_copy"] = as_strided


def _apply_(self, callable):
    """Applies a Python function to every element, in place (CPU tensors that do not
    require grad; slow, as in PyTorch)."""
    if self.requires_grad:
        raise RuntimeError("apply_ is only implemented on CPU tensors that don't require grad")
    a = self.detach().numpy()
    out = np.vectorize(callable, otypes=[a.dtype])(a) if a.size else a
    return _C._assign_inplace(self, _C.tensor(np.ascontiguousarray(out)).to(self.dtype),
                              "apply_")


def _map_(self, tensor, callable):
    """``self[i] = callable(self[i], tensor[i])`` elementwise in place (``tensor``
    broadcast)."""
    if self.requires_grad:
        raise RuntimeError("map_ is only implemented on CPU tensors that don't require grad")
    a = self.detach().numpy()
    b = np.broadcast_to(tensor.detach().numpy(), a.shape)
    out = np.vectorize(callable, otypes=[a.dtype])(a, b) if a.size else a
    return _C._assign_inplace(self, _C.tensor(np.ascontiguousarray(out)).to(self.dtype), "map_")


def _map2_(self, x, y, callable):
    """``self[i] = callable(self[i], x[i], y[i])`` elementwise in place."""
    if self.requires_grad:
        raise RuntimeError("map2_ is only implemented on CPU tensors that don't require grad")
    a = self.detach().numpy()
    b = np.broadcast_to(x.detach().numpy(), a.shape)
    c = np.broadcast_to(y.detach().numpy(), a.shape)
    out = np.vectorize(callable, otypes=[a.dtype])(a, b, c) if a.size else a
    return _C._assign_inplace(self, _C.tensor(np.ascontiguousarray(out)).to(self.dtype),
                              "map2_")


def _new(self, *args, **kwargs):
    """Legacy constructor: ``x.new(2, 3)`` (zeros) or ``x.new(data)``, with ``x``'s
    dtype."""
    if kwargs.get("device") not in (None, "cpu"):
        raise RuntimeError("deepseek has CPU tensors only")
    if not args:
        return _C.zeros(0, dtype=self.dtype)
    if len(args) == 1 and not isinstance(args[0], int):
        a = args[0]
        if isinstance(a, tuple) and all(isinstance(v, int) for v in a):
            return _C.zeros(*a, dtype=self.dtype)
        if isinstance(a, _T):
            return a.detach().to(self.dtype)
        return _C.tensor(a, dtype=self.dtype)
    return _C.zeros(*[int(v) for v in args], dtype=self.dtype)


def _dim_order(self, *, ambiguity_check=False):
    """The dimensions from outermost to innermost in memory (by decreasing stride)."""
    st = self.stride()
    return tuple(sorted(range(self.dim()), key=lambda d: (-st[d], d)))


def _false(self):
    """False: deepseek does not pin host memory."""
    return False


METHODS.update({"apply_": _apply_, "map_": _map_, "map2_": _map2_, "new": _new,
                "dim_order": _dim_order, "is_pinned": _false})
PROPERTIES = {n: property(_false) for n in ("is_xla", "is_mps", "is_xpu", "is_ipu",
                                            "is_vulkan", "is_maia", "is_mtia")}


# --- in-place shape changes: the Python object is rebound to the new view of its storage
# (tensors outside the autograd graph; deepseek cannot record a shape change in place) -----

def _shape_inplace(name, fn):
    def f(self, *args, **kwargs):
        if self.requires_grad and _C.is_grad_enabled():
            raise RuntimeError(f"{name}: in-place shape changes of a tensor that requires grad "
                               f"are not supported; use the out-of-place "
                               f"{name[:-1]} (or run under no_grad)")
        self._replace_data(fn(self, *args, **kwargs))
        return self

    f.__name__ = name
    f.__doc__ = f"In-place ``{name[:-1]}``: ``self`` becomes the result (a view of the same " \
                f"elements where ``{name[:-1]}`` is a view)."
    return f


def _resize(self, *sizes):
    shape = _ints(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], int) else \
        [int(s) for s in sizes]
    if any(s < 0 for s in shape):
        raise ValueError(f"Trying to create tensor with negative dimension: {shape}")
    n = int(np.prod(shape)) if shape else 1
    flat = self.reshape(-1)
    if n <= flat.shape[0]:
        out = flat.narrow(0, 0, n)
    else:
        out = _C.cat([flat, _C.zeros(n - flat.shape[0], dtype=self.dtype)], 0)
    return out.reshape(*shape)


METHODS.update({
    "squeeze_": _shape_inplace("squeeze_", lambda s, *a, **k: s.squeeze(*a, **k)),
    "unsqueeze_": _shape_inplace("unsqueeze_", lambda s, d: s.unsqueeze(d)),
    "t_": _shape_inplace("t_", lambda s: s.t()),
    "transpose_": _shape_inplace("transpose_", lambda s, a, b: s.transpose(a, b)),
    "swapaxes_": _shape_inplace("swapaxes_", lambda s, a, b: s.transpose(a, b)),
    "swapdims_": _shape_inplace("swapdims_", lambda s, a, b: s.transpose(a, b)),
    "resize_": _shape_inplace("resize_", _resize),
    "resize_as_": _shape_inplace("resize_as_", lambda s, o, **k: _resize(s, tuple(o.shape))),
    "as_strided_": _shape_inplace("as_strided_", lambda s, *a: as_strided(s, *a)),
})


@_op("angle")
def angle(input):
    """The argument of each element: 0 for non-negative reals, pi for negative ones (NaN
    stays NaN); deepseek has no complex tensors."""
    x = input if input.is_floating_point() else input.to(_C.float32)
    out = _where(x < 0, _C.full_like(x, math.pi), _C.zeros_like(x))
    # zero gradient everywhere (NaN positions included), as PyTorch
    return _where(x != x, x.detach(), out) + (x - x.detach()) * 0


@_op("nonzero_static")
def nonzero_static(input, *, size, fill_value=-1):
    """``nonzero(input)`` padded with ``fill_value`` rows (or truncated) to exactly
    ``size`` rows."""
    if size < 0:
        raise ValueError(f"nonzero_static: 'size' must be an non-negative integer, got {size}")
    idx = np.argwhere(input.detach().numpy())
    out = np.full((size, input.dim()), fill_value, dtype=np.int64)
    k = min(size, len(idx))
    out[:k] = idx[:k]
    return _C.tensor(out)


def _to_dense(self, dtype=None, *, masked_grad=None):
    """``self`` (deepseek tensors are dense), cast to ``dtype`` if given."""
    return self if dtype is None else self.to(dtype)


def _module_load(self, other, assign=False):
    """What ``load_state_dict`` loads into ``self``: ``other`` (PyTorch's default)."""
    if not isinstance(other, _T):
        raise TypeError(f"module_load: expected a Tensor, got {type(other).__name__}")
    return other


def _not_shared(self):
    """False: deepseek storage is not in shared memory."""
    return False


def _conj_physical_(self):
    """In-place conjugation: nothing to do for real tensors."""
    return self


METHODS.update({"to_dense": _to_dense, "module_load": _module_load,
                "conj_physical_": _conj_physical_, "is_shared": _not_shared})

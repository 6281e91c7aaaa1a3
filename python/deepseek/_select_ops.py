"""Selections with PyTorch's signatures, as functions and ``Tensor`` methods: ``roll``,
``diag``, ``repeat_interleave``, ``nonzero``/``argwhere``, ``masked_select``, ``unique``,
``scatter``/``scatter_``, ``index_add_``, and the ``isnan``/``isinf``/``isfinite``/
``nan_to_num`` methods. The work is done by the Rust core (``deepseek::ops::select``)."""

from . import _C

_core_index_add = _C.Tensor.index_add


def _ints(v, name):
    if isinstance(v, int):
        return [v]
    try:
        return [int(i) for i in v]
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {type(v).__name__}")


def roll(input, shifts, dims=None):
    """Rolls ``input`` along ``dims`` by ``shifts`` (flattened when ``dims`` is None)."""
    return _C._roll(input, _ints(shifts, "shifts"), [] if dims is None else _ints(dims, "dims"))


def diag(input, diagonal=0):
    """1-D -> the matrix with ``input`` on diagonal ``diagonal``; 2-D -> that diagonal."""
    return _C._diag(input, int(diagonal))


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Repeats each element ``repeats`` times (an int or a tensor of counts) along ``dim``
    (flattened when None). ``repeat_interleave(counts)`` repeats ``arange(len(counts))``."""
    if repeats is None:
        counts = input
        out = _C._repeat_interleave(_C.arange(counts.numel()), counts, 0)
    else:
        out = _C._repeat_interleave(input, repeats, dim)
    if output_size is not None and out.shape[0 if dim is None else dim] != output_size:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the "
                           f"result's size {out.shape[0 if dim is None else dim]}")
    return out


def nonzero(input, *, as_tuple=False):
    """Indices of the non-zero elements: ``[count, input.dim()]`` int64, or with
    ``as_tuple=True`` one 1-D index tensor per dimension."""
    idx = _C._nonzero(input)
    if not as_tuple:
        return idx
    if input.dim() == 0:
        return (idx.reshape(-1),)
    return tuple(idx[:, d] for d in range(input.dim()))


def argwhere(input):
    """``nonzero(input)``."""
    return _C._nonzero(input)


def masked_select(input, mask):
    """The elements of ``input`` where ``mask`` (bool, broadcast) is True, as 1-D."""
    return _C._masked_select(input, mask)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """Sorted distinct elements of the flattened ``input`` (``sorted=False`` also returns them
    sorted, as PyTorch's CPU kernel does), with the inverse indices and counts when asked."""
    if dim is not None:
        raise NotImplementedError("unique: dim is not supported yet; call it without dim "
                                  "(the flattened input)")
    values, inverse, counts = _C._unique(input, bool(return_inverse), bool(return_counts))
    out = (values,)
    if return_inverse:
        out += (inverse,)
    if return_counts:
        out += (counts,)
    return out[0] if len(out) == 1 else out


def _scatter_src(src, value, op):
    if src is None and value is None:
        raise TypeError(f"{op}: expected src or value")
    return value if src is None else src


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """A copy of ``input`` with ``src`` (a tensor, or a number ``value``) written at
    ``index`` along ``dim``; ``reduce='add'`` adds instead."""
    s = _scatter_src(src, value, "scatter")
    if reduce is None:
        return _C._scatter(input, dim, index, s)
    if reduce == "add":
        if not isinstance(s, _C.Tensor):
            s = _C.full(tuple(index.shape), float(s), dtype=input.dtype)
        return input.scatter_add(dim, index, s)
    raise ValueError(f"scatter: reduce must be 'add' (or None), got {reduce!r}")


def _scatter_(self, dim, index, src=None, value=None, *, reduce=None):
    """``scatter_(dim, index, src_or_value, *, reduce=None)``: write ``src`` (or a number) at
    ``index`` along ``dim``, in place.
    """
    return _C._assign_inplace(self, scatter(self, dim, index, src, value, reduce=reduce),
                              "scatter_")


def _scatter_add_(self, dim, index, src):
    """``scatter_add_(dim, index, src)``: in-place ``scatter_add``."""
    return _C._assign_inplace(self, self.scatter_add(dim, index, src), "scatter_add_")


def index_add(input, dim, index, source, *, alpha=1):
    """``input`` with ``alpha * source`` rows added at ``index`` along ``dim``."""
    if alpha != 1:
        source = source * alpha
    return _core_index_add(input, dim, index, source)


def _index_add_(self, dim, index, source, *, alpha=1):
    """``index_add_(dim, index, source, *, alpha=1)``: ``self[..., index[i], ...] += alpha *
    source[..., i, ...]`` along ``dim``, in place.
    """
    return _C._assign_inplace(self, index_add(self, dim, index, source, alpha=alpha),
                              "index_add_")


def _nan_methods():
    from . import _ops

    return {
        "isnan": _ops.isnan,
        "isinf": _ops.isinf,
        "isfinite": _ops.isfinite,
        "nan_to_num": _ops.nan_to_num,
    }


def clamp_(input, min=None, max=None):
    """In-place ``input.clamp_(min, max)``."""
    return input.clamp_(min, max)


def _install():
    T = _C.Tensor
    T.roll = roll
    T.diag = diag
    T.repeat_interleave = repeat_interleave
    T.nonzero = nonzero
    T.argwhere = argwhere
    T.masked_select = masked_select
    T.unique = unique
    T.scatter = scatter
    T.scatter_ = _scatter_
    T.scatter_add_ = _scatter_add_
    T.index_add = index_add
    T.index_add_ = _index_add_
    for name, f in _nan_methods().items():
        if not hasattr(T, name):
            setattr(T, name, f)


__all__ = ["roll", "diag", "repeat_interleave", "nonzero", "argwhere", "masked_select",
           "unique", "scatter", "index_add", "clamp_"]

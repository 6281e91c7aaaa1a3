"""Batching rules for the non-elementwise Tensor methods of ``BatchedTensor``: reductions
and dimension-wise ops (dimension arguments shifted past the batch dimensions), shape and
view ops, matmul and friends, indexing and gathering."""

from ._batched import (BatchedTensor, _T, _norm, align, expand_to, fallback, level_sizes,
                       pad_to, parts, wrap, wrap_tree)

_MISSING = object()


def _bk(self):
    v, lv = self._v, self._lv
    return v, lv, len(lv), v.dim() - len(lv)


def _shift(d, k, n):
    if isinstance(d, (list, tuple)):
        return [_norm(x, n) + k for x in d]
    return _norm(d, n) + k


def _take_dim(args, kwargs, pos, key="dim"):
    if key in kwargs:
        return kwargs.pop(key)
    if len(args) > pos:
        return args.pop(pos)
    return _MISSING


def _call(v, name, args, pos, dim, kwargs):
    """``v.<name>(*args)`` with ``dim`` put back at position ``pos`` (as a keyword when
    fewer positional arguments come before it)."""
    if len(args) >= pos:
        return getattr(v, name)(*args[:pos], dim, *args[pos:], **kwargs)
    return getattr(v, name)(*args, dim=dim, **kwargs)


_IDENTITY_ON_SCALARS = {"sum", "mean", "prod", "amax", "amin", "nansum", "nanmean", "max",
                        "min", "median", "logsumexp"}


# ---- reductions ------------------------------------------------------------------------------
def _reduce(name, pos=0):
    """A reduction whose dimension argument (at ``pos``) defaults to all dimensions."""

    def m(self, *args, **kwargs):
        args = list(args)
        if name in ("var", "std") and args and isinstance(args[0], bool):
            kwargs["unbiased"] = args.pop(0)
        if name in ("max", "min") and args and (isinstance(args[0], _T)
                                               or type(args[0]) is BatchedTensor):
            return getattr(self, "maximum" if name == "max" else "minimum")(args[0])
        d = _take_dim(args, kwargs, pos)
        v, lv, k, n = _bk(self)
        if n == 0 and not args and not kwargs and name in _IDENTITY_ON_SCALARS:
            return self  # the reduction of a single element is that element
        if d is _MISSING or d is None or (isinstance(d, (list, tuple)) and len(d) == 0
                                           and name in ("sum", "mean", "nansum", "nanmean")):
            if name == "norm":  # over the flattened example, Frobenius is the 2-norm
                if args and isinstance(args[0], str) and args[0] == "fro":
                    args[0] = 2
                if kwargs.get("p") == "fro":
                    kwargs["p"] = 2
            keep = kwargs.get("keepdim", False)
            bs = tuple(v.shape[:k])
            v2 = v.reshape(*bs, -1) if n != 1 else v
            r = _call(v2, name, args, pos, k, kwargs)
            if name in ("max", "min", "median", "nanmedian", "mode") and isinstance(r, tuple):
                r = r[0]
            if keep:
                r = r.reshape(*bs, *([1] * n))
            return wrap(r, lv)
        if n == 0:
            v = v.unsqueeze(-1)
            r = _call(v, name, args, pos, k, kwargs)
            squeeze = lambda t: t.squeeze(-1) if kwargs.get("keepdim") else t  # noqa: E731
            return wrap_tree(r if not kwargs.get("keepdim") else
                             (type(r)(*map(squeeze, r)) if isinstance(r, tuple) else squeeze(r)),
                             lv)
        r = _call(v, name, args, pos, _shift(d, k, n), kwargs)
        return wrap_tree(r, lv)

    m.__name__ = name
    return m


def _dimop(name, pos=0, default=_MISSING):
    """An op along one (or a list of) logical dimension(s) at argument ``pos``."""

    def m(self, *args, **kwargs):
        args = list(args)
        d = _take_dim(args, kwargs, pos)
        if d is _MISSING:
            d = default
        if d is _MISSING:
            raise TypeError(f"{name}() missing its dim argument")
        v, lv, k, n = _bk(self)
        if n == 0:
            r = _call(v.unsqueeze(-1), name, args, pos, k, kwargs)
            return wrap_tree(type(r)(t.squeeze(-1) for t in r) if isinstance(r, (list, tuple))
                             else r.squeeze(-1), lv)
        r = _call(v, name, args, pos, _shift(d, k, n), kwargs)
        return wrap_tree(r, lv)

    m.__name__ = name
    return m


for _n in ("sum", "mean", "prod", "amax", "amin", "all", "any", "count_nonzero", "argmax",
           "argmin", "nansum", "nanmean", "max", "min", "median", "nanmedian", "var", "std",
           "logsumexp"):
    setattr(BatchedTensor, _n, _reduce(_n))
BatchedTensor.norm = _reduce("norm", 1)
for _n in ("softmax", "log_softmax", "cumsum", "cumprod", "logcumsumexp", "cummax", "cummin",
           "select", "narrow", "unbind", "index_select", "flip", "unflatten"):
    setattr(BatchedTensor, _n, _dimop(_n, 0, 0 if _n == "unbind" else _MISSING))
for _n in ("sort", "argsort", "mode", "msort"):
    setattr(BatchedTensor, _n, _dimop(_n, 0, -1))
for _n in ("topk", "kthvalue", "diff"):
    setattr(BatchedTensor, _n, _dimop(_n, 1, -1))
for _n in ("chunk", "split", "tensor_split", "split_with_sizes"):
    setattr(BatchedTensor, _n, _dimop(_n, 1, 0))
del _n


# ---- shape and view ops ------------------------------------------------------------------
def _sizes(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _reshape(self, *shape):
    v, lv, k, n = _bk(self)
    return BatchedTensor(v.reshape(*v.shape[:k], *_sizes(shape)), lv)


def _expand(self, *sizes):
    v, lv, k, n = _bk(self)
    sizes = _sizes(sizes)
    v = pad_to(self, lv, len(sizes))
    return BatchedTensor(v.expand(*v.shape[:k], *sizes), lv)


def _permute(self, *dims):
    v, lv, k, n = _bk(self)
    return BatchedTensor(v.permute(*range(k), *_shift(list(_sizes(dims)), k, n)), lv)


def _transpose(self, a, b):
    v, lv, k, n = _bk(self)
    return BatchedTensor(v.transpose(_shift(a, k, n), _shift(b, k, n)), lv)


def _t(self):
    return self if self.dim() < 2 else _transpose(self, 0, 1)


def _unsqueeze(self, d):
    v, lv, k, n = _bk(self)
    return BatchedTensor(v.unsqueeze(_norm(d, n + 1) + k), lv)


def _squeeze(self, dim=None):
    v, lv, k, n = _bk(self)
    if n == 0:
        return self
    if dim is None:
        dims = [i + k for i, s in enumerate(v.shape[k:]) if s == 1]
    else:
        dims = [d for d in _shift(dim if isinstance(dim, (list, tuple)) else [dim], k, n)
                if v.shape[d] == 1]
    for d in sorted(dims, reverse=True):
        v = v.squeeze(d)
    return BatchedTensor(v, lv)


def _flatten(self, start_dim=0, end_dim=-1):
    v, lv, k, n = _bk(self)
    if n == 0:
        return BatchedTensor(v.reshape(*v.shape[:k], 1), lv)
    return BatchedTensor(v.flatten(_shift(start_dim, k, n), _shift(end_dim, k, n)), lv)


def _movedim(self, src, dst):
    v, lv, k, n = _bk(self)
    return BatchedTensor(v.movedim(_shift(src, k, n), _shift(dst, k, n)), lv)


def _repeat(self, *sizes):
    sizes = _sizes(sizes)
    v, lv, k, n = _bk(self)
    v = pad_to(self, lv, len(sizes))
    return BatchedTensor(v.repeat(*([1] * k), *sizes), lv)


def _tile(self, *dims):
    dims = _sizes(dims)
    dims = (1,) * (self.dim() - len(dims)) + dims
    return _repeat(self, *dims)


def _diagonal(self, offset=0, dim1=0, dim2=1):
    v, lv, k, n = _bk(self)
    return BatchedTensor(v.diagonal(offset, _shift(dim1, k, n), _shift(dim2, k, n)), lv)


def _trace(self):
    return _diagonal(self, 0, 0, 1).sum(-1)


def _tri(name):
    def m(self, diagonal=0):
        return BatchedTensor(getattr(self._v, name)(diagonal), self._lv)

    return m


for _n, _f in {"reshape": _reshape, "view": _reshape, "expand": _expand,
               "broadcast_to": _expand, "permute": _permute, "transpose": _transpose,
               "swapaxes": _transpose, "swapdims": _transpose, "t": _t,
               "unsqueeze": _unsqueeze, "squeeze": _squeeze, "flatten": _flatten,
               "movedim": _movedim, "moveaxis": _movedim, "repeat": _repeat, "tile": _tile,
               "diagonal": _diagonal, "trace": _trace, "tril": _tri("tril"),
               "triu": _tri("triu")}.items():
    setattr(BatchedTensor, _n, _f)
BatchedTensor.ravel = lambda self: _reshape(self, -1)
BatchedTensor.reshape_as = lambda self, o: _reshape(self, *o.shape)
BatchedTensor.view_as = BatchedTensor.reshape_as
BatchedTensor.expand_as = lambda self, o: _expand(self, *o.shape)
BatchedTensor.T = property(lambda self: _permute(self, *reversed(range(self.dim()))))
BatchedTensor.mT = property(lambda self: _transpose(self, -2, -1))
BatchedTensor.mH = BatchedTensor.mT
BatchedTensor.H = BatchedTensor.T


def _new(name):
    def m(self, *args, **kwargs):
        return getattr(self._v, name)(*args, **kwargs)

    return m


for _n in ("new_zeros", "new_ones", "new_full", "new_empty", "new_tensor"):
    setattr(BatchedTensor, _n, _new(_n))


# ---- matmul ----------------------------------------------------------------------------------
def matmul(a, b):
    """Batched ``a @ b`` (either side may be plain)."""
    av, alv = parts(a)
    bv, blv = parts(b)
    an = av.dim() - len(alv)
    bn = bv.dim() - len(blv)
    if an == 0 or bn == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D")
    if not blv and (bn == 2 or (bn == 1 and an >= 1)):
        return wrap(av @ bv, alv)
    if not alv and an == 2 and bn == 1:
        return wrap(bv @ av.t(), blv)
    if not alv and an <= 2 and bn >= 2:
        return wrap(av @ bv, blv)
    sa, sb = an == 1, bn == 1
    if sa:
        a = wrap(av.unsqueeze(-2), alv)
    if sb:
        b = wrap(bv.unsqueeze(-1), blv)
    (pa, pb), lv = align([a, b])
    nd = max(an + sa, bn + sb)
    pa = pad_to(a, lv, nd) if type(a) is BatchedTensor else pa
    pb = pad_to(b, lv, nd) if type(b) is BatchedTensor else pb
    r = pa @ pb
    if sb:
        r = r.squeeze(-1)
    if sa:
        r = r.squeeze(-1 if sb else -2)
    return wrap(r, lv)


BatchedTensor.matmul = BatchedTensor.__matmul__ = matmul
BatchedTensor.mm = BatchedTensor.bmm = BatchedTensor.mv = matmul
BatchedTensor.__rmatmul__ = lambda self, other: matmul(other, self)
BatchedTensor.dot = BatchedTensor.inner = BatchedTensor.vdot = lambda self, o: (self * o).sum(-1)
BatchedTensor.outer = BatchedTensor.ger = lambda self, o: self.unsqueeze(-1) * o.unsqueeze(0)


# ---- indexing ----------------------------------------------------------------------------------
def _is_adv(i):
    return isinstance(i, (_T, list)) or type(i) is BatchedTensor


def _getitem(self, idx):
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(type(i) is BatchedTensor for i in idx):
        return fallback(lambda t, *ix: t[ix if len(ix) > 1 else ix[0]], (self,) + idx, {},
                        name="Tensor.__getitem__")
    adv = [j for j, i in enumerate(idx) if _is_adv(i) or isinstance(i, (int, bool))
           and not isinstance(i, bool)]
    if any(_is_adv(idx[j]) for j in adv) and adv != list(range(adv[0], adv[-1] + 1)):
        return fallback(lambda t, *ix: t[ix], (self,) + idx, {}, name="Tensor.__getitem__")
    v, lv = self._v, self._lv
    return BatchedTensor(v[(slice(None),) * len(lv) + idx], lv)


BatchedTensor.__getitem__ = _getitem


def _setitem(self, idx, value):
    raise RuntimeError("vmap: in-place assignment to a batched tensor is not supported by "
                       "deepseek's vmap; build the result out of place (deepseek.where, cat)")


BatchedTensor.__setitem__ = _setitem


def _gather_like(name, pos_index=1):
    def m(self, dim, index, *rest, **kwargs):
        xs = [self, index] + [r for r in rest if isinstance(r, _T) or type(r) is BatchedTensor]
        sizes = level_sizes(xs)
        lv = tuple(sorted(sizes))
        n = self.dim()
        d = _norm(dim, n) + len(lv)
        ex = [expand_to(x, lv, sizes) if isinstance(x, _T) or type(x) is BatchedTensor else x
              for x in [self, index, *rest]]
        return wrap(getattr(ex[0], name)(d, *ex[1:], **kwargs), lv)

    m.__name__ = name
    return m


for _n in ("gather", "scatter", "scatter_add", "index_add", "index_copy", "index_fill"):
    setattr(BatchedTensor, _n, _gather_like(_n))


def _index_select(self, dim, index):
    if type(index) is BatchedTensor:
        return fallback(lambda t, i: t.index_select(dim, i), (self, index), {},
                        name="Tensor.index_select")
    v, lv, k, n = _bk(self)
    return BatchedTensor(v.index_select(_norm(dim, n) + k, index), lv)


BatchedTensor.index_select = _index_select


def _take_along_dim(self, indices, dim=None):
    if dim is None:
        return _gather_like("gather")(self.reshape(-1), 0, indices.reshape(-1))
    (a, b), lv = align([self, indices])
    n = max(self.dim(), indices.dim())
    d = _norm(dim, n) + len(lv)
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]
    shape[d] = -1
    return wrap(a.expand(*[s if i != d else a.shape[d] for i, s in enumerate(shape)])
                .gather(d, b.expand(*[s if i != d else b.shape[d] for i, s in enumerate(shape)])),
                lv)


BatchedTensor.take_along_dim = _take_along_dim

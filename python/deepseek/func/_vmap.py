"""``vmap``: vectorising map by batching rules (see ``_batched``), not by a loop."""

import functools

from .. import _dispatch
from ._batched import STACK, BatchedTensor, _T, _norm, parts, wrap
from ._pytree import broadcast_prefix, tree_flatten, tree_unflatten

_RANDOMNESS = ("error", "different", "same")


def _is_t(x):
    return isinstance(x, _T) or type(x) is BatchedTensor


def _enter(x, d, level):
    """``x`` with its logical dimension ``d`` turned into the batch dimension of ``level``
    (the innermost one, so it goes after the batch dimensions ``x`` already has)."""
    v, lv = parts(x)
    k = len(lv)
    n = v.dim() - k
    d = _norm(d, n)
    if d:
        v = v.movedim(k + d, k)
    return BatchedTensor(v, lv + (level,))


def _exit(x, level, size, od):
    """Removes ``level`` from ``x``: its batch dimension becomes logical dimension ``od``
    (a tensor not batched at ``level`` is expanded)."""
    v, lv = parts(x)
    n = v.dim() - len(lv)
    if level in lv:
        i = lv.index(level)
        rest = lv[:i] + lv[i + 1:]
        d = _norm(od, n + 1) + len(rest)
        if d != i:
            v = v.movedim(i, d)
        return wrap(v, rest)
    d = _norm(od, n + 1) + len(lv)
    v = v.unsqueeze(d)
    shape = list(v.shape)
    shape[d] = size
    return wrap(v.expand(*shape), lv)


def _batch_size(leaves, dims):
    sizes = set()
    for x, d in zip(leaves, dims):
        if d is None:
            continue
        if not _is_t(x):
            raise ValueError(f"vmap: Got in_dim={d} for an input but the input is of type "
                             f"{type(x).__name__}. We cannot vmap over non-Tensor arguments, "
                             f"please use None as the respective in_dim")
        n = x.dim()
        if not -n <= d < max(n, 1) or n == 0:
            raise ValueError(f"vmap: Got in_dim={d} for some input, but that input is a "
                             f"Tensor of dimensionality {n} so expected in_dim to satisfy "
                             f"-{n} <= in_dim < {n}.")
        sizes.add(x.shape[d])
    if not sizes:
        raise ValueError("vmap: at least one input must be mapped (in_dims not all None): "
                         "there is no batch to map over")
    if len(sizes) != 1:
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sorted(sizes)} for the mapped dimension")
    return sizes.pop()


def _run(func, leaves, spec, dims, size, out_dims, randomness, kwargs):
    level = (STACK[-1][0] + 1) if STACK else 1
    new = [x if d is None else _enter(x, d, level) for x, d in zip(leaves, dims)]
    STACK.append([level, size, randomness])
    try:
        with _dispatch.activate():
            out = func(*tree_unflatten(new, spec), **kwargs)
    finally:
        STACK.pop()
    if isinstance(out_dims, int) and (isinstance(out, _T) or type(out) is BatchedTensor):
        return _exit(out, level, size, out_dims)  # the common case, without pytrees
    out_leaves, out_spec = tree_flatten(out)
    ods = broadcast_prefix(out_dims, out, "out_dims")
    res = []
    for o, od in zip(out_leaves, ods):
        if not _is_t(o):
            raise ValueError(f"vmap: `{getattr(func, '__name__', func)}` must only return "
                             f"Tensors, got type {type(o).__name__}")
        if od is None:
            if type(o) is BatchedTensor and level in o._lv:
                raise ValueError("vmap: out_dims=None for an output that depends on the "
                                 "mapped inputs; it must be the same for every example")
            res.append(o)
        else:
            res.append(_exit(o, level, size, od))
    return tree_unflatten(res, out_spec)


_FLAT_SPECS = {}


def _flat_spec(n):
    _FLAT_SPECS[n] = tree_flatten((None,) * n)[1]
    return _FLAT_SPECS[n]


def _chunks(leaves, dims, size, chunk_size):
    for start in range(0, size, chunk_size):
        n = min(chunk_size, size - start)
        yield [x if d is None else x.narrow(d, start, n) for x, d in zip(leaves, dims)], n


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """Vectorising map, as ``torch.func.vmap``: ``vmap(f)(xs)`` is ``f`` applied to every
    slice of ``xs`` along ``in_dims``, stacked along ``out_dims`` -- computed in one pass by
    batching rules, not by a Python loop.

    ``in_dims``: an int (every tensor argument mapped along that dimension), None (not
    mapped), or a tuple with one entry per positional argument, each an int, None or a
    nested tuple/list/dict matching that argument's pytree. Keyword arguments are never
    mapped. ``out_dims``: an int, None (for outputs that do not depend on the batch) or a
    pytree prefix of the output. ``chunk_size``: map that many examples at a time (bounds
    the memory of large batches; the results are concatenated). ``randomness``: 'error'
    (random ops inside ``f`` raise), 'different' (each example draws its own numbers) or
    'same' (one draw shared by the batch). vmaps nest, and compose with ``grad``, ``vjp``,
    ``jvp`` and the Jacobian transforms of ``deepseek.func``.

    Ops without a batching rule run once per example for that op only; ``deepseek.func.
    fallback_counts()`` tells which ran that way."""
    if randomness not in _RANDOMNESS:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got "
                         f"{chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        if isinstance(in_dims, (tuple, list)) and len(in_dims) != len(args):
            raise ValueError(f"vmap: in_dims is not compatible with the structure of the "
                             f"inputs: expected {len(args)} entries, got {len(in_dims)}")
        if all(isinstance(a, _T) or type(a) is BatchedTensor for a in args) and (
                isinstance(in_dims, int) or isinstance(in_dims, (tuple, list)) and all(
                    d is None or isinstance(d, int) for d in in_dims)):
            # flat tensor arguments: the leaves are the arguments
            leaves, spec = list(args), _FLAT_SPECS.get(len(args)) or _flat_spec(len(args))
            dims = [in_dims] * len(args) if isinstance(in_dims, int) else list(in_dims)
        else:
            leaves, spec = tree_flatten(args)
            dims = broadcast_prefix(tuple(in_dims) if isinstance(in_dims, list) else in_dims,
                                    args)
        size = _batch_size(leaves, dims)
        if chunk_size is None or chunk_size >= size:
            return _run(func, leaves, spec, dims, size, out_dims, randomness, kwargs)
        parts_out = [_run(func, cl, spec, dims, n, out_dims, randomness, kwargs)
                     for cl, n in _chunks(leaves, dims, size, chunk_size)]
        import deepseek

        outs = [tree_flatten(p)[0] for p in parts_out]
        ospec = tree_flatten(parts_out[0])[1]
        ods = broadcast_prefix(out_dims, parts_out[0], "out_dims")
        cat = [outs[0][j] if od is None else deepseek.cat([o[j] for o in outs], od)
               for j, od in enumerate(ods)]
        return tree_unflatten(cat, ospec)

    return wrapped

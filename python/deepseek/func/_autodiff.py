"""Autodiff transforms of ``deepseek.func``: ``grad``, ``grad_and_value``, ``vjp``, ``jvp``,
``jacrev``, ``jacfwd`` and ``hessian``, built on deepseek's reverse-mode engine
(``deepseek.autograd.grad``, which records higher-order graphs with ``create_graph=True``).

Composition with ``vmap``: inside a vmap the differentiated inputs are first expanded over
every active vmap level, so that each example owns its copy; summing the per-example
outputs and differentiating once then gives per-example gradients (``vmap(grad(f))``).
A cotangent (or tangent) batched at a vmap level the forward pass did not see (``vmap``
over ``vjp_fn``, as ``jacrev`` does) re-runs the forward pass with the primals expanded
over that level.

Forward mode (``jvp``) uses the double-vjp identity: with ``g(u) = J^T u`` (a vjp with a
dummy cotangent ``u`` recorded with ``create_graph=True``), ``J v`` is the vjp of ``g``
at ``v``. ``bench/RESULTS.md`` compares it with building the Jacobian."""

import functools

from .. import _C, autograd
from .._grad_mode import enable_grad
from . import _expanded
from ._batched import STACK, BatchedTensor, _T, expand_to, parts, wrap
from ._pytree import tree_flatten, tree_map, tree_unflatten

# Depth of the autodiff transforms being evaluated (an inner one records its backward).
_DEPTH = [0]


def _is_t(x):
    return isinstance(x, _T) or type(x) is BatchedTensor


def _active():
    """``(levels, sizes)`` of the active vmap levels."""
    return tuple(l for l, _, _ in STACK), {l: s for l, s, _ in STACK}


def _prep(x, tape=None):
    """A fresh differentiable stand-in for ``x``: ``(stand_in, value, levels)``. The value
    is expanded over every active vmap level and is the tensor gradients are taken for.
    A stand-in expanded from a tensor without vmap levels is registered on ``tape``."""
    v, lv = parts(x)
    if not v.is_floating_point():
        raise TypeError("deepseek.func: only floating point tensors can be differentiated, "
                        f"got {v.dtype}")
    levels, sizes = _active()
    full = levels if not lv else tuple(sorted(set(lv) | set(levels)))
    if v.requires_grad:  # part of an outer graph: stay connected to it
        v = v.view_as(v)
        if full != lv:
            v = expand_to(wrap(v, lv), full, sizes)
    else:  # a fresh leaf (expanded first, so that backward stops at the expanded tensor)
        base = v.detach() if not lv and full else None
        if full != lv:
            v = expand_to(wrap(v, lv), full, sizes)
        v = v.detach().requires_grad_()
        if tape is not None and base is not None:
            s = wrap(v, full)
            tape.add(s, base)
            return s, v, full
    return wrap(v, full), v, full


def _argnums_tuple(argnums, nargs):
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not nums:
        raise RuntimeError("argnums must be non-empty")
    for a in nums:
        if not isinstance(a, int):
            raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(a)}")
        if not -nargs <= a < nargs:
            raise RuntimeError(f"Got argnums={a}, but only {nargs} positional inputs")
    return tuple(a % nargs for a in nums)


def _prepare_args(args, argnums, tape=None):
    """Replaces ``args[i]`` (pytrees) for ``i`` in ``argnums`` by differentiable
    stand-ins; returns the new args and, per argnum, ``(spec, values, levels, ids)``
    (``ids``: of the stand-ins, for ``_expanded``)."""
    args = list(args)
    info = []
    for i in argnums:
        leaves, spec = tree_flatten(args[i])
        new, vals, lvs = [], [], []
        for x in leaves:
            if not _is_t(x):
                raise TypeError(f"deepseek.func: the differentiated argument {i} must hold "
                                f"tensors only, got {type(x).__name__}")
            s, v, lv = _prep(x, tape)
            new.append(s)
            vals.append(v)
            lvs.append(lv)
        args[i] = tree_unflatten(new, spec)
        info.append((spec, vals, lvs, [id(s) for s in new]))
    return args, info


def _wants_graph(*trees):
    if _DEPTH[0] > 0:
        return True
    for t in trees:
        if isinstance(t, _T):
            if t.requires_grad:
                return True
            continue
        for x in tree_flatten(t)[0]:
            if _is_t(x) and parts(x)[0].requires_grad:
                return True
    return False


def _finish(g, v, lv, create):
    if g is None:
        g = _C.zeros_like(v)
    elif not create:
        g = g.detach()
    return wrap(g, lv)


def _detach_tree(t, create):
    if create:
        return t
    return tree_map(lambda x: x.detach() if _is_t(x) else x, t)


def grad_and_value(func, argnums=0, has_aux=False):
    """``grad_and_value(f)(*args)`` returns ``(grad, value)``: the gradient of the scalar
    ``f(*args)`` with respect to ``args[argnums]`` (an int, or a tuple of ints giving a
    tuple of gradients; an argument may be a pytree of tensors such as a parameter dict)
    and the value. With ``has_aux=True`` ``f`` returns ``(output, aux)`` and the result is
    ``(grad, (value, aux))``. Nests (``grad(grad(f))``) and batches (``vmap(grad(f))``:
    per-example gradients)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        create = _wants_graph(*[args[i] for i in nums])
        tape = None if create or not STACK else _expanded.Tape()
        prev = _C.set_grad_enabled(True)
        _DEPTH[0] += 1
        try:
            new_args, info = _prepare_args(args, nums, tape)
            if tape is None:
                out = func(*new_args, **kwargs)
            else:
                with tape:
                    out = func(*new_args, **kwargs)
        finally:
            _DEPTH[0] -= 1
            _C.set_grad_enabled(prev)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError("grad_and_value(f)(*args): output of function f should "
                                   "be a tuple: (output, aux) if has_aux is True")
            out, aux = out
        if not _is_t(out) or out.dim() != 0:
            raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a scalar "
                               f"Tensor, got {getattr(out, 'shape', type(out).__name__)}")
        ov, _ = parts(out)
        flat = [v for _, vals, _, _ in info for v in vals]
        value = out if create else out.detach()
        ys = _expanded.extra_inputs(tape) if tape is not None else []
        if ov.requires_grad:
            prev = _C.set_grad_enabled(True)
            try:
                gs = autograd.grad(ov.sum() if ov.dim() else ov, flat + ys,
                                   create_graph=create, allow_unused=True)
            finally:
                _C.set_grad_enabled(prev)
        else:
            gs = [None] * (len(flat) + len(ys))
        if ys:
            gs = _expanded.add_grads(tape, [i for _, _, _, ids in info for i in ids],
                                     list(gs[:len(flat)]), gs[len(flat):])
        res, j = [], 0
        for spec, vals, lvs, _ in info:
            gl = [_finish(gs[j + q], v, lv, create) for q, (v, lv) in enumerate(zip(vals, lvs))]
            j += len(vals)
            res.append(tree_unflatten(gl, spec))
        g = tuple(res) if isinstance(argnums, tuple) else res[0]
        if has_aux:
            return g, (value, _detach_tree(aux, create))
        return g, value

    return wrapper


def grad(func, argnums=0, has_aux=False):
    """``grad(f)(*args)``: the gradient of the scalar ``f(*args)`` with respect to
    ``args[argnums]``, as ``torch.func.grad`` (see ``grad_and_value``). With
    ``has_aux=True`` returns ``(grad, aux)``."""
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, v = gv(*args, **kwargs)
        return (g, v[1]) if has_aux else g

    return wrapper


def _align_cot(ct, out_v, out_lv, sizes):
    if not _is_t(ct):
        raise TypeError(f"vjp: cotangents must be tensors, got {type(ct).__name__}")
    v, lv = parts(ct)
    if tuple(v.shape) == tuple(out_v.shape) and lv == out_lv:
        return v
    return expand_to(ct, out_lv, sizes).to(out_v.dtype)


def vjp(func, *primals, has_aux=False):
    """``out, vjp_fn = vjp(f, *primals)``: evaluates ``f`` and returns a function that maps
    cotangents shaped like ``out`` (the same pytree) to the vector-Jacobian products, a
    tuple with one entry per primal (pytrees like the primals). With ``has_aux=True``
    returns ``(out, vjp_fn, aux)``. ``vjp_fn`` may be called repeatedly and under
    ``vmap`` (batched cotangents, as ``jacrev`` does)."""
    create0 = _wants_graph(primals)
    with enable_grad():
        _DEPTH[0] += 1
        try:
            new, info = _prepare_args(primals, tuple(range(len(primals))))
            out = func(*new)
        finally:
            _DEPTH[0] -= 1
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise RuntimeError("vjp(f, *primals): output of function f should be a tuple: "
                               "(output, aux) if has_aux is True")
        out, aux = out
    out_leaves, out_spec = tree_flatten(out)
    for o in out_leaves:
        if not _is_t(o):
            raise RuntimeError(f"vjp(f, *primals): Expected f to return tensors, got "
                               f"{type(o).__name__}")
    ovals = [parts(o) for o in out_leaves]
    seen = set()
    for _, _, lvs, _ in info:
        for lv in lvs:
            seen.update(lv)
    for _, lv in ovals:
        seen.update(lv)

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        ct_leaves, ct_spec = tree_flatten(cotangents)
        if len(ct_leaves) != len(out_leaves):
            raise RuntimeError(f"vjp_fn: expected cotangents with the structure of the "
                               f"output ({out_spec}), got {ct_spec}")
        ct_levels = set()
        for c in ct_leaves:
            ct_levels.update(parts(c)[1])
        if not ct_levels <= seen:
            active = set(_active()[0])
            if not ct_levels <= active:
                raise RuntimeError("vjp_fn: a cotangent is batched at a vmap level that is "
                                   "not active")
            return vjp(func, *primals, has_aux=has_aux)[1](cotangents, retain_graph,
                                                           create_graph)
        create = create_graph if create_graph is not None else (create0 or _DEPTH[0] > 0)
        sizes = {}
        for v, lv in ovals:
            for i, l in enumerate(lv):
                sizes[l] = v.shape[i]
        outs, cts = [], []
        for (v, lv), c in zip(ovals, ct_leaves):
            if v.requires_grad:
                outs.append(v)
                cts.append(_align_cot(c, v, lv, sizes))
        flat = [v for _, vals, _, _ in info for v in vals]
        if outs:
            with enable_grad():
                gs = autograd.grad(outs, flat, grad_outputs=cts, retain_graph=retain_graph,
                                   create_graph=create, allow_unused=True)
        else:
            gs = [None] * len(flat)
        res, j = [], 0
        for spec, vals, lvs, _ in info:
            gl = [_finish(gs[j + q], v, lv, create) for q, (v, lv) in enumerate(zip(vals, lvs))]
            j += len(vals)
            res.append(tree_unflatten(gl, spec))
        return tuple(res)

    out_r = out if create0 else _detach_tree(out, False)
    if has_aux:
        return out_r, vjp_fn, _detach_tree(aux, create0)
    return out_r, vjp_fn


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``(out, jvp_out) = jvp(f, primals, tangents)``: ``f(*primals)`` and the
    Jacobian-vector product ``J v`` for the tangents ``v`` (a tuple like ``primals``).
    With ``has_aux=True`` returns ``(out, jvp_out, aux)``. Computed by the double-vjp
    trick on deepseek's reverse-mode engine (see the module docstring)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to be "
                           "tuples")
    p_leaves, p_spec = tree_flatten(tuple(primals))
    t_leaves, t_spec = tree_flatten(tuple(tangents))
    if p_spec != t_spec:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have "
                           "the same python structure")
    for p, t in zip(p_leaves, t_leaves):
        if tuple(p.shape) != tuple(t.shape):
            raise RuntimeError(f"jvp(f, primals, tangents): the shapes of a primal "
                               f"{tuple(p.shape)} and its tangent {tuple(t.shape)} differ")
    create = _wants_graph(primals, tangents)
    with enable_grad():
        _DEPTH[0] += 1
        try:
            new, info = _prepare_args(tuple(primals), tuple(range(len(primals))))
            out = func(*new)
        finally:
            _DEPTH[0] -= 1
        aux = None
        if has_aux:
            out, aux = out
        out_leaves, out_spec = tree_flatten(out)
        ovals = [parts(o) for o in out_leaves]
        flat = [v for _, vals, _, _ in info for v in vals]
        flat_lv = [lv for _, _, lvs, _ in info for lv in lvs]
        sizes = {}
        for v, lv in ovals + list(zip(flat, flat_lv)):
            for i, l in enumerate(lv):
                sizes[l] = v.shape[i]
        out_r = out if create else _detach_tree(out, False)
        diff = [(v, lv) for v, lv in ovals if v.requires_grad]
        us = [_C.zeros_like(v).requires_grad_() for v, _ in diff]
        jv = [None] * len(diff)
        if diff:
            try:
                gs = autograd.grad([v for v, _ in diff], flat, grad_outputs=us,
                                   create_graph=True, allow_unused=True)
                pairs = [(g, expand_to(t, lv, sizes).to(g.dtype))
                         for g, t, lv in zip(gs, t_leaves, flat_lv) if g is not None]
                if pairs:
                    jv = autograd.grad([g for g, _ in pairs], us,
                                       grad_outputs=[t for _, t in pairs],
                                       create_graph=create, allow_unused=True)
            except RuntimeError as e:
                if "double backward" not in str(e):
                    raise
                # An op whose backward is not differentiable: contract the Jacobian.
                res = _jvp_by_jacobian(func, tuple(primals), t_leaves, has_aux)
                return (out_r, res, _detach_tree(aux, create)) if has_aux else (out_r, res)
    res, k = [], 0
    for v, lv in ovals:
        if v.requires_grad:
            g = jv[k]
            k += 1
        else:
            g = None
        res.append(_finish(g, v, lv, create))
    jvp_out = tree_unflatten(res, out_spec)
    if has_aux:
        return out_r, jvp_out, _detach_tree(aux, create)
    return out_r, jvp_out


def _jvp_by_jacobian(func, primals, t_leaves, has_aux):
    """``J v`` by building the Jacobian with ``jacrev`` (first-order backward passes only,
    one per output element, batched) and contracting it with the tangents."""
    f = (lambda *p: func(*p)[0]) if has_aux else func
    jac = jacrev(f, argnums=tuple(range(len(primals))))(*primals)
    out = func(*primals)
    out = out[0] if has_aux else out
    out_leaves, out_spec = tree_flatten(out)
    res = []
    flat_jac = _split_jacobian(jac, out, len(primals))
    for o, per_arg in zip(out_leaves, flat_jac):
        acc = None
        for j, t in zip(per_arg, t_leaves):
            n = t.dim()
            term = j * t.reshape(*([1] * o.dim()), *t.shape) if n else j * t
            if n:
                term = term.sum(tuple(range(o.dim(), o.dim() + n)))
            acc = term if acc is None else acc + term
        res.append(acc)
    return tree_unflatten(res, out_spec)


def _jac_groups(j, s, groups):
    if s.kind == "leaf":
        groups.append(j)
        return
    kids = j.values() if s.kind == "dict" else j
    for a, b in zip(kids, s.children):
        _jac_groups(a, b, groups)


def _split_jacobian(jac, out, nprim):
    """The Jacobian returned by ``jacrev(argnums=tuple)`` as, per output leaf, the list of
    its blocks per primal leaf."""
    groups = []
    if _is_t(out):
        groups = [jac]
    else:
        _jac_groups(jac, tree_flatten(out)[1], groups)
    return [tree_flatten(list(g))[0] for g in groups]


def _plug(func, args, nums, kwargs):
    def g(*diff):
        a = list(args)
        for i, d in zip(nums, diff):
            a[i] = d
        return func(*a, **kwargs)

    return g


def _basis(n, dtype):
    return _C.eye(n, dtype=dtype)


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None):
    """The Jacobian of ``func`` with respect to ``args[argnums]`` by reverse mode: one
    vjp per output element, batched by ``vmap``. For an output of shape ``S`` and an input
    of shape ``I`` the Jacobian has shape ``S + I``; pytree outputs and inputs give nested
    results (output structure outside, then a tuple over ``argnums`` when it is a tuple,
    then the input structure), as ``torch.func.jacrev``."""
    from ._vmap import vmap

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        g = _plug(func, args, nums, kwargs)
        r = vjp(g, *[args[i] for i in nums], has_aux=has_aux)
        out, fn = r[0], r[1]
        o_leaves, o_spec = tree_flatten(out)
        sizes = [o.numel() for o in o_leaves]
        total = sum(sizes)
        eye = _basis(total, o_leaves[0].dtype)
        cts, start = [], 0
        for o, n in zip(o_leaves, sizes):
            cts.append(eye[:, start:start + n].reshape(total, *o.shape))
            start += n
        vj = vmap(lambda *c: fn(tree_unflatten(list(c), o_spec)), chunk_size=chunk_size)(*cts)
        per_out = []
        start = 0
        for o, n in zip(o_leaves, sizes):
            per_arg = []
            for tree in vj:
                leaves, spec = tree_flatten(tree)
                per_arg.append(tree_unflatten([x[start:start + n].reshape(*o.shape, *x.shape[1:])
                                               for x in leaves], spec))
            start += n
            per_out.append(tuple(per_arg) if isinstance(argnums, tuple) else per_arg[0])
        jac = tree_unflatten(per_out, o_spec)
        return (jac, r[2]) if has_aux else jac

    return wrapper


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """The Jacobian of ``func`` with respect to ``args[argnums]`` by forward mode: one jvp
    per input element, batched by ``vmap``; the same layout as ``jacrev``."""
    from ._vmap import vmap

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        g = _plug(func, args, nums, kwargs)
        primals = tuple(args[i] for i in nums)
        p_leaves, p_spec = tree_flatten(primals)
        sizes = [p.numel() for p in p_leaves]
        total = sum(sizes)
        eye = _basis(total, p_leaves[0].dtype)
        tans, start = [], 0
        for p, n in zip(p_leaves, sizes):
            tans.append(eye[:, start:start + n].reshape(total, *p.shape))
            start += n
        def push(*t):
            return jvp(g, primals, tree_unflatten(list(t), p_spec), has_aux=has_aux)[1]

        jv = vmap(push, randomness=randomness)(*tans)
        o_leaves, o_spec = tree_flatten(jv)
        per_out = []
        for o in o_leaves:
            mats, start = [], 0
            for p, n in zip(p_leaves, sizes):
                x = o[start:start + n]
                x = x.movedim(0, -1) if x.dim() > 1 else x
                mats.append(x.reshape(*o.shape[1:], *p.shape))
                start += n
            per_arg = tree_unflatten(mats, p_spec)
            per_out.append(per_arg if isinstance(argnums, tuple) else per_arg[0])
        jac = tree_unflatten(per_out, o_spec)
        if has_aux:
            aux = jvp(g, primals, tree_map(_C.zeros_like, primals), has_aux=True)[2]
            return jac, aux
        return jac

    return wrapper


def hessian(func, argnums=0):
    """The Hessian of the scalar ``func`` with respect to ``args[argnums]``:
    ``jacfwd(jacrev(func, argnums), argnums)``, as ``torch.func.hessian``."""
    return jacfwd(jacrev(func, argnums), argnums)

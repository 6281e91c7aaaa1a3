"""``functional_call`` (run a module with parameters and buffers given by dicts) and
``stack_module_state`` (stack the state of several identical modules for ``vmap``)."""

from .. import _C
from ._batched import BatchedTensor


def _is_t(x):
    return isinstance(x, _C.Tensor) or type(x) is BatchedTensor


def _slots(module):
    """``{name: (submodule, kind, leaf_name)}`` for every parameter and buffer, including
    tied duplicates (``remove_duplicate=False``)."""
    out = {}
    for prefix, m in module.named_modules(remove_duplicate=False):
        for kind in ("_parameters", "_buffers"):
            for n in m.__dict__[kind]:
                out[(prefix + "." if prefix else "") + n] = (m, kind, n)
    return out


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights=True, strict=False):
    """Calls ``module(*args, **kwargs)`` with its parameters and buffers replaced by the
    tensors of ``parameter_and_buffer_dicts`` (a dict ``{qualified_name: tensor}``, or a
    tuple/list of dicts with distinct keys), as ``torch.func.functional_call``. The module
    is restored afterwards. ``tie_weights``: a tensor given for one of several tied names
    (the same Parameter registered twice) is used for all of them. ``strict``: every
    parameter and buffer must be given, and no unknown name. Names missing from the dicts
    keep the module's own tensors. The values may be batched (inside ``vmap``) or carry
    gradients (inside ``grad``): ``vmap(grad(loss))`` over ``functional_call`` gives
    per-example gradients."""
    if isinstance(parameter_and_buffer_dicts, dict):
        given = dict(parameter_and_buffer_dicts)
    elif isinstance(parameter_and_buffer_dicts, (tuple, list)):
        given = {}
        for d in parameter_and_buffer_dicts:
            dup = set(given) & set(d)
            if dup:
                raise ValueError(f"{sorted(dup)} appeared in multiple dictionaries; behavior "
                                 f"of functional call is ambiguous")
            given.update(d)
    else:
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple "
                         f"of dicts, but got {type(parameter_and_buffer_dicts)}")
    slots = _slots(module)
    if tie_weights:
        groups = {}
        for name, (m, kind, n) in slots.items():
            groups.setdefault(id(m.__dict__[kind][n]), []).append(name)
        for names in groups.values():
            if len(names) < 2:
                continue
            hit = [n for n in names if n in given]
            if hit:
                if any(given[n] is not given[hit[0]] for n in hit[1:]):
                    raise ValueError(f"functional_call got multiple values for keys {hit}, "
                                     f"which are tied. Consider using tie_weights=False")
                for n in names:
                    given.setdefault(n, given[hit[0]])
    unknown = [k for k in given if k not in slots]
    if strict:
        missing = [k for k in slots if k not in given]
        if missing or unknown:
            raise RuntimeError(f"Error(s) in functional_call: missing keys {missing}, "
                               f"unexpected keys {unknown}")
    if unknown:
        raise AttributeError(f"functional_call: the module has no parameter or buffer "
                             f"named {unknown[0]!r}")
    saved = []
    try:
        for name, t in given.items():
            m, kind, n = slots[name]
            d = m.__dict__[kind]
            saved.append((d, n, d[n]))
            d[n] = t
        if args is None:
            args = ()
        elif not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for d, n, old in reversed(saved):
            d[n] = old


def stack_module_state(models):
    """``(params, buffers)``: dicts mapping each name to the stack (along a new dim 0) of
    that tensor over ``models`` (modules of one structure), for ``vmap`` over an ensemble
    with ``functional_call``. The stacked parameters are new leaves requiring grad."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same "
                           "training/eval mode.")
    kinds = [type(m) for m in models]
    if any(k is not kinds[0] for k in kinds):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class")
    params = {n: _C.stack([dict(m.named_parameters())[n].detach() for m in models], 0)
              .requires_grad_() for n, _ in models[0].named_parameters()}
    buffers = {n: _C.stack([dict(m.named_buffers())[n] for m in models], 0)
               for n, b in models[0].named_buffers() if b is not None}
    return params, buffers

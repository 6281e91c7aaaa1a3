"""``deepseek.func``: composable function transforms, after ``torch.func``.

``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian`` (autodiff
on deepseek's reverse-mode engine, ``_autodiff``), ``vmap`` (vectorisation by batching rules,
``_vmap``, ``_batched``, ``_batched_ops``, ``_rules``), ``functional_call`` and
``stack_module_state`` (``_functional_call``). They nest as in PyTorch:
``vmap(grad(loss))`` gives per-example gradients, ``jacrev(jacrev(f))`` second derivatives,
``vmap(jacrev(f))`` batched Jacobians."""

from ._autodiff import grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian
from ._vmap import vmap
from ._functional_call import functional_call, stack_module_state
from ._batched import BatchedTensor, FALLBACKS as _FALLBACKS

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap",
           "functional_call", "stack_module_state", "fallback_counts"]


def fallback_counts(reset=False):
    """``{op_name: calls}`` of the ops that ran once per example inside ``vmap`` (no
    batching rule) since the last reset; ``reset=True`` clears the counts."""
    out = dict(_FALLBACKS)
    if reset:
        _FALLBACKS.clear()
    return out


def _install():
    """Routes deepseek's module-level functions through the override hook, so that
    batched tensors reach their batching rules, and makes the random creation functions
    follow vmap's ``randomness``."""
    import deepseek
    from .. import _dispatch
    from ..nn import functional as F
    from . import _rules

    ns = vars(deepseek)
    names = ["cat", "concat", "concatenate", "stack", "where", "einsum", "zeros_like",
             "ones_like", "full_like", "empty_like", "hstack", "vstack", "dstack",
             "column_stack", "cdist", "outer", "cross", "kron", "tensordot", "diag",
             "diag_embed", "cumulative_trapezoid", "trapezoid", "broadcast_tensors",
             "meshgrid", "atleast_1d", "atleast_2d", "atleast_3d", "block_diag",
             "cartesian_prod", "lerp", "clamp", "addmm", "baddbmm", "bilinear"]
    _dispatch.wrap_namespace(ns, names, "deepseek")
    # deepseek.<op>(input, ...) forwards to input.<op>(...): wrapped too, so that a plain
    # input with a batched argument after it (deepseek.maximum(c, x)) is batched.
    from .. import _ops

    _dispatch.wrap_namespace(ns, [n for n in _ops.__all__ if n in vars(_ops)
                                  and n not in ("isnan", "isinf", "isfinite", "nan_to_num")],
                             "deepseek")
    fnames = [n for n, f in vars(F).items() if not n.startswith("_") and callable(f)
              and not isinstance(f, type) and type(f).__name__ in ("builtin_function_or_method",
                                                                   "function")]
    wrapped = _dispatch.wrap_namespace(vars(F), fnames, "deepseek.nn.functional")
    # Layers that call the compiled functions directly (F._C_F.mha, .lstm, .gru) reach
    # the hook too (without a rule they run once per example).
    cf = F._C_F
    _dispatch.wrap_namespace(vars(cf), [n for n in dir(cf) if not n.startswith("_") and
                                        type(getattr(cf, n)).__name__ ==
                                        "builtin_function_or_method"],
                             "deepseek._C.functional")
    # The wrapper is now deepseek.nn.functional.<name> (pickled by that reference); a
    # compiled function it wraps pickles by its own module again.
    for w in wrapped.values():
        f = w.__wrapped__
        if type(f).__name__ == "builtin_function_or_method" and \
                getattr(f, "__module__", None) == "deepseek.nn.functional":
            f.__module__ = "deepseek._C.functional"
    for n, f in list(ns.items()):
        if id(f) in wrapped and wrapped[id(f)].__wrapped__ is f:
            ns[n] = wrapped[id(f)]
    for n, kind in (("rand", "size"), ("randn", "size"), ("randint", "randint"),
                    ("rand_like", "like"), ("randn_like", "like"), ("randperm", "perm")):
        f = ns.get(n)
        if f is not None and not hasattr(f, "__wrapped__"):
            ns[n] = _rules.random_creation(f, kind)
    ns["vmap"] = vmap

"""``deepseek.nn.utils.prune``: PyTorch's pruning API (``torch.nn.utils.prune``).

Pruning ``name`` of a module moves the parameter to ``name + "_orig"``, registers a buffer
``name + "_mask"`` (1 keeps, 0 prunes) and a forward pre-hook (the pruning method itself) that
sets ``module.<name> = <name>_orig * <name>_mask`` before every forward, exactly as PyTorch
does; ``state_dict`` therefore holds ``weight_orig`` and ``weight_mask`` under PyTorch's names.
Pruning the same tensor again combines the masks (a :class:`PruningContainer`), with the new
amount taken from what is still unpruned. :func:`remove` makes the pruning permanent.

The deterministic criteria (:func:`l1_unstructured`, :func:`ln_structured`,
:func:`global_unstructured` with ``L1Unstructured``) give the same masks as PyTorch for the
same amount; among exactly equal scores the lower flat index is pruned first (PyTorch leaves
that order to its ``topk`` kernel). The random methods draw from deepseek's generator
(``deepseek.manual_seed``), so their masks differ from PyTorch's for the same seed; only the
number of pruned entries/channels matches.

:func:`save_pruned` / :func:`load_pruned` write and read a state dict with sparse tensors
stored as a bitmask plus the kept values, so a pruned model's file really shrinks (about
``1/32 + density`` of the dense f32 size).
"""

import json
import math
import numbers
from abc import ABC, abstractmethod

import numpy as np

from ... import _C
from ..._grad_mode import no_grad
from ..parameter import Parameter

__all__ = [
    "BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
    "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
    "l1_unstructured", "random_structured", "ln_structured", "global_unstructured",
    "custom_from_mask", "remove", "is_pruned", "save_pruned", "load_pruned", "shrink",
    "ShrinkError",
]


# ----------------------------------------------------------------------------- helpers

def _np(t):
    """A float64 numpy copy of a deepseek tensor (detached)."""
    return np.array(t.detach().double().numpy(force=True), dtype=np.float64)


def _tensor_like(a, like):
    """A deepseek tensor with ``a``'s values and ``like``'s dtype."""
    t = _C.from_numpy(np.ascontiguousarray(a))
    return t.to(like.dtype)


def _validate_pruning_amount_init(amount):
    if not isinstance(amount, numbers.Real) or isinstance(amount, bool):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
            not isinstance(amount, numbers.Integral)
            and (float(amount) > 1.0 or float(amount) < 0.0 or math.isnan(float(amount)))):
        raise ValueError(
            f"amount={amount} should either be a float in the range [0, 1] or a non-negative "
            "integer")


def _validate_pruning_amount(amount, tensor_size):
    if isinstance(amount, numbers.Integral) and amount > tensor_size:
        raise ValueError(
            f"amount={amount} should be smaller than the number of parameters to prune="
            f"{tensor_size}")


def _compute_nparams_toprune(amount, tensor_size):
    """An int amount is a count; a float is a fraction, rounded as PyTorch (``round``)."""
    if isinstance(amount, numbers.Integral):
        return int(amount)
    return round(amount * tensor_size)


def _validate_structured_pruning(shape):
    if len(shape) <= 1:
        raise ValueError(
            "Structured pruning can only be applied to multidimensional tensors. Found tensor "
            f"of shape {tuple(shape)} with {len(shape)} dims")


def _validate_pruning_dim(shape, dim):
    if dim >= len(shape) or dim < -len(shape):
        raise IndexError(f"Invalid index {dim} for tensor of size {tuple(shape)}")


def _check_finite(a, what):
    if not np.all(np.isfinite(a)):
        raise ValueError(f"pruning: {what} holds NaN or infinite values; the pruning "
                         "criterion is undefined")


def _smallest(scores, k):
    """Flat indices of the ``k`` smallest scores (ties: lowest index first)."""
    return np.argsort(scores, kind="stable")[:k]


def _rand(n):
    return np.array(_C.rand(n).double().numpy(force=True), dtype=np.float64) if n else np.zeros(0)


def _norm(a, n, dim):
    """The L``n`` norm of every slice of ``a`` along ``dim`` (PyTorch's ``_compute_norm``)."""
    axes = tuple(d for d in range(a.ndim) if d != dim)
    x = np.abs(a)
    if n == "fro":
        n = 2
    if n == "nuc":
        raise ValueError("ln_structured: n='nuc' is not supported (use a number, inf or 'fro')")
    if n == math.inf:
        return x.max(axis=axes)
    if n == -math.inf:
        return x.min(axis=axes)
    if n == 0:
        return (x != 0).sum(axis=axes).astype(np.float64)
    return (x ** n).sum(axis=axes) ** (1.0 / n)


# ----------------------------------------------------------------------------- methods

class BasePruningMethod(ABC):
    """A pruning criterion; also the forward pre-hook that re-applies its mask."""

    _tensor_name = None

    def __call__(self, module, inputs):
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The new mask (numpy, same shape as ``t``) given scores ``t`` and the current mask;
        both are numpy arrays here."""

    def apply_mask(self, module):
        assert self._tensor_name is not None, f"Module {module} has to be pruned"
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return orig * mask

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Adds the pruning re-parametrization of ``module.<name>`` (see the module doc)."""

        def _get_composite_method(cls, module, name, *args, **kwargs):
            old_method = None
            found = 0
            hooks_to_remove = []
            for k, hook in module._forward_pre_hooks.items():
                if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                    old_method = hook
                    hooks_to_remove.append(k)
                    found += 1
            assert found <= 1, (f"Avoid adding multiple pruning hooks to the same tensor "
                                f"{name} of module {module}. Use a PruningContainer.")
            for k in hooks_to_remove:
                del module._forward_pre_hooks[k]
            method = cls(*args, **kwargs)
            method._tensor_name = name
            if old_method is not None:
                if isinstance(old_method, PruningContainer):
                    old_method.add_pruning_method(method)
                    method = old_method
                else:
                    container = PruningContainer(old_method)
                    container.add_pruning_method(method)
                    method = container
            return method, old_method, hooks_to_remove

        if name not in module._parameters and name + "_orig" not in module._parameters:
            raise AttributeError(
                f"Parameter '{name}' of module {type(module).__name__} does not exist "
                "(nothing to prune)")
        method, old_method, removed = _get_composite_method(cls, module, name, *args, **kwargs)
        orig = getattr(module, name)
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(orig.shape):
                raise ValueError(
                    f"importance_scores should have the same shape as parameter {name} of "
                    f"{module}: {tuple(importance_scores.shape)} vs {tuple(orig.shape)}")
        else:
            importance_scores = orig
        first = not isinstance(method, PruningContainer)
        if first:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = np.ones(tuple(orig.shape))
        else:
            default_mask = _np(getattr(module, name + "_mask"))
        try:
            scores = _np(importance_scores)
            _check_finite(scores, f"the importance scores of '{name}'")
            mask = method.compute_mask(scores, default_mask=default_mask)
            module.register_buffer(name + "_mask", _tensor_like(mask, orig))
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if first:
                orig = getattr(module, name + "_orig")
                module.register_parameter(name, orig)
                del module._parameters[name + "_orig"]
                module._buffers.pop(name + "_mask", None)
                module.__dict__.pop(name, None)
            elif old_method is not None:
                module.register_forward_pre_hook(old_method)
                if isinstance(old_method, PruningContainer) and old_method._pruning_methods \
                        and old_method._pruning_methods[-1] is not old_method:
                    pass
            raise
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """The pruned version of tensor ``t`` (not a re-parametrization)."""
        scores = _np(importance_scores if importance_scores is not None else t)
        dm = np.ones(tuple(t.shape)) if default_mask is None else _np(default_mask)
        return t * _tensor_like(self.compute_mask(scores, default_mask=dm), t)

    def remove(self, module):
        """Makes the pruning permanent: ``<name>`` becomes a Parameter holding the pruned
        values; ``<name>_orig``, ``<name>_mask`` and the hook go away."""
        assert self._tensor_name is not None, \
            f"Module {module} has to be pruned before pruning can be removed"
        weight = self.apply_mask(module)
        module.__dict__.pop(self._tensor_name, None)
        orig = module._parameters[self._tensor_name + "_orig"]
        with no_grad():
            orig.copy_(weight)
        del module._parameters[self._tensor_name + "_orig"]
        del module._buffers[self._tensor_name + "_mask"]
        module.register_parameter(self._tensor_name, orig)


class PruningContainer(BasePruningMethod):
    """The sequence of pruning methods applied to one tensor; each new one acts on what is
    still unpruned."""

    def __init__(self, *args):
        self._pruning_methods = tuple()
        if len(args) == 1 and not isinstance(args[0], (list, tuple)):
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        elif len(args) == 1:
            for m in args[0]:
                self.add_pruning_method(m)
        else:
            for m in args:
                self.add_pruning_method(m)

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        elif method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(
                "Can only add pruning methods acting on the parameter named "
                f"'{self._tensor_name}' to PruningContainer {self}. Found "
                f"'{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        mask = np.array(default_mask, dtype=np.float64)
        if method.PRUNING_TYPE == "unstructured":
            slc = mask == 1
            partial = method.compute_mask(t[slc], default_mask=mask[slc])
            mask[slc] = partial
        elif method.PRUNING_TYPE == "structured":
            dim = method.dim
            if dim < 0:
                dim = t.ndim + dim
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor of size {t.shape}")
            keep = mask.sum(axis=tuple(d for d in range(t.ndim) if d != dim)) != 0
            idx = np.nonzero(keep)[0]
            sub = np.take(t, idx, axis=dim)
            sub_mask = np.take(mask, idx, axis=dim)
            partial = method.compute_mask(sub, default_mask=sub_mask)
            slc = [slice(None)] * t.ndim
            slc[dim] = idx
            mask[tuple(slc)] = partial
        elif method.PRUNING_TYPE == "global":
            mask = method.compute_mask(t, default_mask=mask)
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        return mask


class Identity(BasePruningMethod):
    """Prunes nothing (the mask is all ones)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return np.array(default_mask, dtype=np.float64)

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    """Prunes ``amount`` random entries (an int count or a fraction of the tensor)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        size = t.size
        k = _compute_nparams_toprune(self.amount, size)
        _validate_pruning_amount(k, size)
        mask = np.array(default_mask, dtype=np.float64).reshape(-1).copy()
        if k != 0:
            prob = _rand(size)
            mask[np.argsort(-prob, kind="stable")[:k]] = 0
        return mask.reshape(t.shape)

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prunes the ``amount`` entries of smallest absolute value."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        size = t.size
        k = _compute_nparams_toprune(self.amount, size)
        _validate_pruning_amount(k, size)
        mask = np.array(default_mask, dtype=np.float64).reshape(-1).copy()
        if k != 0:
            mask[_smallest(np.abs(t).reshape(-1), k)] = 0
        return mask.reshape(t.shape)

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prunes ``amount`` random channels along ``dim``."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.dim = dim

    def compute_mask(self, t, default_mask):
        _validate_structured_pruning(t.shape)
        _validate_pruning_dim(t.shape, self.dim)
        size = t.shape[self.dim]
        k = _compute_nparams_toprune(self.amount, size)
        _validate_pruning_amount(k, size)
        dm = np.array(default_mask, dtype=np.float64)
        if k == 0:
            return dm
        prob = _rand(size)
        keep = np.argsort(-prob, kind="stable")[: size - k]
        mask = np.zeros(t.shape)
        slc = [slice(None)] * t.ndim
        slc[self.dim] = keep
        mask[tuple(slc)] = 1
        return mask * dm

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prunes the ``amount`` channels along ``dim`` of smallest L``n`` norm."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_pruning_amount_init(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    def compute_mask(self, t, default_mask):
        _validate_structured_pruning(t.shape)
        _validate_pruning_dim(t.shape, self.dim)
        size = t.shape[self.dim]
        k = _compute_nparams_toprune(self.amount, size)
        _validate_pruning_amount(k, size)
        dm = np.array(default_mask, dtype=np.float64)
        if k == 0:
            return dm
        dim = self.dim % t.ndim
        norm = _norm(t, self.n, dim)
        # keep the size - k largest norms (ties: the lower index is kept)
        keep = np.argsort(-norm, kind="stable")[: size - k]
        mask = np.zeros(t.shape)
        slc = [slice(None)] * t.ndim
        slc[dim] = keep
        mask[tuple(slc)] = 1
        return mask * dm

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim,
                             importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Uses a given mask."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        m = self.mask if isinstance(self.mask, np.ndarray) else _np(self.mask)
        if m.shape != tuple(np.shape(default_mask)):
            raise ValueError(f"custom_from_mask: mask of shape {m.shape} does not match the "
                             f"tensor's shape {tuple(np.shape(default_mask))}")
        return np.array(default_mask, dtype=np.float64) * m

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


# ----------------------------------------------------------------------------- functions

def identity(module, name):
    """Re-parametrizes ``module.<name>`` with an all-ones mask."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    """Prunes ``amount`` random entries of ``module.<name>``."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prunes the ``amount`` entries of ``module.<name>`` with the smallest |value| (or
    smallest ``importance_scores``)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    """Prunes ``amount`` random channels of ``module.<name>`` along ``dim``."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Prunes the ``amount`` channels of ``module.<name>`` along ``dim`` with the smallest
    L``n`` norm."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prunes the given ``(module, name)`` tensors together, as one flat vector, with an
    unstructured ``pruning_method`` class (e.g. ``L1Unstructured``, ``amount=...``)."""
    parameters = list(parameters)
    if not parameters:
        raise ValueError("global_unstructured: no parameters given")
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured: importance_scores must be a dict or None")
    scores = np.concatenate([
        _np(importance_scores.get((m, n), getattr(m, n))).reshape(-1) for m, n in parameters])
    _check_finite(scores, "the importance scores")
    default_mask = np.concatenate([
        (_np(getattr(m, n + "_mask")) if hasattr(m, n + "_mask")
         else np.ones(tuple(getattr(m, n).shape))).reshape(-1) for m, n in parameters])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. '
                        f"Found method {pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final = container.compute_mask(scores, default_mask)
    p = 0
    for m, n in parameters:
        shape = tuple(getattr(m, n).shape)
        size = int(np.prod(shape))
        custom_from_mask(m, n, mask=final[p:p + size].reshape(shape))
        p += size


def custom_from_mask(module, name, mask):
    """Prunes ``module.<name>`` with a given mask (tensor or array)."""
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module, name):
    """Makes the pruning of ``module.<name>`` permanent (see :meth:`BasePruningMethod.remove`)."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"Parameter '{name}' of module {type(module).__name__} has to be pruned "
                     "before pruning can be removed")


def is_pruned(module):
    """Whether ``module`` or any submodule carries a pruning hook."""
    for _, sub in module.named_modules():
        for hook in sub._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                return True
    return False


# ----------------------------------------------------------------------------- compressed save

_FORMAT = "deepseek.pruned.v1"


def _effective_state(state_dict):
    """``state_dict`` with each ``X_orig``/``X_mask`` pair folded into the pruned ``X``."""
    out = {}
    for k, v in state_dict.items():
        if k.endswith("_orig") and k[:-5] + "_mask" in state_dict:
            out[k[:-5]] = v.detach() * state_dict[k[:-5] + "_mask"]
        elif k.endswith("_mask") and k[:-5] + "_orig" in state_dict:
            continue
        else:
            out[k] = v.detach()
    return out


def save_pruned(obj, path, min_sparsity=0.25):
    """Saves a module's (or a state dict's) tensors as safetensors, each float tensor with at
    least ``min_sparsity`` zeros stored as a bitmask (1 bit per element) plus its non-zero
    values, so pruning shrinks the file. Pruned tensors (``weight_orig``/``weight_mask``) are
    saved as the pruned ``weight``. :func:`load_pruned` reads it back as a dense state dict for
    ``load_state_dict`` (on a model without pruning hooks, or after :func:`remove`)."""
    sd = obj.state_dict() if hasattr(obj, "state_dict") else dict(obj)
    tensors, meta = {}, {}
    for k, v in _effective_state(sd).items():
        if v.is_floating_point() and v.numel() > 0:
            a = np.asarray(v.numpy(force=True))
            nz = a.reshape(-1) != 0
            if 1.0 - nz.mean() >= min_sparsity:
                tensors[k + ".__bits"] = _C.from_numpy(np.packbits(nz.astype(np.uint8)))
                tensors[k + ".__values"] = _C.from_numpy(
                    np.ascontiguousarray(a.reshape(-1)[nz])).to(v.dtype)
                meta[k] = {"shape": list(v.shape)}
                continue
        tensors[k] = v.contiguous()
    tensors["__deepseek_pruned__"] = _C.from_numpy(
        np.frombuffer(json.dumps({"format": _FORMAT, "sparse": meta}).encode(), dtype=np.uint8))
    _C.save_file(tensors, str(path))


def load_pruned(path):
    """Reads a file written by :func:`save_pruned` into a dense state dict."""
    raw = _C.load_file(str(path))
    head = raw.pop("__deepseek_pruned__", None)
    if head is None:
        raise ValueError(f"{path}: not a file written by deepseek.nn.utils.prune.save_pruned")
    try:
        info = json.loads(bytes(np.asarray(head.numpy(force=True), dtype=np.uint8)).decode())
        assert info.get("format") == _FORMAT
        sparse = info["sparse"]
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{path}: malformed pruned-model header ({e})") from None
    out = {k: v for k, v in raw.items() if not k.endswith((".__bits", ".__values"))}
    for k, m in sparse.items():
        shape = tuple(m["shape"])
        n = int(np.prod(shape))
        try:
            bits = np.unpackbits(np.asarray(raw[k + ".__bits"].numpy(force=True), np.uint8))
            vals = raw[k + ".__values"]
        except KeyError:
            raise ValueError(f"{path}: tensor {k!r} is missing its bitmask or values") from None
        nz = bits[:n].astype(bool)
        if bits.size < n or int(nz.sum()) != vals.numel():
            raise ValueError(f"{path}: tensor {k!r}: bitmask and values disagree")
        dense = np.zeros(n, dtype=np.asarray(vals.float().numpy(force=True)).dtype)
        dense[nz] = np.asarray(vals.float().numpy(force=True))
        out[k] = _C.from_numpy(dense.reshape(shape)).to(vals.dtype)
    return out


from ._shrink import ShrinkError, shrink  # noqa: E402  (uses this module's pruning hooks)

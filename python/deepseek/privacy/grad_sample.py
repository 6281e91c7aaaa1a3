"""Per-sample gradients by per-layer rules (what Opacus' ``GradSampleModule`` does).

:class:`GradSampleModule` wraps a model. A forward hook on every layer that owns trainable
parameters keeps the layer's input (the *activation*) and registers a ``Tensor`` hook on its
output; when backward reaches that output the hook receives ``grad_output`` and the layer's
rule turns (activation, grad_output) into one gradient per example, accumulated into
``param.grad_sample`` (shape ``[batch, *param.shape]``). The ordinary ``param.grad`` is still
filled by autograd as usual.

Rules exist for ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``, ``nn.Embedding``,
``nn.LayerNorm`` and ``nn.GroupNorm``. A layer with trainable parameters and no rule is
refused by name; a model with batch normalisation is refused outright, since its output for
one example depends on the other examples of the batch (the per-example sensitivity that
DP-SGD bounds by clipping no longer holds). The fused ``nn.LSTM``, ``nn.GRU`` and
``nn.MultiheadAttention`` have no rule: :mod:`deepseek.privacy.layers` has drop-in versions
built from ``nn.Linear`` (``DPLSTM``, ``DPGRU``, ``DPMultiheadAttention``).

A layer called several times in one forward (weight sharing) gets each call's contribution
added up, since every call registers its own output hook holding its own activation.

``loss_reduction="mean"`` (the default, as in Opacus) means the loss is the batch mean, so
``grad_output`` carries a factor ``1/batch``; the hooks multiply it back, making
``grad_sample[i]`` the gradient of example ``i``'s own loss. Use ``"sum"`` for a summed loss.
"""

from .. import _C
from .. import nn
from ..nn import functional as F
from .fast_clipping import LayerRecords

__all__ = ["GradSampleModule", "supported_layers", "register_grad_sampler",
           "UnsupportedModuleError"]


class UnsupportedModuleError(ValueError):
    """A model cannot be made private: a layer has no per-sample rule, or breaks
    per-example independence (batch normalisation)."""


# --------------------------------------------------------------------------- the rules
# Each rule: (module, activation, grad_output) -> {param_name: per-sample grad [B, *shape]}.
# activation and grad_output have the batch first.

def _linear_rule(m, a, g):
    b = a.shape[0]
    a3 = a.reshape(b, -1, a.shape[-1])            # [B, T, in]
    g3 = g.reshape(b, -1, g.shape[-1])            # [B, T, out]
    out = {}
    if m.weight.requires_grad:
        out["weight"] = g3.transpose(1, 2) @ a3          # [B, out, in]
    if m.bias is not None and m.bias.requires_grad:
        out["bias"] = g3.sum(1)
    return out


def _conv_rule(m, a, g):
    """Conv1d / Conv2d: unfold the input into patches, then one batched matmul with the
    output gradient (per group)."""
    b = a.shape[0]
    one_d = a.dim() == 3
    if one_d:                                      # Conv1d as a 1 x L Conv2d
        a = a.unsqueeze(2)
        k, st, pd, dl = ((1, m.kernel_size[0]), (1, m.stride[0]), (0, m.padding[0]),
                         (1, m.dilation[0]))
    else:
        k, st, pd, dl = m.kernel_size, m.stride, m.padding, m.dilation
    cols = F.unfold(a, k, dilation=dl, padding=pd, stride=st)   # [B, C*kh*kw, L]
    gr = m.groups
    g = g.reshape(b, gr, m.out_channels // gr, -1)              # [B, G, out/G, L]
    cols = cols.reshape(b, gr, cols.shape[1] // gr, -1)          # [B, G, C/G*kk, L]
    out = {}
    if m.weight.requires_grad:
        gw = _C.einsum("bgol,bgcl->bgoc", g, cols)
        out["weight"] = gw.reshape(b, *m.weight.shape)
    if m.bias is not None and m.bias.requires_grad:
        out["bias"] = g.sum(3).reshape(b, m.out_channels)
    return out


def _embedding_rule(m, idx, g):
    """Row ``idx`` of example i's gradient gets every ``grad_output`` vector that looked it
    up: one ``index_add`` into a [B * num_embeddings, dim] table."""
    if not m.weight.requires_grad:
        return {}
    b, v, d = idx.shape[0], m.num_embeddings, m.embedding_dim
    flat = idx.reshape(b, -1).to(_C.int64)
    offs = (_C.arange(b, dtype=_C.int64) * v).unsqueeze(1)
    rows = (flat + offs).reshape(-1)
    gs = _C.zeros(b * v, d, dtype=g.dtype).index_add(0, rows, g.reshape(-1, d))
    gs = gs.reshape(b, v, d)
    if m.padding_idx is not None:                  # the padding row gets no gradient
        keep = _C.ones(v, 1, dtype=g.dtype)
        keep[m.padding_idx] = 0.0
        gs = gs * keep
    return {"weight": gs}


def _sum_to_batch(t, keep_last):
    """Sums ``t`` [B, ..., *normalized] over the middle dims, keeping the last ``keep_last``."""
    mid = t.dim() - 1 - keep_last
    if mid > 0:
        t = t.sum(list(range(1, 1 + mid)))
    return t


def _layer_norm_rule(m, a, g):
    n = len(m.normalized_shape)
    dims = list(range(a.dim() - n, a.dim()))
    mean = a.mean(dims, keepdim=True)
    var = ((a - mean) ** 2).mean(dims, keepdim=True)
    xhat = (a - mean) / (var + m.eps).sqrt()
    out = {}
    if m.weight is not None and m.weight.requires_grad:
        out["weight"] = _sum_to_batch(g * xhat, n)
    if m.bias is not None and m.bias.requires_grad:
        out["bias"] = _sum_to_batch(g, n)
    return out


def _group_norm_rule(m, a, g):
    b, c = a.shape[0], a.shape[1]
    grouped = a.reshape(b, m.num_groups, -1)
    mean = grouped.mean(2, keepdim=True)
    var = ((grouped - mean) ** 2).mean(2, keepdim=True)
    xhat = ((grouped - mean) / (var + m.eps).sqrt()).reshape(a.shape)
    out = {}
    if m.weight is not None and m.weight.requires_grad:
        out["weight"] = (g * xhat).reshape(b, c, -1).sum(2)
    if m.bias is not None and m.bias.requires_grad:
        out["bias"] = g.reshape(b, c, -1).sum(2)
    return out


_RULES = {
    nn.Linear: _linear_rule,
    nn.Conv1d: _conv_rule,
    nn.Conv2d: _conv_rule,
    nn.Embedding: _embedding_rule,
    nn.LayerNorm: _layer_norm_rule,
    nn.GroupNorm: _group_norm_rule,
}


def register_grad_sampler(module_type, rule):
    """Adds (or replaces) the per-sample rule for ``module_type``: ``rule(module,
    activation, grad_output)`` returns ``{param_name: tensor [batch, *param.shape]}``."""
    _RULES[module_type] = rule


def supported_layers():
    """The layer types that have a per-sample gradient rule."""
    return tuple(_RULES)


def _rule_for(module):
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def _is_batch_norm(module):
    return any(c.__name__ in ("_BatchNorm", "SyncBatchNorm") for c in type(module).__mro__)


def validate_module(module):
    """Raises :class:`UnsupportedModuleError` naming every layer that stops ``module`` from
    being trained with per-sample gradients; returns the (name, layer) pairs that need hooks."""
    problems, hooked = [], []
    for name, sub in module.named_modules():
        label = name or "<root>"
        if _is_batch_norm(sub):
            problems.append(f"{label} ({type(sub).__name__}): batch normalisation mixes the "
                            "examples of a batch through its statistics, so one example's "
                            "influence is not confined to its own gradient; replace it with "
                            "GroupNorm, LayerNorm or InstanceNorm")
            continue
        own = [p for _, p in sub.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if _rule_for(sub) is None:
            problems.append(f"{label} ({type(sub).__name__}): no per-sample gradient rule for "
                            "this layer type (supported: "
                            + ", ".join(t.__name__ for t in _RULES) + ")")
            continue
        hooked.append((name, sub))
    if problems:
        raise UnsupportedModuleError("model cannot be trained with per-sample gradients:\n  "
                                     + "\n  ".join(problems))
    return hooked


# --------------------------------------------------------------------------- the wrapper

class GradSampleModule(nn.Module):
    """Wraps ``module`` so that every backward fills ``p.grad_sample`` (one gradient per
    example, batch first) for each trainable parameter, beside ``p.grad``.

    ``loss_reduction``: ``"mean"`` (loss averaged over the batch; default) or ``"sum"``.
    ``batch_first``: only ``True`` is supported (every rule reads the batch from dim 0).
    ``grad_sample_mode``: ``"hooks"`` (default) fills ``p.grad_sample``; ``"ghost"`` only
    records each layer's (activation, grad_output) so that :class:`DPOptimizer` can clip
    without materialising per-sample gradients where a cheaper route exists
    (:mod:`deepseek.privacy.fast_clipping`); ``p.grad_sample`` is then not set.
    """

    def __init__(self, module, batch_first=True, loss_reduction="mean",
                 grad_sample_mode="hooks"):
        super().__init__()
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        if grad_sample_mode not in ("hooks", "ghost"):
            raise ValueError(f"grad_sample_mode must be 'hooks' or 'ghost', got "
                             f"{grad_sample_mode!r}")
        self.grad_sample_mode = grad_sample_mode
        self.records = LayerRecords()
        if not batch_first:
            raise ValueError("GradSampleModule: only batch_first=True is supported")
        self._module = module
        self.loss_reduction = loss_reduction
        self.batch_first = batch_first
        self._hooked = validate_module(module)
        self._handles = [m.register_forward_hook(self._capture) for _, m in self._hooked]
        self.hooks_enabled = True
        # Outputs whose gradient hooks are pending. deepseek's backward engine reaches a
        # non-leaf tensor's hooks through a weak reference, so a layer output that nobody
        # holds (the usual case: an intermediate activation) would lose its hook; we hold
        # each one until its hook has run (or until zero_grad).
        self._pending = {}

    def forward(self, *args, **kwargs):
        return self._module(*args, **kwargs)

    def _capture(self, layer, args, output):
        if not (self.hooks_enabled and self.training and isinstance(output, _C.Tensor)
                and output.requires_grad):
            return None
        activation = args[0].detach()
        rule = _rule_for(layer)
        scale_by_batch = self.loss_reduction == "mean"

        key = id(output)

        def on_grad(grad_output):
            self._pending.pop(key, None)
            g = grad_output.detach()
            if scale_by_batch:
                g = g * activation.shape[0]
            if self.grad_sample_mode == "ghost":
                self.records.add(layer, rule, activation, g)
                return None
            for pname, gs in rule(layer, activation, g).items():
                p = getattr(layer, pname)
                prev = getattr(p, "grad_sample", None)
                p.grad_sample = gs if prev is None else prev + gs
            return None

        output.register_hook(on_grad)
        self._pending[key] = output
        return None

    # -- the wrapped model's parameters keep their own names (no "_module." prefix)
    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._module.named_parameters(prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        return self._module.parameters(recurse)

    def state_dict(self, *args, **kwargs):
        return self._module.state_dict(*args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        return self._module.load_state_dict(*args, **kwargs)

    def zero_grad(self, set_to_none=True):
        self._module.zero_grad(set_to_none)
        self.del_grad_sample()

    def del_grad_sample(self):
        self._pending.clear()
        self.records.clear()
        for p in self._module.parameters():
            if getattr(p, "grad_sample", None) is not None:
                p.grad_sample = None

    def remove_hooks(self):
        """Detaches the hooks; the wrapped model is left as it was before wrapping."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.del_grad_sample()

    def to_standard_module(self):
        self.remove_hooks()
        return self._module

"""Per-sample clipping without materialising per-sample gradients where that is cheaper
("ghost clipping": Goodfellow 2015; Li et al. 2022, "Large Language Models Can Be Strong
Differentially Private Learners"; Opacus' ``grad_sample_mode="ghost"``).

DP-SGD needs only two things from the per-sample gradients: their norms ``‖g_i‖`` and the
clipped sum ``Σ_i f_i g_i``. For ``nn.Linear`` with activations ``a_i`` [T, in] and output
gradients ``δ_i`` [T, out], ``g_i = δ_iᵀ a_i``, so

* ``‖g_i‖² = ⟨a_i a_iᵀ, δ_i δ_iᵀ⟩`` (two T x T Gram matrices; for T = 1 simply
  ``‖a_i‖²·‖δ_i‖²``), cheaper than the ``out x in`` gradient whenever ``T² (in + out) <
  in·out``, and
* ``Σ_i f_i g_i = (f ⊙ δ)ᵀ a``: one ordinary matmul over the batch.

Other layers (and Linear layers with long sequences) fall back to their per-sample rule, but
reduce through matmuls (``einsum``) rather than elementwise passes. A layer called several
times in one forward (weight sharing) has its calls concatenated along T (Linear) or its
per-sample gradients added up, so the norm is that of the *total* per-example gradient.
"""

from .. import _C
from .. import nn

__all__ = ["LayerRecords"]


def _flat_sq_norms(gs):
    b = gs.shape[0]
    flat = gs.reshape(b, -1)
    return _C.einsum("bi,bi->b", flat, flat)


def _weighted_sum(gs, f):
    """Σ_i f_i gs[i] as one matmul."""
    b = gs.shape[0]
    return (f.reshape(1, b) @ gs.reshape(b, -1)).reshape(*gs.shape[1:])


class _LinearCalls:
    """All calls of one nn.Linear in a step, concatenated along the sequence dimension."""

    def __init__(self, layer, calls):
        self.layer = layer
        b = calls[0][0].shape[0]
        a = [x.reshape(b, -1, x.shape[-1]) for x, _ in calls]
        g = [y.reshape(b, -1, y.shape[-1]) for _, y in calls]
        self.a = a[0] if len(a) == 1 else _C.cat(a, 1)          # [B, T, in]
        self.g = g[0] if len(g) == 1 else _C.cat(g, 1)          # [B, T, out]
        self.b = b
        t, i, o = self.a.shape[1], self.a.shape[2], self.g.shape[2]
        self.gram = t == 1 or t * t * (i + o) < i * o
        self._gw = None

    def sq_norms(self):
        m = self.layer
        out = None
        if m.weight.requires_grad:
            if self.a.shape[1] == 1:
                a, g = self.a[:, 0], self.g[:, 0]
                out = _C.einsum("bi,bi->b", a, a) * _C.einsum("bo,bo->b", g, g)
            elif self.gram:
                ga = self.a @ self.a.transpose(1, 2)
                gg = self.g @ self.g.transpose(1, 2)
                out = _C.einsum("bst,bst->b", ga, gg)
            else:
                self._gw = self.g.transpose(1, 2) @ self.a               # [B, out, in]
                out = _flat_sq_norms(self._gw)
        if m.bias is not None and m.bias.requires_grad:
            gb = self.g.sum(1)
            nb = _C.einsum("bo,bo->b", gb, gb)
            out = nb if out is None else out + nb
        return out

    def clipped_sums(self, f):
        m, res = self.layer, {}
        if m.weight.requires_grad:
            if self._gw is not None:
                res["weight"] = _weighted_sum(self._gw, f)
            else:
                fg = self.g * f.reshape(self.b, 1, 1)
                res["weight"] = (fg.reshape(-1, fg.shape[2]).transpose(0, 1)
                                 @ self.a.reshape(-1, self.a.shape[2]))
        if m.bias is not None and m.bias.requires_grad:
            res["bias"] = f.reshape(1, self.b) @ self.g.sum(1)
            res["bias"] = res["bias"].reshape(-1)
        return res


class _RuleCalls:
    """Any layer through its per-sample rule (calls' per-sample gradients added up)."""

    def __init__(self, layer, rule, calls):
        self.layer = layer
        self.gs = {}
        for a, g in calls:
            for name, t in rule(layer, a, g).items():
                self.gs[name] = t if name not in self.gs else self.gs[name] + t

    def sq_norms(self):
        out = None
        for t in self.gs.values():
            n = _flat_sq_norms(t)
            out = n if out is None else out + n
        return out

    def clipped_sums(self, f):
        return {name: _weighted_sum(t, f) for name, t in self.gs.items()}


class LayerRecords:
    """The (activation, grad_output) pairs of one backward pass, grouped by layer."""

    def __init__(self):
        self._calls = {}          # id(layer) -> (layer, rule, [(a, g), ...])

    def add(self, layer, rule, activation, grad_output):
        entry = self._calls.setdefault(id(layer), (layer, rule, []))
        entry[2].append((activation, grad_output))

    def clear(self):
        self._calls = {}

    def __bool__(self):
        return bool(self._calls)

    def batch_size(self):
        for _, _, calls in self._calls.values():
            return calls[0][0].shape[0]
        return 0

    def groups(self):
        out = []
        for layer, rule, calls in self._calls.values():
            if isinstance(layer, nn.Linear):
                out.append(_LinearCalls(layer, calls))
            else:
                out.append(_RuleCalls(layer, rule, calls))
        return out

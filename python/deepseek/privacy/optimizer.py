"""``DPOptimizer``: the DP-SGD step (Abadi et al., 2016) around any deepseek optimizer.

Before the wrapped optimizer's ``step`` it replaces each parameter's ``.grad`` by

    (Σ_i clip(g_i) + N(0, (σ·C)² I)) / B_expected

where ``g_i`` are the per-sample gradients (``p.grad_sample``, filled by
:class:`~deepseek.privacy.GradSampleModule`), ``clip`` scales example ``i``'s gradient --
all parameters together ("flat" clipping) -- to L2 norm at most ``C = max_grad_norm`` with
factor ``min(1, C / (‖g_i‖ + 1e-6))``, ``σ`` is ``noise_multiplier``, and ``B_expected``
the expected batch size (``sample_rate · N`` under Poisson sampling; the actual size of a
Poisson batch must not be used, since it depends on the data). With ``loss_reduction="sum"``
the sum is not divided. A parameter without ``grad_sample`` (an empty batch, or a parameter
the forward did not use) contributes no gradient but still gets noise, as the privacy
analysis requires.
"""

import math
import numbers

import numpy as np

from .. import _C
from .._grad_mode import no_grad

__all__ = ["DPOptimizer"]


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"DPOptimizer: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def t_dtype(group):
    """The dtype of a layer group's parameters."""
    return next(iter(group.layer.parameters())).dtype


class DPOptimizer:
    """Wraps ``optimizer``; attributes it does not define (``param_groups``, ``state``,
    ``state_dict`` ...) are the wrapped optimizer's, so LR schedulers work unchanged.

    ``noise_multiplier`` σ > 0 (``0`` is allowed only with ``allow_no_noise=True``, for
    measurements: it gives no privacy), ``max_grad_norm`` C > 0, ``expected_batch_size``
    (required for ``loss_reduction="mean"``). The noise is seeded from deepseek's global
    random generator (``deepseek.manual_seed`` makes a run repeatable)."""

    def __init__(self, optimizer, *, noise_multiplier, max_grad_norm, expected_batch_size=None,
                 loss_reduction="mean", allow_no_noise=False):
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        if allow_no_noise and noise_multiplier == 0:
            self.noise_multiplier = 0.0
        else:
            self.noise_multiplier = _check_positive(noise_multiplier, "noise_multiplier")
        self.max_grad_norm = _check_positive(max_grad_norm, "max_grad_norm")
        if loss_reduction == "mean":
            if expected_batch_size is None:
                raise ValueError("DPOptimizer: expected_batch_size is needed with "
                                 "loss_reduction='mean'")
            expected_batch_size = _check_positive(expected_batch_size, "expected_batch_size")
        self.expected_batch_size = expected_batch_size
        self.loss_reduction = loss_reduction
        self.original_optimizer = optimizer
        self.step_hook = None            # called as step_hook(self) after every step
        self.on_zero_grad = None         # called after zero_grad (clears pending hooks)
        self.last_clip_fraction = None   # share of examples clipped in the last step
        self.last_batch_size = None
        # Set (by PrivacyEngine) to a GradSampleModule in grad_sample_mode="ghost".
        self.grad_sample_module = None

    def __getattr__(self, name):
        # Only reached for attributes DPOptimizer itself lacks.
        return getattr(self.__dict__["original_optimizer"], name)

    @property
    def params(self):
        return [p for g in self.original_optimizer.param_groups for p in g["params"]
                if p.requires_grad]

    def zero_grad(self, set_to_none=True):
        self.original_optimizer.zero_grad(set_to_none)
        for p in self.params:
            if getattr(p, "grad_sample", None) is not None:
                p.grad_sample = None
        if self.on_zero_grad is not None:
            self.on_zero_grad()

    def _clip_factor(self, sq_norms):
        factor = (self.max_grad_norm / (sq_norms.sqrt() + 1e-6)).clamp(max=1.0)
        self.last_clip_fraction = float((factor < 1.0).float().mean().item())
        return factor

    def _check_really_empty(self, params):
        """No per-sample gradients: fine for an empty batch (no backward ran), an error if
        a backward did run (the model is not wrapped, or its mode and ours disagree) --
        stepping on noise alone would silently discard the data."""
        for p in params:
            g = p.grad
            if g is not None and bool((g != 0).any().item()):
                raise RuntimeError(
                    "DPOptimizer: parameters have gradients but no per-sample gradients; wrap "
                    "the model in GradSampleModule (PrivacyEngine.make_private does), and with "
                    "grad_sample_mode='ghost' set optimizer.grad_sample_module to it")

    def _clip_ghost(self, gsm):
        params = self.params
        for p in params:
            p.summed_grad = None
        batch = gsm.records.batch_size()
        if batch == 0:
            self._check_really_empty(params)
            self.last_clip_fraction = 0.0
            return 0
        groups = gsm.records.groups()
        sq = None
        for grp in groups:
            n = grp.sq_norms()
            if n is not None:
                sq = n if sq is None else sq + n
        factor = self._clip_factor(sq)
        for grp in groups:
            for pname, t in grp.clipped_sums(factor.to(t_dtype(grp))).items():
                getattr(grp.layer, pname).summed_grad = t
        gsm.records.clear()
        return batch

    def clip_and_accumulate(self):
        """Sets ``p.summed_grad`` = Σ_i clip(g_i) for every parameter; returns the batch size."""
        gsm = self.grad_sample_module
        if gsm is not None and gsm.grad_sample_mode == "ghost":
            return self._clip_ghost(gsm)
        params = self.params
        samples = [getattr(p, "grad_sample", None) for p in params]
        present = [g for g in samples if g is not None]
        batch = present[0].shape[0] if present else 0
        for g in present:
            if g.shape[0] != batch:
                raise RuntimeError("DPOptimizer: per-sample gradients of different batch sizes "
                                   f"({g.shape[0]} and {batch}); was zero_grad skipped?")
        if batch == 0:
            self._check_really_empty(params)
            for p in params:
                p.summed_grad = None
            self.last_clip_fraction = 0.0
            return 0
        # Reductions as matmuls (einsum): far faster than elementwise passes over [B, ...].
        sq = None
        for g in present:
            flat = g.reshape(batch, -1)
            s = _C.einsum("bi,bi->b", flat, flat)
            sq = s if sq is None else sq + s
        factor = self._clip_factor(sq)
        for p, g in zip(params, samples):
            if g is None:
                p.summed_grad = None
                continue
            f = factor.to(g.dtype).reshape(1, batch)
            p.summed_grad = (f @ g.reshape(batch, -1)).reshape(*g.shape[1:])
        return batch

    def add_noise(self):
        """``p.grad`` = (summed_grad + N(0, (σC)²)) / expected batch size."""
        std = self.noise_multiplier * self.max_grad_norm
        # The Gaussian draws come from numpy's PCG64 (several times faster than deepseek's
        # randn for the millions of draws per step), seeded from deepseek's generator, so
        # deepseek.manual_seed still fixes the noise.
        rng = np.random.default_rng(int(_C.randint(0, 2 ** 62, (1,)).item())) if std > 0 else None
        for p in self.params:
            summed = getattr(p, "summed_grad", None)
            if summed is None:
                summed = _C.zeros(*p.shape, dtype=p.dtype)
            if std > 0:
                np_dtype = np.float64 if p.dtype == _C.float64 else np.float32
                z = rng.standard_normal(tuple(p.shape), dtype=np_dtype)
                noise = _C.from_numpy(z)
                if noise.dtype != p.dtype:
                    noise = noise.to(p.dtype)
                summed = summed + noise * std
            if self.loss_reduction == "mean":
                summed = summed / self.expected_batch_size
            p.grad = summed.detach()
            p.summed_grad = None

    def pre_step(self):
        with no_grad():
            self.last_batch_size = self.clip_and_accumulate()
            self.add_noise()

    def step(self, closure=None):
        if closure is not None:
            raise ValueError("DPOptimizer.step: closures are not supported (each call would "
                             "need its own privacy accounting)")
        self.pre_step()
        out = self.original_optimizer.step()
        if self.step_hook is not None:
            self.step_hook(self)
        return out

    def __repr__(self):
        return (f"DPOptimizer(noise_multiplier={self.noise_multiplier}, "
                f"max_grad_norm={self.max_grad_norm}, "
                f"expected_batch_size={self.expected_batch_size}, "
                f"optimizer={self.original_optimizer!r})")

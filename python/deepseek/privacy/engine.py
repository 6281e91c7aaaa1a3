"""``PrivacyEngine``: Opacus' one-call way to make a training loop differentially private.

```python
from deepseek.privacy import PrivacyEngine

engine = PrivacyEngine()                      # accountant="rdp" (default) or "pld"
model, optimizer, train_loader = engine.make_private(
    module=model, optimizer=optimizer, data_loader=train_loader,
    noise_multiplier=1.1, max_grad_norm=1.0)  # poisson_sampling=True by default
for x, y in train_loader:                     # the usual loop, unchanged
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
print(engine.get_epsilon(delta=1e-5))
```

``make_private_with_epsilon(..., target_epsilon=, target_delta=, epochs=)`` picks the noise
multiplier that spends exactly the budget over ``epochs`` passes (bisection on the chosen
accountant).
"""

import math
import numbers

from ..utils import data as _data
from .accountants import check_delta, create_accountant, get_noise_multiplier
from .data_loader import DPDataLoader
from .grad_sample import GradSampleModule
from .optimizer import DPOptimizer

__all__ = ["PrivacyEngine"]


def _check_positive(value, name, fn):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{fn}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


class PrivacyEngine:
    """Makes (model, optimizer, data loader) private and tracks the privacy spent.

    ``accountant``: ``"rdp"`` (Rényi DP, Opacus' default) or ``"pld"`` (privacy loss
    distribution; tighter)."""

    def __init__(self, accountant="rdp"):
        self.accountant = create_accountant(accountant)
        self.accountant_name = accountant
        self.module = None

    def make_private(self, *, module, optimizer, data_loader, noise_multiplier, max_grad_norm,
                     poisson_sampling=True, loss_reduction="mean", batch_first=True,
                     grad_sample_mode="hooks"):
        """Returns ``(GradSampleModule, DPOptimizer, loader)``. The loader is a
        :class:`DPDataLoader` (Poisson sampling at rate ``1/len(data_loader)``) when
        ``poisson_sampling``; otherwise the given loader, whose fixed-size shuffled batches
        are accounted *as if* Poisson-sampled (Opacus does the same; the guarantee is then
        only approximate). ``grad_sample_mode="ghost"`` clips without materialising
        per-sample gradients where cheaper (:mod:`deepseek.privacy.fast_clipping`); the
        update is the same."""
        fn = "make_private"
        sigma = _check_positive(noise_multiplier, "noise_multiplier", fn)
        clip = _check_positive(max_grad_norm, "max_grad_norm", fn)
        if not isinstance(data_loader, _data.DataLoader):
            raise TypeError(f"{fn}: data_loader must be a deepseek.utils.data.DataLoader, got "
                            f"{type(data_loader).__name__}")
        n_batches = len(data_loader)
        if n_batches == 0:
            raise ValueError(f"{fn}: the data loader has no batches")
        sample_rate = 1.0 / n_batches
        expected_batch_size = int(round(len(data_loader.dataset) * sample_rate))
        if poisson_sampling:
            data_loader = DPDataLoader.from_data_loader(data_loader)
        gs_module = module if isinstance(module, GradSampleModule) else GradSampleModule(
            module, batch_first=batch_first, loss_reduction=loss_reduction,
            grad_sample_mode=grad_sample_mode)
        dp_opt = DPOptimizer(optimizer, noise_multiplier=sigma, max_grad_norm=clip,
                             expected_batch_size=expected_batch_size,
                             loss_reduction=loss_reduction)
        dp_opt.on_zero_grad = gs_module.del_grad_sample
        dp_opt.grad_sample_module = gs_module

        def account(opt):
            self.accountant.step(noise_multiplier=opt.noise_multiplier, sample_rate=sample_rate)

        dp_opt.step_hook = account
        self.module, self.optimizer, self.sample_rate = gs_module, dp_opt, sample_rate
        return gs_module, dp_opt, data_loader

    def make_private_with_epsilon(self, *, module, optimizer, data_loader, target_epsilon,
                                  target_delta, epochs, max_grad_norm, poisson_sampling=True,
                                  loss_reduction="mean", batch_first=True,
                                  grad_sample_mode="hooks", epsilon_tolerance=0.01):
        """As :meth:`make_private`, with the noise multiplier chosen so that ``epochs`` passes
        over the data spend (``target_epsilon``, ``target_delta``) on this engine's
        accountant."""
        fn = "make_private_with_epsilon"
        check_delta(target_delta, fn)
        _check_positive(target_epsilon, "target_epsilon", fn)
        _check_positive(epochs, "epochs", fn)
        if not isinstance(data_loader, _data.DataLoader) or len(data_loader) == 0:
            raise ValueError(f"{fn}: data_loader must be a non-empty deepseek DataLoader")
        q = 1.0 / len(data_loader)
        sigma = get_noise_multiplier(target_epsilon=target_epsilon, target_delta=target_delta,
                                     sample_rate=q, steps=int(epochs * len(data_loader)),
                                     accountant=self.accountant_name,
                                     epsilon_tolerance=epsilon_tolerance)
        return self.make_private(module=module, optimizer=optimizer, data_loader=data_loader,
                                 noise_multiplier=sigma, max_grad_norm=max_grad_norm,
                                 poisson_sampling=poisson_sampling,
                                 loss_reduction=loss_reduction, batch_first=batch_first,
                                 grad_sample_mode=grad_sample_mode)

    def get_epsilon(self, delta):
        """ε spent so far at ``delta`` (0 before the first step)."""
        return self.accountant.get_epsilon(check_delta(delta))

    @property
    def steps(self):
        return len(self.accountant)

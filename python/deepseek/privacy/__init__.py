"""``deepseek.privacy``: differentially private training (DP-SGD), the capability Opacus adds
to PyTorch, with Opacus' names.

* :class:`PrivacyEngine` -- ``make_private`` / ``make_private_with_epsilon`` /
  ``get_epsilon``: wraps a model (per-sample gradients), an optimizer (clipping + Gaussian
  noise) and a data loader (Poisson sampling), and accounts the privacy spent.
* :class:`GradSampleModule` -- per-sample gradients by per-layer rules (``p.grad_sample``).
* :class:`DPOptimizer` -- the DP-SGD step around any optimizer.
* :class:`DPDataLoader`, :class:`UniformWithReplacementSampler` -- Poisson sampling.
* :class:`RDPAccountant`, :class:`PLDAccountant`, :func:`get_noise_multiplier` -- privacy
  accounting of the subsampled Gaussian mechanism, matching Google's ``dp-accounting``.
"""

from .accountants import (IAccountant, PLDAccountant, RDPAccountant, create_accountant,
                          get_noise_multiplier)
from .data_loader import DPDataLoader, UniformWithReplacementSampler
from .engine import PrivacyEngine
from .layers import DPGRU, DPLSTM, DPMultiheadAttention
from .grad_sample import (GradSampleModule, UnsupportedModuleError, register_grad_sampler,
                          supported_layers)
from .optimizer import DPOptimizer

__all__ = ["PrivacyEngine", "DPLSTM", "DPGRU", "DPMultiheadAttention", "GradSampleModule", "DPOptimizer", "DPDataLoader",
           "UniformWithReplacementSampler", "RDPAccountant", "PLDAccountant", "IAccountant",
           "create_accountant", "get_noise_multiplier", "UnsupportedModuleError",
           "register_grad_sampler", "supported_layers"]

"""Privacy accountants with Opacus' interface, and ``get_noise_multiplier``.

An accountant records the DP-SGD steps taken (``step(noise_multiplier=, sample_rate=)``;
consecutive steps with the same parameters are kept as one ``(σ, q, count)`` entry) and
answers ``get_epsilon(delta)``:

* :class:`RDPAccountant` -- Rényi DP of the Poisson-subsampled Gaussian
  (:mod:`deepseek.privacy.rdp`), converted to (ε, δ) at the best of dp-accounting's orders.
* :class:`PLDAccountant` -- the privacy loss distribution (:mod:`deepseek.privacy.pld`),
  tighter (e.g. ε = 2.38 instead of 2.60 for MNIST-like q = 256/60000, σ = 1.1, 14062 steps,
  δ = 1e-5).

Both agree with Google's ``dp-accounting`` (``RdpAccountant`` and ``pld.PLDAccountant``).
"""

import math
import numbers

from . import pld as _pld
from . import rdp as _rdp

__all__ = ["IAccountant", "RDPAccountant", "PLDAccountant", "create_accountant",
           "get_noise_multiplier"]


def check_delta(delta, fn="get_epsilon"):
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise TypeError(f"{fn}: delta must be a real number, got {type(delta).__name__}")
    if not 0 < delta < 1:
        raise ValueError(f"{fn}: delta must be in (0, 1), got {delta}")
    return float(delta)


def check_sample_rate(q, fn):
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < q <= 1:
        raise ValueError(f"{fn}: sample_rate must be in (0, 1], got {q!r}")
    return float(q)


def check_noise(sigma, fn, allow_zero=False):
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not math.isfinite(sigma):
        raise ValueError(f"{fn}: noise_multiplier must be a finite real number, got {sigma!r}")
    if sigma < 0 or (sigma == 0 and not allow_zero):
        raise ValueError(f"{fn}: noise_multiplier must be > 0, got {sigma} (without noise "
                         "there is no differential privacy)")
    return float(sigma)


class IAccountant:
    """Common bookkeeping: ``history`` is a list of ``(noise_multiplier, sample_rate,
    steps)``."""

    mechanism_name = None

    def __init__(self):
        self.history = []

    def step(self, *, noise_multiplier, sample_rate):
        sigma = check_noise(noise_multiplier, f"{type(self).__name__}.step", allow_zero=True)
        q = check_sample_rate(sample_rate, f"{type(self).__name__}.step")
        if self.history and self.history[-1][:2] == (sigma, q):
            s, r, n = self.history[-1]
            self.history[-1] = (s, r, n + 1)
        else:
            self.history.append((sigma, q, 1))

    def __len__(self):
        return sum(n for _, _, n in self.history)

    def mechanism(self):
        return self.mechanism_name

    def get_epsilon(self, delta):
        raise NotImplementedError

    def state_dict(self):
        return {"mechanism": self.mechanism_name, "history": list(self.history)}

    def load_state_dict(self, state):
        self.history = [tuple(h) for h in state["history"]]


class RDPAccountant(IAccountant):
    """Rényi-DP accounting (Opacus' ``RDPAccountant``); ``orders`` default to
    dp-accounting's list."""

    mechanism_name = "rdp"

    def __init__(self, orders=_rdp.DEFAULT_RDP_ORDERS):
        super().__init__()
        self.orders = tuple(orders)

    def _rdp(self):
        total = [0.0] * len(self.orders)
        for sigma, q, n in self.history:
            if sigma == 0:
                return [math.inf] * len(self.orders)
            for i, v in enumerate(_rdp.compute_rdp(q, sigma, n, self.orders)):
                total[i] += v
        return total

    def get_privacy_spent(self, *, delta):
        """(ε, best Rényi order)."""
        check_delta(delta, "get_privacy_spent")
        if not self.history:
            return 0.0, None
        return _rdp.rdp_to_epsilon(self.orders, self._rdp(), delta)

    def get_epsilon(self, delta):
        return self.get_privacy_spent(delta=delta)[0]


class PLDAccountant(IAccountant):
    """Privacy-loss-distribution accounting (dp-accounting's ``PLDAccountant``), with the
    loss discretised on a grid of ``value_discretization_interval`` (default 1e-4)."""

    mechanism_name = "pld"

    def __init__(self, value_discretization_interval=_pld.DEFAULT_DISCRETIZATION):
        super().__init__()
        if not value_discretization_interval > 0:
            raise ValueError("value_discretization_interval must be > 0")
        self.d = float(value_discretization_interval)

    def get_pld(self):
        total = _pld.PLD.identity(self.d)
        for sigma, q, n in self.history:
            total = total.compose(_pld.gaussian_pld(sigma, q, self.d).self_compose(n))
        return total

    def get_epsilon(self, delta):
        check_delta(delta)
        if not self.history:
            return 0.0
        if any(sigma == 0 for sigma, _, _ in self.history):
            return math.inf
        return self.get_pld().get_epsilon_for_delta(delta)

    def get_delta(self, epsilon):
        if not self.history:
            return 0.0
        return self.get_pld().get_delta_for_epsilon(epsilon)


_ACCOUNTANTS = {"rdp": RDPAccountant, "pld": PLDAccountant}


def create_accountant(mechanism):
    try:
        return _ACCOUNTANTS[mechanism]()
    except KeyError:
        raise ValueError(f"unknown accountant {mechanism!r} (expected one of "
                         f"{', '.join(sorted(_ACCOUNTANTS))})") from None


def _epsilon(accountant, sigma, q, steps, delta):
    acc = create_accountant(accountant)
    acc.history = [(sigma, q, steps)]
    return acc.get_epsilon(delta)


def get_noise_multiplier(*, target_epsilon, target_delta, sample_rate, epochs=None,
                         steps=None, accountant="rdp", epsilon_tolerance=0.01,
                         sigma_max=2.0 ** 10):
    """The smallest noise multiplier σ (within ``epsilon_tolerance`` in ε) for which
    ``steps`` (or ``epochs / sample_rate``) Poisson-sampled steps at rate ``sample_rate``
    stay within (``target_epsilon``, ``target_delta``): Opacus' bisection, which first
    doubles σ until the target is met. Raises ``ValueError`` when even σ = ``sigma_max``
    cannot reach the target."""
    fn = "get_noise_multiplier"
    check_delta(target_delta, fn)
    q = check_sample_rate(sample_rate, fn)
    if isinstance(target_epsilon, bool) or not isinstance(target_epsilon, numbers.Real) \
            or not target_epsilon > 0 or not math.isfinite(target_epsilon):
        raise ValueError(f"{fn}: target_epsilon must be a finite number > 0, got "
                         f"{target_epsilon!r}")
    if (steps is None) == (epochs is None):
        raise ValueError(f"{fn}: give exactly one of steps and epochs")
    if steps is None:
        steps = int(epochs / q)
    if not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"{fn}: the number of steps must be a positive integer, got {steps}")
    create_accountant(accountant)  # validates the name
    lo, hi = 0.0, 10.0
    eps_hi = _epsilon(accountant, hi, q, steps, target_delta)
    while eps_hi > target_epsilon:
        if hi >= sigma_max:
            raise ValueError(
                f"{fn}: target ε = {target_epsilon} at δ = {target_delta} cannot be reached "
                f"with {steps} steps at sample rate {q}: even noise multiplier {hi:g} gives "
                f"ε = {eps_hi:.4g}; train for fewer steps, sample less, or raise the target")
        lo, hi = hi, 2 * hi
        eps_hi = _epsilon(accountant, hi, q, steps, target_delta)
    while target_epsilon - eps_hi > epsilon_tolerance:
        mid = (lo + hi) / 2
        eps = _epsilon(accountant, mid, q, steps, target_delta)
        if eps < target_epsilon:
            hi, eps_hi = mid, eps
        else:
            lo = mid
    return hi

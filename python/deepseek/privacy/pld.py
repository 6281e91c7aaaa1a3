"""Privacy loss distribution (PLD) accounting of the Poisson-subsampled Gaussian mechanism.

The method of Koskela et al. / Meiser & Mohammadi ("privacy buckets"), in the
"connect-the-dots" form of Doroshenko, Ghazi, Kamath, Kumar & Manurangsi (2022,
arXiv:2207.04380) that Google's ``dp-accounting`` uses by default, with its defaults:

* the privacy loss of one step is discretised on the grid ``k · d`` with ``d = 1e-4``
  (``value_discretization_interval``), *pessimistically*: the grid spans
  ``[⌊ε_lo/d⌋, ⌈ε_hi/d⌉]``, where ``ε_hi``/``ε_lo`` are the losses at the points where the
  Gaussian's two-sided mass ``e^-50`` is cut off (``log_mass_truncation_bound = -50``);
  the hockey-stick divergence ``δ(ε_i)`` of the exact mechanism is evaluated at each grid
  point and the probabilities that reproduce those δ's by linear interpolation between the
  dots are solved for (the mass beyond the top point goes to +∞);
* Poisson subsampling at rate ``q`` gives two distributions, one for *removing* an example
  (``log(1 - q + q·e^L)``) and one for *adding* it (``-log(1 - q + q·e^-L)``); both are
  composed and the final ε is the larger of the two;
* ``k``-fold self-composition is one FFT raised to the ``k``-th power, on a window sized by
  a Chernoff bound so that at most ``1e-15`` of the mass falls outside (that mass is counted
  at +∞, pessimistically); composing two distributions is an FFT convolution whose tails of
  mass ``≤ 1e-15`` are folded in the same way;
* ``ε(δ)`` is the smallest ε whose hockey-stick divergence
  ``Σ_L p(L)·(1 - e^(ε-L))_+ + p(∞)`` is at most δ.

numpy (already a dependency of deepseek) provides the FFT; the Gaussian CDF comes from
``math.erfc``.
"""

import math

import numpy as np

__all__ = ["PLD", "gaussian_pld", "DEFAULT_DISCRETIZATION"]

DEFAULT_DISCRETIZATION = 1e-4
_LOG_MASS_TRUNCATION = -50.0
_TAIL_TRUNCATION = 1e-15


# --------------------------------------------------------------------------- the Gaussian

def _norm_cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _log_erfc(x):
    if x < 20.0:
        return math.log(math.erfc(x))
    x2 = x * x
    return (-0.5 * math.log(math.pi) - math.log(x) - x2 - 0.5 / x2 + 0.625 / x2 ** 2
            - 37.0 / 24.0 / x2 ** 3 + 353.0 / 64.0 / x2 ** 4)


def _norm_log_cdf(x):
    if x == -math.inf:
        return -math.inf
    if x > 0:
        return math.log1p(-0.5 * math.erfc(x / math.sqrt(2.0)))
    return math.log(0.5) + _log_erfc(-x / math.sqrt(2.0))


def _norm_ppf_small(p):
    """Φ⁻¹(p) for a tiny p (Newton's method on log Φ from the tail asymptote)."""
    lp = math.log(p)
    x = -math.sqrt(-2.0 * lp)
    for _ in range(100):
        f = _norm_log_cdf(x) - lp
        # d/dx log Φ(x) = φ(x)/Φ(x)
        dlog = math.exp(-0.5 * x * x - 0.5 * math.log(2 * math.pi) - _norm_log_cdf(x))
        step = f / dlog
        x -= step
        if abs(step) < 1e-15 * max(1.0, abs(x)):
            break
    return x


def _log_a_exp_b_plus_c(a, b, c):
    """log(a·e^b + c), stably (dp-accounting's helper of the same meaning)."""
    if a == 0:
        return math.log(c)
    if a < 0:
        lc, la = math.log(c), math.log(-a) + b
        return lc + math.log1p(-math.exp(la - lc))
    if b == 0:
        return math.log(a + c)
    d = b + math.log(a)
    if c == 0:
        return d
    if c < 0:
        lc = math.log(-c)
        return d + math.log1p(-math.exp(lc - d))
    lc = math.log(c)
    hi, lo = max(d, lc), min(d, lc)
    return hi + math.log1p(math.exp(lo - hi))


class _SampledGaussianLoss:
    """The privacy loss of the Gaussian mechanism (std ``sigma``, sensitivity 1) on a Poisson
    sample of rate ``q``, for the *remove* (``add=False``) or *add* neighbouring relation."""

    def __init__(self, sigma, q, add):
        self.sigma, self.q, self.add = sigma, q, add

    def _loss_plain(self, x):
        s2 = self.sigma ** 2
        return (0.5 - x) / s2 if self.add else (-0.5 - x) / s2

    def _inverse_plain(self, loss):
        s2 = self.sigma ** 2
        return 0.5 - loss * s2 if self.add else -0.5 - loss * s2

    def loss(self, x):
        plain = self._loss_plain(x)
        if self.q == 1.0:
            return plain
        if self.add:
            return -_log_a_exp_b_plus_c(self.q, -plain, 1 - self.q)
        return _log_a_exp_b_plus_c(self.q, plain, 1 - self.q)

    def inverse_loss(self, loss):
        q = self.q
        if q == 1.0:
            return self._inverse_plain(loss)
        if self.add:
            if math.isclose(loss, -math.log(1 - q)):
                return self._inverse_plain(math.inf)
            return self._inverse_plain(-_log_a_exp_b_plus_c(1 / q, -loss, 1 - 1 / q))
        if math.isclose(loss, math.log(1 - q)):
            return self._inverse_plain(-math.inf)
        return self._inverse_plain(_log_a_exp_b_plus_c(1 / q, loss, 1 - 1 / q))

    def _upper_cdf(self, x):
        q, s = self.q, self.sigma
        if self.add:
            return _norm_cdf(x / s)
        if q == 1.0:
            return _norm_cdf((x + 1) / s)
        return (1 - q) * _norm_cdf(x / s) + q * _norm_cdf((x + 1) / s)

    def _lower_log_cdf(self, x):
        q, s = self.q, self.sigma
        if not self.add:
            return _norm_log_cdf(x / s)
        if q == 1.0:
            return _norm_log_cdf((x - 1) / s)
        a = math.log1p(-q) + _norm_log_cdf(x / s)
        b = math.log(q) + _norm_log_cdf((x - 1) / s)
        hi, lo = max(a, b), min(a, b)
        if hi == -math.inf:
            return -math.inf
        return hi + math.log1p(math.exp(lo - hi))

    def delta(self, eps):
        """The ε-hockey-stick divergence of the exact (continuous) mechanism."""
        q = self.q
        if q < 1.0:
            if self.add and not eps < -math.log1p(-q):
                return 0.0
            if not self.add and not eps > math.log1p(-q):
                return min(1.0, max(0.0, -math.expm1(eps)))
        x = self.inverse_loss(eps)
        d = self._upper_cdf(x) - math.exp(eps + self._lower_log_cdf(x))
        return min(1.0, max(0.0, d))

    def loss_bounds(self):
        """(ε_lo, ε_hi): the losses at the two points where e^-50 of the noise is cut."""
        lo_x = self.sigma * _norm_ppf_small(0.5 * math.exp(_LOG_MASS_TRUNCATION))
        hi_x = -lo_x
        if self.add:
            hi_x += 1.0
        else:
            lo_x -= 1.0
        return self.loss(hi_x), self.loss(lo_x)


# --------------------------------------------------------------------------- a discrete PMF

def _fast_len(n):
    """The smallest 2^a·3^b·5^c >= n (an FFT-friendly length)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            v = p35
            while v < n:
                v *= 2
            best = min(best, v)
            p35 *= 3
        p5 *= 5
    return best


def _truncate_tails(probs, mass):
    """Cuts the longest prefix and suffix each of mass <= mass/2. The prefix's mass is added
    to the first kept bucket (rounding losses up: pessimistic); the suffix's is returned to
    be counted at +∞."""
    if mass == 0:
        return 0, probs, 0.0
    half = mass / 2
    c = np.cumsum(probs)
    left = int(np.searchsorted(c, half, side="right"))
    cr = np.cumsum(probs[::-1])
    right = len(probs) - int(np.searchsorted(cr, half, side="right"))
    right = max(right, left + 1)
    left_mass = float(np.sum(probs[:left]))
    right_mass = float(np.sum(probs[right:]))
    kept = np.array(probs[left:right], dtype=np.float64)
    kept[0] += left_mass
    return left, kept, right_mass


class _Pmf:
    """Probabilities ``probs[i]`` of the loss ``(lower + i)·d``, plus a mass at +∞."""

    def __init__(self, d, lower, probs, inf_mass):
        self.d, self.lower = d, int(lower)
        self.probs = np.asarray(probs, dtype=np.float64)
        self.inf_mass = float(inf_mass)

    def compose(self, other, tail=_TAIL_TRUNCATION):
        a, b = self.probs, other.probs
        n = len(a) + len(b) - 1
        if min(len(a), len(b)) <= 64:
            conv = np.convolve(a, b)
        else:
            m = _fast_len(n)
            conv = np.fft.irfft(np.fft.rfft(a, m) * np.fft.rfft(b, m), m)[:n]
        inf_mass = self.inf_mass + other.inf_mass - self.inf_mass * other.inf_mass
        off, conv, right = _truncate_tails(conv, tail)
        return _Pmf(self.d, self.lower + other.lower + off, conv, inf_mass + right)

    def self_compose(self, k, tail=_TAIL_TRUNCATION):
        if k < 1:
            raise ValueError(f"the number of compositions must be >= 1, got {k}")
        p = self.probs
        n = len(p)
        lo, hi = _chernoff_window(p, k, tail)
        out_len = hi - lo + 1
        m = _fast_len(max(out_len, n))
        full = np.real(np.fft.ifft(np.fft.fft(p, m) ** k))
        out = np.roll(full, -lo)[:out_len]
        inf_mass = tail - math.expm1(k * math.log1p(-self.inf_mass))
        return _Pmf(self.d, self.lower * k + lo, out, inf_mass)

    def epsilon_for_delta(self, delta):
        if self.inf_mass > delta:
            return math.inf
        upper, lower = self.inf_mass, 0.0
        probs = self.probs
        top = (self.lower + len(probs) - 1) * self.d
        loss = top
        for i in range(len(probs) - 1, -1, -1):
            if upper > delta and lower > 0 and math.log((upper - delta) / lower) >= loss:
                break
            pr = float(probs[i])
            upper += pr
            lower += math.exp(-loss) * pr
            if upper >= delta and lower == 0:
                return max(0.0, loss)
            loss -= self.d
        if upper <= lower + delta:
            return 0.0
        return math.log((upper - delta) / lower)

    def delta_for_epsilon(self, eps):
        losses = (np.arange(len(self.probs)) + self.lower) * self.d
        sel = losses > eps
        return float(self.inf_mass + np.sum(self.probs[sel] * -np.expm1(eps - losses[sel])))


def _logsumexp_weighted(x, w):
    m = np.max(x)
    return m + math.log(float(np.sum(w * np.exp(x - m))))


def _chernoff_window(p, k, tail):
    """Index range [lo, hi] of the k-fold convolution of ``p`` outside which at most
    ``tail`` of the mass lies (Chernoff bounds at 40 moment orders, as dp-accounting)."""
    n = len(p)
    hi, lo = (n - 1) * k, 0
    if tail == 0:
        return lo, hi
    idx = np.arange(n, dtype=np.float64)
    for t in list(range(-20, 0)) + list(range(1, 21)):
        order = t / n
        bound = (k * _logsumexp_weighted(idx * order, p) + math.log(2 / tail)) / order
        if order > 0:
            hi = min(hi, math.ceil(bound))
        else:
            lo = max(lo, math.floor(bound))
    return lo, hi


def _connect_dots_pmf(loss, d):
    """The pessimistic connect-the-dots discretisation of one mechanism's loss."""
    eps_lo, eps_hi = loss.loss_bounds()
    k_lo, k_hi = math.floor(eps_lo / d), math.ceil(eps_hi / d)
    deltas = np.array([loss.delta(k * d) for k in range(k_lo, k_hi + 1)], dtype=np.float64)
    if k_lo == k_hi:
        return _Pmf(d, k_lo, [1 - deltas[0]], deltas[0])
    diffs = np.diff(deltas)
    probs = np.empty_like(deltas)
    probs[0] = 1 - deltas[0] + diffs[0] / math.expm1(d)
    probs[1:-1] = (diffs[1:] - diffs[:-1] * math.exp(d)) / math.expm1(d)
    probs[-1] = diffs[-1] / math.expm1(-d)
    return _Pmf(d, k_lo, np.maximum(probs, 0.0), deltas[-1])


# --------------------------------------------------------------------------- the PLD

class PLD:
    """A pessimistic privacy loss distribution: the pair (remove, add) of discretised
    PMFs (one PMF when they coincide, i.e. without subsampling)."""

    def __init__(self, remove, add=None):
        self.remove, self.add = remove, add

    @classmethod
    def identity(cls, discretization=DEFAULT_DISCRETIZATION):
        return cls(_Pmf(discretization, 0, [1.0], 0.0))

    def compose(self, other, tail=_TAIL_TRUNCATION):
        rem = self.remove.compose(other.remove, tail)
        if self.add is None and other.add is None:
            return PLD(rem)
        add = (self.add or self.remove).compose(other.add or other.remove, tail)
        return PLD(rem, add)

    def self_compose(self, k, tail=_TAIL_TRUNCATION):
        rem = self.remove.self_compose(k, tail)
        return PLD(rem, None if self.add is None else self.add.self_compose(k, tail))

    def get_epsilon_for_delta(self, delta):
        eps = self.remove.epsilon_for_delta(delta)
        if self.add is not None:
            eps = max(eps, self.add.epsilon_for_delta(delta))
        return eps

    def get_delta_for_epsilon(self, eps):
        d = self.remove.delta_for_epsilon(eps)
        if self.add is not None:
            d = max(d, self.add.delta_for_epsilon(eps))
        return d


def gaussian_pld(noise_multiplier, sampling_rate=1.0, discretization=DEFAULT_DISCRETIZATION):
    """The PLD of one step of the Gaussian mechanism (noise std ``noise_multiplier`` times
    the sensitivity) applied to a Poisson sample of rate ``sampling_rate``."""
    if not noise_multiplier > 0:
        raise ValueError(f"noise_multiplier must be > 0, got {noise_multiplier}")
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate}")
    remove = _connect_dots_pmf(_SampledGaussianLoss(noise_multiplier, sampling_rate, False),
                               discretization)
    if sampling_rate == 1.0:
        return PLD(remove)
    add = _connect_dots_pmf(_SampledGaussianLoss(noise_multiplier, sampling_rate, True),
                            discretization)
    return PLD(remove, add)

"""Rényi-DP accounting of the Poisson-subsampled Gaussian mechanism.

The analysis is Mironov, Talwar & Zhang (2019, "Rényi Differential Privacy of the Sampled
Gaussian Mechanism"), as computed by Google's ``dp-accounting`` (``RdpAccountant``) and by
Opacus: for sampling rate ``q`` and noise multiplier ``σ`` the RDP at order ``α`` is
``log(A_α) / (α - 1)``, where

* integer ``α``: ``A_α = Σ_{i=0..α} C(α, i) q^i (1-q)^(α-i) exp((i² - i) / (2σ²))``;
* fractional ``α``: the same integral split at ``z0 = σ² log(1/q - 1) + 1/2`` into two
  series whose terms carry Gaussian tail masses (``erfc``), summed until both terms fall
  below ``e^-30``.

RDP composes by addition over steps. The conversion to (ε, δ) is the improved bound of
Balle et al. (2020, Prop. 12) / Asoodeh et al. (2020, eq. 20) that dp-accounting uses::

    ε(α) = rdp(α) + log1p(-1/α) - log(δ·α) / (α - 1)        (for α > 1.01)

minimised over the orders; a KL-divergence shortcut gives ε = 0 when
``δ² + expm1(-rdp) > 0``. The default orders are dp-accounting's:
``1.1, 1.2, ..., 10.9, 11, 12, ..., 63, 128, 256, 512, 1024``.

Pure Python (``math``), all in log space.
"""

import math

__all__ = ["DEFAULT_RDP_ORDERS", "compute_rdp", "rdp_to_epsilon", "rdp_to_delta"]

DEFAULT_RDP_ORDERS = tuple([1 + k / 10.0 for k in range(1, 100)] + list(range(11, 64))
                           + [128, 256, 512, 1024])

_NEG_INF = -math.inf


def _logsumexp2(a, b):
    """log(e^a + e^b)."""
    hi, lo = (a, b) if a >= b else (b, a)
    if lo == _NEG_INF:
        return hi
    return hi + math.log1p(math.exp(lo - hi))


def _log_binom(n, k):
    """log C(n, k) for real n >= k >= 0 (through the log-gamma function)."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_erfc(x):
    """log(erfc(x)), accurate in the far right tail where erfc underflows."""
    if x < 20.0:
        return math.log(math.erfc(x))
    # Asymptotic expansion of log(erfc(x)) + x² + log(x √π) at infinity.
    x2 = x * x
    return (-0.5 * math.log(math.pi) - math.log(x) - x2 - 0.5 / x2 + 0.625 / x2 ** 2
            - 37.0 / 24.0 / x2 ** 3 + 353.0 / 64.0 / x2 ** 4)


def _log_a_integer(q, sigma, alpha):
    total = _NEG_INF
    lq, l1q = math.log(q), math.log1p(-q)
    for i in range(alpha + 1):
        term = _log_binom(alpha, i) + i * lq + (alpha - i) * l1q + (i * i - i) / (2 * sigma ** 2)
        total = _logsumexp2(total, term)
    return total


def _log_a_fractional(q, sigma, alpha):
    lower, upper = _NEG_INF, _NEG_INF
    z0 = sigma ** 2 * math.log(1.0 / q - 1.0) + 0.5
    lq, l1q = math.log(q), math.log1p(-q)
    root2s = math.sqrt(2.0) * sigma
    i = 0
    while True:
        j = alpha - i
        lc = _log_binom(alpha, i)
        t0 = lc + i * lq + j * l1q + (i * i - i) / (2 * sigma ** 2) \
            + math.log(0.5) + _log_erfc((i - z0) / root2s)
        t1 = lc + j * lq + i * l1q + (j * j - j) / (2 * sigma ** 2) \
            + math.log(0.5) + _log_erfc((z0 - j) / root2s)
        lower = _logsumexp2(lower, t0)
        upper = _logsumexp2(upper, t1)
        i += 1
        if max(t0, t1) < -30:
            break
    return _logsumexp2(lower, upper)


def _rdp_one(q, sigma, alpha):
    if q == 0:
        return 0.0
    if sigma == 0 or math.isinf(alpha):
        return math.inf
    if q == 1.0:
        return alpha / (2 * sigma ** 2)
    if float(alpha).is_integer():
        return _log_a_integer(q, sigma, int(alpha)) / (alpha - 1)
    return _log_a_fractional(q, sigma, alpha) / (alpha - 1)


def compute_rdp(q, noise_multiplier, steps, orders=DEFAULT_RDP_ORDERS):
    """RDP (a list, one value per order) of ``steps`` compositions of the Gaussian mechanism
    with noise multiplier ``noise_multiplier`` on a Poisson sample of rate ``q``."""
    if not 0 <= q <= 1:
        raise ValueError(f"sampling rate q must be in [0, 1], got {q}")
    if noise_multiplier < 0:
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
    return [steps * _rdp_one(q, noise_multiplier, a) for a in orders]


def rdp_to_epsilon(orders, rdp, delta):
    """(ε, best order) from RDP values, by the bound dp-accounting's ``compute_epsilon`` uses."""
    if not 0 <= delta:
        raise ValueError(f"delta must be >= 0, got {delta}")
    if len(orders) != len(rdp):
        raise ValueError("orders and rdp must have the same length")
    if delta == 0:
        return (0.0, 0) if all(r == 0 for r in rdp) else (math.inf, 0)
    best, best_order = math.inf, orders[0]
    for a, r in zip(orders, rdp):
        if a < 1:
            raise ValueError(f"Rényi orders must be >= 1, got {a}")
        if r < 0:
            eps = 0.0
        elif delta ** 2 + math.expm1(-r) > 0:
            eps = 0.0                     # the KL bound: δ >= sqrt(1 - e^-KL)
        elif a > 1.01:
            eps = r + math.log1p(-1.0 / a) - math.log(delta * a) / (a - 1)
        else:
            eps = math.inf
        if eps < best:
            best, best_order = eps, a
    return max(0.0, best), best_order


def rdp_to_delta(orders, rdp, epsilon):
    """(δ, best order) from RDP values for a target ε (dp-accounting's ``compute_delta``)."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    best, best_order = math.inf, orders[0]
    for a, r in zip(orders, rdp):
        if r < 0 or r == 0:
            logd = _NEG_INF
        else:
            logd = 0.5 * math.log1p(-math.exp(-r))
        if a > 1.01:
            logd = min(logd, (a - 1) * (r - epsilon + math.log1p(-1.0 / a)) - math.log(a))
        if logd < best:
            best, best_order = logd, a
    return min(math.exp(best), 1.0), best_order

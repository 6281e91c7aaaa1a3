//! Rényi-DP accounting of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang
//! 2019), computed as Google's `dp-accounting` (`RdpAccountant`) and the Python
//! `deepseek.privacy.rdp` do:
//!
//! * integer order `α`: `A_α = Σ_{i=0..α} C(α, i) q^i (1-q)^(α-i) exp((i² - i) / (2σ²))`;
//! * fractional `α`: the integral split at `z0 = σ² log(1/q - 1) + 1/2` into two series with
//!   Gaussian tail masses (`erfc`), summed until both terms fall below `e^-30`;
//!
//! the RDP at `α` is `log(A_α) / (α - 1)`, additive over steps, and ε for a δ is the
//! improved conversion of Balle et al. (2020) that dp-accounting uses, minimised over the
//! orders: `ε(α) = rdp(α) + log1p(-1/α) - log(δ·α) / (α - 1)`.

use crate::{Error, Result};

/// dp-accounting's default Rényi orders: `1.1, 1.2, ..., 10.9, 11, 12, ..., 63, 128, 256,
/// 512, 1024`.
pub fn default_orders() -> Vec<f64> {
    let mut v: Vec<f64> = (1..100).map(|k| 1.0 + k as f64 / 10.0).collect();
    v.extend((11..64).map(|k| k as f64));
    v.extend([128.0, 256.0, 512.0, 1024.0]);
    v
}

fn logsumexp2(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

fn log_binom(n: f64, k: f64) -> f64 {
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

/// log(erfc(x)), accurate in the far right tail where erfc underflows.
fn log_erfc(x: f64) -> f64 {
    if x < 20.0 {
        return libm::erfc(x).ln();
    }
    let x2 = x * x;
    -0.5 * std::f64::consts::PI.ln() - x.ln() - x2 - 0.5 / x2 + 0.625 / (x2 * x2)
        - 37.0 / 24.0 / x2.powi(3)
        + 353.0 / 64.0 / x2.powi(4)
}

fn log_a_integer(q: f64, sigma: f64, alpha: u64) -> f64 {
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let mut total = f64::NEG_INFINITY;
    for i in 0..=alpha {
        let fi = i as f64;
        let term = log_binom(alpha as f64, fi)
            + fi * lq
            + (alpha as f64 - fi) * l1q
            + (fi * fi - fi) / (2.0 * sigma * sigma);
        total = logsumexp2(total, term);
    }
    total
}

fn log_a_fractional(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut lower, mut upper) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let root2s = std::f64::consts::SQRT_2 * sigma;
    let s2 = 2.0 * sigma * sigma;
    let mut i = 0.0f64;
    loop {
        let j = alpha - i;
        let lc = log_binom(alpha, i);
        let t0 =
            lc + i * lq + j * l1q + (i * i - i) / s2 + 0.5f64.ln() + log_erfc((i - z0) / root2s);
        let t1 =
            lc + j * lq + i * l1q + (j * j - j) / s2 + 0.5f64.ln() + log_erfc((z0 - j) / root2s);
        lower = logsumexp2(lower, t0);
        upper = logsumexp2(upper, t1);
        i += 1.0;
        if t0.max(t1) < -30.0 {
            break;
        }
    }
    logsumexp2(lower, upper)
}

fn rdp_one(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 || alpha.is_infinite() {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    if alpha.fract() == 0.0 {
        log_a_integer(q, sigma, alpha as u64) / (alpha - 1.0)
    } else {
        log_a_fractional(q, sigma, alpha) / (alpha - 1.0)
    }
}

fn check_q_sigma(op: &str, q: f64, sigma: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&q) {
        return Err(Error::value(
            op,
            format!("sampling rate q must be in [0, 1], got {q}"),
        ));
    }
    if !sigma.is_finite() || sigma < 0.0 {
        return Err(Error::value(
            op,
            format!("noise_multiplier must be a finite number >= 0, got {sigma}"),
        ));
    }
    Ok(())
}

/// RDP at each of `orders` of `steps` compositions of the Gaussian mechanism with noise
/// multiplier `sigma` on a Poisson sample of rate `q`.
///
/// ```
/// use deepseek::privacy::rdp::{compute_rdp, default_orders, rdp_to_epsilon};
/// let orders = default_orders();
/// let rdp = compute_rdp(256.0 / 60000.0, 1.1, 14062, &orders)?;
/// let (eps, _order) = rdp_to_epsilon(&orders, &rdp, 1e-5)?;
/// assert!((eps - 2.59656).abs() < 1e-5); // dp-accounting's RdpAccountant
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn compute_rdp(q: f64, sigma: f64, steps: u64, orders: &[f64]) -> Result<Vec<f64>> {
    check_q_sigma("compute_rdp", q, sigma)?;
    for &a in orders {
        if a.is_nan() || a < 1.0 {
            return Err(Error::value(
                "compute_rdp",
                format!("Rényi orders must be >= 1, got {a}"),
            ));
        }
    }
    Ok(orders
        .iter()
        .map(|&a| steps as f64 * rdp_one(q, sigma, a))
        .collect())
}

/// `(ε, best order)` from RDP values at `orders`, by the conversion dp-accounting's
/// `compute_epsilon` uses. `delta` must be in (0, 1).
pub fn rdp_to_epsilon(orders: &[f64], rdp: &[f64], delta: f64) -> Result<(f64, f64)> {
    check_delta("rdp_to_epsilon", delta)?;
    if orders.len() != rdp.len() || orders.is_empty() {
        return Err(Error::value(
            "rdp_to_epsilon",
            format!(
                "orders ({}) and rdp ({}) must be non-empty and of the same length",
                orders.len(),
                rdp.len()
            ),
        ));
    }
    let (mut best, mut best_order) = (f64::INFINITY, orders[0]);
    for (&a, &r) in orders.iter().zip(rdp) {
        let eps = if r < 0.0 || delta * delta + (-r).exp_m1() > 0.0 {
            0.0 // the KL bound: δ >= sqrt(1 - e^-KL)
        } else if a > 1.01 {
            r + (-1.0 / a).ln_1p() - (delta * a).ln() / (a - 1.0)
        } else {
            f64::INFINITY
        };
        if eps < best {
            (best, best_order) = (eps, a);
        }
    }
    Ok((best.max(0.0), best_order))
}

pub(crate) fn check_delta(op: &str, delta: f64) -> Result<()> {
    if !(delta > 0.0 && delta < 1.0) {
        return Err(Error::value(
            op,
            format!("delta must be in (0, 1), got {delta}"),
        ));
    }
    Ok(())
}

/// ε at `delta` after `steps` steps of DP-SGD with noise multiplier `sigma` and sampling
/// rate `q`, at dp-accounting's default orders.
pub fn epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> Result<f64> {
    check_delta("epsilon", delta)?;
    if steps == 0 {
        return Ok(0.0);
    }
    let orders = default_orders();
    Ok(rdp_to_epsilon(&orders, &compute_rdp(q, sigma, steps, &orders)?, delta)?.0)
}

/// Records DP-SGD steps and reports ε (Opacus' `RDPAccountant`): consecutive steps with
/// the same `(σ, q)` are kept as one entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RdpAccountant {
    /// `(noise_multiplier, sample_rate, steps)` entries.
    pub history: Vec<(f64, f64, u64)>,
}

impl RdpAccountant {
    /// An accountant with no steps.
    pub fn new() -> RdpAccountant {
        RdpAccountant::default()
    }
    /// Records `n` steps at noise multiplier `sigma` and sampling rate `q`.
    pub fn step_n(&mut self, sigma: f64, q: f64, n: u64) -> Result<()> {
        check_q_sigma("RdpAccountant::step", q, sigma)?;
        match self.history.last_mut() {
            Some(h) if h.0 == sigma && h.1 == q => h.2 += n,
            _ => self.history.push((sigma, q, n)),
        }
        Ok(())
    }
    /// Steps recorded.
    pub fn steps(&self) -> u64 {
        self.history.iter().map(|h| h.2).sum()
    }
    /// `(ε, best order)` at `delta` for the steps recorded.
    pub fn get_privacy_spent(&self, delta: f64) -> Result<(f64, f64)> {
        check_delta("RdpAccountant::get_epsilon", delta)?;
        let orders = default_orders();
        if self.history.is_empty() {
            return Ok((0.0, orders[0]));
        }
        let mut total = vec![0.0; orders.len()];
        for &(s, q, n) in &self.history {
            for (t, r) in total.iter_mut().zip(compute_rdp(q, s, n, &orders)?) {
                *t += r;
            }
        }
        rdp_to_epsilon(&orders, &total, delta)
    }
    /// ε at `delta` for the steps recorded.
    pub fn get_epsilon(&self, delta: f64) -> Result<f64> {
        Ok(self.get_privacy_spent(delta)?.0)
    }
}

/// The smallest noise multiplier σ (within `epsilon_tolerance` in ε) for which `steps`
/// Poisson-sampled steps at rate `q` stay within (`target_epsilon`, `delta`): Opacus'
/// search (double σ from 10 until the target is met, then bisect), as the Python
/// `deepseek.privacy.get_noise_multiplier`. Errors when even σ = 1024 cannot reach the
/// target.
///
/// ```
/// use deepseek::privacy::rdp::{epsilon, get_noise_multiplier};
/// let q = 256.0 / 60000.0;
/// let sigma = get_noise_multiplier(3.0, 1e-5, q, 14062, 0.01)?;
/// let eps = epsilon(q, sigma, 14062, 1e-5)?;
/// assert!(eps <= 3.0 && eps > 2.99);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn get_noise_multiplier(
    target_epsilon: f64,
    delta: f64,
    q: f64,
    steps: u64,
    epsilon_tolerance: f64,
) -> Result<f64> {
    let op = "get_noise_multiplier";
    check_delta(op, delta)?;
    if !(q > 0.0 && q <= 1.0) {
        return Err(Error::value(
            op,
            format!("sample rate must be in (0, 1], got {q}"),
        ));
    }
    if !(target_epsilon > 0.0 && target_epsilon.is_finite()) {
        return Err(Error::value(
            op,
            format!("target epsilon must be a finite number > 0, got {target_epsilon}"),
        ));
    }
    if !(epsilon_tolerance > 0.0 && epsilon_tolerance.is_finite()) {
        return Err(Error::value(
            op,
            format!("epsilon tolerance must be > 0, got {epsilon_tolerance}"),
        ));
    }
    if steps == 0 {
        return Err(Error::value(op, "the number of steps must be at least 1"));
    }
    const SIGMA_MAX: f64 = 1024.0;
    let (mut lo, mut hi) = (0.0, 10.0);
    let mut eps_hi = epsilon(q, hi, steps, delta)?;
    while eps_hi > target_epsilon {
        if hi >= SIGMA_MAX {
            return Err(Error::value(
                op,
                format!(
                    "target ε = {target_epsilon} at δ = {delta} cannot be reached with {steps} steps at sample rate {q}: even noise multiplier {hi} gives ε = {eps_hi:.4}; train for fewer steps, sample less, or raise the target"
                ),
            ));
        }
        (lo, hi) = (hi, 2.0 * hi);
        eps_hi = epsilon(q, hi, steps, delta)?;
    }
    while target_epsilon - eps_hi > epsilon_tolerance {
        let mid = (lo + hi) / 2.0;
        let eps = epsilon(q, mid, steps, delta)?;
        if eps < target_epsilon {
            (hi, eps_hi) = (mid, eps);
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

//! The tree-structured Parzen estimator, univariate, after Optuna's `TPESampler` defaults.

use super::{draw_uniform, seed_from_time, Context, Sampler};
use crate::tune::rng::Rng;
use crate::tune::space::Distribution;
use crate::tune::trial::{FrozenTrial, TrialState};

/// TPE: splits the finished trials into the best `gamma(n)` ("below") and the rest,
/// models each parameter's density in both groups with Parzen estimators, and picks, among
/// `n_ei_candidates` draws from the good density l(x), the one maximising l(x)/g(x).
#[derive(Debug, Clone)]
pub struct TpeSampler {
    seed: u64,
    /// Random trials before the model is used (default 10).
    pub n_startup_trials: usize,
    /// Candidates drawn from l(x) per parameter (default 24).
    pub n_ei_candidates: usize,
    /// Weight of the prior kernel (default 1.0).
    pub prior_weight: f64,
}

impl TpeSampler {
    /// A TPE sampler with Optuna's defaults; `None` seeds from the clock.
    pub fn new(seed: Option<u64>) -> TpeSampler {
        TpeSampler {
            seed: seed.unwrap_or_else(seed_from_time),
            n_startup_trials: 10,
            n_ei_candidates: 24,
            prior_weight: 1.0,
        }
    }
}

/// Optuna's default `gamma`: the number of "good" trials among `n`.
fn gamma(n: usize) -> usize {
    (n.div_ceil(10)).min(25)
}

/// Optuna's default weights: flat for the newest 25 observations, a ramp for older ones.
fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let m = n - 25;
    let mut w: Vec<f64> = (0..m)
        .map(|i| {
            let a = 1.0 / n as f64;
            if m == 1 {
                a
            } else {
                a + (1.0 - a) * i as f64 / (m - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// Φ, the standard normal CDF.
pub(crate) fn norm_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// A mixture of truncated normals on `[lo, hi]` or of categorical kernels.
enum Parzen {
    Numeric {
        w: Vec<f64>,
        mu: Vec<f64>,
        sigma: Vec<f64>,
        lo: f64,
        hi: f64,
    },
    Categorical {
        w: Vec<f64>,
        probs: Vec<Vec<f64>>,
    },
}

impl Parzen {
    /// `obs` in the modelling space (choice indices for categorical), chronological.
    fn new(obs: &[f64], dist: &Distribution, prior_weight: f64) -> Parzen {
        let mut w = default_weights(obs.len());
        w.push(prior_weight);
        let total: f64 = w.iter().sum();
        w.iter_mut().for_each(|x| *x /= total);
        if let Distribution::Categorical { choices } = dist {
            let k = choices.len();
            let n_kernels = obs.len() + 1;
            let mut probs = Vec::with_capacity(n_kernels);
            for i in 0..n_kernels {
                let mut row = vec![prior_weight / n_kernels as f64; k];
                if let Some(&o) = obs.get(i) {
                    row[o as usize] += 1.0;
                }
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|x| *x /= s);
                probs.push(row);
            }
            return Parzen::Categorical { w, probs };
        }
        let (lo, hi) = dist.model_bounds();
        let prior_mu = 0.5 * (lo + hi);
        let mut mus: Vec<f64> = obs.to_vec();
        mus.push(prior_mu);
        let mut order: Vec<usize> = (0..mus.len()).collect();
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        let mut ends = Vec::with_capacity(mus.len() + 2);
        ends.push(lo);
        ends.extend(order.iter().map(|&i| mus[i]));
        ends.push(hi);
        let m = ends.len();
        let mut sorted_sig: Vec<f64> = (1..m - 1)
            .map(|i| (ends[i] - ends[i - 1]).max(ends[i + 1] - ends[i]))
            .collect();
        if m >= 4 {
            // consider_endpoints=False
            sorted_sig[0] = ends[2] - ends[1];
            let l = sorted_sig.len();
            sorted_sig[l - 1] = ends[m - 2] - ends[m - 3];
        }
        let mut sigma = vec![0.0; mus.len()];
        for (rank, &i) in order.iter().enumerate() {
            sigma[i] = sorted_sig[rank];
        }
        let range = hi - lo;
        let minsigma = range / (100f64).min(1.0 + mus.len() as f64);
        sigma.iter_mut().for_each(|s| *s = s.clamp(minsigma, range));
        let last = sigma.len() - 1;
        sigma[last] = range;
        Parzen::Numeric {
            w,
            mu: mus,
            sigma,
            lo,
            hi,
        }
    }

    fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Parzen::Categorical { w, probs } => {
                let i = rng.weighted(w);
                rng.weighted(&probs[i]) as f64
            }
            Parzen::Numeric {
                w,
                mu,
                sigma,
                lo,
                hi,
            } => {
                let i = rng.weighted(w);
                // Inverse-CDF draw from the truncated normal.
                let (a, b) = (
                    norm_cdf((lo - mu[i]) / sigma[i]),
                    norm_cdf((hi - mu[i]) / sigma[i]),
                );
                let u = a + (b - a) * rng.uniform();
                let x = mu[i] + sigma[i] * inv_norm_cdf(u);
                if x.is_finite() {
                    x.clamp(*lo, *hi)
                } else {
                    rng.range(*lo, *hi)
                }
            }
        }
    }

    fn log_pdf(&self, x: f64) -> f64 {
        let terms: Vec<f64> = match self {
            Parzen::Categorical { w, probs } => w
                .iter()
                .zip(probs)
                .map(|(wi, p)| wi.ln() + p[x as usize].ln())
                .collect(),
            Parzen::Numeric {
                w,
                mu,
                sigma,
                lo,
                hi,
            } => (0..mu.len())
                .map(|i| {
                    let z = (x - mu[i]) / sigma[i];
                    let mass =
                        norm_cdf((hi - mu[i]) / sigma[i]) - norm_cdf((lo - mu[i]) / sigma[i]);
                    w[i].ln()
                        - 0.5 * z * z
                        - (sigma[i] * (2.0 * std::f64::consts::PI).sqrt()).ln()
                        - mass.max(1e-300).ln()
                })
                .collect(),
        };
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
    }
}

/// Φ⁻¹ (Acklam's rational approximation with one Newton step; relative error ~1e-15).
pub(crate) fn inv_norm_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let x = if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - 0.02425 {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One Newton step on Φ(x) = p.
    let e = norm_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Trials ranked best first: complete ones by value, then pruned ones (furthest step first,
/// then by their last value), as Optuna splits them.
fn ranked<'a>(ctx: &'a Context<'_>) -> Vec<&'a FrozenTrial> {
    let dir = ctx.direction;
    let mut done: Vec<&FrozenTrial> = ctx.complete().collect();
    done.sort_by(|a, b| {
        dir.loss(a.value.unwrap_or(f64::NAN))
            .total_cmp(&dir.loss(b.value.unwrap_or(f64::NAN)))
    });
    let mut pruned: Vec<&FrozenTrial> = ctx
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Pruned)
        .collect();
    let key = |t: &FrozenTrial| match t.intermediate_values.iter().next_back() {
        Some((&s, &v)) => (-(s as f64), dir.loss(v)),
        None => (f64::INFINITY, f64::INFINITY),
    };
    pruned.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    done.extend(pruned);
    done
}

impl Sampler for TpeSampler {
    fn name(&self) -> &'static str {
        "tpe"
    }

    fn sample_independent(&self, ctx: &Context<'_>, name: &str, dist: &Distribution) -> f64 {
        let mut rng = Rng::derive(self.seed, ctx.number, name);
        if ctx.complete().count() < self.n_startup_trials {
            return draw_uniform(&mut rng, dist);
        }
        let all = ranked(ctx);
        let n_below = gamma(all.len());
        let mut below: Vec<&FrozenTrial> = all[..n_below].to_vec();
        let mut above: Vec<&FrozenTrial> = all[n_below..].to_vec();
        below.sort_by_key(|t| t.number);
        above.sort_by_key(|t| t.number);
        let obs = |ts: &[&FrozenTrial]| -> Vec<f64> {
            ts.iter()
                .filter(|t| t.distributions.get(name) == Some(dist))
                .map(|t| dist.to_model(t.params[name]))
                .collect()
        };
        let l = Parzen::new(&obs(&below), dist, self.prior_weight);
        let g = Parzen::new(&obs(&above), dist, self.prior_weight);
        let mut best = (f64::NEG_INFINITY, f64::NAN);
        for _ in 0..self.n_ei_candidates.max(1) {
            let x = l.sample(&mut rng);
            let score = l.log_pdf(x) - g.log_pdf(x);
            if score > best.0 || best.1.is_nan() {
                best = (score, x);
            }
        }
        dist.from_model(best.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_cdf_round_trips() {
        for &p in &[1e-10, 0.001, 0.1, 0.5, 0.77, 0.999] {
            let x = inv_norm_cdf(p);
            assert!((norm_cdf(x) - p).abs() < 1e-9 * p.max(1e-3), "{p} {x}");
        }
    }

    #[test]
    fn gamma_and_weights_follow_optuna() {
        assert_eq!(gamma(10), 1);
        assert_eq!(gamma(11), 2);
        assert_eq!(gamma(1000), 25);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12 && (w[4] - 1.0).abs() < 1e-12 && w[29] == 1.0);
    }
}

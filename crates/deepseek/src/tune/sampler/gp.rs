//! Gaussian-process expected improvement.

use super::gp_model::{log_ei, Gp};
use super::{draw_uniform, intersection_space, seed_from_time, Context, Sampler};
use crate::tune::rng::Rng;
use crate::tune::space::Distribution;
use std::collections::BTreeMap;

/// GP-EI: after `n_startup_trials` random trials, fits a Gaussian process (Matérn-5/2,
/// per-dimension length scales by marginal likelihood) to the complete trials' values over
/// the parameters they all share, and picks the point of highest expected improvement among
/// `n_candidates` random points and perturbations of the best trials, refined locally.
/// Parameters outside the shared space (e.g. conditional ones) are drawn uniformly.
#[derive(Debug, Clone)]
pub struct GpSampler {
    seed: u64,
    /// Random trials before the model is used (default 10).
    pub n_startup_trials: usize,
    /// Random candidates scored per trial (default 2000).
    pub n_candidates: usize,
    /// Local refinement steps for each of the best candidates (default 60).
    pub n_local_steps: usize,
}

impl GpSampler {
    /// A GP-EI sampler with the defaults; `None` seeds from the clock.
    pub fn new(seed: Option<u64>) -> GpSampler {
        GpSampler {
            seed: seed.unwrap_or_else(seed_from_time),
            n_startup_trials: 10,
            n_candidates: 2000,
            n_local_steps: 60,
        }
    }
}

/// Maps values to the unit cube (categorical: the choice index) and back, on the grid.
struct Encoder<'a> {
    dims: Vec<(&'a String, &'a Distribution)>,
}

impl Encoder<'_> {
    fn encode(&self, name_vals: &BTreeMap<String, f64>) -> Vec<f64> {
        self.dims
            .iter()
            .map(|(k, d)| {
                let v = name_vals[*k];
                if d.is_categorical() {
                    v
                } else {
                    let (lo, hi) = d.model_bounds();
                    ((d.to_model(v) - lo) / (hi - lo)).clamp(0.0, 1.0)
                }
            })
            .collect()
    }

    /// The value of each coordinate (on its grid).
    fn decode(&self, p: &[f64]) -> Vec<f64> {
        self.dims
            .iter()
            .zip(p)
            .map(|((_, d), &u)| {
                if d.is_categorical() {
                    u
                } else {
                    let (lo, hi) = d.model_bounds();
                    d.from_model(lo + u * (hi - lo))
                }
            })
            .collect()
    }

    /// Moves a point onto the values it stands for (grid points of ints and steps).
    fn snap(&self, p: &mut [f64]) {
        let vals = self.decode(p);
        for (i, ((_, d), v)) in self.dims.iter().zip(vals).enumerate() {
            if !d.is_categorical() {
                let (lo, hi) = d.model_bounds();
                p[i] = ((d.to_model(v) - lo) / (hi - lo)).clamp(0.0, 1.0);
            }
        }
    }
}

impl Sampler for GpSampler {
    fn name(&self) -> &'static str {
        "gp"
    }

    fn infer_relative_space(&self, ctx: &Context<'_>) -> BTreeMap<String, Distribution> {
        intersection_space(ctx)
    }

    fn sample_relative(
        &self,
        ctx: &Context<'_>,
        space: &BTreeMap<String, Distribution>,
    ) -> BTreeMap<String, f64> {
        let done: Vec<_> = ctx
            .complete()
            .filter(|t| t.value.is_some_and(f64::is_finite))
            .collect();
        if space.is_empty() || done.len() < self.n_startup_trials.max(2) {
            return BTreeMap::new();
        }
        let enc = Encoder {
            dims: space.iter().collect(),
        };
        let cat: Vec<bool> = enc.dims.iter().map(|(_, d)| d.is_categorical()).collect();
        let x: Vec<Vec<f64>> = done.iter().map(|t| enc.encode(&t.params)).collect();
        let raw: Vec<f64> = done
            .iter()
            .map(|t| ctx.direction.loss(t.value.unwrap()))
            .collect();
        // Two output models, chosen by marginal likelihood (with the transform's Jacobian):
        // the standardized values, and the standardized log of (value - min + δ), which
        // suits objectives spanning orders of magnitude.
        let mut fits: Vec<(f64, Gp, Vec<f64>)> = Vec::new();
        for warp in [false, true] {
            let (g, log_jac) = warped(&raw, warp);
            let (y, log_sd) = standardize(&g);
            if let Some(gp) = Gp::fit_ml(&x, &y, &cat) {
                let score = gp.lml + log_jac - raw.len() as f64 * log_sd;
                fits.push((score, gp, y));
            }
        }
        let Some((_, gp, y)) = fits.into_iter().max_by(|a, b| a.0.total_cmp(&b.0)) else {
            return BTreeMap::new();
        };
        let best_y = y.iter().cloned().fold(f64::INFINITY, f64::min);
        let score = |p: &[f64]| {
            let (m, s) = gp.predict(p);
            log_ei(m, s, best_y)
        };
        let mut rng = Rng::derive(self.seed, ctx.number, "gp");
        let random_point = |rng: &mut Rng| -> Vec<f64> {
            let mut p: Vec<f64> = enc
                .dims
                .iter()
                .map(|(_, d)| match d {
                    Distribution::Categorical { .. } => draw_uniform(rng, d),
                    _ => rng.uniform(),
                })
                .collect();
            enc.snap(&mut p);
            p
        };
        let perturb = |rng: &mut Rng, p: &[f64], scale: f64| -> Vec<f64> {
            let d = p.len();
            let mut q = p.to_vec();
            for ((_, dist), v) in enc.dims.iter().zip(q.iter_mut()) {
                if let Distribution::Categorical { choices } = dist {
                    if rng.uniform() < 1.0 / d as f64 {
                        *v = rng.below(choices.len()) as f64;
                    }
                } else {
                    *v = (*v + scale * rng.normal()).clamp(0.0, 1.0);
                }
            }
            enc.snap(&mut q);
            q
        };
        // Candidates: uniform points, and perturbations of the best trials so far.
        let mut cands: Vec<(f64, Vec<f64>)> = Vec::with_capacity(self.n_candidates + 200);
        for _ in 0..self.n_candidates {
            let p = random_point(&mut rng);
            cands.push((score(&p), p));
        }
        let mut order: Vec<usize> = (0..y.len()).collect();
        order.sort_by(|&a, &b| y[a].total_cmp(&y[b]));
        for &i in order.iter().take(5) {
            for k in 0..40 {
                let p = perturb(&mut rng, &x[i], [0.2, 0.05, 0.01][k % 3]);
                cands.push((score(&p), p));
            }
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Local refinement of the best few: random steps with a shrinking scale.
        let mut best = cands[0].clone();
        for (s0, p0) in cands.into_iter().take(5) {
            let (mut s, mut p) = (s0, p0);
            for step in 0..self.n_local_steps {
                let scale = 0.1 * (0.002f64 / 0.1).powf(step as f64 / self.n_local_steps as f64);
                let q = perturb(&mut rng, &p, scale);
                let sq = score(&q);
                if sq > s {
                    s = sq;
                    p = q;
                }
            }
            if s > best.0 {
                best = (s, p);
            }
        }
        if !best.0.is_finite() {
            return BTreeMap::new();
        }
        enc.dims
            .iter()
            .zip(enc.decode(&best.1))
            .map(|((k, _), v)| ((*k).clone(), v))
            .collect()
    }

    fn sample_independent(&self, ctx: &Context<'_>, name: &str, dist: &Distribution) -> f64 {
        draw_uniform(&mut Rng::derive(self.seed, ctx.number, name), dist)
    }
}

/// The values, or `ln(v - min + δ)` with δ 1% of the spread between the minimum and the
/// median (and the log-Jacobian of that map), for the output model.
fn warped(raw: &[f64], warp: bool) -> (Vec<f64>, f64) {
    if !warp {
        return (raw.to_vec(), 0.0);
    }
    let mut s = raw.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let (min, med) = (s[0], s[s.len() / 2]);
    let delta = (0.01 * (med - min)).max(1e-12 * (1.0 + min.abs()));
    let g: Vec<f64> = raw.iter().map(|v| (v - min + delta).ln()).collect();
    let jac = raw.iter().map(|v| -(v - min + delta).ln()).sum();
    (g, jac)
}

/// Standardized values and the log of the standard deviation divided out.
fn standardize(v: &[f64]) -> (Vec<f64>, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let sd = if sd > 0.0 { sd } else { 1.0 };
    (v.iter().map(|x| (x - mean) / sd).collect(), sd.ln())
}

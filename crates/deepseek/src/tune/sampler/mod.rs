//! Samplers: how each trial's parameters are chosen from the finished trials.
//!
//! - [`RandomSampler`]: independent uniform draws (in the log space for log scales).
//! - [`TpeSampler`]: the tree-structured Parzen estimator (Bergstra et al. 2011), with
//!   Optuna's defaults (univariate, `gamma(n) = min(ceil(0.1 n), 25)`, 10 random start-up
//!   trials, 24 candidates drawn from the good-trial density, a prior kernel, magic clip).
//! - [`GpSampler`]: Gaussian-process expected improvement: a Matérn-5/2 kernel with one
//!   length scale per dimension (Hamming distance for categorical parameters) fitted by
//!   marginal likelihood, EI maximised over random candidates plus local refinement.
//!
//! A sampler sees the trials so far through a [`Context`]. Parameters every complete trial
//! shares (the *relative* space) may be sampled jointly when a trial starts
//! ([`Sampler::sample_relative`]); any other parameter is sampled on its own when first asked
//! for ([`Sampler::sample_independent`]). All randomness comes from
//! [`Rng::derive`](super::rng::Rng::derive)`(seed, trial number, parameter)`, so a seeded
//! study repeats exactly.

mod gp;
mod gp_model;
mod tpe;

pub use gp::GpSampler;
pub use tpe::TpeSampler;

use super::rng::Rng;
use super::space::Distribution;
use super::trial::{Direction, FrozenTrial, TrialState};
use std::collections::BTreeMap;

/// What a sampler sees when it chooses a trial's parameters.
pub struct Context<'a> {
    /// All trials of the study so far (the running ones included).
    pub trials: &'a [FrozenTrial],
    /// The study's direction.
    pub direction: Direction,
    /// The number of the trial being sampled.
    pub number: u64,
}

impl<'a> Context<'a> {
    /// The complete trials.
    pub fn complete(&self) -> impl Iterator<Item = &'a FrozenTrial> {
        self.trials
            .iter()
            .filter(|t| t.state == TrialState::Complete)
    }
}

/// Chooses parameter values. Values are numbers (choice indices for categorical
/// parameters); they must lie in their distribution.
pub trait Sampler: Send + Sync {
    /// The sampler's name (`"random"`, `"tpe"`, `"gp"`).
    fn name(&self) -> &'static str;

    /// The parameters to sample jointly when a trial starts (default: none).
    fn infer_relative_space(&self, _ctx: &Context<'_>) -> BTreeMap<String, Distribution> {
        BTreeMap::new()
    }

    /// Joint values for (part of) `space`; parameters left out are sampled independently.
    fn sample_relative(
        &self,
        _ctx: &Context<'_>,
        _space: &BTreeMap<String, Distribution>,
    ) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }

    /// One parameter on its own.
    fn sample_independent(&self, ctx: &Context<'_>, name: &str, dist: &Distribution) -> f64;
}

/// Parameters present, with the same multi-valued distribution, in every complete trial
/// (Optuna's intersection search space).
pub fn intersection_space(ctx: &Context<'_>) -> BTreeMap<String, Distribution> {
    let mut out: Option<BTreeMap<String, Distribution>> = None;
    for t in ctx.complete() {
        out = Some(match out {
            None => t.distributions.clone(),
            Some(s) => s
                .into_iter()
                .filter(|(k, d)| t.distributions.get(k) == Some(d))
                .collect(),
        });
    }
    let mut s = out.unwrap_or_default();
    s.retain(|_, d| {
        let (lo, hi) = d.model_bounds();
        match d {
            Distribution::Categorical { choices } => choices.len() > 1,
            _ => d.from_model(lo) != d.from_model(hi),
        }
    });
    s
}

/// A uniform draw from a distribution (in its modelling space).
pub(crate) fn draw_uniform(rng: &mut Rng, dist: &Distribution) -> f64 {
    match dist {
        Distribution::Categorical { choices } => rng.below(choices.len()) as f64,
        _ => {
            let (lo, hi) = dist.model_bounds();
            dist.from_model(rng.range(lo, hi))
        }
    }
}

/// Independent uniform sampling.
#[derive(Debug, Clone)]
pub struct RandomSampler {
    seed: u64,
}

/// A seed from the clock, for samplers created without one.
pub fn seed_from_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl RandomSampler {
    /// A random sampler; `None` seeds from the clock.
    pub fn new(seed: Option<u64>) -> RandomSampler {
        RandomSampler {
            seed: seed.unwrap_or_else(seed_from_time),
        }
    }
}

impl Sampler for RandomSampler {
    fn name(&self) -> &'static str {
        "random"
    }

    fn sample_independent(&self, ctx: &Context<'_>, name: &str, dist: &Distribution) -> f64 {
        draw_uniform(&mut Rng::derive(self.seed, ctx.number, name), dist)
    }
}

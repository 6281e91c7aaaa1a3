//! AutoHyper: Bayesian hyper-parameter search.
//!
//! A [`Study`] runs an objective on trials; each [`Trial`] draws its parameters from search
//! spaces ([`Distribution`]: float, log-float, int, log-int, categorical; [`SearchSpace`]
//! adds conditional parameters) through a [`Sampler`] — [`TpeSampler`] (tree-structured
//! Parzen estimator), [`GpSampler`] (Gaussian-process expected improvement) or
//! [`RandomSampler`] — and may report intermediate values so a [`Pruner`]
//! ([`MedianPruner`], [`SuccessiveHalvingPruner`]) stops poor trials early. The API follows
//! Optuna's; Python has it as `deepseek.autohyper`, the command line as `deepseek tune`.
//!
//! ```
//! use deepseek::tune::{Direction, GpSampler, NopPruner, Study};
//! let study = Study::new(Direction::Minimize, Box::new(GpSampler::new(Some(0))),
//!                        Box::new(NopPruner), None).unwrap();
//! study.optimize(|t| {
//!     let x = t.suggest_float("x", -5.0, 5.0, false)?;
//!     Ok((x - 2.0).powi(2))
//! }, Some(20), None).unwrap();
//! assert!(study.best_value().unwrap() < 0.1);
//! ```
//!
//! With a storage path the study is written atomically after every finished trial and a
//! new `Study` on the same path resumes it. A failing objective is recorded as a failed
//! trial and the study goes on.

mod pruner;
pub mod report;
mod rng;
pub mod sampler;
mod space;
mod study;
mod trial;

pub use pruner::{MedianPruner, NopPruner, Pruner, SuccessiveHalvingPruner};
pub use rng::Rng;
pub use sampler::{Context, GpSampler, RandomSampler, Sampler, TpeSampler};
pub use space::{Condition, Distribution, Param, SearchSpace};
pub use study::{Outcome, Study, Trial};
pub use trial::{trials_to_json, Direction, FrozenTrial, TrialState};

/// A sampler by name: `"tpe"`, `"gp"` or `"random"`.
pub fn sampler_by_name(name: &str, seed: Option<u64>) -> crate::Result<Box<dyn Sampler>> {
    Ok(match name {
        "tpe" => Box::new(TpeSampler::new(seed)),
        "gp" => Box::new(GpSampler::new(seed)),
        "random" => Box::new(RandomSampler::new(seed)),
        _ => {
            return Err(crate::Error::Value {
                op: "autohyper: sampler".into(),
                msg: format!("unknown sampler {name:?} (expected tpe, gp or random)"),
            })
        }
    })
}

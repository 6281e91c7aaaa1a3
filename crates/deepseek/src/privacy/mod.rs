//! Differentially private training in Rust: DP-SGD for the main job's model.
//!
//! * [`rdp`]: the Rényi-DP accountant of the Poisson-subsampled Gaussian mechanism (equal to
//!   Google's `dp-accounting` `RdpAccountant` and to the Python `deepseek.privacy`), and
//!   [`get_noise_multiplier`] to pick σ for a target ε;
//! * [`per_sample_grads`]: per-sample gradients of the [`crate::train::TextGenerator`]
//!   (Embedding -> LSTM -> Linear) from one backward pass;
//! * [`clip_and_noise`]: per-sample clipping, Gaussian noise, averaging;
//! * [`PoissonTextBatches`]: Poisson sampling of text windows;
//! * [`DpTextGenerator`]: all of it as one [`crate::train::TrainerBuilder::gradient_fn`],
//!   which is what `deepseek train --dp-epsilon E` runs.
//!
//! ```no_run
//! use deepseek::prelude::*;
//! use deepseek::privacy::{DpSgdConfig, DpTextGenerator, PoissonTextBatches, rdp};
//! use deepseek::nn::Module;
//! use deepseek::train::{TextGenerator, TextGeneratorConfig, Trainer};
//! use deepseek::optim::{Adam, AdamConfig};
//! let ids: Vec<i64> = (0..100_000).map(|i| (i * 7 % 13) as i64).collect();
//! let data = PoissonTextBatches::new(ids, 64, 32, 0)?;
//! let (steps, delta) = (500, 1e-5);
//! let sigma = rdp::get_noise_multiplier(3.0, delta, data.sample_rate(), steps, 0.01)?;
//! let model = TextGenerator::new(TextGeneratorConfig::new(13, 64))?;
//! let opt = Adam::new(model.parameters(), AdamConfig::default())?;
//! let dp = DpTextGenerator::new(DpSgdConfig {
//!     noise_multiplier: sigma,
//!     max_grad_norm: 1.0,
//!     expected_batch_size: 32.0,
//! })?;
//! let mut trainer = Trainer::builder(model)
//!     .optimizer(Box::new(opt))
//!     .loss(|m: &TextGenerator, b: &[Tensor]| m.loss(b))
//!     .gradient_fn(move |m: &TextGenerator, b: &[Tensor]| dp.step(m, b))
//!     .max_steps(steps)
//!     .build()?;
//! let report = trainer.fit(&data, None)?;
//! let eps = rdp::epsilon(data.sample_rate(), sigma, report.steps, delta)?;
//! println!("ε = {eps:.3} at δ = {delta}");
//! # Ok::<(), deepseek::Error>(())
//! ```

mod dp_sgd;
mod poisson;
pub mod rdp;
mod textgen;

pub use dp_sgd::{clip_and_noise, ClipStats, DpSgdConfig};
pub use poisson::PoissonTextBatches;
pub use rdp::{get_noise_multiplier, RdpAccountant};
pub use textgen::{per_sample_grads, PerSampleGrads};

use crate::train::TextGenerator;
use crate::{Error, Result, Tensor};

/// DP-SGD's gradient step for a [`TextGenerator`]: per-sample gradients, clipping and
/// noise, set as the parameters' `.grad()`; the optimizer then steps as usual.
#[derive(Debug, Clone)]
pub struct DpTextGenerator {
    /// Noise, clipping and expected batch size.
    pub config: DpSgdConfig,
}

impl DpTextGenerator {
    /// Checks `config` (σ > 0, C > 0, expected batch > 0).
    pub fn new(config: DpSgdConfig) -> Result<DpTextGenerator> {
        config.validate()?;
        Ok(DpTextGenerator { config })
    }
    /// One batch `[ids, targets]`: sets the DP-SGD gradient and returns the mean per-sample
    /// loss (`None` for an empty Poisson batch, which still gets its noise).
    pub fn step(&self, model: &TextGenerator, batch: &[Tensor]) -> Result<Option<f64>> {
        let [x, y] = batch else {
            return Err(Error::value(
                "DpTextGenerator::step",
                format!(
                    "expected a batch of [inputs, targets], got {} tensors",
                    batch.len()
                ),
            ));
        };
        let ps = per_sample_grads(model, x, y)?;
        clip_and_noise(&ps.params, &ps.grads, &self.config)?;
        Ok((x.shape()[0] > 0).then_some(ps.loss))
    }
}

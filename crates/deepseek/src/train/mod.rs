//! Training: the [`Trainer`] (a builder over a model, an optimizer and a loss closure),
//! callbacks, metrics, loss plots, checkpoints with exact resume, and the tutorials'
//! [`TextGenerator`].
//!
//! The trainer runs the usual loop — forward, backward, gradient clipping, optimizer step,
//! scheduler step — with gradient accumulation, validation every N steps, early stopping,
//! a progress bar, `metrics.jsonl`, a `loss.svg` loss curve and checkpoints every N steps.
//! A checkpoint holds the model, the optimizer, the scheduler, the data position and the
//! global RNG state, so a killed run resumed from it produces exactly the per-step losses
//! of an uninterrupted run with the same seed.
//!
//! ```
//! use deepseek::prelude::*;
//! use deepseek::data::{DataLoader, DataLoaderConfig, TensorDataset};
//! use deepseek::nn::{functional as F, Forward, Linear, Module};
//! use deepseek::optim::{Adam, AdamConfig};
//! use deepseek::train::Trainer;
//!
//! #[derive(deepseek::nn::Module)]
//! struct Net { fc: Linear }
//!
//! deepseek::manual_seed(0);
//! let x = Tensor::randn(&[64, 4], DType::F32)?;
//! let y = x.sum_dim(&[1], true)?; // learn the sum of the inputs
//! let loader = DataLoader::new(
//!     TensorDataset::new(vec![x, y])?,
//!     DataLoaderConfig { batch_size: 16, shuffle: true, ..Default::default() },
//! )?;
//! let net = Net { fc: Linear::new(4, 1, true)? };
//! let opt = Adam::new(net.parameters(), AdamConfig { lr: 0.05, ..Default::default() })?;
//! let mut trainer = Trainer::builder(net)
//!     .optimizer(Box::new(opt))
//!     .loss(|m: &Net, b: &[Tensor]| F::mse_loss(&m.fc.forward(&b[0])?, &b[1], "mean"))
//!     .gradient_accumulation_steps(2)
//!     .clip_grad_norm(1.0)
//!     .epochs(20)
//!     .progress(false)
//!     .build()?;
//! let report = trainer.fit(&loader, None)?;
//! assert_eq!(report.steps, 40); // 4 batches per epoch, 2 per step, 20 epochs
//! assert!(report.final_loss().unwrap() < report.train_losses[0].unwrap());
//! # Ok::<(), deepseek::Error>(())
//! ```
//!
//! With `.out_dir("runs/x")` the trainer writes `runs/x/metrics.jsonl`, `runs/x/loss.svg`
//! and (with `.checkpoint_every(n)`) `runs/x/checkpoints/step-<N>/`; `.resume(true)`
//! continues from the newest complete checkpoint there.

mod builder;
mod callback;
pub mod chargpt;
pub mod checkpoint;
mod metrics;
mod progress;
pub mod textgen;
mod trainer;

pub use builder::TrainerBuilder;
pub use callback::{Callback, Control, EarlyStopping, TrainerState};
pub use chargpt::{CharGpt, CharGptConfig, CHAR_GPT_MODEL_TYPE};
pub use checkpoint::{LoadedCheckpoint, TrainerCheckpoint};
pub use metrics::{plot_losses, read_metrics, MetricsLine};
pub use textgen::{load_text, SampleOptions, TextBatches, TextGenerator, TextGeneratorConfig};
pub use trainer::Trainer;

use crate::data::{DataLoader, Dataset};
use crate::{Result, Tensor};
use std::path::PathBuf;
use std::time::Duration;

/// Anything that yields the batches of an epoch in a reproducible order: the trainer's
/// view of a data loader. The batches of epoch `e` must depend only on `e` (and the
/// source's own seed), so that a resumed run sees the same data.
pub trait BatchSource {
    /// Batches per epoch (constant over epochs).
    fn batches_per_epoch(&self) -> usize;
    /// The batches of `epoch` from batch `skip` on.
    fn epoch_from(
        &self,
        epoch: u64,
        skip: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<Tensor>>> + '_>;
}

impl<D: Dataset + 'static> BatchSource for DataLoader<D> {
    fn batches_per_epoch(&self) -> usize {
        self.len()
    }
    fn epoch_from(
        &self,
        epoch: u64,
        skip: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<Tensor>>> + '_> {
        Box::new(DataLoader::epoch_from(self, epoch, skip))
    }
}

/// What the throughput figure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throughput {
    /// Samples per second (dim 0 of a batch's first tensor).
    Samples,
    /// Tokens per second (elements of a batch's first tensor, e.g. `B*T` token ids).
    Tokens,
}

impl Throughput {
    fn unit(self) -> &'static str {
        match self {
            Throughput::Samples => "samples/s",
            Throughput::Tokens => "tokens/s",
        }
    }
    fn count(self, batch: &[Tensor]) -> u64 {
        match batch.first() {
            None => 0,
            Some(t) => match self {
                Throughput::Samples => t.shape().first().copied().unwrap_or(1) as u64,
                Throughput::Tokens => t.numel() as u64,
            },
        }
    }
}

/// Where [`Trainer::fit`] starts from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Resume {
    /// From scratch. A run directory that already has checkpoints is an error unless
    /// `overwrite` is set.
    #[default]
    No,
    /// From the newest complete checkpoint in `<out>/checkpoints`, or from scratch when
    /// there is none.
    Latest,
    /// From this checkpoint directory (`.../step-<N>`); an error when it is missing.
    From(PathBuf),
}

/// The trainer's settings; see [`TrainerBuilder`] for each one.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerConfig {
    pub gradient_accumulation_steps: usize,
    pub clip_grad_norm: Option<f64>,
    pub epochs: Option<u64>,
    pub max_steps: Option<u64>,
    pub max_time: Option<Duration>,
    pub eval_every: Option<u64>,
    pub eval_max_batches: Option<usize>,
    pub log_every: u64,
    pub progress: bool,
    pub out_dir: Option<PathBuf>,
    pub checkpoint_every: Option<u64>,
    pub keep_last: usize,
    pub resume: Resume,
    pub overwrite: bool,
    pub early_stopping: Option<EarlyStopping>,
    pub skip_nonfinite: bool,
    pub fp16_enabled: bool,
    pub bf16: bool,
    pub throughput: Throughput,
    pub plot: bool,
    /// Check each checkpoint's `SHA256SUMS` when loading it (default true).
    pub verify_checksums: bool,
    /// Set from outside (a signal handler) to stop after the current step, with a
    /// checkpoint; see [`TrainerBuilder::stop_flag`].
    pub stop_flag: Option<StopFlag>,
    /// Log scalars (train/loss, train/lr, train/throughput, val/loss) as TensorBoard
    /// event files into this directory.
    pub tensorboard_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://<addr>/metrics` (`"0.0.0.0:9464"`).
    pub metrics_addr: Option<String>,
    /// Test hook: fail while writing the checkpoint of this step (a simulated crash).
    #[doc(hidden)]
    pub fail_checkpoint_at: Option<u64>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            gradient_accumulation_steps: 1,
            clip_grad_norm: None,
            epochs: None,
            max_steps: None,
            max_time: None,
            eval_every: None,
            eval_max_batches: None,
            log_every: 100,
            progress: true,
            out_dir: None,
            checkpoint_every: None,
            keep_last: 3,
            resume: Resume::No,
            overwrite: false,
            early_stopping: None,
            skip_nonfinite: false,
            fp16_enabled: false,
            bf16: false,
            throughput: Throughput::Samples,
            plot: true,
            verify_checksums: true,
            stop_flag: None,
            tensorboard_dir: None,
            metrics_addr: None,
            fail_checkpoint_at: None,
        }
    }
}

/// Why [`Trainer::fit`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `max_steps` reached.
    MaxSteps,
    /// `epochs` completed.
    Epochs,
    /// The `max_time` budget ran out.
    TimeBudget,
    /// Early stopping on the validation loss.
    EarlyStopping,
    /// A callback asked to stop.
    Callback,
    /// The [`TrainerConfig::stop_flag`] was raised (Ctrl-C / SIGTERM in the CLI): the step
    /// in progress was finished and checkpointed; the final full validation is skipped.
    Interrupted,
}

/// A shared flag that asks a running [`Trainer::fit`] to stop after the step in progress
/// (for a signal handler: raising it is one atomic store).
#[derive(Debug, Clone, Default)]
pub struct StopFlag(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl StopFlag {
    /// A new, lowered flag.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }
    /// Asks the trainer to stop.
    pub fn raise(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    /// True once raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl PartialEq for StopFlag {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The outcome of [`Trainer::fit`].
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Optimizer steps done in total (over resumes, skipped steps included).
    pub steps: u64,
    /// Steps done by this call.
    pub steps_this_run: u64,
    /// Why training stopped.
    pub stop_reason: StopReason,
    /// Loss of every step since the start of the run (`None` for skipped steps).
    pub train_losses: Vec<Option<f64>>,
    /// `(step, loss)` of every scheduled validation.
    pub val_losses: Vec<(u64, f64)>,
    /// The validation loss at the end, over the whole validation source (the last
    /// scheduled one when it was at the last step and covered everything, else one more
    /// validation).
    pub final_val_loss: Option<f64>,
    /// Steps skipped because of a non-finite loss or gradient norm.
    pub skipped_steps: u64,
    /// Seconds of training (over resumes).
    pub elapsed: f64,
    /// Samples or tokens per second in this call.
    pub throughput: f64,
    /// The checkpoint this call resumed from.
    pub resumed_from: Option<PathBuf>,
    /// The newest checkpoint written.
    pub last_checkpoint: Option<PathBuf>,
}

impl FitReport {
    /// Loss of the last step that was not skipped.
    pub fn final_loss(&self) -> Option<f64> {
        self.train_losses.iter().rev().find_map(|l| *l)
    }
    /// The best validation loss.
    pub fn best_val_loss(&self) -> Option<f64> {
        self.val_losses
            .iter()
            .map(|v| v.1)
            .chain(self.final_val_loss)
            .filter(|v| !v.is_nan())
            .reduce(f64::min)
    }
}

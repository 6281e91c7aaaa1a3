//! [`TrainerBuilder`]: every setting of a [`Trainer`], with its default.

use super::callback::{Callback, TrainerState};
use super::trainer::{GradFn, LossFn};
use super::{EarlyStopping, Resume, Throughput, Trainer, TrainerConfig};
use crate::nn::Module;
use crate::optim::{LrScheduler, Optimizer};
use crate::{Error, Result, Tensor};
use std::path::PathBuf;
use std::time::Duration;

/// Builds a [`Trainer`]: a model, an optimizer and a loss closure are required; every
/// other setting has a default.
pub struct TrainerBuilder<M: Module> {
    pub(super) model: M,
    pub(super) optimizer: Option<Box<dyn Optimizer>>,
    pub(super) scheduler: Option<Box<dyn LrScheduler>>,
    pub(super) loss_fn: Option<LossFn<M>>,
    pub(super) grad_fn: Option<GradFn<M>>,
    pub(super) config: TrainerConfig,
    pub(super) callbacks: Vec<Box<dyn Callback>>,
    pub(super) extra_files: Vec<(String, Vec<u8>)>,
    pub(super) profiler: Option<crate::profiler::Profiler>,
}

impl<M: Module> TrainerBuilder<M> {
    /// The optimizer, built over the model's parameters.
    pub fn optimizer(mut self, opt: Box<dyn Optimizer>) -> Self {
        self.optimizer = Some(opt);
        self
    }
    /// The loss: batch tensors in, a scalar loss out. It is also the validation metric
    /// (evaluated under `no_grad` with the model in eval mode).
    pub fn loss(mut self, f: impl Fn(&M, &[Tensor]) -> Result<Tensor> + 'static) -> Self {
        self.loss_fn = Some(Box::new(f));
        self
    }
    /// Replaces "loss, then backward" in training steps by `f`, which computes the batch's
    /// gradients itself and sets the parameters' `.grad()` (DP-SGD's clipped, noised
    /// per-sample gradients: [`crate::privacy::DpTextGenerator::step`]). It returns the
    /// batch's loss, or `None` for a batch without samples (the step is taken and no loss
    /// is recorded). The [`loss`](Self::loss) closure still serves validation. Needs
    /// `gradient_accumulation_steps` 1.
    pub fn gradient_fn(
        mut self,
        f: impl Fn(&M, &[Tensor]) -> Result<Option<f64>> + 'static,
    ) -> Self {
        self.grad_fn = Some(Box::new(f));
        self
    }
    /// A learning-rate scheduler, stepped once per optimizer step (not per micro-batch).
    pub fn scheduler(mut self, s: Box<dyn LrScheduler>) -> Self {
        self.scheduler = Some(s);
        self
    }
    /// Micro-batches per optimizer step (default 1): each micro-batch's loss is scaled by
    /// `1/k` and back-propagated; the optimizer steps after every `k`, so the update equals
    /// (to rounding) one step on the combined batch.
    pub fn gradient_accumulation_steps(mut self, k: usize) -> Self {
        self.config.gradient_accumulation_steps = k;
        self
    }
    /// Clips the gradients' global 2-norm to `max_norm` before each optimizer step.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.config.clip_grad_norm = Some(max_norm);
        self
    }
    /// Stop after this many epochs.
    pub fn epochs(mut self, n: u64) -> Self {
        self.config.epochs = Some(n);
        self
    }
    /// Stop after this many optimizer steps (over resumes).
    pub fn max_steps(mut self, n: u64) -> Self {
        self.config.max_steps = Some(n);
        self
    }
    /// Stop once this call of `fit` has trained this long (a resumed run gets a new budget).
    pub fn max_time(mut self, d: Duration) -> Self {
        self.config.max_time = Some(d);
        self
    }
    /// Validate every `n` steps on the validation source given to `fit`.
    pub fn eval_every(mut self, n: u64) -> Self {
        self.config.eval_every = Some(n);
        self
    }
    /// Use at most this many validation batches (the first ones) in the periodic
    /// validations; the final validation at the end of `fit` always covers the whole source.
    pub fn eval_max_batches(mut self, n: usize) -> Self {
        self.config.eval_max_batches = Some(n);
        self
    }
    /// Without a terminal, print a plain progress line every `n` steps (default 100).
    pub fn log_every(mut self, n: u64) -> Self {
        self.config.log_every = n;
        self
    }
    /// Print progress at all (default true): a progress bar when stdout is a terminal,
    /// plain lines otherwise.
    pub fn progress(mut self, on: bool) -> Self {
        self.config.progress = on;
        self
    }
    /// The run directory: `metrics.jsonl`, `loss.svg` and `checkpoints/` go there.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.out_dir = Some(dir.into());
        self
    }
    /// Write a checkpoint every `n` steps (and at the end); needs `out_dir`.
    pub fn checkpoint_every(mut self, n: u64) -> Self {
        self.config.checkpoint_every = Some(n);
        self
    }
    /// Keep the newest `k` checkpoints (default 3; 0 keeps all).
    pub fn keep_last(mut self, k: usize) -> Self {
        self.config.keep_last = k;
        self
    }
    /// Verify the SHA-256 of every checkpoint file when resuming (default true); false
    /// loads files that were edited on purpose.
    pub fn verify_checksums(mut self, on: bool) -> Self {
        self.config.verify_checksums = on;
        self
    }
    /// Stop cleanly when `flag` is raised (from a signal handler, another thread, ...):
    /// the step in progress is finished, a checkpoint is written (with `out_dir` and
    /// `checkpoint_every`) and `fit` returns with [`super::StopReason::Interrupted`].
    pub fn stop_flag(mut self, flag: super::StopFlag) -> Self {
        self.config.stop_flag = Some(flag);
        self
    }
    /// Continue from the newest complete checkpoint in `out_dir` (if there is one).
    pub fn resume(mut self, on: bool) -> Self {
        self.config.resume = if on { Resume::Latest } else { Resume::No };
        self
    }
    /// Continue from this checkpoint directory.
    pub fn resume_from(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.resume = Resume::From(dir.into());
        self
    }
    /// Start from scratch even if `out_dir` has checkpoints (they are deleted).
    pub fn overwrite(mut self, on: bool) -> Self {
        self.config.overwrite = on;
        self
    }
    /// Stop when the validation loss has not improved by more than `min_delta` for
    /// `patience` validations in a row.
    pub fn early_stopping(mut self, patience: usize, min_delta: f64) -> Self {
        self.config.early_stopping = Some(EarlyStopping {
            patience,
            min_delta,
        });
        self
    }
    /// On a non-finite loss (or gradient norm when clipping), skip the step and count it
    /// instead of stopping with an error (the default).
    pub fn skip_nonfinite(mut self, on: bool) -> Self {
        self.config.skip_nonfinite = on;
        self
    }
    /// Mixed precision with f16 (autocast + loss scaling). Accepted and recorded now; it
    /// takes effect when the mixed-precision (amp) work lands — until then training runs
    /// in the model's own dtype.
    pub fn fp16_enabled(mut self, on: bool) -> Self {
        self.config.fp16_enabled = on;
        self
    }
    /// Mixed precision with bf16. Accepted and recorded now; takes effect with the
    /// mixed-precision work, like [`TrainerBuilder::fp16_enabled`].
    pub fn bf16(mut self, on: bool) -> Self {
        self.config.bf16 = on;
        self
    }
    /// Report samples/s (default) or tokens/s.
    pub fn throughput(mut self, t: Throughput) -> Self {
        self.config.throughput = t;
        self
    }
    /// Write `loss.svg` (default true when `out_dir` is set).
    pub fn plot(mut self, on: bool) -> Self {
        self.config.plot = on;
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, c: Box<dyn Callback>) -> Self {
        self.callbacks.push(c);
        self
    }
    /// A file stored in every checkpoint directory beside the standard ones (a tokenizer,
    /// a model config), so a checkpoint is self-contained.
    pub fn checkpoint_file(mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.extra_files.push((name.into(), bytes.into()));
        self
    }
    /// Logs `train/loss`, `train/lr`, `train/throughput` (every step) and `val/loss` (every
    /// validation) to TensorBoard event files in `dir` (`tensorboard --logdir dir`).
    pub fn tensorboard(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.tensorboard_dir = Some(dir.into());
        self
    }
    /// Serves Prometheus metrics (steps, loss, learning rate, throughput, memory,
    /// checkpoint age) at `http://0.0.0.0:<port>/metrics` while the trainer lives; port 0
    /// picks a free port ([`Trainer::metrics_server`] tells which). A port in use fails
    /// [`build`](Self::build).
    pub fn metrics_port(mut self, port: u16) -> Self {
        self.config.metrics_addr = Some(format!("0.0.0.0:{port}"));
        self
    }
    /// Like [`metrics_port`](Self::metrics_port) on an explicit address (`"127.0.0.1:9464"`).
    pub fn metrics_addr(mut self, addr: impl Into<String>) -> Self {
        self.config.metrics_addr = Some(addr.into());
        self
    }
    /// Profiles training with `prof` (see [`crate::profiler`]): started when `fit` starts
    /// (unless already running), stepped after every optimizer step (its schedule counts
    /// steps) and stopped when `fit` returns, also on an error. Keep a clone to read it.
    pub fn profiler(mut self, prof: crate::profiler::Profiler) -> Self {
        self.profiler = Some(prof);
        self
    }
    /// Replaces the whole configuration.
    pub fn config(mut self, c: TrainerConfig) -> Self {
        self.config = c;
        self
    }
    /// Test hook: fail while writing the checkpoint of step `step`.
    #[doc(hidden)]
    pub fn fail_checkpoint_at(mut self, step: u64) -> Self {
        self.config.fail_checkpoint_at = Some(step);
        self
    }

    /// Checks the settings and builds the trainer.
    pub fn build(self) -> Result<Trainer<M>> {
        let c = &self.config;
        let bad = |m: &str| Err(Error::value("Trainer", m.to_string()));
        if c.gradient_accumulation_steps == 0 {
            return bad("gradient_accumulation_steps must be at least 1");
        }
        if let Some(m) = c.clip_grad_norm {
            if m.is_nan() || m <= 0.0 {
                return bad(&format!("clip_grad_norm must be positive, got {m}"));
            }
        }
        if c.eval_every == Some(0) || c.checkpoint_every == Some(0) {
            return bad("eval_every and checkpoint_every must be at least 1");
        }
        if c.out_dir.is_none() && c.checkpoint_every.is_some() {
            return bad("checkpoint_every needs an out_dir to write checkpoints into");
        }
        if c.out_dir.is_none() && c.resume == Resume::Latest {
            return bad("resume needs the out_dir of the run to continue");
        }
        if let Some(es) = &c.early_stopping {
            if c.eval_every.is_none() {
                return bad("early stopping needs eval_every (and a validation source)");
            }
            if es.min_delta.is_nan() || es.min_delta < 0.0 {
                return bad("early stopping's min_delta must be >= 0");
            }
        }
        if self.grad_fn.is_some() && c.gradient_accumulation_steps != 1 {
            return bad(
                "gradient_fn sets whole-batch gradients: it needs gradient_accumulation_steps 1",
            );
        }
        let optimizer = match self.optimizer {
            Some(o) => o,
            None => return bad("no optimizer: call .optimizer(Box::new(...))"),
        };
        let loss_fn = match self.loss_fn {
            Some(f) => f,
            None => return bad("no loss: call .loss(|model, batch| ...)"),
        };
        let tensorboard = match &c.tensorboard_dir {
            Some(d) => Some(crate::tensorboard::SummaryWriter::with_options(
                d, 10.0, "",
            )?),
            None => None,
        };
        let metrics = match &c.metrics_addr {
            Some(a) => Some(crate::monitor::MetricsServer::bind(a)?),
            None => None,
        };
        Ok(Trainer {
            tensorboard,
            metrics,
            profiler: self.profiler,
            model: self.model,
            optimizer,
            scheduler: self.scheduler,
            loss_fn,
            grad_fn: self.grad_fn,
            config: self.config,
            callbacks: self.callbacks,
            extra_files: self.extra_files,
            state: TrainerState {
                loss: f64::NAN,
                ..Default::default()
            },
            started: false,
        })
    }
}

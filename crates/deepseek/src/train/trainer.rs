//! The [`Trainer`] and its training loop.

use super::callback::{Control, TrainerState};
use super::metrics::{self, MetricsLine};
use super::{checkpoint, progress, Callback, TrainerCheckpoint};
use super::{
    BatchSource, FitReport, Resume, StopReason, Throughput, TrainerBuilder, TrainerConfig,
};
use crate::nn::Module;
use crate::optim::{clip_grad_norm_, total_grad_norm, LrScheduler, Optimizer};
use crate::{Error, Result, Tensor};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(crate) type LossFn<M> = Box<dyn Fn(&M, &[Tensor]) -> Result<Tensor>>;
pub(crate) type GradFn<M> = Box<dyn Fn(&M, &[Tensor]) -> Result<Option<f64>>>;

/// Trains a model. Build one with [`Trainer::builder`]; run it with [`Trainer::fit`].
/// See the [module documentation](crate::train) for an example.
pub struct Trainer<M: Module> {
    pub(super) model: M,
    pub(super) optimizer: Box<dyn Optimizer>,
    pub(super) scheduler: Option<Box<dyn LrScheduler>>,
    pub(super) loss_fn: LossFn<M>,
    pub(super) grad_fn: Option<GradFn<M>>,
    pub(super) config: TrainerConfig,
    pub(super) callbacks: Vec<Box<dyn Callback>>,
    pub(super) extra_files: Vec<(String, Vec<u8>)>,
    pub(super) state: TrainerState,
    pub(super) started: bool,
    pub(super) tensorboard: Option<crate::tensorboard::SummaryWriter>,
    pub(super) metrics: Option<crate::monitor::MetricsServer>,
    pub(super) profiler: Option<crate::profiler::Profiler>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path.display().to_string(), e.to_string())
}

impl<M: Module> Trainer<M> {
    /// Starts building a trainer for `model`.
    pub fn builder(model: M) -> TrainerBuilder<M> {
        TrainerBuilder {
            model,
            optimizer: None,
            scheduler: None,
            loss_fn: None,
            grad_fn: None,
            config: TrainerConfig::default(),
            callbacks: Vec::new(),
            extra_files: Vec::new(),
            profiler: None,
        }
    }
    /// The Prometheus metrics server (with [`TrainerBuilder::metrics_port`]).
    pub fn metrics_server(&self) -> Option<&crate::monitor::MetricsServer> {
        self.metrics.as_ref()
    }
    /// The TensorBoard writer (with [`TrainerBuilder::tensorboard`]).
    pub fn summary_writer(&mut self) -> Option<&mut crate::tensorboard::SummaryWriter> {
        self.tensorboard.as_mut()
    }
    /// The profiler (with [`TrainerBuilder::profiler`]).
    pub fn profiler(&self) -> Option<&crate::profiler::Profiler> {
        self.profiler.as_ref()
    }
    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }
    /// The model, mutably.
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }
    /// Gives the model back.
    pub fn into_model(self) -> M {
        self.model
    }
    /// The optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer {
        &*self.optimizer
    }
    /// The settings.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }
    /// Where training stands.
    pub fn state(&self) -> &TrainerState {
        &self.state
    }
    fn checkpoint_root(&self) -> Option<PathBuf> {
        self.config.out_dir.as_ref().map(|d| d.join("checkpoints"))
    }

    /// Mean loss over a validation source (weighted by batch size), under `no_grad` with
    /// the model in eval mode; at most `eval_max_batches` batches when that is set.
    pub fn evaluate(&mut self, val: &dyn BatchSource) -> Result<f64> {
        self.evaluate_upto(val, self.config.eval_max_batches)
    }

    fn evaluate_upto(&mut self, val: &dyn BatchSource, max_batches: Option<usize>) -> Result<f64> {
        self.model.eval();
        let r = (|| {
            let _g = crate::no_grad();
            let (mut total, mut n) = (0.0, 0.0);
            for (i, b) in val.epoch_from(0, 0).enumerate() {
                if max_batches.is_some_and(|m| i >= m) {
                    break;
                }
                let b = b?;
                let l = (self.loss_fn)(&self.model, &b)?.item()?;
                let w = Throughput::Samples.count(&b).max(1) as f64;
                total += l * w;
                n += w;
            }
            if n == 0.0 {
                return Err(Error::value("Trainer", "the validation data has no batch"));
            }
            Ok(total / n)
        })();
        self.model.train();
        r
    }

    /// Loads a checkpoint directory into the model, optimizer, scheduler, RNG and trainer
    /// state. Everything is read and checked against this model before anything changes;
    /// errors name the file and the problem.
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        self.restore(dir, None)
    }

    fn restore(&mut self, dir: &Path, batches_per_epoch: Option<usize>) -> Result<()> {
        let sd = self.model.state_dict();
        let fp = checkpoint::fingerprint(&sd);
        let ck = checkpoint::load_with(dir, &fp, self.config.verify_checksums)?;
        let tp = dir.join(checkpoint::TRAINER_FILE);
        let sp = dir.join(checkpoint::SCHEDULER_FILE);
        if let Some(nb) = batches_per_epoch {
            if ck.trainer.batches_per_epoch != nb {
                return Err(io_err(
                    &tp,
                    format!(
                        "the checkpoint was written with {} batches per epoch but the training data now has {nb} (different data, batch size or sequence length?); the data position cannot be restored",
                        ck.trainer.batches_per_epoch
                    ),
                ));
            }
        }
        match (&self.scheduler, &ck.scheduler) {
            (Some(_), None) => {
                return Err(io_err(
                    &sp,
                    "the checkpoint has no scheduler state but this trainer has a scheduler",
                ))
            }
            (None, Some(s)) => {
                return Err(io_err(
                    &sp,
                    format!(
                        "the checkpoint has a {} scheduler but this trainer has none",
                        s.kind
                    ),
                ))
            }
            _ => {}
        }
        self.model
            .load_state_dict(&ck.model, true)
            .map_err(|e| io_err(&dir.join(checkpoint::MODEL_FILE), e))?;
        self.optimizer
            .load_state_dict(&ck.optimizer)
            .map_err(|e| io_err(&dir.join(checkpoint::OPTIMIZER_FILE), e))?;
        if let (Some(s), Some(st)) = (&mut self.scheduler, &ck.scheduler) {
            s.load_state(st).map_err(|e| io_err(&sp, e))?;
        }
        crate::set_rng_state(ck.trainer.rng_state);
        let t = ck.trainer;
        let s = &mut self.state;
        s.step = t.step;
        s.epoch = t.epoch;
        s.batch_in_epoch = t.batch_in_epoch;
        s.batches_per_epoch = t.batches_per_epoch;
        s.loss = t.train_losses.last().copied().flatten().unwrap_or(f64::NAN);
        s.lr = self.optimizer.lr();
        s.train_losses = t.train_losses;
        s.val_losses = t.val_losses;
        s.skipped_steps = t.skipped_steps;
        s.elapsed = t.elapsed_s;
        s.units_seen = t.units_seen;
        Ok(())
    }

    /// Writes a checkpoint of the current state into `<out>/checkpoints/step-<N>/`.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let root = self
            .checkpoint_root()
            .ok_or_else(|| Error::value("Trainer", "save_checkpoint needs an out_dir"))?;
        self.save_checkpoint_in(&root)
    }

    fn save_checkpoint_in(&self, root: &Path) -> Result<PathBuf> {
        let sd = self.model.state_dict();
        let s = &self.state;
        let tc = TrainerCheckpoint {
            format: checkpoint::FORMAT,
            step: s.step,
            epoch: s.epoch,
            batch_in_epoch: s.batch_in_epoch,
            batches_per_epoch: s.batches_per_epoch,
            rng_state: crate::get_rng_state(),
            train_losses: s.train_losses.clone(),
            val_losses: s.val_losses.clone(),
            skipped_steps: s.skipped_steps,
            elapsed_s: s.elapsed,
            units_seen: s.units_seen,
            gradient_accumulation_steps: self.config.gradient_accumulation_steps,
            fingerprint: checkpoint::fingerprint(&sd),
            sha256sums: true,
        };
        let sched = self.scheduler.as_ref().map(|s| s.state());
        let mut files = vec![
            (
                checkpoint::OPTIMIZER_FILE.to_string(),
                checkpoint::json_bytes(&self.optimizer.state_dict()?, checkpoint::OPTIMIZER_FILE)?,
            ),
            (
                checkpoint::SCHEDULER_FILE.to_string(),
                checkpoint::json_bytes(&sched, checkpoint::SCHEDULER_FILE)?,
            ),
        ];
        files.extend(self.extra_files.iter().cloned());
        files.push((
            checkpoint::TRAINER_FILE.to_string(),
            checkpoint::json_bytes(&tc, checkpoint::TRAINER_FILE)?,
        ));
        let fail = (self.config.fail_checkpoint_at == Some(s.step)).then_some(1);
        checkpoint::save(root, s.step, &sd, &files, self.config.keep_last, fail)
    }

    fn prepare_run_dir(&mut self, nb: usize) -> Result<Option<PathBuf>> {
        let root = self.checkpoint_root();
        if let Some(d) = &self.config.out_dir {
            std::fs::create_dir_all(d).map_err(|e| io_err(d, format!("cannot create: {e}")))?;
        }
        match self.config.resume.clone() {
            Resume::From(dir) => {
                self.restore(&dir, Some(nb))?;
                Ok(Some(dir))
            }
            Resume::Latest => {
                let root = root.expect("checked by build");
                match checkpoint::latest(&root)? {
                    Some(dir) => {
                        self.restore(&dir, Some(nb)).map_err(|e| {
                            let prev = checkpoint::list(&root)
                                .ok()
                                .and_then(|l| l.len().checked_sub(2).map(|i| l[i].1.clone()));
                            // A checkpoint of another model (or data layout) is not damaged:
                            // older checkpoints of the run would fail the same way.
                            let settings = e.to_string().contains("different model")
                                || e.to_string().contains("batches per epoch");
                            match prev {
                                _ if settings => Error::Msg(format!(
                                    "cannot resume: {e}\n(the run in {} was trained with other settings: resume it with the same model sizes, data, batch and sequence length (see its settings.toml), or start a new run elsewhere)",
                                    root.parent().unwrap_or(&root).display()
                                )),
                                Some(p) => Error::Msg(format!(
                                    "cannot resume: {e}\n(the checkpoint is left as it is; delete {} to resume from the previous one, {})",
                                    dir.display(),
                                    p.display()
                                )),
                                None => Error::Msg(format!("cannot resume: {e}")),
                            }
                        })?;
                        Ok(Some(dir))
                    }
                    None => Ok(None),
                }
            }
            Resume::No => {
                if let Some(root) = &root {
                    if let Some(l) = checkpoint::latest(root)? {
                        if !self.config.overwrite {
                            return Err(Error::Msg(format!(
                                "{} already has checkpoints (newest: {}): resume it, start over with overwrite, or use another output directory",
                                root.display(),
                                l.display()
                            )));
                        }
                        std::fs::remove_dir_all(root)
                            .map_err(|e| io_err(root, format!("cannot delete: {e}")))?;
                    }
                }
                Ok(None)
            }
        }
    }

    /// After each optimizer step: TensorBoard scalars (loss, learning rate, throughput and
    /// the gradient norm of a step that was taken), Prometheus metrics, profiler step.
    fn observe_step(&mut self, units: u64, secs: f64, grad_norm: Option<f64>) -> Result<()> {
        let st = &self.state;
        let step = st.step as i64;
        let unit = match self.config.throughput {
            Throughput::Samples => "samples",
            Throughput::Tokens => "tokens",
        };
        if let Some(w) = &mut self.tensorboard {
            if st.loss.is_finite() {
                w.add_scalar("train/loss", st.loss, step)?;
            }
            w.add_scalar("train/lr", st.lr, step)?;
            w.add_scalar(&format!("train/{unit}_per_second"), st.throughput, step)?;
            if let Some(g) = grad_norm {
                w.add_scalar("train/grad_norm", g, step)?;
            }
        }
        if let Some(m) = &self.metrics {
            let m = m.metrics();
            m.record_step(st.loss, st.lr, units, unit, secs);
            m.set_throughput(st.throughput, unit);
        }
        if let Some(p) = &self.profiler {
            p.step();
        }
        Ok(())
    }

    /// Trains on `train`, validating on `val` every `eval_every` steps, until `max_steps`,
    /// `epochs`, the time budget, early stopping or a callback ends it. Calling `fit`
    /// again continues from where the previous call stopped.
    ///
    /// A non-finite loss (or gradient norm, when clipping) stops training with an error
    /// naming the step, unless `skip_nonfinite` is set.
    pub fn fit(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
    ) -> Result<FitReport> {
        if let Some(p) = &self.profiler {
            if !p.is_running() {
                p.start()?;
            }
        }
        let r = self.fit_inner(train, val);
        if let Some(p) = &self.profiler {
            p.stop()?;
        }
        if let Some(w) = &mut self.tensorboard {
            w.flush()?;
        }
        r
    }

    fn fit_inner(
        &mut self,
        train: &dyn BatchSource,
        val: Option<&dyn BatchSource>,
    ) -> Result<FitReport> {
        let cfg = self.config.clone();
        let nb = train.batches_per_epoch();
        if nb == 0 {
            return Err(Error::value(
                "Trainer",
                "the training data has no batch (fewer samples than one batch with drop_last?)",
            ));
        }
        if cfg.epochs.is_none() && cfg.max_steps.is_none() && cfg.max_time.is_none() {
            return Err(Error::value(
                "Trainer",
                "nothing says when to stop: set epochs, max_steps or max_time",
            ));
        }
        if cfg.eval_every.is_some() && val.is_none() {
            return Err(Error::value(
                "Trainer",
                "eval_every is set but fit got no validation source",
            ));
        }
        let k = cfg.gradient_accumulation_steps;
        let mut resumed_from = None;
        if !self.started {
            resumed_from = self.prepare_run_dir(nb)?;
        }
        let first_call = !self.started;
        self.started = true;
        if let Some(m) = &self.metrics {
            m.metrics().set_steps(self.state.step);
        }
        let reporter = progress::Reporter::new(cfg.progress, cfg.log_every, cfg.throughput.unit());
        if let Some(d) = &resumed_from {
            reporter.println(&format!(
                "resumed from {} (step {}, epoch {})",
                d.display(),
                self.state.step,
                self.state.epoch
            ));
        } else if cfg.resume == Resume::Latest && first_call {
            reporter.println("no checkpoint to resume from: starting from scratch");
        }
        let out = cfg.out_dir.clone();
        let mut metrics = match &out {
            Some(d) => Some(metrics::MetricsWriter::open(
                &d.join("metrics.jsonl"),
                if first_call && resumed_from.is_none() {
                    None
                } else {
                    Some(self.state.step)
                },
            )?),
            None => None,
        };
        let plot_final = |s: &TrainerState, fin: Option<(u64, f64)>| -> Result<()> {
            match &out {
                Some(d) if cfg.plot => super::metrics::plot_losses_with_final(
                    &d.join("loss.svg"),
                    &s.train_losses,
                    &s.val_losses,
                    fin,
                ),
                _ => Ok(()),
            }
        };
        let plot = |s: &TrainerState| plot_final(s, None);
        let by_epochs = cfg.epochs.map(|e| (e * nb as u64).div_ceil(k as u64));
        self.state.total_steps = match (cfg.max_steps, by_epochs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.state.batches_per_epoch = nb;
        let root = self.checkpoint_root();
        let mut last_ckpt: Option<(u64, PathBuf)> =
            resumed_from.clone().map(|d| (self.state.step, d));
        let t0 = Instant::now();
        let elapsed0 = self.state.elapsed;
        let (mut run_steps, mut run_units, mut train_secs) = (0u64, 0u64, 0.0f64);
        let params = self.model.parameters();
        self.model.train();
        let mut iter = train.epoch_from(self.state.epoch, self.state.batch_in_epoch);
        let stop_reason;
        let interrupted = || cfg.stop_flag.as_ref().is_some_and(|f| f.is_raised());
        loop {
            if interrupted() {
                stop_reason = StopReason::Interrupted;
                break;
            }
            if cfg.max_steps.is_some_and(|m| self.state.step >= m) {
                stop_reason = StopReason::MaxSteps;
                break;
            }
            if cfg.epochs.is_some_and(|e| self.state.epoch >= e) {
                stop_reason = StopReason::Epochs;
                break;
            }
            if cfg.max_time.is_some_and(|t| t0.elapsed() >= t) {
                stop_reason = StopReason::TimeBudget;
                break;
            }
            let ts = Instant::now();
            self.optimizer.zero_grad();
            self.model.zero_grad();
            let step_no = self.state.step + 1;
            let mut losses: Vec<f64> = Vec::with_capacity(k);
            let mut nonfinite: Option<(&str, f64)> = None;
            let mut step_units = 0u64;
            let mut empty_epochs = 0;
            let mut data_done = false;
            let mut empty_step = false;
            while losses.len() < k {
                let batch = match iter.next() {
                    Some(b) => b?,
                    None => {
                        self.state.epoch += 1;
                        self.state.batch_in_epoch = 0;
                        if cfg.epochs.is_some_and(|e| self.state.epoch >= e) {
                            data_done = true;
                            break;
                        }
                        empty_epochs += 1;
                        if empty_epochs > 1 {
                            return Err(Error::value(
                                "Trainer",
                                format!(
                                    "epoch {} of the training data yielded no batch",
                                    self.state.epoch
                                ),
                            ));
                        }
                        iter = train.epoch_from(self.state.epoch, 0);
                        continue;
                    }
                };
                empty_epochs = 0;
                self.state.batch_in_epoch += 1;
                if let Some(gf) = &self.grad_fn {
                    // The closure sets the gradients itself (DP-SGD); k is 1.
                    step_units += cfg.throughput.count(&batch);
                    match gf(&self.model, &batch)? {
                        Some(l) if !l.is_finite() => nonfinite = Some(("loss", l)),
                        Some(l) => losses.push(l),
                        None => empty_step = true,
                    }
                    break;
                }
                let loss = (self.loss_fn)(&self.model, &batch)?;
                if loss.numel() != 1 {
                    return Err(Error::value(
                        "Trainer",
                        format!(
                            "the loss closure must return a scalar, got shape {:?}",
                            loss.shape()
                        ),
                    ));
                }
                let l = loss.item()?;
                if !l.is_finite() {
                    nonfinite = Some(("loss", l));
                    break;
                }
                let scaled = if k > 1 {
                    loss.mul_scalar(1.0 / k as f64)?
                } else {
                    loss
                };
                scaled.backward()?;
                losses.push(l);
                step_units += cfg.throughput.count(&batch);
            }
            if losses.is_empty() && nonfinite.is_none() && data_done && !empty_step {
                stop_reason = StopReason::Epochs;
                break;
            }
            let lr = self.optimizer.lr();
            let mut grad_norm = None;
            if nonfinite.is_none() {
                if losses.len() < k && !losses.is_empty() {
                    // The last step of the data is short: average over what it had.
                    let f = k as f64 / losses.len() as f64;
                    let _g = crate::no_grad();
                    for p in &params {
                        if let Some(g) = p.grad() {
                            p.set_grad(Some(g.mul_scalar(f)?))?;
                        }
                    }
                }
                if let Some(c) = cfg.clip_grad_norm {
                    let n = clip_grad_norm_(&params, c, 2.0)?;
                    grad_norm = Some(n);
                    if !n.is_finite() {
                        nonfinite = Some(("gradient norm", n));
                    }
                } else if metrics.is_some() {
                    grad_norm = Some(total_grad_norm(&params, 2.0)?);
                }
            }
            if let Some((what, v)) = nonfinite {
                if !cfg.skip_nonfinite {
                    reporter.finish();
                    return Err(Error::Msg(format!(
                        "Trainer: the {what} is {v} at step {step_no} (epoch {}, batch {} of {nb}); training stopped. Lower the learning rate, clip gradients, or enable skip_nonfinite to skip such steps",
                        self.state.epoch, self.state.batch_in_epoch
                    )));
                }
                self.optimizer.zero_grad();
                self.model.zero_grad();
                self.state.skipped_steps += 1;
                self.state.train_losses.push(None);
                self.state.loss = f64::NAN;
                reporter.println(&format!(
                    "step {step_no}: the {what} is {v}; step skipped ({} so far)",
                    self.state.skipped_steps
                ));
            } else {
                self.optimizer.step()?;
                if let Some(s) = &mut self.scheduler {
                    s.step(&mut *self.optimizer);
                }
                if losses.is_empty() {
                    // An empty (Poisson-sampled) batch: a step without a loss to report.
                    self.state.train_losses.push(None);
                } else {
                    let mean = losses.iter().sum::<f64>() / losses.len() as f64;
                    self.state.train_losses.push(Some(mean));
                    self.state.loss = mean;
                }
            }
            self.state.step = step_no;
            self.state.lr = lr;
            run_steps += 1;
            run_units += step_units;
            self.state.units_seen += step_units;
            train_secs += ts.elapsed().as_secs_f64();
            self.state.throughput = run_units as f64 / train_secs.max(1e-9);
            self.state.elapsed = elapsed0 + t0.elapsed().as_secs_f64();
            let taken_norm = grad_norm.filter(|_| nonfinite.is_none());
            self.observe_step(step_units, ts.elapsed().as_secs_f64(), taken_norm)?;
            let mut stop: Option<StopReason> = None;
            for c in &mut self.callbacks {
                if c.on_step_end(&self.state) == Control::Stop {
                    stop = Some(StopReason::Callback);
                }
            }
            let mut val_now = None;
            if let (Some(v), Some(every)) = (val, cfg.eval_every) {
                if step_no.is_multiple_of(every) {
                    let vl = self.evaluate(v)?;
                    self.state.val_losses.push((step_no, vl));
                    val_now = Some(vl);
                    if let Some(w) = &mut self.tensorboard {
                        w.add_scalar("val/loss", vl, step_no as i64)?;
                    }
                    if let Some(m) = &self.metrics {
                        m.metrics().record_val_loss(vl);
                    }
                    self.state.elapsed = elapsed0 + t0.elapsed().as_secs_f64();
                    reporter.println(&format!(
                        "step {step_no:>6}  train loss {:.4}  val loss {vl:.4}  {} {}  {}",
                        self.state.loss,
                        progress::fmt_rate(self.state.throughput),
                        cfg.throughput.unit(),
                        progress::fmt_duration(self.state.elapsed)
                    ));
                    plot(&self.state)?;
                }
            }
            if let Some(m) = &mut metrics {
                m.write(&MetricsLine {
                    step: step_no,
                    epoch: self.state.epoch,
                    loss: self.state.train_losses.last().copied().flatten(),
                    val_loss: val_now,
                    lr,
                    time: self.state.elapsed,
                    throughput: self.state.throughput,
                    throughput_unit: cfg.throughput.unit().to_string(),
                    grad_norm: grad_norm.filter(|_| nonfinite.is_none()),
                    skipped: nonfinite.is_some(),
                    is_final: false,
                })?;
            }
            reporter.step(
                &self.state,
                run_steps,
                t0.elapsed().as_secs_f64(),
                cfg.max_time.map(|d| d.as_secs_f64()),
            );
            if val_now.is_some() {
                for c in &mut self.callbacks {
                    if c.on_eval_end(&self.state) == Control::Stop {
                        stop = Some(StopReason::Callback);
                    }
                }
                if let Some(es) = &cfg.early_stopping {
                    if es.should_stop(&self.state.val_losses) {
                        reporter.println(&format!(
                            "early stopping at step {step_no}: no improvement of the validation loss for {} validations (best {:.4})",
                            es.bad_evals(&self.state.val_losses),
                            self.state.best_val_loss().unwrap_or(f64::NAN)
                        ));
                        stop = Some(StopReason::EarlyStopping);
                    }
                }
            }
            if let (Some(root), Some(every)) = (&root, cfg.checkpoint_every) {
                if step_no.is_multiple_of(every) {
                    let p = self.save_checkpoint_in(root)?;
                    last_ckpt = Some((step_no, p));
                    if let Some(m) = &self.metrics {
                        m.metrics().record_checkpoint();
                    }
                }
            }
            if stop.is_none() && interrupted() {
                reporter.println(&format!("interrupted: stopping after step {step_no}"));
                stop = Some(StopReason::Interrupted);
            }
            if let Some(r) = stop {
                stop_reason = r;
                break;
            }
        }
        drop(iter);
        // The end: a final checkpoint, a final validation, the plot.
        if let (Some(root), Some(_)) = (&root, cfg.checkpoint_every) {
            if self.state.step > 0 && last_ckpt.as_ref().map(|c| c.0) != Some(self.state.step) {
                let p = self.save_checkpoint_in(root)?;
                last_ckpt = Some((self.state.step, p));
                if let Some(m) = &self.metrics {
                    m.metrics().record_checkpoint();
                }
            }
        }
        let final_val_loss = match val {
            None => None,
            // Stopping on request should be quick: no pass over the whole validation set.
            Some(_) if stop_reason == StopReason::Interrupted => None,
            Some(v) => match self.state.val_losses.last() {
                Some(&(s, l)) if s == self.state.step && cfg.eval_max_batches.is_none() => Some(l),
                _ => {
                    // Over the whole validation source, even when the periodic ones are
                    // limited by eval_max_batches.
                    let vl = self.evaluate_upto(v, None)?;
                    if let Some(w) = &mut self.tensorboard {
                        w.add_scalar("val/loss", vl, self.state.step as i64)?;
                    }
                    if let Some(m) = &self.metrics {
                        m.metrics().record_val_loss(vl);
                    }
                    if let Some(m) = &mut metrics {
                        m.write(&MetricsLine {
                            step: self.state.step,
                            epoch: self.state.epoch,
                            loss: self.state.train_losses.last().copied().flatten(),
                            val_loss: Some(vl),
                            lr: self.optimizer.lr(),
                            time: self.state.elapsed,
                            throughput: self.state.throughput,
                            throughput_unit: cfg.throughput.unit().to_string(),
                            grad_norm: None,
                            skipped: false,
                            is_final: true,
                        })?;
                    }
                    Some(vl)
                }
            },
        };
        plot_final(&self.state, final_val_loss.map(|v| (self.state.step, v)))?;
        reporter.finish();
        for c in &mut self.callbacks {
            c.on_train_end(&self.state);
        }
        Ok(FitReport {
            steps: self.state.step,
            steps_this_run: run_steps,
            stop_reason,
            train_losses: self.state.train_losses.clone(),
            val_losses: self.state.val_losses.clone(),
            final_val_loss,
            skipped_steps: self.state.skipped_steps,
            elapsed: self.state.elapsed,
            throughput: self.state.throughput,
            resumed_from,
            last_checkpoint: last_ckpt.map(|c| c.1),
        })
    }
}

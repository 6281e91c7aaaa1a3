//! Callbacks and the read-only view of the trainer they receive.

/// Where training stands; callbacks see it read-only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainerState {
    /// Optimizer steps done (skipped steps included).
    pub step: u64,
    /// The epoch in progress (0-based).
    pub epoch: u64,
    /// Micro-batches of the current epoch consumed so far.
    pub batch_in_epoch: usize,
    /// Batches per epoch of the training data.
    pub batches_per_epoch: usize,
    /// The step count training aims for, when known (`max_steps`, or `epochs` times the
    /// steps per epoch).
    pub total_steps: Option<u64>,
    /// Loss of the latest step (NaN before the first, or when it was skipped).
    pub loss: f64,
    /// The learning rate the latest step used.
    pub lr: f64,
    /// Loss of every step (`None` for a skipped step).
    pub train_losses: Vec<Option<f64>>,
    /// `(step, loss)` of every scheduled validation.
    pub val_losses: Vec<(u64, f64)>,
    /// Steps skipped because of a non-finite loss or gradient norm.
    pub skipped_steps: u64,
    /// Seconds of training so far (over resumes).
    pub elapsed: f64,
    /// Samples or tokens per second in this process.
    pub throughput: f64,
    /// Samples or tokens processed so far (over resumes).
    pub units_seen: u64,
}

impl TrainerState {
    /// The latest validation loss.
    pub fn val_loss(&self) -> Option<f64> {
        self.val_losses.last().map(|v| v.1)
    }
    /// The best (lowest) validation loss so far.
    pub fn best_val_loss(&self) -> Option<f64> {
        self.val_losses
            .iter()
            .map(|v| v.1)
            .filter(|v| !v.is_nan())
            .reduce(f64::min)
    }
}

/// What a callback asks the trainer to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on training.
    Continue,
    /// Stop after this step (a final checkpoint and validation are still written).
    Stop,
}

/// Hooks into the training loop. Every method has a default that does nothing.
///
/// ```
/// use deepseek::train::{Callback, Control, TrainerState};
/// /// Stops once the training loss falls below a threshold.
/// struct StopBelow(f64);
/// impl Callback for StopBelow {
///     fn on_step_end(&mut self, s: &TrainerState) -> Control {
///         if s.loss < self.0 { Control::Stop } else { Control::Continue }
///     }
/// }
/// ```
pub trait Callback {
    /// After every optimizer step (also a skipped one).
    fn on_step_end(&mut self, _state: &TrainerState) -> Control {
        Control::Continue
    }
    /// After every scheduled validation; `state.val_loss()` is the new value.
    fn on_eval_end(&mut self, _state: &TrainerState) -> Control {
        Control::Continue
    }
    /// Once, when training ends (normally or by a stop request).
    fn on_train_end(&mut self, _state: &TrainerState) {}
}

/// Early stopping on the validation loss: stop once `patience` validations in a row have
/// not improved on the best one by more than `min_delta` (patience 0 acts as 1). It is a function of the
/// validation history, so it resumes exactly from a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarlyStopping {
    /// Validations without improvement before stopping.
    pub patience: usize,
    /// The decrease that counts as an improvement.
    pub min_delta: f64,
}

impl EarlyStopping {
    /// Validations since the last improvement, given the history.
    pub fn bad_evals(&self, val_losses: &[(u64, f64)]) -> usize {
        let mut best = f64::INFINITY;
        let mut bad = 0;
        for &(_, v) in val_losses {
            if v < best - self.min_delta {
                best = v;
                bad = 0;
            } else {
                bad += 1;
            }
        }
        bad
    }
    /// Whether training should stop now.
    pub fn should_stop(&self, val_losses: &[(u64, f64)]) -> bool {
        self.bad_evals(val_losses) >= self.patience.max(1)
    }
}

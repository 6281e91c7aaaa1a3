//! Pruners: stop poor trials early from their intermediate values
//! (`trial.report(value, step)`, then `trial.should_prune()`), with Optuna's rules.

use super::trial::{Direction, FrozenTrial, TrialState};

/// Decides whether a running trial should stop.
pub trait Pruner: Send + Sync {
    /// `trial` is the running trial (it may record state, e.g. rung values), `trials` all
    /// trials of the study (the running one's entry may be stale).
    fn prune(&self, trials: &[FrozenTrial], trial: &mut FrozenTrial, direction: Direction) -> bool;
}

/// Never prunes.
#[derive(Debug, Clone, Default)]
pub struct NopPruner;

impl Pruner for NopPruner {
    fn prune(&self, _: &[FrozenTrial], _: &mut FrozenTrial, _: Direction) -> bool {
        false
    }
}

/// The median stopping rule: prune when the trial's best intermediate value so far is worse
/// than the median of the completed trials' values at the same step.
#[derive(Debug, Clone)]
pub struct MedianPruner {
    /// No pruning until this many trials have completed (default 5).
    pub n_startup_trials: usize,
    /// No pruning before this step (default 0).
    pub n_warmup_steps: u64,
    /// Decide only at every `interval_steps`-th step after the warm-up (default 1).
    pub interval_steps: u64,
}

impl Default for MedianPruner {
    fn default() -> Self {
        MedianPruner {
            n_startup_trials: 5,
            n_warmup_steps: 0,
            interval_steps: 1,
        }
    }
}

/// Median with linear interpolation (NumPy's default percentile), of a non-empty slice.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = (v.len() - 1) as f64 * 0.5;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

impl Pruner for MedianPruner {
    fn prune(&self, trials: &[FrozenTrial], trial: &mut FrozenTrial, dir: Direction) -> bool {
        let Some(step) = trial.last_step() else {
            return false;
        };
        if step < self.n_warmup_steps {
            return false;
        }
        if self.interval_steps > 1
            && !(step - self.n_warmup_steps).is_multiple_of(self.interval_steps)
        {
            return false;
        }
        let done: Vec<&FrozenTrial> = trials
            .iter()
            .filter(|t| t.state == TrialState::Complete && t.number != trial.number)
            .collect();
        if done.len() < self.n_startup_trials {
            return false;
        }
        let best = trial
            .intermediate_values
            .values()
            .map(|&v| dir.loss(v))
            .fold(f64::INFINITY, f64::min);
        if best.is_nan() || trial.intermediate_values.values().any(|v| v.is_nan()) {
            return true;
        }
        let mut at: Vec<f64> = done
            .iter()
            .filter_map(|t| t.intermediate_values.get(&step))
            .map(|&v| dir.loss(v))
            .filter(|v| !v.is_nan())
            .collect();
        if at.is_empty() {
            return false;
        }
        best > median(&mut at)
    }
}

/// Asynchronous successive halving (Li et al., ASHA, as in Optuna): a trial reaching the
/// rung at step `min_resource * reduction_factor^(min_early_stopping_rate + k)` continues
/// only if its value there is in the best `1/reduction_factor` of all values recorded at
/// that rung so far (the best one when fewer than `reduction_factor` trials reached it).
#[derive(Debug, Clone)]
pub struct SuccessiveHalvingPruner {
    /// Steps before the first rung (default 1).
    pub min_resource: u64,
    /// The factor η between rungs (default 4).
    pub reduction_factor: u64,
    /// Skips the first rungs (default 0).
    pub min_early_stopping_rate: u32,
}

impl Default for SuccessiveHalvingPruner {
    fn default() -> Self {
        SuccessiveHalvingPruner {
            min_resource: 1,
            reduction_factor: 4,
            min_early_stopping_rate: 0,
        }
    }
}

impl Pruner for SuccessiveHalvingPruner {
    fn prune(&self, trials: &[FrozenTrial], trial: &mut FrozenTrial, dir: Direction) -> bool {
        let Some(step) = trial.last_step() else {
            return false;
        };
        let value = trial.intermediate_values[&step];
        let eta = self.reduction_factor.max(2);
        let mut rung = trial.rungs.len() as u32;
        loop {
            let promotion_step = (self.min_resource as f64)
                * (eta as f64).powi((self.min_early_stopping_rate + rung) as i32);
            if (step as f64) < promotion_step {
                return false;
            }
            if value.is_nan() {
                return true;
            }
            trial.rungs.insert(rung, value);
            let mut competing: Vec<f64> = trials
                .iter()
                .filter(|t| t.number != trial.number)
                .filter_map(|t| t.rungs.get(&rung))
                .map(|&v| dir.loss(v))
                .collect();
            competing.push(dir.loss(value));
            competing.sort_by(|a, b| a.total_cmp(b));
            let idx = (competing.len() / eta as usize).max(1) - 1;
            if dir.loss(value) > competing[idx] {
                return true;
            }
            rung += 1;
        }
    }
}

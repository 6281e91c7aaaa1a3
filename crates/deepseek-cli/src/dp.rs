//! `deepseek train --dp-epsilon E`: DP-SGD for the main job, to a target ε.
//!
//! The training text is cut into disjoint windows of `seq + 1` characters (the privacy
//! unit), sampled by Poisson sampling at `q = batch / N`; the noise multiplier is the
//! smallest σ for which the RDP accountant gives ε ≤ E at δ after `--steps` steps. The run
//! records its plan in `<out>/privacy.json`, checks it on `--resume`, and reports the ε
//! actually spent (for the steps taken) at the end.

use deepseek::privacy::{rdp, DpSgdConfig, DpTextGenerator, PoissonTextBatches};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub type AnyResult<T> = std::result::Result<T, String>;

/// The DP flags after defaults, checked.
#[derive(Debug, Clone, Copy)]
pub struct DpFlags {
    pub epsilon: f64,
    pub delta: f64,
    pub max_grad_norm: f64,
}

/// Checks the `--dp-*` flags: `None` without `--dp-epsilon` (then the others must be
/// absent too).
pub fn flags(
    epsilon: Option<f64>,
    delta: Option<f64>,
    max_grad_norm: Option<f64>,
) -> AnyResult<Option<DpFlags>> {
    let Some(epsilon) = epsilon else {
        if delta.is_some() || max_grad_norm.is_some() {
            return Err(
                "--dp-delta and --dp-max-grad-norm need --dp-epsilon (the privacy target)".into(),
            );
        }
        return Ok(None);
    };
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(format!(
            "--dp-epsilon must be a finite number > 0, got {epsilon}"
        ));
    }
    let delta = delta.unwrap_or(1e-5);
    if !(delta > 0.0 && delta < 1.0) {
        return Err(format!("--dp-delta must be in (0, 1), got {delta}"));
    }
    let max_grad_norm = max_grad_norm.unwrap_or(1.0);
    if !(max_grad_norm.is_finite() && max_grad_norm > 0.0) {
        return Err(format!(
            "--dp-max-grad-norm must be a finite number > 0, got {max_grad_norm}"
        ));
    }
    Ok(Some(DpFlags {
        epsilon,
        delta,
        max_grad_norm,
    }))
}

/// What a DP run does; stored as `<out>/privacy.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DpPlan {
    pub target_epsilon: f64,
    pub delta: f64,
    pub max_grad_norm: f64,
    pub noise_multiplier: f64,
    pub sample_rate: f64,
    pub examples: usize,
    pub example_chars: usize,
    pub planned_steps: u64,
    /// Steps taken and ε spent so far (updated at the end of each invocation).
    #[serde(default)]
    pub steps: u64,
    #[serde(default)]
    pub epsilon: f64,
    pub accountant: String,
}

pub const FILE: &str = "privacy.json";

/// The Poisson batches and the plan: σ chosen for `steps` steps.
pub fn plan(
    f: DpFlags,
    train_ids: Vec<i64>,
    seq: usize,
    batch: usize,
    steps: u64,
    seed: u64,
) -> AnyResult<(PoissonTextBatches, DpPlan)> {
    let data = PoissonTextBatches::new(train_ids, seq, batch, seed)
        .map_err(|e| format!("--dp-epsilon: {e}"))?;
    let q = data.sample_rate();
    let sigma = rdp::get_noise_multiplier(f.epsilon, f.delta, q, steps, 0.01)
        .map_err(|e| format!("--dp-epsilon {}: {e}", f.epsilon))?;
    let plan = DpPlan {
        target_epsilon: f.epsilon,
        delta: f.delta,
        max_grad_norm: f.max_grad_norm,
        noise_multiplier: sigma,
        sample_rate: q,
        examples: data.num_examples(),
        example_chars: seq + 1,
        planned_steps: steps,
        steps: 0,
        epsilon: 0.0,
        accountant: "rdp".into(),
    };
    Ok((data, plan))
}

impl DpPlan {
    /// The gradient step for the Trainer.
    pub fn step(&self, batch: usize) -> AnyResult<DpTextGenerator> {
        DpTextGenerator::new(DpSgdConfig {
            noise_multiplier: self.noise_multiplier,
            max_grad_norm: self.max_grad_norm,
            expected_batch_size: batch as f64,
        })
        .map_err(|e| e.to_string())
    }
    /// ε spent after `steps` steps (RDP accountant).
    pub fn epsilon_after(&self, steps: u64) -> AnyResult<f64> {
        rdp::epsilon(self.sample_rate, self.noise_multiplier, steps, self.delta)
            .map_err(|e| e.to_string())
    }
    /// One line for the start of the run.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "DP-SGD: target ε = {} at δ = {} over {} steps | {} examples of {} characters, Poisson sampling q = {:.6} | noise multiplier σ = {:.4} (RDP accountant), per-sample clipping to {}",
            self.target_epsilon,
            self.delta,
            self.planned_steps,
            self.examples,
            self.example_chars,
            self.sample_rate,
            self.noise_multiplier,
            self.max_grad_norm
        );
        if self.delta * self.examples as f64 > 1.0 {
            s.push_str(&format!(
                "\nnote: δ = {} is above 1/N = {:.3e}; a δ below 1/N is the usual choice",
                self.delta,
                1.0 / self.examples as f64
            ));
        }
        s
    }
}

/// Checks a resumed run against the plan it was started with: the accounting assumes one σ
/// and one q throughout.
pub fn check_resume(out: &Path, plan: Option<&DpPlan>) -> AnyResult<()> {
    let path = out.join(FILE);
    let old: Option<DpPlan> = if path.is_file() {
        let s = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Some(serde_json::from_str(&s).map_err(|e| format!("{}: {e}", path.display()))?)
    } else {
        None
    };
    match (old, plan) {
        (None, None) => Ok(()),
        (Some(o), None) => Err(format!(
            "{} was trained with DP-SGD (target ε = {} at δ = {}): resume it with the same --dp-epsilon/--dp-delta/--dp-max-grad-norm",
            out.display(), o.target_epsilon, o.delta
        )),
        (None, Some(_)) => Err(format!(
            "{} was trained without DP-SGD: its earlier steps are not private, so it cannot be resumed with --dp-epsilon (start a new run)",
            out.display()
        )),
        (Some(o), Some(p)) => {
            if o.noise_multiplier != p.noise_multiplier
                || o.sample_rate != p.sample_rate
                || o.max_grad_norm != p.max_grad_norm
                || o.delta != p.delta
            {
                return Err(format!(
                    "{}: the run was started with σ = {}, q = {}, C = {}, δ = {}; these flags give σ = {}, q = {}, C = {}, δ = {}. Resume with the run's own --dp-*, --steps, --batch and --seq",
                    path.display(),
                    o.noise_multiplier, o.sample_rate, o.max_grad_norm, o.delta,
                    p.noise_multiplier, p.sample_rate, p.max_grad_norm, p.delta
                ));
            }
            Ok(())
        }
    }
}

/// Writes the plan with the steps taken so far and their ε.
pub fn record(out: &Path, plan: &DpPlan, steps: u64) -> AnyResult<f64> {
    let eps = plan.epsilon_after(steps)?;
    let rec = DpPlan {
        steps,
        epsilon: eps,
        ..plan.clone()
    };
    let json = serde_json::to_vec_pretty(&rec).map_err(|e| e.to_string())?;
    deepseek::nn::write_atomic(&out.join(FILE), &json).map_err(|e| e.to_string())?;
    Ok(eps)
}

//! Trial records ([`FrozenTrial`]), their states, and the study file format.

use super::space::Distribution;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Whether the objective is minimised or maximised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Lower is better.
    Minimize,
    /// Higher is better.
    Maximize,
}

impl Direction {
    /// Parses `"minimize"` / `"maximize"`.
    pub fn parse(s: &str) -> Result<Direction> {
        match s {
            "minimize" => Ok(Direction::Minimize),
            "maximize" => Ok(Direction::Maximize),
            _ => Err(Error::Value {
                op: "autohyper: create_study".into(),
                msg: format!("direction must be \"minimize\" or \"maximize\", got {s:?}"),
            }),
        }
    }

    /// The value as a loss (lower is better).
    pub fn loss(self, v: f64) -> f64 {
        match self {
            Direction::Minimize => v,
            Direction::Maximize => -v,
        }
    }

    /// True when `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        self.loss(a) < self.loss(b)
    }
}

/// The state of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrialState {
    /// Asked and not yet told.
    Running,
    /// Finished with a value.
    Complete,
    /// Stopped early by the pruner.
    Pruned,
    /// The objective raised (or returned NaN); the error is kept.
    Fail,
}

/// A trial as recorded in the study.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenTrial {
    /// 0, 1, 2, ... in the order trials were asked.
    pub number: u64,
    /// Its state.
    pub state: TrialState,
    /// Parameter values (numbers; choice indices for categorical ones).
    pub params: BTreeMap<String, f64>,
    /// The distribution each parameter was drawn from.
    pub distributions: BTreeMap<String, Distribution>,
    /// The objective value of a complete trial.
    pub value: Option<f64>,
    /// Values reported with `report(value, step)`, by step.
    pub intermediate_values: BTreeMap<u64, f64>,
    /// Successive halving: the value recorded when the trial reached each rung.
    pub rungs: BTreeMap<u32, f64>,
    /// Start, seconds since the Unix epoch.
    pub start_time: f64,
    /// Seconds from ask to tell.
    pub duration: Option<f64>,
    /// The error of a failed trial.
    pub error: Option<String>,
}

impl FrozenTrial {
    /// The parameters as user-facing values (numbers, or the chosen categorical values).
    pub fn params_json(&self) -> BTreeMap<String, Value> {
        self.params
            .iter()
            .map(|(k, &v)| (k.clone(), self.distributions[k].to_json(v)))
            .collect()
    }

    /// The last reported step.
    pub fn last_step(&self) -> Option<u64> {
        self.intermediate_values.keys().next_back().copied()
    }
}

/// A trial in the study file (parameters written as their user-facing values).
#[derive(Serialize, Deserialize)]
struct TrialRecord {
    number: u64,
    state: TrialState,
    params: BTreeMap<String, Value>,
    distributions: BTreeMap<String, Distribution>,
    value: Option<f64>,
    #[serde(default)]
    intermediate_values: Vec<(u64, f64)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    rungs: BTreeMap<u32, f64>,
    start_time: f64,
    duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The file's magic value.
const FORMAT: &str = "deepseek-autohyper-study";

#[derive(Serialize, Deserialize)]
struct StudyFile {
    format: String,
    version: u32,
    direction: Direction,
    trials: Vec<TrialRecord>,
}

/// Writes the study atomically (temporary file, then rename).
pub(crate) fn save(path: &Path, direction: Direction, trials: &[FrozenTrial]) -> Result<()> {
    let f = serde_json::json!({
        "format": FORMAT,
        "version": 1,
        "direction": direction,
        "trials": trials_to_json(trials),
    });
    let bytes = serde_json::to_vec_pretty(&f).map_err(|e| Error::Msg(e.to_string()))?;
    crate::nn::write_atomic(path, &bytes)
}

fn corrupt(path: &Path, msg: String) -> Error {
    Error::Value {
        op: format!("autohyper: study file {}", path.display()),
        msg: format!("corrupted or not a study file: {msg}"),
    }
}

/// Reads a study file. Trials still running when it was written (the process ended during
/// them) come back as failed.
pub(crate) fn load(path: &Path) -> Result<(Direction, Vec<FrozenTrial>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let f: StudyFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(path, e.to_string()))?;
    if f.format != FORMAT || f.version != 1 {
        return Err(corrupt(
            path,
            format!("format {:?} version {}", f.format, f.version),
        ));
    }
    let mut trials = Vec::with_capacity(f.trials.len());
    for (i, r) in f.trials.into_iter().enumerate() {
        if r.number != i as u64 {
            return Err(corrupt(path, format!("trial {i} is numbered {}", r.number)));
        }
        let mut params = BTreeMap::new();
        for (k, v) in &r.params {
            let d = r
                .distributions
                .get(k)
                .ok_or_else(|| corrupt(path, format!("trial {i}: no distribution for {k:?}")))?;
            d.validate(k).map_err(|e| corrupt(path, e.to_string()))?;
            let x = d.from_json(v).ok_or_else(|| {
                corrupt(
                    path,
                    format!("trial {i}: {k} = {v} is outside its distribution"),
                )
            })?;
            params.insert(k.clone(), x);
        }
        let (state, error) = match r.state {
            TrialState::Running => (
                TrialState::Fail,
                Some("interrupted: the process ended during the trial".to_string()),
            ),
            s => (s, r.error),
        };
        if state == TrialState::Complete && r.value.is_none() {
            return Err(corrupt(
                path,
                format!("trial {i} is complete without a value"),
            ));
        }
        trials.push(FrozenTrial {
            number: r.number,
            state,
            params,
            distributions: r.distributions,
            value: r.value,
            intermediate_values: r.intermediate_values.into_iter().collect(),
            rungs: r.rungs,
            start_time: r.start_time,
            duration: r.duration,
            error,
        });
    }
    Ok((f.direction, trials))
}

/// The trials as JSON objects (the study file's trial records: parameters as user-facing
/// values, `intermediate_values` as `[step, value]` pairs).
pub fn trials_to_json(trials: &[FrozenTrial]) -> Value {
    Value::Array(
        trials
            .iter()
            .map(|t| {
                serde_json::to_value(TrialRecord {
                    number: t.number,
                    state: t.state,
                    params: t.params_json(),
                    distributions: t.distributions.clone(),
                    value: t.value,
                    intermediate_values: t
                        .intermediate_values
                        .iter()
                        .map(|(&s, &v)| (s, v))
                        .collect(),
                    rungs: t.rungs.clone(),
                    start_time: t.start_time,
                    duration: t.duration,
                    error: t.error.clone(),
                })
                .unwrap_or(Value::Null)
            })
            .collect(),
    )
}

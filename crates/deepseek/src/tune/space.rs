//! Search spaces: the distribution of each parameter (float, log-float, int, log-int,
//! categorical) and declared spaces with conditional parameters.
//!
//! A parameter's value is held as an `f64`: the number itself for float and int parameters,
//! the index of the choice for categorical ones. The samplers model numeric parameters in a
//! transformed space (`ln` for log scales, with the integer or step grid widened by half a
//! step each side, as Optuna does) and map candidates back onto the grid.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn bad(name: &str, msg: String) -> Error {
    Error::Value {
        op: format!("autohyper: parameter {name:?}"),
        msg,
    }
}

/// The distribution a parameter is drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Distribution {
    /// A real number in `[low, high]`; on a log scale with `log`, on the grid
    /// `low, low + step, ...` with `step`.
    Float {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (inclusive).
        high: f64,
        /// Sample on a logarithmic scale (needs `low > 0`).
        #[serde(default)]
        log: bool,
        /// Grid spacing (not with `log`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<f64>,
    },
    /// An integer in `[low, high]` on the grid `low, low + step, ...`; log scale with `log`
    /// (needs `low >= 1` and `step == 1`).
    Int {
        /// Lower bound (inclusive).
        low: i64,
        /// Upper bound (inclusive).
        high: i64,
        /// Sample on a logarithmic scale.
        #[serde(default)]
        log: bool,
        /// Grid spacing.
        #[serde(default = "one")]
        step: i64,
    },
    /// One of `choices` (JSON values: strings, numbers, booleans, null).
    Categorical {
        /// The choices, in order.
        choices: Vec<Value>,
    },
}

fn one() -> i64 {
    1
}

impl Distribution {
    /// A float distribution (checked by [`Distribution::validate`]).
    pub fn float(low: f64, high: f64, log: bool) -> Distribution {
        Distribution::Float {
            low,
            high,
            log,
            step: None,
        }
    }

    /// An integer distribution with step 1.
    pub fn int(low: i64, high: i64, log: bool) -> Distribution {
        Distribution::Int {
            low,
            high,
            log,
            step: 1,
        }
    }

    /// A categorical distribution.
    pub fn categorical(choices: Vec<Value>) -> Distribution {
        Distribution::Categorical { choices }
    }

    /// Checks the bounds: an empty range (`low > high`), an empty choice list, a log scale
    /// that reaches zero or a non-positive step is a [`Error::Value`] naming the parameter.
    pub fn validate(&self, name: &str) -> Result<()> {
        match self {
            Distribution::Float {
                low,
                high,
                log,
                step,
            } => {
                if !low.is_finite() || !high.is_finite() {
                    return Err(bad(
                        name,
                        format!("bounds must be finite, got [{low}, {high}]"),
                    ));
                }
                if low > high {
                    return Err(bad(
                        name,
                        format!("empty range: low ({low}) > high ({high})"),
                    ));
                }
                if *log && *low <= 0.0 {
                    return Err(bad(name, format!("log scale needs low > 0, got {low}")));
                }
                if let Some(s) = step {
                    if !(*s > 0.0 && s.is_finite()) {
                        return Err(bad(name, format!("step must be positive, got {s}")));
                    }
                    if *log {
                        return Err(bad(name, "step and log cannot be used together".into()));
                    }
                }
            }
            Distribution::Int {
                low,
                high,
                log,
                step,
            } => {
                if low > high {
                    return Err(bad(
                        name,
                        format!("empty range: low ({low}) > high ({high})"),
                    ));
                }
                if *step <= 0 {
                    return Err(bad(name, format!("step must be positive, got {step}")));
                }
                if *log && (*low < 1 || *step != 1) {
                    return Err(bad(
                        name,
                        format!("log scale needs low >= 1 and step 1, got low {low}, step {step}"),
                    ));
                }
            }
            Distribution::Categorical { choices } => {
                if choices.is_empty() {
                    return Err(bad(name, "empty choices".into()));
                }
            }
        }
        Ok(())
    }

    /// True for categorical distributions.
    pub fn is_categorical(&self) -> bool {
        matches!(self, Distribution::Categorical { .. })
    }

    /// Number of choices of a categorical distribution (0 otherwise).
    pub fn n_choices(&self) -> usize {
        match self {
            Distribution::Categorical { choices } => choices.len(),
            _ => 0,
        }
    }

    /// The modelling interval of a numeric distribution (transformed space).
    pub fn model_bounds(&self) -> (f64, f64) {
        match *self {
            Distribution::Float {
                low,
                high,
                log,
                step,
            } => match (log, step) {
                (true, _) => (low.ln(), high.ln()),
                (false, Some(s)) => (low - s / 2.0, high + s / 2.0),
                _ => (low, high),
            },
            Distribution::Int {
                low,
                high,
                log,
                step,
            } => {
                if log {
                    ((low as f64 - 0.5).ln(), (high as f64 + 0.5).ln())
                } else {
                    (
                        low as f64 - step as f64 / 2.0,
                        high as f64 + step as f64 / 2.0,
                    )
                }
            }
            Distribution::Categorical { ref choices } => (0.0, choices.len() as f64),
        }
    }

    /// A value (number or choice index) in the transformed modelling space.
    pub fn to_model(&self, v: f64) -> f64 {
        match self {
            Distribution::Float { log: true, .. } | Distribution::Int { log: true, .. } => v.ln(),
            _ => v,
        }
    }

    /// The value (on the grid, inside the bounds) of a point of the modelling space.
    pub fn from_model(&self, x: f64) -> f64 {
        match *self {
            Distribution::Float {
                low,
                high,
                log,
                step,
            } => {
                let v = if log { x.exp() } else { x };
                let v = match step {
                    Some(s) => low + ((v - low) / s).round() * s,
                    None => v,
                };
                v.clamp(low, high)
            }
            Distribution::Int {
                low,
                high,
                log,
                step,
            } => {
                let v = if log { x.exp() } else { x };
                let k = ((v - low as f64) / step as f64).round();
                let hi_k = ((high - low) / step) as f64;
                low as f64 + k.clamp(0.0, hi_k) * step as f64
            }
            Distribution::Categorical { ref choices } => {
                x.floor().clamp(0.0, (choices.len() - 1) as f64)
            }
        }
    }

    /// The user-facing value: a JSON number (an integer for int parameters) or the choice.
    pub fn to_json(&self, v: f64) -> Value {
        match self {
            Distribution::Float { .. } => serde_json::json!(v),
            Distribution::Int { .. } => serde_json::json!(v as i64),
            Distribution::Categorical { choices } => choices[v as usize].clone(),
        }
    }

    /// The internal value of a user-facing one (`None` when it is not in the distribution).
    pub fn from_json(&self, v: &Value) -> Option<f64> {
        match self {
            Distribution::Categorical { choices } => {
                choices.iter().position(|c| c == v).map(|i| i as f64)
            }
            _ => {
                let x = v.as_f64()?;
                (self.contains(x)).then_some(x)
            }
        }
    }

    /// True when `v` is a value of this distribution.
    pub fn contains(&self, v: f64) -> bool {
        match *self {
            Distribution::Float { low, high, .. } => v >= low && v <= high,
            Distribution::Int { low, high, .. } => {
                v.fract() == 0.0 && v >= low as f64 && v <= high as f64
            }
            Distribution::Categorical { ref choices } => {
                v.fract() == 0.0 && v >= 0.0 && (v as usize) < choices.len()
            }
        }
    }
}

/// A parameter is active only when its parent (a categorical parameter declared before it)
/// took one of `values`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The parent parameter's name.
    pub parent: String,
    /// The parent's values that activate the parameter.
    pub values: Vec<Value>,
}

/// One parameter of a declared [`SearchSpace`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its distribution.
    pub dist: Distribution,
    /// When set, the parameter exists only under this condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

impl Param {
    /// A parameter without a condition.
    pub fn new(name: &str, dist: Distribution) -> Param {
        Param {
            name: name.into(),
            dist,
            condition: None,
        }
    }

    /// Makes the parameter active only when `parent` takes one of `values`.
    pub fn when(mut self, parent: &str, values: Vec<Value>) -> Param {
        self.condition = Some(Condition {
            parent: parent.into(),
            values,
        });
        self
    }
}

/// A declared search space: parameters in order, each possibly conditional on an earlier
/// categorical one. [`crate::tune::Trial::suggest_space`] samples all active parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// The parameters, parents before their children.
    pub params: Vec<Param>,
}

impl SearchSpace {
    /// An empty space.
    pub fn new() -> SearchSpace {
        SearchSpace::default()
    }

    /// Adds a parameter, checking its distribution, that its name is new and that its
    /// condition names an earlier categorical parameter and values among its choices.
    pub fn with_param(mut self, p: Param) -> Result<SearchSpace> {
        p.dist.validate(&p.name)?;
        if self.params.iter().any(|q| q.name == p.name) {
            return Err(bad(&p.name, "declared twice".into()));
        }
        if let Some(c) = &p.condition {
            let parent = self.params.iter().find(|q| q.name == c.parent);
            match parent.map(|q| &q.dist) {
                Some(Distribution::Categorical { choices }) => {
                    if c.values.is_empty() {
                        return Err(bad(&p.name, "condition with no parent values".into()));
                    }
                    if let Some(v) = c.values.iter().find(|v| !choices.contains(v)) {
                        return Err(bad(
                            &p.name,
                            format!("condition value {v} is not a choice of {:?}", c.parent),
                        ));
                    }
                }
                _ => {
                    return Err(bad(
                        &p.name,
                        format!(
                        "condition parent {:?} must be a categorical parameter declared before it",
                        c.parent
                    ),
                    ))
                }
            }
        }
        self.params.push(p);
        Ok(self)
    }

    /// Adds a float parameter (log scale with `log`).
    pub fn float(self, name: &str, low: f64, high: f64, log: bool) -> Result<SearchSpace> {
        self.with_param(Param::new(name, Distribution::float(low, high, log)))
    }

    /// Adds an int parameter (log scale with `log`).
    pub fn int(self, name: &str, low: i64, high: i64, log: bool) -> Result<SearchSpace> {
        self.with_param(Param::new(name, Distribution::int(low, high, log)))
    }

    /// Adds a categorical parameter.
    pub fn categorical(self, name: &str, choices: Vec<Value>) -> Result<SearchSpace> {
        self.with_param(Param::new(name, Distribution::categorical(choices)))
    }
}

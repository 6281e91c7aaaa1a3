//! `deepseek.autohyper` (AutoHyper, Bayesian hyper-parameter search) over
//! `deepseek::tune`: `_C._Study` and `_C._Trial`; python/deepseek/autohyper.py adds
//! Optuna's spelling (create_study, samplers, pruners, optimize with n_jobs, TrialPruned).

use crate::IntoPy;
use deepseek::tune::{
    self, Direction, Distribution, GpSampler, MedianPruner, NopPruner, Outcome, Pruner,
    RandomSampler, Sampler, Study, SuccessiveHalvingPruner, TpeSampler, Trial,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The Rust study behind `deepseek.autohyper.Study`.
#[pyclass(name = "_Study", module = "deepseek._C")]
pub struct PyStudy {
    s: Study,
}

/// The Rust trial behind `deepseek.autohyper.Trial`.
#[pyclass(name = "_Trial", module = "deepseek._C")]
pub struct PyTrial {
    t: Mutex<Trial>,
}

fn sampler(
    name: &str,
    seed: Option<u64>,
    n_startup: Option<usize>,
    n_cand: Option<usize>,
) -> PyResult<Box<dyn Sampler>> {
    Ok(match name {
        "random" => Box::new(RandomSampler::new(seed)),
        "tpe" => {
            let mut s = TpeSampler::new(seed);
            s.n_startup_trials = n_startup.unwrap_or(s.n_startup_trials);
            s.n_ei_candidates = n_cand.unwrap_or(s.n_ei_candidates).max(1);
            Box::new(s)
        }
        "gp" => {
            let mut s = GpSampler::new(seed);
            s.n_startup_trials = n_startup.unwrap_or(s.n_startup_trials);
            s.n_candidates = n_cand.unwrap_or(s.n_candidates).max(1);
            Box::new(s)
        }
        _ => return Err(PyValueError::new_err(format!("unknown sampler {name:?}"))),
    })
}

#[pymethods]
impl PyStudy {
    #[new]
    #[pyo3(signature = (direction, sampler_name, seed=None, n_startup_trials=None,
        n_candidates=None, pruner_name="nop", pruner_args=(0, 0, 1), storage=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        direction: &str,
        sampler_name: &str,
        seed: Option<u64>,
        n_startup_trials: Option<usize>,
        n_candidates: Option<usize>,
        pruner_name: &str,
        pruner_args: (u64, u64, u64),
        storage: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let dir = Direction::parse(direction).py()?;
        let smp = sampler(sampler_name, seed, n_startup_trials, n_candidates)?;
        let (a, b, c) = pruner_args;
        let pr: Box<dyn Pruner> = match pruner_name {
            "nop" => Box::new(NopPruner),
            "median" => Box::new(MedianPruner {
                n_startup_trials: a as usize,
                n_warmup_steps: b,
                interval_steps: c.max(1),
            }),
            "successive_halving" => Box::new(SuccessiveHalvingPruner {
                min_resource: a.max(1),
                reduction_factor: b.max(2),
                min_early_stopping_rate: c as u32,
            }),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown pruner {pruner_name:?}"
                )))
            }
        };
        Ok(PyStudy {
            s: Study::new(dir, smp, pr, storage.as_deref()).py()?,
        })
    }

    /// Starts a trial (the GIL is released while the sampler fits its model).
    fn ask(&self, py: Python<'_>) -> PyTrial {
        let s = self.s.clone();
        PyTrial {
            t: Mutex::new(py.detach(move || s.ask())),
        }
    }

    /// Finishes trial `number`: state "complete" (with value), "pruned" or "fail" (with
    /// error); returns the recorded state.
    #[pyo3(signature = (number, state, value=None, error=None))]
    fn tell(
        &self,
        number: u64,
        state: &str,
        value: Option<f64>,
        error: Option<String>,
    ) -> PyResult<String> {
        let o = match state {
            "complete" => Outcome::Complete(value.unwrap_or(f64::NAN)),
            "pruned" => Outcome::Pruned,
            "fail" => Outcome::Fail(error.unwrap_or_else(|| "failed".into())),
            _ => return Err(PyValueError::new_err(format!("unknown state {state:?}"))),
        };
        let t = self.s.tell(number, o).py()?;
        Ok(format!("{:?}", t.state).to_uppercase())
    }

    /// All trials as a JSON list.
    fn trials_json(&self) -> String {
        tune::trials_to_json(&self.s.trials()).to_string()
    }

    /// The number of the best complete trial.
    fn best_number(&self) -> Option<u64> {
        self.s.best_trial().map(|t| t.number)
    }

    /// "minimize" or "maximize".
    fn direction(&self) -> &'static str {
        match self.s.direction() {
            Direction::Minimize => "minimize",
            Direction::Maximize => "maximize",
        }
    }

    /// A text table of the trials.
    fn table(&self) -> String {
        tune::report::table(&self.s)
    }

    /// Writes the HTML report (best trial, plot of the search, trials).
    fn write_report(&self, path: std::path::PathBuf) -> PyResult<()> {
        tune::report::write_html(&self.s, &path).py()
    }

    /// The SVG plot of the search.
    fn svg(&self) -> String {
        tune::report::svg(&self.s)
    }
}

#[pymethods]
impl PyTrial {
    /// The trial's number.
    #[getter]
    fn number(&self) -> u64 {
        lock(&self.t).number()
    }

    /// Draws parameter `name` from a distribution given as JSON (see
    /// `deepseek::tune::Distribution`); returns the number (choice index for categorical).
    fn suggest(&self, name: &str, dist_json: &str) -> PyResult<f64> {
        let d: Distribution = serde_json::from_str(dist_json)
            .map_err(|e| PyValueError::new_err(format!("{name}: bad distribution: {e}")))?;
        lock(&self.t).suggest(name, &d).py()
    }

    /// Records an intermediate value.
    fn report(&self, value: f64, step: u64) -> PyResult<()> {
        lock(&self.t).report(value, step).py()
    }

    /// Whether the pruner stops the trial now.
    fn should_prune(&self) -> bool {
        lock(&self.t).should_prune()
    }

    /// The parameters drawn so far, as JSON.
    fn params_json(&self) -> String {
        serde_json::to_string(&lock(&self.t).params()).unwrap_or_default()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStudy>()?;
    m.add_class::<PyTrial>()?;
    Ok(())
}

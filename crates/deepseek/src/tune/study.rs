//! [`Study`] (the trials, the sampler, the pruner, the file) and [`Trial`] (the handle an
//! objective uses to draw parameters and report intermediate values).

use super::pruner::Pruner;
use super::sampler::{Context, Sampler};
use super::space::{Distribution, SearchSpace};
use super::trial::{load, save, Direction, FrozenTrial, TrialState};
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Inner {
    trials: Vec<FrozenTrial>,
}

/// A hyper-parameter search: trials so far, how new ones are sampled and pruned, and the
/// file it is saved to (atomically, after every finished trial). Cheap to clone (shared);
/// several threads may ask and tell at once.
#[derive(Clone)]
pub struct Study {
    inner: Arc<Mutex<Inner>>,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    direction: Direction,
    storage: Option<PathBuf>,
}

/// How a trial ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The objective returned this value (NaN is recorded as a failure).
    Complete(f64),
    /// The trial was pruned.
    Pruned,
    /// The objective failed with this message.
    Fail(String),
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Study {
    /// A study minimising or maximising. With `storage`, an existing file is loaded (its
    /// trials continue the study; one of the other direction or a corrupted file is an error
    /// naming it) and the study is written there after every finished trial.
    pub fn new(
        direction: Direction,
        sampler: Box<dyn Sampler>,
        pruner: Box<dyn Pruner>,
        storage: Option<&Path>,
    ) -> Result<Study> {
        let mut trials = Vec::new();
        if let Some(p) = storage {
            if p.exists() {
                let (d, t) = load(p)?;
                if d != direction {
                    return Err(Error::Value {
                        op: format!("autohyper: study file {}", p.display()),
                        msg: format!(
                            "the study was created with direction {d:?}, not {direction:?}"
                        ),
                    });
                }
                trials = t;
            }
        }
        Ok(Study {
            inner: Arc::new(Mutex::new(Inner { trials })),
            sampler: Arc::from(sampler),
            pruner: Arc::from(pruner),
            direction,
            storage: storage.map(Path::to_path_buf),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The sampler's name.
    pub fn sampler_name(&self) -> &'static str {
        self.sampler.name()
    }

    /// The study file, if any.
    pub fn storage(&self) -> Option<&Path> {
        self.storage.as_deref()
    }

    /// Starts a trial: samples the parameters every complete trial shares jointly (for
    /// samplers that do), the others when they are suggested.
    pub fn ask(&self) -> Trial {
        let mut g = self.lock();
        let number = g.trials.len() as u64;
        let ctx = Context {
            trials: &g.trials,
            direction: self.direction,
            number,
        };
        let space = self.sampler.infer_relative_space(&ctx);
        let relative = if space.is_empty() {
            BTreeMap::new()
        } else {
            self.sampler.sample_relative(&ctx, &space)
        };
        g.trials.push(FrozenTrial {
            number,
            state: TrialState::Running,
            params: BTreeMap::new(),
            distributions: BTreeMap::new(),
            value: None,
            intermediate_values: BTreeMap::new(),
            rungs: BTreeMap::new(),
            start_time: now(),
            duration: None,
            error: None,
        });
        Trial {
            study: self.clone(),
            number,
            relative,
            relative_space: space,
            pruned: false,
        }
    }

    /// Finishes trial `number` and saves the study. Telling a trial twice is an error.
    pub fn tell(&self, number: u64, outcome: Outcome) -> Result<FrozenTrial> {
        let mut g = self.lock();
        let t = g
            .trials
            .get_mut(number as usize)
            .ok_or_else(|| Error::Msg(format!("autohyper: no trial {number}")))?;
        if t.state != TrialState::Running {
            return Err(Error::Msg(format!(
                "autohyper: trial {number} is already finished ({:?})",
                t.state
            )));
        }
        match outcome {
            Outcome::Complete(v) if v.is_finite() => {
                t.state = TrialState::Complete;
                t.value = Some(v);
            }
            Outcome::Complete(v) => {
                t.state = TrialState::Fail;
                t.error = Some(format!("the objective returned {v}"));
            }
            Outcome::Pruned => t.state = TrialState::Pruned,
            Outcome::Fail(m) => {
                t.state = TrialState::Fail;
                t.error = Some(m);
            }
        }
        t.duration = Some(now() - t.start_time);
        let out = t.clone();
        if let Some(p) = &self.storage {
            save(p, self.direction, &g.trials)?;
        }
        Ok(out)
    }

    /// Writes the study file now (it is also written after every finished trial).
    pub fn save(&self) -> Result<()> {
        match &self.storage {
            Some(p) => save(p, self.direction, &self.lock().trials),
            None => Ok(()),
        }
    }

    /// Runs `objective` on new trials until `n_trials` have run or `timeout` has passed
    /// (checked before each trial). An objective that fails is recorded as a failed trial and
    /// the study goes on; one that fails after [`Trial::should_prune`] said so is recorded as
    /// pruned. Errors saving the study file stop it.
    pub fn optimize<F>(
        &self,
        mut objective: F,
        n_trials: Option<usize>,
        timeout: Option<Duration>,
    ) -> Result<()>
    where
        F: FnMut(&mut Trial) -> Result<f64>,
    {
        let start = Instant::now();
        let mut done = 0usize;
        while n_trials.is_none_or(|n| done < n) && timeout.is_none_or(|t| start.elapsed() < t) {
            let mut trial = self.ask();
            let outcome = match objective(&mut trial) {
                Ok(v) => Outcome::Complete(v),
                Err(_) if trial.pruned => Outcome::Pruned,
                Err(e) => Outcome::Fail(e.to_string()),
            };
            self.tell(trial.number, outcome)?;
            done += 1;
        }
        Ok(())
    }

    /// All trials, in order.
    pub fn trials(&self) -> Vec<FrozenTrial> {
        self.lock().trials.clone()
    }

    /// The best complete trial (the first of equals).
    pub fn best_trial(&self) -> Option<FrozenTrial> {
        let g = self.lock();
        let mut best: Option<&FrozenTrial> = None;
        for t in g.trials.iter().filter(|t| t.state == TrialState::Complete) {
            if best.is_none_or(|b| self.direction.better(t.value.unwrap(), b.value.unwrap())) {
                best = Some(t);
            }
        }
        best.cloned()
    }

    /// The best value.
    pub fn best_value(&self) -> Option<f64> {
        self.best_trial().and_then(|t| t.value)
    }

    /// The best trial's parameters.
    pub fn best_params(&self) -> Option<BTreeMap<String, Value>> {
        self.best_trial().map(|t| t.params_json())
    }
}

/// The handle an objective draws its parameters from and reports progress to.
pub struct Trial {
    study: Study,
    number: u64,
    relative: BTreeMap<String, f64>,
    relative_space: BTreeMap<String, Distribution>,
    pruned: bool,
}

impl Trial {
    /// The trial's number in its study.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// A value of `dist` for parameter `name` (a number; a choice index for categorical
    /// distributions). Asking for the same name again returns the same value; asking with a
    /// different distribution is an error, as is an empty range or empty choice list.
    pub fn suggest(&mut self, name: &str, dist: &Distribution) -> Result<f64> {
        dist.validate(name)?;
        let study = &self.study;
        let mut g = study.lock();
        let idx = self.number as usize;
        if let Some(&v) = g.trials[idx].params.get(name) {
            if &g.trials[idx].distributions[name] != dist {
                return Err(Error::Value {
                    op: format!("autohyper: parameter {name:?}"),
                    msg: "suggested again with a different distribution".into(),
                });
            }
            return Ok(v);
        }
        let v = match self.relative.get(name) {
            Some(&v) if self.relative_space.get(name) == Some(dist) => v,
            _ => {
                let ctx = Context {
                    trials: &g.trials,
                    direction: study.direction,
                    number: self.number,
                };
                study.sampler.sample_independent(&ctx, name, dist)
            }
        };
        debug_assert!(dist.contains(v), "{name}: {v} outside {dist:?}");
        let t = &mut g.trials[idx];
        t.params.insert(name.into(), v);
        t.distributions.insert(name.into(), dist.clone());
        Ok(v)
    }

    /// A float in `[low, high]` (log scale with `log`).
    pub fn suggest_float(&mut self, name: &str, low: f64, high: f64, log: bool) -> Result<f64> {
        self.suggest(name, &Distribution::float(low, high, log))
    }

    /// An int in `[low, high]` (log scale with `log`).
    pub fn suggest_int(&mut self, name: &str, low: i64, high: i64, log: bool) -> Result<i64> {
        Ok(self.suggest(name, &Distribution::int(low, high, log))? as i64)
    }

    /// One of `choices`.
    pub fn suggest_categorical(&mut self, name: &str, choices: Vec<Value>) -> Result<Value> {
        let d = Distribution::categorical(choices);
        let i = self.suggest(name, &d)?;
        Ok(d.to_json(i))
    }

    /// Every active parameter of a declared space (a conditional parameter only when its
    /// parent took one of its values), as user-facing values.
    pub fn suggest_space(&mut self, space: &SearchSpace) -> Result<BTreeMap<String, Value>> {
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for p in &space.params {
            if let Some(c) = &p.condition {
                match out.get(&c.parent) {
                    Some(v) if c.values.contains(v) => {}
                    _ => continue,
                }
            }
            let v = self.suggest(&p.name, &p.dist)?;
            out.insert(p.name.clone(), p.dist.to_json(v));
        }
        Ok(out)
    }

    /// Records an intermediate value of the objective at `step` (a later report for the same
    /// step replaces it).
    pub fn report(&self, value: f64, step: u64) -> Result<()> {
        let mut g = self.study.lock();
        let t = &mut g.trials[self.number as usize];
        if t.state != TrialState::Running {
            return Err(Error::Msg(format!(
                "autohyper: report on trial {} which is already finished",
                self.number
            )));
        }
        t.intermediate_values.insert(step, value);
        Ok(())
    }

    /// Whether the pruner would stop this trial now, given its reported values. After
    /// `true`, end the objective with an error (in Python: raise `TrialPruned`) and the trial
    /// is recorded as pruned.
    pub fn should_prune(&mut self) -> bool {
        let study = self.study.clone();
        let mut g = study.lock();
        let mut t = g.trials[self.number as usize].clone();
        let p = study.pruner.prune(&g.trials, &mut t, study.direction);
        g.trials[self.number as usize] = t;
        self.pruned |= p;
        p
    }

    /// True once [`Trial::should_prune`] returned true.
    pub fn was_pruned(&self) -> bool {
        self.pruned
    }

    /// The parameters drawn so far, as user-facing values.
    pub fn params(&self) -> BTreeMap<String, Value> {
        self.study.lock().trials[self.number as usize].params_json()
    }
}

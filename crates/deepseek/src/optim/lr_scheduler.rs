//! Learning-rate schedulers with PyTorch's semantics (`torch.optim.lr_scheduler`).
//!
//! As in PyTorch, building a scheduler already performs its first step: it records each
//! group's `initial_lr` (if no scheduler did before) and sets the learning rate of step 0
//! (`LinearLR` multiplies by `start_factor`, `OneCycleLR` sets `max_lr / div_factor`).
//! Call [`LrScheduler::step`] after each `optimizer.step()`. The schedulers use PyTorch's
//! recursive (chainable) formulas, reading the current `lr` of each group, so values match
//! PyTorch step by step, also when several schedulers act on one optimizer.
//!
//! ```
//! use deepseek::prelude::*;
//! use deepseek::optim::{LrScheduler, Optimizer, Sgd, SgdConfig, StepLR};
//! let w = Tensor::zeros(&[2], DType::F32)?.requires_grad_(true)?;
//! let mut opt = Sgd::new(vec![w], SgdConfig { lr: 1.0, ..Default::default() })?;
//! let mut sched = StepLR::new(&mut opt, 2, 0.5)?;
//! let mut lrs = vec![];
//! for _ in 0..5 {
//!     opt.step()?;
//!     sched.step(&mut opt);
//!     lrs.push(opt.lr());
//! }
//! assert_eq!(lrs, vec![1.0, 0.5, 0.5, 0.25, 0.25]);
//! # Ok::<(), deepseek::Error>(())
//! ```

use super::Optimizer;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// A learning-rate schedule acting on an optimizer's param groups.
pub trait LrScheduler {
    /// Advances one step and sets each group's `lr` (PyTorch's `scheduler.step()`).
    fn step(&mut self, opt: &mut dyn Optimizer);
    /// The learning rates set by the latest step, one per group.
    fn get_last_lr(&self) -> Vec<f64>;
    /// A serialisable snapshot for checkpoints.
    fn state(&self) -> SchedulerState;
    /// Restores a snapshot from [`LrScheduler::state`] of the same kind of scheduler.
    fn load_state(&mut self, s: &SchedulerState) -> Result<()>;
    /// Steps taken since construction (PyTorch's `last_epoch`; 0 right after construction).
    fn last_epoch(&self) -> i64;
    /// Jumps to step `epoch` (PyTorch's deprecated `step(epoch)`): the closed form where the
    /// scheduler has one, else its recursive formula at that step.
    fn step_to(&mut self, opt: &mut dyn Optimizer, epoch: i64);
    /// PyTorch's `_update_lr(epoch)`: [`LrScheduler::step_to`] without counting a step
    /// (used by [`SequentialLR`] at a milestone).
    #[doc(hidden)]
    fn update_lr_at(&mut self, opt: &mut dyn Optimizer, epoch: i64);
    /// Redoes the construction-time step (used by [`SequentialLR`]).
    #[doc(hidden)]
    fn initial_step(&mut self, opt: &mut dyn Optimizer);
    /// Moves `last_epoch` back by one, recursively (used by [`SequentialLR`]).
    #[doc(hidden)]
    fn undo_epoch(&mut self);
}

/// A serialisable snapshot of a scheduler (PyTorch's `scheduler.state_dict()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// The scheduler's name (`"StepLR"`, ...).
    pub kind: String,
    /// PyTorch's `last_epoch`.
    pub last_epoch: i64,
    /// PyTorch's `_step_count`.
    pub step_count: u64,
    /// The per-group learning rates the schedule starts from.
    pub base_lrs: Vec<f64>,
    /// The learning rates of the latest step.
    pub last_lr: Vec<f64>,
    /// The scheduler's own hyper-parameters.
    pub config: serde_json::Value,
    /// The states of the schedulers inside a [`SequentialLR`].
    pub children: Vec<SchedulerState>,
}

/// What every single scheduler tracks (PyTorch's `LRScheduler` base).
#[derive(Debug, Clone)]
struct Base {
    last_epoch: i64,
    step_count: u64,
    base_lrs: Vec<f64>,
    last_lr: Vec<f64>,
    is_initial: bool,
}

impl Base {
    /// Records `initial_lr` on groups without one and takes the base learning rates.
    fn new(opt: &mut dyn Optimizer) -> Base {
        let base_lrs = opt
            .param_groups_mut()
            .iter_mut()
            .map(|g| *g.initial_lr.get_or_insert(g.lr))
            .collect();
        Base {
            last_epoch: -1,
            step_count: 0,
            base_lrs,
            last_lr: Vec::new(),
            is_initial: false,
        }
    }

    fn apply(&mut self, opt: &mut dyn Optimizer, values: Vec<f64>) {
        for (g, v) in opt.param_groups_mut().iter_mut().zip(values) {
            g.lr = v;
        }
        self.last_lr = group_lrs(opt);
    }

    fn state(&self, kind: &str, config: serde_json::Value) -> SchedulerState {
        SchedulerState {
            kind: kind.to_string(),
            last_epoch: self.last_epoch,
            step_count: self.step_count,
            base_lrs: self.base_lrs.clone(),
            last_lr: self.last_lr.clone(),
            config,
            children: Vec::new(),
        }
    }

    fn load(&mut self, kind: &str, s: &SchedulerState) -> Result<()> {
        check_kind(kind, s)?;
        if s.base_lrs.len() != self.base_lrs.len() {
            return Err(Error::value(
                "load_state",
                format!(
                    "the {kind} state is for {} param groups, this scheduler has {}",
                    s.base_lrs.len(),
                    self.base_lrs.len()
                ),
            ));
        }
        self.last_epoch = s.last_epoch;
        self.step_count = s.step_count;
        self.base_lrs = s.base_lrs.clone();
        self.last_lr = s.last_lr.clone();
        Ok(())
    }
}

fn check_kind(kind: &str, s: &SchedulerState) -> Result<()> {
    if s.kind != kind {
        return Err(Error::value(
            "load_state",
            format!("the state is of a {} scheduler, this one is {kind}", s.kind),
        ));
    }
    Ok(())
}

fn group_lrs(opt: &dyn Optimizer) -> Vec<f64> {
    opt.param_groups().iter().map(|g| g.lr).collect()
}

fn config_value<T: Serialize>(c: &T) -> serde_json::Value {
    serde_json::to_value(c).unwrap_or(serde_json::Value::Null)
}

fn config_from<T: for<'de> Deserialize<'de>>(kind: &str, v: &serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone())
        .map_err(|e| Error::value("load_state", format!("bad {kind} config: {e}")))
}

/// Implements [`LrScheduler`] for a scheduler with fields `base: Base` and `cfg`, and methods
/// `get_lr(&self, opt)` (the recursive rule) and `closed_form(&self) -> Option<Vec<f64>>`.
macro_rules! single_scheduler {
    ($t:ident) => {
        impl $t {
            /// PyTorch's `_update_lr(epoch)`.
            fn update_lr(&mut self, opt: &mut dyn Optimizer, epoch: Option<i64>) {
                let values = match epoch {
                    None => {
                        self.base.last_epoch += 1;
                        self.get_lr(opt)
                    }
                    Some(e) => {
                        self.base.last_epoch = e;
                        match self.closed_form() {
                            Some(v) => v,
                            None => self.get_lr(opt),
                        }
                    }
                };
                self.base.apply(opt, values);
            }
        }

        impl LrScheduler for $t {
            fn step(&mut self, opt: &mut dyn Optimizer) {
                self.base.step_count += 1;
                self.update_lr(opt, None);
            }
            fn get_last_lr(&self) -> Vec<f64> {
                self.base.last_lr.clone()
            }
            fn state(&self) -> SchedulerState {
                self.base.state(stringify!($t), config_value(&self.cfg))
            }
            fn load_state(&mut self, s: &SchedulerState) -> Result<()> {
                let cfg = config_from(stringify!($t), &s.config)?;
                self.base.load(stringify!($t), s)?;
                self.cfg = cfg;
                Ok(())
            }
            fn last_epoch(&self) -> i64 {
                self.base.last_epoch
            }
            fn step_to(&mut self, opt: &mut dyn Optimizer, epoch: i64) {
                self.base.step_count += 1;
                self.update_lr(opt, Some(epoch));
            }
            fn update_lr_at(&mut self, opt: &mut dyn Optimizer, epoch: i64) {
                self.update_lr(opt, Some(epoch));
            }
            fn initial_step(&mut self, opt: &mut dyn Optimizer) {
                self.base.step_count = 0;
                self.base.is_initial = true;
                self.step(opt);
                self.base.is_initial = false;
            }
            fn undo_epoch(&mut self) {
                self.base.last_epoch -= 1;
            }
        }
    };
}

// ------------------------------------------------------------------------------- StepLR

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StepCfg {
    step_size: usize,
    gamma: f64,
}

/// Multiplies the learning rate by `gamma` every `step_size` steps (PyTorch's `StepLR`):
/// `lr = base_lr * gamma^(epoch / step_size)`.
#[derive(Debug, Clone)]
pub struct StepLR {
    base: Base,
    cfg: StepCfg,
}

impl StepLR {
    /// Attaches to `opt` and performs the initial step (the learning rate is unchanged).
    pub fn new(opt: &mut dyn Optimizer, step_size: usize, gamma: f64) -> Result<StepLR> {
        if step_size == 0 {
            return Err(Error::value("StepLR", "step_size must be positive"));
        }
        let mut s = StepLR {
            base: Base::new(opt),
            cfg: StepCfg { step_size, gamma },
        };
        s.initial_step(opt);
        Ok(s)
    }

    fn get_lr(&self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.base.last_epoch;
        let lrs = group_lrs(opt);
        if e == 0 || e % self.cfg.step_size as i64 != 0 {
            return lrs;
        }
        lrs.into_iter().map(|lr| lr * self.cfg.gamma).collect()
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let k = self.base.last_epoch.div_euclid(self.cfg.step_size as i64);
        Some(
            self.base
                .base_lrs
                .iter()
                .map(|b| b * self.cfg.gamma.powf(k as f64))
                .collect(),
        )
    }
}

single_scheduler!(StepLR);

// -------------------------------------------------------------------- CosineAnnealingLR

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CosineCfg {
    t_max: usize,
    eta_min: f64,
}

/// Cosine annealing from the base learning rate down to `eta_min` over `t_max` steps, and
/// back up over the next `t_max` (PyTorch's `CosineAnnealingLR`, recursive form):
/// `lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2`.
#[derive(Debug, Clone)]
pub struct CosineAnnealingLR {
    base: Base,
    cfg: CosineCfg,
}

impl CosineAnnealingLR {
    /// Attaches to `opt` and performs the initial step (the learning rate is unchanged).
    pub fn new(opt: &mut dyn Optimizer, t_max: usize, eta_min: f64) -> Result<CosineAnnealingLR> {
        if t_max == 0 {
            return Err(Error::value("CosineAnnealingLR", "T_max must be positive"));
        }
        let mut s = CosineAnnealingLR {
            base: Base::new(opt),
            cfg: CosineCfg { t_max, eta_min },
        };
        s.initial_step(opt);
        Ok(s)
    }

    fn get_lr(&self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let (e, t, eta) = (
            self.base.last_epoch,
            self.cfg.t_max as f64,
            self.cfg.eta_min,
        );
        let lrs = group_lrs(opt);
        if self.base.is_initial {
            return lrs;
        }
        let ef = e as f64;
        if self.base.step_count == 1 && e > 0 {
            return self
                .base
                .base_lrs
                .iter()
                .map(|b| eta + (b - eta) * (1.0 + (ef * PI / t).cos()) / 2.0)
                .collect();
        }
        if (e - 1 - self.cfg.t_max as i64).rem_euclid(2 * self.cfg.t_max as i64) == 0 {
            return lrs
                .iter()
                .zip(&self.base.base_lrs)
                .map(|(lr, b)| lr + (b - eta) * (1.0 - (PI / t).cos()) / 2.0)
                .collect();
        }
        lrs.iter()
            .map(|lr| {
                (1.0 + (PI * ef / t).cos()) / (1.0 + (PI * (ef - 1.0) / t).cos()) * (lr - eta) + eta
            })
            .collect()
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let (e, t, eta) = (
            self.base.last_epoch as f64,
            self.cfg.t_max as f64,
            self.cfg.eta_min,
        );
        Some(
            self.base
                .base_lrs
                .iter()
                .map(|b| eta + (b - eta) * (1.0 + (PI * e / t).cos()) / 2.0)
                .collect(),
        )
    }
}

single_scheduler!(CosineAnnealingLR);

// ----------------------------------------------------------------------------- LinearLR

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinearCfg {
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
}

/// Scales the base learning rate by a factor going linearly from `start_factor` to
/// `end_factor` over `total_iters` steps, then keeps it (PyTorch's `LinearLR`; PyTorch's
/// defaults are `1/3`, `1.0`, `5`). Construction multiplies the learning rate by
/// `start_factor`.
#[derive(Debug, Clone)]
pub struct LinearLR {
    base: Base,
    cfg: LinearCfg,
}

impl LinearLR {
    /// Attaches to `opt` and performs the initial step (`lr *= start_factor`).
    pub fn new(
        opt: &mut dyn Optimizer,
        start_factor: f64,
        end_factor: f64,
        total_iters: usize,
    ) -> Result<LinearLR> {
        if start_factor > 1.0 || start_factor <= 0.0 || start_factor.is_nan() {
            return Err(Error::value(
                "LinearLR",
                "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.",
            ));
        }
        if !(0.0..=1.0).contains(&end_factor) {
            return Err(Error::value(
                "LinearLR",
                "Ending multiplicative factor expected to be between 0 and 1.",
            ));
        }
        let mut s = LinearLR {
            base: Base::new(opt),
            cfg: LinearCfg {
                start_factor,
                end_factor,
                total_iters,
            },
        };
        s.initial_step(opt);
        Ok(s)
    }

    fn get_lr(&self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.base.last_epoch;
        let c = &self.cfg;
        let lrs = group_lrs(opt);
        if e == 0 {
            return lrs.iter().map(|lr| lr * c.start_factor).collect();
        }
        if self.base.is_initial || e > c.total_iters as i64 {
            return lrs;
        }
        let d = c.end_factor - c.start_factor;
        let f = 1.0 + d / (c.total_iters as f64 * c.start_factor + (e - 1) as f64 * d);
        lrs.iter().map(|lr| lr * f).collect()
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        let c = &self.cfg;
        let e = self.base.last_epoch.min(c.total_iters as i64) as f64;
        let f = c.start_factor + (c.end_factor - c.start_factor) * e / c.total_iters as f64;
        Some(self.base.base_lrs.iter().map(|b| b * f).collect())
    }
}

single_scheduler!(LinearLR);

// --------------------------------------------------------------------------- OneCycleLR

/// How [`OneCycleLR`] interpolates within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Anneal {
    /// Cosine annealing (PyTorch's `"cos"`, the default).
    Cos,
    /// Linear annealing (`"linear"`).
    Linear,
}

/// Hyper-parameters of [`OneCycleLR`], named as in PyTorch. Build with
/// [`OneCycleConfig::new`] for PyTorch's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneCycleConfig {
    /// Peak learning rate: one value for every group, or one per group.
    pub max_lr: Vec<f64>,
    /// Steps in the cycle.
    pub total_steps: usize,
    /// Fraction of the cycle spent increasing the learning rate (default 0.3).
    pub pct_start: f64,
    /// Annealing strategy (default cosine).
    pub anneal_strategy: Anneal,
    /// Cycle momentum (SGD/RMSprop `momentum`, Adam's `beta1`) inversely to the learning rate
    /// (default true, as in PyTorch).
    pub cycle_momentum: bool,
    /// Lowest momentum (default 0.85).
    pub base_momentum: f64,
    /// Highest momentum (default 0.95).
    pub max_momentum: f64,
    /// `initial_lr = max_lr / div_factor` (default 25).
    pub div_factor: f64,
    /// `min_lr = initial_lr / final_div_factor` (default 1e4).
    pub final_div_factor: f64,
    /// Use three phases (up, down to `initial_lr`, down to `min_lr`) (default false).
    pub three_phase: bool,
}

impl OneCycleConfig {
    /// PyTorch's defaults with the given peak learning rate and cycle length.
    pub fn new(max_lr: f64, total_steps: usize) -> OneCycleConfig {
        OneCycleConfig {
            max_lr: vec![max_lr],
            total_steps,
            pct_start: 0.3,
            anneal_strategy: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Point {
    Initial,
    Max,
    Min,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Phase {
    end_step: f64,
    start_lr: Point,
    end_lr: Point,
    /// true = max_momentum, false = base_momentum.
    start_momentum_max: bool,
    end_momentum_max: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OneCycleState {
    cfg: OneCycleConfig,
    max_lrs: Vec<f64>,
    min_lrs: Vec<f64>,
    phases: Vec<Phase>,
    use_beta1: bool,
}

/// The 1cycle policy (PyTorch's `OneCycleLR`): the learning rate rises from
/// `max_lr / div_factor` to `max_lr` over `pct_start` of the cycle, then anneals to
/// `initial_lr / final_div_factor`; momentum (or Adam's `beta1`) moves the opposite way.
/// Construction sets each group's `lr` (and `initial_lr`) to `max_lr / div_factor`.
///
/// PyTorch raises an error when stepped more than `total_steps` times; here further steps
/// leave the learning rate unchanged.
#[derive(Debug, Clone)]
pub struct OneCycleLR {
    base: Base,
    cfg: OneCycleState,
}

impl OneCycleLR {
    /// Attaches to `opt`, sets the starting learning rates (and momentum), and performs the
    /// initial step.
    pub fn new(opt: &mut dyn Optimizer, cfg: OneCycleConfig) -> Result<OneCycleLR> {
        let op = "OneCycleLR";
        if cfg.total_steps == 0 {
            return Err(Error::value(
                op,
                "Expected positive integer total_steps, but got 0",
            ));
        }
        if !(0.0..=1.0).contains(&cfg.pct_start) {
            return Err(Error::value(
                op,
                format!(
                    "Expected float between 0 and 1 pct_start, but got {}",
                    cfg.pct_start
                ),
            ));
        }
        let ng = opt.param_groups().len();
        let max_lrs = match cfg.max_lr.len() {
            1 => vec![cfg.max_lr[0]; ng],
            n if n == ng => cfg.max_lr.clone(),
            n => {
                return Err(Error::value(
                    op,
                    format!("expected {ng} values for max_lr, got {n}"),
                ))
            }
        };
        let total = cfg.total_steps as f64;
        let phase = |end_step, start_lr, end_lr, start_momentum_max, end_momentum_max| Phase {
            end_step,
            start_lr,
            end_lr,
            start_momentum_max,
            end_momentum_max,
        };
        let phases = if cfg.three_phase {
            vec![
                phase(
                    cfg.pct_start * total - 1.0,
                    Point::Initial,
                    Point::Max,
                    true,
                    false,
                ),
                phase(
                    2.0 * cfg.pct_start * total - 2.0,
                    Point::Max,
                    Point::Initial,
                    false,
                    true,
                ),
                phase(total - 1.0, Point::Initial, Point::Min, true, true),
            ]
        } else {
            vec![
                phase(
                    cfg.pct_start * total - 1.0,
                    Point::Initial,
                    Point::Max,
                    true,
                    false,
                ),
                phase(total - 1.0, Point::Max, Point::Min, false, true),
            ]
        };
        let mut min_lrs = Vec::with_capacity(ng);
        for (g, &m) in opt.param_groups_mut().iter_mut().zip(&max_lrs) {
            let initial = m / cfg.div_factor;
            g.initial_lr = Some(initial);
            min_lrs.push(initial / cfg.final_div_factor);
        }
        let mut use_beta1 = false;
        if cfg.cycle_momentum {
            let groups = opt.param_groups();
            use_beta1 = groups.iter().any(|g| g.options.betas.is_some());
            if !use_beta1 && groups.iter().any(|g| g.options.momentum.is_none()) {
                return Err(Error::value(
                    op,
                    "optimizer must support momentum or beta1 with `cycle_momentum` option enabled",
                ));
            }
            for g in opt.param_groups_mut() {
                set_momentum(g, use_beta1, cfg.max_momentum);
            }
        }
        let mut s = OneCycleLR {
            base: Base::new(opt),
            cfg: OneCycleState {
                cfg,
                max_lrs,
                min_lrs,
                phases,
                use_beta1,
            },
        };
        s.initial_step(opt);
        Ok(s)
    }

    fn anneal(&self, start: f64, end: f64, pct: f64) -> f64 {
        match self.cfg.cfg.anneal_strategy {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }

    fn get_lr(&self, opt: &mut dyn Optimizer) -> Vec<f64> {
        let st = &self.cfg;
        let step = self.base.last_epoch as f64;
        if self.base.last_epoch > st.cfg.total_steps as i64 {
            return group_lrs(opt);
        }
        let (mmax, mbase) = (st.cfg.max_momentum, st.cfg.base_momentum);
        let mut lrs = Vec::new();
        for (gi, g) in opt.param_groups_mut().iter_mut().enumerate() {
            let point = |p: Point| match p {
                Point::Initial => g.initial_lr.unwrap_or(st.max_lrs[gi] / st.cfg.div_factor),
                Point::Max => st.max_lrs[gi],
                Point::Min => st.min_lrs[gi],
            };
            let mut start_step = 0.0;
            let mut out = (g.lr, None);
            for (i, ph) in st.phases.iter().enumerate() {
                if step <= ph.end_step || i == st.phases.len() - 1 {
                    let pct = (step - start_step) / (ph.end_step - start_step);
                    let lr = self.anneal(point(ph.start_lr), point(ph.end_lr), pct);
                    let m = |is_max: bool| if is_max { mmax } else { mbase };
                    let mom = st.cfg.cycle_momentum.then(|| {
                        self.anneal(m(ph.start_momentum_max), m(ph.end_momentum_max), pct)
                    });
                    out = (lr, mom);
                    break;
                }
                start_step = ph.end_step;
            }
            lrs.push(out.0);
            if let Some(m) = out.1 {
                set_momentum(g, st.use_beta1, m);
            }
        }
        lrs
    }

    fn closed_form(&self) -> Option<Vec<f64>> {
        None
    }
}

fn set_momentum(g: &mut super::ParamGroup, use_beta1: bool, m: f64) {
    if use_beta1 {
        let b2 = g.options.betas.map(|b| b.1).unwrap_or(0.999);
        g.options.betas = Some((m, b2));
    } else {
        g.options.momentum = Some(m);
    }
}

single_scheduler!(OneCycleLR);

// ------------------------------------------------------------------------- SequentialLR

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SequentialCfg {
    milestones: Vec<i64>,
}

/// Runs `schedulers` one after another, switching at each milestone (PyTorch's
/// `SequentialLR`). Build the child schedulers on the same optimizer first, then pass them
/// here; construction resets the learning rates to `initial_lr` and redoes the first
/// scheduler's initial step.
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{CosineAnnealingLR, LinearLR, LrScheduler, Optimizer, SequentialLR, Sgd, SgdConfig};
/// let w = Tensor::zeros(&[2], DType::F32)?.requires_grad_(true)?;
/// let mut opt = Sgd::new(vec![w], SgdConfig { lr: 0.1, ..Default::default() })?;
/// let warmup = LinearLR::new(&mut opt, 0.1, 1.0, 3)?;
/// let cosine = CosineAnnealingLR::new(&mut opt, 10, 0.0)?;
/// let mut sched = SequentialLR::new(&mut opt, vec![Box::new(warmup), Box::new(cosine)], vec![3])?;
/// assert!((opt.lr() - 0.01).abs() < 1e-12);
/// for _ in 0..3 { sched.step(&mut opt); }
/// assert!((opt.lr() - 0.1).abs() < 1e-12); // the cosine phase starts at the base lr
/// # Ok::<(), deepseek::Error>(())
/// ```
pub struct SequentialLR {
    schedulers: Vec<Box<dyn LrScheduler>>,
    cfg: SequentialCfg,
    last_epoch: i64,
    last_lr: Vec<f64>,
}

impl std::fmt::Debug for SequentialLR {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialLR")
            .field("milestones", &self.cfg.milestones)
            .field("last_epoch", &self.last_epoch)
            .field("last_lr", &self.last_lr)
            .finish()
    }
}

impl SequentialLR {
    /// Chains `schedulers` (all built on `opt`), switching after each of `milestones` steps;
    /// needs `milestones.len() == schedulers.len() - 1`.
    pub fn new(
        opt: &mut dyn Optimizer,
        mut schedulers: Vec<Box<dyn LrScheduler>>,
        milestones: Vec<usize>,
    ) -> Result<Self> {
        let op = "SequentialLR";
        if schedulers.is_empty() {
            return Err(Error::value(
                op,
                "SequentialLR expects at least one scheduler, but got no scheduler.",
            ));
        }
        if milestones.len() + 1 != schedulers.len() {
            return Err(Error::value(
                op,
                format!(
                    "Sequential Schedulers expects number of schedulers provided to be one more than the number of \
                     milestone points, but got number of schedulers {} and the number of milestones to be equal to {}",
                    schedulers.len(),
                    milestones.len()
                ),
            ));
        }
        let milestones: Vec<i64> = milestones.into_iter().map(|m| m as i64).collect();
        for g in opt.param_groups_mut() {
            g.lr = *g.initial_lr.get_or_insert(g.lr);
        }
        for s in &mut schedulers {
            s.undo_epoch();
        }
        let idx = milestones.partition_point(|&m| m <= 0);
        schedulers[idx].initial_step(opt);
        let last_lr = schedulers[idx].get_last_lr();
        Ok(SequentialLR {
            schedulers,
            cfg: SequentialCfg { milestones },
            last_epoch: 0,
            last_lr,
        })
    }
}

impl LrScheduler for SequentialLR {
    fn step(&mut self, opt: &mut dyn Optimizer) {
        self.last_epoch += 1;
        let m = &self.cfg.milestones;
        let idx = m.partition_point(|&x| x <= self.last_epoch);
        let s = &mut self.schedulers[idx];
        if idx > 0 && m[idx - 1] == self.last_epoch {
            s.update_lr_at(opt, 0);
        } else {
            s.step(opt);
        }
        self.last_lr = s.get_last_lr();
    }
    fn get_last_lr(&self) -> Vec<f64> {
        self.last_lr.clone()
    }
    fn state(&self) -> SchedulerState {
        SchedulerState {
            kind: "SequentialLR".into(),
            last_epoch: self.last_epoch,
            step_count: 0,
            base_lrs: Vec::new(),
            last_lr: self.last_lr.clone(),
            config: config_value(&self.cfg),
            children: self.schedulers.iter().map(|s| s.state()).collect(),
        }
    }
    fn load_state(&mut self, s: &SchedulerState) -> Result<()> {
        check_kind("SequentialLR", s)?;
        if s.children.len() != self.schedulers.len() {
            return Err(Error::value(
                "load_state",
                format!(
                    "the SequentialLR state has {} schedulers, this one has {}",
                    s.children.len(),
                    self.schedulers.len()
                ),
            ));
        }
        let cfg: SequentialCfg = config_from("SequentialLR", &s.config)?;
        for (c, cs) in self.schedulers.iter_mut().zip(&s.children) {
            c.load_state(cs)?;
        }
        self.cfg = cfg;
        self.last_epoch = s.last_epoch;
        self.last_lr = s.last_lr.clone();
        Ok(())
    }
    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }
    fn step_to(&mut self, opt: &mut dyn Optimizer, epoch: i64) {
        // PyTorch has no epoch form for SequentialLR: jump the active child to its local step.
        self.last_epoch = epoch;
        let m = &self.cfg.milestones;
        let idx = m.partition_point(|&x| x <= epoch);
        let local = if idx > 0 { epoch - m[idx - 1] } else { epoch };
        let s = &mut self.schedulers[idx];
        s.step_to(opt, local);
        self.last_lr = s.get_last_lr();
    }
    fn update_lr_at(&mut self, opt: &mut dyn Optimizer, epoch: i64) {
        self.step_to(opt, epoch);
    }
    fn initial_step(&mut self, opt: &mut dyn Optimizer) {
        let idx = self.cfg.milestones.partition_point(|&m| m <= 0);
        self.schedulers[idx].initial_step(opt);
        self.last_lr = self.schedulers[idx].get_last_lr();
    }
    fn undo_epoch(&mut self) {
        for s in &mut self.schedulers {
            s.undo_epoch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, AdamConfig, ParamGroup, Sgd, SgdConfig};
    use crate::{DType, Tensor};

    // Expected sequences from PyTorch 2.15: the lr of both groups after construction and
    // after each of 12 steps.
    //
    // import torch
    // from torch.optim import lr_scheduler as L
    // def sched(make, steps=12, opt_cls=torch.optim.SGD, opt_kw=dict(momentum=0.9), extra=None):
    //     x = torch.zeros(2, requires_grad=True); y = torch.zeros(2, requires_grad=True)
    //     opt = opt_cls([{"params": [x]}, {"params": [y], "lr": 0.05}], lr=0.1, **opt_kw)
    //     s = make(opt)
    //     lrs = [[g["lr"] for g in opt.param_groups]]; ex = [extra(opt)] if extra else []
    //     for _ in range(steps):
    //         opt.step(); s.step()
    //         lrs.append([g["lr"] for g in opt.param_groups])
    //         if extra: ex.append(extra(opt))
    //     return lrs, ex
    // sched(lambda o: L.StepLR(o, 3, 0.5))
    // sched(lambda o: L.CosineAnnealingLR(o, 5, 0.001))
    // sched(lambda o: L.LinearLR(o, 0.25, 1.0, 4))
    // sched(lambda o: L.OneCycleLR(o, [1.0, 0.5], total_steps=12), extra=lambda o: [g["momentum"] for g in o.param_groups])
    // sched(lambda o: L.OneCycleLR(o, 0.2, total_steps=12, pct_start=0.25, anneal_strategy="linear", three_phase=True,
    //                              div_factor=10.0, final_div_factor=100.0),
    //       opt_cls=torch.optim.Adam, opt_kw={}, extra=lambda o: [g["betas"][0] for g in o.param_groups])
    // sched(lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 3), L.CosineAnnealingLR(o, 8, 0.0)], milestones=[3]))
    // sched(lambda o: L.SequentialLR(o, [L.StepLR(o, 2, 0.5), L.LinearLR(o, 0.5, 1.0, 4)], milestones=[5]))

    fn sgd() -> Sgd {
        let x = Tensor::zeros(&[2], DType::F32)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        let y = Tensor::zeros(&[2], DType::F32)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        let groups = vec![
            ParamGroup::new(vec![x]),
            ParamGroup::new(vec![y]).with_lr(0.05),
        ];
        Sgd::with_groups(
            groups,
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn adam() -> Adam {
        let x = Tensor::zeros(&[2], DType::F32)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        let y = Tensor::zeros(&[2], DType::F32)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        let groups = vec![
            ParamGroup::new(vec![x]),
            ParamGroup::new(vec![y]).with_lr(0.05),
        ];
        Adam::with_groups(
            groups,
            AdamConfig {
                lr: 0.1,
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// Steps `s` 12 times, returning the lrs (and `extra`) after construction and each step.
    fn collect(
        opt: &mut dyn Optimizer,
        s: &mut dyn LrScheduler,
        extra: &dyn Fn(&dyn Optimizer) -> Vec<f64>,
    ) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut lrs = vec![group_lrs(opt)];
        let mut ex = vec![extra(opt)];
        assert_eq!(s.get_last_lr(), lrs[0]);
        for _ in 0..12 {
            opt.step().unwrap();
            s.step(opt);
            lrs.push(group_lrs(opt));
            ex.push(extra(opt));
            assert_eq!(&s.get_last_lr(), lrs.last().unwrap());
        }
        (lrs, ex)
    }

    fn close(got: &[Vec<f64>], want: &[[f64; 2]], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            for k in 0..2 {
                assert!(
                    (g[k] - w[k]).abs() <= 1e-12 + 1e-12 * w[k].abs(),
                    "{what}: step {i} group {k}: got {}, expected {}",
                    g[k],
                    w[k]
                );
            }
        }
    }

    fn none(_: &dyn Optimizer) -> Vec<f64> {
        vec![]
    }

    #[test]
    fn step_lr_matches_torch() {
        let mut opt = sgd();
        let mut s = StepLR::new(&mut opt, 3, 0.5).unwrap();
        close(&collect(&mut opt, &mut s, &none).0, STEP_LR, "StepLR");
    }

    #[test]
    fn cosine_annealing_matches_torch() {
        let mut opt = sgd();
        let mut s = CosineAnnealingLR::new(&mut opt, 5, 0.001).unwrap();
        close(
            &collect(&mut opt, &mut s, &none).0,
            COSINE,
            "CosineAnnealingLR",
        );
    }

    #[test]
    fn linear_lr_matches_torch() {
        let mut opt = sgd();
        let mut s = LinearLR::new(&mut opt, 0.25, 1.0, 4).unwrap();
        close(&collect(&mut opt, &mut s, &none).0, LINEAR, "LinearLR");
        assert!(LinearLR::new(&mut opt, 0.0, 1.0, 4).is_err());
        assert!(LinearLR::new(&mut opt, 0.5, 1.5, 4).is_err());
    }

    #[test]
    fn one_cycle_matches_torch() {
        let mut opt = sgd();
        let cfg = OneCycleConfig {
            max_lr: vec![1.0, 0.5],
            ..OneCycleConfig::new(0.0, 12)
        };
        let mut s = OneCycleLR::new(&mut opt, cfg).unwrap();
        let mom = |o: &dyn Optimizer| {
            o.param_groups()
                .iter()
                .map(|g| g.options.momentum.unwrap())
                .collect()
        };
        let (lrs, moms) = collect(&mut opt, &mut s, &mom);
        close(&lrs, ONECYCLE, "OneCycleLR");
        close(&moms, ONECYCLE_MOM, "OneCycleLR momentum");
    }

    #[test]
    fn one_cycle_three_phase_linear_adam_matches_torch() {
        let mut opt = adam();
        let cfg = OneCycleConfig {
            pct_start: 0.25,
            anneal_strategy: Anneal::Linear,
            three_phase: true,
            div_factor: 10.0,
            final_div_factor: 100.0,
            ..OneCycleConfig::new(0.2, 12)
        };
        let mut s = OneCycleLR::new(&mut opt, cfg).unwrap();
        let beta1 = |o: &dyn Optimizer| {
            o.param_groups()
                .iter()
                .map(|g| g.options.betas.unwrap().0)
                .collect()
        };
        let (lrs, b1) = collect(&mut opt, &mut s, &beta1);
        close(&lrs, ONECYCLE3, "OneCycleLR three-phase");
        close(&b1, ONECYCLE3_MOM, "OneCycleLR beta1");
        // past total_steps: the lr stays
        let last = opt.lr();
        s.step(&mut opt);
        assert_eq!(opt.lr(), last);
    }

    #[test]
    fn sequential_warmup_cosine_matches_torch() {
        let mut opt = sgd();
        let a = LinearLR::new(&mut opt, 0.1, 1.0, 3).unwrap();
        let b = CosineAnnealingLR::new(&mut opt, 8, 0.0).unwrap();
        let mut s = SequentialLR::new(&mut opt, vec![Box::new(a), Box::new(b)], vec![3]).unwrap();
        close(
            &collect(&mut opt, &mut s, &none).0,
            SEQ_WARM_COS,
            "SequentialLR(LinearLR, CosineAnnealingLR)",
        );
    }

    #[test]
    fn sequential_step_linear_matches_torch() {
        let mut opt = sgd();
        let a = StepLR::new(&mut opt, 2, 0.5).unwrap();
        let b = LinearLR::new(&mut opt, 0.5, 1.0, 4).unwrap();
        let mut s = SequentialLR::new(&mut opt, vec![Box::new(a), Box::new(b)], vec![5]).unwrap();
        close(
            &collect(&mut opt, &mut s, &none).0,
            SEQ_STEP_LINEAR,
            "SequentialLR(StepLR, LinearLR)",
        );
        let mut opt = sgd();
        let a = StepLR::new(&mut opt, 2, 0.5).unwrap();
        assert!(SequentialLR::new(&mut opt, vec![Box::new(a)], vec![5]).is_err());
    }

    #[test]
    fn scheduler_state_round_trip() {
        // Save after 4 steps (optimizer and scheduler), restore into fresh ones, continue.
        let make = |opt: &mut Sgd| -> SequentialLR {
            let a = LinearLR::new(opt, 0.1, 1.0, 3).unwrap();
            let b = CosineAnnealingLR::new(opt, 8, 0.0).unwrap();
            SequentialLR::new(opt, vec![Box::new(a), Box::new(b)], vec![3]).unwrap()
        };
        let mut opt = sgd();
        let mut s = make(&mut opt);
        for _ in 0..4 {
            s.step(&mut opt);
        }
        let json = serde_json::to_string(&s.state()).unwrap();
        let os = opt.state_dict().unwrap();
        let mut opt2 = sgd();
        let mut s2 = make(&mut opt2);
        opt2.load_state_dict(&os).unwrap();
        s2.load_state(&serde_json::from_str(&json).unwrap())
            .unwrap();
        assert_eq!(s2.last_epoch(), 4);
        for _ in 0..8 {
            s.step(&mut opt);
            s2.step(&mut opt2);
            assert_eq!(group_lrs(&opt), group_lrs(&opt2));
        }
        let mut s3 = StepLR::new(&mut opt2, 2, 0.5).unwrap();
        assert!(s3.load_state(&s.state()).is_err());
    }

    #[test]
    fn step_to_uses_closed_form() {
        let mut opt = sgd();
        let mut s = StepLR::new(&mut opt, 3, 0.5).unwrap();
        s.step_to(&mut opt, 7);
        assert_eq!(s.last_epoch(), 7);
        assert_eq!(opt.lr(), 0.025);
    }

    #[rustfmt::skip]
    const STEP_LR: &[[f64; 2]] = &[
        [0.1, 0.05],
        [0.1, 0.05],
        [0.1, 0.05],
        [0.05, 0.025],
        [0.05, 0.025],
        [0.05, 0.025],
        [0.025, 0.0125],
        [0.025, 0.0125],
        [0.025, 0.0125],
        [0.0125, 0.00625],
        [0.0125, 0.00625],
        [0.0125, 0.00625],
        [0.00625, 0.003125],
    ];

    #[rustfmt::skip]
    const COSINE: &[[f64; 2]] = &[
        [0.1, 0.05],
        [0.0905463412215599, 0.045320916362186214],
        [0.06579634122155989, 0.03307091636218621],
        [0.035203658778440096, 0.017929083637813786],
        [0.010453658778440105, 0.005679083637813789],
        [0.001, 0.001],
        [0.010453658778440102, 0.005679083637813788],
        [0.03520365877844012, 0.017929083637813797],
        [0.06579634122155993, 0.03307091636218623],
        [0.09054634122155995, 0.04532091636218624],
        [0.10000000000000005, 0.05000000000000003],
        [0.09054634122155998, 0.045320916362186256],
        [0.06579634122155995, 0.03307091636218624],
    ];

    #[rustfmt::skip]
    const LINEAR: &[[f64; 2]] = &[
        [0.025, 0.0125],
        [0.043750000000000004, 0.021875000000000002],
        [0.06250000000000001, 0.03125000000000001],
        [0.08125000000000002, 0.04062500000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
        [0.10000000000000002, 0.05000000000000001],
    ];

    #[rustfmt::skip]
    const ONECYCLE: &[[f64; 2]] = &[
        [0.040000000000000036, 0.020000000000000018],
        [0.3497896542195831, 0.17489482710979154],
        [0.8792851591221287, 0.43964257956106434],
        [0.9944154354509117, 0.49720771772545586],
        [0.9330129698414117, 0.46650648492070584],
        [0.811745653949763, 0.4058728269748815],
        [0.6473789976951033, 0.32368949884755166],
        [0.46263710266697505, 0.23131855133348753],
        [0.28306099820869923, 0.14153049910434962],
        [0.1334775301888306, 0.0667387650944153],
        [0.03456698742539522, 0.01728349371269761],
        [4e-06, 2e-06],
        [0.034566987425395164, 0.017283493712697582],
    ];

    #[rustfmt::skip]
    const ONECYCLE_MOM: &[[f64; 2]] = &[
        [0.95, 0.95],
        [0.9177302443521267, 0.9177302443521267],
        [0.8625744625914449, 0.8625744625914449],
        [0.8505584586887436, 0.8505584586887436],
        [0.856698729810778, 0.856698729810778],
        [0.8688255099070633, 0.8688255099070633],
        [0.8852622412794547, 0.8852622412794547],
        [0.9037365046793212, 0.9037365046793212],
        [0.9216941869558779, 0.9216941869558779],
        [0.9366525935914912, 0.9366525935914912],
        [0.9465436874322102, 0.9465436874322102],
        [0.95, 0.95],
        [0.9465436874322102, 0.9465436874322102],
    ];

    #[rustfmt::skip]
    const ONECYCLE3: &[[f64; 2]] = &[
        [0.02, 0.02],
        [0.11000000000000001, 0.11000000000000001],
        [0.2, 0.2],
        [0.11, 0.11],
        [0.01999999999999999, 0.01999999999999999],
        [0.017171428571428574, 0.017171428571428574],
        [0.014342857142857143, 0.014342857142857143],
        [0.011514285714285715, 0.011514285714285715],
        [0.008685714285714286, 0.008685714285714286],
        [0.005857142857142856, 0.005857142857142856],
        [0.003028571428571429, 0.003028571428571429],
        [0.0001999999999999988, 0.0001999999999999988],
        [-0.002628571428571428, -0.002628571428571428],
    ];

    #[rustfmt::skip]
    const ONECYCLE3_MOM: &[[f64; 2]] = &[
        [0.95, 0.95],
        [0.8999999999999999, 0.8999999999999999],
        [0.85, 0.85],
        [0.8999999999999999, 0.8999999999999999],
        [0.95, 0.95],
        [0.95, 0.95],
        [0.95, 0.95],
        [0.95, 0.95],
        [0.95, 0.95],
        [0.95, 0.95],
        [0.95, 0.95],
        [0.95, 0.95],
        [0.95, 0.95],
    ];

    #[rustfmt::skip]
    const SEQ_WARM_COS: &[[f64; 2]] = &[
        [0.010000000000000002, 0.005000000000000001],
        [0.04, 0.02],
        [0.07, 0.035],
        [0.1, 0.05],
        [0.09619397662556434, 0.04809698831278217],
        [0.08535533905932738, 0.04267766952966369],
        [0.0691341716182545, 0.03456708580912725],
        [0.05, 0.025],
        [0.030865828381745515, 0.015432914190872758],
        [0.014644660940672627, 0.0073223304703363135],
        [0.0038060233744356634, 0.0019030116872178317],
        [0.0, 0.0],
        [0.0038060233744356634, 0.0019030116872178317],
    ];

    #[rustfmt::skip]
    const SEQ_STEP_LINEAR: &[[f64; 2]] = &[
        [0.1, 0.05],
        [0.1, 0.05],
        [0.05, 0.025],
        [0.05, 0.025],
        [0.025, 0.0125],
        [0.05, 0.025],
        [0.0625, 0.03125],
        [0.075, 0.0375],
        [0.08750000000000001, 0.043750000000000004],
        [0.1, 0.05],
        [0.1, 0.05],
        [0.1, 0.05],
        [0.1, 0.05],
    ];
}

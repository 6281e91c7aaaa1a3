//! The optimizers and LR schedulers of `deepseek::optim`, for `deepseek.optim` (whose Python
//! classes keep PyTorch's `param_groups` dicts in sync with these objects).

use crate::tensor::{tensor_list, PyTensor};
use crate::IntoPy;
use deepseek::optim::{
    clip_grad_norm_, clip_grad_value_, Adagrad, AdagradConfig, Adam, AdamConfig, AdamVariantConfig,
    AdamW, Anneal, CosineAnnealingLR, GroupOptions, LinearLR, LrScheduler, NAdam, OneCycleConfig,
    OneCycleLR, OptimState, Optimizer, ParamGroup, RAdam, RmsProp, RmsPropConfig, SchedulerState,
    SequentialLR, Sgd, SgdConfig, StepLR,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

enum Opt {
    Sgd(Sgd),
    Adam(Adam),
    AdamW(AdamW),
    RmsProp(RmsProp),
    Adagrad(Adagrad),
    RAdam(RAdam),
    NAdam(NAdam),
}

impl Opt {
    fn dyn_mut(&mut self) -> &mut dyn Optimizer {
        match self {
            Opt::Sgd(o) => o,
            Opt::Adam(o) => o,
            Opt::AdamW(o) => o,
            Opt::RmsProp(o) => o,
            Opt::Adagrad(o) => o,
            Opt::RAdam(o) => o,
            Opt::NAdam(o) => o,
        }
    }
    fn dyn_ref(&self) -> &dyn Optimizer {
        match self {
            Opt::Sgd(o) => o,
            Opt::Adam(o) => o,
            Opt::AdamW(o) => o,
            Opt::RmsProp(o) => o,
            Opt::Adagrad(o) => o,
            Opt::RAdam(o) => o,
            Opt::NAdam(o) => o,
        }
    }
}

/// A Rust optimizer (`kind` is `"SGD"`, `"Adam"`, `"AdamW"`, `"RMSprop"`, `"Adagrad"`,
/// `"RAdam"` or `"NAdam"`).
#[pyclass(name = "Optimizer", module = "deepseek._C", unsendable)]
pub struct PyOptimizer {
    opt: Opt,
}

fn get<'py, T: for<'a> FromPyObject<'a, 'py>>(
    d: &Bound<'py, PyDict>,
    k: &str,
) -> PyResult<Option<T>> {
    match d.get_item(k)? {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v
            .extract::<T>()
            .map(Some)
            .map_err(|_| PyTypeError::new_err(format!("optimizer option '{k}' has a wrong type"))),
    }
}

fn betas(d: &Bound<'_, PyDict>) -> PyResult<Option<(f64, f64)>> {
    get::<(f64, f64)>(d, "betas")
}

fn group_from(d: &Bound<'_, PyDict>) -> PyResult<ParamGroup> {
    let params = match d.get_item("params")? {
        Some(p) => tensor_list(&p)?,
        None => return Err(PyValueError::new_err("a parameter group needs 'params'")),
    };
    let mut g = ParamGroup::new(params);
    if let Some(lr) = get::<f64>(d, "lr")? {
        g.lr = lr;
    }
    if let Some(wd) = get::<f64>(d, "weight_decay")? {
        g.weight_decay = wd;
    }
    g.initial_lr = get::<f64>(d, "initial_lr")?;
    g.options = GroupOptions {
        momentum: get(d, "momentum")?,
        dampening: get(d, "dampening")?,
        nesterov: get(d, "nesterov")?,
        betas: betas(d)?,
        eps: get(d, "eps")?,
        amsgrad: get(d, "amsgrad")?,
        alpha: get(d, "alpha")?,
        centered: get(d, "centered")?,
        maximize: get(d, "maximize")?,
        lr_decay: get(d, "lr_decay")?,
        initial_accumulator_value: get(d, "initial_accumulator_value")?,
        momentum_decay: get(d, "momentum_decay")?,
        decoupled_weight_decay: get(d, "decoupled_weight_decay")?,
    };
    Ok(g)
}

fn group_dict<'py>(py: Python<'py>, g: &ParamGroup) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("lr", g.lr)?;
    d.set_item("weight_decay", g.weight_decay)?;
    if let Some(i) = g.initial_lr {
        d.set_item("initial_lr", i)?;
    }
    let o = &g.options;
    macro_rules! opt {
        ($($f:ident),*) => { $( if let Some(v) = o.$f { d.set_item(stringify!($f), v)?; } )* };
    }
    opt!(
        momentum,
        dampening,
        nesterov,
        betas,
        eps,
        amsgrad,
        alpha,
        centered,
        maximize,
        lr_decay,
        initial_accumulator_value,
        momentum_decay,
        decoupled_weight_decay
    );
    Ok(d)
}

#[pymethods]
impl PyOptimizer {
    /// `Optimizer(kind, groups, defaults)`: `groups` is a list of dicts with `params` and
    /// per-group hyper-parameters; `defaults` holds the optimizer's hyper-parameters.
    #[new]
    fn new(kind: &str, groups: &Bound<'_, PyList>, defaults: &Bound<'_, PyDict>) -> PyResult<Self> {
        let gs: Vec<ParamGroup> = groups
            .iter()
            .map(|g| group_from(g.cast::<PyDict>()?))
            .collect::<PyResult<_>>()?;
        let maximize = get::<bool>(defaults, "maximize")?.unwrap_or(false);
        let opt = match kind {
            "SGD" => Opt::Sgd(
                Sgd::with_groups(
                    gs,
                    SgdConfig {
                        lr: get(defaults, "lr")?.unwrap_or(1e-3),
                        momentum: get(defaults, "momentum")?.unwrap_or(0.0),
                        dampening: get(defaults, "dampening")?.unwrap_or(0.0),
                        nesterov: get(defaults, "nesterov")?.unwrap_or(false),
                        weight_decay: get(defaults, "weight_decay")?.unwrap_or(0.0),
                        maximize,
                    },
                )
                .py()?,
            ),
            "Adam" | "AdamW" => {
                let wd_default = if kind == "AdamW" { 1e-2 } else { 0.0 };
                let cfg = AdamConfig {
                    lr: get(defaults, "lr")?.unwrap_or(1e-3),
                    betas: betas(defaults)?.unwrap_or((0.9, 0.999)),
                    eps: get(defaults, "eps")?.unwrap_or(1e-8),
                    weight_decay: get(defaults, "weight_decay")?.unwrap_or(wd_default),
                    amsgrad: get(defaults, "amsgrad")?.unwrap_or(false),
                    maximize,
                };
                if kind == "AdamW" {
                    Opt::AdamW(AdamW::with_groups(gs, cfg).py()?)
                } else {
                    Opt::Adam(Adam::with_groups(gs, cfg).py()?)
                }
            }
            "RMSprop" => Opt::RmsProp(
                RmsProp::with_groups(
                    gs,
                    RmsPropConfig {
                        lr: get(defaults, "lr")?.unwrap_or(1e-2),
                        alpha: get(defaults, "alpha")?.unwrap_or(0.99),
                        eps: get(defaults, "eps")?.unwrap_or(1e-8),
                        weight_decay: get(defaults, "weight_decay")?.unwrap_or(0.0),
                        momentum: get(defaults, "momentum")?.unwrap_or(0.0),
                        centered: get(defaults, "centered")?.unwrap_or(false),
                        maximize,
                    },
                )
                .py()?,
            ),
            "Adagrad" => {
                let d = AdagradConfig::default();
                Opt::Adagrad(
                    Adagrad::with_groups(
                        gs,
                        AdagradConfig {
                            lr: get(defaults, "lr")?.unwrap_or(d.lr),
                            lr_decay: get(defaults, "lr_decay")?.unwrap_or(d.lr_decay),
                            weight_decay: get(defaults, "weight_decay")?.unwrap_or(0.0),
                            initial_accumulator_value: get(defaults, "initial_accumulator_value")?
                                .unwrap_or(0.0),
                            eps: get(defaults, "eps")?.unwrap_or(d.eps),
                            maximize,
                        },
                    )
                    .py()?,
                )
            }
            "RAdam" | "NAdam" => {
                let d = if kind == "RAdam" {
                    AdamVariantConfig::radam_default()
                } else {
                    AdamVariantConfig::nadam_default()
                };
                let cfg = AdamVariantConfig {
                    lr: get(defaults, "lr")?.unwrap_or(d.lr),
                    betas: betas(defaults)?.unwrap_or(d.betas),
                    eps: get(defaults, "eps")?.unwrap_or(d.eps),
                    weight_decay: get(defaults, "weight_decay")?.unwrap_or(0.0),
                    decoupled_weight_decay: get(defaults, "decoupled_weight_decay")?
                        .unwrap_or(false),
                    momentum_decay: get(defaults, "momentum_decay")?.unwrap_or(d.momentum_decay),
                    maximize,
                };
                if kind == "RAdam" {
                    Opt::RAdam(RAdam::with_groups(gs, cfg).py()?)
                } else {
                    Opt::NAdam(NAdam::with_groups(gs, cfg).py()?)
                }
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown optimizer kind '{other}' (SGD, Adam, AdamW, RMSprop, Adagrad, RAdam, NAdam)"
                )))
            }
        };
        Ok(PyOptimizer { opt })
    }
    /// One update of every parameter that has a gradient.
    fn step(&mut self, py: Python<'_>) -> PyResult<()> {
        let opt = &mut self.opt;
        // The update runs without the GIL.
        py.detach(|| opt.dyn_mut().step()).py()
    }
    /// Sets every parameter's `.grad` to None.
    fn zero_grad(&mut self) {
        self.opt.dyn_mut().zero_grad();
    }
    fn add_param_group(&mut self, group: &Bound<'_, PyDict>) -> PyResult<()> {
        let g = group_from(group)?;
        match &mut self.opt {
            Opt::Sgd(o) => o.add_param_group(g),
            Opt::Adam(o) => o.add_param_group(g),
            Opt::AdamW(o) => o.add_param_group(g),
            Opt::RmsProp(o) => o.add_param_group(g),
            Opt::Adagrad(o) => o.add_param_group(g),
            Opt::RAdam(o) => o.add_param_group(g),
            Opt::NAdam(o) => o.add_param_group(g),
        }
        .py()
    }
    /// The hyper-parameters of every group (without the params), as dicts.
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.opt
            .dyn_ref()
            .param_groups()
            .iter()
            .map(|g| group_dict(py, g))
            .collect()
    }
    /// The parameters of group `i`.
    fn group_params(&self, i: usize) -> PyResult<Vec<PyTensor>> {
        let gs = self.opt.dyn_ref().param_groups();
        let g = gs
            .get(i)
            .ok_or_else(|| PyValueError::new_err(format!("no parameter group {i}")))?;
        Ok(g.params.iter().map(|t| PyTensor { t: t.clone() }).collect())
    }
    /// Writes the hyper-parameters of a dict into group `i`.
    fn set_group(&mut self, i: usize, d: &Bound<'_, PyDict>) -> PyResult<()> {
        let gs = self.opt.dyn_mut().param_groups_mut();
        let n = gs.len();
        let g = gs
            .get_mut(i)
            .ok_or_else(|| PyValueError::new_err(format!("no parameter group {i} (of {n})")))?;
        if let Some(lr) = get::<f64>(d, "lr")? {
            if lr.is_nan() || lr < 0.0 {
                return Err(PyValueError::new_err(format!(
                    "Invalid learning rate: {lr}"
                )));
            }
            g.lr = lr;
        }
        if let Some(wd) = get::<f64>(d, "weight_decay")? {
            g.weight_decay = wd;
        }
        if let Some(i) = get::<f64>(d, "initial_lr")? {
            g.initial_lr = Some(i);
        }
        let o = &mut g.options;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = get(d, stringify!($f))? { o.$f = Some(v); } )* };
        }
        set!(momentum, dampening, nesterov, eps, amsgrad, alpha, centered, maximize);
        if let Some(b) = betas(d)? {
            o.betas = Some(b);
        }
        Ok(())
    }
    /// The whole state as JSON (deepseek's `OptimState`).
    fn state_json(&self) -> PyResult<String> {
        self.opt.dyn_ref().state_dict().py()?.to_json().py()
    }
    fn load_state_json(&mut self, s: &str) -> PyResult<()> {
        let st = OptimState::from_json(s).py()?;
        self.opt.dyn_mut().load_state_dict(&st).py()
    }
}

// ------------------------------------------------------------------------------ schedulers

/// A Rust LR scheduler attached to an [`PyOptimizer`].
#[pyclass(name = "LRScheduler", module = "deepseek._C", unsendable)]
pub struct PyScheduler {
    s: Option<Box<dyn LrScheduler>>,
    opt: Py<PyOptimizer>,
}

impl PyScheduler {
    fn sched(&mut self) -> PyResult<&mut Box<dyn LrScheduler>> {
        self.s.as_mut().ok_or_else(|| {
            PyRuntimeError::new_err(
                "this scheduler was moved into a SequentialLR; step the SequentialLR instead",
            )
        })
    }
}

fn attach(
    py: Python<'_>,
    opt: &Bound<'_, PyOptimizer>,
    f: impl FnOnce(&mut dyn Optimizer) -> deepseek::Result<Box<dyn LrScheduler>>,
) -> PyResult<PyScheduler> {
    let s = {
        let mut o = opt.borrow_mut();
        f(o.opt.dyn_mut()).py()?
    };
    Ok(PyScheduler {
        s: Some(s),
        opt: opt.clone().unbind().clone_ref(py),
    })
}

#[pyfunction]
fn step_lr(
    py: Python<'_>,
    opt: &Bound<'_, PyOptimizer>,
    step_size: usize,
    gamma: f64,
) -> PyResult<PyScheduler> {
    attach(py, opt, |o| {
        Ok(Box::new(StepLR::new(o, step_size, gamma)?) as Box<dyn LrScheduler>)
    })
}

#[pyfunction]
fn cosine_annealing_lr(
    py: Python<'_>,
    opt: &Bound<'_, PyOptimizer>,
    t_max: usize,
    eta_min: f64,
) -> PyResult<PyScheduler> {
    attach(py, opt, |o| {
        Ok(Box::new(CosineAnnealingLR::new(o, t_max, eta_min)?) as Box<dyn LrScheduler>)
    })
}

#[pyfunction]
fn linear_lr(
    py: Python<'_>,
    opt: &Bound<'_, PyOptimizer>,
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
) -> PyResult<PyScheduler> {
    attach(py, opt, |o| {
        Ok(
            Box::new(LinearLR::new(o, start_factor, end_factor, total_iters)?)
                as Box<dyn LrScheduler>,
        )
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn one_cycle_lr(
    py: Python<'_>,
    opt: &Bound<'_, PyOptimizer>,
    max_lr: Vec<f64>,
    total_steps: usize,
    pct_start: f64,
    anneal_strategy: &str,
    cycle_momentum: bool,
    base_momentum: f64,
    max_momentum: f64,
    div_factor: f64,
    final_div_factor: f64,
    three_phase: bool,
) -> PyResult<PyScheduler> {
    let anneal = match anneal_strategy {
        "cos" => Anneal::Cos,
        "linear" => Anneal::Linear,
        s => {
            return Err(PyValueError::new_err(format!(
                "anneal_strategy must be one of 'cos' or 'linear', instead got {s}"
            )))
        }
    };
    let mut cfg = OneCycleConfig::new(0.0, total_steps);
    cfg.max_lr = max_lr;
    cfg.pct_start = pct_start;
    cfg.anneal_strategy = anneal;
    cfg.cycle_momentum = cycle_momentum;
    cfg.base_momentum = base_momentum;
    cfg.max_momentum = max_momentum;
    cfg.div_factor = div_factor;
    cfg.final_div_factor = final_div_factor;
    cfg.three_phase = three_phase;
    attach(py, opt, |o| {
        Ok(Box::new(OneCycleLR::new(o, cfg)?) as Box<dyn LrScheduler>)
    })
}

/// Chains schedulers (which are moved into the new one) switching at `milestones`.
#[pyfunction]
fn sequential_lr(
    py: Python<'_>,
    opt: &Bound<'_, PyOptimizer>,
    schedulers: Vec<Bound<'_, PyScheduler>>,
    milestones: Vec<usize>,
) -> PyResult<PyScheduler> {
    let mut inner = Vec::with_capacity(schedulers.len());
    for s in &schedulers {
        if !s.borrow().opt.is(opt) {
            return Err(PyValueError::new_err(
                "SequentialLR: every scheduler must belong to the same optimizer",
            ));
        }
    }
    for s in &schedulers {
        let b = s.borrow_mut().s.take().ok_or_else(|| {
            PyRuntimeError::new_err("SequentialLR: a scheduler was already moved elsewhere")
        })?;
        inner.push(b);
    }
    attach(py, opt, |o| {
        Ok(Box::new(SequentialLR::new(o, inner, milestones)?) as Box<dyn LrScheduler>)
    })
}

#[pymethods]
impl PyScheduler {
    fn step(&mut self, py: Python<'_>) -> PyResult<()> {
        let opt = self.opt.clone_ref(py);
        let mut o = opt.borrow_mut(py);
        self.sched()?.step(o.opt.dyn_mut());
        Ok(())
    }
    /// PyTorch's deprecated `step(epoch)`.
    fn step_to(&mut self, py: Python<'_>, epoch: i64) -> PyResult<()> {
        let opt = self.opt.clone_ref(py);
        let mut o = opt.borrow_mut(py);
        self.sched()?.step_to(o.opt.dyn_mut(), epoch);
        Ok(())
    }
    fn get_last_lr(&mut self) -> PyResult<Vec<f64>> {
        Ok(self.sched()?.get_last_lr())
    }
    #[getter]
    fn last_epoch(&mut self) -> PyResult<i64> {
        Ok(self.sched()?.last_epoch())
    }
    fn state_json(&mut self) -> PyResult<String> {
        serde_json::to_string(&self.sched()?.state())
            .map_err(|e| PyRuntimeError::new_err(format!("scheduler state: {e}")))
    }
    fn load_state_json(&mut self, s: &str) -> PyResult<()> {
        let st: SchedulerState = serde_json::from_str(s)
            .map_err(|e| PyValueError::new_err(format!("scheduler state: cannot parse: {e}")))?;
        self.sched()?.load_state(&st).py()
    }
}

/// Clips the total gradient norm of `parameters` to `max_norm`; returns the norm before
/// clipping as a 0-d tensor.
#[pyfunction]
#[pyo3(signature = (parameters, max_norm, norm_type=2.0, error_if_nonfinite=false))]
fn clip_grad_norm(
    parameters: &Bound<'_, PyAny>,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> PyResult<PyTensor> {
    let ps = tensor_list(parameters)?;
    let n = clip_grad_norm_(&ps, max_norm, norm_type).py()?;
    if error_if_nonfinite && !n.is_finite() {
        return Err(PyRuntimeError::new_err(format!(
            "The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be clipped."
        )));
    }
    Ok(PyTensor {
        t: deepseek::Tensor::full(&[], n, deepseek::DType::F32).py()?,
    })
}

#[pyfunction]
fn clip_grad_value(parameters: &Bound<'_, PyAny>, clip_value: f64) -> PyResult<()> {
    let ps = tensor_list(parameters)?;
    clip_grad_value_(&ps, clip_value).py()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOptimizer>()?;
    m.add_class::<PyScheduler>()?;
    m.add_function(wrap_pyfunction!(step_lr, m)?)?;
    m.add_function(wrap_pyfunction!(cosine_annealing_lr, m)?)?;
    m.add_function(wrap_pyfunction!(linear_lr, m)?)?;
    m.add_function(wrap_pyfunction!(one_cycle_lr, m)?)?;
    m.add_function(wrap_pyfunction!(sequential_lr, m)?)?;
    m.add_function(wrap_pyfunction!(clip_grad_norm, m)?)?;
    m.add_function(wrap_pyfunction!(clip_grad_value, m)?)?;
    Ok(())
}

//! Optimizers, learning-rate schedulers and gradient clipping, with PyTorch's update rules,
//! hyper-parameter names and defaults.
//!
//! - [`Sgd`], [`Adam`], [`AdamW`], [`RmsProp`], [`Adagrad`], [`RAdam`], [`NAdam`] implement
//!   [`Optimizer`].
//! - Parameters are organised in [`ParamGroup`]s (PyTorch's `param_groups`); each group may
//!   override the optimizer's learning rate, weight decay and other hyper-parameters.
//! - [`Optimizer::state_dict`] / [`Optimizer::load_state_dict`] save and restore the whole
//!   optimizer state as a serde-serialisable [`OptimState`].
//! - [`lr_scheduler`] holds `StepLR`, `CosineAnnealingLR`, `LinearLR`, `OneCycleLR` and
//!   `SequentialLR`; [`clip`] holds `clip_grad_norm_` and `clip_grad_value_`.
//!
//! ```
//! use deepseek::prelude::*;
//! use deepseek::optim::{Adam, AdamConfig, Optimizer};
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], &[2])?.requires_grad_(true)?;
//! let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() })?;
//! for _ in 0..3 {
//!     opt.zero_grad();
//!     w.square()?.sum_all()?.backward()?;
//!     opt.step()?;
//! }
//! assert!(w.to_vec::<f32>()?[0] < 1.0);
//! # Ok::<(), deepseek::Error>(())
//! ```

pub mod adagrad;
pub mod adam;
pub mod clip;
pub(crate) mod fused;
pub mod lr_scheduler;
pub mod radam;
pub mod rmsprop;
pub mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW};
pub use clip::{clip_grad_norm_, clip_grad_value_, total_grad_norm};
pub use lr_scheduler::{
    Anneal, CosineAnnealingLR, LinearLR, LrScheduler, OneCycleConfig, OneCycleLR, SchedulerState,
    SequentialLR, StepLR,
};
pub use radam::{AdamVariantConfig, NAdam, RAdam};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};

use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// An optimizer: updates its parameters in place from their `.grad()`.
///
/// Object safe, so schedulers and training loops can hold a `&mut dyn Optimizer`.
pub trait Optimizer {
    /// Performs one update of every parameter that has a gradient (parameters whose
    /// `.grad()` is `None` are skipped, as in PyTorch).
    fn step(&mut self) -> Result<()>;
    /// Clears every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
    fn zero_grad(&mut self);
    /// The parameter groups with their current hyper-parameters.
    fn param_groups(&self) -> &[ParamGroup];
    /// Mutable access to the parameter groups (to change a group's `lr`, say).
    fn param_groups_mut(&mut self) -> &mut [ParamGroup];
    /// The learning rate of group 0.
    fn lr(&self) -> f64 {
        self.param_groups().first().map(|g| g.lr).unwrap_or(0.0)
    }
    /// Sets the learning rate of every group.
    fn set_lr(&mut self, lr: f64) {
        for g in self.param_groups_mut() {
            g.lr = lr;
        }
    }
    /// A snapshot of the optimizer: every group's hyper-parameters and every parameter's state.
    fn state_dict(&self) -> Result<OptimState>;
    /// Restores a snapshot taken by [`Optimizer::state_dict`] of an optimizer of the same kind
    /// over parameters of the same shapes. Group hyper-parameters are restored too.
    fn load_state_dict(&mut self, s: &OptimState) -> Result<()>;
}

/// Per-group overrides of an optimizer's hyper-parameters other than `lr` and
/// `weight_decay`. `None` means "the optimizer's config value"; after construction the
/// optimizer fills in every field it uses, so each group shows its effective values
/// (schedulers such as `OneCycleLR` change `momentum` / `betas` here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupOptions {
    /// SGD / RMSprop momentum factor.
    pub momentum: Option<f64>,
    /// SGD dampening.
    pub dampening: Option<f64>,
    /// SGD Nesterov momentum.
    pub nesterov: Option<bool>,
    /// Adam / AdamW `(beta1, beta2)`.
    pub betas: Option<(f64, f64)>,
    /// Adam / RMSprop epsilon.
    pub eps: Option<f64>,
    /// Adam / AdamW AMSGrad variant.
    pub amsgrad: Option<bool>,
    /// RMSprop smoothing constant.
    pub alpha: Option<f64>,
    /// RMSprop centered variant.
    pub centered: Option<bool>,
    /// Maximize the objective instead of minimizing it.
    pub maximize: Option<bool>,
    /// Adagrad learning-rate decay.
    #[serde(default)]
    pub lr_decay: Option<f64>,
    /// Adagrad's starting squared-gradient sum.
    #[serde(default)]
    pub initial_accumulator_value: Option<f64>,
    /// NAdam momentum decay.
    #[serde(default)]
    pub momentum_decay: Option<f64>,
    /// RAdam / NAdam decoupled (AdamW-style) weight decay.
    #[serde(default)]
    pub decoupled_weight_decay: Option<bool>,
}

/// A group of parameters sharing hyper-parameters (PyTorch's `param_groups` entry).
///
/// Build one with [`ParamGroup::new`] and the `with_*` methods; whatever is left unset takes
/// the optimizer's config value when the optimizer is built.
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
/// let body = Tensor::zeros(&[4], DType::F32)?.requires_grad_(true)?;
/// let head = Tensor::zeros(&[2], DType::F32)?.requires_grad_(true)?;
/// let opt = Sgd::with_groups(
///     vec![ParamGroup::new(vec![body]), ParamGroup::new(vec![head]).with_lr(0.1)],
///     SgdConfig { lr: 0.01, momentum: 0.9, ..Default::default() },
/// )?;
/// assert_eq!(opt.param_groups()[0].lr, 0.01);
/// assert_eq!(opt.param_groups()[1].lr, 0.1);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ParamGroup {
    /// The parameters (leaf tensors) this group updates.
    pub params: Vec<Tensor>,
    /// Learning rate. NaN (what [`ParamGroup::new`] leaves) means "the optimizer's `lr`".
    pub lr: f64,
    /// Weight decay. NaN (what [`ParamGroup::new`] leaves) means "the optimizer's".
    pub weight_decay: f64,
    /// The learning rate schedulers start from (PyTorch's `initial_lr`); set by the first
    /// scheduler attached to the optimizer.
    pub initial_lr: Option<f64>,
    /// Overrides of the optimizer's other hyper-parameters.
    pub options: GroupOptions,
}

impl ParamGroup {
    /// A group over `params` taking every hyper-parameter from the optimizer.
    pub fn new(params: Vec<Tensor>) -> ParamGroup {
        ParamGroup {
            params,
            lr: f64::NAN,
            weight_decay: f64::NAN,
            initial_lr: None,
            options: GroupOptions::default(),
        }
    }
    /// Overrides the learning rate.
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// Overrides the weight decay.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
    /// Overrides the momentum (SGD, RMSprop).
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.options.momentum = Some(momentum);
        self
    }
    /// Overrides the betas (Adam, AdamW).
    pub fn with_betas(mut self, betas: (f64, f64)) -> Self {
        self.options.betas = Some(betas);
        self
    }
    /// Overrides epsilon (Adam, AdamW, RMSprop).
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.options.eps = Some(eps);
        self
    }
    /// Replaces all other overrides at once.
    pub fn with_options(mut self, options: GroupOptions) -> Self {
        self.options = options;
        self
    }
    /// The group's hyper-parameters (without its parameters) for a state dict.
    fn hyper(&self) -> GroupHyper {
        GroupHyper {
            lr: self.lr,
            weight_decay: self.weight_decay,
            initial_lr: self.initial_lr,
            options: self.options.clone(),
        }
    }
}

/// A serialisable snapshot of an optimizer (PyTorch's `optimizer.state_dict()`), for
/// checkpoints: the optimizer's kind, and per group its hyper-parameters and the state of
/// each parameter, by position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimState {
    /// `"SGD"`, `"Adam"`, `"AdamW"` or `"RMSprop"`.
    pub optimizer: String,
    /// One entry per parameter group, in order.
    pub param_groups: Vec<GroupState>,
}

impl OptimState {
    /// The snapshot as JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::Msg(format!("optimizer state: cannot serialise: {e}")))
    }
    /// A snapshot from JSON written by [`OptimState::to_json`].
    pub fn from_json(s: &str) -> Result<OptimState> {
        serde_json::from_str(s)
            .map_err(|e| Error::Msg(format!("optimizer state: cannot parse: {e}")))
    }
}

/// The hyper-parameters of one group in an [`OptimState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupHyper {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// The schedulers' starting learning rate, if one was attached.
    pub initial_lr: Option<f64>,
    /// The other hyper-parameters.
    pub options: GroupOptions,
}

/// One parameter group in an [`OptimState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// The group's hyper-parameters.
    pub hyper: GroupHyper,
    /// One entry per parameter of the group, in order.
    pub params: Vec<ParamState>,
}

/// The state of one parameter in an [`OptimState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamState {
    /// The parameter's shape; every state buffer has this shape.
    pub shape: Vec<usize>,
    /// `None` while the parameter has never been updated (no state yet).
    pub state: Option<SlotState>,
}

/// The state buffers and step counter of one parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotState {
    /// Updates done so far (Adam and RMSprop's `step`; 0 for SGD, which keeps none).
    pub step: u64,
    /// State buffers by PyTorch's names (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`,
    /// `momentum_buffer`, `square_avg`, `grad_avg`, `sum`), row-major f32.
    pub buffers: BTreeMap<String, Vec<f32>>,
    /// Per-parameter scalar state by PyTorch's names (NAdam's `mu_product`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scalars: BTreeMap<String, f64>,
}

/// The live state of one parameter: a step counter and named f32 buffers, by position.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    pub step: u64,
    /// Indexed as in the optimizer's `BUFFERS` table; `None` for buffers not in use.
    pub bufs: Vec<Option<Vec<f32>>>,
    /// Scalar state by name (NAdam's `mu_product`).
    pub scalars: BTreeMap<String, f64>,
}

impl Slot {
    /// The buffer at `i`, created zero-filled with `n` elements if missing.
    pub fn buf(&mut self, i: usize, n: usize) -> &mut Vec<f32> {
        if self.bufs.len() <= i {
            self.bufs.resize(i + 1, None);
        }
        self.bufs[i].get_or_insert_with(|| vec![0.0; n])
    }
}

/// What every optimizer shares: the groups and the per-parameter state, `state[g][p]`.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub groups: Vec<ParamGroup>,
    pub state: Vec<Vec<Option<Slot>>>,
}

impl Core {
    /// Checks and stores the groups; `resolve` fills a group's unset hyper-parameters and
    /// validates them.
    pub fn new(
        op: &str,
        groups: Vec<ParamGroup>,
        resolve: &dyn Fn(&mut ParamGroup) -> Result<()>,
    ) -> Result<Core> {
        if groups.is_empty() {
            return Err(Error::value(op, "optimizer got an empty parameter list"));
        }
        let mut core = Core {
            groups: Vec::new(),
            state: Vec::new(),
        };
        for g in groups {
            core.add_group(op, g, resolve)?;
        }
        Ok(core)
    }

    /// PyTorch's `add_param_group`.
    pub fn add_group(
        &mut self,
        op: &str,
        mut g: ParamGroup,
        resolve: &dyn Fn(&mut ParamGroup) -> Result<()>,
    ) -> Result<()> {
        let mut seen: HashSet<u64> = self
            .groups
            .iter()
            .flat_map(|g| g.params.iter().map(|p| p.id()))
            .collect();
        for p in &g.params {
            if !p.is_leaf() {
                return Err(Error::value(op, "can't optimize a non-leaf Tensor"));
            }
            if !p.dtype().is_float() {
                return Err(Error::dtype(
                    op,
                    format!(
                        "can only optimize floating-point tensors, got {}",
                        p.dtype()
                    ),
                ));
            }
            if !seen.insert(p.id()) {
                return Err(Error::value(
                    op,
                    "some parameters appear more than once in the parameter groups",
                ));
            }
        }
        resolve(&mut g)?;
        self.state.push(vec![None; g.params.len()]);
        self.groups.push(g);
        Ok(())
    }

    pub fn zero_grad(&self) {
        for g in &self.groups {
            for p in &g.params {
                p.zero_grad();
            }
        }
    }

    /// The slot of parameter `p` of group `g`, if it has state.
    pub fn slot_mut(&mut self, g: usize, p: usize) -> &mut Option<Slot> {
        let st = &mut self.state[g];
        if st.len() < self.groups[g].params.len() {
            st.resize(self.groups[g].params.len(), None);
        }
        &mut st[p]
    }

    /// Serialises groups and state; `names` are the optimizer's buffer names by position.
    pub fn state_dict(&self, kind: &str, names: &[&str]) -> OptimState {
        let param_groups = self
            .groups
            .iter()
            .zip(&self.state)
            .map(|(g, st)| GroupState {
                hyper: g.hyper(),
                params: g
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ParamState {
                        shape: p.shape().to_vec(),
                        state: st.get(i).and_then(|s| s.as_ref()).map(|s| SlotState {
                            step: s.step,
                            buffers: s
                                .bufs
                                .iter()
                                .enumerate()
                                .filter_map(|(j, b)| {
                                    b.as_ref().map(|b| (names[j].to_string(), b.clone()))
                                })
                                .collect(),
                            scalars: s.scalars.clone(),
                        }),
                    })
                    .collect(),
            })
            .collect();
        OptimState {
            optimizer: kind.to_string(),
            param_groups,
        }
    }

    /// Restores groups' hyper-parameters and the state, after checking that `s` fits.
    pub fn load_state_dict(
        &mut self,
        kind: &str,
        names: &[&str],
        s: &OptimState,
        resolve: &dyn Fn(&mut ParamGroup) -> Result<()>,
    ) -> Result<()> {
        let op = "load_state_dict";
        if s.optimizer != kind {
            return Err(Error::value(
                op,
                format!(
                    "the state is of a {} optimizer, this one is {kind}",
                    s.optimizer
                ),
            ));
        }
        if s.param_groups.len() != self.groups.len() {
            return Err(Error::value(
                op,
                format!(
                    "loaded state dict has {} parameter groups, the optimizer has {}",
                    s.param_groups.len(),
                    self.groups.len()
                ),
            ));
        }
        let mut new_state = Vec::with_capacity(self.groups.len());
        let mut new_groups = Vec::with_capacity(self.groups.len());
        for (gi, (g, gs)) in self.groups.iter().zip(&s.param_groups).enumerate() {
            if gs.params.len() != g.params.len() {
                return Err(Error::value(
                    op,
                    format!(
                        "parameter group {gi} of the loaded state has {} parameters, the optimizer's has {}",
                        gs.params.len(),
                        g.params.len()
                    ),
                ));
            }
            let mut slots = Vec::with_capacity(g.params.len());
            for (pi, (p, ps)) in g.params.iter().zip(&gs.params).enumerate() {
                if ps.shape != p.shape() {
                    return Err(Error::shape(
                        op,
                        format!(
                            "parameter {pi} of group {gi}: the loaded state is for shape {:?}, the parameter has shape {:?}",
                            ps.shape,
                            p.shape()
                        ),
                    ));
                }
                let Some(st) = &ps.state else {
                    slots.push(None);
                    continue;
                };
                let mut slot = Slot {
                    step: st.step,
                    bufs: vec![None; names.len()],
                    scalars: st.scalars.clone(),
                };
                for (name, data) in &st.buffers {
                    let j = names.iter().position(|n| n == name).ok_or_else(|| {
                        Error::value(
                            op,
                            format!("parameter {pi} of group {gi}: unknown state buffer '{name}' for {kind} (expected one of {names:?})"),
                        )
                    })?;
                    if data.len() != p.numel() {
                        return Err(Error::shape(
                            op,
                            format!(
                                "parameter {pi} of group {gi}: state buffer '{name}' has {} elements, the parameter of shape {:?} has {}",
                                data.len(),
                                p.shape(),
                                p.numel()
                            ),
                        ));
                    }
                    slot.bufs[j] = Some(data.clone());
                }
                slots.push(Some(slot));
            }
            let mut ng = g.clone();
            ng.lr = gs.hyper.lr;
            ng.weight_decay = gs.hyper.weight_decay;
            ng.initial_lr = gs.hyper.initial_lr;
            ng.options = gs.hyper.options.clone();
            resolve(&mut ng).map_err(|e| Error::value(op, format!("parameter group {gi}: {e}")))?;
            new_groups.push(ng);
            new_state.push(slots);
        }
        self.groups = new_groups;
        self.state = new_state;
        Ok(())
    }
}

/// `Err` unless `v >= 0` (NaN fails too), with PyTorch's message.
pub(crate) fn check_nonneg(op: &str, what: &str, v: f64) -> Result<()> {
    if v >= 0.0 {
        Ok(())
    } else {
        Err(Error::value(op, format!("Invalid {what}: {v}")))
    }
}

/// Fills a NaN `lr` / `weight_decay` with the optimizer's.
pub(crate) fn fill_common(g: &mut ParamGroup, lr: f64, weight_decay: f64) {
    if g.lr.is_nan() {
        g.lr = lr;
    }
    if g.weight_decay.is_nan() {
        g.weight_decay = weight_decay;
    }
}

/// Implements the boilerplate of [`Optimizer`] and `add_param_group` for an optimizer struct
/// with fields `core: Core` and `defaults`, a `resolve` method, a `KIND` and `BUFFERS`.
macro_rules! optimizer_common {
    ($t:ty) => {
        impl $t {
            /// Adds a parameter group (PyTorch's `add_param_group`); unset hyper-parameters take
            /// this optimizer's config values.
            pub fn add_param_group(
                &mut self,
                group: $crate::optim::ParamGroup,
            ) -> $crate::Result<()> {
                let d = self.defaults.clone();
                let kind = self.kind();
                self.core
                    .add_group(kind, group, &|g| Self::resolve(&d, kind, g))
            }
        }
        impl $crate::optim::Optimizer for $t {
            fn step(&mut self) -> $crate::Result<()> {
                self.step_impl()
            }
            fn zero_grad(&mut self) {
                self.core.zero_grad()
            }
            fn param_groups(&self) -> &[$crate::optim::ParamGroup] {
                &self.core.groups
            }
            fn param_groups_mut(&mut self) -> &mut [$crate::optim::ParamGroup] {
                &mut self.core.groups
            }
            fn state_dict(&self) -> $crate::Result<$crate::optim::OptimState> {
                Ok(self.core.state_dict(self.kind(), Self::BUFFERS))
            }
            fn load_state_dict(&mut self, s: &$crate::optim::OptimState) -> $crate::Result<()> {
                let d = self.defaults.clone();
                let kind = self.kind();
                self.core
                    .load_state_dict(kind, Self::BUFFERS, s, &|g| Self::resolve(&d, kind, g))
            }
        }
    };
}
pub(crate) use optimizer_common;

#[cfg(test)]
pub(crate) mod test_util {
    //! Shared helpers for the optimizer tests: the parameter and gradients every PyTorch
    //! reference below is computed from.
    use crate::{Result, Tensor};

    /// `p0[i] = ((5 i) mod 7 - 3) / 4` (exact in f32).
    pub fn p0(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 5) % 7) as f64 - 3.0) as f32 * 0.25)
            .collect()
    }
    /// Gradient of step `t`: `((7 i + 3 t) mod 11) * 0.1 - 0.5`, computed in f64, stored as f32.
    pub fn grad(n: usize, t: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((((i * 7 + t * 3) % 11) as f64) * 0.1 - 0.5) as f32)
            .collect()
    }
    /// A fresh leaf parameter with `p0`.
    pub fn param(n: usize) -> Tensor {
        Tensor::from_vec(p0(n), &[n])
            .unwrap()
            .requires_grad_(true)
            .unwrap()
    }
    /// Sets the gradient of step `t`, with an offset `k` into the formula (for distinct params).
    pub fn set_grad(p: &Tensor, t: usize, k: usize) -> Result<()> {
        let n = p.numel();
        let g = grad(n + k, t)[k..].to_vec();
        p.set_grad(Some(Tensor::from_vec(g, p.shape())?))
    }
    /// Asserts `|a - b| <= 1e-6 + 1e-5 |b|` elementwise.
    pub fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 + 1e-5 * y.abs(),
                "{what}: element {i}: got {x}, expected {y}\n got {a:?}\n expected {b:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    // Two groups with different hyper-parameters, and a parameter without a gradient.
    // Expected values from PyTorch 2.15 (p0/grad as in sgd.rs's tests):
    //
    // a = p0(6).clone().requires_grad_(True); b = p0(4).clone().requires_grad_(True); c = p0(3).clone().requires_grad_(True)
    // opt = torch.optim.Adam([{"params": [a]}, {"params": [b, c], "lr": 0.05, "betas": (0.5, 0.9), "weight_decay": 0.1}], lr=0.01)
    // for t in range(5):
    //     a.grad = grad(6, t); b.grad = grad(4, t, 3); opt.step()
    // print(a.tolist(), b.tolist())
    #[test]
    fn param_groups_match_torch() {
        let (a, b, c) = (param(6), param(4), param(3));
        let groups = vec![
            ParamGroup::new(vec![a.clone()]),
            ParamGroup::new(vec![b.clone(), c.clone()])
                .with_lr(0.05)
                .with_betas((0.5, 0.9))
                .with_weight_decay(0.1),
        ];
        let mut opt = Adam::with_groups(
            groups,
            AdamConfig {
                lr: 0.01,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(opt.param_groups()[0].lr, 0.01);
        assert_eq!(opt.param_groups()[0].options.betas, Some((0.9, 0.999)));
        assert_eq!(opt.param_groups()[1].lr, 0.05);
        for t in 0..5 {
            set_grad(&a, t, 0).unwrap();
            set_grad(&b, t, 3).unwrap();
            opt.step().unwrap();
        }
        let want_a = [
            -0.72203773,
            0.47031572,
            0.010812741,
            -0.5163358,
            0.7300609,
            0.27462858,
        ];
        let want_b = [-0.7504517, 0.39991453, 0.1078573, -0.53698635];
        assert_close(&a.to_vec::<f32>().unwrap(), &want_a, "group 0");
        assert_close(&b.to_vec::<f32>().unwrap(), &want_b, "group 1");
        assert_eq!(c.to_vec::<f32>().unwrap(), p0(3), "no grad: unchanged");
        let st = opt.state_dict().unwrap();
        assert!(
            st.param_groups[1].params[1].state.is_none(),
            "no grad: no state"
        );
        assert_eq!(st.param_groups[0].params[0].state.as_ref().unwrap().step, 5);
        // set_lr / lr / zero_grad
        opt.set_lr(0.5);
        assert!(opt.param_groups().iter().all(|g| g.lr == 0.5));
        assert_eq!(opt.lr(), 0.5);
        opt.zero_grad();
        assert!(a.grad().is_none() && b.grad().is_none());
        // a parameter in two groups is refused
        assert!(opt
            .add_param_group(ParamGroup::new(vec![a.clone()]))
            .is_err());
        opt.add_param_group(ParamGroup::new(vec![param(2)]).with_lr(0.3))
            .unwrap();
        assert_eq!(opt.param_groups()[2].lr, 0.3);
        assert_eq!(opt.param_groups()[2].weight_decay, 0.0);
    }

    /// Runs `make`'s optimizer for 5 steps in one go, and again saving after 2 steps (through
    /// JSON) into a fresh optimizer that does the remaining 3; both must agree exactly.
    fn round_trip(make: &dyn Fn(Vec<Tensor>) -> Box<dyn Optimizer>) {
        let run = |split: Option<usize>| {
            let ps = vec![param(6), param(5)];
            let mut opt = make(ps.clone());
            for t in 0..5 {
                if Some(t) == split {
                    let json = opt.state_dict().unwrap().to_json().unwrap();
                    let st = OptimState::from_json(&json).unwrap();
                    let ps2: Vec<Tensor> = ps
                        .iter()
                        .map(|p| {
                            p.detach()
                                .contiguous_copy()
                                .unwrap()
                                .requires_grad_(true)
                                .unwrap()
                        })
                        .collect();
                    opt = make(ps2.clone());
                    opt.load_state_dict(&st).unwrap();
                    assert_eq!(opt.state_dict().unwrap(), st);
                    return (ps2, opt, t);
                }
                for (k, p) in ps.iter().enumerate() {
                    set_grad(p, t, k).unwrap();
                }
                opt.step().unwrap();
            }
            (ps, opt, 5)
        };
        let (ps_full, _, _) = run(None);
        let (ps, mut opt, t0) = run(Some(2));
        for t in t0..5 {
            for (k, p) in ps.iter().enumerate() {
                set_grad(p, t, k).unwrap();
            }
            opt.step().unwrap();
        }
        for (a, b) in ps_full.iter().zip(&ps) {
            assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        }
    }

    #[test]
    fn state_dict_round_trip_continues_identically() {
        round_trip(&|ps| {
            Box::new(
                Sgd::new(
                    ps,
                    SgdConfig {
                        lr: 0.1,
                        momentum: 0.9,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        });
        round_trip(&|ps| {
            Box::new(
                Adam::new(
                    ps,
                    AdamConfig {
                        lr: 0.01,
                        amsgrad: true,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        });
        round_trip(&|ps| Box::new(AdamW::with_lr(ps, 0.01).unwrap()));
        let rms = RmsPropConfig {
            momentum: 0.5,
            centered: true,
            ..Default::default()
        };
        round_trip(&|ps| Box::new(RmsProp::new(ps, rms).unwrap()));
    }

    #[test]
    fn load_state_dict_restores_group_hyper_parameters() {
        let p = param(3);
        let mut a = Sgd::new(
            vec![p.clone()],
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                ..Default::default()
            },
        )
        .unwrap();
        a.set_lr(0.025);
        a.param_groups_mut()[0].initial_lr = Some(0.1);
        let st = a.state_dict().unwrap();
        let mut b = Sgd::new(vec![param(3)], SgdConfig::default()).unwrap();
        b.load_state_dict(&st).unwrap();
        assert_eq!(b.lr(), 0.025);
        assert_eq!(b.param_groups()[0].initial_lr, Some(0.1));
        assert_eq!(b.param_groups()[0].options.momentum, Some(0.9));
    }

    #[test]
    fn load_state_dict_rejects_mismatches() {
        let cfg = AdamConfig::default();
        let p = param(4);
        let mut a = Adam::new(vec![p.clone()], cfg).unwrap();
        set_grad(&p, 0, 0).unwrap();
        a.step().unwrap();
        let st = a.state_dict().unwrap();
        // wrong shape
        let mut b = Adam::new(vec![param(5)], cfg).unwrap();
        let e = b.load_state_dict(&st).unwrap_err().to_string();
        assert!(
            e.contains("shape") && e.contains("[4]") && e.contains("[5]"),
            "{e}"
        );
        // wrong number of params
        let mut b = Adam::new(vec![param(4), param(4)], cfg).unwrap();
        let e = b.load_state_dict(&st).unwrap_err().to_string();
        assert!(e.contains("parameters"), "{e}");
        // wrong number of groups
        let mut b = Adam::with_groups(
            vec![
                ParamGroup::new(vec![param(4)]),
                ParamGroup::new(vec![param(1)]),
            ],
            cfg,
        )
        .unwrap();
        assert!(b
            .load_state_dict(&st)
            .unwrap_err()
            .to_string()
            .contains("groups"));
        // wrong optimizer
        let mut b = Sgd::new(vec![param(4)], SgdConfig::default()).unwrap();
        assert!(b
            .load_state_dict(&st)
            .unwrap_err()
            .to_string()
            .contains("Adam"));
        // a buffer of the wrong length
        let mut bad = st.clone();
        bad.param_groups[0].params[0]
            .state
            .as_mut()
            .unwrap()
            .buffers
            .get_mut("exp_avg")
            .unwrap()
            .pop();
        let mut b = Adam::new(vec![param(4)], cfg).unwrap();
        let e = b.load_state_dict(&bad).unwrap_err().to_string();
        assert!(e.contains("exp_avg"), "{e}");
        // an unknown buffer
        let mut bad = st.clone();
        bad.param_groups[0].params[0]
            .state
            .as_mut()
            .unwrap()
            .buffers
            .insert("foo".into(), vec![0.0; 4]);
        assert!(b
            .load_state_dict(&bad)
            .unwrap_err()
            .to_string()
            .contains("foo"));
    }

    #[test]
    fn non_leaf_and_integer_params_are_refused() {
        let p = param(3);
        let q = p.mul_scalar(2.0).unwrap();
        assert!(Sgd::new(vec![q], SgdConfig::default()).is_err());
        let i = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
        assert!(Sgd::new(vec![i], SgdConfig::default()).is_err());
    }
}

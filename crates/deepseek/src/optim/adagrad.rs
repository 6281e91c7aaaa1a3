//! Adagrad (PyTorch's `torch.optim.Adagrad`).

use super::fused::{self, c, Kernel, Real};
use super::{check_nonneg, fill_common, optimizer_common, Core, ParamGroup, Slot};
use crate::tensor::Element;
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`Adagrad`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdagradConfig {
    /// Learning rate (default `1e-2`).
    pub lr: f64,
    /// Learning-rate decay: step `t` uses `lr / (1 + (t - 1) lr_decay)` (default 0).
    pub lr_decay: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator for stability (default `1e-10`).
    pub eps: f64,
    /// Maximize the objective (default false).
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Adagrad, exactly as `torch.optim.Adagrad` (dense gradients):
///
/// ```text
/// g = grad (negated when maximize) + weight_decay * p
/// clr = lr / (1 + (step - 1) lr_decay)
/// sum = sum + g^2                    (sum starts at initial_accumulator_value)
/// p = p - clr * g / (sqrt(sum) + eps)
/// ```
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{Adagrad, AdagradConfig, Optimizer};
/// let w = Tensor::from_vec(vec![1.0f32], &[1])?.requires_grad_(true)?;
/// let mut opt = Adagrad::new(vec![w.clone()], AdagradConfig { lr: 0.1, ..Default::default() })?;
/// w.square()?.sum_all()?.backward()?;
/// opt.step()?; // first step: lr * g / |g| = lr
/// assert!((w.to_vec::<f32>()?[0] - 0.9).abs() < 1e-6);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adagrad {
    core: Core,
    defaults: AdagradConfig,
}

#[derive(Clone, Copy)]
pub(crate) struct AdagradKernel {
    neg_clr: f64,
    weight_decay: f64,
    eps: f64,
    maximize: bool,
}

impl Kernel for AdagradKernel {
    /// State: `[sum]`.
    fn run<F: Real>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
        let n = p.len();
        let g = &g[..n];
        let sum = &mut s[0][..n];
        let (wd, eps, nclr) = (
            c::<F>(self.weight_decay),
            c::<F>(self.eps),
            c::<F>(self.neg_clr),
        );
        for i in 0..n {
            let mut gi = if self.maximize { -g[i] } else { g[i] };
            if self.weight_decay != 0.0 {
                gi = gi + wd * p[i];
            }
            let si = F::from_f32(sum[i]) + gi * gi;
            sum[i] = Element::to_f32(si);
            p[i] = p[i] + nclr * (gi / (si.sqrt() + eps));
        }
    }
}

impl Adagrad {
    const BUFFERS: &'static [&'static str] = &["sum"];

    /// Adagrad over `params` in one group.
    pub fn new(params: Vec<Tensor>, cfg: AdagradConfig) -> Result<Adagrad> {
        if params.is_empty() {
            return Err(Error::value(
                "Adagrad",
                "optimizer got an empty parameter list",
            ));
        }
        Self::with_groups(vec![ParamGroup::new(params)], cfg)
    }

    /// Adagrad over several parameter groups; what a group leaves unset comes from `cfg`.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: AdagradConfig) -> Result<Adagrad> {
        Self::resolve(&cfg, "Adagrad", &mut ParamGroup::new(vec![]))?;
        let core = Core::new("Adagrad", groups, &|g| Self::resolve(&cfg, "Adagrad", g))?;
        Ok(Adagrad {
            core,
            defaults: cfg,
        })
    }

    /// The config values this optimizer gives groups that leave them unset.
    pub fn defaults(&self) -> &AdagradConfig {
        &self.defaults
    }

    fn kind(&self) -> &'static str {
        "Adagrad"
    }

    fn resolve(d: &AdagradConfig, op: &str, g: &mut ParamGroup) -> Result<()> {
        fill_common(g, d.lr, d.weight_decay);
        let o = &mut g.options;
        o.lr_decay.get_or_insert(d.lr_decay);
        o.initial_accumulator_value
            .get_or_insert(d.initial_accumulator_value);
        o.eps.get_or_insert(d.eps);
        o.maximize.get_or_insert(d.maximize);
        let c = Self::group_cfg(g);
        check_nonneg(op, "learning rate", c.lr)?;
        check_nonneg(op, "lr_decay value", c.lr_decay)?;
        check_nonneg(op, "weight_decay value", c.weight_decay)?;
        check_nonneg(
            op,
            "initial_accumulator_value value",
            c.initial_accumulator_value,
        )?;
        check_nonneg(op, "epsilon value", c.eps)
    }

    /// The effective config of a (resolved) group.
    fn group_cfg(g: &ParamGroup) -> AdagradConfig {
        let o = &g.options;
        let d = AdagradConfig::default();
        AdagradConfig {
            lr: g.lr,
            lr_decay: o.lr_decay.unwrap_or(d.lr_decay),
            weight_decay: g.weight_decay,
            initial_accumulator_value: o
                .initial_accumulator_value
                .unwrap_or(d.initial_accumulator_value),
            eps: o.eps.unwrap_or(d.eps),
            maximize: o.maximize.unwrap_or(false),
        }
    }

    fn step_impl(&mut self) -> Result<()> {
        let mut pending = Vec::new();
        for gi in 0..self.core.groups.len() {
            let c = Self::group_cfg(&self.core.groups[gi]);
            for pi in 0..self.core.groups[gi].params.len() {
                let p = self.core.groups[gi].params[pi].clone();
                let Some(grad) = p.grad() else { continue };
                let n = p.numel();
                let slot = self.core.slot_mut(gi, pi).get_or_insert_with(Slot::default);
                slot.step += 1;
                let step = slot.step as f64;
                if slot.bufs.first().and_then(|b| b.as_ref()).is_none() {
                    let init = c.initial_accumulator_value as f32;
                    slot.buf(0, n).iter_mut().for_each(|v| *v = init);
                }
                let k = AdagradKernel {
                    neg_clr: -(c.lr / (1.0 + (step - 1.0) * c.lr_decay)),
                    weight_decay: c.weight_decay,
                    eps: c.eps,
                    maximize: c.maximize,
                };
                pending.push(fused::Pending {
                    gi,
                    pi,
                    p,
                    g: grad,
                    rule: fused::UpdateRule::Adagrad(k),
                    bufs: vec![0],
                });
            }
        }
        fused::update_all("Adagrad", &mut self.core, pending)
    }
}

optimizer_common!(Adagrad);

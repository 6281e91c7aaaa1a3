//! Stochastic gradient descent with momentum (PyTorch's `torch.optim.SGD`).

use super::fused::{self, c, Kernel, Real};
use super::{check_nonneg, fill_common, optimizer_common, Core, ParamGroup, Slot};
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`Sgd`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Dampening for momentum (default 0).
    pub dampening: f64,
    /// Nesterov momentum (default false; needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Maximize the objective (default false).
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// SGD with optional momentum, dampening, Nesterov momentum and weight decay, exactly as
/// `torch.optim.SGD`:
///
/// ```text
/// g = grad (negated when maximize) + weight_decay * p
/// if momentum != 0:
///     buf = g                                       on the first step
///     buf = momentum * buf + (1 - dampening) * g    afterwards
///     g = g + momentum * buf  if nesterov  else  buf
/// p = p - lr * g
/// ```
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{Optimizer, Sgd, SgdConfig};
/// let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?.requires_grad_(true)?;
/// let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() })?;
/// w.square()?.sum_all()?.backward()?; // grad = 2 w
/// opt.step()?;
/// assert_eq!(w.to_vec::<f32>()?, vec![0.8, 1.6]);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sgd {
    core: Core,
    defaults: SgdConfig,
}

#[derive(Clone, Copy)]
pub(crate) struct SgdKernel {
    lr: f64,
    weight_decay: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    maximize: bool,
    /// The momentum buffer is new: it takes the gradient as is.
    first: bool,
}

impl Kernel for SgdKernel {
    /// State: `[momentum_buffer]` when `momentum != 0`, else none.
    fn run<F: Real>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
        let n = p.len();
        let g = &g[..n];
        let (wd, mom, neg_lr) = (
            c::<F>(self.weight_decay),
            c::<F>(self.momentum),
            c::<F>(-self.lr),
        );
        let one_m_damp = c::<F>(1.0 - self.dampening);
        let grad = |i: usize, p: F| {
            let gi = if self.maximize { -g[i] } else { g[i] };
            if self.weight_decay != 0.0 {
                gi + wd * p
            } else {
                gi
            }
        };
        if self.momentum == 0.0 {
            for (i, pi) in p.iter_mut().enumerate() {
                *pi = *pi + neg_lr * grad(i, *pi);
            }
            return;
        }
        let buf = &mut s[0][..n];
        for i in 0..n {
            let gi = grad(i, p[i]);
            let b = if self.first {
                gi
            } else {
                <F as crate::tensor::Element>::from_f32(buf[i]) * mom + one_m_damp * gi
            };
            buf[i] = crate::tensor::Element::to_f32(b);
            let d = if self.nesterov { gi + mom * b } else { b };
            p[i] = p[i] + neg_lr * d;
        }
    }
}

impl Sgd {
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];

    /// SGD over `params` in one group.
    pub fn new(params: Vec<Tensor>, cfg: SgdConfig) -> Result<Sgd> {
        if params.is_empty() {
            return Err(Error::value("SGD", "optimizer got an empty parameter list"));
        }
        Self::with_groups(vec![ParamGroup::new(params)], cfg)
    }

    /// SGD over several parameter groups; what a group leaves unset comes from `cfg`.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: SgdConfig) -> Result<Sgd> {
        Self::resolve(&cfg, "SGD", &mut ParamGroup::new(vec![]))?;
        let core = Core::new("SGD", groups, &|g| Self::resolve(&cfg, "SGD", g))?;
        Ok(Sgd {
            core,
            defaults: cfg,
        })
    }

    /// The config values this optimizer gives groups that leave them unset.
    pub fn defaults(&self) -> &SgdConfig {
        &self.defaults
    }

    fn kind(&self) -> &'static str {
        "SGD"
    }

    fn resolve(d: &SgdConfig, op: &str, g: &mut ParamGroup) -> Result<()> {
        fill_common(g, d.lr, d.weight_decay);
        let o = &mut g.options;
        o.momentum.get_or_insert(d.momentum);
        o.dampening.get_or_insert(d.dampening);
        o.nesterov.get_or_insert(d.nesterov);
        o.maximize.get_or_insert(d.maximize);
        let c = Self::group_cfg(g);
        check_nonneg(op, "learning rate", c.lr)?;
        check_nonneg(op, "momentum value", c.momentum)?;
        check_nonneg(op, "weight_decay value", c.weight_decay)?;
        if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
            return Err(Error::value(
                op,
                "Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }

    /// The effective config of a (resolved) group.
    fn group_cfg(g: &ParamGroup) -> SgdConfig {
        let o = &g.options;
        SgdConfig {
            lr: g.lr,
            momentum: o.momentum.unwrap_or(0.0),
            dampening: o.dampening.unwrap_or(0.0),
            nesterov: o.nesterov.unwrap_or(false),
            weight_decay: g.weight_decay,
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
                let slot = self.core.slot_mut(gi, pi).get_or_insert_with(Slot::default);
                let mut k = SgdKernel {
                    lr: c.lr,
                    weight_decay: c.weight_decay,
                    momentum: c.momentum,
                    dampening: c.dampening,
                    nesterov: c.nesterov,
                    maximize: c.maximize,
                    first: false,
                };
                if c.momentum != 0.0 {
                    k.first = slot.bufs.first().is_none_or(|b| b.is_none());
                    slot.buf(0, p.numel());
                }
                pending.push(fused::Pending {
                    gi,
                    pi,
                    p,
                    g: grad,
                    rule: fused::UpdateRule::Sgd(k),
                    bufs: if c.momentum != 0.0 { vec![0] } else { vec![] },
                });
            }
        }
        fused::update_all("SGD", &mut self.core, pending)
    }
}

optimizer_common!(Sgd);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::*;
    use crate::optim::Optimizer;

    // Expected values from PyTorch 2.15 (CPU, float32):
    //
    // import torch
    // def p0(n): return torch.tensor([((i*5) % 7 - 3) * 0.25 for i in range(n)], dtype=torch.float32)
    // def grad(n, t, k=0): return torch.tensor([((i*7 + t*3) % 11) * 0.1 - 0.5 for i in range(n+k)], dtype=torch.float32)[k:]
    // def run(cls, n=6, steps=5, **kw):
    //     p = p0(n).clone().requires_grad_(True)
    //     opt = cls([p], **kw)
    //     for t in range(steps):
    //         p.grad = grad(n, t).clone(); opt.step()
    //     return p.detach().tolist()
    // print(run(torch.optim.SGD, lr=0.1))
    // print(run(torch.optim.SGD, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01))
    // print(run(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True))
    fn run(cfg: SgdConfig) -> Vec<f32> {
        let p = param(6);
        let mut opt = Sgd::new(vec![p.clone()], cfg).unwrap();
        for t in 0..5 {
            set_grad(&p, t, 0).unwrap();
            opt.step().unwrap();
        }
        p.to_vec::<f32>().unwrap()
    }

    #[test]
    fn sgd_plain_matches_torch() {
        let got = run(SgdConfig {
            lr: 0.1,
            ..Default::default()
        });
        let want = [-0.69, 0.42999998, 0.02, -0.5, 0.73, 0.32000002];
        assert_close(&got, &want, "sgd");
    }

    #[test]
    fn sgd_momentum_matches_torch() {
        let got = run(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 0.01,
            ..Default::default()
        });
        let want = [
            -0.5318287,
            0.30398875,
            0.03064593,
            -0.61151856,
            0.6730612,
            0.39971837,
        ];
        assert_close(&got, &want, "sgd momentum");
    }

    #[test]
    fn sgd_nesterov_maximize_matches_torch() {
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            maximize: true,
            ..Default::default()
        };
        let got = run(cfg);
        let want = [
            -0.9849541,
            0.7425234,
            -0.042389434,
            -0.39509577,
            0.82072014,
            0.035807393,
        ];
        assert_close(&got, &want, "sgd nesterov");
    }

    #[test]
    fn sgd_rejects_bad_hyper_parameters() {
        let p = || vec![param(2)];
        assert!(Sgd::new(
            p(),
            SgdConfig {
                lr: -0.1,
                ..Default::default()
            }
        )
        .is_err());
        assert!(Sgd::new(
            p(),
            SgdConfig {
                momentum: -0.5,
                ..Default::default()
            }
        )
        .is_err());
        assert!(Sgd::new(
            p(),
            SgdConfig {
                weight_decay: -1.0,
                ..Default::default()
            }
        )
        .is_err());
        let e = Sgd::new(
            p(),
            SgdConfig {
                nesterov: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("Nesterov"), "{e}");
        assert!(Sgd::new(
            p(),
            SgdConfig {
                nesterov: true,
                momentum: 0.9,
                dampening: 0.1,
                ..Default::default()
            }
        )
        .is_err());
        assert!(Sgd::new(vec![], SgdConfig::default()).is_err());
        let q = param(2);
        assert!(Sgd::new(vec![q.clone(), q], SgdConfig::default()).is_err());
    }
}

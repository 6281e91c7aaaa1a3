//! RMSprop (PyTorch's `torch.optim.RMSprop`).

use super::fused::{self, c, lerp, Kernel, Real};
use super::{check_nonneg, fill_common, optimizer_common, Core, ParamGroup, Slot};
use crate::tensor::Element;
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`RmsProp`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RmsPropConfig {
    /// Learning rate (default `1e-2`).
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average (default 0.99).
    pub alpha: f64,
    /// Added to the denominator for stability (default `1e-8`).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Momentum factor (default 0).
    pub momentum: f64,
    /// Normalise by the estimated variance instead of the raw second moment (default false).
    pub centered: bool,
    /// Maximize the objective (default false).
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// RMSprop, exactly as `torch.optim.RMSprop`:
///
/// ```text
/// g = grad (negated when maximize) + weight_decay * p
/// v = alpha v + (1 - alpha) g^2
/// centered:  g_avg = lerp(g_avg, g, 1 - alpha);  avg = sqrt(v - g_avg^2) + eps
/// otherwise: avg = sqrt(v) + eps
/// momentum > 0: buf = momentum buf + g / avg;  p = p - lr buf
/// otherwise:    p = p - lr g / avg
/// ```
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{Optimizer, RmsProp, RmsPropConfig};
/// let w = Tensor::from_vec(vec![1.0f32], &[1])?.requires_grad_(true)?;
/// let mut opt = RmsProp::new(vec![w.clone()], RmsPropConfig::default())?;
/// w.square()?.sum_all()?.backward()?;
/// opt.step()?; // first step: lr * g / sqrt(0.01 g^2) = 10 lr
/// assert!((w.to_vec::<f32>()?[0] - 0.9).abs() < 1e-5);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RmsProp {
    core: Core,
    defaults: RmsPropConfig,
}

#[derive(Clone, Copy)]
pub(crate) struct RmsPropKernel {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    maximize: bool,
}

impl RmsPropKernel {
    /// The update with the variant fixed at compile time, so the loop vectorises.
    #[inline(always)]
    fn body<F: Real, const CENTERED: bool, const MOMENTUM: bool>(
        &self,
        p: &mut [F],
        g: &[F],
        s: &mut [&mut [f32]],
    ) {
        let n = p.len();
        let g = &g[..n];
        let (wd, alpha, w) = (
            c::<F>(self.weight_decay),
            c::<F>(self.alpha),
            c::<F>(1.0 - self.alpha),
        );
        let small = 1.0 - self.alpha < 0.5;
        let (eps, mom, neg_lr) = (c::<F>(self.eps), c::<F>(self.momentum), c::<F>(-self.lr));
        let (sq, rest) = s.split_at_mut(1);
        let sq = &mut sq[0][..n];
        let (buf, rest): (&mut [f32], _) = if MOMENTUM {
            let (b, r) = rest.split_at_mut(1);
            (&mut b[0][..n], r)
        } else {
            (&mut [], rest)
        };
        let gavg: &mut [f32] = if CENTERED { &mut rest[0][..n] } else { &mut [] };
        for i in 0..n {
            let mut gi = if self.maximize { -g[i] } else { g[i] };
            if self.weight_decay != 0.0 {
                gi = gi + wd * p[i];
            }
            let v = F::from_f32(sq[i]) * alpha + w * gi * gi;
            sq[i] = Element::to_f32(v);
            let avg = if CENTERED {
                let a = lerp(F::from_f32(gavg[i]), gi, w, small);
                gavg[i] = Element::to_f32(a);
                (v + -F::one() * a * a).sqrt()
            } else {
                v.sqrt()
            } + eps;
            if MOMENTUM {
                let bi = F::from_f32(buf[i]) * mom + gi / avg;
                buf[i] = Element::to_f32(bi);
                p[i] = p[i] + neg_lr * bi;
            } else {
                p[i] = p[i] + neg_lr * gi / avg;
            }
        }
    }
}

impl Kernel for RmsPropKernel {
    /// State: `[square_avg]`, then `momentum_buffer` when `momentum > 0`, then `grad_avg`
    /// when centered.
    fn run<F: Real>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
        match (self.centered, self.momentum > 0.0) {
            (false, false) => self.body::<F, false, false>(p, g, s),
            (false, true) => self.body::<F, false, true>(p, g, s),
            (true, false) => self.body::<F, true, false>(p, g, s),
            (true, true) => self.body::<F, true, true>(p, g, s),
        }
    }
}

impl RmsProp {
    const BUFFERS: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];

    /// RMSprop over `params` in one group.
    pub fn new(params: Vec<Tensor>, cfg: RmsPropConfig) -> Result<RmsProp> {
        if params.is_empty() {
            return Err(Error::value(
                "RMSprop",
                "optimizer got an empty parameter list",
            ));
        }
        Self::with_groups(vec![ParamGroup::new(params)], cfg)
    }

    /// RMSprop over several parameter groups; what a group leaves unset comes from `cfg`.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: RmsPropConfig) -> Result<RmsProp> {
        Self::resolve(&cfg, "RMSprop", &mut ParamGroup::new(vec![]))?;
        let core = Core::new("RMSprop", groups, &|g| Self::resolve(&cfg, "RMSprop", g))?;
        Ok(RmsProp {
            core,
            defaults: cfg,
        })
    }

    /// The config values this optimizer gives groups that leave them unset.
    pub fn defaults(&self) -> &RmsPropConfig {
        &self.defaults
    }

    fn kind(&self) -> &'static str {
        "RMSprop"
    }

    fn resolve(d: &RmsPropConfig, op: &str, g: &mut ParamGroup) -> Result<()> {
        fill_common(g, d.lr, d.weight_decay);
        let o = &mut g.options;
        o.alpha.get_or_insert(d.alpha);
        o.eps.get_or_insert(d.eps);
        o.momentum.get_or_insert(d.momentum);
        o.centered.get_or_insert(d.centered);
        o.maximize.get_or_insert(d.maximize);
        let c = Self::group_cfg(g);
        check_nonneg(op, "learning rate", c.lr)?;
        check_nonneg(op, "epsilon value", c.eps)?;
        check_nonneg(op, "momentum value", c.momentum)?;
        check_nonneg(op, "weight_decay value", c.weight_decay)?;
        check_nonneg(op, "alpha value", c.alpha)
    }

    /// The effective config of a (resolved) group.
    fn group_cfg(g: &ParamGroup) -> RmsPropConfig {
        let o = &g.options;
        let d = RmsPropConfig::default();
        RmsPropConfig {
            lr: g.lr,
            alpha: o.alpha.unwrap_or(d.alpha),
            eps: o.eps.unwrap_or(d.eps),
            weight_decay: g.weight_decay,
            momentum: o.momentum.unwrap_or(0.0),
            centered: o.centered.unwrap_or(false),
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
                let mut bufs = vec![0];
                slot.buf(0, n);
                if c.momentum > 0.0 {
                    slot.buf(1, n);
                    bufs.push(1);
                }
                if c.centered {
                    slot.buf(2, n);
                    bufs.push(2);
                }
                let k = RmsPropKernel {
                    lr: c.lr,
                    alpha: c.alpha,
                    eps: c.eps,
                    weight_decay: c.weight_decay,
                    momentum: c.momentum,
                    centered: c.centered,
                    maximize: c.maximize,
                };
                pending.push(fused::Pending {
                    gi,
                    pi,
                    p,
                    g: grad,
                    rule: fused::UpdateRule::RmsProp(k),
                    bufs,
                });
            }
        }
        fused::update_all("RMSprop", &mut self.core, pending)
    }
}

optimizer_common!(RmsProp);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::*;
    use crate::optim::Optimizer;

    // Expected values from PyTorch 2.15 (CPU, float32), with `p0`, `grad` and `run` as in
    // sgd.rs's tests:
    //
    // print(run(torch.optim.RMSprop, lr=0.01))
    // print(run(torch.optim.RMSprop, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1))
    // print(run(torch.optim.RMSprop, lr=0.01, alpha=0.3, eps=1e-3, maximize=True))
    fn run(cfg: RmsPropConfig) -> Vec<f32> {
        let p = param(6);
        let mut opt = RmsProp::new(vec![p.clone()], cfg).unwrap();
        for t in 0..5 {
            set_grad(&p, t, 0).unwrap();
            opt.step().unwrap();
        }
        p.to_vec::<f32>().unwrap()
    }

    #[test]
    fn rmsprop_matches_torch() {
        let got = run(RmsPropConfig::default());
        let want = [
            -0.6393063,
            0.3116964,
            0.050017472,
            -0.5333667,
            0.60724807,
            0.38492224,
        ];
        assert_close(&got, &want, "rmsprop");
    }

    #[test]
    fn rmsprop_centered_momentum_matches_torch() {
        let cfg = RmsPropConfig {
            alpha: 0.9,
            momentum: 0.5,
            centered: true,
            weight_decay: 0.1,
            ..Default::default()
        };
        let got = run(cfg);
        let want = [
            -0.66435045,
            0.3784919,
            0.023202257,
            -0.5193537,
            0.6447247,
            0.3098787,
        ];
        assert_close(&got, &want, "rmsprop centered");
    }

    #[test]
    fn rmsprop_maximize_matches_torch() {
        let got = run(RmsPropConfig {
            alpha: 0.3,
            eps: 1e-3,
            maximize: true,
            ..Default::default()
        });
        let want = [
            -0.76222056,
            0.52583814,
            -0.007019125,
            -0.4970841,
            0.7683406,
            0.23144986,
        ];
        assert_close(&got, &want, "rmsprop maximize");
    }

    #[test]
    fn rmsprop_rejects_bad_hyper_parameters() {
        let p = || vec![param(2)];
        assert!(RmsProp::new(
            p(),
            RmsPropConfig {
                lr: -1.0,
                ..Default::default()
            }
        )
        .is_err());
        assert!(RmsProp::new(
            p(),
            RmsPropConfig {
                alpha: -0.1,
                ..Default::default()
            }
        )
        .is_err());
        assert!(RmsProp::new(
            p(),
            RmsPropConfig {
                eps: -0.1,
                ..Default::default()
            }
        )
        .is_err());
        assert!(RmsProp::new(
            p(),
            RmsPropConfig {
                momentum: -0.1,
                ..Default::default()
            }
        )
        .is_err());
    }
}

//! Adam and AdamW (PyTorch's `torch.optim.Adam` / `torch.optim.AdamW`).

use super::fused::{self, c, lerp, maximum, Kernel, Real};
use super::{check_nonneg, fill_common, optimizer_common, Core, ParamGroup, Slot};
use crate::tensor::Element;
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`Adam`] and [`AdamW`], with PyTorch's defaults
/// (`Default` is Adam's; [`AdamConfig::adamw_default`] is AdamW's, with `weight_decay` 0.01).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Decay rates of the first and second moment averages (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the denominator for stability (default `1e-8`).
    pub eps: f64,
    /// Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay
    /// `p *= 1 - lr * weight_decay` (default 0.01).
    pub weight_decay: f64,
    /// Use the AMSGrad variant (default false).
    pub amsgrad: bool,
    /// Maximize the objective (default false).
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl AdamConfig {
    /// AdamW's defaults: as Adam's, with `weight_decay` 0.01.
    pub fn adamw_default() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            ..Default::default()
        }
    }
}

/// Adam, exactly as `torch.optim.Adam` (per-parameter step counter `t`):
///
/// ```text
/// g = grad (negated when maximize) + weight_decay * p
/// m = lerp(m, g, 1 - beta1)                 (= beta1 m + (1 - beta1) g)
/// v = beta2 v + (1 - beta2) g^2
/// v_max = max(v_max, v)                     (amsgrad; then used in place of v)
/// denom = sqrt(v) / sqrt(1 - beta2^t) + eps
/// p = p - lr / (1 - beta1^t) * m / denom
/// ```
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{Adam, AdamConfig, Optimizer};
/// let w = Tensor::from_vec(vec![1.0f32, -1.0], &[2])?.requires_grad_(true)?;
/// let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() })?;
/// opt.zero_grad();
/// w.square()?.sum_all()?.backward()?;
/// opt.step()?; // Adam's first step moves each weight by about lr against its gradient's sign
/// let v = w.to_vec::<f32>()?;
/// assert!((v[0] - 0.9).abs() < 1e-6 && (v[1] + 0.9).abs() < 1e-6);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adam {
    core: Core,
    defaults: AdamConfig,
    decoupled: bool,
}

/// AdamW: Adam with decoupled weight decay, exactly as `torch.optim.AdamW`: before the Adam
/// update, `p *= 1 - lr * weight_decay` (the gradient is not changed).
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{AdamConfig, AdamW, Optimizer};
/// let w = Tensor::from_vec(vec![1.0f32], &[1])?.requires_grad_(true)?;
/// let mut opt = AdamW::new(vec![w.clone()], AdamConfig { lr: 0.1, ..AdamConfig::adamw_default() })?;
/// w.set_grad(Some(Tensor::from_vec(vec![0.0f32], &[1])?))?;
/// opt.step()?; // zero gradient: only the decay acts
/// assert!((w.to_vec::<f32>()?[0] - 0.999).abs() < 1e-7);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AdamW(Adam);

#[derive(Clone, Copy)]
pub(crate) struct AdamKernel {
    maximize: bool,
    /// L2 weight decay added to the gradient (Adam), 0 for AdamW.
    l2: f64,
    /// `1 - lr * weight_decay` (AdamW), 1 for Adam.
    decay: f64,
    one_m_beta1: f64,
    beta2: f64,
    one_m_beta2: f64,
    bias_correction2_sqrt: f64,
    eps: f64,
    neg_step_size: f64,
    amsgrad: bool,
}

impl AdamKernel {
    /// The update with amsgrad fixed at compile time, so the loop vectorises.
    #[inline(always)]
    fn body<F: Real, const AMSGRAD: bool>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
        let n = p.len();
        let g = &g[..n];
        let (l2, decay, w1) = (
            c::<F>(self.l2),
            c::<F>(self.decay),
            c::<F>(self.one_m_beta1),
        );
        let small = self.one_m_beta1 < 0.5;
        let (b2, w2) = (c::<F>(self.beta2), c::<F>(self.one_m_beta2));
        let (bc2, eps, nss) = (
            c::<F>(self.bias_correction2_sqrt),
            c::<F>(self.eps),
            c::<F>(self.neg_step_size),
        );
        let (m, rest) = s.split_at_mut(1);
        let m = &mut m[0][..n];
        let (v, rest) = rest.split_at_mut(1);
        let v = &mut v[0][..n];
        let vmax: &mut [f32] = if AMSGRAD { &mut rest[0][..n] } else { &mut [] };
        for i in 0..n {
            let mut pi = p[i];
            if self.decay != 1.0 {
                pi = pi * decay;
            }
            let mut gi = if self.maximize { -g[i] } else { g[i] };
            if self.l2 != 0.0 {
                gi = gi + l2 * pi;
            }
            let mi = lerp(F::from_f32(m[i]), gi, w1, small);
            m[i] = Element::to_f32(mi);
            let mut vi = F::from_f32(v[i]) * b2 + w2 * gi * gi;
            v[i] = Element::to_f32(vi);
            if AMSGRAD {
                vi = maximum(F::from_f32(vmax[i]), vi);
                vmax[i] = Element::to_f32(vi);
            }
            let denom = vi.sqrt() / bc2 + eps;
            p[i] = pi + nss * mi / denom;
        }
    }
}

impl Kernel for AdamKernel {
    /// State: `[exp_avg, exp_avg_sq]`, plus `max_exp_avg_sq` with amsgrad.
    fn run<F: Real>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
        if self.amsgrad {
            self.body::<F, true>(p, g, s)
        } else {
            self.body::<F, false>(p, g, s)
        }
    }
}

impl Adam {
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];

    /// Adam over `params` in one group.
    pub fn new(params: Vec<Tensor>, cfg: AdamConfig) -> Result<Adam> {
        Self::build(params, cfg, false)
    }

    /// Adam over several parameter groups; what a group leaves unset comes from `cfg`.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: AdamConfig) -> Result<Adam> {
        Self::build_groups(groups, cfg, false)
    }

    fn build(params: Vec<Tensor>, cfg: AdamConfig, decoupled: bool) -> Result<Adam> {
        if params.is_empty() {
            return Err(Error::value(
                kind_of(decoupled),
                "optimizer got an empty parameter list",
            ));
        }
        Self::build_groups(vec![ParamGroup::new(params)], cfg, decoupled)
    }

    fn build_groups(groups: Vec<ParamGroup>, cfg: AdamConfig, decoupled: bool) -> Result<Adam> {
        let kind = kind_of(decoupled);
        Self::resolve(&cfg, kind, &mut ParamGroup::new(vec![]))?;
        let core = Core::new(kind, groups, &|g| Self::resolve(&cfg, kind, g))?;
        Ok(Adam {
            core,
            defaults: cfg,
            decoupled,
        })
    }

    /// The config values this optimizer gives groups that leave them unset.
    pub fn defaults(&self) -> &AdamConfig {
        &self.defaults
    }

    fn kind(&self) -> &'static str {
        kind_of(self.decoupled)
    }

    fn resolve(d: &AdamConfig, op: &str, g: &mut ParamGroup) -> Result<()> {
        fill_common(g, d.lr, d.weight_decay);
        let o = &mut g.options;
        o.betas.get_or_insert(d.betas);
        o.eps.get_or_insert(d.eps);
        o.amsgrad.get_or_insert(d.amsgrad);
        o.maximize.get_or_insert(d.maximize);
        let c = Self::group_cfg(g);
        check_nonneg(op, "learning rate", c.lr)?;
        check_nonneg(op, "epsilon value", c.eps)?;
        if !(0.0..1.0).contains(&c.betas.0) {
            return Err(Error::value(
                op,
                format!("Invalid beta parameter at index 0: {}", c.betas.0),
            ));
        }
        if !(0.0..1.0).contains(&c.betas.1) {
            return Err(Error::value(
                op,
                format!("Invalid beta parameter at index 1: {}", c.betas.1),
            ));
        }
        check_nonneg(op, "weight_decay value", c.weight_decay)
    }

    /// The effective config of a (resolved) group.
    fn group_cfg(g: &ParamGroup) -> AdamConfig {
        let o = &g.options;
        let d = AdamConfig::default();
        AdamConfig {
            lr: g.lr,
            betas: o.betas.unwrap_or(d.betas),
            eps: o.eps.unwrap_or(d.eps),
            weight_decay: g.weight_decay,
            amsgrad: o.amsgrad.unwrap_or(false),
            maximize: o.maximize.unwrap_or(false),
        }
    }

    fn step_impl(&mut self) -> Result<()> {
        let kind = self.kind();
        let mut pending = Vec::new();
        for gi in 0..self.core.groups.len() {
            let c = Self::group_cfg(&self.core.groups[gi]);
            let (beta1, beta2) = c.betas;
            for pi in 0..self.core.groups[gi].params.len() {
                let p = self.core.groups[gi].params[pi].clone();
                let Some(grad) = p.grad() else { continue };
                let n = p.numel();
                let slot = self.core.slot_mut(gi, pi).get_or_insert_with(Slot::default);
                slot.step += 1;
                let step = slot.step as f64;
                let bias_correction1 = 1.0 - beta1.powf(step);
                let bias_correction2 = 1.0 - beta2.powf(step);
                let k = AdamKernel {
                    maximize: c.maximize,
                    l2: if self.decoupled { 0.0 } else { c.weight_decay },
                    decay: if self.decoupled && c.weight_decay != 0.0 {
                        1.0 - c.lr * c.weight_decay
                    } else {
                        1.0
                    },
                    one_m_beta1: 1.0 - beta1,
                    beta2,
                    one_m_beta2: 1.0 - beta2,
                    bias_correction2_sqrt: bias_correction2.sqrt(),
                    eps: c.eps,
                    neg_step_size: -(c.lr / bias_correction1),
                    amsgrad: c.amsgrad,
                };
                slot.buf(0, n);
                slot.buf(1, n);
                if c.amsgrad {
                    slot.buf(2, n);
                }
                pending.push(fused::Pending {
                    gi,
                    pi,
                    p,
                    g: grad,
                    rule: fused::UpdateRule::Adam(k),
                    bufs: if c.amsgrad { vec![0, 1, 2] } else { vec![0, 1] },
                });
            }
        }
        fused::update_all(kind, &mut self.core, pending)
    }
}

fn kind_of(decoupled: bool) -> &'static str {
    if decoupled {
        "AdamW"
    } else {
        "Adam"
    }
}

optimizer_common!(Adam);

impl AdamW {
    /// AdamW over `params` in one group. Pass [`AdamConfig::adamw_default`] (weight decay 0.01)
    /// for PyTorch's defaults.
    pub fn new(params: Vec<Tensor>, cfg: AdamConfig) -> Result<AdamW> {
        Adam::build(params, cfg, true).map(AdamW)
    }

    /// AdamW over several parameter groups; what a group leaves unset comes from `cfg`.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: AdamConfig) -> Result<AdamW> {
        Adam::build_groups(groups, cfg, true).map(AdamW)
    }

    /// AdamW over `params` with PyTorch's defaults and learning rate `lr`.
    pub fn with_lr(params: Vec<Tensor>, lr: f64) -> Result<AdamW> {
        Self::new(
            params,
            AdamConfig {
                lr,
                ..AdamConfig::adamw_default()
            },
        )
    }

    /// Adds a parameter group (PyTorch's `add_param_group`).
    pub fn add_param_group(&mut self, group: ParamGroup) -> Result<()> {
        self.0.add_param_group(group)
    }

    /// The config values this optimizer gives groups that leave them unset.
    pub fn defaults(&self) -> &AdamConfig {
        &self.0.defaults
    }
}

impl super::Optimizer for AdamW {
    fn step(&mut self) -> Result<()> {
        self.0.step()
    }
    fn zero_grad(&mut self) {
        self.0.zero_grad()
    }
    fn param_groups(&self) -> &[ParamGroup] {
        self.0.param_groups()
    }
    fn param_groups_mut(&mut self) -> &mut [ParamGroup] {
        self.0.param_groups_mut()
    }
    fn state_dict(&self) -> Result<super::OptimState> {
        self.0.state_dict()
    }
    fn load_state_dict(&mut self, s: &super::OptimState) -> Result<()> {
        self.0.load_state_dict(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::*;
    use crate::optim::Optimizer;

    // Expected values from PyTorch 2.15 (CPU, float32), with `p0`, `grad` and `run` as in
    // sgd.rs's tests:
    //
    // print(run(torch.optim.Adam, lr=0.01))
    // print(run(torch.optim.Adam, lr=0.01, weight_decay=0.1, amsgrad=True))
    // print(run(torch.optim.Adam, lr=0.02, betas=(0.3, 0.9), eps=1e-6, maximize=True))
    // print(run(torch.optim.AdamW, lr=0.01))
    // print(run(torch.optim.AdamW, lr=0.005, betas=(0.8, 0.95), weight_decay=0.05, amsgrad=True))
    fn run(cfg: AdamConfig, decoupled: bool) -> Vec<f32> {
        let p = param(6);
        let mut opt: Box<dyn Optimizer> = if decoupled {
            Box::new(AdamW::new(vec![p.clone()], cfg).unwrap())
        } else {
            Box::new(Adam::new(vec![p.clone()], cfg).unwrap())
        };
        for t in 0..5 {
            set_grad(&p, t, 0).unwrap();
            opt.step().unwrap();
        }
        p.to_vec::<f32>().unwrap()
    }

    #[test]
    fn adam_matches_torch() {
        let got = run(
            AdamConfig {
                lr: 0.01,
                ..Default::default()
            },
            false,
        );
        let want = [
            -0.72203773,
            0.47031572,
            0.010812741,
            -0.5163358,
            0.7300609,
            0.27462858,
        ];
        assert_close(&got, &want, "adam");
    }

    #[test]
    fn adam_weight_decay_amsgrad_matches_torch() {
        let got = run(
            AdamConfig {
                lr: 0.01,
                weight_decay: 0.1,
                amsgrad: true,
                ..Default::default()
            },
            false,
        );
        let want = [
            -0.7168664,
            0.4666068,
            0.010699464,
            -0.5108167,
            0.7226355,
            0.2714386,
        ];
        assert_close(&got, &want, "adam amsgrad");
    }

    #[test]
    fn adam_betas_maximize_matches_torch() {
        let cfg = AdamConfig {
            lr: 0.02,
            betas: (0.3, 0.9),
            eps: 1e-6,
            maximize: true,
            ..Default::default()
        };
        let got = run(cfg, false);
        let want = [
            -0.77902067,
            0.5484742,
            -0.015908655,
            -0.4906099,
            0.77942,
            0.20726936,
        ];
        assert_close(&got, &want, "adam betas maximize");
    }

    #[test]
    fn adamw_matches_torch() {
        let got = run(
            AdamConfig {
                lr: 0.01,
                ..AdamConfig::adamw_default()
            },
            true,
        );
        let want = [
            -0.7216706,
            0.47007343,
            0.010808756,
            -0.51608056,
            0.7296925,
            0.27449736,
        ];
        assert_close(&got, &want, "adamw");
    }

    #[test]
    fn adamw_amsgrad_matches_torch() {
        let cfg = AdamConfig {
            lr: 0.005,
            betas: (0.8, 0.95),
            weight_decay: 0.05,
            amsgrad: true,
            ..Default::default()
        };
        let got = run(cfg, true);
        let want = [
            -0.7362734,
            0.48513716,
            0.0050524375,
            -0.5066017,
            0.7396997,
            0.2615359,
        ];
        assert_close(&got, &want, "adamw amsgrad");
    }

    #[test]
    fn adam_rejects_bad_hyper_parameters() {
        let p = || vec![param(2)];
        assert!(Adam::new(
            p(),
            AdamConfig {
                lr: -1.0,
                ..Default::default()
            }
        )
        .is_err());
        assert!(Adam::new(
            p(),
            AdamConfig {
                eps: -1.0,
                ..Default::default()
            }
        )
        .is_err());
        assert!(Adam::new(
            p(),
            AdamConfig {
                betas: (1.0, 0.999),
                ..Default::default()
            }
        )
        .is_err());
        assert!(Adam::new(
            p(),
            AdamConfig {
                betas: (0.9, -0.1),
                ..Default::default()
            }
        )
        .is_err());
        assert!(AdamW::new(
            p(),
            AdamConfig {
                weight_decay: -0.1,
                ..Default::default()
            }
        )
        .is_err());
        assert_eq!(AdamConfig::adamw_default().weight_decay, 0.01);
    }

    #[test]
    fn adam_f64_and_strided_params_match_f32_contiguous() {
        let cfg = AdamConfig {
            lr: 0.01,
            weight_decay: 0.1,
            amsgrad: true,
            ..Default::default()
        };
        let want = run(cfg, false);
        // f64 parameter
        let p = Tensor::from_vec(p0(6).iter().map(|&x| x as f64).collect::<Vec<_>>(), &[6])
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        let mut opt = Adam::new(vec![p.clone()], cfg).unwrap();
        for t in 0..5 {
            let g: Vec<f64> = grad(6, t).iter().map(|&x| x as f64).collect();
            p.set_grad(Some(Tensor::from_vec(g, &[6]).unwrap()))
                .unwrap();
            opt.step().unwrap();
        }
        let got: Vec<f32> = p
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|&x| x as f32)
            .collect();
        assert_close(&got, &want, "adam f64");
        // a non-contiguous (transposed) f32 parameter: [3, 2] viewed as [2, 3]
        let mut tv = vec![0.0f32; 6];
        let src = p0(6);
        for r in 0..2 {
            for c in 0..3 {
                tv[c * 2 + r] = src[r * 3 + c];
            }
        }
        let p = Tensor::from_vec(tv, &[3, 2])
            .unwrap()
            .t()
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        assert!(!p.is_contiguous() && p.is_leaf());
        let mut opt = Adam::new(vec![p.clone()], cfg).unwrap();
        for t in 0..5 {
            p.set_grad(Some(Tensor::from_vec(grad(6, t), &[2, 3]).unwrap()))
                .unwrap();
            opt.step().unwrap();
        }
        assert_close(&p.to_vec::<f32>().unwrap(), &want, "adam strided");
    }

    #[test]
    fn adam_large_tensor_parallel_path_matches_serial() {
        // 70000 elements take the threaded path; elementwise updates must equal a small run's.
        let n = 70_000;
        let cfg = AdamConfig {
            lr: 0.01,
            amsgrad: true,
            ..Default::default()
        };
        let big = param(n);
        let small = param(77);
        let mut ob = Adam::new(vec![big.clone()], cfg).unwrap();
        let mut os = Adam::new(vec![small.clone()], cfg).unwrap();
        for t in 0..3 {
            set_grad(&big, t, 0).unwrap();
            set_grad(&small, t, 0).unwrap();
            ob.step().unwrap();
            os.step().unwrap();
        }
        let b = big.to_vec::<f32>().unwrap();
        let s = small.to_vec::<f32>().unwrap();
        // formulas repeat with period 77 in i (p0: 7, grad: 11)
        for (i, x) in b.iter().enumerate() {
            assert_eq!(*x, s[i % 77], "element {i}");
        }
    }
}

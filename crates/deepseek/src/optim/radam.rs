//! RAdam and NAdam (PyTorch's `torch.optim.RAdam` and `torch.optim.NAdam`): Adam variants
//! with a rectified adaptive step and with Nesterov momentum.

use super::fused::{self, c, lerp, Kernel, Real};
use super::{check_nonneg, fill_common, optimizer_common, Core, ParamGroup, Slot};
use crate::tensor::Element;
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`RAdam`] and [`NAdam`], with PyTorch's defaults
/// ([`AdamVariantConfig::radam_default`], [`AdamVariantConfig::nadam_default`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamVariantConfig {
    /// Learning rate (RAdam `1e-3`, NAdam `2e-3`).
    pub lr: f64,
    /// Decay rates of the gradient's first and second moments (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the denominator for stability (default `1e-8`).
    pub eps: f64,
    /// Weight decay (default 0): L2 added to the gradient, or decoupled (AdamW-style).
    pub weight_decay: f64,
    /// Decay the weights directly (`p *= 1 - lr weight_decay`) instead of an L2 term.
    pub decoupled_weight_decay: bool,
    /// NAdam's momentum decay `psi` (default `4e-3`); unused by RAdam.
    pub momentum_decay: f64,
    /// Maximize the objective (default false).
    pub maximize: bool,
}

impl AdamVariantConfig {
    /// `torch.optim.RAdam`'s defaults.
    pub fn radam_default() -> Self {
        AdamVariantConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            momentum_decay: 4e-3,
            maximize: false,
        }
    }
    /// `torch.optim.NAdam`'s defaults.
    pub fn nadam_default() -> Self {
        AdamVariantConfig {
            lr: 2e-3,
            ..Self::radam_default()
        }
    }
}

/// Which update [`AdamVariant`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    RAdam,
    NAdam,
}

/// The shared machinery of RAdam and NAdam.
#[derive(Debug, Clone)]
struct AdamVariant {
    core: Core,
    defaults: AdamVariantConfig,
    variant: Variant,
}

/// RAdam, exactly as `torch.optim.RAdam`:
///
/// ```text
/// g = grad (negated when maximize); weight decay: L2 (g += wd p) or decoupled (p *= 1 - lr wd)
/// m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
/// rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
/// rho_t > 5: p -= m / (1 - beta1^t) * lr * sqrt(1 - beta2^t) / (sqrt(v) + eps) * rect
///            rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
/// otherwise: p -= m / (1 - beta1^t) * lr
/// ```
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{AdamVariantConfig, Optimizer, RAdam};
/// let w = Tensor::from_vec(vec![1.0f32], &[1])?.requires_grad_(true)?;
/// let mut opt = RAdam::new(vec![w.clone()], AdamVariantConfig { lr: 0.1, ..AdamVariantConfig::radam_default() })?;
/// w.square()?.sum_all()?.backward()?;
/// opt.step()?; // early steps are SGD with momentum: p -= lr * m / (1 - beta1) = lr * g
/// assert!((w.to_vec::<f32>()?[0] - 0.8).abs() < 1e-6);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RAdam(AdamVariant);

/// NAdam, exactly as `torch.optim.NAdam`:
///
/// ```text
/// g as for RAdam (L2 or decoupled weight decay)
/// mu_t = beta1 (1 - 0.5 * 0.96^(t psi));  mu_{t+1} likewise;  mu_product *= mu_t
/// m = lerp(m, g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
/// denom = sqrt(v / (1 - beta2^t)) + eps
/// p -= lr (1 - mu_t) / (1 - mu_product) * g / denom
/// p -= lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / denom
/// ```
/// `mu_product` is kept per parameter (in f32, as PyTorch's state tensor).
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::optim::{AdamVariantConfig, NAdam, Optimizer};
/// let w = Tensor::from_vec(vec![1.0f32], &[1])?.requires_grad_(true)?;
/// let mut opt = NAdam::new(vec![w.clone()], AdamVariantConfig::nadam_default())?;
/// w.square()?.sum_all()?.backward()?;
/// opt.step()?;
/// assert!(w.to_vec::<f32>()?[0] < 1.0);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NAdam(AdamVariant);

#[derive(Clone, Copy)]
pub(crate) struct VariantKernel {
    maximize: bool,
    /// L2 weight decay added to the gradient; 0 when decoupled.
    l2: f64,
    /// `1 - lr * weight_decay` when decoupled, else 1.
    decay: f64,
    one_m_beta1: f64,
    beta2: f64,
    one_m_beta2: f64,
    variant: Variant,
    // RAdam
    bias_correction1: f64,
    lr: f64,
    /// `Some(sqrt(1 - beta2^t) * rect)` when the variance is tractable (rho_t > 5).
    adaptive: Option<(f64, f64)>,
    eps: f64,
    // NAdam
    bias_correction2: f64,
    grad_coef: f64,
    avg_coef: f64,
}

impl Kernel for VariantKernel {
    /// State: `[exp_avg, exp_avg_sq]`.
    fn run<F: Real>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
        let n = p.len();
        let g = &g[..n];
        let (m, rest) = s.split_at_mut(1);
        let m = &mut m[0][..n];
        let v = &mut rest[0][..n];
        let (l2, decay, w1) = (
            c::<F>(self.l2),
            c::<F>(self.decay),
            c::<F>(self.one_m_beta1),
        );
        let small = self.one_m_beta1 < 0.5;
        let (b2, w2, eps) = (
            c::<F>(self.beta2),
            c::<F>(self.one_m_beta2),
            c::<F>(self.eps),
        );
        let (bc1, lr, bc2) = (
            c::<F>(self.bias_correction1),
            c::<F>(self.lr),
            c::<F>(self.bias_correction2),
        );
        let (gc, ac) = (c::<F>(self.grad_coef), c::<F>(self.avg_coef));
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
            let vi = F::from_f32(v[i]) * b2 + w2 * (gi * gi);
            v[i] = Element::to_f32(vi);
            p[i] = match self.variant {
                Variant::RAdam => {
                    let mhat = mi / bc1;
                    match self.adaptive {
                        Some((bc2_sqrt, rect)) => {
                            let alr = c::<F>(bc2_sqrt) / (vi.sqrt() + eps);
                            pi - mhat * lr * alr * c::<F>(rect)
                        }
                        None => pi - mhat * lr,
                    }
                }
                Variant::NAdam => {
                    let denom = (vi / bc2).sqrt() + eps;
                    let q = pi + gc * (gi / denom);
                    q + ac * (mi / denom)
                }
            };
        }
    }
}

impl AdamVariant {
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];

    fn build(
        groups: Vec<ParamGroup>,
        cfg: AdamVariantConfig,
        variant: Variant,
    ) -> Result<AdamVariant> {
        let kind = kind_of(variant);
        Self::resolve_for(&cfg, kind, &mut ParamGroup::new(vec![]))?;
        let core = Core::new(kind, groups, &|g| Self::resolve_for(&cfg, kind, g))?;
        Ok(AdamVariant {
            core,
            defaults: cfg,
            variant,
        })
    }

    fn kind(&self) -> &'static str {
        kind_of(self.variant)
    }

    fn resolve(d: &AdamVariantConfig, op: &str, g: &mut ParamGroup) -> Result<()> {
        Self::resolve_for(d, op, g)
    }

    fn resolve_for(d: &AdamVariantConfig, op: &str, g: &mut ParamGroup) -> Result<()> {
        fill_common(g, d.lr, d.weight_decay);
        let o = &mut g.options;
        o.betas.get_or_insert(d.betas);
        o.eps.get_or_insert(d.eps);
        o.decoupled_weight_decay
            .get_or_insert(d.decoupled_weight_decay);
        o.maximize.get_or_insert(d.maximize);
        if op == "NAdam" {
            o.momentum_decay.get_or_insert(d.momentum_decay);
        }
        let c = Self::group_cfg(g);
        check_nonneg(op, "learning rate", c.lr)?;
        check_nonneg(op, "epsilon value", c.eps)?;
        for (i, b) in [c.betas.0, c.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::value(
                    op,
                    format!("Invalid beta parameter at index {i}: {b}"),
                ));
            }
        }
        check_nonneg(op, "momentum_decay value", c.momentum_decay)?;
        check_nonneg(op, "weight_decay value", c.weight_decay)
    }

    fn group_cfg(g: &ParamGroup) -> AdamVariantConfig {
        let o = &g.options;
        let d = AdamVariantConfig::radam_default();
        AdamVariantConfig {
            lr: g.lr,
            betas: o.betas.unwrap_or(d.betas),
            eps: o.eps.unwrap_or(d.eps),
            weight_decay: g.weight_decay,
            decoupled_weight_decay: o.decoupled_weight_decay.unwrap_or(false),
            momentum_decay: o.momentum_decay.unwrap_or(d.momentum_decay),
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
                let t = slot.step as f64;
                let bias_correction1 = 1.0 - beta1.powf(t);
                let bias_correction2 = 1.0 - beta2.powf(t);
                let (mut adaptive, mut grad_coef, mut avg_coef) = (None, 0.0, 0.0);
                match self.variant {
                    Variant::RAdam => {
                        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
                        let rho_t = rho_inf - 2.0 * t * beta2.powf(t) / bias_correction2;
                        if rho_t > 5.0 {
                            let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                                .sqrt();
                            adaptive = Some((bias_correction2.sqrt(), rect));
                        }
                    }
                    Variant::NAdam => {
                        let psi = c.momentum_decay;
                        let mu = beta1 * (1.0 - 0.5 * 0.96f64.powf(t * psi));
                        let mu_next = beta1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * psi));
                        // PyTorch keeps mu_product in a float32 tensor
                        let prev = slot.scalars.get("mu_product").copied().unwrap_or(1.0);
                        let mu_product = (prev as f32 * mu as f32) as f64;
                        slot.scalars.insert("mu_product".to_string(), mu_product);
                        let mu_product_next = mu_product * mu_next;
                        grad_coef = -c.lr * (1.0 - mu) / (1.0 - mu_product);
                        avg_coef = (-c.lr * mu_next) / (1.0 - mu_product_next);
                    }
                }
                let decoupled = c.decoupled_weight_decay && c.weight_decay != 0.0;
                let k = VariantKernel {
                    maximize: c.maximize,
                    l2: if c.decoupled_weight_decay {
                        0.0
                    } else {
                        c.weight_decay
                    },
                    decay: if decoupled {
                        1.0 - c.lr * c.weight_decay
                    } else {
                        1.0
                    },
                    one_m_beta1: 1.0 - beta1,
                    beta2,
                    one_m_beta2: 1.0 - beta2,
                    variant: self.variant,
                    bias_correction1,
                    lr: c.lr,
                    adaptive,
                    eps: c.eps,
                    bias_correction2,
                    grad_coef,
                    avg_coef,
                };
                slot.buf(0, n);
                slot.buf(1, n);
                pending.push(fused::Pending {
                    gi,
                    pi,
                    p,
                    g: grad,
                    rule: fused::UpdateRule::AdamVariant(k),
                    bufs: vec![0, 1],
                });
            }
        }
        fused::update_all(kind, &mut self.core, pending)
    }
}

fn kind_of(v: Variant) -> &'static str {
    match v {
        Variant::RAdam => "RAdam",
        Variant::NAdam => "NAdam",
    }
}

optimizer_common!(AdamVariant);

macro_rules! variant_api {
    ($t:ident, $v:expr, $name:literal) => {
        impl $t {
            #[doc = concat!($name, " over `params` in one group.")]
            pub fn new(params: Vec<Tensor>, cfg: AdamVariantConfig) -> Result<$t> {
                if params.is_empty() {
                    return Err(Error::value($name, "optimizer got an empty parameter list"));
                }
                Self::with_groups(vec![ParamGroup::new(params)], cfg)
            }
            #[doc = concat!($name, " over several parameter groups; what a group leaves unset comes from `cfg`.")]
            pub fn with_groups(groups: Vec<ParamGroup>, cfg: AdamVariantConfig) -> Result<$t> {
                AdamVariant::build(groups, cfg, $v).map($t)
            }
            /// The config values this optimizer gives groups that leave them unset.
            pub fn defaults(&self) -> &AdamVariantConfig {
                &self.0.defaults
            }
            /// Adds a parameter group (PyTorch's `add_param_group`).
            pub fn add_param_group(&mut self, group: ParamGroup) -> Result<()> {
                self.0.add_param_group(group)
            }
        }
        impl super::Optimizer for $t {
            fn step(&mut self) -> Result<()> {
                self.0.step_impl()
            }
            fn zero_grad(&mut self) {
                self.0.core.zero_grad()
            }
            fn param_groups(&self) -> &[ParamGroup] {
                &self.0.core.groups
            }
            fn param_groups_mut(&mut self) -> &mut [ParamGroup] {
                &mut self.0.core.groups
            }
            fn state_dict(&self) -> Result<super::OptimState> {
                super::Optimizer::state_dict(&self.0)
            }
            fn load_state_dict(&mut self, s: &super::OptimState) -> Result<()> {
                super::Optimizer::load_state_dict(&mut self.0, s)
            }
        }
    };
}

variant_api!(RAdam, Variant::RAdam, "RAdam");
variant_api!(NAdam, Variant::NAdam, "NAdam");

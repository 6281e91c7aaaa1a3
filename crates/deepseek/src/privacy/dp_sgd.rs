//! DP-SGD's gradient: per-sample clipping, Gaussian noise, averaging (Abadi et al. 2016, as
//! Opacus' `DPOptimizer` with `loss_reduction="mean"`).

use crate::{Error, Result, Tensor};

/// The noise and clipping of DP-SGD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpSgdConfig {
    /// σ: the noise's standard deviation is `noise_multiplier * max_grad_norm`.
    pub noise_multiplier: f64,
    /// C: each sample's gradient (all parameters together) is clipped to this 2-norm.
    pub max_grad_norm: f64,
    /// The expected batch size `q·N` of Poisson sampling: the noisy sum is divided by it.
    pub expected_batch_size: f64,
}

impl DpSgdConfig {
    /// Checks the values: σ > 0, C > 0, expected batch size > 0 (all finite).
    pub fn validate(&self) -> Result<()> {
        let op = "DpSgdConfig";
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.noise_multiplier) {
            return Err(Error::value(
                op,
                format!(
                    "noise_multiplier must be a finite number > 0, got {} (without noise there is no differential privacy)",
                    self.noise_multiplier
                ),
            ));
        }
        if !ok(self.max_grad_norm) {
            return Err(Error::value(
                op,
                format!(
                    "max_grad_norm must be a finite number > 0, got {}",
                    self.max_grad_norm
                ),
            ));
        }
        if !ok(self.expected_batch_size) {
            return Err(Error::value(
                op,
                format!(
                    "expected_batch_size must be a finite number > 0, got {}",
                    self.expected_batch_size
                ),
            ));
        }
        Ok(())
    }
}

/// What [`clip_and_noise`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipStats {
    /// Samples in the batch.
    pub batch_size: usize,
    /// Samples whose gradient norm exceeded `max_grad_norm`.
    pub clipped: usize,
    /// Mean per-sample gradient norm before clipping (NaN for an empty batch).
    pub mean_norm: f64,
}

/// Sets each parameter's `.grad()` to DP-SGD's gradient from per-sample gradients
/// (`per_sample[i]` is `[B, ...params[i].shape()]`): every sample's gradient is scaled by
/// `min(1, C / (‖g_b‖ + 1e-6))` (the norm over all parameters, as Opacus), the scaled
/// gradients are summed, Gaussian noise of standard deviation `σ·C` (from the global
/// generator, [`crate::manual_seed`]) is added, and the result divided by the expected
/// batch size. An empty batch gives the noise alone.
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::privacy::{clip_and_noise, DpSgdConfig};
/// let p = Tensor::zeros(&[2], DType::F64)?.requires_grad_(true)?;
/// // Two samples: norms 5 and 0.5.
/// let g = Tensor::from_vec(vec![3.0f64, 4.0, 0.3, 0.4], &[2, 2])?;
/// let cfg = DpSgdConfig { noise_multiplier: 1e-9, max_grad_norm: 1.0, expected_batch_size: 2.0 };
/// let s = clip_and_noise(&[p.clone()], &[g], &cfg)?;
/// assert_eq!(s.clipped, 1);
/// let v = p.grad().unwrap().to_vec::<f64>()?; // (0.6 + 0.3, 0.8 + 0.4) / 2
/// assert!((v[0] - 0.45).abs() < 1e-6 && (v[1] - 0.6).abs() < 1e-6);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn clip_and_noise(
    params: &[Tensor],
    per_sample: &[Tensor],
    cfg: &DpSgdConfig,
) -> Result<ClipStats> {
    cfg.validate()?;
    let op = "clip_and_noise";
    if params.len() != per_sample.len() || params.is_empty() {
        return Err(Error::value(
            op,
            format!(
                "{} parameters but {} per-sample gradients",
                params.len(),
                per_sample.len()
            ),
        ));
    }
    let b = per_sample[0].shape().first().copied().unwrap_or(0);
    for (p, g) in params.iter().zip(per_sample) {
        if g.rank() != p.rank() + 1 || g.shape()[0] != b || &g.shape()[1..] != p.shape() {
            return Err(Error::shape(
                op,
                format!(
                    "per-sample gradient of shape {:?} does not fit a parameter of shape {:?} with a batch of {b}",
                    g.shape(),
                    p.shape()
                ),
            ));
        }
    }
    let _ng = crate::no_grad();
    let c = cfg.max_grad_norm;
    let mut stats = ClipStats {
        batch_size: b,
        clipped: 0,
        mean_norm: f64::NAN,
    };
    let flat: Vec<Tensor> = per_sample
        .iter()
        .map(|g| g.reshape(&[b, g.numel() / b.max(1)]))
        .collect::<Result<_>>()?;
    let factor = if b > 0 {
        let mut sq = vec![0.0f64; b];
        for g in &flat {
            for (s, v) in sq
                .iter_mut()
                .zip(g.square()?.sum_dim(&[1], false)?.to_vec_f64()?)
            {
                *s += v;
            }
        }
        let norms: Vec<f64> = sq.iter().map(|s| s.sqrt()).collect();
        stats.clipped = norms.iter().filter(|&&n| n > c).count();
        stats.mean_norm = norms.iter().sum::<f64>() / b as f64;
        let f: Vec<f64> = norms.iter().map(|n| (c / (n + 1e-6)).min(1.0)).collect();
        Some(Tensor::from_vec(f, &[1, b])?.to_dtype(per_sample[0].dtype())?)
    } else {
        None
    };
    let std = cfg.noise_multiplier * c;
    for ((p, g), gs) in params.iter().zip(&flat).zip(per_sample) {
        let noise = Tensor::normal(p.shape(), 0.0, std, gs.dtype())?;
        let sum = match &factor {
            // Σ_b f_b g_b as one [1, B] x [B, P] product.
            Some(f) => f.matmul(g)?.reshape(p.shape())?.add(&noise)?,
            None => noise,
        };
        let grad = sum.mul_scalar(1.0 / cfg.expected_batch_size)?;
        p.set_grad(Some(grad.to_dtype(p.dtype())?))?;
    }
    Ok(stats)
}

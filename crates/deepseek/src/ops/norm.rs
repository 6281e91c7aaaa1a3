//! Normalisation: layer norm (fused forward), RMS norm, batch norm, group norm.

use super::Op;
use crate::autograd::{needs_record, record, Ctx};
use crate::error::bail_shape;
use crate::{backend, Error, Result, Tensor};

fn check_normalized(op: &str, x: &Tensor, shape: &[usize]) -> Result<usize> {
    let k = shape.len();
    if k == 0 || k > x.rank() || &x.shape()[x.rank() - k..] != shape {
        bail_shape!(
            op,
            "normalized_shape {shape:?} does not match the trailing dims of input of shape {:?}",
            x.shape()
        );
    }
    Ok(shape.iter().product())
}

/// Layer norm over the trailing `normalized_shape` dims (PyTorch's `F.layer_norm`).
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    let n = check_normalized("layer_norm", x, normalized_shape)?;
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.shape() != normalized_shape {
                bail_shape!(
                    "layer_norm",
                    "{name} of shape {:?} does not match normalized_shape {normalized_shape:?}",
                    t.shape()
                );
            }
        }
    }
    let w = weight.map(|t| t.to_dtype(x.dtype())).transpose()?;
    let b = bias.map(|t| t.to_dtype(x.dtype())).transpose()?;
    let (y, mean, rstd) = backend::layer_norm(&x.detach(), n, w.as_ref(), b.as_ref(), eps)?;
    let mut inputs: Vec<&Tensor> = vec![x];
    if let Some(w) = &w {
        inputs.push(w);
    }
    if let Some(b) = &b {
        inputs.push(b);
    }
    if !needs_record(&inputs) {
        return Ok(y);
    }
    let mut saved = vec![x.clone(), mean, rstd];
    if let Some(w) = &w {
        saved.push(w.clone());
    }
    let op = Op::LayerNorm {
        n,
        eps,
        has_weight: w.is_some(),
        has_bias: b.is_some(),
    };
    Ok(record(op, &inputs, vec![y], saved, false)
        .pop()
        .expect("one output"))
}

pub(crate) fn layer_norm_backward(
    n: usize,
    eps: f64,
    has_w: bool,
    has_b: bool,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let n_in = 1 + usize::from(has_w) + usize::from(has_b);
    let Some(g) = &grads[0] else {
        return Ok(vec![None; n_in]);
    };
    let x = ctx.saved(0);
    let shape = x.shape().to_vec();
    let rows = x.numel().checked_div(n).unwrap_or(0);
    let x2 = x.reshape(&[rows, n])?;
    let g2 = g.reshape(&[rows, n])?;
    let (mean, rstd) = if ctx.create_graph {
        let m = x2.mean_dim(&[1], true)?;
        let v = x2.sub(&m)?.square()?.mean_dim(&[1], true)?;
        (m, v.add_scalar(eps)?.rsqrt()?)
    } else {
        (
            ctx.saved(1).reshape(&[rows, 1])?,
            ctx.saved(2).reshape(&[rows, 1])?,
        )
    };
    let xhat = x2.sub(&mean)?.mul(&rstd)?;
    let gw = if has_w {
        g2.mul(&ctx.saved(3).reshape(&[1, n])?)?
    } else {
        g2.clone()
    };
    let mut out = Vec::with_capacity(n_in);
    if ctx.needs(0) {
        let a = gw.mean_dim(&[1], true)?;
        let b = gw.mul(&xhat)?.mean_dim(&[1], true)?;
        let dx = gw.sub(&a)?.sub(&xhat.mul(&b)?)?.mul(&rstd)?;
        out.push(Some(dx.reshape(&shape)?));
    } else {
        out.push(None);
    }
    let wshape = ctx.input_shape(n_in - 1 - usize::from(has_b)).to_vec();
    if has_w {
        out.push(if ctx.needs(1) {
            Some(g2.mul(&xhat)?.sum_dim(&[0], false)?.reshape(&wshape)?)
        } else {
            None
        });
    }
    if has_b {
        let bi = n_in - 1;
        out.push(if ctx.needs(bi) {
            Some(g2.sum_dim(&[0], false)?.reshape(ctx.input_shape(bi))?)
        } else {
            None
        });
    }
    Ok(out)
}

/// RMS norm over the trailing dims: `x / sqrt(mean(x^2) + eps) * weight`; `eps` defaults to
/// the dtype's machine epsilon like PyTorch.
pub fn rms_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    eps: Option<f64>,
) -> Result<Tensor> {
    check_normalized("rms_norm", x, normalized_shape)?;
    let eps = eps.unwrap_or(match x.dtype() {
        crate::DType::F64 => f64::EPSILON,
        crate::DType::F16 => 0.000_976_562_5,
        crate::DType::BF16 => 0.007_812_5,
        _ => f32::EPSILON as f64,
    });
    let dims: Vec<isize> = (0..normalized_shape.len() as isize)
        .map(|i| -1 - i)
        .collect();
    let r = x
        .square()?
        .mean_dim(&dims, true)?
        .add_scalar(eps)?
        .rsqrt()?;
    let y = x.mul(&r)?;
    match weight {
        Some(w) => y.mul(w),
        None => Ok(y),
    }
}

/// Batch norm over dim 1 (`x` is [N, C, ...]). In training, normalises with the batch
/// statistics and updates `running_mean`/`running_var` in place with `momentum` (unbiased
/// variance), like PyTorch; in eval, uses the running statistics.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    if x.rank() < 2 {
        bail_shape!(
            "batch_norm",
            "expected input with at least 2 dims [N, C, ...], got {:?}",
            x.shape()
        );
    }
    let c = x.shape()[1];
    for (name, t) in [
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ] {
        if let Some(t) = t {
            if t.shape() != [c] {
                bail_shape!(
                    "batch_norm",
                    "{name} of shape {:?} does not match {c} channels of input {:?}",
                    t.shape(),
                    x.shape()
                );
            }
        }
    }
    let mut bshape = vec![1usize; x.rank()];
    bshape[1] = c;
    let dims: Vec<isize> = (0..x.rank() as isize).filter(|&d| d != 1).collect();
    let count = x.numel() / c.max(1);
    let (mean, var) = if training {
        if count <= 1 {
            return Err(Error::value(
                "batch_norm",
                format!(
                    "expected more than 1 value per channel when training, got input of shape {:?}",
                    x.shape()
                ),
            ));
        }
        let m = x.mean_dim(&dims, true)?;
        let v = x.sub(&m)?.square()?.mean_dim(&dims, true)?;
        if let (Some(rm), Some(rv)) = (running_mean, running_var) {
            let _g = crate::no_grad();
            let unbiased = v
                .mul_scalar(count as f64 / (count as f64 - 1.0))?
                .reshape(&[c])?;
            rm.copy_(
                &rm.mul_scalar(1.0 - momentum)?
                    .add(&m.reshape(&[c])?.mul_scalar(momentum)?)?,
            )?;
            rv.copy_(
                &rv.mul_scalar(1.0 - momentum)?
                    .add(&unbiased.mul_scalar(momentum)?)?,
            )?;
        }
        (m, v)
    } else {
        match (running_mean, running_var) {
            (Some(rm), Some(rv)) => (rm.reshape(&bshape)?, rv.reshape(&bshape)?),
            _ => {
                return Err(Error::value(
                    "batch_norm",
                    "running_mean and running_var must be given when not training",
                ))
            }
        }
    };
    let mut y = x.sub(&mean)?.mul(&var.add_scalar(eps)?.rsqrt()?)?;
    if let Some(w) = weight {
        y = y.mul(&w.reshape(&bshape)?)?;
    }
    if let Some(b) = bias {
        y = y.add(&b.reshape(&bshape)?)?;
    }
    Ok(y)
}

/// Group norm: channels (dim 1) split into `num_groups`, each normalised over its channels and
/// all spatial positions; then a per-channel affine.
pub fn group_norm(
    x: &Tensor,
    num_groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    if x.rank() < 2 || num_groups == 0 || !x.shape()[1].is_multiple_of(num_groups) {
        bail_shape!(
            "group_norm",
            "expected input [N, C, ...] with C divisible by num_groups={num_groups}, got {:?}",
            x.shape()
        );
    }
    let n = x.shape()[0];
    let c = x.shape()[1];
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.shape() != [c] {
                bail_shape!(
                    "group_norm",
                    "{name} of shape {:?} does not match {c} channels of input {:?}",
                    t.shape(),
                    x.shape()
                );
            }
        }
    }
    let xg = x.reshape(&[n, num_groups, x.numel() / (n * num_groups).max(1)])?;
    let m = xg.mean_dim(&[2], true)?;
    let v = xg.sub(&m)?.square()?.mean_dim(&[2], true)?;
    let mut y = xg
        .sub(&m)?
        .mul(&v.add_scalar(eps)?.rsqrt()?)?
        .reshape(x.shape())?;
    let mut bshape = vec![1usize; x.rank()];
    bshape[1] = c;
    if let Some(w) = weight {
        y = y.mul(&w.reshape(&bshape)?)?;
    }
    if let Some(b) = bias {
        y = y.add(&b.reshape(&bshape)?)?;
    }
    Ok(y)
}

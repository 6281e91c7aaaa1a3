//! Softmax, log-softmax (fused kernels; backward written with tensor ops) and dropout.

use super::Op;
use crate::autograd::{needs_record, record1, Ctx};
use crate::{backend, DType, Error, Result, Tensor};

fn softmax_impl(x: &Tensor, dim: isize, log: bool) -> Result<Tensor> {
    let op_name = if log { "log_softmax" } else { "softmax" };
    let x = if x.dtype().is_float() {
        x.clone()
    } else {
        x.to_dtype(DType::F32)?
    };
    if x.rank() == 0 {
        crate::tensor::layout::norm_dim(op_name, dim, 0)?;
        return softmax_impl(&x.reshape(&[1])?, 0, log)?.reshape(&[]);
    }
    let d = crate::tensor::layout::norm_dim(op_name, dim, x.rank())?;
    let last = x.rank() - 1;
    // Move `dim` last, run the row kernel, move it back (a view).
    let xt = if d == last {
        x.clone()
    } else {
        x.transpose(d as isize, last as isize)?
    };
    let y = backend::softmax_last(&xt.detach(), log)?;
    let y = if d == last {
        y
    } else {
        y.transpose(d as isize, last as isize)?
    };
    if !needs_record(&[&x]) {
        return Ok(y);
    }
    let op = if log {
        Op::LogSoftmax { dim: d }
    } else {
        Op::Softmax { dim: d }
    };
    Ok(record1(op, &[&x], y, vec![], true))
}

/// Softmax along `dim`.
pub fn softmax(x: &Tensor, dim: isize) -> Result<Tensor> {
    softmax_impl(x, dim, false)
}

/// Log-softmax along `dim`.
pub fn log_softmax(x: &Tensor, dim: isize) -> Result<Tensor> {
    softmax_impl(x, dim, true)
}

/// The fused row kernel for the input gradient, when no graph of the backward is being built
/// (`create_graph` off), both operands are materialised (deferred ones fuse with their
/// neighbours instead) and of one float dtype; None means: compose it from tensor ops.
fn fused_backward(g: &Tensor, y: &Tensor, dim: usize, log: bool) -> Result<Option<Tensor>> {
    if crate::autograd::is_grad_enabled()
        || g.is_deferred()
        || y.is_deferred()
        || g.dtype() != y.dtype()
        || g.shape() != y.shape()
        || y.rank() == 0
    {
        return Ok(None);
    }
    let last = (y.rank() - 1) as isize;
    let d = dim as isize;
    if d == last {
        return backend::softmax_backward_last(g, y, log).map(Some);
    }
    let dx = backend::softmax_backward_last(&g.transpose(d, last)?, &y.transpose(d, last)?, log)?;
    dx.transpose(d, last).map(Some)
}

pub(crate) fn softmax_backward(
    dim: usize,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    let y = ctx.output(0);
    if let Some(dx) = fused_backward(g, &y, dim, false)? {
        return Ok(vec![Some(dx)]);
    }
    let d = dim as isize;
    let s = g.mul(&y)?.sum_dim(&[d], true)?;
    Ok(vec![Some(y.mul(&g.sub(&s)?)?)])
}

pub(crate) fn log_softmax_backward(
    dim: usize,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    let y = ctx.output(0);
    if let Some(dx) = fused_backward(g, &y, dim, true)? {
        return Ok(vec![Some(dx)]);
    }
    let s = g.sum_dim(&[dim as isize], true)?;
    Ok(vec![Some(g.sub(&y.exp()?.mul(&s)?)?)])
}

/// Dropout: zeroes elements with probability `p` and scales the rest by `1/(1-p)` when
/// `training`; identity otherwise.
pub fn dropout(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::value(
            "dropout",
            format!("dropout probability has to be between 0 and 1, but got {p}"),
        ));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    if p == 1.0 {
        return x.mul_scalar(0.0);
    }
    let mask = Tensor::dropout_mask(x.shape(), p, x.dtype())?;
    let mask = if x.device() != crate::Device::Cpu {
        mask.to_device(x.device())?
    } else {
        mask
    };
    x.mul(&mask)
}

impl Tensor {
    /// Softmax along `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        softmax(self, dim)
    }
    /// Log-softmax along `dim`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        log_softmax(self, dim)
    }
}

//! Loss functions with PyTorch's semantics and reductions.

use super::Op;
use crate::autograd::{needs_record, record1, Ctx};
use crate::error::{bail_shape, bail_value};
use crate::{DType, Error, Result, Tensor};

fn reduce(l: &Tensor, reduction: &str, op: &str) -> Result<Tensor> {
    match reduction {
        "mean" => l.mean_all(),
        "sum" => l.sum_all(),
        "none" => Ok(l.clone()),
        r => Err(Error::value(
            op,
            format!("reduction must be 'mean', 'sum' or 'none', got '{r}'"),
        )),
    }
}

/// Moves the class dim (1) last and flattens: [N, C, d...] -> [N*d..., C]; [C] -> [1, C].
fn classes_last(x: &Tensor) -> Result<Tensor> {
    match x.rank() {
        1 => x.unsqueeze(0),
        2 => Ok(x.clone()),
        r => {
            let mut p: Vec<isize> = vec![0];
            p.extend(2..r as isize);
            p.push(1);
            let c = x.shape()[1];
            x.permute(&p)?.reshape(&[x.numel() / c.max(1), c])
        }
    }
}

fn check_target(op: &str, input: &Tensor, target: &Tensor) -> Result<()> {
    let mut expect: Vec<usize> = input.shape().to_vec();
    if input.rank() == 1 {
        expect.clear();
    } else {
        expect.remove(1);
    }
    if target.shape() != expect.as_slice() {
        bail_shape!(op, "target of shape {:?} does not match input of shape {:?} (expected target shape {expect:?})", target.shape(), input.shape());
    }
    Ok(())
}

/// Negative log-likelihood over log-probabilities with class dim 1 (PyTorch's `F.nll_loss`).
pub fn nll_loss(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: &str,
) -> Result<Tensor> {
    nll_impl("nll_loss", input, target, weight, ignore_index, reduction)
}

fn nll_impl(
    op: &str,
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: &str,
) -> Result<Tensor> {
    if target.dtype().is_float() || target.dtype() == DType::Bool {
        return Err(Error::dtype(
            op,
            format!(
                "expected integer class indices as target, got {}",
                target.dtype()
            ),
        ));
    }
    if input.rank() == 0 {
        bail_shape!(
            op,
            "input must have at least 1 dim (classes), got a 0-d tensor"
        );
    }
    check_target(op, input, target)?;
    let c = if input.rank() == 1 {
        input.shape()[0]
    } else {
        input.shape()[1]
    };
    let x = classes_last(input)?;
    let t = target.reshape(&[target.numel()])?.to_dtype(DType::I64)?;
    let keep = t.ne_scalar(ignore_index as f64)?;
    let tv = t.to_vec::<i64>()?;
    for (&k, &v) in keep.to_vec::<bool>()?.iter().zip(&tv) {
        if k && (v < 0 || v >= c as i64) {
            return Err(Error::index(
                op,
                format!("target {v} is out of bounds for {c} classes"),
            ));
        }
    }
    let safe = t.masked_fill(&keep.logical_not()?, 0.0)?;
    if weight.is_none() && matches!(x.dtype(), DType::F32 | DType::F64) && needs_record(&[&x]) {
        if let Some(l) = nll_over_log_softmax(&x, &t, &safe, &keep, ignore_index)? {
            return match reduction {
                "mean" => l.sum_all()?.div(&keep.to_dtype(x.dtype())?.sum_all()?),
                "none" => l.reshape(target.shape()),
                r => reduce(&l, r, op),
            };
        }
    }
    let picked = x.gather(1, &safe.unsqueeze(1)?)?.squeeze_dim(1)?;
    let mut w = keep.to_dtype(x.dtype())?;
    if let Some(cw) = weight {
        if cw.shape() != [c] {
            bail_shape!(op, "weight of shape {:?} for {c} classes", cw.shape());
        }
        w = w.mul(&cw.to_dtype(x.dtype())?.index_select(0, &safe)?)?;
    }
    let l = picked.neg()?.mul(&w)?;
    match reduction {
        "mean" => l.sum_all()?.div(&w.sum_all()?),
        "none" => l.reshape(target.shape()),
        r => reduce(&l, r, op),
    }
}

/// The per-row loss `-logp[t]` (0 where ignored) of `nll_loss(log_softmax(x, 1))` recorded
/// as one [`Op::CrossEntropy`] over `x` (see `autograd::bypass_log_softmax`), when `logp` is
/// such an output; `None` otherwise. The forward value is the usual gathered one; backward
/// runs the fused cross-entropy kernel on `logp` with a zero log-sum-exp, which gives
/// `exp(logp) - onehot = softmax(x) - onehot`, the gradient of the composition.
fn nll_over_log_softmax(
    logp: &Tensor,
    t: &Tensor,
    safe: &Tensor,
    keep: &Tensor,
    ignore_index: i64,
) -> Result<Option<Tensor>> {
    let l = {
        let _g = crate::autograd::no_grad();
        let picked = logp.gather(1, &safe.unsqueeze(1)?)?.squeeze_dim(1)?;
        picked.neg()?.mul(&keep.to_dtype(logp.dtype())?)?
    };
    let lse = Tensor::zeros(&[logp.shape()[0]], logp.dtype())?;
    Ok(crate::autograd::bypass_log_softmax(
        Op::CrossEntropy {
            ignore_index,
            label_smoothing: 0.0,
        },
        logp,
        &[t],
        &l,
        vec![logp.clone(), t.clone(), lse],
    ))
}

/// Cross-entropy of logits with class dim 1 against class indices (or class probabilities
/// when `target` is float), with `ignore_index`, `label_smoothing` and class `weight`
/// (PyTorch's `F.cross_entropy`).
pub fn cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&label_smoothing) {
        bail_value!(
            "cross_entropy",
            "label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"
        );
    }
    if !input.dtype().is_float() {
        return Err(Error::dtype(
            "cross_entropy",
            format!("expected floating-point logits, got {}", input.dtype()),
        ));
    }
    if input.rank() == 0 {
        bail_shape!(
            "cross_entropy",
            "input must have at least 1 dim (classes), got a 0-d tensor"
        );
    }
    if !target.dtype().is_float() {
        check_target("cross_entropy", input, target)?;
    }
    let c = if input.rank() == 1 {
        input.shape()[0]
    } else {
        input.shape()[1]
    };
    if !target.dtype().is_float()
        && weight.is_none()
        && matches!(input.dtype(), DType::F32 | DType::F64)
    {
        return cross_entropy_fused(input, target, ignore_index, reduction, label_smoothing);
    }
    let logp = input.log_softmax(if input.rank() == 1 { 0 } else { 1 })?;
    if target.dtype().is_float() {
        // Class probabilities.
        if target.shape() != input.shape() {
            bail_shape!(
                "cross_entropy",
                "probability target of shape {:?} must match input {:?}",
                target.shape(),
                input.shape()
            );
        }
        let mut t = target.to_dtype(input.dtype())?;
        if label_smoothing > 0.0 {
            t = t
                .mul_scalar(1.0 - label_smoothing)?
                .add_scalar(label_smoothing / c as f64)?;
        }
        let mut prod = logp.mul(&t)?;
        if let Some(w) = weight {
            let mut s = vec![1usize; input.rank()];
            if input.rank() > 1 {
                s[1] = c;
            } else {
                s[0] = c;
            }
            prod = prod.mul(&w.reshape(&s)?)?;
        }
        let l = prod
            .sum_dim(&[if input.rank() == 1 { 0 } else { 1 }], false)?
            .neg()?;
        return match reduction {
            "mean" => l.sum_all()?.div_scalar((input.numel() / c.max(1)) as f64),
            r => reduce(&l, r, "cross_entropy"),
        };
    }
    let nll = nll_impl("cross_entropy", &logp, target, weight, ignore_index, "none")?;
    if label_smoothing == 0.0 {
        return match reduction {
            "mean" => {
                let t = target.reshape(&[target.numel()])?.to_dtype(DType::I64)?;
                let keep = t.ne_scalar(ignore_index as f64)?;
                let mut w = keep.to_dtype(input.dtype())?;
                if let Some(cw) = weight {
                    let safe = t.masked_fill(&keep.logical_not()?, 0.0)?;
                    w = w.mul(&cw.to_dtype(input.dtype())?.index_select(0, &safe)?)?;
                }
                nll.sum_all()?.div(&w.sum_all()?)
            }
            r => reduce(&nll, r, "cross_entropy"),
        };
    }
    // Smoothing term: -sum_c w_c logp_c / C, zero at ignored positions.
    let x = classes_last(&logp)?;
    let t = target.reshape(&[target.numel()])?.to_dtype(DType::I64)?;
    let keep = t.ne_scalar(ignore_index as f64)?;
    let xw = match weight {
        Some(w) => x.mul(&w.to_dtype(x.dtype())?.reshape(&[1, c])?)?,
        None => x,
    };
    let smooth = xw
        .sum_dim(&[1], false)?
        .neg()?
        .mul(&keep.to_dtype(input.dtype())?)?
        .reshape(target.shape())?;
    let l = nll
        .mul_scalar(1.0 - label_smoothing)?
        .add(&smooth.mul_scalar(label_smoothing / c as f64)?)?;
    match reduction {
        "mean" => {
            let mut w = keep.to_dtype(input.dtype())?;
            if let Some(cw) = weight {
                let safe = t.masked_fill(&keep.logical_not()?, 0.0)?;
                w = w.mul(&cw.to_dtype(input.dtype())?.index_select(0, &safe)?)?;
            }
            l.sum_all()?.div(&w.sum_all()?)
        }
        r => reduce(&l, r, "cross_entropy"),
    }
}

/// Class-index cross-entropy without class weights, through the fused row kernel: one pass
/// over the logits forward (logsumexp, target logit, mean for smoothing) and one backward.
fn cross_entropy_fused(
    input: &Tensor,
    target: &Tensor,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
) -> Result<Tensor> {
    let x = classes_last(input)?.contiguous()?;
    let c = x.shape()[1];
    let t = target.reshape(&[target.numel()])?.to_dtype(DType::I64)?;
    let tv = t.to_vec::<i64>()?;
    let mut kept = 0usize;
    for &v in &tv {
        if v == ignore_index {
            continue;
        }
        if v < 0 || v >= c as i64 {
            return Err(Error::index(
                "cross_entropy",
                format!("target {v} is out of bounds for {c} classes"),
            ));
        }
        kept += 1;
    }
    if !matches!(reduction, "mean" | "sum" | "none") {
        return Err(Error::value(
            "cross_entropy",
            format!("reduction must be 'mean', 'sum' or 'none', got '{reduction}'"),
        ));
    }
    let (loss, lse) =
        crate::backend::cross_entropy(&x.detach(), &tv, ignore_index, label_smoothing)?;
    let loss = if needs_record(&[&x]) {
        record1(
            Op::CrossEntropy {
                ignore_index,
                label_smoothing,
            },
            &[&x, &t],
            loss,
            vec![x.clone(), t.clone(), lse],
            false,
        )
    } else {
        loss
    };
    match reduction {
        // PyTorch: the mean over non-ignored targets (NaN when all are ignored).
        "mean" => loss.sum_all()?.div_scalar(kept as f64),
        "sum" => loss.sum_all(),
        _ => loss.reshape(target.shape()),
    }
}

/// Backward of [`Op::CrossEntropy`]: the fused kernel, or under `create_graph` the same
/// formula in differentiable tensor ops.
pub(crate) fn cross_entropy_rows_backward(
    ignore_index: i64,
    label_smoothing: f64,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None, None]);
    };
    if !ctx.needs(0) {
        return Ok(vec![None, None]);
    }
    let (x, t, lse) = (ctx.saved(0), ctx.saved(1), ctx.saved(2));
    let c = x.shape()[1];
    if !ctx.create_graph {
        let tv = t.to_vec::<i64>()?;
        let dx = crate::backend::cross_entropy_backward(
            x,
            &tv,
            lse,
            &g.contiguous()?,
            ignore_index,
            label_smoothing,
        )?;
        return Ok(vec![Some(dx), None]);
    }
    let keep = t.ne_scalar(ignore_index as f64)?;
    let safe = t.masked_fill(&keep.logical_not()?, 0.0)?;
    let onehot = Tensor::eye(c, c, x.dtype())?.index_select(0, &safe)?;
    let p = x.softmax(1)?;
    let target = onehot
        .mul_scalar(1.0 - label_smoothing)?
        .add_scalar(label_smoothing / c as f64)?;
    let s = g.mul(&keep.to_dtype(x.dtype())?)?.unsqueeze(1)?;
    Ok(vec![Some(p.sub(&target)?.mul(&s)?), None])
}

fn same_shape(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        bail_shape!(
            op,
            "input of shape {:?} and target of shape {:?} must match",
            a.shape(),
            b.shape()
        );
    }
    Ok(())
}

/// Mean squared error.
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: &str) -> Result<Tensor> {
    same_shape("mse_loss", input, target)?;
    reduce(&input.sub(target)?.square()?, reduction, "mse_loss")
}

/// Mean absolute error.
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: &str) -> Result<Tensor> {
    same_shape("l1_loss", input, target)?;
    reduce(&input.sub(target)?.abs()?, reduction, "l1_loss")
}

/// Smooth L1: `0.5 d^2 / beta` where `|d| < beta`, else `|d| - 0.5 beta`.
pub fn smooth_l1_loss(
    input: &Tensor,
    target: &Tensor,
    reduction: &str,
    beta: f64,
) -> Result<Tensor> {
    same_shape("smooth_l1_loss", input, target)?;
    if beta < 0.0 {
        bail_value!("smooth_l1_loss", "beta must be non-negative, got {beta}");
    }
    let d = input.sub(target)?.abs()?;
    if beta == 0.0 {
        return reduce(&d, reduction, "smooth_l1_loss");
    }
    let quad = d.square()?.mul_scalar(0.5 / beta)?;
    let lin = d.sub_scalar(0.5 * beta)?;
    reduce(
        &Tensor::where_cond(&d.lt_scalar(beta)?, &quad, &lin)?,
        reduction,
        "smooth_l1_loss",
    )
}

/// Huber loss: `0.5 d^2` where `|d| < delta`, else `delta (|d| - 0.5 delta)`.
pub fn huber_loss(input: &Tensor, target: &Tensor, reduction: &str, delta: f64) -> Result<Tensor> {
    smooth_l1_loss(input, target, "none", delta)?
        .mul_scalar(delta)
        .and_then(|l| reduce(&l, reduction, "huber_loss"))
}

/// Binary cross-entropy on logits, computed stably, with optional `weight` and `pos_weight`.
pub fn binary_cross_entropy_with_logits(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    pos_weight: Option<&Tensor>,
    reduction: &str,
) -> Result<Tensor> {
    same_shape("binary_cross_entropy_with_logits", input, target)?;
    // log(1 + e^-x) = softplus(-x); loss = (1 - y) x + (1 + (pw - 1) y) softplus(-x)
    let sp = input.neg()?.softplus(1.0, 20.0)?;
    let mut l = match pos_weight {
        Some(pw) => {
            let lw = pw.sub_scalar(1.0)?.mul(target)?.add_scalar(1.0)?;
            target
                .neg()?
                .add_scalar(1.0)?
                .mul(input)?
                .add(&lw.mul(&sp)?)?
        }
        None => target.neg()?.add_scalar(1.0)?.mul(input)?.add(&sp)?,
    };
    if let Some(w) = weight {
        l = l.mul(w)?;
    }
    reduce(&l, reduction, "binary_cross_entropy_with_logits")
}

/// Binary cross-entropy on probabilities (log clamped at -100 like PyTorch).
pub fn binary_cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: &str,
) -> Result<Tensor> {
    same_shape("binary_cross_entropy", input, target)?;
    let lp = input.log()?.clamp(Some(-100.0), None)?;
    let lq = input
        .neg()?
        .add_scalar(1.0)?
        .log()?
        .clamp(Some(-100.0), None)?;
    let mut l = target
        .mul(&lp)?
        .add(&target.neg()?.add_scalar(1.0)?.mul(&lq)?)?
        .neg()?;
    if let Some(w) = weight {
        l = l.mul(w)?;
    }
    reduce(&l, reduction, "binary_cross_entropy")
}

/// KL divergence with `input` as log-probabilities (PyTorch's `F.kl_div`); `reduction` may
/// also be `"batchmean"`.
pub fn kl_div(
    input: &Tensor,
    target: &Tensor,
    reduction: &str,
    log_target: bool,
) -> Result<Tensor> {
    let l = if log_target {
        target.exp()?.mul(&target.sub(input)?)?
    } else {
        // target * (log target - input), with 0 where target == 0 (xlogy).
        let zero = target.le_scalar(0.0)?;
        let safe = target.masked_fill(&zero, 1.0)?;
        target.mul(&safe.log()?)?.sub(&target.mul(input)?)?
    };
    match reduction {
        "batchmean" => {
            let n = if input.rank() == 0 {
                1
            } else {
                input.shape()[0]
            };
            l.sum_all()?.div_scalar(n as f64)
        }
        r => reduce(&l, r, "kl_div"),
    }
}

//! Gradient checkpointing: run a piece of the model without keeping its activations, and
//! recompute them during backward (PyTorch's `torch.utils.checkpoint`).

use super::{is_grad_enabled, needs_record, no_grad, record, Ctx};
use crate::ops::Op;
use crate::tensor::rng::{get_rng_state, set_rng_state};
use crate::{Error, Result, Tensor};
use std::sync::Arc;

type Body = dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + Send + Sync;

/// The recorded function of a checkpointed segment and the RNG state its forward ran with
/// (so that dropout masks come out the same when it is recomputed).
#[derive(Clone)]
pub struct Checkpoint {
    body: Arc<Body>,
    rng: [u64; 4],
    inputs: usize,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Checkpoint({} inputs)", self.inputs)
    }
}

impl PartialEq for Checkpoint {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.body, &other.body) && self.rng == other.rng
    }
}

/// Runs `f(inputs)` without recording its graph; the backward pass runs `f` again (same RNG
/// state) to rebuild the activations it needs. `params` are the tensors `f` uses besides its
/// inputs that need gradients (a module's parameters): their gradients flow as usual.
///
/// Gradients are the same as without checkpointing; the memory held between forward and
/// backward is only the segment's inputs and outputs.
///
/// ```
/// use deepseek::{autograd::checkpoint, nn::{Forward, Linear, Module}, DType, Tensor};
/// use std::sync::Arc;
/// let fc = Arc::new(Linear::new(8, 8, true)?);
/// let x = Tensor::randn(&[4, 8], DType::F32)?;
/// let params = fc.parameters();
/// let f = fc.clone();
/// let y = checkpoint(move |xs| Ok(vec![f.forward(&xs[0])?.tanh()?]), &[x], &params)?;
/// y[0].sum_all()?.backward()?;
/// assert!(params[0].grad().is_some());
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn checkpoint(
    f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>> + Send + Sync + 'static,
    inputs: &[Tensor],
    params: &[Tensor],
) -> Result<Vec<Tensor>> {
    let all: Vec<&Tensor> = inputs.iter().chain(params).collect();
    if !is_grad_enabled() || !needs_record(&all) {
        return f(inputs);
    }
    let rng = get_rng_state();
    let detached: Vec<Tensor> = inputs.iter().map(|t| t.detach()).collect();
    let outs = {
        let _g = no_grad();
        f(&detached)?
    };
    let mut saved = detached;
    saved.extend(params.iter().cloned());
    let op = Op::Checkpoint(Checkpoint {
        body: Arc::new(f),
        rng,
        inputs: inputs.len(),
    });
    Ok(record(op, &all, outs, saved, false))
}

/// Backward of a checkpointed segment: recompute with grad enabled, then differentiate the
/// recomputed outputs with respect to the inputs and parameters that need it.
pub(crate) fn checkpoint_backward(
    cp: &Checkpoint,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    ctx.no_double_backward("checkpoint")?;
    let n_all = cp.inputs + (0..).take_while(|&i| ctx.has_saved(cp.inputs + i)).count();
    let mut xs = Vec::with_capacity(cp.inputs);
    for i in 0..cp.inputs {
        let x = ctx.saved(i).detach();
        xs.push(if ctx.needs(i) && x.dtype().is_float() {
            x.requires_grad_(true)?
        } else {
            x
        });
    }
    let now = get_rng_state();
    set_rng_state(cp.rng);
    let outs = {
        let _g = super::enable_grad();
        (cp.body)(&xs)
    };
    set_rng_state(now);
    let outs = outs?;
    if outs.len() != grads.len() {
        return Err(Error::Autograd(format!(
            "checkpoint: the recomputation returned {} outputs, the forward {}",
            outs.len(),
            grads.len()
        )));
    }
    let mut roots = Vec::new();
    let mut gs = Vec::new();
    for (o, g) in outs.iter().zip(grads) {
        if let Some(g) = g {
            if o.requires_grad() {
                roots.push(o.clone());
                gs.push(Some(g.clone()));
            }
        }
    }
    // What to differentiate: inputs and parameters that need a gradient.
    let mut wrt = Vec::new();
    let mut slot = Vec::new();
    for (i, t) in xs
        .iter()
        .chain((cp.inputs..n_all).map(|i| ctx.saved(i)))
        .enumerate()
    {
        if ctx.needs(i) && t.requires_grad() {
            wrt.push(t.clone());
            slot.push(i);
        }
    }
    let mut out = vec![None; n_all];
    if roots.is_empty() || wrt.is_empty() {
        return Ok(out);
    }
    let got = super::grad(&roots, &wrt, &gs, false, false)?;
    for (i, g) in slot.into_iter().zip(got) {
        out[i] = g;
    }
    Ok(out)
}

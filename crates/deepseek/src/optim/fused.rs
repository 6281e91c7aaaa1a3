//! The fused elementwise update used by every optimizer: one pass over the parameter, its
//! gradient and its state buffers, on raw slices, in parallel for large tensors.
//!
//! Contiguous f32 and f64 parameters are updated in place on their storage, by the backend's
//! `optimizer_update` kernel. Anything else (f16/bf16, or a non-contiguous view) is gathered
//! into a contiguous copy in f32 (f64 for f64), updated there, and written back with `copy_`.

use super::adagrad::AdagradKernel;
use super::adam::AdamKernel;
use super::radam::VariantKernel;
use super::rmsprop::RmsPropKernel;
use super::sgd::SgdKernel;
use super::Core;
use crate::tensor::Element;
use crate::{backend, DType, Error, Result, Tensor};

/// A float type a kernel computes in (f32 or f64). Optimizer state is always kept in f32.
pub(crate) trait Real: Element + num_traits::Float {}
impl Real for f32 {}
impl Real for f64 {}

/// One optimizer's per-element update rule. `s` holds the state buffers the kernel needs, in
/// the order the kernel documents, each as long as `p`.
pub(crate) trait Kernel: Sync {
    fn run<F: Real>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]);
}

/// One optimizer's update rule with its hyper-parameters for this step: what a backend's
/// `optimizer_update` kernel runs (each rule's per-element math is its [`Kernel`] impl).
#[derive(Clone, Copy)]
pub(crate) enum UpdateRule {
    Adam(AdamKernel),
    RmsProp(RmsPropKernel),
    Sgd(SgdKernel),
    Adagrad(AdagradKernel),
    /// RAdam and NAdam.
    AdamVariant(VariantKernel),
}

/// One parameter's share of an optimizer step: the slot `(gi, pi)` of `Core::state` whose
/// buffers `bufs` (indices into `Slot::bufs`, ascending, all present) the rule uses.
pub(crate) struct Pending {
    pub gi: usize,
    pub pi: usize,
    pub p: Tensor,
    pub g: Tensor,
    pub rule: UpdateRule,
    pub bufs: Vec<usize>,
}

/// Runs one optimizer step over all parameters in `pending` — one kernel launch for all the
/// contiguous f32/f64 ones (PyTorch's multi-tensor "foreach" path), one per other parameter.
pub(crate) fn update_all(op: &str, core: &mut Core, pending: Vec<Pending>) -> Result<()> {
    let _ng = crate::no_grad();
    // Disjoint borrows of every slot's buffers, in the order of `pending` ((gi, pi) order).
    let mut states: Vec<Vec<&mut Vec<f32>>> = Vec::with_capacity(pending.len());
    {
        let mut want = pending.iter().peekable();
        for (gi, group) in core.state.iter_mut().enumerate() {
            for (pi, slot) in group.iter_mut().enumerate() {
                let Some(w) = want.peek() else { break };
                if (w.gi, w.pi) != (gi, pi) {
                    continue;
                }
                let slot = slot.as_mut().ok_or_else(|| {
                    Error::Msg(format!("{op}: parameter {pi} of group {gi} has no state"))
                })?;
                let bufs = slot
                    .bufs
                    .iter_mut()
                    .enumerate()
                    .filter(|(j, _)| w.bufs.contains(j))
                    .map(|(_, b)| b.as_mut().expect("buffer allocated before the step"))
                    .collect();
                states.push(bufs);
                want.next();
            }
        }
        if want.peek().is_some() {
            return Err(Error::Msg(format!("{op}: optimizer state out of order")));
        }
    }
    let mut fast: Vec<(Tensor, Tensor, UpdateRule, Vec<&mut Vec<f32>>)> = Vec::new();
    for (job, mut state) in pending.into_iter().zip(states) {
        let Some((p, g)) = prepare(op, &job.p, &job.g, &state)? else {
            continue;
        };
        if matches!(p.dtype(), DType::F32 | DType::F64) && p.is_contiguous() {
            fast.push((p, g, job.rule, state));
        } else {
            update(op, &p, &g, &mut state, job.rule)?;
        }
    }
    // One launch needs every parameter and gradient in a storage of its own (two views of
    // one buffer as parameters would need two write locks on it): else one at a time.
    let distinct = fast.iter().enumerate().all(|(i, (p, g, ..))| {
        fast[i + 1..]
            .iter()
            .all(|(q, h, ..)| !p.shares_storage(q) && !p.shares_storage(h) && !g.shares_storage(q))
    });
    if distinct {
        backend::optimizer_update_all(&mut fast)
    } else {
        for (p, g, rule, state) in fast.iter_mut() {
            backend::optimizer_update_all(&mut [(
                p.clone(),
                g.clone(),
                *rule,
                std::mem::take(state),
            )])?;
        }
        Ok(())
    }
}

/// Checks one parameter's update and returns the gradient in the parameter's dtype, in a
/// storage of its own (`None`: nothing to update).
fn prepare(
    op: &str,
    p: &Tensor,
    g: &Tensor,
    state: &[&mut Vec<f32>],
) -> Result<Option<(Tensor, Tensor)>> {
    let n = p.numel();
    if g.shape() != p.shape() {
        return Err(Error::shape(
            op,
            format!(
                "gradient of shape {:?} for a parameter of shape {:?}",
                g.shape(),
                p.shape()
            ),
        ));
    }
    for s in state.iter() {
        if s.len() != n {
            return Err(Error::shape(
                op,
                format!(
                    "optimizer state has {} elements but the parameter of shape {:?} has {n}",
                    s.len(),
                    p.shape()
                ),
            ));
        }
    }
    if !p.dtype().is_float() {
        return Err(Error::dtype(
            op,
            format!("cannot optimize a parameter of dtype {}", p.dtype()),
        ));
    }
    if n == 0 {
        return Ok(None);
    }
    let g = g.to_dtype(p.dtype())?;
    // Never hold a read lock and a write lock on one storage.
    let g = if g.shares_storage(p) {
        g.contiguous_copy()?
    } else {
        g.contiguous()?
    };
    Ok(Some((p.clone(), g)))
}

/// `F::from_f64` spelt short, for hyper-parameters.
#[inline(always)]
pub(crate) fn c<F: Real>(v: f64) -> F {
    F::from_f64(v)
}

/// PyTorch's `lerp(self, end, w)` (the two-branch form ATen uses for accuracy).
#[inline(always)]
pub(crate) fn lerp<F: Real>(a: F, b: F, w: F, small: bool) -> F {
    if small {
        a + w * (b - a)
    } else {
        b - (b - a) * (F::one() - w)
    }
}

/// `torch.maximum`: NaN in either input gives NaN.
#[inline(always)]
pub(crate) fn maximum<F: Real>(a: F, b: F) -> F {
    let m = if a > b { a } else { b };
    if a.is_nan() {
        a
    } else {
        m
    }
}

/// Updates parameter `p` in place with gradient `g` and f32 state buffers (each `p.numel()`
/// long) by `rule`. Runs without recording the graph.
pub(crate) fn update(
    op: &str,
    p: &Tensor,
    g: &Tensor,
    state: &mut [&mut Vec<f32>],
    rule: UpdateRule,
) -> Result<()> {
    let _ng = crate::no_grad();
    let Some((_, g)) = prepare(op, p, g, state)? else {
        return Ok(());
    };
    match p.dtype() {
        DType::F32 | DType::F64 if p.is_contiguous() => backend::optimizer_update_all(&mut [(
            p.clone(),
            g,
            rule,
            state.iter_mut().map(|s| &mut **s).collect(),
        )]),
        // Other dtypes and strided views: update a contiguous f32 (f64) copy, write it back.
        dt => {
            let work = if dt == DType::F64 {
                DType::F64
            } else {
                DType::F32
            };
            let pc = p.to_dtype(work)?.contiguous_copy()?;
            let gc = g.to_dtype(work)?.contiguous()?;
            backend::optimizer_update_all(&mut [(
                pc.clone(),
                gc,
                rule,
                state.iter_mut().map(|s| &mut **s).collect(),
            )])?;
            p.copy_(&pc)
        }
    }
}

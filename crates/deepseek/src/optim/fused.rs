//! The fused elementwise update used by every optimizer: one pass over the parameter, its
//! gradient and its state buffers, on raw slices, in parallel for large tensors.
//!
//! Contiguous f32 and f64 parameters are updated in place on their storage, by the backend's
//! `optimizer_update` kernel. Anything else (f16/bf16, or a non-contiguous view) is gathered
//! into a contiguous copy in f32 (f64 for f64), updated there, and written back with `copy_`.

use super::adam::AdamKernel;
use super::rmsprop::RmsPropKernel;
use super::sgd::SgdKernel;
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
pub(crate) enum UpdateRule<'a> {
    Adam(&'a AdamKernel),
    RmsProp(&'a RmsPropKernel),
    Sgd(&'a SgdKernel),
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
/// long) through kernel `k`. Runs without recording the graph.
pub(crate) fn update(
    op: &str,
    p: &Tensor,
    g: &Tensor,
    state: &mut [&mut Vec<f32>],
    rule: UpdateRule<'_>,
) -> Result<()> {
    let _ng = crate::no_grad();
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
        return Ok(());
    }
    let g = g.to_dtype(p.dtype())?;
    // Never hold a read lock and a write lock on one storage.
    let g = if g.shares_storage(p) {
        g.contiguous_copy()?
    } else {
        g.contiguous()?
    };
    match p.dtype() {
        DType::F32 | DType::F64 if p.is_contiguous() => {
            backend::optimizer_update(rule, p, &g, state)
        }
        // Other dtypes and strided views: update a contiguous f32 (f64) copy, write it back.
        dt => {
            let work = if dt == DType::F64 {
                DType::F64
            } else {
                DType::F32
            };
            let pc = p.to_dtype(work)?.contiguous_copy()?;
            let gc = g.to_dtype(work)?.contiguous()?;
            backend::optimizer_update(rule, &pc, &gc, state)?;
            p.copy_(&pc)
        }
    }
}

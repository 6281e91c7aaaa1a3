//! The fused elementwise update used by every optimizer: one pass over the parameter, its
//! gradient and its state buffers, on raw slices, in parallel for large tensors.
//!
//! Contiguous f32 and f64 parameters are updated in place on their storage. Anything else
//! (f16/bf16, or a non-contiguous view) is gathered into a contiguous buffer in f32 (f64 for
//! f64), updated there, and written back with `copy_`.

use crate::backend::cpu::threads;
use crate::tensor::{Element, Storage};
use crate::{DType, Error, Result, Tensor};
use rayon::prelude::*;

/// Elements above which an update is split over the thread pool.
const PAR_MIN: usize = 1 << 16;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// A float type a kernel computes in (f32 or f64). Optimizer state is always kept in f32.
pub(crate) trait Real: Element + num_traits::Float {}
impl Real for f32 {}
impl Real for f64 {}

/// One optimizer's per-element update rule. `s` holds the state buffers the kernel needs, in
/// the order the kernel documents, each as long as `p`.
pub(crate) trait Kernel: Sync {
    fn run<F: Real>(&self, p: &mut [F], g: &[F], s: &mut [&mut [f32]]);
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

/// One parallel work item: a chunk of the parameter, of its gradient and of each state buffer.
type Chunk<'a, F> = (&'a mut [F], &'a [F], Vec<&'a mut [f32]>);

/// Runs `k` over `p`, `g` and `state`, splitting large tensors over the thread pool.
fn run_slices<F: Real, K: Kernel>(p: &mut [F], g: &[F], state: &mut [&mut Vec<f32>], k: &K) {
    let n = p.len();
    if n < PAR_MIN || threads::get_num_threads() <= 1 {
        let mut s: Vec<&mut [f32]> = state.iter_mut().map(|v| &mut v[..n]).collect();
        threads::simd(
            #[inline(always)]
            || k.run(p, g, &mut s),
        );
        return;
    }
    let mut s_its: Vec<_> = state.iter_mut().map(|v| v[..n].chunks_mut(CHUNK)).collect();
    let chunks: Vec<Chunk<'_, F>> = p
        .chunks_mut(CHUNK)
        .zip(g.chunks(CHUNK))
        .map(|(pc, gc)| {
            let sc = s_its
                .iter_mut()
                .map(|it| it.next().expect("state chunk"))
                .collect();
            (pc, gc, sc)
        })
        .collect();
    threads::pool().install(|| {
        chunks.into_par_iter().for_each(|(pc, gc, mut sc)| {
            threads::simd(
                #[inline(always)]
                || k.run(pc, gc, &mut sc),
            )
        });
    });
}

/// Updates parameter `p` in place with gradient `g` and f32 state buffers (each `p.numel()`
/// long) through kernel `k`. Runs without recording the graph.
pub(crate) fn update<K: Kernel>(
    op: &str,
    p: &Tensor,
    g: &Tensor,
    state: &mut [&mut Vec<f32>],
    k: &K,
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
        DType::F32 if p.is_contiguous() => in_place::<f32, K>(p, &g, state, k),
        DType::F64 if p.is_contiguous() => in_place::<f64, K>(p, &g, state, k),
        DType::F64 => gathered::<f64, K>(p, &g, state, k),
        _ => gathered::<f32, K>(p, &g, state, k),
    }
}

fn in_place<F: Real, K: Kernel>(
    p: &Tensor,
    g: &Tensor,
    state: &mut [&mut Vec<f32>],
    k: &K,
) -> Result<()> {
    let n = p.numel();
    let gr = g.read();
    let Storage::Cpu(gs) = &*gr;
    let go = g.layout().offset;
    let gv = &F::slice(gs).expect("gradient dtype checked")[go..go + n];
    let mut pw = p.write();
    let Storage::Cpu(ps) = &mut *pw;
    let po = p.layout().offset;
    let pv = &mut F::slice_mut(ps).expect("parameter dtype checked")[po..po + n];
    run_slices(pv, gv, state, k);
    Ok(())
}

fn gathered<F: Real, K: Kernel>(
    p: &Tensor,
    g: &Tensor,
    state: &mut [&mut Vec<f32>],
    k: &K,
) -> Result<()> {
    let mut pv = p.to_dtype(F::DTYPE)?.to_vec::<F>()?;
    let gv = g.to_dtype(F::DTYPE)?.to_vec::<F>()?;
    run_slices(&mut pv, &gv, state, k);
    p.copy_(&Tensor::from_vec(pv, p.shape())?)
}

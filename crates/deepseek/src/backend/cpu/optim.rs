//! The CPU backend's optimizer step: one pass over a parameter, its gradient and its f32
//! state buffers, on raw slices, in parallel for large tensors. Each rule's per-element math
//! is its `Kernel` impl in `crate::optim`.

use super::threads;
use crate::optim::fused::{Kernel, Real, UpdateRule};
use crate::tensor::{CpuStorage, Layout};
use crate::{Error, Result};
use rayon::prelude::*;

/// Elements above which an update is split over the thread pool.
const PAR_MIN: usize = 1 << 16;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

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

/// Updates the contiguous parameter view `(p, pl)` in place from the contiguous gradient
/// `(g, gl)` of its dtype (f32 or f64).
pub(crate) fn update(
    rule: UpdateRule<'_>,
    p: &mut CpuStorage,
    pl: &Layout,
    g: &CpuStorage,
    gl: &Layout,
    state: &mut [&mut Vec<f32>],
) -> Result<()> {
    fn go<F: Real>(
        rule: UpdateRule<'_>,
        p: &mut CpuStorage,
        pl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
        state: &mut [&mut Vec<f32>],
    ) -> Result<()> {
        let n = pl.numel();
        let bad = || Error::dtype("optimizer", "parameter and gradient dtypes differ");
        let gv = &F::slice(g).ok_or_else(bad)?[gl.offset..gl.offset + n];
        let pv = &mut F::slice_mut(p).ok_or_else(bad)?[pl.offset..pl.offset + n];
        match rule {
            UpdateRule::Adam(k) => run_slices(pv, gv, state, k),
            UpdateRule::RmsProp(k) => run_slices(pv, gv, state, k),
            UpdateRule::Sgd(k) => run_slices(pv, gv, state, k),
        }
        Ok(())
    }
    match p {
        CpuStorage::F32(_) => go::<f32>(rule, p, pl, g, gl, state),
        CpuStorage::F64(_) => go::<f64>(rule, p, pl, g, gl, state),
        _ => Err(Error::dtype(
            "optimizer",
            format!("fused update needs f32 or f64, got {}", p.dtype()),
        )),
    }
}

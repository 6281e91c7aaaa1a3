//! The CPU backend's optimizer step: one pass over a parameter, its gradient and its f32
//! state buffers, on raw slices; every parameter of a step in one parallel region. Each rule's per-element math
//! is its `Kernel` impl in `crate::optim`.

use super::threads;
use crate::backend::UpdateJob;
use crate::optim::fused::{Kernel, Real, UpdateRule};
use crate::tensor::{CpuStorage, Element, Storage};
use crate::{Error, Result};
use rayon::prelude::*;

/// Elements above which an update is split over the thread pool.
const PAR_MIN: usize = 1 << 16;
/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// One parallel work item: a chunk of one parameter, of its gradient and of each of its
/// state buffers, with the parameter's rule.
enum Work<'a> {
    F32(UpdateRule, &'a mut [f32], &'a [f32], Vec<&'a mut [f32]>),
    F64(UpdateRule, &'a mut [f64], &'a [f64], Vec<&'a mut [f32]>),
}

fn apply<F: Real>(rule: UpdateRule, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
    fn go<F: Real, K: Kernel>(k: &K, p: &mut [F], g: &[F], s: &mut [&mut [f32]]) {
        threads::simd(
            #[inline(always)]
            || k.run(p, g, s),
        )
    }
    match rule {
        UpdateRule::Adam(k) => go(&k, p, g, s),
        UpdateRule::RmsProp(k) => go(&k, p, g, s),
        UpdateRule::Sgd(k) => go(&k, p, g, s),
        UpdateRule::Adagrad(k) => go(&k, p, g, s),
        UpdateRule::AdamVariant(k) => go(&k, p, g, s),
    }
}

impl Work<'_> {
    fn run(self) {
        match self {
            Work::F32(r, p, g, mut s) => apply(r, p, g, &mut s),
            Work::F64(r, p, g, mut s) => apply(r, p, g, &mut s),
        }
    }
}

/// Builds the [`Work`] variant of one float type.
type WorkCtor<'a, F> = fn(UpdateRule, &'a mut [F], &'a [F], Vec<&'a mut [f32]>) -> Work<'a>;

/// Cuts one parameter's update into work items of at most [`CHUNK`] elements.
fn split<'a, F: Real>(
    rule: UpdateRule,
    p: &'a mut [F],
    g: &'a [F],
    state: Vec<&'a mut [f32]>,
    wrap: WorkCtor<'a, F>,
    out: &mut Vec<Work<'a>>,
) {
    let mut its: Vec<_> = state.into_iter().map(|v| v.chunks_mut(CHUNK)).collect();
    for (pc, gc) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)) {
        let sc = its
            .iter_mut()
            .map(|it| it.next().expect("state chunk"))
            .collect();
        out.push(wrap(rule, pc, gc, sc));
    }
}

/// Runs every job's update: all parameters' chunks in one parallel region (the CPU form of
/// a multi-tensor kernel), or in order on one thread when the step is small.
pub(crate) fn update_all(jobs: &mut [UpdateJob<'_, '_>]) -> Result<()> {
    let total: usize = jobs.iter().map(|j| j.pl.numel()).sum();
    let mut work: Vec<Work<'_>> = Vec::new();
    for j in jobs.iter_mut() {
        let n = j.pl.numel();
        let (gs, gl) = j.g;
        let bad = || Error::dtype("optimizer", "parameter and gradient dtypes differ");
        let state: Vec<&mut [f32]> = j.state.iter_mut().map(|v| &mut v[..n]).collect();
        let Storage::Cpu(ps) = &mut *j.p;
        let Storage::Cpu(gs) = gs;
        let po = j.pl.offset;
        match ps {
            CpuStorage::F32(v) => {
                let gv = &f32::slice(gs).ok_or_else(bad)?[gl.offset..gl.offset + n];
                split(j.rule, &mut v[po..po + n], gv, state, Work::F32, &mut work);
            }
            CpuStorage::F64(v) => {
                let gv = &f64::slice(gs).ok_or_else(bad)?[gl.offset..gl.offset + n];
                split(j.rule, &mut v[po..po + n], gv, state, Work::F64, &mut work);
            }
            s => {
                return Err(Error::dtype(
                    "optimizer",
                    format!("fused update needs f32 or f64, got {}", s.dtype()),
                ))
            }
        }
    }
    if total < PAR_MIN || threads::get_num_threads() <= 1 || work.len() < 2 {
        work.into_iter().for_each(Work::run);
    } else {
        threads::pool().install(|| work.into_par_iter().for_each(Work::run));
    }
    Ok(())
}

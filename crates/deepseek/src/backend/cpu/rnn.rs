//! The LSTM layer: one gemm for every timestep's input projection, then per step one gemm
//! for the recurrent projection plus a fused cell, run by a team of threads that split the
//! hidden units. Backward mirrors it, with the weight gradients as gemms over all timesteps.

use super::math::Float;
use super::smallmm::{self, PackedB};
use super::strided::zeroed;
use super::team::{self, Shared};
use super::threads::{self, simd};
use gemm::Parallelism;

pub use crate::ops::rnn::LstmDims;

fn par() -> Parallelism {
    let n = threads::get_num_threads();
    if n > 1 {
        Parallelism::Rayon(n)
    } else {
        Parallelism::None
    }
}

/// C[m,n] (+)= A @ B with explicit (row, col) strides for all three.
///
/// # Safety
/// `c`, `a` and `b` must address valid m x n, m x k and k x n matrices with those strides,
/// and no other thread may touch the written part of `c` meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn mm_raw<T: Float + 'static>(
    (m, n, k): (usize, usize, usize),
    (c, crs): (*mut T, usize),
    (a, ars, acs): (*const T, usize, usize),
    (b, brs, bcs): (*const T, usize, usize),
    acc: bool,
    p: Parallelism,
) {
    super::matmul::gemm_strided(
        (m, n, k),
        (c, crs),
        (a, ars as isize, acs as isize),
        (b, brs as isize, bcs as isize),
        acc,
        (T::zero(), T::one()),
        p,
    )
}

/// C[m,n] (+)= A @ B into a dense row-major `c`, on the pool's threads when large.
#[allow(clippy::too_many_arguments)]
fn mm<T: Float + 'static>(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [T],
    a: &[T],
    ars: usize,
    acs: usize,
    b: &[T],
    brs: usize,
    bcs: usize,
    acc: bool,
) {
    assert!(c.len() >= m * n);
    let p = if m * n * k >= 1 << 15 {
        par()
    } else {
        Parallelism::None
    };
    // SAFETY: `c` is dense m x n (checked above); the callers pass strides within `a`, `b`.
    unsafe {
        mm_raw(
            (m, n, k),
            (c.as_mut_ptr(), n),
            (a.as_ptr(), ars, acs),
            (b.as_ptr(), brs, bcs),
            acc,
            p,
        )
    }
}

/// `s` as f32 when `T` is f32.
fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32, so the slice's memory holds f32 values.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

/// `B [k, n]` (given by element of the f32 weights) packed for the per-step kernel, when the
/// weights are f32 and the CPU has AVX2/FMA; None means the gemm crate does the step product.
fn packed_weights<T: 'static>(
    w: &[T],
    k: usize,
    n: usize,
    at: impl Fn(&[f32], usize, usize) -> f32,
) -> Option<PackedB> {
    let w = as_f32(w).filter(|_| smallmm::available())?;
    Some(PackedB::pack(k, n, |kk, j| at(w, kk, j)))
}

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp_())
}

/// The LSTM cell over one block of units: `g` holds the input projections of the four gates
/// (i, f, g, o) and receives their activations; `pre` the recurrent projections; `cp` the
/// previous cell. Writes the new cell and hidden state. Every slice has the block's length
/// (checked once, so the loop runs without bounds checks and vectorises).
#[inline(always)]
fn cell_forward<T: Float>(g: [&mut [T]; 4], pre: [&[T]; 4], cp: &[T], cs: &mut [T], hs: &mut [T]) {
    let [gi, gf, gg, go] = g;
    let n = gi.len();
    let (gf, gg, go) = (&mut gf[..n], &mut gg[..n], &mut go[..n]);
    let [pi, pf, pg, po] = pre;
    let (pi, pf, pg, po) = (&pi[..n], &pf[..n], &pg[..n], &po[..n]);
    let (cp, cs, hs) = (&cp[..n], &mut cs[..n], &mut hs[..n]);
    for j in 0..n {
        let ig = sigmoid(gi[j] + pi[j]);
        let fg = sigmoid(gf[j] + pf[j]);
        let gv = (gg[j] + pg[j]).tanh_();
        let og = sigmoid(go[j] + po[j]);
        gi[j] = ig;
        gf[j] = fg;
        gg[j] = gv;
        go[j] = og;
        let c = fg * cp[j] + ig * gv;
        cs[j] = c;
        hs[j] = og * c.tanh_();
    }
}

/// The cell's backward over one block of units: from the activated gates, this step's cell
/// and the previous one (`cells`), and dh (the step's output gradient added), writes the gate
/// gradients `dg` and replaces `dc` by the previous cell's gradient.
#[inline(always)]
fn cell_backward<T: Float>(
    g: [&[T]; 4],
    dg: [&mut [T]; 4],
    cells: (&[T], &[T]),
    dh: &[T],
    dc: &mut [T],
) {
    let one = T::one();
    let [gi, gf, gg, go] = g;
    let n = gi.len();
    let (gf, gg, go) = (&gf[..n], &gg[..n], &go[..n]);
    let [di, df, dgg, dgo] = dg;
    let (di, df, dgg, dgo) = (&mut di[..n], &mut df[..n], &mut dgg[..n], &mut dgo[..n]);
    let (cs, cp) = (&cells.0[..n], &cells.1[..n]);
    let (dh, dc) = (&dh[..n], &mut dc[..n]);
    for j in 0..n {
        let (ig, fg, gv, og) = (gi[j], gf[j], gg[j], go[j]);
        let tc = cs[j].tanh_();
        let dhk = dh[j];
        let dct = dc[j] + dhk * og * (one - tc * tc);
        di[j] = dct * gv * ig * (one - ig);
        df[j] = dct * cp[j] * fg * (one - fg);
        dgg[j] = dct * ig * (one - gv * gv);
        dgo[j] = dhk * tc * og * (one - og);
        dc[j] = dct * fg;
    }
}

/// Threads for the timestep loop: each owns a block of hidden units (at least 16), and only
/// when a step's recurrent product (`b x h @ h x 4h`) is worth a barrier per step: below about
/// a million multiply-adds (tens of microseconds) the threads mostly wait at the barrier for
/// each other (measured: a 64-unit, batch-20 layer ran 2x faster in-program on one thread).
fn team_size(b: usize, h: usize) -> usize {
    if b * 4 * h * h < 1 << 20 {
        return 1;
    }
    threads::get_num_threads().min((h / 16).max(1))
}

/// The hidden units `[u0, u1)` owned by team thread `tid` of `nt`.
fn units(h: usize, tid: usize, nt: usize) -> (usize, usize) {
    let chunk = h.div_ceil(nt).next_multiple_of(8);
    let u0 = (tid * chunk).min(h);
    (u0, (u0 + chunk).min(h))
}

/// Forward. Returns (out [T,B,H], h_T, c_T, activated gates [T,B,4H], cells [T,B,H]).
///
/// The input projections of all timesteps are one gemm. The timestep loop runs on a team of
/// threads that each own a block of hidden units: per step, a thread multiplies h_{t-1} by
/// the rows of W_hh for its units' four gates and applies the cell to its units, then all
/// meet at a barrier (h_t is complete).
#[allow(clippy::type_complexity)]
pub fn lstm_forward<T: Float + 'static>(
    d: LstmDims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    w_ih: Option<&[T]>,
    w_hh: &[T],
    bias: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>, Vec<T>, Vec<T>) {
    let LstmDims { t, b, i, h } = d;
    let g4 = 4 * h;
    let bh = b * h;
    let mut gates = match w_ih {
        Some(w_ih) => {
            let mut gates = zeroed(t * b * g4, T::zero());
            // X [T*B, I] @ W_ih^T [I, 4H]
            threads::pool().install(|| mm(t * b, g4, i, &mut gates, x, i, 1, w_ih, 1, i, false));
            gates
        }
        // x is the projection already (the bias is added below).
        None => super::strided::alloc_with(t * b * g4, |dst| {
            for (d, &v) in dst.iter_mut().zip(x) {
                d.write(v);
            }
        }),
    };
    for row in gates.chunks_mut(g4) {
        for (g, &bb) in row.iter_mut().zip(bias) {
            *g = *g + bb;
        }
    }
    let mut out = zeroed(t * bh, T::zero());
    let mut cells = zeroed(t * bh, T::zero());
    let (gsh, osh, csh) = (
        Shared::new(&mut gates),
        Shared::new(&mut out),
        Shared::new(&mut cells),
    );
    team::run(team_size(b, h), |tid, nt, bar| {
        let (u0, u1) = units(h, tid, nt);
        let hc = u1 - u0;
        // The step product pre [B, 4hc] = h_{t-1} [B, H] @ B [H, 4hc], where column g*hc+j of
        // B is row (g*H + u0 + j) of W_hh (this block's units of gate g).
        let packed = packed_weights(w_hh, h, 4 * hc, |w, kk, j| {
            w[((j / hc.max(1)) * h + u0 + j % hc.max(1)) * h + kk]
        });
        // Without the packed kernel: W_hh's rows for this block's gates, [4*hc, H], so that
        // B[k, g*hc+j] = wp[(g*hc+j)*H+k], for the gemm crate.
        let mut wp = Vec::new();
        if packed.is_none() {
            wp.reserve(4 * hc * h);
            for g in 0..4 {
                wp.extend_from_slice(&w_hh[(g * h + u0) * h..(g * h + u1) * h]);
            }
        }
        let mut pre = vec![T::zero(); b * 4 * hc];
        for s in 0..t {
            if hc > 0 {
                // SAFETY: step s-1 of `out`/`cells` was completed by every thread before the
                // last barrier and is no longer written; this thread writes only its own units
                // of step s (disjoint from every other thread's).
                unsafe {
                    let hp: &[T] = if s == 0 {
                        h0
                    } else {
                        osh.slice((s - 1) * bh..s * bh)
                    };
                    let cp: &[T] = if s == 0 {
                        c0
                    } else {
                        csh.slice((s - 1) * bh..s * bh)
                    };
                    if let Some(pk) = &packed {
                        // T is f32 here (packed_weights checked).
                        pk.matmul(
                            b,
                            hp.as_ptr() as *const f32,
                            h,
                            pre.as_mut_ptr() as *mut f32,
                            4 * hc,
                        );
                    } else {
                        mm_raw(
                            (b, 4 * hc, h),
                            (pre.as_mut_ptr(), 4 * hc),
                            (hp.as_ptr(), h, 1),
                            (wp.as_ptr(), 1, h),
                            false,
                            Parallelism::None,
                        );
                    }
                    for bi in 0..b {
                        let base = (s * b + bi) * g4;
                        let gi = gsh.slice_mut(base + u0..base + u1);
                        let gf = gsh.slice_mut(base + h + u0..base + h + u1);
                        let gg = gsh.slice_mut(base + 2 * h + u0..base + 2 * h + u1);
                        let go = gsh.slice_mut(base + 3 * h + u0..base + 3 * h + u1);
                        let row = (s * b + bi) * h;
                        let cs = csh.slice_mut(row + u0..row + u1);
                        let hs = osh.slice_mut(row + u0..row + u1);
                        let cpr = &cp[bi * h + u0..bi * h + u1];
                        let pr = &pre[bi * 4 * hc..(bi + 1) * 4 * hc];
                        simd(
                            #[inline(always)]
                            || {
                                cell_forward(
                                    [gi, gf, gg, go],
                                    [
                                        &pr[..hc],
                                        &pr[hc..2 * hc],
                                        &pr[2 * hc..3 * hc],
                                        &pr[3 * hc..4 * hc],
                                    ],
                                    cpr,
                                    cs,
                                    hs,
                                )
                            },
                        );
                    }
                }
            }
            bar.wait();
        }
    });
    let (h_t, c_t) = if t == 0 {
        (h0.to_vec(), c0.to_vec())
    } else {
        (out[(t - 1) * bh..].to_vec(), cells[(t - 1) * bh..].to_vec())
    };
    (out, h_t, c_t, gates, cells)
}

/// Gradients of one LSTM layer.
pub struct LstmGrads<T> {
    pub dx: Vec<T>,
    pub dh0: Vec<T>,
    pub dc0: Vec<T>,
    /// None for a projected input (no w_ih).
    pub dw_ih: Option<Vec<T>>,
    pub dw_hh: Vec<T>,
    pub db: Vec<T>,
}

/// Backward from dout [T,B,H], dh_T, dc_T.
///
/// The timestep loop runs on the same kind of team as the forward: per step, each thread
/// computes the gate gradients of its units, all meet at a barrier (dG_t is complete), and
/// each computes its units' columns of dh_{t-1} = dG_t @ W_hh. The weight gradients are then
/// three gemms over all timesteps.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward<T: Float + 'static>(
    d: LstmDims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    w_ih: Option<&[T]>,
    w_hh: &[T],
    gates: &[T],
    cells: &[T],
    out: &[T],
    dout: Option<&[T]>,
    dh_t: Option<&[T]>,
    dc_t: Option<&[T]>,
) -> LstmGrads<T> {
    let LstmDims { t, b, i, h } = d;
    let g4 = 4 * h;
    let bh = b * h;
    let mut dg = zeroed(t * b * g4, T::zero());
    let mut dh = dh_t.map_or_else(|| vec![T::zero(); bh], |v| v.to_vec());
    let mut dc = dc_t.map_or_else(|| vec![T::zero(); bh], |v| v.to_vec());
    let (dgsh, dhsh, dcsh) = (
        Shared::new(&mut dg),
        Shared::new(&mut dh),
        Shared::new(&mut dc),
    );
    team::run(team_size(b, h), |tid, nt, bar| {
        let (u0, u1) = units(h, tid, nt);
        let hc = u1 - u0;
        // dh_{t-1}[:, u0..u1] = dG_t [B, 4H] @ W_hh[:, u0..u1] (packed when f32 on AVX2).
        let packed = packed_weights(w_hh, g4, hc, |w, kk, j| w[kk * h + u0 + j]);
        for s in (0..t).rev() {
            if hc > 0 {
                // SAFETY: this thread reads and writes only its own units of dh, dc and dG_s
                // before the barrier; after it, dG_s is complete and only read.
                unsafe {
                    let cp: &[T] = if s > 0 {
                        &cells[(s - 1) * bh..s * bh]
                    } else {
                        c0
                    };
                    for bi in 0..b {
                        let row = bi * h;
                        let dhr = dhsh.slice_mut(row + u0..row + u1);
                        let dcr = dcsh.slice_mut(row + u0..row + u1);
                        if let Some(dout) = dout {
                            let o = (s * b + bi) * h;
                            for (a, &v) in dhr.iter_mut().zip(&dout[o + u0..o + u1]) {
                                *a = *a + v;
                            }
                        }
                        let base = (s * b + bi) * g4;
                        let gi = &gates[base + u0..base + u1];
                        let gf = &gates[base + h + u0..base + h + u1];
                        let gg = &gates[base + 2 * h + u0..base + 2 * h + u1];
                        let go = &gates[base + 3 * h + u0..base + 3 * h + u1];
                        let di = dgsh.slice_mut(base + u0..base + u1);
                        let df = dgsh.slice_mut(base + h + u0..base + h + u1);
                        let dgg = dgsh.slice_mut(base + 2 * h + u0..base + 2 * h + u1);
                        let dgo = dgsh.slice_mut(base + 3 * h + u0..base + 3 * h + u1);
                        let o = (s * b + bi) * h;
                        let cs = &cells[o + u0..o + u1];
                        let cpr = &cp[row + u0..row + u1];
                        simd(
                            #[inline(always)]
                            || {
                                cell_backward(
                                    [gi, gf, gg, go],
                                    [di, df, dgg, dgo],
                                    (cs, cpr),
                                    dhr,
                                    dcr,
                                )
                            },
                        );
                    }
                }
            }
            bar.wait();
            if hc > 0 {
                // SAFETY: dG_s is complete (barrier) and read-only now; this thread writes only
                // its own columns [u0, u1) of dh.
                unsafe {
                    // dh_{t-1}[:, u0..u1] = dG_t [B,4H] @ W_hh[:, u0..u1]
                    if let Some(pk) = &packed {
                        pk.matmul(
                            b,
                            dgsh.ptr().add(s * b * g4) as *const f32,
                            g4,
                            dhsh.ptr().add(u0) as *mut f32,
                            h,
                        );
                    } else {
                        mm_raw(
                            (b, hc, g4),
                            (dhsh.ptr().add(u0), h),
                            (dgsh.ptr().add(s * b * g4) as *const T, g4, 1),
                            (w_hh.as_ptr().add(u0), h, 1),
                            false,
                            Parallelism::None,
                        );
                    }
                }
            }
        }
    });
    let mut dw_hh = zeroed(g4 * h, T::zero());
    let mut dw_ih = w_ih.map(|_| zeroed(g4 * i, T::zero()));
    let mut dx = w_ih.map(|_| zeroed(t * b * i, T::zero()));
    let n = t * b;
    threads::pool().install(|| {
        if t > 0 {
            // dW_hh [4H,H] = dG^T [4H, N] @ Hprev [N, H], Hprev = [h0; out[0..T-1]]
            mm(g4, h, b, &mut dw_hh, &dg[..b * g4], 1, g4, h0, h, 1, false);
            mm(
                g4,
                h,
                n - b,
                &mut dw_hh,
                &dg[b * g4..],
                1,
                g4,
                out,
                h,
                1,
                true,
            );
        }
        if let (Some(w_ih), Some(dw_ih), Some(dx)) = (w_ih, dw_ih.as_mut(), dx.as_mut()) {
            // dW_ih [4H,I] = dG^T @ X [N, I]
            mm(g4, i, n, dw_ih, &dg, 1, g4, x, i, 1, false);
            // dX [N, I] = dG [N,4H] @ W_ih [4H, I]
            mm(n, i, g4, dx, &dg, g4, 1, w_ih, i, 1, false);
        }
    });
    let mut db = vec![T::zero(); g4];
    for row in dg.chunks(g4) {
        for (a, &v) in db.iter_mut().zip(row) {
            *a = *a + v;
        }
    }
    LstmGrads {
        // For a projected input, the input's gradient is the gates' gradient.
        dx: dx.unwrap_or(dg),
        dh0: dh,
        dc0: dc,
        dw_ih,
        dw_hh,
        db,
    }
}

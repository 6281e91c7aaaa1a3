//! The LSTM layer: one gemm for every timestep's input projection, then per step one gemm
//! for the recurrent projection plus a fused cell. Backward mirrors it, with the weight
//! gradients as three gemms over all timesteps at once.

use super::math::Float;
use super::strided::zeroed;
use super::threads::{self, simd};
use gemm::Parallelism;

/// Sizes of one LSTM layer call.
#[derive(Clone, Copy, Debug)]
pub struct LstmDims {
    pub t: usize,
    pub b: usize,
    pub i: usize,
    pub h: usize,
}

fn par() -> Parallelism {
    let n = threads::get_num_threads();
    if n > 1 {
        Parallelism::Rayon(n)
    } else {
        Parallelism::None
    }
}

/// C[m,n] (+)= A @ B with explicit (row, col) strides, all row-major dense destinations.
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
    if m == 0 || n == 0 {
        return;
    }
    let p = if m * n * k >= 1 << 15 {
        par()
    } else {
        Parallelism::None
    };
    // SAFETY: the callers pass dense buffers sized m x n (c), and strides within a and b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.as_ptr(),
            acs as isize,
            ars as isize,
            b.as_ptr(),
            bcs as isize,
            brs as isize,
            if acc { T::one() } else { T::zero() },
            T::one(),
            false,
            false,
            false,
            p,
        )
    }
}

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp_())
}

/// Forward. Returns (out [T,B,H], h_T, c_T, activated gates [T,B,4H], cells [T,B,H]).
#[allow(clippy::type_complexity)]
pub fn lstm_forward<T: Float + 'static>(
    d: LstmDims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    w_ih: &[T],
    w_hh: &[T],
    bias: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>, Vec<T>, Vec<T>) {
    let LstmDims { t, b, i, h } = d;
    let g4 = 4 * h;
    let mut gates = zeroed(t * b * g4, T::zero());
    // X [T*B, I] @ W_ih^T [I, 4H]
    threads::pool().install(|| mm(t * b, g4, i, &mut gates, x, i, 1, w_ih, 1, i, false));
    for row in gates.chunks_mut(g4) {
        for (g, &bb) in row.iter_mut().zip(bias) {
            *g = *g + bb;
        }
    }
    let mut out = zeroed(t * b * h, T::zero());
    let mut cells = zeroed(t * b * h, T::zero());
    let mut h_prev = h0.to_vec();
    let mut c_prev = c0.to_vec();
    threads::pool().install(|| {
        for s in 0..t {
            let gs = &mut gates[s * b * g4..(s + 1) * b * g4];
            mm(b, g4, h, gs, &h_prev, h, 1, w_hh, 1, h, true);
            let hs = &mut out[s * b * h..(s + 1) * b * h];
            let cs = &mut cells[s * b * h..(s + 1) * b * h];
            simd(
                #[inline(always)]
                || {
                    for bi in 0..b {
                        let g = &mut gs[bi * g4..(bi + 1) * g4];
                        for j in 0..h {
                            let ig = sigmoid(g[j]);
                            let fg = sigmoid(g[h + j]);
                            let gg = g[2 * h + j].tanh_();
                            let og = sigmoid(g[3 * h + j]);
                            g[j] = ig;
                            g[h + j] = fg;
                            g[2 * h + j] = gg;
                            g[3 * h + j] = og;
                            let c = fg * c_prev[bi * h + j] + ig * gg;
                            cs[bi * h + j] = c;
                            hs[bi * h + j] = og * c.tanh_();
                        }
                    }
                },
            );
            h_prev.copy_from_slice(hs);
            c_prev.copy_from_slice(cs);
        }
    });
    (out, h_prev, c_prev, gates, cells)
}

/// Gradients of one LSTM layer.
pub struct LstmGrads<T> {
    pub dx: Vec<T>,
    pub dh0: Vec<T>,
    pub dc0: Vec<T>,
    pub dw_ih: Vec<T>,
    pub dw_hh: Vec<T>,
    pub db: Vec<T>,
}

/// Backward from dout [T,B,H], dh_T, dc_T.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward<T: Float + 'static>(
    d: LstmDims,
    x: &[T],
    h0: &[T],
    c0: &[T],
    w_ih: &[T],
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
    let one = T::one();
    threads::pool().install(|| {
        for s in (0..t).rev() {
            if let Some(dout) = dout {
                for (a, &v) in dh.iter_mut().zip(&dout[s * bh..(s + 1) * bh]) {
                    *a = *a + v;
                }
            }
            let gs = &gates[s * b * g4..(s + 1) * b * g4];
            let cs = &cells[s * bh..(s + 1) * bh];
            let cp: &[T] = if s > 0 {
                &cells[(s - 1) * bh..s * bh]
            } else {
                c0
            };
            let dgs = &mut dg[s * b * g4..(s + 1) * b * g4];
            simd(
                #[inline(always)]
                || {
                    for bi in 0..b {
                        let g = &gs[bi * g4..(bi + 1) * g4];
                        let o = &mut dgs[bi * g4..(bi + 1) * g4];
                        for j in 0..h {
                            let (ig, fg, gg, og) = (g[j], g[h + j], g[2 * h + j], g[3 * h + j]);
                            let k = bi * h + j;
                            let tc = cs[k].tanh_();
                            let dhk = dh[k];
                            let dct = dc[k] + dhk * og * (one - tc * tc);
                            o[j] = dct * gg * ig * (one - ig);
                            o[h + j] = dct * cp[k] * fg * (one - fg);
                            o[2 * h + j] = dct * ig * (one - gg * gg);
                            o[3 * h + j] = dhk * tc * og * (one - og);
                            dc[k] = dct * fg;
                        }
                    }
                },
            );
            // dh_{t-1} = dG_t [B,4H] @ W_hh [4H,H]
            mm(b, h, g4, &mut dh, dgs, g4, 1, w_hh, h, 1, false);
        }
    });
    // h_{t-1} for every step: [h0; out[0..T-1]]
    let mut hprev = Vec::with_capacity(t * bh);
    hprev.extend_from_slice(h0);
    hprev.extend_from_slice(&out[..(t.saturating_sub(1)) * bh]);
    let mut dw_hh = vec![T::zero(); g4 * h];
    let mut dw_ih = vec![T::zero(); g4 * i];
    let mut dx = zeroed(t * b * i, T::zero());
    let n = t * b;
    threads::pool().install(|| {
        // dW_hh [4H,H] = dG^T [4H, N] @ Hprev [N, H]
        mm(g4, h, n, &mut dw_hh, &dg, 1, g4, &hprev, h, 1, false);
        // dW_ih [4H,I] = dG^T @ X [N, I]
        mm(g4, i, n, &mut dw_ih, &dg, 1, g4, x, i, 1, false);
        // dX [N, I] = dG [N,4H] @ W_ih [4H, I]
        mm(n, i, g4, &mut dx, &dg, g4, 1, w_ih, i, 1, false);
    });
    let mut db = vec![T::zero(); g4];
    for row in dg.chunks(g4) {
        for (a, &v) in db.iter_mut().zip(row) {
            *a = *a + v;
        }
    }
    LstmGrads {
        dx,
        dh0: dh,
        dc0: dc,
        dw_ih,
        dw_hh,
        db,
    }
}

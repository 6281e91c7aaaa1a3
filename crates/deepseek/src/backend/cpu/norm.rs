//! Row kernels: softmax, log-softmax, layer norm over the last (contiguous) dim.
#![allow(clippy::needless_range_loop)]

use super::math::Float;
use super::strided::{alloc_with, par_rows};
use super::threads::simd;
use std::mem::MaybeUninit;

/// Softmax (or log-softmax) of each row of `n` elements.
pub fn softmax_rows<T: Float>(x: &[T], n: usize, log: bool) -> Vec<T> {
    let rows = x.len().checked_div(n).unwrap_or(0);
    if n == 0 {
        return x.to_vec();
    }
    alloc_with(x.len(), |out| {
        par_rows(out, n, rows, |chunk, r0| {
            if n < SHORT_ROW {
                let xs = &x[r0 * n..r0 * n + chunk.len()];
                return simd(
                    #[inline(always)]
                    || softmax_short(xs, n, chunk, log),
                );
            }
            for (i, o) in chunk.chunks_mut(n).enumerate() {
                let row = &x[(r0 + i) * n..(r0 + i + 1) * n];
                simd(
                    #[inline(always)]
                    || {
                        let m = shift(row);
                        if log {
                            // Only the sum of the exps is needed: no store and re-read.
                            let ls = lane_sum(row, |v| (v - m).exp_()).ln() + m;
                            for (d, &v) in o.iter_mut().zip(row) {
                                d.write(v - ls);
                            }
                            return;
                        }
                        let (o, s) = exp_sum(row, m, o);
                        {
                            let inv = T::one() / s;
                            for d in o.iter_mut() {
                                *d = *d * inv;
                            }
                        }
                    },
                );
            }
        })
    })
}

/// The input gradient of [`softmax_rows`] from the output `y` and its gradient `g`, per row:
/// `y * (g - sum(g * y))` for softmax, `g - exp(y) * sum(g)` for log-softmax. One pass to
/// reduce and one to write, instead of four tensor ops.
pub fn softmax_backward_rows<T: Float>(g: &[T], y: &[T], n: usize, log: bool) -> Vec<T> {
    let rows = y.len().checked_div(n).unwrap_or(0);
    if n == 0 {
        return y.to_vec();
    }
    alloc_with(y.len(), |out| {
        par_rows(out, n, rows, |chunk, r0| {
            for (i, o) in chunk.chunks_mut(n).enumerate() {
                let (gr, yr) = (
                    &g[(r0 + i) * n..(r0 + i + 1) * n],
                    &y[(r0 + i) * n..(r0 + i + 1) * n],
                );
                simd(
                    #[inline(always)]
                    || {
                        if log {
                            let s = lane_sum(gr, |v| v);
                            for ((d, &gv), &yv) in o.iter_mut().zip(gr).zip(yr) {
                                d.write(gv - yv.exp_() * s);
                            }
                        } else {
                            let s = lane_dot(gr, yr);
                            for ((d, &gv), &yv) in o.iter_mut().zip(gr).zip(yr) {
                                d.write(yv * (gv - s));
                            }
                        }
                    },
                );
            }
        })
    })
}

/// `sum(a * b)` in [`LANES`] independent accumulators over whole chunks (vectorises).
#[inline(always)]
fn lane_dot<T: Float>(a: &[T], b: &[T]) -> T {
    let b = &b[..a.len()];
    let n = a.len() - a.len() % LANES;
    let mut lanes = [T::zero(); LANES];
    for (ca, cb) in a[..n].chunks_exact(LANES).zip(b[..n].chunks_exact(LANES)) {
        for k in 0..LANES {
            lanes[k] = lanes[k] + ca[k] * cb[k];
        }
    }
    let tail = a[n..]
        .iter()
        .zip(&b[n..])
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    tail + tree(lanes, |a, b| a + b)
}

/// Folds the lanes pairwise (halves, quarters, ...): a few shuffles deep instead of a
/// chain of `LANES` dependent scalar ops, which dominated short rows.
#[inline(always)]
fn tree<T: Float>(mut l: [T; LANES], f: impl Fn(T, T) -> T) -> T {
    let mut w = LANES / 2;
    while w > 0 {
        for k in 0..w {
            l[k] = f(l[k], l[k + w]);
        }
        w /= 2;
    }
    l[0]
}

/// Lanes of the fixed-width accumulators below: whole chunks keep the loops vectorised.
const LANES: usize = 16;

/// Rows shorter than this (a few classes, short attention rows) are processed in blocks of
/// rows: one vector exp runs over a whole block instead of a scalar tail per row.
const SHORT_ROW: usize = 32;

/// Elements per block of short rows (L1-resident; also the size of the scratch buffers).
const SHORT_BLOCK: usize = 2048;

/// `o = exp(o)` over whole vector chunks, then the tail.
#[inline(always)]
fn exp_in_place<T: Float>(o: &mut [T]) {
    let full = o.len() / LANES * LANES;
    for c in o[..full].chunks_exact_mut(LANES) {
        for k in 0..LANES {
            c[k] = c[k].exp_();
        }
    }
    for d in &mut o[full..] {
        *d = d.exp_();
    }
}

/// `o = exp(x - m_r)` over a block of rows of `n` (`m_r` = [`shift`] of row r, stored in
/// `ms`): the shifts row by row, then one vectorised exp over the whole block.
#[inline(always)]
fn exp_shifted_block<T: Float>(x: &[T], n: usize, o: &mut [MaybeUninit<T>], ms: &mut [T]) {
    for ((oc, xc), m) in o
        .chunks_exact_mut(n)
        .zip(x.chunks_exact(n))
        .zip(ms.iter_mut())
    {
        let mx = fold4(xc, T::neg_infinity(), |a, b| if b > a { b } else { a });
        *m = if mx == T::neg_infinity() || mx.is_nan() {
            T::zero()
        } else {
            mx
        };
        for (d, &v) in oc.iter_mut().zip(xc) {
            d.write(v - *m);
        }
    }
    // SAFETY: `o` and `x` have the same length, so every element was written above.
    let o = unsafe { &mut *(o as *mut [MaybeUninit<T>] as *mut [T]) };
    exp_in_place(o);
}

/// `f`-fold of a short row in four independent accumulators (a chain of `n / 4` instead
/// of `n` dependent ops).
#[inline(always)]
fn fold4<T: Float>(r: &[T], init: T, f: impl Fn(T, T) -> T) -> T {
    let mut a = [init; 4];
    let chunks = r.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            a[k] = f(a[k], c[k]);
        }
    }
    let mut s = f(f(a[0], a[1]), f(a[2], a[3]));
    for &v in tail {
        s = f(s, v);
    }
    s
}

/// [`softmax_rows`] of short rows (`n < SHORT_ROW`) over `x` (whole rows) into `o`.
#[inline(always)]
fn softmax_short<T: Float>(x: &[T], n: usize, o: &mut [MaybeUninit<T>], log: bool) {
    let per = (SHORT_BLOCK / n).max(1);
    let mut ms = [T::zero(); SHORT_BLOCK];
    for (ob, xb) in o.chunks_mut(per * n).zip(x.chunks(per * n)) {
        exp_shifted_block(xb, n, ob, &mut ms);
        // SAFETY: exp_shifted_block wrote the whole block.
        let ob = unsafe { &mut *(ob as *mut [MaybeUninit<T>] as *mut [T]) };
        for ((oc, xc), &m) in ob.chunks_exact_mut(n).zip(xb.chunks_exact(n)).zip(&ms) {
            let s = fold4(oc, T::zero(), |a, b| a + b);
            if log {
                let ls = s.ln() + m;
                for (d, &v) in oc.iter_mut().zip(xc) {
                    *d = v - ls;
                }
            } else {
                let inv = T::one() / s;
                for d in oc.iter_mut() {
                    *d = *d * inv;
                }
            }
        }
    }
}

/// `logsumexp` of each short row (`n < SHORT_ROW`) of `x`, in blocks (see [`softmax_short`]).
fn lse_rows_short<T: Float>(x: &[T], n: usize) -> Vec<T> {
    let rows = x.len() / n;
    let per = (SHORT_BLOCK / n).max(1);
    let mut out = vec![T::zero(); rows];
    let body = |o: &mut [T], r0: usize| {
        simd(
            #[inline(always)]
            || {
                let mut scratch = [MaybeUninit::<T>::uninit(); SHORT_BLOCK];
                let mut ms = [T::zero(); SHORT_BLOCK];
                for (bi, ob) in o.chunks_mut(per).enumerate() {
                    let a = (r0 + bi * per) * n;
                    let xb = &x[a..a + ob.len() * n];
                    let sb = &mut scratch[..xb.len()];
                    exp_shifted_block(xb, n, sb, &mut ms);
                    // SAFETY: exp_shifted_block wrote the whole block.
                    let sb = unsafe { &*(sb as *const [MaybeUninit<T>] as *const [T]) };
                    for ((d, c), &m) in ob.iter_mut().zip(sb.chunks_exact(n)).zip(&ms) {
                        *d = m + fold4(c, T::zero(), |a, b| a + b).ln();
                    }
                }
            },
        )
    };
    let nt = super::threads::get_num_threads();
    if x.len() < super::threads::PAR_THRESHOLD || nt <= 1 || rows < 2 {
        body(&mut out, 0);
    } else {
        let per_task = rows.div_ceil(nt).max(1);
        super::threads::par_chunks(&mut out, per_task, |i, o| body(o, i * per_task));
    }
    out
}

/// Largest element of `row` (-inf when empty). A NaN may be skipped: it still turns the
/// softmax row into NaN through `exp(NaN - m)`.
#[inline(always)]
fn row_max<T: Float>(row: &[T]) -> T {
    let mut lanes = [T::neg_infinity(); LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            lanes[k] = if c[k] > lanes[k] { c[k] } else { lanes[k] };
        }
    }
    let mut m = tree(lanes, |a, b| if b > a { b } else { a });
    for &v in tail {
        m = if v > m { v } else { m };
    }
    m
}

/// The shift that keeps `exp(row - m)` finite: the row's max, or 0 when that is -inf (an
/// all-masked row) or NaN.
#[inline(always)]
fn shift<T: Float>(row: &[T]) -> T {
    let m = row_max(row);
    if m == T::neg_infinity() || m.is_nan() {
        T::zero()
    } else {
        m
    }
}

/// Writes `exp(row - m)` into every slot of `o`; returns `o`, now initialised, and the sum.
#[inline(always)]
fn exp_sum<'a, T: Float>(row: &[T], m: T, o: &'a mut [MaybeUninit<T>]) -> (&'a mut [T], T) {
    // Two passes over the (L1-resident) row: the exps, then their sum. Summing in the exp
    // loop keeps the lanes on the stack (register pressure from the exp polynomial) and
    // serialises the adds through store-to-load forwarding.
    let n = row.len() / LANES * LANES;
    for (oc, rc) in o[..n]
        .chunks_exact_mut(LANES)
        .zip(row[..n].chunks_exact(LANES))
    {
        for k in 0..LANES {
            oc[k].write((rc[k] - m).exp_());
        }
    }
    for (d, &v) in o[n..].iter_mut().zip(&row[n..]) {
        d.write((v - m).exp_());
    }
    debug_assert_eq!(o.len(), row.len());
    // SAFETY: every element of `o` (same length as `row`) was written above.
    let o = unsafe { &mut *(o as *mut [MaybeUninit<T>] as *mut [T]) };
    let s = lane_sum(o, |v| v);
    (o, s)
}

/// Sum of `f(v)` over `row`, accumulated in fixed-width lanes.
#[inline(always)]
fn lane_sum<T: Float>(row: &[T], f: impl Fn(T) -> T) -> T {
    let mut lanes = [T::zero(); LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            lanes[k] = lanes[k] + f(c[k]);
        }
    }
    let mut s: T = tree(lanes, |a, b| a + b);
    for &v in tail {
        s = s + f(v);
    }
    s
}

/// Layer norm of each row of `n`: returns (y, mean, rstd).
pub fn layer_norm_rows<T: Float>(
    x: &[T],
    n: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    eps: f64,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    if n == 0 || x.is_empty() {
        return (x.to_vec(), Vec::new(), Vec::new());
    }
    let rows = x.len().checked_div(n).unwrap_or(0);
    // Full-length affine slices (the op checked their shapes), so the zips below cover rows.
    let (w, b) = (w.map(|w| &w[..n]), b.map(|b| &b[..n]));
    let mut stats = vec![(T::zero(), T::zero()); rows];
    let eps = T::c(eps);
    let inv_n = T::c(1.0 / n.max(1) as f64);
    let st_ptr = stats.as_mut_ptr() as usize;
    let out = alloc_with(x.len(), |out| {
        par_rows(out, n, rows, |chunk, r0| {
            for (i, o) in chunk.chunks_mut(n).enumerate() {
                let r = r0 + i;
                let row = &x[r * n..(r + 1) * n];
                let (mean, rstd) = simd(
                    #[inline(always)]
                    || {
                        let mean = lane_sum(row, |v| v) * inv_n;
                        let var = lane_sum(row, |v| (v - mean) * (v - mean)) * inv_n;
                        let rstd = T::one() / (var + eps).sqrt();
                        let it = o.iter_mut().zip(row);
                        match (w, b) {
                            (Some(w), Some(b)) => {
                                for ((d, &v), (&wj, &bj)) in it.zip(w.iter().zip(b)) {
                                    d.write((v - mean) * rstd * wj + bj);
                                }
                            }
                            (Some(w), None) => {
                                for ((d, &v), &wj) in it.zip(w) {
                                    d.write((v - mean) * rstd * wj);
                                }
                            }
                            (None, Some(b)) => {
                                for ((d, &v), &bj) in it.zip(b) {
                                    d.write((v - mean) * rstd + bj);
                                }
                            }
                            (None, None) => {
                                for (d, &v) in it {
                                    d.write((v - mean) * rstd);
                                }
                            }
                        }
                        (mean, rstd)
                    },
                );
                // SAFETY: each row index is written by exactly one task.
                unsafe { *(st_ptr as *mut (T, T)).add(r) = (mean, rstd) };
            }
        })
    });
    let (mean, rstd) = stats.into_iter().unzip();
    (out, mean, rstd)
}

/// Applies `f(row, r)` to every row of `n` elements of `x`, with one result per row, in
/// parallel when the rows hold enough elements.
fn map_rows<T: Float, R: Send + Copy + Default>(
    x: &[T],
    n: usize,
    f: impl Fn(&[T], usize) -> R + Sync,
) -> Vec<R> {
    let rows = x.len().checked_div(n).unwrap_or(0);
    let mut out = vec![R::default(); rows];
    let nt = super::threads::get_num_threads();
    let body = |o: &mut [R], r0: usize| {
        for (i, d) in o.iter_mut().enumerate() {
            let r = r0 + i;
            *d = f(&x[r * n..(r + 1) * n], r);
        }
    };
    if rows * n < super::threads::PAR_THRESHOLD || nt <= 1 || rows < 2 {
        body(&mut out, 0);
    } else {
        let per = rows.div_ceil(nt).max(1);
        super::threads::par_chunks(&mut out, per, |i, o| body(o, i * per));
    }
    out
}

/// Cross-entropy of each row of `n` logits against class `t[r]`, with label smoothing `ls`:
/// `lse - (1 - ls) x[t] - ls mean(x)`, 0 where `t[r] == ignore`. Returns (loss, logsumexp).
/// Targets must be in range (the op checks them).
pub fn cross_entropy_rows<T: Float>(
    x: &[T],
    n: usize,
    t: &[i64],
    ignore: i64,
    ls: f64,
) -> (Vec<T>, Vec<T>) {
    let (keep_t, ls_t) = (T::c(1.0 - ls), T::c(ls));
    let inv_n = T::c(1.0 / n.max(1) as f64);
    if n > 0 && n < SHORT_ROW {
        let lse = lse_rows_short(x, n);
        let loss = lse
            .iter()
            .enumerate()
            .map(|(r, &l)| {
                if t[r] == ignore {
                    return T::zero();
                }
                let row = &x[r * n..(r + 1) * n];
                let mut loss = l - keep_t * row[t[r] as usize];
                if ls > 0.0 {
                    loss = loss - ls_t * row.iter().fold(T::zero(), |a, &v| a + v) * inv_n;
                }
                loss
            })
            .collect();
        return (loss, lse);
    }
    let pairs = map_rows(x, n, |row, r| {
        simd(
            #[inline(always)]
            || {
                let m = shift(row);
                let lse = m + lane_sum(row, |v| (v - m).exp_()).ln();
                if t[r] == ignore {
                    return (T::zero(), lse);
                }
                let mut loss = lse - keep_t * row[t[r] as usize];
                if ls > 0.0 {
                    loss = loss - ls_t * lane_sum(row, |v| v) * inv_n;
                }
                (loss, lse)
            },
        )
    });
    pairs.into_iter().unzip()
}

/// Gradient of [`cross_entropy_rows`] w.r.t. the logits, given each row's output gradient
/// `g`: `g[r] (softmax(x_r) - (1 - ls) onehot(t[r]) - ls / n)`, zero for ignored rows.
pub fn cross_entropy_rows_backward<T: Float>(
    x: &[T],
    n: usize,
    t: &[i64],
    lse: &[T],
    g: &[T],
    ignore: i64,
    ls: f64,
) -> Vec<T> {
    let rows = lse.len();
    let (keep_t, ls_n) = (T::c(1.0 - ls), T::c(ls / n.max(1) as f64));
    alloc_with(x.len(), |out| {
        par_rows(out, n, rows, |chunk, r0| {
            if n < SHORT_ROW {
                // The shifted logits for the whole chunk, one vector exp, then the scales.
                let xs = &x[r0 * n..r0 * n + chunk.len()];
                simd(
                    #[inline(always)]
                    || {
                        for ((d, &v), r) in chunk.iter_mut().zip(xs).zip((0..).map(|j| j / n)) {
                            d.write(v - lse[r0 + r]);
                        }
                        // SAFETY: every element of the chunk was written just above.
                        let o = unsafe { &mut *(chunk as *mut [MaybeUninit<T>] as *mut [T]) };
                        exp_in_place(o);
                        for (i, oc) in o.chunks_exact_mut(n).enumerate() {
                            let r = r0 + i;
                            let s = if t[r] == ignore { T::zero() } else { g[r] };
                            let sl = s * ls_n;
                            for d in oc.iter_mut() {
                                *d = s * *d - sl;
                            }
                            if t[r] != ignore {
                                let k = t[r] as usize;
                                oc[k] = oc[k] - s * keep_t;
                            }
                        }
                    },
                );
                return;
            }
            for (i, o) in chunk.chunks_mut(n).enumerate() {
                let r = r0 + i;
                let row = &x[r * n..(r + 1) * n];
                let s = if t[r] == ignore { T::zero() } else { g[r] };
                let (l, sl) = (lse[r], s * ls_n);
                simd(
                    #[inline(always)]
                    || {
                        for (d, &v) in o.iter_mut().zip(row) {
                            d.write(s * (v - l).exp_() - sl);
                        }
                    },
                );
                if t[r] != ignore {
                    let k = t[r] as usize;
                    // SAFETY: the whole row was written just above.
                    let v = unsafe { o[k].assume_init() };
                    o[k].write(v - s * keep_t);
                }
            }
        })
    })
}

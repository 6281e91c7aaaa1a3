//! Row kernels: softmax, log-softmax, layer norm over the last (contiguous) dim.

use super::math::Float;
use super::strided::par_rows;
use super::threads::simd;

/// Softmax (or log-softmax) of each row of `n` elements.
pub fn softmax_rows<T: Float>(x: &[T], n: usize, log: bool) -> Vec<T> {
    let rows = x.len().checked_div(n).unwrap_or(0);
    let mut out = vec![T::zero(); x.len()];
    if n == 0 {
        return out;
    }
    par_rows(&mut out, n, rows, |chunk, r0| {
        for (i, o) in chunk.chunks_mut(n).enumerate() {
            let row = &x[(r0 + i) * n..(r0 + i + 1) * n];
            simd(|| {
                let mut m = T::neg_infinity();
                for &v in row {
                    m = if v > m { v } else { m };
                }
                if m == T::neg_infinity() || m.is_nan() {
                    m = T::zero();
                }
                let mut lanes = [T::zero(); 16];
                for (oc, rc) in o.chunks_mut(16).zip(row.chunks(16)) {
                    for k in 0..rc.len() {
                        let e = (rc[k] - m).exp_();
                        oc[k] = e;
                        lanes[k] = lanes[k] + e;
                    }
                }
                let s: T = lanes.iter().copied().sum();
                if log {
                    let ls = s.ln() + m;
                    for (d, &v) in o.iter_mut().zip(row) {
                        *d = v - ls;
                    }
                } else {
                    let inv = T::one() / s;
                    for d in o.iter_mut() {
                        *d = *d * inv;
                    }
                }
            });
        }
    });
    out
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
    let mut out = vec![T::zero(); x.len()];
    let mut stats = vec![(T::zero(), T::zero()); rows];
    let eps = T::c(eps);
    let inv_n = T::c(1.0 / n.max(1) as f64);
    {
        let st_ptr = stats.as_mut_ptr() as usize;
        par_rows(&mut out, n, rows, |chunk, r0| {
            for (i, o) in chunk.chunks_mut(n).enumerate() {
                let r = r0 + i;
                let row = &x[r * n..(r + 1) * n];
                let (mean, rstd) = simd(|| {
                    let mut lanes = [T::zero(); 16];
                    for c in row.chunks(16) {
                        for k in 0..c.len() {
                            lanes[k] = lanes[k] + c[k];
                        }
                    }
                    let mean = lanes.iter().copied().sum::<T>() * inv_n;
                    let mut lanes = [T::zero(); 16];
                    for c in row.chunks(16) {
                        for k in 0..c.len() {
                            let d = c[k] - mean;
                            lanes[k] = lanes[k] + d * d;
                        }
                    }
                    let var = lanes.iter().copied().sum::<T>() * inv_n;
                    let rstd = T::one() / (var + eps).sqrt();
                    match (w, b) {
                        (Some(w), Some(b)) => {
                            for j in 0..n {
                                o[j] = (row[j] - mean) * rstd * w[j] + b[j];
                            }
                        }
                        (Some(w), None) => {
                            for j in 0..n {
                                o[j] = (row[j] - mean) * rstd * w[j];
                            }
                        }
                        (None, Some(b)) => {
                            for j in 0..n {
                                o[j] = (row[j] - mean) * rstd + b[j];
                            }
                        }
                        (None, None) => {
                            for j in 0..n {
                                o[j] = (row[j] - mean) * rstd;
                            }
                        }
                    }
                    (mean, rstd)
                });
                // SAFETY: each row index is written by exactly one task.
                unsafe { *(st_ptr as *mut (T, T)).add(r) = (mean, rstd) };
            }
        });
    }
    let (mean, rstd) = stats.into_iter().unzip();
    (out, mean, rstd)
}

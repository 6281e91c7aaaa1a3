//! Products with few rows against a matrix that is reused many times: the recurrent weights of
//! an LSTM, multiplied by the batch's hidden state at every timestep (m = batch size, e.g. 32).
//!
//! A general gemm packs its operands on every call; here the weight matrix is packed once per
//! layer call into panels of 16 columns (`k x 16`, contiguous), and an AVX2/FMA kernel computes
//! 4 x 16 blocks of the product with the panel in L1. f32 only; other types and CPUs without
//! AVX2/FMA use the gemm crate.

/// Columns per packed panel (two 8-float AVX registers).
const NR: usize = 16;
/// Rows of the output computed per kernel call.
const MR: usize = 4;

/// `B [k, n]` packed into panels of [`NR`] columns (zero-padded at the right edge).
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

/// True when the packed kernel can run on this CPU.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl PackedB {
    /// Packs `B [k, n]` given by element: `b(kk, j)`.
    pub fn pack(k: usize, n: usize, b: impl Fn(usize, usize) -> f32) -> PackedB {
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0f32; panels * k * NR];
        for p in 0..panels {
            let n0 = p * NR;
            let w = NR.min(n - n0);
            let panel = &mut data[p * k * NR..(p + 1) * k * NR];
            for kk in 0..k {
                for j in 0..w {
                    panel[kk * NR + j] = b(kk, n0 + j);
                }
            }
        }
        PackedB { k, n, data }
    }

    /// `C [m, n] = A [m, k] @ B`, A row-major with row stride `lda`, C with row stride `ldc`
    /// (overwritten).
    ///
    /// # Safety
    /// `a` must address `m` rows of `k` readable floats at stride `lda`, and `c` `m` rows of
    /// `n` writable floats at stride `ldc` that no other thread touches meanwhile; the CPU
    /// must support AVX2 and FMA ([`available`]).
    pub unsafe fn matmul(&self, m: usize, a: *const f32, lda: usize, c: *mut f32, ldc: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded from this function's contract.
        unsafe {
            self.matmul_avx2(m, a, lda, c, ldc)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (m, a, lda, c, ldc);
            unreachable!("PackedB::matmul needs x86-64 with AVX2")
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn matmul_avx2(&self, m: usize, a: *const f32, lda: usize, c: *mut f32, ldc: usize) {
        let k = self.k;
        for p in 0..self.n.div_ceil(NR) {
            let n0 = p * NR;
            let w = NR.min(self.n - n0);
            // SAFETY: the panel lies inside `data`; rows and columns stay inside A and C as
            // the caller promised (rows `r0..r0 + rows`, columns `n0..n0 + w`).
            unsafe {
                let bp = self.data.as_ptr().add(p * k * NR);
                let mut r0 = 0;
                while r0 < m {
                    let rows = MR.min(m - r0);
                    kernel(
                        k,
                        a.add(r0 * lda),
                        lda,
                        rows,
                        bp,
                        c.add(r0 * ldc + n0),
                        ldc,
                        w,
                    );
                    r0 += MR;
                }
            }
        }
    }
}

/// One `rows x w` block (rows <= 4, w <= 16) of C = A @ panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    k: usize,
    a: *const f32,
    lda: usize,
    rows: usize,
    bp: *const f32,
    c: *mut f32,
    ldc: usize,
    w: usize,
) {
    use std::arch::x86_64::*;
    // Rows past `rows` re-read row 0 (always valid) and are not stored.
    let row = |r: usize| if r < rows { r * lda } else { 0 };
    let (o0, o1, o2, o3) = (row(0), row(1), row(2), row(3));
    // SAFETY: every pointer read below is inside A's rows (offsets o0..o3 + kk < k) or the
    // panel (kk * 16 + 16 <= k * 16); the stores stay in C's block (checked by `rows`, `w`).
    unsafe {
        let mut c00 = _mm256_setzero_ps();
        let mut c01 = _mm256_setzero_ps();
        let mut c10 = _mm256_setzero_ps();
        let mut c11 = _mm256_setzero_ps();
        let mut c20 = _mm256_setzero_ps();
        let mut c21 = _mm256_setzero_ps();
        let mut c30 = _mm256_setzero_ps();
        let mut c31 = _mm256_setzero_ps();
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(bp.add(kk * NR));
            let b1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
            let a0 = _mm256_broadcast_ss(&*a.add(o0 + kk));
            c00 = _mm256_fmadd_ps(a0, b0, c00);
            c01 = _mm256_fmadd_ps(a0, b1, c01);
            let a1 = _mm256_broadcast_ss(&*a.add(o1 + kk));
            c10 = _mm256_fmadd_ps(a1, b0, c10);
            c11 = _mm256_fmadd_ps(a1, b1, c11);
            let a2 = _mm256_broadcast_ss(&*a.add(o2 + kk));
            c20 = _mm256_fmadd_ps(a2, b0, c20);
            c21 = _mm256_fmadd_ps(a2, b1, c21);
            let a3 = _mm256_broadcast_ss(&*a.add(o3 + kk));
            c30 = _mm256_fmadd_ps(a3, b0, c30);
            c31 = _mm256_fmadd_ps(a3, b1, c31);
        }
        let acc = [(c00, c01), (c10, c11), (c20, c21), (c30, c31)];
        for (r, &(lo, hi)) in acc.iter().enumerate().take(rows) {
            let dst = c.add(r * ldc);
            if w == NR {
                _mm256_storeu_ps(dst, lo);
                _mm256_storeu_ps(dst.add(8), hi);
            } else {
                let mut tmp = [0.0f32; NR];
                _mm256_storeu_ps(tmp.as_mut_ptr(), lo);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), hi);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_product_on_ragged_shapes() {
        if !available() {
            return;
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 17, 5),
            (4, 16, 8),
            (32, 512, 256),
            (7, 40, 33),
        ] {
            let lda = k + 3;
            let ldc = n + 2;
            let a: Vec<f32> = (0..m * lda).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0)
                .collect();
            let packed = PackedB::pack(k, n, |kk, j| b[kk * n + j]);
            let mut c = vec![f32::NAN; m * ldc];
            // SAFETY: the buffers have the sizes the strides describe; AVX2 checked above.
            unsafe { packed.matmul(m, a.as_ptr(), lda, c.as_mut_ptr(), ldc) };
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|kk| a[i * lda + kk] * b[kk * n + j]).sum();
                    let got = c[i * ldc + j];
                    assert!(
                        (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
                        "{m}x{n}x{k} [{i},{j}]"
                    );
                }
                // Padding columns of C are left alone.
                for j in n..ldc {
                    assert!(c[i * ldc + j].is_nan());
                }
            }
        }
    }
}

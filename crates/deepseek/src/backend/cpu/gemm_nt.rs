//! `C[m, n] (+)= A[m, k] · B[n, k]ᵀ` for f32 when both operands are contiguous along `k` and
//! `m` is small: a `Linear` layer's forward (`x @ W^T`) at batch sizes 16–64, where a
//! general gemm spends most of its time packing the transposed weight (a gather over `W`'s
//! columns) that it then uses for only a few rows.
//!
//! Here nothing is packed. Every output element is a dot product of two contiguous rows; a
//! register tile of [`MR`] rows of `A` by [`NR`] rows of `B` keeps `MR × NR` 16-lane partial
//! sums, streams `k` in 16-float steps (the last one masked), and folds each row's `NR`
//! vectors into `NR` scalars with a shuffle tree at the end. The loop runs over blocks of
//! `B` rows outermost, so a block (`NR × k` floats) stays in L1 while all of `A` — which the
//! caller keeps small enough for L2 ([`applies`]) — streams past it. AVX-512F only; other
//! CPUs use the general gemm.

use super::threads;

/// Rows of `A` per register tile.
const MR: usize = 3;
/// Rows of `B` (columns of `C`) per register tile.
const NR: usize = 8;
/// Columns of `C` per parallel task.
const TASK_COLS: usize = 64;

/// True when this kernel should compute the product: AVX-512F is present, both operands are
/// contiguous along `k`, `A` has 16 to 64 rows (below, the gemm crate's matrix-vector path is
/// faster: every `B` block is copied for too few rows; above, its packed kernel wins) and
/// fits in L2 beside the tiles.
pub fn applies(m: usize, n: usize, k: usize, a_cs: isize, b_rs: isize) -> bool {
    a_cs == 1
        && b_rs == 1
        && (16..=64).contains(&m)
        && m * k <= 128 * 1024
        && k >= 32
        && n >= NR
        && avx512()
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Computes the product on up to `threads` threads (tasks of [`TASK_COLS`] columns).
///
/// # Safety
/// `a` addresses `m` rows of `k` floats `lda` apart, `b` `n` rows of `k` floats `ldb` apart,
/// `c` `m` rows of `n` floats `ldc` apart that no other thread touches meanwhile; the CPU
/// has AVX-512F ([`applies`] checked it).
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_nt(
    (m, n, k): (usize, usize, usize),
    (c, ldc): (*mut f32, usize),
    (a, lda): (*const f32, usize),
    (b, ldb): (*const f32, usize),
    accumulate: bool,
    threads: usize,
) {
    // Rows 4 KiB apart (k = 1024) fall into one L1 set: read straight from the operands, the
    // tile's 11 row streams would evict each other. Both operands are copied into
    // interleaved panels first — `A` once per call, each `NR`-row block of `B` by the task
    // that uses it — so the tile reads two contiguous streams. Zero padding makes `k` a
    // multiple of 16 and `m` of `MR`.
    let kp = k.div_ceil(16);
    let ap = pack(a, lda, m, MR, kp, k);
    let (cp, bp, app) = (c as usize, b as usize, ap.as_ptr() as usize);
    let tasks = n.div_ceil(TASK_COLS);
    let task = move |t: usize| {
        let j0 = t * TASK_COLS;
        let j1 = (j0 + TASK_COLS).min(n);
        // SAFETY: the caller's contract; tasks write disjoint column ranges of `C`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            x86::columns(
                (m, kp),
                (j0, j1),
                (cp as *mut f32, ldc),
                app as *const f32,
                (bp as *const f32, ldb, k),
                accumulate,
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (j0, j1, cp, app, bp, accumulate, ldc, ldb);
    };
    let work = m * n * k;
    let threads = if work >= 1 << 20 { threads } else { 1 };
    threads::par_claim(tasks, threads, task);
}

/// `rows` rows of `k` floats (`ld` apart) as panels of `group` rows: panel `g` holds, for
/// each 16-float step `p < kp`, the 16 floats of each of its rows (`[g][p][r][16]`), zeros
/// past `k` and past the last row.
///
/// # Safety
/// `x` addresses `rows` rows of `k` floats `ld` apart.
unsafe fn pack(
    x: *const f32,
    ld: usize,
    rows: usize,
    group: usize,
    kp: usize,
    k: usize,
) -> Vec<f32> {
    let groups = rows.div_ceil(group);
    let mut out = vec![0f32; groups * kp * group * 16];
    pack_into(x, ld, rows, group, kp, k, &mut out);
    out
}

/// [`pack`] into `out` (`rows.div_ceil(group) * kp * group * 16` floats, zeroed where no row
/// or column lands).
///
/// # Safety
/// As [`pack`].
unsafe fn pack_into(
    x: *const f32,
    ld: usize,
    rows: usize,
    group: usize,
    kp: usize,
    k: usize,
    out: &mut [f32],
) {
    for r in 0..rows {
        let (g, rr) = (r / group, r % group);
        let src = std::slice::from_raw_parts(x.add(r * ld), k);
        let base = g * kp * group * 16 + rr * 16;
        for (p, chunk) in src.chunks(16).enumerate() {
            let o = base + p * group * 16;
            out[o..o + chunk.len()].copy_from_slice(chunk);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{pack_into, MR, NR};
    use std::arch::x86_64::*;

    /// Columns `j0..j1` of `C`, all rows; `a` is `A` packed in `MR`-row panels.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn columns(
        (m, kp): (usize, usize),
        (j0, j1): (usize, usize),
        (c, ldc): (*mut f32, usize),
        a: *const f32,
        (b, ldb, k): (*const f32, usize, usize),
        accumulate: bool,
    ) {
        let mut bpack = vec![0f32; kp * NR * 16];
        let a_panel = kp * MR * 16;
        let mut j = j0;
        while j < j1 {
            let cols = (j1 - j).min(NR);
            if cols < NR {
                bpack.fill(0.0);
            }
            pack_into(b.add(j * ldb), ldb, cols, NR, kp, k, &mut bpack);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let ai = a.add((i / MR) * a_panel);
                let mut out = [[0f32; NR]; MR];
                match rows {
                    3 => tile::<3>(ai, bpack.as_ptr(), kp, &mut out),
                    2 => tile::<2>(ai, bpack.as_ptr(), kp, &mut out),
                    _ => tile::<1>(ai, bpack.as_ptr(), kp, &mut out),
                }
                for (r, row) in out.iter().enumerate().take(rows) {
                    let d = c.add((i + r) * ldc + j);
                    for (q, &v) in row.iter().enumerate().take(cols) {
                        let d = d.add(q);
                        *d = if accumulate { *d + v } else { v };
                    }
                }
                i += rows;
            }
            j += cols;
        }
    }

    /// The `R × NR` register tile (`R ≤ MR`) over packed panels: `out[r][q] = A[r] · B[q]`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const R: usize>(
        a: *const f32,
        b: *const f32,
        kp: usize,
        out: &mut [[f32; NR]; MR],
    ) {
        let mut acc = [[_mm512_setzero_ps(); NR]; R];
        for p in 0..kp {
            let bp = b.add(p * NR * 16);
            let ap = a.add(p * MR * 16);
            let mut bv = [_mm512_setzero_ps(); NR];
            for (q, v) in bv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(bp.add(q * 16));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_loadu_ps(ap.add(r * 16));
                for (s, v) in row.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(av, *v, *s);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for g in 0..NR / 4 {
                let v = fold4(row[4 * g], row[4 * g + 1], row[4 * g + 2], row[4 * g + 3]);
                _mm_storeu_ps(out[r].as_mut_ptr().add(4 * g), v);
            }
        }
    }

    /// The four horizontal sums of `x0..x3`, as one 4-lane vector.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn fold4(x0: __m512, x1: __m512, x2: __m512, x3: __m512) -> __m128 {
        // Within each 128-bit lane: pairs, then quads.
        let t01 = _mm512_add_ps(_mm512_unpacklo_ps(x0, x1), _mm512_unpackhi_ps(x0, x1));
        let t23 = _mm512_add_ps(_mm512_unpacklo_ps(x2, x3), _mm512_unpackhi_ps(x2, x3));
        let lo = _mm512_castpd_ps(_mm512_unpacklo_pd(
            _mm512_castps_pd(t01),
            _mm512_castps_pd(t23),
        ));
        let hi = _mm512_castpd_ps(_mm512_unpackhi_pd(
            _mm512_castps_pd(t01),
            _mm512_castps_pd(t23),
        ));
        // Each 128-bit lane now holds partial sums of x0, x1, x2, x3 in order.
        let s = _mm512_add_ps(lo, hi);
        // Across the four 128-bit lanes.
        let s2 = _mm512_add_ps(s, _mm512_shuffle_f32x4::<0b01_00_11_10>(s, s));
        let s1 = _mm512_add_ps(s2, _mm512_shuffle_f32x4::<0b10_11_00_01>(s2, s2));
        _mm512_castps512_ps128(s1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        c0: &[f32],
        acc: bool,
    ) -> Vec<f32> {
        let mut c = c0.to_vec();
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[j * k + p] as f64)
                    .sum();
                c[i * n + j] = if acc {
                    c0[i * n + j] + s as f32
                } else {
                    s as f32
                };
            }
        }
        c
    }

    #[test]
    fn matches_naive_with_tails_and_accumulate() {
        if !avx512() {
            return;
        }
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for &(m, n, k) in &[
            (1, 8, 32),
            (3, 8, 48),
            (4, 13, 33),
            (7, 70, 100),
            (64, 200, 1024),
            (5, 129, 17 * 16 + 5),
        ] {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| rnd()).collect();
            for acc in [false, true] {
                for threads in [1, 2] {
                    let mut c = c0.clone();
                    unsafe {
                        gemm_nt(
                            (m, n, k),
                            (c.as_mut_ptr(), n),
                            (a.as_ptr(), k),
                            (b.as_ptr(), k),
                            acc,
                            threads,
                        )
                    };
                    let want = naive(m, n, k, &a, &b, &c0, acc);
                    for (x, y) in c.iter().zip(&want) {
                        assert!(
                            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                            "{m}x{n}x{k} acc {acc}: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod timing {
    /// `cargo test --release -p deepseek --lib gemm_nt::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn nt_vs_gemm_crate() {
        for &(m, n, k) in &[
            (16, 1024, 1024),
            (64, 1024, 1024),
            (128, 1024, 1024),
            (64, 4096, 1024),
            (128, 768, 768),
        ] {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; n * k];
            let mut c = vec![0f32; m * n];
            let time = |f: &mut dyn FnMut()| {
                f();
                let mut best = f64::MAX;
                for _ in 0..20 {
                    let t = std::time::Instant::now();
                    f();
                    best = best.min(t.elapsed().as_secs_f64());
                }
                best
            };
            let t_nt = time(&mut || unsafe {
                super::gemm_nt(
                    (m, n, k),
                    (c.as_mut_ptr(), n),
                    (a.as_ptr(), k),
                    (b.as_ptr(), k),
                    false,
                    1,
                )
            });
            let t_g = time(&mut || unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    k as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            });
            let f = 2.0 * (m * n * k) as f64;
            println!(
                "{m}x{n}x{k}: nt {:.3} ms ({:.0} GF/s), gemm crate {:.3} ms ({:.0} GF/s)",
                t_nt * 1e3,
                f / t_nt / 1e9,
                t_g * 1e3,
                f / t_g / 1e9
            );
        }
    }
}

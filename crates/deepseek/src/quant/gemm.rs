//! The u8 × i8 → i32 matrix product behind the INT8 layers.
//!
//! `C[i, j] = Σ_k A[i, k] · W[j, k]` with `A` unsigned 8-bit (quantized activations, row-major,
//! leading dimension `lda`) and `W` signed 8-bit in PyTorch's weight layout `[n, k]`, packed once
//! into [`PackedI8`]. The sums are exact 32-bit integers: every kernel gives the same bits as
//! [`gemm_u8i8_reference`], whatever the instruction set.
//!
//! Kernels, picked at run time by [`Isa::best`]:
//! - [`Isa::Avx512Vnni`]: `vpdpbusd` on 512-bit registers (64 multiply-adds per instruction),
//!   a 4-row × 64-column register tile;
//! - [`Isa::AvxVnni`]: the same instruction on 256-bit registers (AVX-VNNI, Alder Lake and
//!   later client CPUs), a 4 × 16 tile;
//! - [`Isa::Avx2`]: sign-extends to 16 bits and uses `vpmaddwd`, which cannot saturate (unlike
//!   the `vpmaddubsw` trick, which would lose exactness for large activations), a 2 × 16 tile;
//! - [`Isa::Scalar`]: portable Rust, for every other CPU.
//!
//! The packed layout is shared by all kernels: panels of [`NB`] = 16 output columns; within a
//! panel, for each group of 4 consecutive `k`, the 16 columns' 4 bytes (64 bytes, one 512-bit
//! register or two 256-bit ones). Columns and `k` are zero-padded to whole panels and groups.
//! Large products are split over column panels (and row blocks when the columns alone give too
//! few tasks) on deepseek's thread pool.

use crate::{Error, Result};

/// Output columns per packed panel.
pub const NB: usize = 16;

/// The largest reduction length whose sums cannot overflow i32 (255 · 128 · K < 2³¹).
pub const MAX_K: usize = 65_536;

/// An instruction set for the INT8 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust loops.
    Scalar,
    /// AVX2: 16-bit products summed in pairs with `vpmaddwd`.
    Avx2,
    /// AVX-VNNI: `vpdpbusd` on 256-bit registers.
    AvxVnni,
    /// AVX-512 VNNI: `vpdpbusd` on 512-bit registers.
    Avx512Vnni,
}

impl Isa {
    /// Every kernel, slowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni];

    /// The name used in messages and by `deepseek.quantization.int8_isa()`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avx_vnni",
            Isa::Avx512Vnni => "avx512_vnni",
        }
    }

    /// Parses [`Isa::name`].
    pub fn from_name(s: &str) -> Result<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| {
                Error::value(
                    "int8 gemm",
                    format!(
                        "unknown instruction set {s:?} (expected one of scalar, avx2, avx_vnni, avx512_vnni)"
                    ),
                )
            })
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest kernel this CPU runs (AVX-512 VNNI, then AVX-VNNI, AVX2, scalar). The
    /// environment variable `DEEPSEEK_INT8_ISA` (one of the [`Isa::name`]s) caps the choice,
    /// e.g. to measure a slower path on a newer CPU.
    pub fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = std::env::var("DEEPSEEK_INT8_ISA")
                .ok()
                .and_then(|s| Isa::from_name(&s).ok())
                .unwrap_or(Isa::Avx512Vnni);
            let mut best = Isa::Scalar;
            for i in Isa::ALL {
                if i.available() && rank(i) <= rank(cap) {
                    best = i;
                }
            }
            best
        })
    }

    /// The kernels this CPU runs.
    pub fn available_all() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.available()).collect()
    }
}

fn rank(i: Isa) -> usize {
    Isa::ALL.iter().position(|&x| x == i).unwrap_or(0)
}

/// Signed 8-bit weights `[n, k]` packed for [`gemm_u8i8`], with each output column's sum
/// of weights (for the activation zero-point correction).
#[derive(Clone, Debug)]
pub struct PackedI8 {
    n: usize,
    k: usize,
    /// Groups of 4 along k (k rounded up to a multiple of 4, divided by 4).
    k4: usize,
    data: Vec<i8>,
    col_sums: Vec<i32>,
}

impl PackedI8 {
    /// Packs row-major `w` of shape `[n, k]` (PyTorch's `Linear.weight` layout).
    pub fn pack(w: &[i8], n: usize, k: usize) -> Result<PackedI8> {
        if w.len() != n * k {
            return Err(Error::shape(
                "int8 pack",
                format!("weight has {} values, expected {n}×{k}", w.len()),
            ));
        }
        if k > MAX_K {
            return Err(Error::value(
                "int8 pack",
                format!("reduction length {k} exceeds {MAX_K}: int32 sums could overflow"),
            ));
        }
        let k4 = k.div_ceil(4);
        let panels = n.div_ceil(NB);
        let mut data = vec![0i8; panels * k4 * NB * 4];
        for j in 0..n {
            let (p, jj) = (j / NB, j % NB);
            for kk in 0..k {
                let (q, t) = (kk / 4, kk % 4);
                data[((p * k4 + q) * NB + jj) * 4 + t] = w[j * k + kk];
            }
        }
        let col_sums = (0..n)
            .map(|j| w[j * k..(j + 1) * k].iter().map(|&v| v as i32).sum())
            .collect();
        Ok(PackedI8 {
            n,
            k,
            k4,
            data,
            col_sums,
        })
    }

    /// Output columns (`n`).
    pub fn n(&self) -> usize {
        self.n
    }
    /// Reduction length (`k`).
    pub fn k(&self) -> usize {
        self.k
    }
    /// `Σ_k W[j, k]` for each column `j`.
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }
    /// Bytes held by the packed weights.
    pub fn nbytes(&self) -> usize {
        self.data.len()
    }
    /// The weights back in `[n, k]` row-major order.
    pub fn unpack(&self) -> Vec<i8> {
        let mut w = vec![0i8; self.n * self.k];
        for j in 0..self.n {
            let (p, jj) = (j / NB, j % NB);
            for kk in 0..self.k {
                let (q, t) = (kk / 4, kk % 4);
                w[j * self.k + kk] = self.data[((p * self.k4 + q) * NB + jj) * 4 + t];
            }
        }
        w
    }
}

/// The plain triple loop: `C[i, j] = Σ_k A[i, k] · W[j, k]` (the kernels' reference).
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8i8_reference(
    m: usize,
    n: usize,
    k: usize,
    a: &[u8],
    lda: usize,
    w: &[i8],
    c: &mut [i32],
    ldc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0i32;
            for kk in 0..k {
                s += a[i * lda + kk] as i32 * w[j * k + kk] as i32;
            }
            c[i * ldc + j] = s;
        }
    }
}

/// A raw pointer that may cross threads (tasks write disjoint tiles of `C`).
#[derive(Clone, Copy)]
struct SendPtr(*mut i32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// `C[i, j] = Σ_k A[i, k] · W[j, k]` for `i < m`, `j < b.n()`, with the kernel `isa`.
///
/// `a` holds `m` rows of `b.k()` bytes, `lda` apart; `c` holds `m` rows of `b.n()` values,
/// `ldc` apart. Errors (never panics) on short buffers or a kernel this CPU lacks.
pub fn gemm_u8i8(
    isa: Isa,
    m: usize,
    a: &[u8],
    lda: usize,
    b: &PackedI8,
    c: &mut [i32],
    ldc: usize,
) -> Result<()> {
    let (n, k) = (b.n, b.k);
    if !isa.available() {
        return Err(Error::value(
            "int8 gemm",
            format!("this CPU cannot run the {} kernel", isa.name()),
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if lda < k || a.len() < (m - 1) * lda + k {
        return Err(Error::shape(
            "int8 gemm",
            format!(
                "A holds {} bytes, too few for {m}×{k} with lda {lda}",
                a.len()
            ),
        ));
    }
    if ldc < n || c.len() < (m - 1) * ldc + n {
        return Err(Error::shape(
            "int8 gemm",
            format!(
                "C holds {} values, too few for {m}×{n} with ldc {ldc}",
                c.len()
            ),
        ));
    }
    let (mr, np) = match isa {
        Isa::Avx512Vnni => (4, 4),
        Isa::AvxVnni => (4, 1),
        Isa::Avx2 => (2, 1),
        Isa::Scalar => (4, 1),
    };
    let group = np * NB;
    let ngroups = n.div_ceil(group);
    let work = m * n * k;
    let threads = if work >= 1 << 21 && rayon::current_thread_index().is_none() {
        crate::backend::cpu::threads::get_num_threads()
    } else {
        1
    };
    // Row blocks: enough tasks for the threads, each a whole number of register tiles.
    let row_splits = if ngroups >= 2 * threads {
        1
    } else {
        (2 * threads).div_ceil(ngroups).min(m.div_ceil(mr))
    };
    let rows_per = m.div_ceil(row_splits).div_ceil(mr) * mr;
    let row_blocks = m.div_ceil(rows_per);
    let ntasks = row_blocks * ngroups;
    let cp = SendPtr(c.as_mut_ptr());
    let task = move |t: usize| {
        let (rb, g) = (t / ngroups, t % ngroups);
        let r0 = rb * rows_per;
        let r1 = (r0 + rows_per).min(m);
        let j0 = g * group;
        let cols = (n - j0).min(group);
        let panels = cols.div_ceil(NB);
        let cp = cp;
        // SAFETY: bounds were checked above; tasks write disjoint (rows, columns) tiles of C;
        // the ISA was checked available.
        unsafe { run_tile(isa, mr, r0, r1, j0, cols, panels, a, lda, b, cp.0, ldc) };
    };
    if threads > 1 && ntasks > 1 {
        use rayon::prelude::*;
        crate::backend::cpu::threads::pool().install(|| (0..ntasks).into_par_iter().for_each(task));
    } else {
        (0..ntasks).for_each(task);
    }
    Ok(())
}

/// Rows `r0..r1`, columns `j0..j0+cols` (starting at a panel boundary) of C.
#[allow(clippy::too_many_arguments)]
unsafe fn run_tile(
    isa: Isa,
    mr: usize,
    r0: usize,
    r1: usize,
    j0: usize,
    cols: usize,
    panels: usize,
    a: &[u8],
    lda: usize,
    b: &PackedI8,
    c: *mut i32,
    ldc: usize,
) {
    let k = b.k;
    let k4 = b.k4;
    let bp = b.data.as_ptr().add((j0 / NB) * k4 * NB * 4);
    let mut i = r0;
    while i < r1 {
        let rows = (r1 - i).min(mr);
        let ap = a.as_ptr().add(i * lda);
        let cp = c.add(i * ldc + j0);
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                x86::avx512_dispatch(rows, panels, ap, lda, k, bp, k4, cp, ldc, cols)
            }
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => x86::avxvnni_dispatch(rows, ap, lda, k, bp, k4, cp, ldc, cols),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::avx2_dispatch(rows, ap, lda, k, bp, k4, cp, ldc, cols),
            _ => scalar_tile(rows, panels, ap, lda, k, bp, k4, cp, ldc, cols),
        }
        i += rows;
    }
}

/// The 4 bytes of A at group `q` of a row, zero past `k` (little-endian in an i32).
#[inline(always)]
unsafe fn a_word(ap: *const u8, k: usize, q: usize) -> i32 {
    if q * 4 + 4 <= k {
        (ap.add(q * 4) as *const i32).read_unaligned()
    } else {
        let mut b = [0u8; 4];
        for (t, v) in b.iter_mut().enumerate() {
            if q * 4 + t < k {
                *v = *ap.add(q * 4 + t);
            }
        }
        i32::from_le_bytes(b)
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn scalar_tile(
    rows: usize,
    panels: usize,
    ap: *const u8,
    lda: usize,
    k: usize,
    bp: *const i8,
    k4: usize,
    cp: *mut i32,
    ldc: usize,
    cols: usize,
) {
    for r in 0..rows {
        let arow = ap.add(r * lda);
        for p in 0..panels {
            let mut acc = [0i32; NB];
            for q in 0..k4 {
                let aw = a_word(arow, k, q).to_le_bytes();
                let bq = bp.add((p * k4 + q) * NB * 4);
                for (j, s) in acc.iter_mut().enumerate() {
                    for (t, &av) in aw.iter().enumerate() {
                        *s += av as i32 * *bq.add(j * 4 + t) as i32;
                    }
                }
            }
            let c0 = p * NB;
            for (j, &s) in acc.iter().enumerate().take(cols.saturating_sub(c0).min(NB)) {
                *cp.add(r * ldc + c0 + j) = s;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{a_word, NB};
    use std::arch::x86_64::*;

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx512_dispatch(
        rows: usize,
        panels: usize,
        ap: *const u8,
        lda: usize,
        k: usize,
        bp: *const i8,
        k4: usize,
        cp: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        macro_rules! go {
            ($($r:literal),*; $($p:literal),*) => {
                go!(@rows [$($r),*] [$($p),*])
            };
            (@rows [$($r:literal),*] $ps:tt) => {
                match rows {
                    $($r => go!(@panels $r $ps),)*
                    _ => unreachable!(),
                }
            };
            (@panels $r:literal [$($p:literal),*]) => {
                match panels {
                    $($p => avx512_tile::<$r, $p>(ap, lda, k, bp, k4, cp, ldc, cols),)*
                    _ => unreachable!(),
                }
            };
        }
        go!(1, 2, 3, 4; 1, 2, 3, 4)
    }

    /// An `MR`-row × `NP`-panel tile: `MR · NP` 512-bit accumulators.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx512_tile<const MR: usize, const NP: usize>(
        ap: *const u8,
        lda: usize,
        k: usize,
        bp: *const i8,
        k4: usize,
        cp: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm512_setzero_si512(); NP]; MR];
        let full = k / 4;
        macro_rules! step {
            ($q:expr, $aw:expr) => {{
                let q = $q;
                let mut bv = [_mm512_setzero_si512(); NP];
                for (p, v) in bv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(bp.add((p * k4 + q) * NB * 4) as *const _);
                }
                for r in 0..MR {
                    let av = _mm512_set1_epi32($aw[r]);
                    for p in 0..NP {
                        acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], av, bv[p]);
                    }
                }
            }};
        }
        for q in 0..full {
            let mut aw = [0i32; MR];
            for (r, w) in aw.iter_mut().enumerate() {
                *w = (ap.add(r * lda + q * 4) as *const i32).read_unaligned();
            }
            step!(q, aw);
        }
        if full < k4 {
            let mut aw = [0i32; MR];
            for (r, w) in aw.iter_mut().enumerate() {
                *w = a_word(ap.add(r * lda), k, full);
            }
            step!(full, aw);
        }
        for (r, row) in acc.iter().enumerate() {
            for (p, v) in row.iter().enumerate() {
                let c0 = p * NB;
                let n = (cols - c0).min(NB);
                let dst = cp.add(r * ldc + c0);
                if n == NB {
                    _mm512_storeu_si512(dst as *mut _, *v);
                } else {
                    _mm512_mask_storeu_epi32(dst, ((1u32 << n) - 1) as __mmask16, *v);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avxvnni_dispatch(
        rows: usize,
        ap: *const u8,
        lda: usize,
        k: usize,
        bp: *const i8,
        k4: usize,
        cp: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        match rows {
            1 => avxvnni_tile::<1>(ap, lda, k, bp, k4, cp, ldc, cols),
            2 => avxvnni_tile::<2>(ap, lda, k, bp, k4, cp, ldc, cols),
            3 => avxvnni_tile::<3>(ap, lda, k, bp, k4, cp, ldc, cols),
            _ => avxvnni_tile::<4>(ap, lda, k, bp, k4, cp, ldc, cols),
        }
    }

    /// Stores the 16 sums of one row's panel (two 256-bit halves), `n ≤ 16` of them.
    #[inline(always)]
    unsafe fn store16(dst: *mut i32, lo: __m256i, hi: __m256i, n: usize) {
        if n == NB {
            _mm256_storeu_si256(dst as *mut __m256i, lo);
            _mm256_storeu_si256(dst.add(8) as *mut __m256i, hi);
        } else {
            let mut tmp = [0i32; NB];
            _mm256_storeu_si256(tmp.as_mut_ptr() as *mut __m256i, lo);
            _mm256_storeu_si256(tmp.as_mut_ptr().add(8) as *mut __m256i, hi);
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, n);
        }
    }

    /// An `MR`-row × 16-column tile with 256-bit `vpdpbusd` (AVX-VNNI).
    #[target_feature(enable = "avx2,avxvnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avxvnni_tile<const MR: usize>(
        ap: *const u8,
        lda: usize,
        k: usize,
        bp: *const i8,
        k4: usize,
        cp: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        let mut lo = [_mm256_setzero_si256(); MR];
        let mut hi = [_mm256_setzero_si256(); MR];
        for q in 0..k4 {
            let b = bp.add(q * NB * 4);
            let b0 = _mm256_loadu_si256(b as *const __m256i);
            let b1 = _mm256_loadu_si256(b.add(32) as *const __m256i);
            for r in 0..MR {
                let av = _mm256_set1_epi32(a_word(ap.add(r * lda), k, q));
                lo[r] = _mm256_dpbusd_avx_epi32(lo[r], av, b0);
                hi[r] = _mm256_dpbusd_avx_epi32(hi[r], av, b1);
            }
        }
        for r in 0..MR {
            store16(cp.add(r * ldc), lo[r], hi[r], cols.min(NB));
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx2_dispatch(
        rows: usize,
        ap: *const u8,
        lda: usize,
        k: usize,
        bp: *const i8,
        k4: usize,
        cp: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        match rows {
            1 => avx2_tile::<1>(ap, lda, k, bp, k4, cp, ldc, cols),
            _ => avx2_tile::<2>(ap, lda, k, bp, k4, cp, ldc, cols),
        }
    }

    /// An `MR`-row × 16-column tile with AVX2: weights sign-extended to 16 bits, activations
    /// zero-extended, `vpmaddwd` sums adjacent products into 32 bits (exact: no saturation).
    /// Each accumulator holds, per column, the partial sums of k-pairs (0,1) and (2,3); one
    /// horizontal add and a lane permute at the end give the 16 column sums in order.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx2_tile<const MR: usize>(
        ap: *const u8,
        lda: usize,
        k: usize,
        bp: *const i8,
        k4: usize,
        cp: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        // acc[r][c]: columns 4c..4c+4, each as two pair-sums.
        let mut acc = [[_mm256_setzero_si256(); 4]; MR];
        for q in 0..k4 {
            let b = bp.add(q * NB * 4);
            let mut bw = [_mm256_setzero_si256(); 4];
            for (c, v) in bw.iter_mut().enumerate() {
                *v = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(c * 16) as *const __m128i));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let aw = a_word(ap.add(r * lda), k, q);
                // 4 activations as 16-bit values, repeated: [a0 a1 a2 a3] × 4.
                let a16 = _mm256_cvtepu8_epi16(_mm_set1_epi32(aw));
                for (s, b) in row.iter_mut().zip(&bw) {
                    *s = _mm256_add_epi32(*s, _mm256_madd_epi16(a16, *b));
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            // hadd within 128-bit lanes gives [c0 c1 c4 c5 | c2 c3 c6 c7]; 0xD8 reorders.
            let lo = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(a[0], a[1]));
            let hi = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(a[2], a[3]));
            store16(cp.add(r * ldc), lo, hi, cols.min(NB));
        }
    }
}

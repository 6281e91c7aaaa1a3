//! The u8 × i8 → i32 matrix product behind the INT8 layers.
//!
//! `C[i, j] = Σ_k A[i, k] · W[j, k]` with `A` unsigned 8-bit (quantized activations, row-major,
//! leading dimension `lda`) and `W` signed 8-bit in PyTorch's weight layout `[n, k]`, packed once
//! into [`PackedI8`]. The sums are exact 32-bit integers: every kernel gives the same bits as
//! [`gemm_u8i8_reference`], whatever the instruction set.
//!
//! Kernels, picked at run time by [`Isa::best`]:
//! - [`Isa::Avx512Vnni`]: `vpdpbusd` on 512-bit registers (64 multiply-adds per instruction),
//!   an 8-row × 32-column register tile;
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
//! few tasks) on deepseek's thread pool. [`gemm_u8i8_dequant`] applies the dequantizing
//! epilogue of the dynamic INT8 Linear to each tile as it leaves the registers.

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

/// Where a task's tiles go: the raw int32 sums, or f32 values through the dequantizing
/// epilogue. Raw pointers so that tasks on other threads can write their disjoint tiles.
#[derive(Clone, Copy)]
enum Sink {
    I32 {
        c: *mut i32,
        ldc: usize,
    },
    F32 {
        y: *mut f32,
        ldy: usize,
        corr: *const i32,
        mult: *const f32,
        /// Null when there is no bias.
        bias: *const f32,
    },
}
// SAFETY: tasks write disjoint (rows, columns) tiles of the output; the read-only
// epilogue vectors outlive the parallel region (`gemm_impl` borrows them).
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

/// The dequantizing epilogue of [`gemm_u8i8_dequant`], one value per output column `j`:
/// `y[i, j] = (C[i, j] − corr[j]) · mult[j] + bias[j]` (bias 0 when `None`), computed in f32
/// from the exact int32 sum `C[i, j]` while the tile is still in registers/L1.
#[derive(Clone, Copy, Debug)]
pub struct Dequant<'a> {
    /// Subtracted from the sums (the activation zero point times the column's weight sum).
    pub corr: &'a [i32],
    /// The scale each corrected sum is multiplied by (activation scale × weight scale).
    pub mult: &'a [f32],
    /// Added last.
    pub bias: Option<&'a [f32]>,
}

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
    let n = b.n;
    if m > 0 && n > 0 && (ldc < n || c.len() < (m - 1) * ldc + n) {
        return Err(Error::shape(
            "int8 gemm",
            format!(
                "C holds {} values, too few for {m}×{n} with ldc {ldc}",
                c.len()
            ),
        ));
    }
    gemm_impl(
        isa,
        m,
        a,
        lda,
        b,
        Sink::I32 {
            c: c.as_mut_ptr(),
            ldc,
        },
    )
}

/// The product of [`gemm_u8i8`] dequantized on the fly into f32:
/// `y[i, j] = (Σ_k A[i, k] · W[j, k] − corr[j]) · mult[j] + bias[j]`, `y` rows `ldy` apart.
/// Each tile's int32 sums go from the kernel's registers through a small stack buffer
/// straight into `y`, so no `m × n` int32 matrix is written or read back.
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8i8_dequant(
    isa: Isa,
    m: usize,
    a: &[u8],
    lda: usize,
    b: &PackedI8,
    epi: Dequant<'_>,
    y: &mut [f32],
    ldy: usize,
) -> Result<()> {
    let n = b.n;
    if epi.corr.len() < n || epi.mult.len() < n || epi.bias.is_some_and(|v| v.len() < n) {
        return Err(Error::shape(
            "int8 gemm",
            format!("the dequantization vectors must hold {n} values (one per output column)"),
        ));
    }
    if m > 0 && n > 0 && (ldy < n || y.len() < (m - 1) * ldy + n) {
        return Err(Error::shape(
            "int8 gemm",
            format!(
                "Y holds {} values, too few for {m}×{n} with ldy {ldy}",
                y.len()
            ),
        ));
    }
    gemm_impl(
        isa,
        m,
        a,
        lda,
        b,
        Sink::F32 {
            y: y.as_mut_ptr(),
            ldy,
            corr: epi.corr.as_ptr(),
            mult: epi.mult.as_ptr(),
            bias: epi.bias.map_or(std::ptr::null(), |v| v.as_ptr()),
        },
    )
}

/// Register-tile geometry of a kernel: (rows, 16-column panels).
fn tile_shape(isa: Isa) -> (usize, usize) {
    match isa {
        // 8 rows × 32 columns: 16 accumulators, and the 32 columns' packed weights for
        // k = 1024 (32 KiB) stay in L1 while every row block of the task streams over them.
        Isa::Avx512Vnni => (8, 2),
        Isa::AvxVnni => (4, 1),
        Isa::Avx2 => (2, 1),
        Isa::Scalar => (4, 1),
    }
}

/// The largest row count of a register tile, for the epilogue's stack buffer.
const MR_MAX: usize = 8;
/// The largest column count of a task's tile.
const COLS_MAX: usize = 4 * NB;

fn gemm_impl(isa: Isa, m: usize, a: &[u8], lda: usize, b: &PackedI8, sink: Sink) -> Result<()> {
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
    let (mr, np) = tile_shape(isa);
    debug_assert!(mr <= MR_MAX && np * NB <= COLS_MAX);
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
    let task = move |t: usize| {
        let (rb, g) = (t / ngroups, t % ngroups);
        let r0 = rb * rows_per;
        let r1 = (r0 + rows_per).min(m);
        let j0 = g * group;
        let cols = (n - j0).min(group);
        let panels = cols.div_ceil(NB);
        // SAFETY: bounds were checked above; tasks write disjoint (rows, columns) tiles of the
        // output; the ISA was checked available.
        unsafe { run_tile(isa, mr, r0, r1, j0, cols, panels, a, lda, b, sink) };
    };
    crate::backend::cpu::threads::par_claim(ntasks, threads, task);
    Ok(())
}

/// Rows `r0..r1`, columns `j0..j0+cols` (starting at a panel boundary) of the output.
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
    sink: Sink,
) {
    let k = b.k;
    let k4 = b.k4;
    let bp = b.data.as_ptr().add((j0 / NB) * k4 * NB * 4);
    let mut scratch = [0i32; MR_MAX * COLS_MAX];
    let mut i = r0;
    while i < r1 {
        let rows = (r1 - i).min(mr);
        let ap = a.as_ptr().add(i * lda);
        let (cp, ldc) = match sink {
            Sink::I32 { c, ldc } => (c.add(i * ldc + j0), ldc),
            Sink::F32 { .. } => (scratch.as_mut_ptr(), COLS_MAX),
        };
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
        if let Sink::F32 {
            y,
            ldy,
            corr,
            mult,
            bias,
        } = sink
        {
            let corr = std::slice::from_raw_parts(corr.add(j0), cols);
            let mult = std::slice::from_raw_parts(mult.add(j0), cols);
            let bias = (!bias.is_null()).then(|| std::slice::from_raw_parts(bias.add(j0), cols));
            for r in 0..rows {
                let src = &scratch[r * COLS_MAX..r * COLS_MAX + cols];
                let dst = std::slice::from_raw_parts_mut(y.add((i + r) * ldy + j0), cols);
                dequant_row(isa, src, corr, mult, bias, dst);
            }
        }
        i += rows;
    }
}

/// `dst[j] = (src[j] − corr[j]) · mult[j] + bias[j]`, vectorized for the kernel's ISA.
#[inline]
fn dequant_row(
    isa: Isa,
    src: &[i32],
    corr: &[i32],
    mult: &[f32],
    bias: Option<&[f32]>,
    dst: &mut [f32],
) {
    #[inline(always)]
    fn body(src: &[i32], corr: &[i32], mult: &[f32], bias: Option<&[f32]>, dst: &mut [f32]) {
        let n = dst.len();
        let (src, corr, mult) = (&src[..n], &corr[..n], &mult[..n]);
        match bias {
            Some(bias) => {
                let bias = &bias[..n];
                for j in 0..n {
                    dst[j] = (src[j] - corr[j]) as f32 * mult[j] + bias[j];
                }
            }
            None => {
                for j in 0..n {
                    dst[j] = (src[j] - corr[j]) as f32 * mult[j];
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide(s: &[i32], c: &[i32], m: &[f32], b: Option<&[f32]>, d: &mut [f32]) {
            body(s, c, m, b, d)
        }
        #[target_feature(enable = "avx2")]
        unsafe fn mid(s: &[i32], c: &[i32], m: &[f32], b: Option<&[f32]>, d: &mut [f32]) {
            body(s, c, m, b, d)
        }
        match isa {
            // SAFETY: these kernels only run where the CPU has the features (checked by
            // `Isa::available` before any tile runs).
            Isa::Avx512Vnni => return unsafe { wide(src, corr, mult, bias, dst) },
            Isa::AvxVnni | Isa::Avx2 => return unsafe { mid(src, corr, mult, bias, dst) },
            Isa::Scalar => {}
        }
    }
    let _ = isa;
    body(src, corr, mult, bias, dst)
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
        go!(1, 2, 3, 4, 5, 6, 7, 8; 1, 2)
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

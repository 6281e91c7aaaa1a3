//! Block-quantised weights (GGUF's Q8_0, Q4_0 and Q4_1: 32 weights per block with their own
//! scale) and the product `x Wᵀ` computed from the blocks, for inference on small batches
//! (token-by-token decoding), where reading the weights dominates: a Q4 weight is 5 bits
//! instead of 32.
//!
//! A [`Linear`](crate::nn::Linear) whose `packed` field holds a [`BlockQuantWeight`] made
//! from its own weight uses it for inputs of at most [`BlockQuantWeight::MAX_ROWS`] rows when
//! no gradient is needed; anything else (training, long prompts, a weight changed since it
//! was packed) takes the float32 path. The GGUF loader packs Llama models this way.
//!
//! Layout: the 4-bit codes of a block stay packed as in GGUF (byte `j` holds weight `j` in its
//! low nibble and weight `j + 16` in its high one); the f16 scales are widened to f32 once, and
//! a Q4_0 block (`d·(q − 8)`) is stored as `d·q + m` with `m = −8d`, which is exact, so both
//! 4-bit types share one kernel. Every weight equals its GGUF dequantised value exactly; only
//! the order of the float additions differs from a float32 matmul.

use crate::backend::cpu::threads;
use crate::models::gguf::{GgmlType, QK};
use crate::{Error, Result, Tensor};
use half::f16;

/// Weights (n·k) from which a product is split across threads (below it, waking the pool
/// costs more than the product: measured ~80 µs against ~100 µs for a 1536×576 Q4 matrix).
const PAR_WEIGHTS: usize = 1 << 22;

#[derive(Debug, Clone)]
enum Codes {
    /// 16 bytes per block.
    Q4 { qs: Vec<u8>, min: Vec<f32> },
    /// 32 signed bytes per block.
    Q8 { qs: Vec<i8> },
}

/// A weight matrix `[n, k]` in blocks of 32 along `k` (see the module docs).
#[derive(Debug, Clone)]
pub struct BlockQuantWeight {
    ty: GgmlType,
    n: usize,
    k: usize,
    scale: Vec<f32>,
    codes: Codes,
    /// The float32 weight this was packed from (kept alive, so its address is not reused).
    source: Option<(Tensor, u64)>,
}

impl BlockQuantWeight {
    /// Inputs with more rows than this take the float32 path.
    pub const MAX_ROWS: usize = 8;

    /// Reads a `[n, k]` matrix of GGUF blocks (`k` a multiple of 32).
    pub fn from_gguf(ty: GgmlType, n: usize, k: usize, bytes: &[u8]) -> Result<BlockQuantWeight> {
        let bad = |msg: String| Error::value("BlockQuantWeight", msg);
        if !k.is_multiple_of(QK) {
            return Err(bad(format!("k = {k} is not a multiple of {QK}")));
        }
        let nb = n * k / QK;
        let bsize = match ty {
            GgmlType::Q8_0 => 34,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            other => {
                return Err(bad(format!(
                    "type {} is not block-quantised (Q8_0, Q4_0, Q4_1)",
                    other.name()
                )))
            }
        };
        if bytes.len() != nb * bsize {
            return Err(bad(format!(
                "{} bytes for {nb} blocks of {bsize}",
                bytes.len()
            )));
        }
        let h = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
        let mut scale = crate::memory::try_alloc::<f32>("BlockQuantWeight", nb)?;
        let codes = match ty {
            GgmlType::Q8_0 => {
                let mut qs = crate::memory::try_alloc::<i8>("BlockQuantWeight", nb * QK)?;
                for b in bytes.chunks_exact(34) {
                    scale.push(h(b));
                    qs.extend(b[2..].iter().map(|&q| q as i8));
                }
                Codes::Q8 { qs }
            }
            _ => {
                let mut qs = crate::memory::try_alloc::<u8>("BlockQuantWeight", nb * QK / 2)?;
                let mut min = crate::memory::try_alloc::<f32>("BlockQuantWeight", nb)?;
                for b in bytes.chunks_exact(bsize) {
                    let d = h(b);
                    scale.push(d);
                    if ty == GgmlType::Q4_1 {
                        min.push(h(&b[2..]));
                        qs.extend_from_slice(&b[4..20]);
                    } else {
                        min.push(-8.0 * d);
                        qs.extend_from_slice(&b[2..18]);
                    }
                }
                Codes::Q4 { qs, min }
            }
        };
        Ok(BlockQuantWeight {
            ty,
            n,
            k,
            scale,
            codes,
            source: None,
        })
    }

    /// Ties this packing to the float32 `weight` it equals: [`Self::forward`] declines once
    /// that tensor is written in place, and a different tensor is never matched.
    pub fn tied_to(mut self, weight: &Tensor) -> Result<BlockQuantWeight> {
        if weight.shape() != [self.n, self.k] {
            return Err(Error::shape(
                "BlockQuantWeight",
                format!(
                    "weight {:?} is not [{}, {}]",
                    weight.shape(),
                    self.n,
                    self.k
                ),
            ));
        }
        self.source = Some((weight.clone(), weight.version()));
        Ok(self)
    }

    /// The GGML type the blocks came from.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }
    /// `(n, k)`: output and input features.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }
    /// Bytes the packed weight takes.
    pub fn nbytes(&self) -> usize {
        self.scale.len() * 4
            + match &self.codes {
                Codes::Q4 { qs, min } => qs.len() + min.len() * 4,
                Codes::Q8 { qs } => qs.len(),
            }
    }

    /// The weight as float32 `[n, k]` (equal to GGUF's dequantisation).
    pub fn dequantize(&self) -> Result<Tensor> {
        let mut w = crate::memory::try_alloc::<f32>("BlockQuantWeight", self.n * self.k)?;
        for (b, &d) in self.scale.iter().enumerate() {
            match &self.codes {
                Codes::Q8 { qs } => {
                    w.extend(qs[b * QK..(b + 1) * QK].iter().map(|&q| d * q as f32))
                }
                Codes::Q4 { qs, min } => {
                    let q = &qs[b * 16..b * 16 + 16];
                    let m = min[b];
                    w.extend(q.iter().map(|&v| (v & 15) as f32 * d + m));
                    w.extend(q.iter().map(|&v| (v >> 4) as f32 * d + m));
                }
            }
        }
        Tensor::from_vec(w, &[self.n, self.k])
    }

    /// `out[i, j] = Σ_k x[i, k]·W[j, k]` for `x` `[m, k]` (row-major) into `out` `[m, n]`.
    pub fn matmul_into(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        let (n, k) = (self.n, self.k);
        if x.len() != m * k || out.len() != m * n {
            return Err(Error::shape(
                "BlockQuantWeight::matmul",
                format!(
                    "x has {} values for [{m}, {k}], out {} for [{m}, {n}]",
                    x.len(),
                    out.len()
                ),
            ));
        }
        let nb = k / QK;
        // Per-block sums of x (for the Q4 minimum term).
        let xsum: Vec<f32> = match self.codes {
            Codes::Q4 { .. } => x.chunks_exact(QK).map(|c| c.iter().sum()).collect(),
            Codes::Q8 { .. } => Vec::new(),
        };
        // Rows of W in chunks (across threads for large matrices only: waking the pool
        // costs more than a small product); each chunk fills out transposed ([n, m]:
        // contiguous per output feature), which for m = 1 is `out` itself.
        let kern = kernels();
        let par = n * k >= PAR_WEIGHTS && threads::get_num_threads() > 1;
        let rows_per = if par {
            n.div_ceil(threads::get_num_threads()).max(16)
        } else {
            n.max(1)
        };
        let work = |(c, chunk): (usize, &mut [f32])| {
            for (r, o) in chunk.chunks_exact_mut(m).enumerate() {
                let j = c * rows_per + r;
                let sc = &self.scale[j * nb..(j + 1) * nb];
                match &self.codes {
                    Codes::Q4 { qs, min } => (kern.q4)(
                        &qs[j * nb * 16..(j + 1) * nb * 16],
                        sc,
                        &min[j * nb..(j + 1) * nb],
                        x,
                        &xsum,
                        k,
                        o,
                    ),
                    Codes::Q8 { qs } => (kern.q8)(&qs[j * k..(j + 1) * k], sc, x, k, o),
                }
            }
        };
        let run = |dst: &mut [f32]| {
            if par {
                // the caller takes the first chunk (threads::par_chunks), one worker per
                // other chunk is woken
                threads::par_chunks(dst, rows_per * m, |c, chunk| work((c, chunk)));
            } else {
                dst.chunks_mut(rows_per * m).enumerate().for_each(work);
            }
        };
        if m == 1 {
            run(out);
        } else {
            let mut out_t = crate::memory::try_full("BlockQuantWeight::matmul", n * m, 0f32)?;
            run(&mut out_t);
            for j in 0..n {
                for i in 0..m {
                    out[i * n + j] = out_t[j * m + i];
                }
            }
        }
        Ok(())
    }

    /// `x Wᵀ + bias` through the blocks when that is valid and worthwhile: `weight` is the
    /// tensor this was tied to and unchanged since, `x` is float32 `[..., k]` with at most
    /// [`Self::MAX_ROWS`] rows, and no gradient is needed. `Ok(None)` otherwise.
    pub fn forward(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        x: &Tensor,
    ) -> Result<Option<Tensor>> {
        let Some((src, version)) = &self.source else {
            return Ok(None);
        };
        let k = self.k;
        if src.data_ptr() != weight.data_ptr()
            || weight.version() != *version
            || weight.shape() != src.shape()
            || x.dtype() != crate::DType::F32
            || x.device() != crate::Device::Cpu
            || x.rank() == 0
            || x.shape()[x.rank() - 1] != k
            || (crate::autograd::is_grad_enabled()
                && (x.requires_grad()
                    || weight.requires_grad()
                    || bias.is_some_and(|b| b.requires_grad())))
        {
            return Ok(None);
        }
        let m = x.numel() / k.max(1);
        if m == 0 || m > Self::MAX_ROWS {
            return Ok(None);
        }
        let xv = x.to_vec::<f32>()?;
        let mut out = crate::memory::try_full("BlockQuantWeight::forward", m * self.n, 0f32)?;
        self.matmul_into(&xv, m, &mut out)?;
        if let Some(b) = bias {
            let bv = b.to_dtype(crate::DType::F32)?.to_vec::<f32>()?;
            if bv.len() == self.n {
                for row in out.chunks_exact_mut(self.n) {
                    row.iter_mut().zip(&bv).for_each(|(o, b)| *o += b);
                }
            } else {
                return Ok(None);
            }
        }
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank checked") = self.n;
        Ok(Some(Tensor::from_vec(out, &shape)?))
    }
}

/// `a·b + c`, fused where the kernel is compiled with FMA (Rust never contracts by itself).
#[inline(always)]
fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// One output feature of a Q4 row against every row of `x`: `o[i] = Σ_b d_b·Σ_j q·x + m_b·Σx`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dot_q4<const FMA: bool>(
    qs: &[u8],
    d: &[f32],
    min: &[f32],
    x: &[f32],
    xsum: &[f32],
    k: usize,
    o: &mut [f32],
) {
    let nb = d.len();
    for (i, oi) in o.iter_mut().enumerate() {
        let xr = &x[i * k..(i + 1) * k];
        let mut acc = [0f32; 16];
        for ((q, xb), &db) in qs.chunks_exact(16).zip(xr.chunks_exact(QK)).zip(d) {
            let q: &[u8; 16] = q.try_into().expect("block");
            let xb: &[f32; QK] = xb.try_into().expect("block");
            for j in 0..16 {
                let t = fmadd::<FMA>((q[j] >> 4) as f32, xb[16 + j], (q[j] & 15) as f32 * xb[j]);
                acc[j] = fmadd::<FMA>(db, t, acc[j]);
            }
        }
        let xs = &xsum[i * nb..(i + 1) * nb];
        let mut ms = [0f32; 16];
        let full = nb / 16 * 16;
        for (mc, xc) in min[..full]
            .chunks_exact(16)
            .zip(xs[..full].chunks_exact(16))
        {
            for j in 0..16 {
                ms[j] = fmadd::<FMA>(mc[j], xc[j], ms[j]);
            }
        }
        let mut s: f32 = acc.iter().sum::<f32>() + ms.iter().sum::<f32>();
        for (mv, xv) in min[full..].iter().zip(&xs[full..]) {
            s = fmadd::<FMA>(*mv, *xv, s);
        }
        *oi = s;
    }
}

/// One output feature of a Q8_0 row against every row of `x`.
#[inline(always)]
fn dot_q8<const FMA: bool>(qs: &[i8], d: &[f32], x: &[f32], k: usize, o: &mut [f32]) {
    for (i, oi) in o.iter_mut().enumerate() {
        let xr = &x[i * k..(i + 1) * k];
        let mut acc = [0f32; QK];
        for ((q, xb), &db) in qs.chunks_exact(QK).zip(xr.chunks_exact(QK)).zip(d) {
            let q: &[i8; QK] = q.try_into().expect("block");
            let xb: &[f32; QK] = xb.try_into().expect("block");
            for j in 0..QK {
                acc[j] = fmadd::<FMA>(db, q[j] as f32 * xb[j], acc[j]);
            }
        }
        *oi = acc.iter().sum();
    }
}

type Q4Fn = fn(&[u8], &[f32], &[f32], &[f32], &[f32], usize, &mut [f32]);
type Q8Fn = fn(&[i8], &[f32], &[f32], usize, &mut [f32]);

/// The row kernels compiled for the widest vector ISA this CPU has (the loops above are
/// written to vectorise; these wrappers give them the target features).
struct Kernels {
    q4: Q4Fn,
    q8: Q8Fn,
}

macro_rules! kernel_set {
    ($feat:literal, $modname:ident) => {
        #[cfg(target_arch = "x86_64")]
        mod $modname {
            use super::{dot_q4, dot_q8};
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn q4(
                qs: &[u8],
                d: &[f32],
                min: &[f32],
                x: &[f32],
                xsum: &[f32],
                k: usize,
                o: &mut [f32],
            ) {
                dot_q4::<true>(qs, d, min, x, xsum, k, o)
            }
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn q8(qs: &[i8], d: &[f32], x: &[f32], k: usize, o: &mut [f32]) {
                dot_q8::<true>(qs, d, x, k, o)
            }
        }
    };
}
kernel_set!("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma", x86_avx512);
kernel_set!("avx2,fma", x86_avx2);

fn kernels() -> Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY (both): the CPU has the features the wrappers enable.
            return Kernels {
                q4: |a, b, c, d, e, f, g| unsafe { x86_avx512::q4(a, b, c, d, e, f, g) },
                q8: |a, b, c, d, e| unsafe { x86_avx512::q8(a, b, c, d, e) },
            };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY (both): the CPU has the features the wrappers enable.
            return Kernels {
                q4: |a, b, c, d, e, f, g| unsafe { x86_avx2::q4(a, b, c, d, e, f, g) },
                q8: |a, b, c, d, e| unsafe { x86_avx2::q8(a, b, c, d, e) },
            };
        }
    }
    Kernels {
        q4: dot_q4::<false>,
        q8: dot_q8::<false>,
    }
}

//! Matrix products through the `gemm` crate. Transposed and broadcast operands are passed as
//! strides, never copied.

use super::strided::{alloc_with, zeroed};
use super::threads;
use crate::tensor::{CpuStorage, Layout};
use crate::{Error, Result};
use gemm::Parallelism;
use half::{bf16, f16};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// `C[m,n] (+)= A[m,k] @ B[k,n]` through the `gemm` crate, every matrix given by a pointer
/// and (row, column) strides in elements; `C` has unit column stride. The one place the CPU
/// backend calls `gemm` (matmul, conv, the LSTM layer).
///
/// # Safety
/// The pointers must address m x n, m x k and k x n matrices with those strides, and no other
/// thread may touch the written part of `c` meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_strided<T: Copy + Send + Sync + 'static>(
    (m, n, k): (usize, usize, usize),
    (c, crs): (*mut T, usize),
    (a, ars, acs): (*const T, isize, isize),
    (b, brs, bcs): (*const T, isize, isize),
    accumulate: bool,
    (zero, one): (T, T),
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && ars >= 0
        && bcs >= 0
        && super::gemm_nt::applies(m, n, k, acs, brs)
    {
        let threads = match par {
            Parallelism::Rayon(t) => t.max(1),
            _ => 1,
        };
        // SAFETY: T is f32; the strides address the same matrices (A's rows `ars` apart,
        // B's columns — the rows of Bᵀ — `bcs` apart, both contiguous along k).
        super::gemm_nt::gemm_nt(
            (m, n, k),
            (c as *mut f32, crs),
            (a as *const f32, ars as usize),
            (b as *const f32, bcs as usize),
            accumulate,
            threads,
        );
        return;
    }
    if let Parallelism::Rayon(t) = par {
        if t > 1 {
            split_blocks(
                (m, n, k),
                (c, crs),
                (a, ars, acs),
                (b, brs, bcs),
                accumulate,
                (zero, one),
                t,
            );
            return;
        }
    }
    let beta = if accumulate { one } else { zero };
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        crs as isize,
        accumulate,
        a,
        acs,
        ars,
        b,
        bcs,
        brs,
        beta,
        one,
        false,
        false,
        false,
        par,
    )
}

/// Rows (or columns) of `C` each thread takes at least: the kernel's register tile is a
/// multiple of 16 rows, and thinner slices spend more on packing than they save.
const MIN_SLICE: usize = 32;

/// `gemm_strided` over `t` threads of the pool: `C` is cut into `t` slices along its longer
/// side, each computed by one single-threaded `gemm` call. The `gemm` crate's own threading
/// splits poorly when `C` is wide and short, as a `Linear` layer's is: on 2 vCPUs (medians
/// of 5), `[64, 1024] @ W^T` with W `[1024, 1024]` takes 1797 µs with it and 988 µs cut
/// into column halves; `[256, 784] @ [784, 1024]^T` 2107 vs 1596 µs; tall products are even.
///
/// # Safety
/// As `gemm_strided`.
#[allow(clippy::too_many_arguments)]
unsafe fn split_blocks<T: Copy + Send + Sync + 'static>(
    (m, n, k): (usize, usize, usize),
    (c, crs): (*mut T, usize),
    (a, ars, acs): (*const T, isize, isize),
    (b, brs, bcs): (*const T, isize, isize),
    accumulate: bool,
    (zero, one): (T, T),
    t: usize,
) {
    let by_rows = m >= n;
    let len = if by_rows { m } else { n };
    let parts = t.min(len / MIN_SLICE).max(1);
    let step = len.div_ceil(parts).next_multiple_of(16);
    let (cp, ap, bp) = (c as usize, a as usize, b as usize);
    let slice = |i: usize| {
        let lo = i * step;
        let hi = ((i + 1) * step).min(len);
        if lo >= hi {
            return;
        }
        let (c, a, b) = (cp as *mut T, ap as *const T, bp as *const T);
        // SAFETY: each slice writes its own rows (columns) of `C`; the operands are read only.
        unsafe {
            if by_rows {
                gemm_strided(
                    (hi - lo, n, k),
                    (c.add(lo * crs), crs),
                    (a.offset(lo as isize * ars), ars, acs),
                    (b, brs, bcs),
                    accumulate,
                    (zero, one),
                    Parallelism::None,
                )
            } else {
                gemm_strided(
                    (m, hi - lo, k),
                    (c.add(lo), crs),
                    (a, ars, acs),
                    (b.offset(lo as isize * bcs), brs, bcs),
                    accumulate,
                    (zero, one),
                    Parallelism::None,
                )
            }
        }
    };
    // The calling thread computes one slice itself instead of sleeping in `install` while
    // both pool threads wake.
    threads::par_for(parts, slice);
}

/// `m * n * k` from which one product is split over the pool's threads. Below it the hop to
/// the pool and the split cost more than they save: measured on a 2-vCPU AVX-512 VM (medians
/// of 7), 128³ takes 25 µs on the calling thread and 57 µs split over two threads; 192³
/// takes 82 µs and 57 µs.
const PAR_MNK: usize = 1 << 22;

/// Offsets of every batch entry for a layout whose last two dims are the matrix.
fn batch_offsets(l: &Layout) -> Vec<usize> {
    let r = l.rank();
    let bshape = &l.shape[..r - 2];
    let bstr = &l.strides[..r - 2];
    let nb: usize = bshape.iter().product();
    let mut out = Vec::with_capacity(nb);
    let mut idx = vec![0usize; bshape.len()];
    for _ in 0..nb {
        out.push(l.offset + idx.iter().zip(bstr).map(|(i, s)| i * s).sum::<usize>());
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < bshape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

struct Mat {
    rs: isize,
    cs: isize,
}

fn strides(l: &Layout) -> Mat {
    let r = l.rank();
    Mat {
        rs: l.strides[r - 2] as isize,
        cs: l.strides[r - 1] as isize,
    }
}

/// `C = A @ B` for batched A [..., n, k] and B [..., k, m] with equal batch shapes.
fn run<T: Copy + Send + Sync + 'static + Default>(
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    zero: T,
    one: T,
) -> Vec<T> {
    let r = la.rank();
    let (n, k, m) = (la.shape[r - 2], la.shape[r - 1], lb.shape[r - 1]);
    let oa = batch_offsets(la);
    let ob = batch_offsets(lb);
    let nb = oa.len();
    let (sa, sb) = (strides(la), strides(lb));
    if n == 0 || m == 0 || k == 0 {
        return zeroed(nb * n * m, T::default());
    }
    let nt = threads::get_num_threads();
    let flops = 2 * n * m * k;
    let ap = a.as_ptr() as usize;
    let bp = b.as_ptr() as usize;
    let one_mat = |dst: &mut [MaybeUninit<T>], i: usize, par: Parallelism| {
        // SAFETY: offsets and strides come from valid layouts over `a` and `b`; `dst` is a
        // dense n x m block that gemm overwrites entirely (k > 0, destination not read).
        unsafe {
            gemm_strided(
                (n, m, k),
                (dst.as_mut_ptr() as *mut T, m),
                ((ap as *const T).add(oa[i]), sa.rs, sa.cs),
                ((bp as *const T).add(ob[i]), sb.rs, sb.cs),
                false,
                (zero, one),
                par,
            )
        }
    };
    alloc_with(nb * n * m, |out| {
        // Small products run on the calling thread: handing them to the pool costs more
        // (a thread hop of several microseconds) than the product itself.
        if nt > 1 && nb > 1 && flops < (1 << 22) && nb * flops >= (1 << 18) {
            threads::pool().install(|| {
                out.par_chunks_mut(n * m)
                    .enumerate()
                    .for_each(|(i, d)| one_mat(d, i, Parallelism::None))
            });
        } else if nt > 1 && n * m * k >= PAR_MNK {
            for (i, d) in out.chunks_mut(n * m).enumerate() {
                one_mat(d, i, Parallelism::Rayon(nt));
            }
        } else {
            for (i, d) in out.chunks_mut(n * m).enumerate() {
                one_mat(d, i, Parallelism::None);
            }
        }
    })
}

/// Batched matmul over storages of one float dtype.
pub fn matmul(a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
    use CpuStorage as S;
    Ok(match (a, b) {
        (S::F32(x), S::F32(y)) => S::F32(run(x, la, y, lb, 0.0f32, 1.0f32).into()),
        (S::F64(x), S::F64(y)) => S::F64(run(x, la, y, lb, 0.0f64, 1.0f64).into()),
        (S::F16(x), S::F16(y)) => S::F16(run(x, la, y, lb, f16::ZERO, f16::ONE).into()),
        (S::BF16(_), S::BF16(_)) => {
            let x = super::elementwise::cast(a, la, crate::DType::F32);
            let y = super::elementwise::cast(b, lb, crate::DType::F32);
            let r = matmul(
                &x,
                &Layout::contiguous(&la.shape),
                &y,
                &Layout::contiguous(&lb.shape),
            )?;
            let S::F32(r) = r else { unreachable!() };
            S::BF16(r.iter().map(|&x| bf16::from_f32(x)).collect())
        }
        _ => {
            return Err(Error::dtype(
                "matmul",
                format!(
                    "expected floating-point operands of one dtype, got {} and {}",
                    a.dtype(),
                    b.dtype()
                ),
            ))
        }
    })
}

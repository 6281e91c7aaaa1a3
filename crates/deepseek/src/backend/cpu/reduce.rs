//! Reductions over any set of dims, cumulative sums.

use super::elementwise::cast;
use super::strided::{alloc_with, par_rows, to_contiguous};
use super::threads::simd;
use crate::ops::ReduceOp;
use crate::tensor::{CpuStorage, Element, Layout};
use crate::{with_storage, DType, Error, Result};

/// How the reduced elements sit: `outer x r x inner` over a contiguous buffer.
struct Plan {
    data_offset: usize,
    outer: usize,
    r: usize,
    inner: usize,
}

/// Brings the input into `outer x r x inner` form, copying only when needed.
fn plan<T: Copy + Send + Sync>(v: &[T], l: &Layout, dims: &[usize]) -> (Option<Vec<T>>, Plan) {
    let rank = l.rank();
    let r: usize = dims.iter().map(|&d| l.shape[d]).product();
    let n = l.numel();
    let outer_total = if r == 0 { 0 } else { n / r.max(1) };
    if l.is_contiguous() {
        let mut ds = dims.to_vec();
        ds.sort();
        let block = ds.windows(2).all(|w| w[1] == w[0] + 1);
        if block && !ds.is_empty() {
            let (a, b) = (ds[0], ds[ds.len() - 1] + 1);
            let outer: usize = l.shape[..a].iter().product();
            let inner: usize = l.shape[b..].iter().product();
            return (
                None,
                Plan {
                    data_offset: l.offset,
                    outer,
                    r,
                    inner,
                },
            );
        }
    }
    let kept: Vec<usize> = (0..rank).filter(|d| !dims.contains(d)).collect();
    let perm: Vec<usize> = kept.iter().chain(dims.iter()).copied().collect();
    let pl = l.permute(&perm);
    let c = to_contiguous(v, &pl.shape, &pl.strides, pl.offset);
    (
        Some(c),
        Plan {
            data_offset: 0,
            outer: outer_total,
            r,
            inner: 1,
        },
    )
}

fn reduce_typed<T: Element, A: Copy + Send + Sync>(
    v: &[T],
    l: &Layout,
    dims: &[usize],
    init: A,
    step: impl Fn(A, T) -> A + Sync + Send + Copy,
    combine: impl Fn(A, A) -> A + Sync + Send + Copy,
) -> Vec<A> {
    let (copy, p) = plan(v, l, dims);
    let data: &[T] = copy.as_deref().unwrap_or(v);
    let data = &data[p.data_offset..];
    let nout = p.outer * p.inner;
    alloc_with(nout, |out| {
        if nout == 0 {
            return;
        }
        if p.inner == 1 {
            // Each output reduces one contiguous run of r elements; 16 accumulators vectorise.
            par_rows(out, 1, p.outer, |chunk, r0| {
                for (i, o) in chunk.iter_mut().enumerate() {
                    let row = &data[(r0 + i) * p.r..(r0 + i + 1) * p.r];
                    let acc = simd(
                        #[inline(always)]
                        || {
                            let mut lanes = [init; 16];
                            let mut it = row.chunks_exact(16);
                            for c in &mut it {
                                for k in 0..16 {
                                    lanes[k] = step(lanes[k], c[k]);
                                }
                            }
                            let mut acc = init;
                            for &x in it.remainder() {
                                acc = step(acc, x);
                            }
                            for l in lanes {
                                acc = combine(acc, l);
                            }
                            acc
                        },
                    );
                    o.write(acc);
                }
            });
        } else if p.outer < super::threads::get_num_threads()
            && p.outer * p.r * p.inner >= super::threads::PAR_THRESHOLD
        {
            // Few outer blocks (a bias gradient's `sum(0)`): split each block's columns
            // between the threads instead, every thread summing all r rows of its columns.
            let threads = super::threads::get_num_threads();
            let per = p.inner.div_ceil(threads).next_multiple_of(16);
            for (o, block) in out.chunks_mut(p.inner).enumerate() {
                super::threads::par_chunks(block, per, |ci, cols| {
                    let c0 = ci * per;
                    let mut acc = vec![init; cols.len()];
                    simd(
                        #[inline(always)]
                        || {
                            for j in 0..p.r {
                                let at = (o * p.r + j) * p.inner + c0;
                                for (a, &x) in acc.iter_mut().zip(&data[at..at + cols.len()]) {
                                    *a = step(*a, x);
                                }
                            }
                        },
                    );
                    for (d, a) in cols.iter_mut().zip(acc) {
                        d.write(a);
                    }
                });
            }
        } else {
            // Columns: accumulate r rows of `inner` elements into each outer block.
            par_rows(out, p.inner, p.outer, |chunk, r0| {
                for (bi, block) in chunk.chunks_mut(p.inner).enumerate() {
                    let o = r0 + bi;
                    let mut acc = vec![init; p.inner];
                    simd(
                        #[inline(always)]
                        || {
                            for j in 0..p.r {
                                let row =
                                    &data[(o * p.r + j) * p.inner..(o * p.r + j + 1) * p.inner];
                                for (a, &x) in acc.iter_mut().zip(row) {
                                    *a = step(*a, x);
                                }
                            }
                        },
                    );
                    for (d, a) in block.iter_mut().zip(acc) {
                        d.write(a);
                    }
                }
            });
        }
    })
}

fn arg_typed<T: Element>(v: &[T], l: &Layout, dims: &[usize], is_max: bool) -> Vec<i64> {
    let (copy, p) = plan(v, l, dims);
    let data: &[T] = copy.as_deref().unwrap_or(v);
    let data = &data[p.data_offset..];
    let mut out = vec![0i64; p.outer * p.inner];
    for o in 0..p.outer {
        for i in 0..p.inner {
            let mut best = data[o * p.r * p.inner + i];
            let mut bi = 0usize;
            for j in 1..p.r {
                let x = data[(o * p.r + j) * p.inner + i];
                #[allow(clippy::eq_op)]
                let nan_best = best != best;
                #[allow(clippy::eq_op)]
                let better = !nan_best && (x != x || if is_max { x > best } else { x < best });
                if better {
                    best = x;
                    bi = j;
                }
            }
            out[o * p.inner + i] = bi as i64;
        }
    }
    out
}

#[allow(clippy::bool_comparison)]
/// Reduces `dims` of a layout; the result is contiguous with the reduced dims removed.
pub fn reduce(op: ReduceOp, s: &CpuStorage, l: &Layout, dims: &[usize]) -> Result<CpuStorage> {
    use ReduceOp::*;
    let dt = s.dtype();
    if matches!(dt, DType::F16 | DType::BF16) && !matches!(op, ArgMax | ArgMin) {
        let f = cast(s, l, DType::F32);
        let r = reduce(op, &f, &Layout::contiguous(&l.shape), dims)?;
        return Ok(cast(&r, &Layout::contiguous(&[r.len()]), dt));
    }
    let r: usize = dims.iter().map(|&d| l.shape[d]).product();
    if r == 0 && matches!(op, Max | Min | ArgMax | ArgMin) {
        return Err(Error::value(
            op.name(),
            format!(
                "cannot reduce over an empty dimension (shape {:?})",
                l.shape
            ),
        ));
    }
    Ok(match s {
        CpuStorage::F32(v) => float_reduce(op, v, l, dims, r),
        CpuStorage::F64(v) => float_reduce(op, v, l, dims, r),
        _ => with_storage!(s, |v: T| {
            match op {
                Sum => CpuStorage::I64(
                    reduce_typed(
                        v,
                        l,
                        dims,
                        0i64,
                        |a, x: T| a + x.to_f64() as i64,
                        |a, b| a + b,
                    )
                    .into(),
                ),
                Prod => CpuStorage::I64(
                    reduce_typed(
                        v,
                        l,
                        dims,
                        1i64,
                        |a, x: T| a * x.to_f64() as i64,
                        |a, b| a * b,
                    )
                    .into(),
                ),
                Max => T::into_storage(reduce_typed(
                    v,
                    l,
                    dims,
                    v_first(v, l),
                    |a: T, x: T| if x > a { x } else { a },
                    |a, b| if b > a { b } else { a },
                )),
                Min => T::into_storage(reduce_typed(
                    v,
                    l,
                    dims,
                    v_first(v, l),
                    |a: T, x: T| if x < a { x } else { a },
                    |a, b| if b < a { b } else { a },
                )),
                ArgMax => CpuStorage::I64(arg_typed(v, l, dims, true).into()),
                ArgMin => CpuStorage::I64(arg_typed(v, l, dims, false).into()),
                Mean => {
                    return Err(Error::dtype(
                        "mean",
                        format!("mean needs a floating-point input, got {}", T::DTYPE),
                    ))
                }
            }
        }),
    })
}

fn v_first<T: Element>(v: &[T], l: &Layout) -> T {
    if l.numel() == 0 {
        T::default()
    } else {
        v[l.offset]
    }
}

/// The running maximum of a reduction: NaN wins (PyTorch's `amax`); shared by the eager
/// kernel and the fused reductions of `crate::lazy`.
#[inline(always)]
pub(crate) fn nan_max<T: num_traits::Float>(a: T, x: T) -> T {
    if x > a || x.is_nan() || a.is_nan() {
        if a.is_nan() {
            a
        } else {
            x
        }
    } else {
        a
    }
}

/// The running minimum of a reduction: NaN wins.
#[inline(always)]
pub(crate) fn nan_min<T: num_traits::Float>(a: T, x: T) -> T {
    if x < a || x.is_nan() || a.is_nan() {
        if a.is_nan() {
            a
        } else {
            x
        }
    } else {
        a
    }
}

fn float_reduce<T: super::math::Float>(
    op: ReduceOp,
    v: &[T],
    l: &Layout,
    dims: &[usize],
    r: usize,
) -> CpuStorage {
    use ReduceOp::*;
    let (nan_max, nan_min) = (nan_max::<T>, nan_min::<T>);
    match op {
        Sum => T::into_storage(reduce_typed(
            v,
            l,
            dims,
            T::zero(),
            |a, x| a + x,
            |a, b| a + b,
        )),
        Mean => {
            let s = reduce_typed(v, l, dims, T::zero(), |a, x| a + x, |a, b| a + b);
            let k = T::c(1.0 / r as f64);
            T::into_storage(s.into_iter().map(|x| x * k).collect())
        }
        Prod => T::into_storage(reduce_typed(
            v,
            l,
            dims,
            T::one(),
            |a, x| a * x,
            |a, b| a * b,
        )),
        Max => T::into_storage(reduce_typed(
            v,
            l,
            dims,
            T::neg_infinity(),
            nan_max,
            nan_max,
        )),
        Min => T::into_storage(reduce_typed(v, l, dims, T::infinity(), nan_min, nan_min)),
        ArgMax => CpuStorage::I64(arg_typed(v, l, dims, true).into()),
        ArgMin => CpuStorage::I64(arg_typed(v, l, dims, false).into()),
    }
}

/// Inclusive prefix sum along `dim` (ints accumulate in i64).
pub fn cumsum(s: &CpuStorage, l: &Layout, dim: usize) -> CpuStorage {
    let rank = l.rank();
    let mut perm: Vec<usize> = (0..rank).filter(|&d| d != dim).collect();
    perm.push(dim);
    let pl = l.permute(&perm);
    let n = l.shape[dim];
    let back: Vec<usize> = {
        let mut inv = vec![0; rank];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        inv
    };
    let permuted_shape = pl.shape.clone();
    let restore = |c: CpuStorage| -> CpuStorage {
        let cl = Layout::contiguous(&permuted_shape).permute(&back);
        cast(&c, &cl, c.dtype())
    };
    let out = match s {
        CpuStorage::F32(v) => CpuStorage::F32(
            scan(
                &to_contiguous(v, &pl.shape, &pl.strides, pl.offset),
                n,
                |a, b| a + b,
            )
            .into(),
        ),
        CpuStorage::F64(v) => CpuStorage::F64(
            scan(
                &to_contiguous(v, &pl.shape, &pl.strides, pl.offset),
                n,
                |a, b| a + b,
            )
            .into(),
        ),
        CpuStorage::F16(_) | CpuStorage::BF16(_) => {
            let f = cast(s, l, DType::F32);
            let r = cumsum(&f, &Layout::contiguous(&l.shape), dim);
            return cast(&r, &Layout::contiguous(&l.shape), s.dtype());
        }
        _ => with_storage!(s, |v: T| {
            let c: Vec<i64> = to_contiguous(v, &pl.shape, &pl.strides, pl.offset)
                .into_iter()
                .map(|x: T| x.to_f64() as i64)
                .collect();
            CpuStorage::I64(scan(&c, n, |a, b| a + b).into())
        }),
    };
    restore(out)
}

fn scan<T: Copy>(v: &[T], n: usize, f: impl Fn(T, T) -> T) -> Vec<T> {
    let mut out = v.to_vec();
    if n == 0 {
        return out;
    }
    for row in out.chunks_mut(n) {
        for i in 1..row.len() {
            row[i] = f(row[i - 1], row[i]);
        }
    }
    out
}

/// `sum |x|^ord` of f32 values for `ord` 1 or 2, accumulated in f64 over 16 independent
/// lanes so the loop vectorises (the norm of a gradient for `clip_grad_norm_`); `None` for
/// other orders.
pub fn sum_abs_pow_f32(v: &[f32], ord: f64) -> Option<f64> {
    const L: usize = 16;
    fn lanes(v: &[f32], f: impl Fn(f64) -> f64 + Copy) -> f64 {
        simd(
            #[inline(always)]
            || {
                let mut acc = [0f64; L];
                let chunks = v.chunks_exact(L);
                let rest = chunks.remainder();
                for c in chunks {
                    for j in 0..L {
                        acc[j] += f(c[j] as f64);
                    }
                }
                let mut s: f64 = acc.iter().sum();
                for &x in rest {
                    s += f(x as f64);
                }
                s
            },
        )
    }
    if ord == 2.0 {
        Some(lanes(v, |x| x * x))
    } else if ord == 1.0 {
        Some(lanes(v, f64::abs))
    } else {
        None
    }
}

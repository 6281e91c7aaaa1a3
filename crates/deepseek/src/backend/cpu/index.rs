//! Indexing kernels: index_select, gather, scatter_add, index_add. Every index is checked:
//! out-of-range indices are errors, never undefined behaviour.

use super::strided::Rows;
use crate::tensor::{CpuStorage, Element, Layout};
use crate::{with_storage, Error, Result};

fn check(op: &str, i: i64, n: usize) -> Result<usize> {
    let j = if i < 0 { i + n as i64 } else { i };
    if j < 0 || j >= n as i64 {
        return Err(Error::index(
            op,
            format!("index {i} is out of bounds for dimension with size {n}"),
        ));
    }
    Ok(j as usize)
}

/// Reads an index tensor (any integer dtype) as contiguous i64 values.
pub fn indices(s: &CpuStorage, l: &Layout, op: &str) -> Result<Vec<i64>> {
    match s {
        CpuStorage::I64(_) | CpuStorage::I32(_) | CpuStorage::U8(_) => Ok(with_storage!(
            s,
            |v: T| super::strided::to_contiguous(v, &l.shape, &l.strides, l.offset)
                .into_iter()
                .map(|x: T| x.to_f64() as i64)
                .collect()
        )),
        _ => Err(Error::dtype(
            op,
            format!(
                "indices must be an integer tensor (int64), got {}",
                s.dtype()
            ),
        )),
    }
}

/// `out = x.index_select(dim, idx)`; `out_shape` has `dim` replaced by the index count.
pub fn index_select(x: &CpuStorage, lx: &Layout, dim: usize, idx: &[i64]) -> Result<CpuStorage> {
    let n = lx.shape[dim];
    let idx: Vec<usize> = idx
        .iter()
        .map(|&i| check("index_select", i, n))
        .collect::<Result<_>>()?;
    let outer: usize = lx.shape[..dim].iter().product();
    let inner: usize = lx.shape[dim + 1..].iter().product();
    with_storage!(x, |v: T| {
        let copy;
        let src: &[T] = if lx.is_contiguous() {
            &v[lx.offset..]
        } else {
            copy = super::strided::to_contiguous(v, &lx.shape, &lx.strides, lx.offset);
            &copy
        };
        // Rows copied into a (cached, already faulted-in) buffer.
        let out = super::strided::alloc_with(outer * idx.len() * inner, |dst| {
            let mut rows = dst.chunks_exact_mut(inner.max(1));
            for o in 0..outer {
                for &i in &idx {
                    let s = (o * n + i) * inner;
                    if let Some(d) = rows.next() {
                        for (d, &x) in d.iter_mut().zip(&src[s..s + inner]) {
                            d.write(x);
                        }
                    }
                }
            }
        });
        Ok(T::into_storage(out))
    })
}

/// `out[p] = x[p with p[dim] = idx[p]]` over the index tensor's shape.
pub fn gather(
    x: &CpuStorage,
    lx: &Layout,
    dim: usize,
    idx: &[i64],
    ishape: &[usize],
) -> Result<CpuStorage> {
    if ishape.len() != lx.rank() {
        return Err(Error::shape(
            "gather",
            format!(
                "index rank {} differs from input rank {} (input {:?}, index {:?})",
                ishape.len(),
                lx.rank(),
                lx.shape,
                ishape
            ),
        ));
    }
    for d in 0..ishape.len() {
        if d != dim && ishape[d] > lx.shape[d] {
            return Err(Error::shape(
                "gather",
                format!(
                    "index {ishape:?} is larger than input {:?} in dimension {d}",
                    lx.shape
                ),
            ));
        }
    }
    let n = lx.shape[dim];
    let mut xs = lx.strides.clone();
    let sd = xs[dim];
    xs[dim] = 0;
    let istr = Layout::contiguous(ishape).strides;
    let rows = Rows::<2>::new(ishape, [&xs, &istr], [lx.offset, 0]);
    let inner = rows.inner;
    let [ix, ii] = rows.istr;
    with_storage!(x, |v: T| {
        let mut out: Vec<T> = Vec::with_capacity(idx.len());
        let mut err = None;
        rows.for_range(0..rows.rows(), |_, [ox, oi]| {
            for j in 0..inner {
                match check("gather", idx[oi + j * ii], n) {
                    Ok(k) => out.push(v[ox + j * ix + k * sd]),
                    Err(e) => {
                        err.get_or_insert(e);
                        out.push(T::default());
                    }
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        Ok(T::into_storage(out))
    })
}

/// `base` (contiguous copy) with `src[p]` added (`accumulate`) or written at `p with
/// p[dim] = idx[p]`; of several writes to one place the last in index order stays.
pub fn scatter(
    base: &mut CpuStorage,
    lb: &Layout,
    dim: usize,
    idx: &[i64],
    ishape: &[usize],
    (src, ls): (&CpuStorage, &Layout),
    accumulate: bool,
) -> Result<()> {
    let name = if accumulate { "scatter_add" } else { "scatter" };
    let n = lb.shape[dim];
    let mut bs = lb.strides.clone();
    let sd = bs[dim];
    bs[dim] = 0;
    let istr = Layout::contiguous(ishape).strides;
    let ss: Vec<usize> = ls.strides.clone();
    for d in 0..ishape.len() {
        if ishape[d] > ls.shape[d] || (d != dim && ishape[d] > lb.shape[d]) {
            return Err(Error::shape(
                name,
                format!(
                    "index {ishape:?} is larger than src {:?} or self {:?}",
                    ls.shape, lb.shape
                ),
            ));
        }
    }
    let rows = Rows::<3>::new(ishape, [&bs, &istr, &ss], [lb.offset, 0, ls.offset]);
    let inner = rows.inner;
    let [ib, ii, is] = rows.istr;
    with_storage!(base, |b: T| {
        let s = T::slice(src)
            .ok_or_else(|| Error::dtype(name, "src and self must have the same dtype"))?;
        let mut err = None;
        rows.for_range(0..rows.rows(), |_, [ob, oi, os]| {
            for j in 0..inner {
                match check(name, idx[oi + j * ii], n) {
                    Ok(k) => {
                        let p = ob + j * ib + k * sd;
                        b[p] = if accumulate {
                            T::from_f64(b[p].to_f64() + s[os + j * is].to_f64())
                        } else {
                            s[os + j * is]
                        };
                    }
                    Err(e) => {
                        err.get_or_insert(e);
                    }
                }
            }
        });
        err.map_or(Ok(()), Err)
    })
}

/// Contiguous `base` with `src.select(dim, i)` added at `base.select(dim, idx[i])`.
pub fn index_add(
    base: &mut CpuStorage,
    shape: &[usize],
    dim: usize,
    idx: &[i64],
    src: &CpuStorage,
) -> Result<()> {
    let n = shape[dim];
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let idx: Vec<usize> = idx
        .iter()
        .map(|&i| check("index_add", i, n))
        .collect::<Result<_>>()?;
    let m = idx.len();
    with_storage!(base, |b: T| {
        let s = T::slice(src)
            .ok_or_else(|| Error::dtype("index_add", "source and self must have the same dtype"))?;
        add_rows(b, s, outer, n, m, inner, &idx);
        Ok(())
    })
}

fn add_rows<T: Element>(
    b: &mut [T],
    s: &[T],
    outer: usize,
    n: usize,
    m: usize,
    inner: usize,
    idx: &[usize],
) {
    // f32 fast path (the embedding/LSTM backward hot loop).
    if let (Some(bf), Some(sf)) = (f32::slice_mut_from(b), f32::slice_from(s)) {
        for o in 0..outer {
            for (i, &k) in idx.iter().enumerate() {
                let dst = &mut bf[(o * n + k) * inner..(o * n + k + 1) * inner];
                let src = &sf[(o * m + i) * inner..(o * m + i + 1) * inner];
                super::threads::simd(
                    #[inline(always)]
                    || {
                        for (d, x) in dst.iter_mut().zip(src) {
                            *d += *x;
                        }
                    },
                );
            }
        }
        return;
    }
    for o in 0..outer {
        for (i, &k) in idx.iter().enumerate() {
            for j in 0..inner {
                let p = (o * n + k) * inner + j;
                b[p] = T::from_f64(b[p].to_f64() + s[(o * m + i) * inner + j].to_f64());
            }
        }
    }
}

trait AsF32 {
    fn slice_mut_from<T: Element>(v: &mut [T]) -> Option<&mut [f32]>;
    fn slice_from<T: Element>(v: &[T]) -> Option<&[f32]>;
}
impl AsF32 for f32 {
    fn slice_mut_from<T: Element>(v: &mut [T]) -> Option<&mut [f32]> {
        if T::DTYPE == crate::DType::F32 {
            // SAFETY: T is f32 (checked by its dtype tag), so the cast is the identity.
            Some(unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, v.len()) })
        } else {
            None
        }
    }
    fn slice_from<T: Element>(v: &[T]) -> Option<&[f32]> {
        if T::DTYPE == crate::DType::F32 {
            // SAFETY: as above.
            Some(unsafe { std::slice::from_raw_parts(v.as_ptr() as *const f32, v.len()) })
        } else {
            None
        }
    }
}

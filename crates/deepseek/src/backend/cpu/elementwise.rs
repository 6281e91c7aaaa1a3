//! Elementwise kernels: unary maps, broadcasting binary maps, where, casts, strided copies.

use super::math::Float;
use super::strided::{alloc_with, par_rows, to_contiguous, Rows};
use super::threads::{self, simd};
use crate::ops::binary;
use crate::ops::{BinaryOp, BinaryVisitor, UnaryOp, UnaryVisitor};
use crate::tensor::{CpuStorage, Element, Layout};
use crate::{with_storage, DType, Error, Result};
use half::{bf16, f16};
use std::mem::MaybeUninit;

/// `out[i] = f(src[i])` over any layout; output contiguous.
pub fn map_unary<T: Copy + Send + Sync, U: Send + Sync>(
    src: &[T],
    l: &Layout,
    f: impl Fn(T) -> U + Sync + Send + Copy,
) -> Vec<U> {
    let n = l.numel();
    if let Some(r) = l.contiguous_range() {
        let s = &src[r];
        return alloc_with(n, |out| {
            let body = |o: &mut [MaybeUninit<U>], s: &[T]| {
                simd(
                    #[inline(always)]
                    || {
                        for (d, x) in o.iter_mut().zip(s) {
                            d.write(f(*x));
                        }
                    },
                )
            };
            let t = threads::get_num_threads();
            if n >= threads::PAR_THRESHOLD && t > 1 {
                let ch = n.div_ceil(t).next_multiple_of(1024);
                threads::par_chunks(out, ch, |i, o| body(o, &s[i * ch..i * ch + o.len()]));
            } else {
                body(out, s);
            }
        });
    }
    let rows = Rows::<1>::new(&l.shape, [&l.strides], [l.offset]);
    let inner = rows.inner;
    let st = rows.istr[0];
    alloc_with(n, |out| {
        if n == 0 {
            return;
        }
        par_rows(out, inner, rows.rows(), |chunk, r0| {
            rows.for_range(r0..r0 + chunk.len() / inner, |r, [o]| {
                let dst = &mut chunk[(r - r0) * inner..(r - r0 + 1) * inner];
                simd(
                    #[inline(always)]
                    || {
                        if st == 1 {
                            for (d, x) in dst.iter_mut().zip(&src[o..o + inner]) {
                                d.write(f(*x));
                            }
                        } else {
                            for (j, d) in dst.iter_mut().enumerate() {
                                d.write(f(src[o + j * st]));
                            }
                        }
                    },
                )
            })
        });
    })
}

/// `out[i] = f(a[i], b[i])` with broadcasting to `shape`; output contiguous.
pub fn map_binary<A: Copy + Send + Sync, B: Copy + Send + Sync, U: Send + Sync>(
    a: &[A],
    la: &Layout,
    b: &[B],
    lb: &Layout,
    shape: &[usize],
    f: impl Fn(A, B) -> U + Sync + Send + Copy,
) -> Result<Vec<U>> {
    let n: usize = shape.iter().product();
    if la.shape == shape && lb.shape == shape {
        if let (Some(ra), Some(rb)) = (la.contiguous_range(), lb.contiguous_range()) {
            let (a, b) = (&a[ra], &b[rb]);
            return Ok(alloc_with(n, |out| {
                let body = |o: &mut [MaybeUninit<U>], a: &[A], b: &[B]| {
                    simd(
                        #[inline(always)]
                        || {
                            for ((d, x), y) in o.iter_mut().zip(a).zip(b) {
                                d.write(f(*x, *y));
                            }
                        },
                    )
                };
                let t = threads::get_num_threads();
                if n >= threads::PAR_THRESHOLD && t > 1 {
                    let ch = n.div_ceil(t).next_multiple_of(1024);
                    threads::par_chunks(out, ch, |i, o| {
                        let r = i * ch..i * ch + o.len();
                        body(o, &a[r.clone()], &b[r])
                    });
                } else {
                    body(out, a, b);
                }
            }));
        }
    }
    let sa = la.broadcast_strides("binary", shape)?;
    let sb = lb.broadcast_strides("binary", shape)?;
    let rows = Rows::<2>::new(shape, [&sa, &sb], [la.offset, lb.offset]);
    let inner = rows.inner;
    let [ia, ib] = rows.istr;
    Ok(alloc_with(n, |out| {
        if n == 0 {
            return;
        }
        par_rows(out, inner, rows.rows(), |chunk, r0| {
            rows.for_range(r0..r0 + chunk.len() / inner, |r, [oa, ob]| {
                let dst = &mut chunk[(r - r0) * inner..(r - r0 + 1) * inner];
                simd(
                    #[inline(always)]
                    || match (ia, ib) {
                        (1, 1) => {
                            for ((d, x), y) in dst
                                .iter_mut()
                                .zip(&a[oa..oa + inner])
                                .zip(&b[ob..ob + inner])
                            {
                                d.write(f(*x, *y));
                            }
                        }
                        (1, 0) => {
                            let y = b[ob];
                            for (d, x) in dst.iter_mut().zip(&a[oa..oa + inner]) {
                                d.write(f(*x, y));
                            }
                        }
                        (0, 1) => {
                            let x = a[oa];
                            for (d, y) in dst.iter_mut().zip(&b[ob..ob + inner]) {
                                d.write(f(x, *y));
                            }
                        }
                        _ => {
                            for (j, d) in dst.iter_mut().enumerate() {
                                d.write(f(a[oa + j * ia], b[ob + j * ib]));
                            }
                        }
                    },
                )
            })
        });
    }))
}

fn low_to_f32<T: Element>(v: &[T], l: &Layout) -> (Vec<f32>, Layout) {
    (
        map_unary(v, l, |x: T| x.to_f32()),
        Layout::contiguous(&l.shape),
    )
}

fn unary_float<T: Float>(op: UnaryOp, v: &[T], l: &Layout) -> Vec<T> {
    struct Map<'a, T>(&'a [T], &'a Layout);
    impl<T: Float> UnaryVisitor<T> for Map<'_, T> {
        type Out = Vec<T>;
        #[inline(always)]
        fn visit<F: Fn(T) -> T + Copy + Send + Sync>(self, f: F) -> Vec<T> {
            map_unary(self.0, self.1, f)
        }
    }
    crate::ops::unary::visit_float(op, Map(v, l))
}

/// `dst[i] = op(src[i])` over contiguous slices of equal length (the fused-kernel
/// interpreter's unary step; same scalar functions as the eager kernels).
pub fn unary_slice<T: Float>(op: UnaryOp, src: &[T], dst: &mut [T]) {
    struct Slice<'a, T>(&'a [T], &'a mut [T]);
    impl<T: Float> UnaryVisitor<T> for Slice<'_, T> {
        type Out = ();
        #[inline(always)]
        fn visit<F: Fn(T) -> T + Copy + Send + Sync>(self, f: F) {
            let (src, dst) = (self.0, self.1);
            simd(
                #[inline(always)]
                || {
                    for (d, x) in dst.iter_mut().zip(src) {
                        *d = f(*x);
                    }
                },
            )
        }
    }
    crate::ops::unary::visit_float(op, Slice(src, dst))
}

/// `y[r, :] += b` for every row of `y` (rows of `b.len()`), rows split over the pool.
pub fn add_rows_inplace<T: Float>(y: &mut [T], b: &[T]) {
    let n = b.len();
    if n == 0 {
        return;
    }
    let rows = y.len() / n;
    super::strided::par_rows(y, n, rows, |chunk, _| {
        for row in chunk.chunks_exact_mut(n) {
            simd(
                #[inline(always)]
                || {
                    for (d, &v) in row.iter_mut().zip(b) {
                        *d = *d + v;
                    }
                },
            );
        }
    });
}

/// `x[i] = x[i] op (alpha * b[i])` in place (`b` of `x`'s length, or one element broadcast),
/// for the arithmetic ops `add`, `sub`, `mul`, `div`; chunks split over the pool. With
/// `alpha != 1` the scaled operand is fused as PyTorch's kernels do (`x + alpha * b` as one
/// multiply-add).
pub fn binary_inplace_slice<T: Float>(op: BinaryOp, x: &mut [T], b: &[T], alpha: T) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let one = T::one();
    let body = |x: &mut [T], b: &[T]| {
        simd(
            #[inline(always)]
            || {
                macro_rules! each {
                    ($f:expr) => {
                        if b.len() == 1 {
                            let v = b[0];
                            for d in x.iter_mut() {
                                *d = $f(*d, v);
                            }
                        } else {
                            for (d, &v) in x.iter_mut().zip(b) {
                                *d = $f(*d, v);
                            }
                        }
                    };
                }
                match op {
                    BinaryOp::Add if alpha == one => each!(|d: T, v: T| d + v),
                    BinaryOp::Add => each!(|d: T, v: T| v.mul_add(alpha, d)),
                    BinaryOp::Sub if alpha == one => each!(|d: T, v: T| d - v),
                    BinaryOp::Sub => each!(|d: T, v: T| (-v).mul_add(alpha, d)),
                    BinaryOp::Mul => each!(|d: T, v: T| d * v),
                    BinaryOp::Div => each!(|d: T, v: T| d / v),
                    _ => unreachable!("binary_inplace_slice: {} is not arithmetic", op.name()),
                }
            },
        )
    };
    let t = threads::get_num_threads();
    if n >= threads::PAR_THRESHOLD && t > 1 {
        let ch = n.div_ceil(t).next_multiple_of(1024);
        threads::par_chunks(x, ch, |i, x| {
            if b.len() == 1 {
                body(x, b)
            } else {
                body(x, &b[i * ch..i * ch + x.len()])
            }
        });
    } else {
        body(x, b);
    }
}

/// `x[i] = op(x[i])` in place over a contiguous slice.
pub fn unary_inplace_slice<T: Float>(op: UnaryOp, x: &mut [T]) {
    struct InPlace<'a, T>(&'a mut [T]);
    impl<T: Float> UnaryVisitor<T> for InPlace<'_, T> {
        type Out = ();
        #[inline(always)]
        fn visit<F: Fn(T) -> T + Copy + Send + Sync>(self, f: F) {
            let x = self.0;
            simd(
                #[inline(always)]
                || {
                    for v in x.iter_mut() {
                        *v = f(*v);
                    }
                },
            )
        }
    }
    crate::ops::unary::visit_float(op, InPlace(x))
}

/// Writes `f(a[i], b[i])` into `dst` (contiguous slices; one vectorised loop).
struct Zip<'a, T, R>(&'a [T], &'a [T], &'a mut [R]);

impl<T: Copy, R> BinaryVisitor<T, R> for Zip<'_, T, R> {
    type Out = ();
    #[inline(always)]
    fn visit<F: Fn(T, T) -> R + Copy + Send + Sync>(self, f: F) {
        let Zip(a, b, dst) = self;
        simd(
            #[inline(always)]
            || {
                for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
                    *d = f(*x, *y);
                }
            },
        )
    }
}

/// `dst[i] = op(a[i], b[i])` over contiguous slices (arithmetic ops).
pub fn binary_slice<T: Element + num_traits::Num>(op: BinaryOp, a: &[T], b: &[T], dst: &mut [T]) {
    if binary::visit_num(op, Zip(a, b, dst)).is_none() {
        unreachable!("binary_slice: {} is a predicate", op.name())
    }
}

/// `dst[i] = op(a[i], b[i])` for the comparison predicates over contiguous slices.
pub fn compare_slice<T: Element>(op: BinaryOp, a: &[T], b: &[T], dst: &mut [bool]) {
    if binary::visit_cmp(op, Zip(a, b, dst)).is_none() {
        unreachable!("compare_slice: {} is not a comparison", op.name())
    }
}

fn unary_int<T: Element + num_traits::PrimInt + num_traits::Signed>(
    op: UnaryOp,
    v: &[T],
    l: &Layout,
) -> Result<Vec<T>> {
    struct Map<'a, T>(&'a [T], &'a Layout);
    impl<T: Element> UnaryVisitor<T> for Map<'_, T> {
        type Out = Vec<T>;
        #[inline(always)]
        fn visit<F: Fn(T) -> T + Copy + Send + Sync>(self, f: F) -> Vec<T> {
            map_unary(self.0, self.1, f)
        }
    }
    crate::ops::unary::visit_int(op, Map(v, l)).ok_or_else(|| {
        Error::dtype(
            op.name(),
            format!("not implemented for integer dtype {}", T::DTYPE),
        )
    })
}

/// Unary op on any layout.
pub fn unary(op: UnaryOp, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(v) => CpuStorage::F32(unary_float(op, v, l).into()),
        CpuStorage::F64(v) => CpuStorage::F64(unary_float(op, v, l).into()),
        CpuStorage::F16(v) => {
            let (x, cl) = low_to_f32(v, l);
            CpuStorage::F16(map_unary(&unary_float(op, &x, &cl), &cl, f16::from_f32).into())
        }
        CpuStorage::BF16(v) => {
            let (x, cl) = low_to_f32(v, l);
            CpuStorage::BF16(map_unary(&unary_float(op, &x, &cl), &cl, bf16::from_f32).into())
        }
        CpuStorage::I64(v) => CpuStorage::I64(unary_int(op, v, l)?.into()),
        CpuStorage::I32(v) => CpuStorage::I32(unary_int(op, v, l)?.into()),
        CpuStorage::U8(v) => {
            let x: Vec<i32> = map_unary(v, l, |x: u8| x as i32);
            let y = unary_int(op, &x, &Layout::contiguous(&l.shape))?;
            CpuStorage::U8(y.into_iter().map(|v| v as u8).collect())
        }
        CpuStorage::Bool(_) => {
            return Err(Error::dtype(op.name(), "not implemented for bool tensors"))
        }
    })
}

#[allow(clippy::eq_op)]
fn binary_num<T>(
    op: BinaryOp,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
    shape: &[usize],
) -> Result<CpuStorage>
where
    T: Element + num_traits::Num,
{
    use BinaryOp::*;
    if matches!(op, Rem | FloorDiv) && !T::DTYPE.is_float() && b.iter().any(|v| v.to_f64() == 0.0) {
        return Err(Error::value(op.name(), "integer division by zero"));
    }
    /// `f` over the broadcast views, into a new storage.
    struct Map<'a, T>(&'a [T], &'a Layout, &'a [T], &'a Layout, &'a [usize]);
    impl<T: Element, R: Element> BinaryVisitor<T, R> for Map<'_, T> {
        type Out = Result<CpuStorage>;
        #[inline(always)]
        fn visit<F: Fn(T, T) -> R + Copy + Send + Sync>(self, f: F) -> Result<CpuStorage> {
            let Map(a, la, b, lb, shape) = self;
            map_binary(a, la, b, lb, shape, f).map(R::into_storage)
        }
    }
    let m = Map(a, la, b, lb, shape);
    match binary::visit_num(op, m) {
        Some(r) => r,
        None => binary::visit_cmp(op, Map(a, la, b, lb, shape))
            .unwrap_or_else(|| unreachable!("logical ops run on bool")),
    }
}

/// Binary op; both inputs already have the same dtype.
pub fn binary(
    op: BinaryOp,
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
    shape: &[usize],
) -> Result<CpuStorage> {
    use CpuStorage as S;
    Ok(match (a, b) {
        (S::F32(x), S::F32(y)) => binary_num(op, x, la, y, lb, shape)?,
        (S::F64(x), S::F64(y)) => binary_num(op, x, la, y, lb, shape)?,
        (S::I64(x), S::I64(y)) => binary_num(op, x, la, y, lb, shape)?,
        (S::I32(x), S::I32(y)) => binary_num(op, x, la, y, lb, shape)?,
        (S::U8(x), S::U8(y)) => binary_num(op, x, la, y, lb, shape)?,
        (S::F16(_), S::F16(_)) | (S::BF16(_), S::BF16(_)) => {
            let dt = a.dtype();
            let (x, lx) = (cast(a, la, DType::F32), Layout::contiguous(&la.shape));
            let (y, ly) = (cast(b, lb, DType::F32), Layout::contiguous(&lb.shape));
            let r = binary(op, &x, &lx, &y, &ly, shape)?;
            if r.dtype() == DType::Bool {
                r
            } else {
                cast(&r, &Layout::contiguous(shape), dt)
            }
        }
        (S::Bool(x), S::Bool(y)) => {
            let Some(f) = binary::bool_fn(op) else {
                return Err(Error::dtype(op.name(), "not implemented for bool tensors"));
            };
            S::Bool(map_binary(x, la, y, lb, shape, f)?.into())
        }
        _ => {
            return Err(Error::dtype(
                op.name(),
                format!(
                    "internal: operands of different dtypes {} and {}",
                    a.dtype(),
                    b.dtype()
                ),
            ))
        }
    })
}

/// Converts any layout of `s` to a contiguous buffer of `dt`.
pub fn cast(s: &CpuStorage, l: &Layout, dt: DType) -> CpuStorage {
    if s.dtype() == dt {
        return with_storage!(s, |v: T| T::into_storage(to_contiguous(
            v, &l.shape, &l.strides, l.offset
        )));
    }
    with_storage!(s, |v: S| crate::with_dtype!(dt, |D| D::into_storage(
        map_unary(v, l, |x: S| convert::<S, D>(x))
    )))
}

/// Converts `src` into `dst` element by element (lengths equal), as [`cast`] does.
pub fn convert_slice<S: Element, D: Element>(src: &[S], dst: &mut [D]) {
    simd(
        #[inline(always)]
        || {
            for (d, x) in dst.iter_mut().zip(src) {
                *d = convert(*x);
            }
        },
    )
}

/// One element of [`cast`]: PyTorch's conversion rules (to bool: non-zero or NaN).
#[inline(always)]
pub fn convert<S: Element, D: Element>(x: S) -> D {
    match (S::DTYPE, D::DTYPE) {
        (_, DType::Bool) => D::from_f64(if x.to_f64() != 0.0 || x.to_f64().is_nan() {
            1.0
        } else {
            0.0
        }),
        (DType::F32, _) | (DType::F16, _) | (DType::BF16, _) => D::from_f32(x.to_f32()),
        _ => D::from_f64(x.to_f64()),
    }
}

/// `where(cond, a, b)` with all three broadcast to `shape`; `a` and `b` share a dtype.
pub fn where_(
    c: &[bool],
    lc: &Layout,
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
    shape: &[usize],
) -> Result<CpuStorage> {
    let n: usize = shape.iter().product();
    let sc = lc.broadcast_strides("where", shape)?;
    let sa = la.broadcast_strides("where", shape)?;
    let sb = lb.broadcast_strides("where", shape)?;
    let rows = Rows::<3>::new(shape, [&sc, &sa, &sb], [lc.offset, la.offset, lb.offset]);
    let inner = rows.inner;
    let [ic, ia, ib] = rows.istr;
    with_storage!(a, |av: T| {
        let bv = T::slice(b)
            .ok_or_else(|| Error::dtype("where", "internal: branches of different dtypes"))?;
        let out: Vec<T> = alloc_with(n, |out| {
            if n == 0 {
                return;
            }
            par_rows(out, inner, rows.rows(), |chunk, r0| {
                rows.for_range(r0..r0 + chunk.len() / inner, |r, [oc, oa, ob]| {
                    let dst = &mut chunk[(r - r0) * inner..(r - r0 + 1) * inner];
                    for (j, d) in dst.iter_mut().enumerate() {
                        d.write(if c[oc + j * ic] {
                            av[oa + j * ia]
                        } else {
                            bv[ob + j * ib]
                        });
                    }
                })
            });
        });
        Ok(T::into_storage(out))
    })
}

//! Elementwise kernels: unary maps, broadcasting binary maps, where, casts, strided copies.

use super::math::Float;
use super::strided::{alloc_with, par_rows, to_contiguous, Rows};
use super::threads::{self, simd};
use crate::ops::{BinaryOp, UnaryOp};
use crate::tensor::{CpuStorage, Element, Layout};
use crate::{with_storage, DType, Error, Result};
use half::{bf16, f16};
use rayon::prelude::*;
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
                let ch = n.div_ceil(t * 4).next_multiple_of(1024);
                threads::pool().install(|| {
                    out.par_chunks_mut(ch)
                        .zip(s.par_chunks(ch))
                        .for_each(|(o, s)| body(o, s))
                });
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
                    let ch = n.div_ceil(t * 4).next_multiple_of(1024);
                    threads::pool().install(|| {
                        out.par_chunks_mut(ch)
                            .zip(a.par_chunks(ch))
                            .zip(b.par_chunks(ch))
                            .for_each(|((o, a), b)| body(o, a, b))
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
    use UnaryOp::*;
    let c = T::c;
    let (zero, one, half) = (c(0.0), c(1.0), c(0.5));
    match op {
        Neg => map_unary(v, l, |x: T| -x),
        Exp => map_unary(v, l, |x: T| x.exp_()),
        Log => map_unary(v, l, |x: T| x.ln()),
        Log1p => map_unary(v, l, |x: T| x.ln_1p()),
        Expm1 => map_unary(v, l, |x: T| x.exp_m1()),
        Sqrt => map_unary(v, l, |x: T| x.sqrt()),
        Rsqrt => map_unary(v, l, |x: T| one / x.sqrt()),
        Abs => map_unary(v, l, |x: T| x.abs()),
        Sign => map_unary(v, l, |x: T| {
            if x > zero {
                one
            } else if x < zero {
                -one
            } else {
                x * zero
            }
        }),
        Floor => map_unary(v, l, |x: T| x.floor()),
        Ceil => map_unary(v, l, |x: T| x.ceil()),
        Round => map_unary(v, l, |x: T| {
            let r = x.round();
            if (x - x.trunc()).abs() == half {
                (x * half).round() * c(2.0)
            } else {
                r
            }
        }),
        Relu => map_unary(v, l, |x: T| if x > zero || x.is_nan() { x } else { zero }),
        Sigmoid => map_unary(v, l, |x: T| one / (one + (-x).exp_())),
        Tanh => map_unary(v, l, |x: T| x.tanh_()),
        Gelu => map_unary(v, l, |x: T| {
            half * x * (one + (x * c(std::f64::consts::FRAC_1_SQRT_2)).erf_())
        }),
        GeluTanh => {
            let k = c((2.0 / std::f64::consts::PI).sqrt());
            let a = c(0.044715);
            map_unary(v, l, move |x: T| {
                half * x * (one + (k * (x + a * x * x * x)).tanh_())
            })
        }
        Silu => map_unary(v, l, |x: T| x / (one + (-x).exp_())),
        Softplus { beta, threshold } => {
            let (b, t) = (c(beta), c(threshold));
            map_unary(v, l, move |x: T| {
                if x * b > t {
                    x
                } else {
                    (one + (x * b).exp_()).ln() / b
                }
            })
        }
        Sin => map_unary(v, l, |x: T| x.sin()),
        Cos => map_unary(v, l, |x: T| x.cos()),
        Reciprocal => map_unary(v, l, |x: T| one / x),
        Square => map_unary(v, l, |x: T| x * x),
        Erf => map_unary(v, l, |x: T| x.erf_()),
        Elu { alpha } => {
            let a = c(alpha);
            map_unary(
                v,
                l,
                move |x: T| if x > zero { x } else { a * (x.exp_() - one) },
            )
        }
        LeakyRelu { slope } => {
            let s = c(slope);
            map_unary(v, l, move |x: T| if x > zero { x } else { x * s })
        }
        PowScalar { exponent } => {
            let e = c(exponent);
            if exponent == 2.0 {
                map_unary(v, l, |x: T| x * x)
            } else if exponent == 0.5 {
                map_unary(v, l, |x: T| x.sqrt())
            } else if exponent == 1.0 {
                map_unary(v, l, |x: T| x)
            } else if exponent == exponent.trunc() && exponent.abs() < 64.0 {
                let n = exponent as i32;
                map_unary(v, l, move |x: T| x.powi(n))
            } else {
                map_unary(v, l, move |x: T| x.powf(e))
            }
        }
        RPowScalar { c: base } => {
            let b = c(base);
            map_unary(v, l, move |x: T| b.powf(x))
        }
        Clamp { min, max } => {
            let (lo, hi) = (c(min), c(max));
            map_unary(v, l, move |x: T| {
                let y = if !min.is_nan() && x < lo { lo } else { x };
                if !max.is_nan() && y > hi {
                    hi
                } else {
                    y
                }
            })
        }
        AddScalar { c: k } => {
            let k = c(k);
            map_unary(v, l, move |x: T| x + k)
        }
        MulScalar { c: k } => {
            let k = c(k);
            map_unary(v, l, move |x: T| x * k)
        }
    }
}

fn unary_int<T: Element + num_traits::PrimInt + num_traits::Signed>(
    op: UnaryOp,
    v: &[T],
    l: &Layout,
) -> Result<Vec<T>> {
    use UnaryOp::*;
    let z = T::zero();
    Ok(match op {
        Neg => map_unary(v, l, |x: T| z - x),
        Abs => map_unary(v, l, |x: T| x.abs()),
        Sign => map_unary(v, l, |x: T| x.signum()),
        Relu => map_unary(v, l, |x: T| x.max(z)),
        Square => map_unary(v, l, |x: T| x * x),
        Floor | Ceil | Round => map_unary(v, l, |x: T| x),
        Clamp { min, max } => map_unary(v, l, move |x: T| {
            let mut y = x;
            if !min.is_nan() && y.to_f64() < min {
                y = T::from_f64(min.ceil());
            }
            if !max.is_nan() && y.to_f64() > max {
                y = T::from_f64(max.floor());
            }
            y
        }),
        AddScalar { c } => {
            let k = T::from_f64(c);
            map_unary(v, l, move |x: T| x + k)
        }
        MulScalar { c } => {
            let k = T::from_f64(c);
            map_unary(v, l, move |x: T| x * k)
        }
        _ => {
            return Err(Error::dtype(
                op.name(),
                format!("not implemented for integer dtype {}", T::DTYPE),
            ))
        }
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
    let is_float = T::DTYPE.is_float();
    let out = match op {
        Add => T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| x + y)?),
        Sub => T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| x - y)?),
        Mul => T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| x * y)?),
        Div => T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| x / y)?),
        Maximum => T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| {
            if x != x || x > y {
                x
            } else {
                y
            }
        })?),
        Minimum => T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| {
            if x != x || x < y {
                x
            } else {
                y
            }
        })?),
        Pow => T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| {
            T::from_f64(x.to_f64().powf(y.to_f64()))
        })?),
        Rem | FloorDiv => {
            if !is_float && b.iter().any(|v| v.to_f64() == 0.0) {
                return Err(Error::value(op.name(), "integer division by zero"));
            }
            if op == Rem {
                T::into_storage(map_binary(a, la, b, lb, shape, move |x: T, y: T| {
                    let (xf, yf) = (x.to_f64(), y.to_f64());
                    let r = xf - (xf / yf).floor() * yf;
                    T::from_f64(if is_float { r } else { r.round() })
                })?)
            } else {
                T::into_storage(map_binary(a, la, b, lb, shape, |x: T, y: T| {
                    T::from_f64((x.to_f64() / y.to_f64()).floor())
                })?)
            }
        }
        Eq => CpuStorage::Bool(map_binary(a, la, b, lb, shape, |x: T, y: T| x == y)?.into()),
        Ne => CpuStorage::Bool(map_binary(a, la, b, lb, shape, |x: T, y: T| x != y)?.into()),
        Lt => CpuStorage::Bool(map_binary(a, la, b, lb, shape, |x: T, y: T| x < y)?.into()),
        Le => CpuStorage::Bool(map_binary(a, la, b, lb, shape, |x: T, y: T| x <= y)?.into()),
        Gt => CpuStorage::Bool(map_binary(a, la, b, lb, shape, |x: T, y: T| x > y)?.into()),
        Ge => CpuStorage::Bool(map_binary(a, la, b, lb, shape, |x: T, y: T| x >= y)?.into()),
        And | Or | Xor => unreachable!("logical ops run on bool"),
    };
    Ok(out)
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
            use BinaryOp::*;
            let f: fn(bool, bool) -> bool = match op {
                And | Mul | Minimum => |a, b| a & b,
                Or | Maximum => |a, b| a | b,
                Xor | Ne => |a, b| a ^ b,
                Eq => |a, b| a == b,
                Lt => |a, b| !a & b,
                Le => |a, b| !a | b,
                Gt => |a, b| a & !b,
                Ge => |a, b| a | !b,
                _ => return Err(Error::dtype(op.name(), "not implemented for bool tensors")),
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

#[inline(always)]
fn convert<S: Element, D: Element>(x: S) -> D {
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

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

/// Runs `$body` with `$f` bound to the scalar function of the float unary op `$op` over
/// `$T`. This is the one definition of each op's math on the CPU: the strided eager kernels
/// and the fused-kernel interpreter (`crate::lazy`) both expand it, so eager and deferred
/// results are bit-identical.
#[macro_export]
#[doc(hidden)]
macro_rules! float_unary_fn {
    ($op:expr, $T:ty, |$f:ident| $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::backend::cpu::math::Float as _;
        use $crate::ops::UnaryOp::*;
        let c = <$T as $crate::backend::cpu::math::Float>::c;
        let (zero, one, half) = (c(0.0), c(1.0), c(0.5));
        let _ = (zero, one, half);
        match $op {
            Neg => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| -x,
                |$f| $body,
            ),
            Exp => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.exp_(),
                |$f| $body,
            ),
            Log => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.ln(),
                |$f| $body,
            ),
            Log1p => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.ln_1p(),
                |$f| $body,
            ),
            Expm1 => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.exp_m1(),
                |$f| $body,
            ),
            Sqrt => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.sqrt(),
                |$f| $body,
            ),
            Rsqrt => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| one / x.sqrt(),
                |$f| $body,
            ),
            Abs => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.abs(),
                |$f| $body,
            ),
            Sign => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| {
                    if x > zero {
                        one
                    } else if x < zero {
                        -one
                    } else {
                        x * zero
                    }
                },
                |$f| $body,
            ),
            Floor => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.floor(),
                |$f| $body,
            ),
            Ceil => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.ceil(),
                |$f| $body,
            ),
            Round => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| {
                    let r = x.round();
                    if (x - x.trunc()).abs() == half {
                        (x * half).round() * c(2.0)
                    } else {
                        r
                    }
                },
                |$f| $body,
            ),
            Relu => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| if x > zero || x.is_nan() { x } else { zero },
                |$f| $body,
            ),
            Sigmoid => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| one / (one + (-x).exp_()),
                |$f| $body,
            ),
            Tanh => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.tanh_(),
                |$f| $body,
            ),
            Gelu => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| half * x * (one + (x * c(std::f64::consts::FRAC_1_SQRT_2)).erf_()),
                |$f| $body,
            ),
            GeluTanh => {
                let k = c((2.0 / std::f64::consts::PI).sqrt());
                let a = c(0.044715);
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| half * x * (one + (k * (x + a * x * x * x)).tanh_()),
                    |$f| $body,
                )
            }
            Silu => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x / (one + (-x).exp_()),
                |$f| $body,
            ),
            Softplus { beta, threshold } => {
                let (b, t) = (c(beta), c(threshold));
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| {
                        if x * b > t {
                            x
                        } else {
                            (one + (x * b).exp_()).ln() / b
                        }
                    },
                    |$f| $body,
                )
            }
            Sin => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.sin(),
                |$f| $body,
            ),
            Cos => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.cos(),
                |$f| $body,
            ),
            Reciprocal => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| one / x,
                |$f| $body,
            ),
            Square => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x * x,
                |$f| $body,
            ),
            Erf => $crate::backend::cpu::elementwise::with_fn(
                #[inline(always)]
                |x: $T| x.erf_(),
                |$f| $body,
            ),
            Elu { alpha } => {
                let a = c(alpha);
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| if x > zero { x } else { a * (x.exp_() - one) },
                    |$f| $body,
                )
            }
            LeakyRelu { slope } => {
                let s = c(slope);
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| if x > zero { x } else { x * s },
                    |$f| $body,
                )
            }
            PowScalar { exponent } => {
                let e = c(exponent);
                if exponent == 2.0 {
                    $crate::backend::cpu::elementwise::with_fn(
                        #[inline(always)]
                        |x: $T| x * x,
                        |$f| $body,
                    )
                } else if exponent == 0.5 {
                    $crate::backend::cpu::elementwise::with_fn(
                        #[inline(always)]
                        |x: $T| x.sqrt(),
                        |$f| $body,
                    )
                } else if exponent == 1.0 {
                    $crate::backend::cpu::elementwise::with_fn(
                        #[inline(always)]
                        |x: $T| x,
                        |$f| $body,
                    )
                } else if exponent == exponent.trunc() && exponent.abs() < 64.0 {
                    let n = exponent as i32;
                    $crate::backend::cpu::elementwise::with_fn(
                        #[inline(always)]
                        move |x: $T| $crate::backend::cpu::elementwise::powi(x, n),
                        |$f| $body,
                    )
                } else {
                    $crate::backend::cpu::elementwise::with_fn(
                        #[inline(always)]
                        move |x: $T| x.powf(e),
                        |$f| $body,
                    )
                }
            }
            RPowScalar { c: base } => {
                let b = c(base);
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| b.powf(x),
                    |$f| $body,
                )
            }
            Clamp { min, max } => {
                let (lo, hi) = (c(min), c(max));
                let (has_lo, has_hi) = (!min.is_nan(), !max.is_nan());
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| {
                        let y = if has_lo && x < lo { lo } else { x };
                        if has_hi && y > hi {
                            hi
                        } else {
                            y
                        }
                    },
                    |$f| $body,
                )
            }
            AddScalar { c: k } => {
                let k = c(k);
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| x + k,
                    |$f| $body,
                )
            }
            MulScalar { c: k } => {
                let k = c(k);
                $crate::backend::cpu::elementwise::with_fn(
                    #[inline(always)]
                    move |x: $T| x * k,
                    |$f| $body,
                )
            }
        }
    }};
}

/// Runs `$body` with `$f` bound to the scalar function `(T, T) -> T` of the arithmetic binary
/// op `$op` (every op but the predicates) over a numeric `$T`: the one definition used by the
/// eager kernels and the fused-kernel interpreter.
#[macro_export]
#[doc(hidden)]
macro_rules! num_binary_fn {
    ($op:expr, $T:ty, |$f:ident| $body:expr, else $other:expr) => {{
        use $crate::backend::cpu::elementwise::with_fn;
        use $crate::ops::BinaryOp::*;
        #[allow(unused_imports)]
        use $crate::tensor::Element as _;
        let is_float = <$T as $crate::tensor::Element>::DTYPE.is_float();
        match $op {
            Add => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x + y,
                |$f| $body,
            ),
            Sub => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x - y,
                |$f| $body,
            ),
            Mul => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x * y,
                |$f| $body,
            ),
            Div => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x / y,
                |$f| $body,
            ),
            #[allow(clippy::eq_op)]
            Maximum => with_fn(
                #[inline(always)]
                |x: $T, y: $T| if x != x || x > y { x } else { y },
                |$f| $body,
            ),
            #[allow(clippy::eq_op)]
            Minimum => with_fn(
                #[inline(always)]
                |x: $T, y: $T| if x != x || x < y { x } else { y },
                |$f| $body,
            ),
            Pow => with_fn(
                #[inline(always)]
                |x: $T, y: $T| <$T>::from_f64(x.to_f64().powf(y.to_f64())),
                |$f| $body,
            ),
            Rem => with_fn(
                #[inline(always)]
                move |x: $T, y: $T| {
                    let (xf, yf) = (x.to_f64(), y.to_f64());
                    let r = xf - (xf / yf).floor() * yf;
                    <$T>::from_f64(if is_float { r } else { r.round() })
                },
                |$f| $body,
            ),
            FloorDiv => with_fn(
                #[inline(always)]
                |x: $T, y: $T| <$T>::from_f64((x.to_f64() / y.to_f64()).floor()),
                |$f| $body,
            ),
            _ => $other,
        }
    }};
}

/// Runs `$body` with `$f` bound to the comparison `(T, T) -> bool` of the predicate `$op`
/// (eq, ne, lt, le, gt, ge); any other op evaluates `$other`.
#[macro_export]
#[doc(hidden)]
macro_rules! cmp_binary_fn {
    ($op:expr, $T:ty, |$f:ident| $body:expr, else $other:expr) => {{
        use $crate::backend::cpu::elementwise::with_fn;
        use $crate::ops::BinaryOp::*;
        match $op {
            Eq => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x == y,
                |$f| $body,
            ),
            Ne => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x != y,
                |$f| $body,
            ),
            Lt => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x < y,
                |$f| $body,
            ),
            Le => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x <= y,
                |$f| $body,
            ),
            Gt => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x > y,
                |$f| $body,
            ),
            Ge => with_fn(
                #[inline(always)]
                |x: $T, y: $T| x >= y,
                |$f| $body,
            ),
            _ => $other,
        }
    }};
}

/// `x^n` for an integer `n` by repeated squaring, in the same order as the `powi` runtime
/// routine (`__powisf2`/`__powidf2`) so results are unchanged, but inline: a loop whose
/// trip count depends only on `n` vectorises, where a call per element does not.
#[inline(always)]
pub fn powi<T: num_traits::Float>(x: T, n: i32) -> T {
    let recip = n < 0;
    let mut b = n.unsigned_abs();
    let mut a = x;
    let mut r = T::one();
    loop {
        if b & 1 != 0 {
            r = r * a;
        }
        b /= 2;
        if b == 0 {
            break;
        }
        a = a * a;
    }
    if recip {
        T::one() / r
    } else {
        r
    }
}

/// Hands `f` to `body`; lets the op tables above bind an `#[inline(always)]` closure to a
/// name (attributes on closures are accepted in argument position only).
#[inline(always)]
pub fn with_fn<F, R>(f: F, body: impl FnOnce(F) -> R) -> R {
    body(f)
}

fn low_to_f32<T: Element>(v: &[T], l: &Layout) -> (Vec<f32>, Layout) {
    (
        map_unary(v, l, |x: T| x.to_f32()),
        Layout::contiguous(&l.shape),
    )
}

fn unary_float<T: Float>(op: UnaryOp, v: &[T], l: &Layout) -> Vec<T> {
    crate::float_unary_fn!(op, T, |f| map_unary(v, l, f))
}

/// `dst[i] = op(src[i])` over contiguous slices of equal length (the fused-kernel
/// interpreter's unary step; same scalar functions as the eager kernels).
pub fn unary_slice<T: Float>(op: UnaryOp, src: &[T], dst: &mut [T]) {
    crate::float_unary_fn!(op, T, |f| simd(
        #[inline(always)]
        || {
            for (d, x) in dst.iter_mut().zip(src) {
                *d = f(*x);
            }
        }
    ))
}

/// `dst[i] = op(a[i], b[i])` over contiguous slices (arithmetic ops).
pub fn binary_slice<T: Element + num_traits::Num>(op: BinaryOp, a: &[T], b: &[T], dst: &mut [T]) {
    crate::num_binary_fn!(
        op,
        T,
        |f| simd(
            #[inline(always)]
            || {
                for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
                    *d = f(*x, *y);
                }
            }
        ),
        else unreachable!("binary_slice: {} is a predicate", op.name())
    )
}

/// `dst[i] = op(a[i], b[i])` for the comparison predicates over contiguous slices.
pub fn compare_slice<T: Element>(op: BinaryOp, a: &[T], b: &[T], dst: &mut [bool]) {
    crate::cmp_binary_fn!(
        op,
        T,
        |f| simd(
            #[inline(always)]
            || {
                for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
                    *d = f(*x, *y);
                }
            }
        ),
        else unreachable!("compare_slice: {} is not a comparison", op.name())
    )
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
    if matches!(op, Rem | FloorDiv) && !T::DTYPE.is_float() && b.iter().any(|v| v.to_f64() == 0.0) {
        return Err(Error::value(op.name(), "integer division by zero"));
    }
    let out = crate::num_binary_fn!(
        op,
        T,
        |f| map_binary(a, la, b, lb, shape, f).map(T::into_storage),
        else crate::cmp_binary_fn!(
            op,
            T,
            |f| map_binary(a, la, b, lb, shape, f).map(|v| CpuStorage::Bool(v.into())),
            else unreachable!("logical ops run on bool")
        )
    )?;
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

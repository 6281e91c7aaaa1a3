//! The scalar math of every float elementwise op, declared once: `float_unary_fn!`,
//! `num_binary_fn!` and `cmp_binary_fn!` bind an op's function for a body to use. The eager
//! strided kernels (`elementwise.rs`) and the fused-kernel interpreter (`crate::lazy`) both
//! expand these tables, so deferred and eager results are bit-identical.

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
            Neg => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| -x,
                |$f| $body,
            ),
            Exp => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.exp_(),
                |$f| $body,
            ),
            Log => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.ln(),
                |$f| $body,
            ),
            Log1p => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.ln_1p(),
                |$f| $body,
            ),
            Expm1 => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.exp_m1(),
                |$f| $body,
            ),
            Sqrt => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.sqrt(),
                |$f| $body,
            ),
            Rsqrt => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| one / x.sqrt(),
                |$f| $body,
            ),
            Abs => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.abs(),
                |$f| $body,
            ),
            Sign => $crate::backend::cpu::op_table::with_fn(
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
            Floor => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.floor(),
                |$f| $body,
            ),
            Ceil => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.ceil(),
                |$f| $body,
            ),
            Round => $crate::backend::cpu::op_table::with_fn(
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
            Relu => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| if x > zero || x.is_nan() { x } else { zero },
                |$f| $body,
            ),
            Sigmoid => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| one / (one + (-x).exp_()),
                |$f| $body,
            ),
            Tanh => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.tanh_(),
                |$f| $body,
            ),
            Gelu => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| half * x * (one + (x * c(std::f64::consts::FRAC_1_SQRT_2)).erf_()),
                |$f| $body,
            ),
            GeluTanh => {
                let k = c((2.0 / std::f64::consts::PI).sqrt());
                let a = c(0.044715);
                $crate::backend::cpu::op_table::with_fn(
                    #[inline(always)]
                    move |x: $T| half * x * (one + (k * (x + a * x * x * x)).tanh_()),
                    |$f| $body,
                )
            }
            Silu => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x / (one + (-x).exp_()),
                |$f| $body,
            ),
            Softplus { beta, threshold } => {
                let (b, t) = (c(beta), c(threshold));
                $crate::backend::cpu::op_table::with_fn(
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
            Sin => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.sin(),
                |$f| $body,
            ),
            Cos => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.cos(),
                |$f| $body,
            ),
            Reciprocal => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| one / x,
                |$f| $body,
            ),
            Square => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x * x,
                |$f| $body,
            ),
            Erf => $crate::backend::cpu::op_table::with_fn(
                #[inline(always)]
                |x: $T| x.erf_(),
                |$f| $body,
            ),
            Elu { alpha } => {
                let a = c(alpha);
                $crate::backend::cpu::op_table::with_fn(
                    #[inline(always)]
                    move |x: $T| if x > zero { x } else { a * (x.exp_() - one) },
                    |$f| $body,
                )
            }
            LeakyRelu { slope } => {
                let s = c(slope);
                $crate::backend::cpu::op_table::with_fn(
                    #[inline(always)]
                    move |x: $T| if x > zero { x } else { x * s },
                    |$f| $body,
                )
            }
            PowScalar { exponent } => {
                let e = c(exponent);
                if exponent == 2.0 {
                    $crate::backend::cpu::op_table::with_fn(
                        #[inline(always)]
                        |x: $T| x * x,
                        |$f| $body,
                    )
                } else if exponent == 0.5 {
                    $crate::backend::cpu::op_table::with_fn(
                        #[inline(always)]
                        |x: $T| x.sqrt(),
                        |$f| $body,
                    )
                } else if exponent == 1.0 {
                    $crate::backend::cpu::op_table::with_fn(
                        #[inline(always)]
                        |x: $T| x,
                        |$f| $body,
                    )
                } else if exponent == exponent.trunc() && exponent.abs() < 64.0 {
                    let n = exponent as i32;
                    $crate::backend::cpu::op_table::with_fn(
                        #[inline(always)]
                        move |x: $T| $crate::backend::cpu::op_table::powi(x, n),
                        |$f| $body,
                    )
                } else {
                    $crate::backend::cpu::op_table::with_fn(
                        #[inline(always)]
                        move |x: $T| x.powf(e),
                        |$f| $body,
                    )
                }
            }
            RPowScalar { c: base } => {
                let b = c(base);
                $crate::backend::cpu::op_table::with_fn(
                    #[inline(always)]
                    move |x: $T| b.powf(x),
                    |$f| $body,
                )
            }
            Clamp { min, max } => {
                let (lo, hi) = (c(min), c(max));
                let (has_lo, has_hi) = (!min.is_nan(), !max.is_nan());
                $crate::backend::cpu::op_table::with_fn(
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
                $crate::backend::cpu::op_table::with_fn(
                    #[inline(always)]
                    move |x: $T| x + k,
                    |$f| $body,
                )
            }
            MulScalar { c: k } => {
                let k = c(k);
                $crate::backend::cpu::op_table::with_fn(
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
        use $crate::backend::cpu::op_table::with_fn;
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
        use $crate::backend::cpu::op_table::with_fn;
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

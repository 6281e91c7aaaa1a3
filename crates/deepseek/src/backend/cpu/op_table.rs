//! The scalar math of the binary elementwise ops: `num_binary_fn!` and `cmp_binary_fn!` bind an op's function for a body to use. The eager
//! strided kernels (`elementwise.rs`) and the fused-kernel interpreter (`crate::lazy`) both
//! expand these tables, so deferred and eager results are bit-identical.

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

/// Hands `f` to `body`; lets the op tables above bind an `#[inline(always)]` closure to a
/// name (attributes on closures are accepted in argument position only).
#[inline(always)]
pub fn with_fn<F, R>(f: F, body: impl FnOnce(F) -> R) -> R {
    body(f)
}

pub use crate::scalar::powi;

//! The machinery that turns one op declaration into everything derived from it.
//!
//! [`declare_unary_ops!`] takes the table in `ops/unary.rs` (one entry per unary primitive:
//! name, attributes with their defaults, differentiable domain, what backward saves, the
//! scalar function for floats and for integers, the backward formula in tensor ops) and
//! generates the [`UnaryOp`](super::UnaryOp) enum and its metadata, the backward rule, the
//! scalar-function visitors that every kernel expands (eager strided kernels and the fused
//! interpreter), the `Tensor` methods, a descriptor table ([`UNARY_OPS`](super::UNARY_OPS))
//! and `UnaryOp::from_key`, and an exported `for_each_unary_op!` macro through which the
//! Python binding and the test suites derive their methods and case tables.

/// Expands one scalar-function field of a declaration into a visit of `$v`.
macro_rules! __unary_fn {
    ($v:ident, $T:ty, (|$x:ident| $e:expr)) => {
        $v.visit(
            #[inline(always)]
            move |$x: $T| $e,
        )
    };
    ($v:ident, $T:ty, (visit $u:ident $b:block)) => {{
        let $u = $v;
        $b
    }};
}

/// The integer scalar function of a declaration, or `None` for float-only ops.
macro_rules! __unary_int_fn {
    ($v:ident, $T:ty, none) => {
        None
    };
    ($v:ident, $T:ty, $f:tt) => {
        Some(__unary_fn!($v, $T, $f))
    };
}

macro_rules! __unary_int_ok {
    (none) => {
        false
    };
    ($f:tt) => {
        true
    };
}

/// The backward formula of a declaration, with the saved tensor bound to the formula's name.
macro_rules! __unary_grad {
    ($ctx:ident, $gs:ident, nothing, (|$g:ident| $e:expr)) => {{
        let $g = $gs;
        $e
    }};
    ($ctx:ident, $gs:ident, input, (|$g:ident, $x:ident| $e:expr)) => {{
        let $g = $gs;
        let $x = $ctx.saved(0).clone();
        $e
    }};
    ($ctx:ident, $gs:ident, output, (|$g:ident, $y:ident| $e:expr)) => {{
        let $g = $gs;
        let $y = $ctx.output(0);
        $e
    }};
}

macro_rules! __unary_attr_default {
    () => {
        None
    };
    ($d:expr) => {
        Some($d)
    };
}

/// A `Tensor` method for a declaration (none for `_`: the method is written by hand).
macro_rules! __unary_method {
    (_, $V:ident, {$($a:ident),*}, $($doc:literal)*) => {};
    ($m:ident, $V:ident, {$($a:ident),*}, $($doc:literal)*) => {
        impl $crate::Tensor {
            $(#[doc = $doc])*
            pub fn $m(&self $(, $a: f64)*) -> $crate::Result<$crate::Tensor> {
                apply(self, UnaryOp::$V { $($a),* })
            }
        }
    };
}

/// Builds the `UnaryOp` enum: unit variants for ops without attributes, `f64` fields otherwise.
macro_rules! __unary_enum {
    (@acc [$($acc:tt)*]) => {
        /// The unary elementwise primitives (declared once in `ops/unary.rs`).
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum UnaryOp {
            $($acc)*
        }
    };
    (@acc [$($acc:tt)*] [$($doc:literal)*] $V:ident {} $($rest:tt)*) => {
        __unary_enum! { @acc [$($acc)* $(#[doc = $doc])* $V,] $($rest)* }
    };
    (@acc [$($acc:tt)*] [$($doc:literal)*] $V:ident {$($a:ident)+} $($rest:tt)*) => {
        __unary_enum! { @acc [$($acc)* $(#[doc = $doc])* $V { $($a: f64),* },] $($rest)* }
    };
}

/// Declares the unary primitives; see the module docs. `$d` is a literal `$` (for the exported
/// `for_each_unary_op!` macro this generates).
macro_rules! declare_unary_ops {
    ($d:tt
     $(
        $(#[doc = $doc:literal])*
        $V:ident { $($a:ident $(= $def:expr)?),* } $key:literal as $name:literal
            => $method:tt $(!$nopy:ident)?,
            dom $dom:expr, saves $saves:ident,
            int $int:tt, float $float:tt, grad $grad:tt;
     )*) => {
        __unary_enum! { @acc [] $( [$($doc)*] $V {$($a)*} )* }

        impl UnaryOp {
            /// The op's name (profiler, visualizer, errors, kernel printouts).
            pub fn name(&self) -> &'static str {
                match self { $( UnaryOp::$V { .. } => $name, )* }
            }
            /// The unique key of the op in [`UNARY_OPS`] and the golden cases.
            pub fn key(&self) -> &'static str {
                match self { $( UnaryOp::$V { .. } => $key, )* }
            }
            /// Ops that keep integer dtypes (others need a float input; ints are promoted to
            /// f32).
            pub fn int_ok(&self) -> bool {
                match self { $( UnaryOp::$V { .. } => __unary_int_ok!($int), )* }
            }
            /// Whether the op saves its output (not its input) for backward.
            pub(crate) fn saves_output(&self) -> bool {
                match self { $( UnaryOp::$V { .. } => stringify!($saves) == "output", )* }
            }
            /// Whether backward needs nothing saved.
            pub(crate) fn saves_nothing(&self) -> bool {
                match self { $( UnaryOp::$V { .. } => stringify!($saves) == "nothing", )* }
            }
            /// Builds the op named `key` (see [`UNARY_OPS`]), reading each attribute through
            /// `attr` (missing ones take their default; a required one missing is an error).
            /// `None` when no unary op has that key.
            pub fn from_key(
                key: &str,
                attr: &dyn Fn(&str) -> std::result::Result<Option<f64>, String>,
            ) -> Option<std::result::Result<UnaryOp, String>> {
                match key {
                    $( $key => Some(Ok(UnaryOp::$V { $($a: match attr_value(
                        attr,
                        $key,
                        stringify!($a),
                        __unary_attr_default!($($def)?),
                    ) {
                        Ok(v) => v,
                        Err(e) => return Some(Err(e)),
                    }),* })), )*
                    _ => None,
                }
            }
        }

        /// An attribute's value from `attr`, else its default, else an error naming it.
        fn attr_value(
            attr: &dyn Fn(&str) -> std::result::Result<Option<f64>, String>,
            key: &str,
            name: &str,
            default: Option<f64>,
        ) -> std::result::Result<f64, String> {
            attr(name)?
                .or(default)
                .ok_or_else(|| format!("{key}: attribute {name} is required"))
        }

        /// Every unary primitive's descriptor, in declaration order.
        pub const UNARY_OPS: &[UnaryDecl] = &[
            $( UnaryDecl {
                key: $key,
                name: $name,
                method: stringify!($method),
                attrs: &[$( (stringify!($a), __unary_attr_default!($($def)?)) ),*],
                domain: $dom,
                int_ok: __unary_int_ok!($int),
            }, )*
        ];

        /// Runs `v` with the scalar function of float op `op` over `T`: the one definition of
        /// each op's math, expanded by the eager kernels and the fused-kernel interpreter (so
        /// eager and deferred results are bit-identical).
        #[inline(always)]
        pub fn visit_float<T: $crate::scalar::Float, V: UnaryVisitor<T>>(op: UnaryOp, v: V) -> V::Out {
            #[allow(unused_imports)]
            use $crate::scalar::Float as _;
            #[allow(unused_imports)]
            use num_traits::{One as _, Zero as _};
            match op {
                $( #[allow(unused_variables)] UnaryOp::$V { $($a),* } => __unary_fn!(v, T, $float), )*
            }
        }

        /// Runs `v` with the integer scalar function of `op` over `T`, or returns `None` when
        /// the op is float-only.
        #[inline(always)]
        pub fn visit_int<T, V>(op: UnaryOp, v: V) -> Option<V::Out>
        where
            T: num_traits::PrimInt + num_traits::Signed + $crate::tensor::Element,
            V: UnaryVisitor<T>,
        {
            #[allow(unused_imports)]
            use $crate::tensor::Element as _;
            match op {
                $( #[allow(unused_variables)] UnaryOp::$V { $($a),* } => __unary_int_fn!(v, T, $int), )*
            }
        }

        /// The backward rule of every unary op: input gradient from the output gradient.
        pub(crate) fn backward(
            op: UnaryOp,
            ctx: &$crate::autograd::Ctx,
            grads: &[Option<$crate::Tensor>],
        ) -> $crate::Result<Vec<Option<$crate::Tensor>>> {
            let Some(g) = &grads[0] else {
                return Ok(vec![None]);
            };
            let gi: $crate::Tensor = match op {
                $( #[allow(unused_variables)] UnaryOp::$V { $($a),* } => __unary_grad!(ctx, g, $saves, $grad), )*
            };
            Ok(vec![Some(gi)])
        }

        $( __unary_method!($method, $V, {$($a),*}, $($doc)*); )*

        /// Calls `$cb! { ... }` with one entry per unary primitive:
        /// `key, name, method, [attrs], [nopy], [docs];` where `method` is the `Tensor` method
        /// (`_` when written by hand), `attrs` the attribute names and `nopy` present when the
        /// Python binding writes that method by hand. The binding and the test suites derive
        /// their methods and case tables from it.
        #[macro_export]
        macro_rules! for_each_unary_op {
            ($d cb:ident) => {
                $d cb! {
                    $( $key, $name, $method, [$($a),*], [$($nopy)?], [$($doc)*]; )*
                }
            };
        }
    };
}

/// A binary scalar-function field: a visit of `$v`, or `None` for `none`.
macro_rules! __binary_fn {
    ($v:ident, $T:ty, $R:ty, none) => {
        None
    };
    ($v:ident, $T:ty, $R:ty, (|$x:ident, $y:ident| $e:expr)) => {
        Some($v.visit(
            #[inline(always)]
            move |$x: $T, $y: $T| -> $R { $e },
        ))
    };
}

macro_rules! __binary_bool_fn {
    (none) => {
        None
    };
    ((|$x:ident, $y:ident| $e:expr)) => {
        Some((|$x: bool, $y: bool| $e) as fn(bool, bool) -> bool)
    };
}

macro_rules! __is_some {
    (none) => {
        false
    };
    ($f:tt) => {
        true
    };
}

/// The `Tensor` methods of a binary declaration (none for `_`).
macro_rules! __binary_method {
    (_, $V:ident, $($doc:literal)*) => {};
    ($m:ident, $V:ident, $($doc:literal)*) => {
        impl $crate::Tensor {
            $(#[doc = $doc])*
            pub fn $m(&self, other: &$crate::Tensor) -> $crate::Result<$crate::Tensor> {
                apply(self, other, BinaryOp::$V)
            }
        }
    };
}

macro_rules! __binary_scalar_method {
    (_, $V:ident, $name:literal) => {};
    ($m:ident, $V:ident, $name:literal) => {
        impl $crate::Tensor {
            #[doc = concat!("`", $name, "` with a scalar (PyTorch's scalar promotion).")]
            pub fn $m(&self, v: f64) -> $crate::Result<$crate::Tensor> {
                let s = $crate::Tensor::scalar_like(v, self)?;
                apply(self, &s, BinaryOp::$V)
            }
        }
    };
}

/// Declares the binary primitives (see `ops/binary.rs`): each entry's name, `Tensor`
/// method, scalar method, what backward saves, scalar functions (numeric `(T, T) -> T`,
/// comparison `(T, T) -> bool`, bool `(bool, bool) -> bool`) and backward formula
/// `(|ctx, g| (grad_a, grad_b))` (before reduction to the inputs' shapes).
macro_rules! declare_binary_ops {
    ($d:tt
     $(
        $(#[doc = $doc:literal])*
        $V:ident $name:literal => $method:tt, scalar $smethod:tt, saves $saves:ident,
            num $num:tt, cmp $cmp:tt, bool $bool:tt, grad (|$ctx:ident, $g:ident| $grad:expr);
     )*) => {
        /// The binary elementwise primitives (declared once in `ops/binary.rs`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum BinaryOp {
            $( $(#[doc = $doc])* $V, )*
        }

        impl BinaryOp {
            /// The op's name (profiler, errors, kernel printouts; also its key).
            pub fn name(&self) -> &'static str {
                match self { $( BinaryOp::$V => $name, )* }
            }
            /// Comparisons and logical ops return bool.
            pub fn is_predicate(&self) -> bool {
                match self { $( BinaryOp::$V => !__is_some!($num), )* }
            }
            /// Which inputs (and whether the output) backward keeps.
            pub(crate) fn saves(&self) -> (bool, bool) {
                match self {
                    $( BinaryOp::$V => match stringify!($saves) {
                        "nothing" => (false, false),
                        "inputs" => (true, false),
                        _ => (true, true),
                    }, )*
                }
            }
            /// The op named `name`, if any.
            pub fn from_key(name: &str) -> Option<BinaryOp> {
                match name {
                    $( $name => Some(BinaryOp::$V), )*
                    _ => None,
                }
            }
        }

        /// Every binary primitive's descriptor, in declaration order.
        pub const BINARY_OPS: &[BinaryDecl] = &[
            $( BinaryDecl {
                name: $name,
                method: stringify!($method),
                scalar_method: stringify!($smethod),
                predicate: !__is_some!($num),
            }, )*
        ];

        /// Runs `v` with the numeric scalar function of `op` over `T` (`None` for
        /// predicates): the one definition the eager kernels and the fused interpreter expand.
        #[inline(always)]
        #[allow(clippy::eq_op)]
        pub fn visit_num<T, V>(op: BinaryOp, v: V) -> Option<V::Out>
        where
            T: $crate::tensor::Element + num_traits::Num,
            V: BinaryVisitor<T, T>,
        {
            #[allow(unused_imports)]
            use $crate::tensor::Element as _;
            match op {
                $( BinaryOp::$V => __binary_fn!(v, T, T, $num), )*
            }
        }

        /// Runs `v` with the comparison of `op` over `T` (`None` unless `op` compares).
        #[inline(always)]
        pub fn visit_cmp<T, V>(op: BinaryOp, v: V) -> Option<V::Out>
        where
            T: $crate::tensor::Element,
            V: BinaryVisitor<T, bool>,
        {
            match op {
                $( BinaryOp::$V => __binary_fn!(v, T, bool, $cmp), )*
            }
        }

        /// The function of `op` on bool tensors, if it has one.
        pub fn bool_fn(op: BinaryOp) -> Option<fn(bool, bool) -> bool> {
            match op {
                $( BinaryOp::$V => __binary_bool_fn!($bool), )*
            }
        }

        /// The backward rule of every binary op (gradients reduced to the inputs' shapes).
        pub(crate) fn backward(
            op: BinaryOp,
            ctx: &$crate::autograd::Ctx,
            grads: &[Option<$crate::Tensor>],
        ) -> $crate::Result<Vec<Option<$crate::Tensor>>> {
            let Some(g) = &grads[0] else {
                return Ok(vec![None, None]);
            };
            let (sa, sb) = (ctx.input_shape(0).to_vec(), ctx.input_shape(1).to_vec());
            let (ga, gb): (Option<$crate::Tensor>, Option<$crate::Tensor>) = match op {
                $( #[allow(unused_variables)] BinaryOp::$V => {
                    let $ctx = ctx;
                    let $g = g;
                    $grad
                } )*
            };
            let ga = match ga {
                Some(t) if ctx.needs(0) => Some(super::reduce_to_shape(&t, &sa)?),
                _ => None,
            };
            let gb = match gb {
                Some(t) if ctx.needs(1) => Some(super::reduce_to_shape(&t, &sb)?),
                _ => None,
            };
            Ok(vec![ga, gb])
        }

        $( __binary_method!($method, $V, $($doc)*); )*
        $( __binary_scalar_method!($smethod, $V, $name); )*

        /// Calls `$cb! { ... }` with one entry per binary primitive:
        /// `name, method, scalar_method, [docs];` (`_` where there is no such method).
        #[macro_export]
        macro_rules! for_each_binary_op {
            ($d cb:ident) => {
                $d cb! {
                    $( $name, $method, $smethod, [$($doc)*]; )*
                }
            };
        }
    };
}

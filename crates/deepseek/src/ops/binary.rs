//! Elementwise ops of two inputs with broadcasting and type promotion.
//!
//! **Each binary primitive is declared once**, in the table below (name, `Tensor` methods,
//! what backward saves, scalar functions, backward formula); `ops/decl.rs` generates the
//! [`BinaryOp`] enum, its metadata, [`BINARY_OPS`], the visitors the kernels expand
//! ([`visit_num`], [`visit_cmp`], [`bool_fn`]), the backward rule, the methods and the
//! exported `for_each_binary_op!`.

use super::Op;
use crate::autograd::{needs_record, record1};
use crate::tensor::broadcast_shapes;
use crate::{backend, DType, Error, Result, Tensor};

/// A binary primitive as data (what the binding, tests and tools read).
#[derive(Debug, Clone, Copy)]
pub struct BinaryDecl {
    /// Name and key (golden-case op name; `BinaryOp::from_key`).
    pub name: &'static str,
    /// The `Tensor` method taking a tensor, or `_`.
    pub method: &'static str,
    /// The `Tensor` method taking a scalar, or `_`.
    pub scalar_method: &'static str,
    /// Whether the result is bool.
    pub predicate: bool,
}

/// Receives a binary op's scalar function `(T, T) -> R` (inlined into the caller's loop).
pub trait BinaryVisitor<T, R> {
    type Out;
    fn visit<F: Fn(T, T) -> R + Copy + Send + Sync>(self, f: F) -> Self::Out;
}

declare_binary_ops! { $
    /// `a + b` with broadcasting.
    Add "add" => add, scalar _, saves nothing,
        num (|x, y| x + y), cmp none, bool none,
        grad (|ctx, g| (Some(g.clone()), Some(g.clone())));
    /// `a - b`.
    Sub "sub" => sub, scalar _, saves nothing,
        num (|x, y| x - y), cmp none, bool none,
        grad (|ctx, g| (
            Some(g.clone()),
            if ctx.needs(1) { Some(g.neg()?) } else { None },
        ));
    /// `a * b`.
    Mul "mul" => mul, scalar _, saves inputs,
        num (|x, y| x * y), cmp none, bool (|a, b| a & b),
        grad (|ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            (
                if ctx.needs(0) { Some(g.mul(b)?) } else { None },
                if ctx.needs(1) { Some(g.mul(a)?) } else { None },
            )
        });
    /// `a / b` (true division: integer inputs give f32).
    Div "div" => div, scalar _, saves inputs,
        num (|x, y| x / y), cmp none, bool none,
        grad (|ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            let ga = g.div(b)?;
            let gb = if ctx.needs(1) {
                Some(ga.mul(a)?.div(b)?.neg()?)
            } else {
                None
            };
            (Some(ga), gb)
        });
    /// Elementwise maximum (NaN wins).
    Maximum "maximum" => maximum, scalar maximum_scalar, saves inputs,
        num (|x, y| if x != x || x > y { x } else { y }), cmp none, bool (|a, b| a | b),
        grad (|ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            let tie = a.eq(b)?;
            let half = g.mul_scalar(0.5)?;
            let base = Tensor::where_cond(&tie, &half, g)?;
            (
                Some(base.masked_fill(&a.lt(b)?, 0.0)?),
                Some(base.masked_fill(&a.gt(b)?, 0.0)?),
            )
        });
    /// Elementwise minimum (NaN wins).
    Minimum "minimum" => minimum, scalar minimum_scalar, saves inputs,
        num (|x, y| if x != x || x < y { x } else { y }), cmp none, bool (|a, b| a & b),
        grad (|ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            let tie = a.eq(b)?;
            let half = g.mul_scalar(0.5)?;
            let base = Tensor::where_cond(&tie, &half, g)?;
            (
                Some(base.masked_fill(&a.gt(b)?, 0.0)?),
                Some(base.masked_fill(&a.lt(b)?, 0.0)?),
            )
        });
    /// `a ** b`.
    Pow "pow" => pow, scalar _, saves inputs_output,
        num (|x, y| T::from_f64(x.to_f64().powf(y.to_f64()))), cmp none, bool none,
        grad (|ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            let ga = if ctx.needs(0) {
                Some(g.mul(&b.mul(&a.pow(&b.sub_scalar(1.0)?)?)?)?)
            } else {
                None
            };
            let gb = if ctx.needs(1) {
                let y = ctx.output(0);
                // d/db a^b = a^b ln a; PyTorch defines it as 0 where a == 0 and b >= 0.
                let d = y.mul(&a.log()?)?;
                let zero = a.eq_scalar(0.0)?.logical_and(&b.ge_scalar(0.0)?)?;
                Some(g.mul(&d.masked_fill(&zero, 0.0)?)?)
            } else {
                None
            };
            (ga, gb)
        });
    /// Python's `%` (the sign of the divisor).
    Rem "remainder" => remainder, scalar remainder_scalar, saves inputs,
        num (|x, y| {
            let (xf, yf) = (x.to_f64(), y.to_f64());
            let r = xf - (xf / yf).floor() * yf;
            T::from_f64(if T::DTYPE.is_float() { r } else { r.round() })
        }),
        cmp none, bool none,
        grad (|ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            (
                Some(g.clone()),
                if ctx.needs(1) {
                    Some(g.mul(&a.floor_divide(b)?)?.neg()?)
                } else {
                    None
                },
            )
        });
    /// Python's `//`.
    FloorDiv "floor_divide" => floor_divide, scalar floor_divide_scalar, saves nothing,
        num (|x, y| T::from_f64((x.to_f64() / y.to_f64()).floor())), cmp none, bool none,
        grad (|ctx, g| (Some(g.zeros_like()?), Some(g.zeros_like()?)));
    /// `a == b` (bool).
    Eq "eq" => eq, scalar eq_scalar, saves nothing,
        num none, cmp (|x, y| x == y), bool (|a, b| a == b), grad (|ctx, g| (None, None));
    /// `a != b`.
    Ne "ne" => ne, scalar ne_scalar, saves nothing,
        num none, cmp (|x, y| x != y), bool (|a, b| a ^ b), grad (|ctx, g| (None, None));
    /// `a < b`.
    Lt "lt" => lt, scalar lt_scalar, saves nothing,
        num none, cmp (|x, y| x < y), bool (|a, b| !a & b), grad (|ctx, g| (None, None));
    /// `a <= b`.
    Le "le" => le, scalar le_scalar, saves nothing,
        num none, cmp (|x, y| x <= y), bool (|a, b| !a | b), grad (|ctx, g| (None, None));
    /// `a > b`.
    Gt "gt" => gt, scalar gt_scalar, saves nothing,
        num none, cmp (|x, y| x > y), bool (|a, b| a & !b), grad (|ctx, g| (None, None));
    /// `a >= b`.
    Ge "ge" => ge, scalar ge_scalar, saves nothing,
        num none, cmp (|x, y| x >= y), bool (|a, b| a | !b), grad (|ctx, g| (None, None));
    /// Logical and (nonzero is true).
    And "logical_and" => logical_and, scalar _, saves nothing,
        num none, cmp none, bool (|a, b| a & b), grad (|ctx, g| (None, None));
    /// Logical or.
    Or "logical_or" => logical_or, scalar _, saves nothing,
        num none, cmp none, bool (|a, b| a | b), grad (|ctx, g| (None, None));
    /// Logical xor.
    Xor "logical_xor" => logical_xor, scalar _, saves nothing,
        num none, cmp none, bool (|a, b| a ^ b), grad (|ctx, g| (None, None));
}

pub(crate) fn apply(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    if a.device() != b.device() {
        return Err(Error::device(
            op.name(),
            format!(
                "expected both tensors on the same device, got {} and {}",
                a.device(),
                b.device()
            ),
        ));
    }
    let shape = broadcast_shapes(op.name(), a.shape(), b.shape())?;
    let mut dt = a.result_type(b);
    match op {
        BinaryOp::Div | BinaryOp::Pow if !dt.is_float() => dt = DType::F32,
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => dt = DType::Bool,
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul
            if dt == DType::Bool && op != BinaryOp::Mul =>
        {
            dt = DType::I64
        }
        _ => {}
    }
    let a = a.to_dtype(dt)?;
    let b = b.to_dtype(dt)?;
    let out = backend::binary(op, &a, &b, &shape)?;
    if op.is_predicate() || !needs_record(&[&a, &b]) {
        return Ok(out);
    }
    let (inputs, output) = op.saves();
    let saved = if inputs {
        vec![a.clone(), b.clone()]
    } else {
        vec![]
    };
    Ok(record1(Op::Binary(op), &[&a, &b], out, saved, output))
}

impl Tensor {
    /// The dtype `self <op> other` computes in (PyTorch's `torch.result_type`, 0-d rule
    /// included: see [`DType::result_type`]).
    pub fn result_type(&self, other: &Tensor) -> DType {
        DType::result_type(
            self.dtype(),
            self.rank() == 0,
            other.dtype(),
            other.rank() == 0,
        )
    }
    /// Applies the binary primitive `op` with broadcasting and promotion (the named methods
    /// `add`, `mul`, `eq`, ... are this with the op spelled out).
    pub fn binary(&self, other: &Tensor, op: BinaryOp) -> Result<Tensor> {
        apply(self, other, op)
    }
}

impl Tensor {
    /// Logical not (bool result).
    pub fn logical_not(&self) -> Result<Tensor> {
        self.eq_scalar(0.0)
    }
    /// A 0-d tensor holding `v` in the dtype `x` would have after scalar promotion.
    pub(crate) fn scalar_like(v: f64, x: &Tensor) -> Result<Tensor> {
        let is_float = v.fract() != 0.0 || !v.is_finite();
        let dt = if x.dtype() == DType::Bool && !is_float {
            DType::Bool
        } else {
            DType::promote_scalar(x.dtype(), is_float)
        };
        let dt = if dt == DType::Bool && v != 0.0 && v != 1.0 {
            DType::I64
        } else {
            dt
        };
        Tensor::full(&[], v, dt)?.to_device(x.device())
    }
}

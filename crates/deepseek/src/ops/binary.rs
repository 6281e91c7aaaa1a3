//! Elementwise ops of two inputs with broadcasting and type promotion.

use super::{reduce_to_shape, Op};
use crate::autograd::{needs_record, record1, Ctx};
use crate::tensor::broadcast_shapes;
use crate::{backend, DType, Error, Result, Tensor};

/// The binary elementwise ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Pow,
    /// Python's `%` (sign of the divisor).
    Rem,
    /// Python's `//`.
    FloorDiv,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Xor,
}

impl BinaryOp {
    pub fn name(&self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            Maximum => "maximum",
            Minimum => "minimum",
            Pow => "pow",
            Rem => "remainder",
            FloorDiv => "floor_divide",
            Eq => "eq",
            Ne => "ne",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
            And => "logical_and",
            Or => "logical_or",
            Xor => "logical_xor",
        }
    }
    /// Comparisons and logical ops return bool.
    pub fn is_predicate(&self) -> bool {
        use BinaryOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge | And | Or | Xor)
    }
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
    let saved = match op {
        BinaryOp::Add | BinaryOp::Sub => vec![],
        _ => vec![a.clone(), b.clone()],
    };
    Ok(record1(
        Op::Binary(op),
        &[&a, &b],
        out,
        saved,
        op == BinaryOp::Pow,
    ))
}

pub(crate) fn backward(
    op: BinaryOp,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    use BinaryOp::*;
    let Some(g) = &grads[0] else {
        return Ok(vec![None, None]);
    };
    let (sa, sb) = (ctx.input_shape(0).to_vec(), ctx.input_shape(1).to_vec());
    let (ga, gb): (Option<Tensor>, Option<Tensor>) = match op {
        Add => (Some(g.clone()), Some(g.clone())),
        Sub => (
            Some(g.clone()),
            if ctx.needs(1) { Some(g.neg()?) } else { None },
        ),
        Mul => {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            (
                if ctx.needs(0) { Some(g.mul(b)?) } else { None },
                if ctx.needs(1) { Some(g.mul(a)?) } else { None },
            )
        }
        Div => {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            let ga = g.div(b)?;
            let gb = if ctx.needs(1) {
                Some(ga.mul(a)?.div(b)?.neg()?)
            } else {
                None
            };
            (Some(ga), gb)
        }
        Maximum | Minimum => {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            let tie = a.eq(b)?;
            let half = g.mul_scalar(0.5)?;
            let base = Tensor::where_cond(&tie, &half, g)?;
            let a_loses = if op == Maximum { a.lt(b)? } else { a.gt(b)? };
            let b_loses = if op == Maximum { a.gt(b)? } else { a.lt(b)? };
            (
                Some(base.masked_fill(&a_loses, 0.0)?),
                Some(base.masked_fill(&b_loses, 0.0)?),
            )
        }
        Pow => {
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
        }
        Rem => {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            (
                Some(g.clone()),
                if ctx.needs(1) {
                    Some(g.mul(&a.floor_divide(b)?)?.neg()?)
                } else {
                    None
                },
            )
        }
        FloorDiv => (Some(g.zeros_like()?), Some(g.zeros_like()?)),
        Eq | Ne | Lt | Le | Gt | Ge | And | Or | Xor => (None, None),
    };
    let ga = match ga {
        Some(t) if ctx.needs(0) => Some(reduce_to_shape(&t, &sa)?),
        _ => None,
    };
    let gb = match gb {
        Some(t) if ctx.needs(1) => Some(reduce_to_shape(&t, &sb)?),
        _ => None,
    };
    Ok(vec![ga, gb])
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

macro_rules! binary_methods {
    ($($(#[$m:meta])* $name:ident => $op:ident;)*) => {
        impl Tensor {
            $( $(#[$m])* pub fn $name(&self, other: &Tensor) -> Result<Tensor> { apply(self, other, BinaryOp::$op) } )*
        }
    };
}

binary_methods! {
    /// `a + b` with broadcasting.
    add => Add;
    /// `a - b`.
    sub => Sub;
    /// `a * b`.
    mul => Mul;
    /// `a / b` (true division: integer inputs give f32).
    div => Div;
    /// Elementwise maximum.
    maximum => Maximum;
    /// Elementwise minimum.
    minimum => Minimum;
    /// `a ** b`.
    pow => Pow;
    /// Python's `%`.
    remainder => Rem;
    /// Python's `//`.
    floor_divide => FloorDiv;
    /// `a == b` (bool).
    eq => Eq;
    /// `a != b`.
    ne => Ne;
    /// `a < b`.
    lt => Lt;
    /// `a <= b`.
    le => Le;
    /// `a > b`.
    gt => Gt;
    /// `a >= b`.
    ge => Ge;
    /// Logical and (nonzero is true).
    logical_and => And;
    /// Logical or.
    logical_or => Or;
    /// Logical xor.
    logical_xor => Xor;
}

macro_rules! scalar_cmp {
    ($($(#[$m:meta])* $name:ident => $op:ident;)*) => {
        impl Tensor {
            $( $(#[$m])* pub fn $name(&self, v: f64) -> Result<Tensor> {
                let s = Tensor::scalar_like(v, self)?;
                apply(self, &s, BinaryOp::$op)
            } )*
        }
    };
}

scalar_cmp! {
    /// `x == v`.
    eq_scalar => Eq;
    /// `x != v`.
    ne_scalar => Ne;
    /// `x < v`.
    lt_scalar => Lt;
    /// `x <= v`.
    le_scalar => Le;
    /// `x > v`.
    gt_scalar => Gt;
    /// `x >= v`.
    ge_scalar => Ge;
    /// `max(x, v)`.
    maximum_scalar => Maximum;
    /// `min(x, v)`.
    minimum_scalar => Minimum;
    /// `x % v`.
    remainder_scalar => Rem;
    /// `x // v`.
    floor_divide_scalar => FloorDiv;
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

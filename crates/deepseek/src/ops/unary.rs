//! Elementwise ops of one input: math, activations, ops with a scalar.

use super::Op;
use crate::autograd::{record1, Ctx};
use crate::{backend, DType, Error, Result, Tensor};

/// The unary elementwise ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Rsqrt,
    Abs,
    Sign,
    Floor,
    Ceil,
    Round,
    Relu,
    Sigmoid,
    Tanh,
    /// Exact GELU, `x * Φ(x)`.
    Gelu,
    /// GELU with the tanh approximation.
    GeluTanh,
    Silu,
    Softplus {
        beta: f64,
        threshold: f64,
    },
    Sin,
    Cos,
    Reciprocal,
    Square,
    Erf,
    Elu {
        alpha: f64,
    },
    LeakyRelu {
        slope: f64,
    },
    /// `x ** exponent`.
    PowScalar {
        exponent: f64,
    },
    /// `clamp(x, min, max)`; NaN bounds mean "none".
    Clamp {
        min: f64,
        max: f64,
    },
    /// `x + c`.
    AddScalar {
        c: f64,
    },
    /// `x * c`.
    MulScalar {
        c: f64,
    },
    /// `c ** x`.
    RPowScalar {
        c: f64,
    },
}

impl UnaryOp {
    pub fn name(&self) -> &'static str {
        use UnaryOp::*;
        match self {
            Neg => "neg",
            Exp => "exp",
            Log => "log",
            Log1p => "log1p",
            Expm1 => "expm1",
            Sqrt => "sqrt",
            Rsqrt => "rsqrt",
            Abs => "abs",
            Sign => "sign",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            Relu => "relu",
            Sigmoid => "sigmoid",
            Tanh => "tanh",
            Gelu => "gelu",
            GeluTanh => "gelu_tanh",
            Silu => "silu",
            Softplus { .. } => "softplus",
            Sin => "sin",
            Cos => "cos",
            Reciprocal => "reciprocal",
            Square => "square",
            Erf => "erf",
            Elu { .. } => "elu",
            LeakyRelu { .. } => "leaky_relu",
            PowScalar { .. } => "pow",
            Clamp { .. } => "clamp",
            AddScalar { .. } => "add",
            MulScalar { .. } => "mul",
            RPowScalar { .. } => "pow",
        }
    }
    /// Ops that keep integer dtypes (others need a float input; ints are promoted to f32).
    pub fn int_ok(&self) -> bool {
        use UnaryOp::*;
        matches!(
            self,
            Neg | Abs | Sign | Relu | Square | Clamp { .. } | Floor | Ceil | Round
        )
    }
    /// Whether the op saves its output (not its input) for backward.
    fn saves_output(&self) -> bool {
        use UnaryOp::*;
        matches!(
            self,
            Exp | Expm1
                | Sqrt
                | Rsqrt
                | Sigmoid
                | Tanh
                | Reciprocal
                | Elu { .. }
                | RPowScalar { .. }
        )
    }
}

/// Applies a unary op, recording it for autograd.
pub(crate) fn apply(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let x = if x.dtype().is_float() || (op.int_ok() && x.dtype() != DType::Bool) {
        x.clone()
    } else if let UnaryOp::AddScalar { c } | UnaryOp::MulScalar { c } = op {
        let is_float = c.fract() != 0.0 || !c.is_finite();
        x.to_dtype(DType::promote_scalar(x.dtype(), is_float))?
    } else if x.dtype() == DType::Bool && op.int_ok() {
        x.to_dtype(DType::I64)?
    } else {
        x.to_dtype(DType::F32)?
    };
    let out = backend::unary(op, &x)?;
    if !crate::autograd::needs_record(&[&x]) {
        return Ok(out);
    }
    let saves_out = op.saves_output();
    let saved = if saves_out { vec![] } else { vec![x.clone()] };
    Ok(record1(Op::Unary(op), &[&x], out, saved, saves_out))
}

pub(crate) fn backward(
    op: UnaryOp,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    use UnaryOp::*;
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    let x = || ctx.saved(0).clone();
    let y = || ctx.output(0);
    let gi = match op {
        Neg => g.neg()?,
        Exp => g.mul(&y())?,
        Expm1 => g.mul(&y().add_scalar(1.0)?)?,
        Log => g.div(&x())?,
        Log1p => g.div(&x().add_scalar(1.0)?)?,
        Sqrt => g.div(&y().mul_scalar(2.0)?)?,
        Rsqrt => g.mul(&y().powf(3.0)?)?.mul_scalar(-0.5)?,
        Abs => g.mul(&x().sign()?)?,
        Sign | Floor | Ceil | Round => g.zeros_like()?,
        Relu => g.mul(&x().gt_scalar(0.0)?.to_dtype(g.dtype())?)?,
        Sigmoid => {
            let y = y();
            g.mul(&y.mul(&y.neg()?.add_scalar(1.0)?)?)?
        }
        Tanh => {
            let y = y();
            g.mul(&y.mul(&y)?.neg()?.add_scalar(1.0)?)?
        }
        Gelu => {
            let x = x();
            let cdf = x
                .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?
                .erf()?
                .add_scalar(1.0)?
                .mul_scalar(0.5)?;
            let pdf = x
                .square()?
                .mul_scalar(-0.5)?
                .exp()?
                .mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt())?;
            g.mul(&cdf.add(&x.mul(&pdf)?)?)?
        }
        GeluTanh => {
            let x = x();
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let x2 = x.square()?;
            let u = x
                .mul(&x2.mul_scalar(0.044715)?.add_scalar(1.0)?)?
                .mul_scalar(k)?;
            let t = u.tanh()?;
            let du = x2
                .mul_scalar(3.0 * 0.044715)?
                .add_scalar(1.0)?
                .mul_scalar(k)?;
            let left = t.add_scalar(1.0)?.mul_scalar(0.5)?;
            let right = x
                .mul_scalar(0.5)?
                .mul(&t.square()?.neg()?.add_scalar(1.0)?)?
                .mul(&du)?;
            g.mul(&left.add(&right)?)?
        }
        Silu => {
            let x = x();
            let s = x.sigmoid()?;
            let t = x.mul(&s.neg()?.add_scalar(1.0)?)?.add_scalar(1.0)?;
            g.mul(&s.mul(&t)?)?
        }
        Softplus { beta, threshold } => {
            let x = x();
            let bx = x.mul_scalar(beta)?;
            let s = bx.sigmoid()?;
            let lin = bx.gt_scalar(threshold)?;
            g.mul(&s.masked_fill(&lin, 1.0)?)?
        }
        Sin => g.mul(&x().cos()?)?,
        Cos => g.mul(&x().sin()?.neg()?)?,
        Reciprocal => {
            let y = y();
            g.mul(&y.mul(&y)?.neg()?)?
        }
        Square => g.mul(&x().mul_scalar(2.0)?)?,
        Erf => {
            let x = x();
            g.mul(
                &x.square()?
                    .neg()?
                    .exp()?
                    .mul_scalar(2.0 / std::f64::consts::PI.sqrt())?,
            )?
        }
        Elu { alpha } => {
            let y = y();
            let pos = y.gt_scalar(0.0)?;
            g.mul(&y.add_scalar(alpha)?.masked_fill(&pos, 1.0)?)?
        }
        LeakyRelu { slope } => {
            let x = x();
            let pos = x.gt_scalar(0.0)?;
            let d = x.ones_like()?.mul_scalar(slope)?.masked_fill(&pos, 1.0)?;
            g.mul(&d)?
        }
        PowScalar { exponent } => {
            if exponent == 0.0 {
                g.zeros_like()?
            } else {
                g.mul(&x().powf(exponent - 1.0)?.mul_scalar(exponent)?)?
            }
        }
        RPowScalar { c } => g.mul(&y().mul_scalar(c.ln())?)?,
        Clamp { min, max } => {
            let x = x();
            let mut keep = x.ones_like()?;
            if !min.is_nan() {
                keep = keep.mul(&x.ge_scalar(min)?.to_dtype(g.dtype())?)?;
            }
            if !max.is_nan() {
                keep = keep.mul(&x.le_scalar(max)?.to_dtype(g.dtype())?)?;
            }
            g.mul(&keep)?
        }
        AddScalar { .. } => g.clone(),
        MulScalar { c } => g.mul_scalar(c)?,
    };
    Ok(vec![Some(gi)])
}

macro_rules! unary_methods {
    ($($(#[$m:meta])* $name:ident => $op:expr;)*) => {
        impl Tensor {
            $( $(#[$m])* pub fn $name(&self) -> Result<Tensor> { apply(self, $op) } )*
        }
    };
}

unary_methods! {
    /// `-x`.
    neg => UnaryOp::Neg;
    /// `e^x`.
    exp => UnaryOp::Exp;
    /// Natural log.
    log => UnaryOp::Log;
    /// `log(1 + x)`.
    log1p => UnaryOp::Log1p;
    /// `e^x - 1`.
    expm1 => UnaryOp::Expm1;
    /// Square root.
    sqrt => UnaryOp::Sqrt;
    /// `1 / sqrt(x)`.
    rsqrt => UnaryOp::Rsqrt;
    /// `|x|`.
    abs => UnaryOp::Abs;
    /// -1, 0 or 1.
    sign => UnaryOp::Sign;
    /// Rounds down.
    floor => UnaryOp::Floor;
    /// Rounds up.
    ceil => UnaryOp::Ceil;
    /// Rounds half to even.
    round => UnaryOp::Round;
    /// `max(x, 0)`.
    relu => UnaryOp::Relu;
    /// `1 / (1 + e^-x)`.
    sigmoid => UnaryOp::Sigmoid;
    /// Hyperbolic tangent.
    tanh => UnaryOp::Tanh;
    /// `x * sigmoid(x)`.
    silu => UnaryOp::Silu;
    /// Sine.
    sin => UnaryOp::Sin;
    /// Cosine.
    cos => UnaryOp::Cos;
    /// `1 / x`.
    reciprocal => UnaryOp::Reciprocal;
    /// `x * x`.
    square => UnaryOp::Square;
    /// The error function.
    erf => UnaryOp::Erf;
}

impl Tensor {
    /// GELU; `approximate` is `"none"` or `"tanh"` as in PyTorch.
    pub fn gelu(&self, approximate: &str) -> Result<Tensor> {
        match approximate {
            "none" => apply(self, UnaryOp::Gelu),
            "tanh" => apply(self, UnaryOp::GeluTanh),
            a => Err(Error::value(
                "gelu",
                format!("approximate must be 'none' or 'tanh', got '{a}'"),
            )),
        }
    }
    /// `log(1 + e^(beta x)) / beta`, linear above `threshold`.
    pub fn softplus(&self, beta: f64, threshold: f64) -> Result<Tensor> {
        apply(self, UnaryOp::Softplus { beta, threshold })
    }
    /// ELU with `alpha`.
    pub fn elu(&self, alpha: f64) -> Result<Tensor> {
        apply(self, UnaryOp::Elu { alpha })
    }
    /// Leaky ReLU with `negative_slope`.
    pub fn leaky_relu(&self, negative_slope: f64) -> Result<Tensor> {
        apply(
            self,
            UnaryOp::LeakyRelu {
                slope: negative_slope,
            },
        )
    }
    /// `x ** exponent` for a scalar exponent.
    pub fn powf(&self, exponent: f64) -> Result<Tensor> {
        apply(self, UnaryOp::PowScalar { exponent })
    }
    /// `c ** x` for a scalar base.
    pub fn rpow_scalar(&self, c: f64) -> Result<Tensor> {
        apply(self, UnaryOp::RPowScalar { c })
    }
    /// Clamps into `[min, max]`; either bound may be `None`.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        if min.is_none() && max.is_none() {
            return Err(Error::value(
                "clamp",
                "at least one of min and max must be given",
            ));
        }
        apply(
            self,
            UnaryOp::Clamp {
                min: min.unwrap_or(f64::NAN),
                max: max.unwrap_or(f64::NAN),
            },
        )
    }
    /// `x + c` (PyTorch's scalar promotion: a fractional `c` makes integer tensors f32).
    pub fn add_scalar(&self, c: f64) -> Result<Tensor> {
        apply(self, UnaryOp::AddScalar { c })
    }
    /// `x - c`.
    pub fn sub_scalar(&self, c: f64) -> Result<Tensor> {
        apply(self, UnaryOp::AddScalar { c: -c })
    }
    /// `x * c`.
    pub fn mul_scalar(&self, c: f64) -> Result<Tensor> {
        apply(self, UnaryOp::MulScalar { c })
    }
    /// `x / c`.
    pub fn div_scalar(&self, c: f64) -> Result<Tensor> {
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.to_dtype(DType::F32)?
        };
        apply(&x, UnaryOp::MulScalar { c: 1.0 / c })
    }
}

//! Elementwise ops of one input: math, activations, ops with a scalar.
//!
//! **Each unary primitive is declared once**, in the table below: its attributes (with
//! defaults), name, `Tensor` method, differentiable domain, what backward saves, its scalar
//! function for floats (and integers, where defined) and its backward formula in tensor ops.
//! Everything else is derived from the entry (see `ops/decl.rs`): the [`UnaryOp`] enum, the
//! eager kernels and the fused-kernel interpreter (through [`visit_float`]/[`visit_int`]),
//! autograd, the `Tensor` method, the Python method and module function, the golden harness's
//! dispatch and the gradcheck table. Adding an op is one entry here plus its golden line in
//! `tools/gen_golden.py`.

use super::Op;
use crate::autograd::record1;
use crate::{backend, DType, Error, Result, Tensor};

/// Where an op is differentiable, for gradient checks: inputs are drawn from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Domain {
    /// Everywhere.
    Any,
    /// Positive numbers only.
    Pos,
    /// Everywhere but near these points (kinks and jumps).
    Away(&'static [f64]),
    /// Within `[lo, hi]`.
    Range(f64, f64),
}

/// A unary primitive as data: what the binding, the tests and the tools read.
#[derive(Debug, Clone, Copy)]
pub struct UnaryDecl {
    /// Unique key (golden-case op name; `UnaryOp::from_key`).
    pub key: &'static str,
    /// Display name (may be shared, e.g. `pow`).
    pub name: &'static str,
    /// The `Tensor` method, or `_` when it is written by hand.
    pub method: &'static str,
    /// Attribute names with their defaults (`None`: required).
    pub attrs: &'static [(&'static str, Option<f64>)],
    /// Where it is differentiable.
    pub domain: Domain,
    /// Whether it keeps integer dtypes.
    pub int_ok: bool,
}

/// Receives an op's scalar function (a `Copy` closure, inlined into the caller's loop).
pub trait UnaryVisitor<T> {
    type Out;
    fn visit<F: Fn(T) -> T + Copy + Send + Sync>(self, f: F) -> Self::Out;
}

declare_unary_ops! { $
    /// `-x`.
    Neg {} "neg" as "neg" => neg, dom Domain::Any, saves nothing,
        int (|x| T::zero() - x), float (|x| -x), grad (|g| g.neg()?);
    /// `e^x`.
    Exp {} "exp" as "exp" => exp, dom Domain::Any, saves output,
        int none, float (|x| x.exp_()), grad (|g, y| g.mul(&y)?);
    /// Natural log.
    Log {} "log" as "log" => log, dom Domain::Pos, saves input,
        int none, float (|x| x.ln()), grad (|g, x| g.div(&x)?);
    /// `log(1 + x)`.
    Log1p {} "log1p" as "log1p" => log1p, dom Domain::Range(-0.5, 2.0), saves input,
        int none, float (|x| x.ln_1p()), grad (|g, x| g.div(&x.add_scalar(1.0)?)?);
    /// `e^x - 1`.
    Expm1 {} "expm1" as "expm1" => expm1, dom Domain::Any, saves output,
        int none, float (|x| x.exp_m1()), grad (|g, y| g.mul(&y.add_scalar(1.0)?)?);
    /// Square root.
    Sqrt {} "sqrt" as "sqrt" => sqrt, dom Domain::Pos, saves output,
        int none, float (|x| x.sqrt()), grad (|g, y| g.div(&y.mul_scalar(2.0)?)?);
    /// `1 / sqrt(x)`.
    Rsqrt {} "rsqrt" as "rsqrt" => rsqrt, dom Domain::Pos, saves output,
        int none, float (|x| T::one() / x.sqrt()),
        grad (|g, y| g.mul(&y.powf(3.0)?)?.mul_scalar(-0.5)?);
    /// `|x|`.
    Abs {} "abs" as "abs" => abs, dom Domain::Away(&[0.0]), saves input,
        int (|x| x.abs()), float (|x| x.abs()), grad (|g, x| g.mul(&x.sign()?)?);
    /// -1, 0 or 1.
    Sign {} "sign" as "sign" => sign, dom Domain::Away(&[0.0]), saves nothing,
        int (|x| x.signum()),
        float (|x| if x > T::zero() {
            T::one()
        } else if x < T::zero() {
            -T::one()
        } else {
            x * T::zero()
        }),
        grad (|g| g.zeros_like()?);
    /// Rounds down.
    Floor {} "floor" as "floor" => floor, dom Domain::Away(&[-2.0, -1.0, 0.0, 1.0, 2.0]),
        saves nothing, int (|x| x), float (|x| x.floor()), grad (|g| g.zeros_like()?);
    /// Rounds up.
    Ceil {} "ceil" as "ceil" => ceil, dom Domain::Away(&[-2.0, -1.0, 0.0, 1.0, 2.0]),
        saves nothing, int (|x| x), float (|x| x.ceil()), grad (|g| g.zeros_like()?);
    /// Rounds half to even.
    Round {} "round" as "round" => round !nopy, dom Domain::Away(&[-1.5, -0.5, 0.5, 1.5]),
        saves nothing, int (|x| x),
        float (|x| if (x - x.trunc()).abs() == T::c(0.5) {
            (x * T::c(0.5)).round() * T::c(2.0)
        } else {
            x.round()
        }),
        grad (|g| g.zeros_like()?);
    /// `max(x, 0)`.
    Relu {} "relu" as "relu" => relu, dom Domain::Away(&[0.0]), saves input,
        int (|x| x.max(T::zero())),
        float (|x| if x > T::zero() || x.is_nan() { x } else { T::zero() }),
        grad (|g, x| g.mul(&x.gt_scalar(0.0)?.to_dtype(g.dtype())?)?);
    /// `1 / (1 + e^-x)`.
    Sigmoid {} "sigmoid" as "sigmoid" => sigmoid, dom Domain::Any, saves output,
        int none, float (|x| T::one() / (T::one() + (-x).exp_())),
        grad (|g, y| g.mul(&y.mul(&y.neg()?.add_scalar(1.0)?)?)?);
    /// Hyperbolic tangent.
    Tanh {} "tanh" as "tanh" => tanh, dom Domain::Any, saves output,
        int none, float (|x| x.tanh_()),
        grad (|g, y| g.mul(&y.mul(&y)?.neg()?.add_scalar(1.0)?)?);
    /// Exact GELU, `x * Φ(x)` (`Tensor::gelu(x, "none")`).
    Gelu {} "gelu" as "gelu" => _, dom Domain::Any, saves input,
        int none,
        float (|x| T::c(0.5) * x * (T::one() + (x * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf_())),
        grad (|g, x| {
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
        });
    /// GELU with the tanh approximation (`Tensor::gelu(x, "tanh")`).
    GeluTanh {} "gelu_tanh" as "gelu_tanh" => _, dom Domain::Any, saves input,
        int none,
        float (|x| T::c(0.5) * x * (T::one()
            + (T::c((2.0 / std::f64::consts::PI).sqrt()) * (x + T::c(0.044715) * x * x * x)).tanh_())),
        grad (|g, x| {
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
        });
    /// `x * sigmoid(x)`.
    Silu {} "silu" as "silu" => silu, dom Domain::Any, saves input,
        int none, float (|x| x / (T::one() + (-x).exp_())),
        grad (|g, x| {
            let s = x.sigmoid()?;
            let t = x.mul(&s.neg()?.add_scalar(1.0)?)?.add_scalar(1.0)?;
            g.mul(&s.mul(&t)?)?
        });
    /// `log(1 + e^(beta x)) / beta`, linear above `threshold`.
    Softplus { beta = 1.0, threshold = 20.0 } "softplus" as "softplus" => softplus !nopy,
        dom Domain::Any, saves input, int none,
        float (|x| if x * T::c(beta) > T::c(threshold) {
            x
        } else {
            (T::one() + (x * T::c(beta)).exp_()).ln() / T::c(beta)
        }),
        grad (|g, x| {
            let bx = x.mul_scalar(beta)?;
            let s = bx.sigmoid()?;
            let lin = bx.gt_scalar(threshold)?;
            g.mul(&s.masked_fill(&lin, 1.0)?)?
        });
    /// Sine.
    Sin {} "sin" as "sin" => sin, dom Domain::Any, saves input,
        int none, float (|x| x.sin()), grad (|g, x| g.mul(&x.cos()?)?);
    /// Cosine.
    Cos {} "cos" as "cos" => cos, dom Domain::Any, saves input,
        int none, float (|x| x.cos()), grad (|g, x| g.mul(&x.sin()?.neg()?)?);
    /// `1 / x`.
    Reciprocal {} "reciprocal" as "reciprocal" => reciprocal,
        dom Domain::Away(&[-0.2, -0.1, 0.0, 0.1, 0.2]), saves output,
        int none, float (|x| T::one() / x), grad (|g, y| g.mul(&y.mul(&y)?.neg()?)?);
    /// `x * x`.
    Square {} "square" as "square" => square, dom Domain::Any, saves input,
        int (|x| x * x), float (|x| x * x), grad (|g, x| g.mul(&x.mul_scalar(2.0)?)?);
    /// The error function.
    Erf {} "erf" as "erf" => erf, dom Domain::Any, saves input,
        int none, float (|x| x.erf_()),
        grad (|g, x| g.mul(
            &x.square()?
                .neg()?
                .exp()?
                .mul_scalar(2.0 / std::f64::consts::PI.sqrt())?,
        )?);
    /// ELU with `alpha`.
    Elu { alpha = 1.0 } "elu" as "elu" => elu !nopy, dom Domain::Away(&[0.0]), saves output,
        int none,
        float (|x| if x > T::zero() { x } else { T::c(alpha) * (x.exp_() - T::one()) }),
        grad (|g, y| {
            let pos = y.gt_scalar(0.0)?;
            g.mul(&y.add_scalar(alpha)?.masked_fill(&pos, 1.0)?)?
        });
    /// Leaky ReLU with `negative_slope`.
    LeakyRelu { negative_slope = 0.01 } "leaky_relu" as "leaky_relu" => leaky_relu !nopy,
        dom Domain::Away(&[0.0]), saves input, int none,
        float (|x| if x > T::zero() { x } else { x * T::c(negative_slope) }),
        grad (|g, x| {
            let pos = x.gt_scalar(0.0)?;
            let d = x.ones_like()?.mul_scalar(negative_slope)?.masked_fill(&pos, 1.0)?;
            g.mul(&d)?
        });
    /// `x ** exponent` for a scalar exponent.
    PowScalar { exponent } "pow_scalar" as "pow" => powf !nopy, dom Domain::Pos, saves input,
        int none,
        // Exponents 2, 3, 0.5, 1 and small integers get their own (inline) function.
        float (visit v {
            let e = T::c(exponent);
            if exponent == 2.0 {
                v.visit(#[inline(always)] |x: T| x * x)
            } else if exponent == 3.0 {
                v.visit(#[inline(always)] |x: T| x * x * x)
            } else if exponent == 0.5 {
                v.visit(#[inline(always)] |x: T| x.sqrt())
            } else if exponent == 1.0 {
                v.visit(#[inline(always)] |x: T| x)
            } else if exponent == exponent.trunc() && exponent.abs() < 64.0 {
                let n = exponent as i32;
                v.visit(#[inline(always)] move |x: T| crate::scalar::powi(x, n))
            } else {
                v.visit(#[inline(always)] move |x: T| x.powf(e))
            }
        }),
        grad (|g, x| if exponent == 0.0 {
            g.zeros_like()?
        } else {
            g.mul(&x.powf(exponent - 1.0)?.mul_scalar(exponent)?)?
        });
    /// `clamp(x, min, max)`; NaN bounds mean "none" (`Tensor::clamp` takes options).
    Clamp { min = f64::NAN, max = f64::NAN } "clamp" as "clamp" => _, dom Domain::Any,
        saves input,
        int (|x| {
            let mut y = x;
            if !min.is_nan() && y.to_f64() < min {
                y = T::from_f64(min.ceil());
            }
            if !max.is_nan() && y.to_f64() > max {
                y = T::from_f64(max.floor());
            }
            y
        }),
        float (|x| {
            let y = if !min.is_nan() && x < T::c(min) { T::c(min) } else { x };
            if !max.is_nan() && y > T::c(max) {
                T::c(max)
            } else {
                y
            }
        }),
        grad (|g, x| {
            let mut keep = x.ones_like()?;
            if !min.is_nan() {
                keep = keep.mul(&x.ge_scalar(min)?.to_dtype(g.dtype())?)?;
            }
            if !max.is_nan() {
                keep = keep.mul(&x.le_scalar(max)?.to_dtype(g.dtype())?)?;
            }
            g.mul(&keep)?
        });
    /// `x + c` (PyTorch's scalar promotion: a fractional `c` makes integer tensors f32).
    AddScalar { c } "add_scalar" as "add" => add_scalar !nopy, dom Domain::Any, saves nothing,
        int (|x| x + T::from_f64(c)), float (|x| x + T::c(c)), grad (|g| g.clone());
    /// `x * c`.
    MulScalar { c } "mul_scalar" as "mul" => mul_scalar !nopy, dom Domain::Any, saves nothing,
        int (|x| x * T::from_f64(c)), float (|x| x * T::c(c)), grad (|g| g.mul_scalar(c)?);
    /// `c ** x` for a scalar base.
    RPowScalar { c } "rpow_scalar" as "pow" => rpow_scalar !nopy, dom Domain::Any,
        saves output, int none, float (|x| T::c(c).powf(x)),
        grad (|g, y| g.mul(&y.mul_scalar(c.ln())?)?);
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
    let saved = if saves_out || op.saves_nothing() {
        vec![]
    } else {
        vec![x.clone()]
    };
    Ok(record1(Op::Unary(op), &[&x], out, saved, saves_out))
}

impl Tensor {
    /// Applies the unary primitive `op` (e.g. built by [`UnaryOp::from_key`]); the named
    /// methods (`exp`, `softplus`, ...) are this with the op spelled out.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        apply(self, op)
    }
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
    /// `x - c`.
    pub fn sub_scalar(&self, c: f64) -> Result<Tensor> {
        apply(self, UnaryOp::AddScalar { c: -c })
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

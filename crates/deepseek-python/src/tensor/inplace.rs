//! In-place methods (`add_`, `mul_`, `zero_`, ...).

use super::*;

#[pymethods]
impl PyTensor {
    // ---------------------------------------------------------------- in place

    /// `self += other * alpha`, in place.
    #[pyo3(signature = (other, alpha=None))]
    fn add_<'py>(
        slf: Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<f64>,
    ) -> PyResult<Bound<'py, Self>> {
        if inplace_arith(&slf, other, BinaryOp::Add, alpha.unwrap_or(1.0))? {
            return Ok(slf);
        }
        let r = {
            let s = slf.borrow();
            s.add(other, alpha)?.t
        };
        inplace(slf, r, "add_")
    }
    /// `sub_(other, *, alpha=1)`: in-place `sub`.
    #[pyo3(signature = (other, alpha=None))]
    fn sub_<'py>(
        slf: Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<f64>,
    ) -> PyResult<Bound<'py, Self>> {
        if inplace_arith(&slf, other, BinaryOp::Sub, alpha.unwrap_or(1.0))? {
            return Ok(slf);
        }
        let r = slf.borrow().sub(other, alpha)?.t;
        inplace(slf, r, "sub_")
    }
    /// `mul_(other)`: in-place `mul`.
    fn mul_<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        if inplace_arith(&slf, other, BinaryOp::Mul, 1.0)? {
            return Ok(slf);
        }
        let r = method_binary(&slf.borrow().t, other, BinaryOp::Mul)?;
        inplace(slf, r, "mul_")
    }
    /// `div_(other)`: in-place `div`.
    fn div_<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        if inplace_arith(&slf, other, BinaryOp::Div, 1.0)? {
            return Ok(slf);
        }
        let r = method_binary(&slf.borrow().t, other, BinaryOp::Div)?;
        inplace(slf, r, "div_")
    }
    /// `pow_(exponent)`: in-place `pow`.
    fn pow_<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let r = method_binary(&slf.borrow().t, other, BinaryOp::Pow)?;
        inplace(slf, r, "pow_")
    }
    fn __iadd__<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<()> {
        Self::add_(slf, other, None).map(|_| ())
    }
    fn __isub__<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<()> {
        Self::sub_(slf, other, None).map(|_| ())
    }
    fn __imul__<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<()> {
        Self::mul_(slf, other).map(|_| ())
    }
    fn __itruediv__<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<()> {
        Self::div_(slf, other).map(|_| ())
    }
    /// Set every element to zero in place; returns `self`.
    fn zero_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.zeros_like().py()?;
        inplace(slf, r, "zero_")
    }
    /// `fill_(value)`: set every element to `value` in place; returns `self`.
    fn fill_<'py>(slf: Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let v: f64 = match value.cast::<PyTensor>() {
            Ok(t) => t.borrow().t.item().py()?,
            Err(_) => value.extract()?,
        };
        let r = slf.borrow().t.full_like(v).py()?;
        inplace(slf, r, "fill_")
    }
    /// `copy_(src)`: copy `src` (broadcast, converted to this dtype) into `self` in place; returns `self`.
    fn copy_<'py>(slf: Bound<'py, Self>, src: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let r = to_tensor_like(src, Some(&slf.borrow().t))?;
        inplace(slf, r, "copy_")
    }
    /// `clamp_(min=None, max=None)`: in-place `clamp`.
    #[pyo3(signature = (min=None, max=None))]
    fn clamp_<'py>(
        slf: Bound<'py, Self>,
        min: Option<&Bound<'py, PyAny>>,
        max: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let r = slf.borrow().clamp(min, max)?.t;
        inplace(slf, r, "clamp_")
    }
    /// `masked_fill_(mask, value)`: in-place `masked_fill`.
    fn masked_fill_<'py>(
        slf: Bound<'py, Self>,
        mask: &Bound<'py, PyAny>,
        value: f64,
    ) -> PyResult<Bound<'py, Self>> {
        let r = slf.borrow().t.masked_fill(&as_tensor(mask)?, value).py()?;
        inplace(slf, r, "masked_fill_")
    }
    /// Fills with U(from, to).
    #[pyo3(signature = (a=0.0, b=1.0, *, generator=None))]
    fn uniform_<'py>(
        slf: Bound<'py, Self>,
        a: f64,
        b: f64,
        generator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let r = {
            let s = slf.borrow();
            crate::generator::with_generator(generator, || {
                Tensor::uniform(s.t.shape(), a, b, s.t.dtype())
            })?
            .py()?
        };
        inplace(slf, r, "uniform_")
    }
    /// Fills with N(mean, std²).
    #[pyo3(signature = (mean=0.0, std=1.0, *, generator=None))]
    fn normal_<'py>(
        slf: Bound<'py, Self>,
        mean: f64,
        std: f64,
        generator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let r = {
            let s = slf.borrow();
            crate::generator::with_generator(generator, || {
                Tensor::normal(s.t.shape(), mean, std, s.t.dtype())
            })?
            .py()?
        };
        inplace(slf, r, "normal_")
    }
    /// In-place `relu`.
    fn relu_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.relu().py()?;
        inplace(slf, r, "relu_")
    }
    /// In-place `neg`.
    fn neg_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.neg().py()?;
        inplace(slf, r, "neg_")
    }
    /// In-place `exp`.
    fn exp_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.exp().py()?;
        inplace(slf, r, "exp_")
    }
    /// In-place `sqrt`.
    fn sqrt_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.sqrt().py()?;
        inplace(slf, r, "sqrt_")
    }
    /// Makes this Python object stand for a detached copy of `other`'s data (dtype and
    /// shape included), keeping its `requires_grad` flag. `Module.to(dtype)` uses it so that
    /// parameters keep their identity, like PyTorch's `param.data = ...`.
    fn _replace_data(&mut self, other: &PyTensor) -> PyResult<()> {
        let rg = self.t.requires_grad();
        let t = other.t.detach();
        if rg {
            t.requires_grad_(true).py()?;
        }
        self.t = t;
        Ok(())
    }
    /// Detaches in place: the object becomes a leaf sharing its data. Only allowed on
    /// tensors without history here, since the underlying handle is immutable.
    fn detach_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let t = slf.borrow().t.detach();
        slf.borrow_mut().t = t;
        Ok(slf)
    }
}

/// `add_` / `sub_` / `mul_` / `div_` of a float tensor outside autograd with an operand of its
/// dtype (a tensor, or a Python number): one pass over the tensor's own buffer through the
/// core's `Tensor::binary_`. False when that does not apply; the caller then computes out of
/// place and copies in (or rebinds, under autograd), and reports any error.
fn inplace_arith(
    slf: &Bound<'_, PyTensor>,
    other: &Bound<'_, PyAny>,
    op: BinaryOp,
    alpha: f64,
) -> PyResult<bool> {
    let s = slf.borrow();
    let t = &s.t;
    if !matches!(t.dtype(), DType::F32 | DType::F64) {
        return Ok(false);
    }
    let grad = deepseek::is_grad_enabled();
    if grad && t.requires_grad() {
        return Ok(false);
    }
    let b = if let Ok(b) = other.cast::<PyTensor>() {
        let b = b.borrow().t.clone();
        if b.dtype() != t.dtype() || (grad && b.requires_grad()) {
            return Ok(false);
        }
        b
    } else if let Some(sc) = scalar::scalar(other)? {
        if scalar::scalar_dtype(t.dtype(), &sc) != t.dtype() {
            return Ok(false);
        }
        Tensor::full(&[], sc.value(), t.dtype()).py()?
    } else {
        return Ok(false);
    };
    match deepseek::tensor::broadcast_shapes("inplace", t.shape(), b.shape()) {
        Ok(shape) if shape == t.shape() => {}
        _ => return Ok(false),
    }
    t.binary_(op, &b, alpha).py()?;
    Ok(true)
}

//! Python scalars and the binary/comparison operators between tensors and scalars.

use super::*;

// ------------------------------------------------------------------------------ scalars

#[derive(Clone, Copy)]
pub enum Scalar {
    F(f64),
    I(f64),
    B(bool),
}

impl Scalar {
    pub fn value(&self) -> f64 {
        match *self {
            Scalar::F(v) | Scalar::I(v) => v,
            Scalar::B(b) => b as u8 as f64,
        }
    }
}

/// `deepseek.Size(shape)` (a tuple subclass, like `torch.Size`); a plain tuple while the
/// Python package is not imported (the extension used on its own).
pub fn size_object<'py>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    static SIZE: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    let t = PyTuple::new(py, shape)?;
    // Not cached until found: during the package's own import `Size` may not exist yet.
    let cls = SIZE.get_or_try_init(py, || {
        py.import("deepseek")
            .and_then(|m| m.getattr("Size"))
            .map(|c| c.unbind())
    });
    match cls {
        Ok(c) => c.bind(py).call1((t,)),
        Err(_) => Ok(t.into_any()),
    }
}

/// A Python bool/int/float (or numpy scalar), if `o` is one. An int outside int64's range is
/// PyTorch's `OverflowError: int too big to convert` (never a silently clamped value).
pub fn scalar(o: &Bound<'_, PyAny>) -> PyResult<Option<Scalar>> {
    if o.cast::<PyBool>().is_ok() {
        return Ok(Some(Scalar::B(o.is_truthy()?)));
    }
    if o.cast::<PyFloat>().is_ok() {
        return Ok(o.extract::<f64>().ok().map(Scalar::F));
    }
    if o.cast::<PyInt>().is_ok() {
        return match o.extract::<i64>() {
            Ok(i) => Ok(Some(Scalar::I(i as f64))),
            Err(_) => Err(int_too_big()),
        };
    }
    if o.cast::<PyTensor>().is_ok() || o.hasattr("__len__").unwrap_or(false) {
        return Ok(None);
    }
    // numpy scalars and other number-likes.
    if o.hasattr("__index__").unwrap_or(false) {
        return match o.extract::<i64>() {
            Ok(i) => Ok(Some(Scalar::I(i as f64))),
            Err(_) => Err(int_too_big()),
        };
    }
    if o.hasattr("__float__").unwrap_or(false) {
        return Ok(o.extract::<f64>().ok().map(Scalar::F));
    }
    Ok(None)
}

/// PyTorch's error for a Python int scalar outside int64.
pub(super) fn int_too_big() -> PyErr {
    pyo3::exceptions::PyOverflowError::new_err("int too big to convert")
}

/// PyTorch's result dtype for `tensor <op> python scalar` (the core's rule; a bool scalar
/// never changes the tensor's dtype).
pub fn scalar_dtype(t: DType, s: &Scalar) -> DType {
    match s {
        Scalar::F(_) => DType::promote_scalar(t, true),
        Scalar::I(_) => DType::promote_scalar(t, false),
        Scalar::B(_) => t,
    }
}

/// `a <op> b` for two tensors (the core applies PyTorch's promotion, 0-d rule included).
pub(super) fn tensor_op(a: &Tensor, b: &Tensor, op: BinaryOp) -> deepseek::Result<Tensor> {
    match op {
        BinaryOp::And => bitlike(a, b, |x, y| x.logical_and(y)),
        BinaryOp::Or => bitlike(a, b, |x, y| x.logical_or(y)),
        BinaryOp::Xor => bitlike(a, b, |x, y| x.logical_xor(y)),
        _ => a.binary(b, op),
    }
}

/// `&`, `|`, `^` on bool tensors (the only ones deepseek supports for these operators).
pub(super) fn bitlike(
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(&Tensor, &Tensor) -> deepseek::Result<Tensor>,
) -> deepseek::Result<Tensor> {
    if a.dtype() != DType::Bool || b.dtype() != DType::Bool {
        return Err(deepseek::Error::DType {
            op: "bitwise".into(),
            msg: format!(
                "&, | and ^ are supported on bool tensors only, got {} and {}",
                a.dtype(),
                b.dtype()
            ),
        });
    }
    f(a, b)
}

/// `a <op> s` (or `s <op> a` when `reflected`) for a Python scalar `s`.
pub(super) fn scalar_op(
    a: &Tensor,
    s: Scalar,
    op: BinaryOp,
    reflected: bool,
) -> deepseek::Result<Tensor> {
    let dt = scalar_dtype(a.dtype(), &s);
    let a = if a.dtype() != dt {
        a.to_dtype(dt)?
    } else {
        a.clone()
    };
    let v = s.value();
    if !reflected && dt != DType::Bool {
        match op {
            BinaryOp::Add => return a.add_scalar(v),
            BinaryOp::Sub => return a.sub_scalar(v),
            BinaryOp::Mul => return a.mul_scalar(v),
            BinaryOp::Div => return a.div_scalar(v),
            BinaryOp::Pow if dt.is_float() => return a.powf(v),
            _ => {}
        }
    }
    if reflected && dt.is_float() {
        match op {
            BinaryOp::Add => return a.add_scalar(v),
            BinaryOp::Mul => return a.mul_scalar(v),
            BinaryOp::Sub => return a.neg()?.add_scalar(v),
            BinaryOp::Pow => return a.rpow_scalar(v),
            _ => {}
        }
    }
    let st = Tensor::full(&[], v, dt)?;
    if reflected {
        tensor_op(&st, &a, op)
    } else {
        tensor_op(&a, &st, op)
    }
}

/// Binary operator entry: `NotImplemented` for operands that are neither tensors nor scalars.
pub(super) fn binary(
    py: Python<'_>,
    a: &Tensor,
    other: &Bound<'_, PyAny>,
    op: BinaryOp,
    reflected: bool,
) -> PyResult<Py<PyAny>> {
    let r = if let Ok(b) = other.cast::<PyTensor>() {
        let b = &b.borrow().t;
        if reflected {
            tensor_op(b, a, op)
        } else {
            tensor_op(a, b, op)
        }
    } else if let Some(s) = scalar(other)? {
        scalar_op(a, s, op, reflected)
    } else {
        return Ok(py.NotImplemented());
    };
    Ok(Py::new(py, PyTensor { t: r.py()? })?.into_any())
}

/// A binary method's operand: a tensor or a scalar (TypeError otherwise).
pub(super) fn method_binary(
    a: &Tensor,
    other: &Bound<'_, PyAny>,
    op: BinaryOp,
) -> PyResult<Tensor> {
    if let Ok(b) = other.cast::<PyTensor>() {
        return tensor_op(a, &b.borrow().t, op).py();
    }
    match scalar(other)? {
        Some(s) => scalar_op(a, s, op, false).py(),
        None => Err(PyTypeError::new_err(format!(
            "expected a Tensor or a number, got {}",
            other.get_type().name()?
        ))),
    }
}

pub(super) fn compare(
    a: &Tensor,
    other: &Bound<'_, PyAny>,
    op: CompareOp,
) -> PyResult<Option<Tensor>> {
    let b = if let Ok(b) = other.cast::<PyTensor>() {
        b.borrow().t.clone()
    } else if let Some(s) = scalar(other)? {
        let v = s.value();
        let r = match op {
            CompareOp::Eq => a.eq_scalar(v),
            CompareOp::Ne => a.ne_scalar(v),
            CompareOp::Lt => a.lt_scalar(v),
            CompareOp::Le => a.le_scalar(v),
            CompareOp::Gt => a.gt_scalar(v),
            CompareOp::Ge => a.ge_scalar(v),
        };
        return r.py().map(Some);
    } else {
        return Ok(None);
    };
    let r = match op {
        CompareOp::Eq => a.eq(&b),
        CompareOp::Ne => a.ne(&b),
        CompareOp::Lt => a.lt(&b),
        CompareOp::Le => a.le(&b),
        CompareOp::Gt => a.gt(&b),
        CompareOp::Ge => a.ge(&b),
    };
    r.py().map(Some)
}

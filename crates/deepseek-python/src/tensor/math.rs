//! Math and reduction methods.

use super::*;

#[pymethods]
impl PyTensor {
    // ---------------------------------------------------------------- math

    /// `add(other, *, alpha=1)`: `self + alpha * other` (tensor or number, broadcasting).
    #[pyo3(signature = (other, alpha=None))]
    pub(super) fn add(&self, other: &Bound<'_, PyAny>, alpha: Option<f64>) -> PyResult<PyTensor> {
        let r = match alpha {
            Some(a) if a != 1.0 => {
                let o = to_tensor_like(other, Some(&self.t))?;
                self.t.add(&o.mul_scalar(a).py()?).py()?
            }
            _ => method_binary(&self.t, other, BinaryOp::Add)?,
        };
        Ok(PyTensor { t: r })
    }
    /// `sub(other, *, alpha=1)`: `self - alpha * other`.
    #[pyo3(signature = (other, alpha=None))]
    pub(super) fn sub(&self, other: &Bound<'_, PyAny>, alpha: Option<f64>) -> PyResult<PyTensor> {
        let r = match alpha {
            Some(a) if a != 1.0 => {
                let o = to_tensor_like(other, Some(&self.t))?;
                self.t.sub(&o.mul_scalar(a).py()?).py()?
            }
            _ => method_binary(&self.t, other, BinaryOp::Sub)?,
        };
        Ok(PyTensor { t: r })
    }
    /// `mul(other)`: elementwise product (tensor or number, broadcasting).
    fn mul(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: method_binary(&self.t, other, BinaryOp::Mul)?,
        })
    }
    /// True division; `rounding_mode` `"floor"` or `"trunc"` as in PyTorch.
    #[pyo3(signature = (other, rounding_mode=None))]
    fn div(&self, other: &Bound<'_, PyAny>, rounding_mode: Option<&str>) -> PyResult<PyTensor> {
        let q = method_binary(&self.t, other, BinaryOp::Div)?;
        let t = match rounding_mode {
            None => q,
            Some("floor") => method_binary(&self.t, other, BinaryOp::FloorDiv)?,
            Some("trunc") => {
                let t = q.sign().py()?.mul(&q.abs().py()?.floor().py()?).py()?;
                let d = DType::promote(
                    self.t.dtype(),
                    to_tensor_like(other, Some(&self.t))?.dtype(),
                );
                if d.is_float() {
                    t
                } else {
                    t.to_dtype(d).py()?
                }
            }
            Some(m) => {
                return Err(PyValueError::new_err(format!(
                    "div: rounding_mode must be None, 'floor' or 'trunc', got '{m}'"
                )))
            }
        };
        Ok(PyTensor { t })
    }
    /// Alias of `div` without rounding: `self / other`.
    fn true_divide(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.div(other, None)
    }
    /// `floor_divide(other)`: elementwise `floor(self / other)`.
    fn floor_divide(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: method_binary(&self.t, other, BinaryOp::FloorDiv)?,
        })
    }
    /// `remainder(other)`: Python-style modulus (the sign follows the divisor).
    fn remainder(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: method_binary(&self.t, other, BinaryOp::Rem)?,
        })
    }
    /// `pow(exponent)`: elementwise power (tensor or number exponent).
    fn pow(&self, exponent: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: method_binary(&self.t, exponent, BinaryOp::Pow)?,
        })
    }
    /// `maximum(other)`: elementwise maximum of two tensors (NaN propagates).
    fn maximum(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let o = to_tensor_like(other, Some(&self.t))?;
        Ok(PyTensor {
            t: self.t.maximum(&o).py()?,
        })
    }
    /// `minimum(other)`: elementwise minimum of two tensors (NaN propagates).
    fn minimum(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let o = to_tensor_like(other, Some(&self.t))?;
        Ok(PyTensor {
            t: self.t.minimum(&o).py()?,
        })
    }
    /// `eq(other)`: elementwise `==`, bool result.
    fn eq(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Eq)
    }
    /// `ne(other)`: elementwise `!=`, bool result.
    fn ne(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Ne)
    }
    /// `lt(other)`: elementwise `<`, bool result.
    fn lt(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Lt)
    }
    /// `le(other)`: elementwise `<=`, bool result.
    fn le(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Le)
    }
    /// `gt(other)`: elementwise `>`, bool result.
    fn gt(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Gt)
    }
    /// `ge(other)`: elementwise `>=`, bool result.
    fn ge(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Ge)
    }
    /// True when both tensors have the same shape and elements.
    fn equal(&self, other: &PyTensor) -> PyResult<bool> {
        if self.t.shape() != other.t.shape() {
            return Ok(false);
        }
        Ok(self.t.to_vec_f64().py()? == other.t.to_vec_f64().py()?)
    }
    /// `|self - other| <= atol + rtol * |other|` everywhere.
    #[pyo3(signature = (other, rtol=1e-5, atol=1e-8, equal_nan=false))]
    fn allclose(&self, other: &PyTensor, rtol: f64, atol: f64, equal_nan: bool) -> PyResult<bool> {
        let shape =
            deepseek::tensor::broadcast_shapes("allclose", self.t.shape(), other.t.shape()).py()?;
        let a = self.t.expand(&shape).py()?.to_vec_f64().py()?;
        let b = other.t.expand(&shape).py()?.to_vec_f64().py()?;
        Ok(a.iter().zip(&b).all(|(&x, &y)| {
            if x.is_nan() || y.is_nan() {
                equal_nan && x.is_nan() && y.is_nan()
            } else if x.is_infinite() || y.is_infinite() {
                x == y
            } else {
                (x - y).abs() <= atol + rtol * y.abs()
            }
        }))
    }
    /// `logical_and(other)`: elementwise AND of truth values, bool result.
    fn logical_and(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.logical_and(&other.t).py()?,
        })
    }
    /// `logical_or(other)`: elementwise OR of truth values, bool result.
    fn logical_or(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.logical_or(&other.t).py()?,
        })
    }
    /// `logical_xor(other)`: elementwise XOR of truth values, bool result.
    fn logical_xor(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.logical_xor(&other.t).py()?,
        })
    }
    /// Rounds half to even; `decimals` shifts the rounding position.
    #[pyo3(signature = (decimals=0))]
    fn round(&self, decimals: i32) -> PyResult<PyTensor> {
        if decimals == 0 {
            return Ok(PyTensor {
                t: self.t.round().py()?,
            });
        }
        let s = 10f64.powi(decimals);
        Ok(PyTensor {
            t: self
                .t
                .mul_scalar(s)
                .py()?
                .round()
                .py()?
                .div_scalar(s)
                .py()?,
        })
    }
    /// Elementwise base-2 logarithm.
    fn log2(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self
                .t
                .log()
                .py()?
                .mul_scalar(std::f64::consts::LOG2_E)
                .py()?,
        })
    }
    /// Elementwise base-10 logarithm.
    fn log10(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self
                .t
                .log()
                .py()?
                .mul_scalar(std::f64::consts::LOG10_E)
                .py()?,
        })
    }
    /// Alias of `neg`: elementwise `-self`.
    fn negative(&self) -> PyResult<PyTensor> {
        self.neg()
    }
    /// GELU; `approximate` is `'none'` or `'tanh'`.
    #[pyo3(signature = (approximate="none"))]
    fn gelu(&self, approximate: &str) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.gelu(approximate).py()?,
        })
    }
    /// `softplus(beta=1, threshold=20)`: `log(1 + exp(beta * x)) / beta`, linear above the threshold.
    #[pyo3(signature = (beta=1.0, threshold=20.0))]
    fn softplus(&self, beta: f64, threshold: f64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.softplus(beta, threshold).py()?,
        })
    }
    /// Clamps into `[min, max]`; bounds may be numbers or tensors.
    #[pyo3(signature = (min=None, max=None))]
    pub(super) fn clamp(
        &self,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let min = min.filter(|m| !m.is_none());
        let max = max.filter(|m| !m.is_none());
        let tensor_bound = min.is_some_and(|m| m.cast::<PyTensor>().is_ok())
            || max.is_some_and(|m| m.cast::<PyTensor>().is_ok());
        if tensor_bound {
            let mut t = self.t.clone();
            if let Some(m) = min {
                t = t.maximum(&to_tensor_like(m, Some(&self.t))?).py()?;
            }
            if let Some(m) = max {
                t = t.minimum(&to_tensor_like(m, Some(&self.t))?).py()?;
            }
            return Ok(PyTensor { t });
        }
        let lo = min.map(|m| m.extract::<f64>()).transpose()?;
        let hi = max.map(|m| m.extract::<f64>()).transpose()?;
        Ok(PyTensor {
            t: self.t.clamp(lo, hi).py()?,
        })
    }
    /// Alias of `clamp`: `clip(min=None, max=None)`.
    #[pyo3(signature = (min=None, max=None))]
    fn clip(
        &self,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        self.clamp(min, max)
    }
    /// `matmul(other)`: matrix product with PyTorch's rules for 1-D and batched operands (`self @ other`).
    fn matmul(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.matmul(&other.t).py()?,
        })
    }
    /// `mm(mat2)`: matrix product of two 2-D tensors.
    fn mm(&self, other: &PyTensor) -> PyResult<PyTensor> {
        if self.t.rank() != 2 || other.t.rank() != 2 {
            return Err(PyValueError::new_err(format!(
                "mm: expected 2-D tensors, got {:?} and {:?}",
                self.t.shape(),
                other.t.shape()
            )));
        }
        self.matmul(other)
    }
    /// `bmm(mat2)`: batched matrix product of (b, n, m) and (b, m, p) tensors.
    fn bmm(&self, other: &PyTensor) -> PyResult<PyTensor> {
        if self.t.rank() != 3 || other.t.rank() != 3 {
            return Err(PyValueError::new_err(format!(
                "bmm: expected 3-D tensors, got {:?} and {:?}",
                self.t.shape(),
                other.t.shape()
            )));
        }
        self.matmul(other)
    }
    /// `dot(other)`: inner product of two 1-D tensors.
    fn dot(&self, other: &PyTensor) -> PyResult<PyTensor> {
        if self.t.rank() != 1 || other.t.rank() != 1 {
            return Err(PyValueError::new_err(format!(
                "dot: expected 1-D tensors, got {:?} and {:?}",
                self.t.shape(),
                other.t.shape()
            )));
        }
        self.matmul(other)
    }

    // ---------------------------------------------------------------- reductions

    /// `sum(dim=None, keepdim=False, *, dtype=None)`: sum over `dim` (all by default).
    #[pyo3(signature = (dim=None, keepdim=false, dtype=None))]
    fn sum(
        &self,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = self.with_dtype(dtype)?;
        let t = match dims_arg(dim)? {
            Some(d) => x.sum_dim(&d, keepdim).py()?,
            None if keepdim => x.sum_dim(&all_dims(&x), true).py()?,
            None => x.sum_all().py()?,
        };
        Ok(PyTensor { t })
    }
    /// `mean(dim=None, keepdim=False, *, dtype=None)`: arithmetic mean over `dim` (all by default).
    #[pyo3(signature = (dim=None, keepdim=false, dtype=None))]
    fn mean(
        &self,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = self.with_dtype(dtype)?;
        if !x.dtype().is_float() {
            return Err(PyTypeError::new_err(format!(
                "mean(): could not infer output dtype. Input dtype must be floating point, got {}",
                x.dtype()
            )));
        }
        let t = match dims_arg(dim)? {
            Some(d) => x.mean_dim(&d, keepdim).py()?,
            None if keepdim => x.mean_dim(&all_dims(&x), true).py()?,
            None => x.mean_all().py()?,
        };
        Ok(PyTensor { t })
    }
    /// `prod(dim=None, keepdim=False, *, dtype=None)`: product over `dim` (all by default).
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn prod(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        let t = match dim {
            Some(d) => self.t.prod_dim(d, keepdim).py()?,
            None => {
                let p = self
                    .t
                    .reshape(&[self.t.numel()])
                    .py()?
                    .prod_dim(0, false)
                    .py()?;
                if keepdim {
                    p.reshape(&vec![1; self.t.rank()]).py()?
                } else {
                    p
                }
            }
        };
        Ok(PyTensor { t })
    }
    /// `amax(dim=None, keepdim=False)`: maximum over the given dims (all by default); gradient split evenly between ties.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amax(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: self.t.amax(&d, keepdim).py()?,
        })
    }
    /// `amin(dim=None, keepdim=False)`: minimum over the given dims (all by default); gradient split evenly between ties.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amin(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: self.t.amin(&d, keepdim).py()?,
        })
    }
    /// `max()` (all elements), `max(dim, keepdim)` → `(values, indices)`, or `max(other)`.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn max(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Py<PyAny>> {
        self.minmax(py, dim, keepdim, true)
    }
    /// `min()`: the smallest element; `min(dim, keepdim=False)`: (values, indices); `min(other)`: elementwise minimum.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn min(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Py<PyAny>> {
        self.minmax(py, dim, keepdim, false)
    }
    /// `argmax(dim=None, keepdim=False)`: index of the first maximum (of the flattened tensor when `dim` is None), int64.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmax(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.argmax(dim, keepdim).py()?,
        })
    }
    /// `argmin(dim=None, keepdim=False)`: index of the first minimum (of the flattened tensor when `dim` is None), int64.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmin(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.argmin(dim, keepdim).py()?,
        })
    }
    /// `logsumexp(dim, keepdim=False)`: `log(sum(exp(self), dim))`, computed stably.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn logsumexp(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: self.t.logsumexp(&d, keepdim).py()?,
        })
    }
    /// Variance with `correction` (or PyTorch's older `unbiased`).
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn var(
        &self,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        correction: Option<f64>,
    ) -> PyResult<PyTensor> {
        let (d, c) = var_args(dim, unbiased, correction)?;
        Ok(PyTensor {
            t: self.t.var_dim(d.as_deref(), c, keepdim).py()?,
        })
    }
    /// `std(dim=None, *, correction=1, keepdim=False)`: standard deviation (Bessel-corrected by default).
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn std(
        &self,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        correction: Option<f64>,
    ) -> PyResult<PyTensor> {
        let (d, c) = var_args(dim, unbiased, correction)?;
        Ok(PyTensor {
            t: self.t.std_dim(d.as_deref(), c, keepdim).py()?,
        })
    }
    /// The p-norm over `dim` (all elements by default).
    #[pyo3(signature = (p=None, dim=None, keepdim=false))]
    fn norm(
        &self,
        p: Option<&Bound<'_, PyAny>>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let ord = match p {
            None => 2.0,
            Some(p) if p.is_none() => 2.0,
            Some(p) => match p.extract::<String>() {
                Ok(s) if s == "fro" => 2.0,
                Ok(s) => return Err(PyValueError::new_err(format!("norm: unsupported p '{s}'"))),
                Err(_) => p.extract::<f64>()?,
            },
        };
        let d = dims_arg(dim)?;
        Ok(PyTensor {
            t: self.t.vector_norm(ord, d.as_deref(), keepdim).py()?,
        })
    }
    /// `cumsum(dim, *, dtype=None)`: cumulative sum along `dim`.
    #[pyo3(signature = (dim, dtype=None))]
    fn cumsum(&self, dim: isize, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.with_dtype(dtype)?.cumsum(dim).py()?,
        })
    }
    /// True when every element is nonzero (`dim` reduces one dim).
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn all(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let z = self.t.eq_scalar(0.0).py()?.to_dtype(DType::I64).py()?;
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: z.sum_dim(&d, keepdim).py()?.eq_scalar(0.0).py()?,
        })
    }
    /// True when some element is nonzero.
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn any(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let z = self.t.ne_scalar(0.0).py()?.to_dtype(DType::I64).py()?;
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: z.sum_dim(&d, keepdim).py()?.gt_scalar(0.0).py()?,
        })
    }
    /// `count_nonzero(dim=None)`: number of non-zero elements over `dim` (all by default), int64.
    #[pyo3(signature = (dim=None))]
    fn count_nonzero(&self, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        let z = self.t.ne_scalar(0.0).py()?.to_dtype(DType::I64).py()?;
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: z.sum_dim(&d, false).py()?,
        })
    }
    /// `softmax(dim, dtype=None)`: `exp(x) / sum(exp(x), dim)`, computed stably.
    #[pyo3(signature = (dim=-1, dtype=None), text_signature = "($self, dim=-1, dtype=None)")]
    fn softmax(&self, dim: isize, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.with_dtype(dtype)?.softmax(dim).py()?,
        })
    }
    /// `log_softmax(dim, dtype=None)`: `log(softmax(self, dim))`, computed stably.
    #[pyo3(signature = (dim=-1, dtype=None), text_signature = "($self, dim=-1, dtype=None)")]
    fn log_softmax(&self, dim: isize, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.with_dtype(dtype)?.log_softmax(dim).py()?,
        })
    }
}

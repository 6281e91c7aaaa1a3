//! `deepseek._C` bindings of `deepseek::quant`: the dynamically quantized Linear behind
//! `deepseek.quantization.quantize_dynamic` and the INT8 kernel selection.

use crate::tensor::PyTensor;
use crate::IntoPy;
use deepseek::quant::{DynamicQuantLinear, Isa};
use deepseek::{DType, Tensor};
use pyo3::prelude::*;

/// A `Linear` with int8 weights and dynamically quantized activations (see
/// `deepseek::quant::DynamicQuantLinear`).
#[pyclass(name = "DynamicQuantLinear", module = "deepseek._C", frozen)]
pub struct PyDynamicQuantLinear {
    q: DynamicQuantLinear,
}

#[pymethods]
impl PyDynamicQuantLinear {
    #[new]
    #[pyo3(signature = (weight, bias=None, per_channel=false, reduce_range=true, isa=None))]
    fn new(
        weight: &PyTensor,
        bias: Option<PyRef<'_, PyTensor>>,
        per_channel: bool,
        reduce_range: bool,
        isa: Option<&str>,
    ) -> PyResult<Self> {
        let mut q =
            DynamicQuantLinear::from_float(&weight.t, bias.as_ref().map(|b| &b.t), per_channel)
                .py()?
                .with_reduce_range(reduce_range);
        if let Some(name) = isa {
            q = q.with_isa(Isa::from_name(name).py()?).py()?;
        }
        Ok(PyDynamicQuantLinear { q })
    }

    /// Rebuilds a layer from its int8 weight values `weight_int` (an integer tensor
    /// `[out, in]`, as `weight_int_repr` returns), its scales and its bias (see
    /// `deepseek::quant::DynamicQuantLinear::from_int8`).
    #[staticmethod]
    #[pyo3(signature = (weight_int, scales, bias=None, per_channel=false, reduce_range=true))]
    fn from_int8(
        weight_int: &PyTensor,
        scales: Vec<f32>,
        bias: Option<PyRef<'_, PyTensor>>,
        per_channel: bool,
        reduce_range: bool,
    ) -> PyResult<Self> {
        let shape = weight_int.t.shape().to_vec();
        if shape.len() != 2 || weight_int.t.dtype().is_float() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "DynamicQuantLinear.from_int8: weight_int must be a 2-d integer tensor, got \
                 {:?} {}",
                shape,
                weight_int.t.dtype()
            )));
        }
        let v = weight_int
            .t
            .to_dtype(DType::I64)
            .py()?
            .to_vec::<i64>()
            .py()?;
        let mut q = Vec::with_capacity(v.len());
        for x in v {
            q.push(i8::try_from(x).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "DynamicQuantLinear.from_int8: weight value {x} is outside the int8 range"
                ))
            })?);
        }
        let bias = match bias {
            None => None,
            Some(b) => Some(b.t.to_dtype(DType::F32).py()?.to_vec::<f32>().py()?),
        };
        let q = DynamicQuantLinear::from_int8(&q, shape[0], shape[1], scales, per_channel, bias)
            .py()?
            .with_reduce_range(reduce_range);
        Ok(PyDynamicQuantLinear { q })
    }

    /// `y = x Wᵀ + b` (f32 output, no autograd history).
    fn forward(&self, x: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.q.forward(&x.t).py()?,
        })
    }

    /// The int8 weight as an int32 tensor `[out, in]` (PyTorch's `weight().int_repr()`).
    fn weight_int_repr(&self) -> PyResult<PyTensor> {
        let v: Vec<i32> = self.q.weight_int8().into_iter().map(i32::from).collect();
        Ok(PyTensor {
            t: Tensor::from_vec(v, &[self.q.out_features(), self.q.in_features()]).py()?,
        })
    }

    /// The weight scales: shape `[1]` (per tensor) or `[out]` (per channel).
    fn weight_scales(&self) -> PyResult<PyTensor> {
        let s = self.q.weight_scales().to_vec();
        let n = s.len();
        Ok(PyTensor {
            t: Tensor::from_vec(s, &[n]).py()?,
        })
    }

    /// The dequantized f32 weight `[out, in]`.
    fn dequantized_weight(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.q.dequantized_weight().py()?,
        })
    }

    /// The f32 bias, or None.
    fn bias(&self) -> PyResult<Option<PyTensor>> {
        match self.q.bias() {
            None => Ok(None),
            Some(b) => Ok(Some(PyTensor {
                t: Tensor::from_vec(b.to_vec(), &[b.len()]).py()?,
            })),
        }
    }

    #[getter]
    fn in_features(&self) -> usize {
        self.q.in_features()
    }
    #[getter]
    fn out_features(&self) -> usize {
        self.q.out_features()
    }
    #[getter]
    fn per_channel(&self) -> bool {
        self.q.per_channel()
    }
    #[getter]
    fn reduce_range(&self) -> bool {
        self.q.reduce_range()
    }
    /// The INT8 kernel this layer runs (`avx512_vnni`, `avx_vnni`, `avx2` or `scalar`).
    #[getter]
    fn isa(&self) -> &'static str {
        self.q.isa().name()
    }
}

/// The INT8 kernel picked for this CPU.
#[pyfunction]
fn int8_isa() -> &'static str {
    Isa::best().name()
}

/// Every INT8 kernel this CPU can run.
#[pyfunction]
fn int8_isas() -> Vec<&'static str> {
    Isa::available_all().into_iter().map(Isa::name).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDynamicQuantLinear>()?;
    m.add_function(wrap_pyfunction!(int8_isa, m)?)?;
    m.add_function(wrap_pyfunction!(int8_isas, m)?)?;
    Ok(())
}

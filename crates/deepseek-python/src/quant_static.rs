//! `deepseek._C` bindings of `deepseek::quant::static_q`: the statically quantized Linear and
//! Conv2d behind `deepseek.quantization.convert`, and per-tensor (de)quantization.

use crate::tensor::PyTensor;
use crate::IntoPy;
use deepseek::quant::{
    dequantize_per_tensor, quantize_per_tensor, Conv2dParams, QParams, QuantizedConv2d,
    QuantizedLinear,
};
use deepseek::Tensor;
use pyo3::prelude::*;

fn qp(scale: f64, zero_point: i64) -> QParams {
    QParams {
        scale: scale as f32,
        zero_point: zero_point.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
    }
}

fn i8_tensor(v: &[i8], shape: &[usize]) -> PyResult<PyTensor> {
    let v: Vec<i32> = v.iter().map(|&x| i32::from(x)).collect();
    Ok(PyTensor {
        t: Tensor::from_vec(v, shape).py()?,
    })
}

fn f32_tensor(v: &[f32]) -> PyResult<PyTensor> {
    Ok(PyTensor {
        t: Tensor::from_vec(v.to_vec(), &[v.len()]).py()?,
    })
}

/// A statically quantized Linear (see `deepseek::quant::QuantizedLinear`).
#[pyclass(name = "QuantizedLinear", module = "deepseek._C", frozen)]
pub struct PyQuantizedLinear {
    q: QuantizedLinear,
}

#[pymethods]
impl PyQuantizedLinear {
    #[new]
    #[pyo3(signature = (weight, bias, per_channel, scale, zero_point, relu=false,
                        weight_scales=None))]
    fn new(
        weight: &PyTensor,
        bias: Option<PyRef<'_, PyTensor>>,
        per_channel: bool,
        scale: f64,
        zero_point: i64,
        relu: bool,
        weight_scales: Option<Vec<f32>>,
    ) -> PyResult<Self> {
        let q = QuantizedLinear::from_float(
            &weight.t,
            bias.as_ref().map(|b| &b.t),
            per_channel,
            weight_scales.as_deref(),
            qp(scale, zero_point),
            relu,
        )
        .py()?;
        Ok(PyQuantizedLinear { q })
    }

    /// u8 input quantized with (`scale`, `zero_point`) → u8 output.
    fn forward(&self, x: &PyTensor, scale: f64, zero_point: i64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.q.forward(&x.t, qp(scale, zero_point)).py()?,
        })
    }
    /// The int8 weight as an int32 tensor `[out, in]`.
    fn weight_int_repr(&self) -> PyResult<PyTensor> {
        i8_tensor(
            self.q.weight_int8(),
            &[self.q.out_features(), self.q.in_features()],
        )
    }
    /// The weight scales (`[1]` or `[out]`).
    fn weight_scales(&self) -> PyResult<PyTensor> {
        f32_tensor(self.q.weight_scales())
    }
    /// The f32 bias, or None.
    fn bias(&self) -> PyResult<Option<PyTensor>> {
        self.q.bias().map(f32_tensor).transpose()
    }
    #[getter]
    fn scale(&self) -> f64 {
        self.q.out_qparams().scale as f64
    }
    #[getter]
    fn zero_point(&self) -> i64 {
        self.q.out_qparams().zero_point as i64
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
    fn relu(&self) -> bool {
        self.q.relu()
    }
}

/// A statically quantized Conv2d (see `deepseek::quant::QuantizedConv2d`).
#[pyclass(name = "QuantizedConv2d", module = "deepseek._C", frozen)]
pub struct PyQuantizedConv2d {
    q: QuantizedConv2d,
}

#[pymethods]
impl PyQuantizedConv2d {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (weight, bias, stride, padding, dilation, groups, per_channel, scale,
                        zero_point, relu=false, weight_scales=None))]
    fn new(
        weight: &PyTensor,
        bias: Option<PyRef<'_, PyTensor>>,
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
        per_channel: bool,
        scale: f64,
        zero_point: i64,
        relu: bool,
        weight_scales: Option<Vec<f32>>,
    ) -> PyResult<Self> {
        let p = Conv2dParams {
            stride,
            padding,
            dilation,
            groups,
        };
        let q = QuantizedConv2d::from_float(
            &weight.t,
            bias.as_ref().map(|b| &b.t),
            p,
            per_channel,
            weight_scales.as_deref(),
            qp(scale, zero_point),
            relu,
        )
        .py()?;
        Ok(PyQuantizedConv2d { q })
    }

    /// u8 input `[N, C, H, W]` quantized with (`scale`, `zero_point`) → u8 output.
    fn forward(&self, x: &PyTensor, scale: f64, zero_point: i64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.q.forward(&x.t, qp(scale, zero_point)).py()?,
        })
    }
    /// The int8 weight as an int32 tensor `[O, C/groups, kh, kw]`.
    fn weight_int_repr(&self) -> PyResult<PyTensor> {
        let [kh, kw] = self.q.kernel_size();
        let cg = self.q.in_channels() / self.q.params().groups;
        i8_tensor(self.q.weight_int8(), &[self.q.out_channels(), cg, kh, kw])
    }
    /// The weight scales (`[1]` or `[O]`).
    fn weight_scales(&self) -> PyResult<PyTensor> {
        f32_tensor(self.q.weight_scales())
    }
    /// The f32 bias, or None.
    fn bias(&self) -> PyResult<Option<PyTensor>> {
        self.q.bias().map(f32_tensor).transpose()
    }
    #[getter]
    fn scale(&self) -> f64 {
        self.q.out_qparams().scale as f64
    }
    #[getter]
    fn zero_point(&self) -> i64 {
        self.q.out_qparams().zero_point as i64
    }
    #[getter]
    fn per_channel(&self) -> bool {
        self.q.per_channel()
    }
    #[getter]
    fn relu(&self) -> bool {
        self.q.relu()
    }
}

/// `x` quantized to a uint8 tensor with one scale and zero point.
#[pyfunction]
fn quantize_per_tensor_u8(x: &PyTensor, scale: f64, zero_point: i64) -> PyResult<PyTensor> {
    Ok(PyTensor {
        t: quantize_per_tensor(&x.t, qp(scale, zero_point)).py()?,
    })
}

/// `scale · (q − zero_point)` for a uint8 tensor `q`, as float32.
#[pyfunction]
fn dequantize_u8(q: &PyTensor, scale: f64, zero_point: i64) -> PyResult<PyTensor> {
    Ok(PyTensor {
        t: dequantize_per_tensor(&q.t, qp(scale, zero_point)).py()?,
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyQuantizedLinear>()?;
    m.add_class::<PyQuantizedConv2d>()?;
    m.add_function(wrap_pyfunction!(quantize_per_tensor_u8, m)?)?;
    m.add_function(wrap_pyfunction!(dequantize_u8, m)?)?;
    Ok(())
}

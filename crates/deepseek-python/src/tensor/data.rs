//! Tensors from Python data (lists, scalars, numpy) and back, and the conversion methods.

use super::*;

// ------------------------------------------------------------------------------ from Python data

pub(super) fn collect(
    o: &Bound<'_, PyAny>,
    depth: usize,
    shape: &mut Vec<usize>,
    vals: &mut Vec<f64>,
    kind: &mut u8,
) -> PyResult<()> {
    // An int beyond int64 is kept (as a float) only if the tensor turns out floating-point;
    // `tensor_from_data` raises PyTorch's overflow error otherwise (bit 4 of kind marks it).
    if o.cast::<PyInt>().is_ok() && o.cast::<PyBool>().is_err() && o.extract::<i64>().is_err() {
        if depth != shape.len() {
            return Err(PyValueError::new_err(
                "tensor: ragged nested sequence (a number where a sequence was expected)",
            ));
        }
        vals.push(o.extract::<f64>()?);
        *kind |= 4;
        return Ok(());
    }
    if let Some(s) = scalar(o)? {
        if depth != shape.len() {
            return Err(PyValueError::new_err(
                "tensor: ragged nested sequence (a number where a sequence was expected)",
            ));
        }
        let k = match s {
            Scalar::B(_) => 0,
            Scalar::I(_) => 1,
            Scalar::F(_) => 2,
        };
        *kind = (*kind & 4) | (*kind & 3).max(k);
        vals.push(s.value());
        return Ok(());
    }
    if let Ok(t) = o.cast::<PyTensor>() {
        let t = t.borrow().t.clone();
        if depth == shape.len() && vals.is_empty() {
            shape.extend_from_slice(t.shape());
        } else if shape.get(depth..) != Some(t.shape()) {
            return Err(PyValueError::new_err(
                "tensor: tensors of different shapes in a nested sequence",
            ));
        }
        let k = if t.dtype().is_float() {
            2
        } else if t.dtype() == DType::Bool {
            0
        } else {
            1
        };
        *kind = (*kind & 4) | (*kind & 3).max(k);
        vals.extend(t.to_vec_f64().py()?);
        return Ok(());
    }
    if o.cast::<pyo3::types::PyString>().is_ok() {
        return Err(PyTypeError::new_err(
            "tensor: strings cannot be converted to a tensor",
        ));
    }
    let items: Vec<Bound<'_, PyAny>> = match o.try_iter() {
        Ok(it) => it.collect::<PyResult<_>>()?,
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "tensor: cannot convert an object of type {} to a tensor",
                o.get_type().name()?
            )))
        }
    };
    if depth == shape.len() {
        if !vals.is_empty() {
            return Err(PyValueError::new_err(
                "tensor: ragged nested sequence (a sequence where a number was expected)",
            ));
        }
        shape.push(items.len());
    } else if shape[depth] != items.len() {
        return Err(PyValueError::new_err(format!(
            "tensor: ragged nested sequence: expected length {} at dim {depth}, got {}",
            shape[depth],
            items.len()
        )));
    }
    for i in &items {
        collect(i, depth + 1, shape, vals, kind)?;
    }
    Ok(())
}

/// A tensor from a numpy array (copied), any dtype deepseek has.
pub fn from_numpy_array(o: &Bound<'_, PyAny>) -> PyResult<Option<Tensor>> {
    if !o.hasattr("__array_interface__")? {
        return Ok(None);
    }
    // numpy scalars (`np.float64(0.5)`, an element of an array) and other array-likes become
    // arrays first (an ndarray comes back as itself, not copied).
    let arr = o.py().import("numpy")?.call_method1("asarray", (o,))?;
    let o = &arr;
    macro_rules! try_ty {
        ($t:ty, $conv:expr) => {
            if let Ok(a) = o.extract::<PyReadonlyArrayDyn<'_, $t>>() {
                let shape = a.shape().to_vec();
                let v: Vec<_> = a.as_array().iter().map($conv).collect();
                return Tensor::from_vec(v, &shape).py().map(Some);
            }
        };
    }
    try_ty!(f32, |x: &f32| *x);
    try_ty!(f64, |x: &f64| *x);
    try_ty!(i64, |x: &i64| *x);
    try_ty!(i32, |x: &i32| *x);
    try_ty!(bool, |x: &bool| *x);
    try_ty!(u8, |x: &u8| *x);
    try_ty!(half::f16, |x: &half::f16| *x);
    try_ty!(i16, |x: &i16| *x as i32);
    try_ty!(i8, |x: &i8| *x as i32);
    try_ty!(u16, |x: &u16| *x as i32);
    try_ty!(u32, |x: &u32| *x as i64);
    let dt = o.getattr("dtype")?.repr()?.to_string();
    Err(PyTypeError::new_err(format!(
        "from_numpy: numpy arrays of dtype {dt} are not supported (supported: float64, float32, float16, int64, int32, int16, int8, uint8, uint16, uint32, bool)"
    )))
}

/// `deepseek.tensor(data)`: nested sequences of numbers/tensors, numpy arrays, tensors.
pub fn tensor_from_data(o: &Bound<'_, PyAny>, dtype: Option<DType>) -> PyResult<Tensor> {
    let t = if let Ok(t) = o.cast::<PyTensor>() {
        t.borrow().t.detach().contiguous_copy().py()?
    } else if let Some(t) = from_numpy_array(o)? {
        t
    } else {
        let (mut shape, mut vals, mut kind) = (Vec::new(), Vec::new(), 0u8);
        collect(o, 0, &mut shape, &mut vals, &mut kind)?;
        let big_int = kind & 4 != 0;
        let dt = match kind & 3 {
            0 if !big_int => DType::Bool,
            0 | 1 => DType::I64,
            _ => DType::F32,
        };
        if big_int && !dtype.unwrap_or(dt).is_float() {
            // PyTorch: ValueError: Overflow when unpacking long long
            return Err(PyValueError::new_err("Overflow when unpacking long long"));
        }
        let dt = if vals.is_empty() && shape.iter().product::<usize>() == 0 {
            DType::F32
        } else {
            dt
        };
        return Tensor::from_f64s(&vals, &shape, dtype.unwrap_or(dt)).py();
    };
    match dtype {
        Some(d) if d != t.dtype() => t.to_dtype(d).py(),
        _ => Ok(t),
    }
}

// ------------------------------------------------------------------------------ to Python data

pub(super) fn build_list(
    py: Python<'_>,
    vals: &[f64],
    shape: &[usize],
    dt: DType,
) -> PyResult<Py<PyAny>> {
    if shape.is_empty() {
        let v = vals[0];
        return Ok(if dt == DType::Bool {
            PyBool::new(py, v != 0.0).to_owned().into_any().unbind()
        } else if dt.is_float() {
            v.into_pyobject(py)?.into_any().unbind()
        } else {
            (v as i64).into_pyobject(py)?.into_any().unbind()
        });
    }
    let n = shape[0];
    let inner: usize = shape[1..].iter().product();
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        items.push(build_list(
            py,
            &vals[i * inner..(i + 1) * inner],
            &shape[1..],
            dt,
        )?);
    }
    Ok(PyList::new(py, items)?.into_any().unbind())
}

pub(super) fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let shape = t.shape().to_vec();
    macro_rules! arr {
        ($ty:ty) => {{
            let v = t.to_vec::<$ty>().py()?;
            let a = numpy::PyArray1::from_vec(py, v);
            Ok(a.reshape(shape)?.into_any())
        }};
    }
    match t.dtype() {
        DType::F32 => arr!(f32),
        DType::F64 => arr!(f64),
        DType::F16 => arr!(half::f16),
        DType::I64 => arr!(i64),
        DType::I32 => arr!(i32),
        DType::U8 => arr!(u8),
        DType::Bool => arr!(bool),
        DType::BF16 => Err(PyTypeError::new_err(
            "numpy(): numpy has no bfloat16; convert first with .float()",
        )),
    }
}

#[pymethods]
impl PyTensor {
    // ---------------------------------------------------------------- conversion

    /// `to(dtype)`, `to(device)`, `to(other)`, `to(device, dtype)`, keywords too.
    #[pyo3(signature = (*args, dtype=None, device=None, non_blocking=false, copy=false))]
    fn to(
        &self,
        args: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        device: Option<&Bound<'_, PyAny>>,
        non_blocking: bool,
        copy: bool,
    ) -> PyResult<PyTensor> {
        let _ = non_blocking;
        let mut dt = dtype.map(dtype_arg).transpose()?;
        let mut dev = device.map(device_arg).transpose()?;
        for a in args.iter() {
            if let Ok(o) = a.cast::<PyTensor>() {
                let o = o.borrow();
                dt = Some(o.t.dtype());
                dev = Some(o.t.device());
            } else if a.cast::<PyDType>().is_ok() {
                dt = Some(dtype_arg(&a)?);
            } else if let Ok(d) = device_arg(&a) {
                dev = Some(d);
            } else {
                dt = Some(dtype_arg(&a)?);
            }
        }
        let mut t = self.t.clone();
        if let Some(d) = dev {
            check_device(d)?;
            t = t.to_device(d).py()?;
        }
        if let Some(d) = dt {
            if d != t.dtype() {
                t = t.to_dtype(d).py()?;
            }
        }
        if copy && t.shares_storage(&self.t) {
            t = t.contiguous_copy().py()?;
        }
        Ok(PyTensor { t })
    }
    /// This tensor on the CPU (`self` when it already is).
    fn cpu(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    /// `cuda(device=None)`: move to a CUDA device; raises a RuntimeError where deepseek has no CUDA device.
    #[pyo3(signature = (device=None, non_blocking=false))]
    fn cuda(&self, device: Option<&Bound<'_, PyAny>>, non_blocking: bool) -> PyResult<PyTensor> {
        let _ = non_blocking;
        let d = match device {
            Some(d) if !d.is_none() => device_arg(d)?,
            _ => Device::Cuda(0),
        };
        check_device(d)?;
        Ok(PyTensor {
            t: self.t.to_device(d).py()?,
        })
    }
    /// Convert to float32 (`self.to(deepseek.float32)`).
    fn float(&self) -> PyResult<PyTensor> {
        self.cast(DType::F32)
    }
    /// Convert to float64 (`self.to(deepseek.float64)`).
    fn double(&self) -> PyResult<PyTensor> {
        self.cast(DType::F64)
    }
    /// Convert to float16 (`self.to(deepseek.float16)`).
    fn half(&self) -> PyResult<PyTensor> {
        self.cast(DType::F16)
    }
    /// Convert to bfloat16 (`self.to(deepseek.bfloat16)`).
    fn bfloat16(&self) -> PyResult<PyTensor> {
        self.cast(DType::BF16)
    }
    /// Convert to int64 (`self.to(deepseek.int64)`).
    fn long(&self) -> PyResult<PyTensor> {
        self.cast(DType::I64)
    }
    /// Convert to int32 (`self.to(deepseek.int32)`).
    fn int(&self) -> PyResult<PyTensor> {
        self.cast(DType::I32)
    }
    /// Convert to uint8 (`self.to(deepseek.uint8)`).
    fn byte(&self) -> PyResult<PyTensor> {
        self.cast(DType::U8)
    }
    /// Convert to bool (`self.to(deepseek.bool)`).
    fn bool(&self) -> PyResult<PyTensor> {
        self.cast(DType::Bool)
    }
    /// `type(dtype)` converts; `type()` returns the PyTorch-style type name.
    #[pyo3(signature = (dtype=None))]
    fn r#type(&self, py: Python<'_>, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        match dtype {
            Some(d) => Ok(Py::new(py, self.cast(dtype_arg(d)?)?)?.into_any()),
            None => {
                let n = match self.t.dtype() {
                    DType::F32 => "FloatTensor",
                    DType::F64 => "DoubleTensor",
                    DType::F16 => "HalfTensor",
                    DType::BF16 => "BFloat16Tensor",
                    DType::I64 => "LongTensor",
                    DType::I32 => "IntTensor",
                    DType::U8 => "ByteTensor",
                    DType::Bool => "BoolTensor",
                };
                Ok(format!("deepseek.{n}")
                    .into_pyobject(py)?
                    .into_any()
                    .unbind())
            }
        }
    }
    /// `type_as(other)`: convert to `other`'s dtype.
    fn type_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        self.cast(other.t.dtype())
    }
    /// The value of a one-element tensor as a Python number.
    pub(super) fn item(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = self.t.item().py()?;
        build_list(py, &[v], &[], self.t.dtype())
    }
    /// Nested Python lists (a number for a 0-d tensor).
    fn tolist(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = self.t.to_vec_f64().py()?;
        if v.is_empty() && !self.t.shape().is_empty() {
            let shape = self.t.shape();
            return build_empty(py, shape);
        }
        build_list(py, &v, self.t.shape(), self.t.dtype())
    }
    /// How many times the storage was written in place (shared by views), as PyTorch's
    /// `_version`; backward refuses tensors saved for it that were modified since.
    #[getter]
    fn _version(&self) -> u64 {
        self.t.version()
    }
    /// A numpy array over this tensor's memory (no copy: writes through either are seen by
    /// the other, as in PyTorch). `force=True` returns a copy instead, also for a tensor that
    /// requires grad.
    #[pyo3(signature = (force=false))]
    fn numpy<'py>(&self, py: Python<'py>, force: bool) -> PyResult<Bound<'py, PyAny>> {
        if force {
            return to_numpy(py, &self.t);
        }
        if self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()",
            ));
        }
        crate::share::numpy_view(py, &self.t)
    }
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Shared memory (as `numpy()`) unless a copy is asked for or the tensor is in a graph.
        let a = if copy == Some(true) || self.t.requires_grad() {
            to_numpy(py, &self.t)?
        } else {
            crate::share::numpy_view(py, &self.t)?
        };
        match dtype {
            Some(d) if !d.is_none() => a.call_method1("astype", (d,)),
            _ => Ok(a),
        }
    }
    /// A copy with its own storage (differentiable).
    fn clone(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.contiguous_copy().py()?,
        })
    }
    /// A tensor with the same values laid out row-major; `self` when it already is.
    fn contiguous(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.contiguous().py()?,
        })
    }
}

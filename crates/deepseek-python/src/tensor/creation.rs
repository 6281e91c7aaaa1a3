//! Creation functions (`tensor`, `zeros`, `arange`, ...) and their registration.

use super::*;

// ------------------------------------------------------------------------------ creation functions

pub(super) fn opts(
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    default: DType,
) -> PyResult<DType> {
    if let Some(d) = device.filter(|d| !d.is_none()) {
        check_device(device_arg(d)?)?;
    }
    Ok(dtype
        .filter(|d| !d.is_none())
        .map(dtype_arg)
        .transpose()?
        .unwrap_or(default))
}

pub(super) fn finish(t: Tensor, requires_grad: bool) -> PyResult<PyTensor> {
    if requires_grad {
        t.requires_grad_(true).py()?;
    }
    Ok(PyTensor { t })
}

/// `deepseek.as_tensor(data, dtype=None, device=None)`: `data` itself when it is a tensor of
/// that dtype, a tensor over a NumPy array's memory when it can be shared (as `from_numpy`),
/// otherwise a new tensor as `deepseek.tensor` makes.
#[pyfunction(name = "as_tensor")]
#[pyo3(signature = (data, dtype=None, device=None))]
pub(super) fn as_tensor_py(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    if let Some(d) = device.filter(|d| !d.is_none()) {
        check_device(device_arg(d)?)?;
    }
    let dt = dtype.filter(|d| !d.is_none()).map(dtype_arg).transpose()?;
    if let Ok(t) = data.cast::<PyTensor>() {
        let t0 = t.borrow().t.clone();
        return match dt {
            Some(d) if d != t0.dtype() => Ok(PyTensor::wrap(py, t0.to_dtype(d).py()?)?.into_any()),
            _ => Ok(t.clone().unbind().into_any()),
        };
    }
    if let Some(t) = crate::share::from_numpy_shared(data)? {
        if dt.is_none_or(|d| d == t.dtype()) {
            return Ok(PyTensor::wrap(py, t)?.into_any());
        }
    }
    Ok(PyTensor::wrap(py, tensor_from_data(data, dt)?)?.into_any())
}

/// `deepseek.tensor(data, dtype=None, device=None, requires_grad=False)` (always copies).
#[pyfunction]
#[pyo3(signature = (data, dtype=None, device=None, requires_grad=false))]
pub(super) fn tensor(
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    if let Some(d) = device.filter(|d| !d.is_none()) {
        check_device(device_arg(d)?)?;
    }
    let dt = dtype.filter(|d| !d.is_none()).map(dtype_arg).transpose()?;
    finish(tensor_from_data(data, dt)?, requires_grad)
}

/// `deepseek.from_numpy(array)`: a tensor over the array's memory (writes through either are
/// seen by the other); a copy when the array cannot be shared (read-only, misaligned,
/// negative strides, empty, or a dtype deepseek does not have, such as int16).
#[pyfunction]
pub(super) fn from_numpy(a: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    if let Some(t) = crate::share::from_numpy_shared(a)? {
        return Ok(PyTensor { t });
    }
    match from_numpy_array(a)? {
        Some(t) => Ok(PyTensor { t }),
        None => Err(PyTypeError::new_err(format!(
            "from_numpy: expected a numpy.ndarray, got {}",
            a.get_type().name()?
        ))),
    }
}

macro_rules! filled {
    ($name:ident, $v:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (*size, dtype=None, device=None, requires_grad=false))]
        fn $name(
            size: &Bound<'_, PyTuple>,
            dtype: Option<&Bound<'_, PyAny>>,
            device: Option<&Bound<'_, PyAny>>,
            requires_grad: bool,
        ) -> PyResult<PyTensor> {
            let dt = opts(dtype, device, DType::F32)?;
            let shape = usize_shape(&shape_args(size)?, stringify!($name))?;
            finish($v(&shape, dt).py()?, requires_grad)
        }
    };
}

filled!(zeros, Tensor::zeros, "Zeros of the given shape.");
filled!(ones, Tensor::ones, "Ones of the given shape.");
macro_rules! random {
    ($name:ident, $v:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (*size, generator=None, dtype=None, device=None, requires_grad=false))]
        fn $name(
            size: &Bound<'_, PyTuple>,
            generator: Option<&Bound<'_, PyAny>>,
            dtype: Option<&Bound<'_, PyAny>>,
            device: Option<&Bound<'_, PyAny>>,
            requires_grad: bool,
        ) -> PyResult<PyTensor> {
            let dt = opts(dtype, device, DType::F32)?;
            let shape = usize_shape(&shape_args(size)?, stringify!($name))?;
            let t = crate::generator::with_generator(generator, || $v(&shape, dt))?.py()?;
            finish(t, requires_grad)
        }
    };
}

random!(
    rand,
    Tensor::rand,
    "`rand(*size, generator=None, dtype=None, device=None, requires_grad=False)`: uniform samples in [0, 1)."
);
random!(
    randn,
    Tensor::randn,
    "`randn(*size, generator=None, dtype=None, device=None, requires_grad=False)`: standard normal samples."
);
filled!(
    empty,
    Tensor::zeros,
    "An uninitialised tensor (zero-filled here)."
);

/// `full(size, fill_value)`; the dtype follows the value like PyTorch's.
#[pyfunction]
#[pyo3(signature = (size, fill_value, dtype=None, device=None, requires_grad=false))]
pub(super) fn full(
    size: &Bound<'_, PyAny>,
    fill_value: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    let s = scalar(fill_value)?
        .ok_or_else(|| PyTypeError::new_err("full: fill_value must be a number"))?;
    let default = match s {
        Scalar::F(_) => DType::F32,
        Scalar::I(_) => DType::I64,
        Scalar::B(_) => DType::Bool,
    };
    let dt = opts(dtype, device, default)?;
    let shape: Vec<isize> = if let Ok(i) = size.extract::<isize>() {
        vec![i]
    } else {
        size.extract()?
    };
    let shape = usize_shape(&shape, "full")?;
    finish(Tensor::full(&shape, s.value(), dt).py()?, requires_grad)
}

/// `arange(end)`, `arange(start, end[, step])`; int64 when every argument is an int.
#[pyfunction]
#[pyo3(signature = (start, end=None, step=None, dtype=None, device=None, requires_grad=false))]
pub(super) fn arange(
    start: &Bound<'_, PyAny>,
    end: Option<&Bound<'_, PyAny>>,
    step: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    let num = |o: &Bound<'_, PyAny>| -> PyResult<(f64, bool)> {
        match scalar(o)? {
            Some(Scalar::F(v)) => Ok((v, true)),
            Some(s) => Ok((s.value(), false)),
            None => Err(PyTypeError::new_err("arange: arguments must be numbers")),
        }
    };
    let (a, fa) = num(start)?;
    let (s, e, fe) = match end.filter(|e| !e.is_none()) {
        Some(e) => {
            let (e, fe) = num(e)?;
            (a, e, fe)
        }
        None => (0.0, a, fa),
    };
    let (st, fs) = match step.filter(|s| !s.is_none()) {
        Some(st) => num(st)?,
        None => (1.0, false),
    };
    let default = if fa || fe || fs {
        DType::F32
    } else {
        DType::I64
    };
    let dt = opts(dtype, device, default)?;
    finish(Tensor::arange(s, e, st, dt).py()?, requires_grad)
}

/// `linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False)`: `steps` evenly spaced values from `start` to `end` inclusive.
#[pyfunction]
#[pyo3(signature = (start, end, steps, dtype=None, device=None, requires_grad=false))]
pub(super) fn linspace(
    start: f64,
    end: f64,
    steps: usize,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    let dt = opts(dtype, device, DType::F32)?;
    finish(Tensor::linspace(start, end, steps, dt).py()?, requires_grad)
}

/// `eye(n, m=None, *, dtype=None, device=None, requires_grad=False)`: an n×m identity matrix.
#[pyfunction]
#[pyo3(signature = (n, m=None, dtype=None, device=None, requires_grad=false))]
pub(super) fn eye(
    n: usize,
    m: Option<usize>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    let dt = opts(dtype, device, DType::F32)?;
    finish(Tensor::eye(n, m.unwrap_or(n), dt).py()?, requires_grad)
}

/// `randint(low, high, size)` or `randint(high, size)`.
#[pyfunction]
#[pyo3(signature = (*args, generator=None, dtype=None, device=None, requires_grad=false))]
pub(super) fn randint(
    args: &Bound<'_, PyTuple>,
    generator: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    let (lo, hi, size) = match args.len() {
        2 => (0i64, args.get_item(0)?.extract::<i64>()?, args.get_item(1)?),
        3 => (
            args.get_item(0)?.extract::<i64>()?,
            args.get_item(1)?.extract::<i64>()?,
            args.get_item(2)?,
        ),
        n => {
            return Err(PyTypeError::new_err(format!(
                "randint expects (high, size) or (low, high, size), got {n} arguments"
            )))
        }
    };
    let shape: Vec<isize> = size.extract()?;
    let shape = usize_shape(&shape, "randint")?;
    let dt = opts(dtype, device, DType::I64)?;
    let t = crate::generator::with_generator(generator, || Tensor::randint(lo, hi, &shape, dt))?;
    finish(t.py()?, requires_grad)
}

/// `randperm(n, *, generator=None, dtype=int64, device=None, requires_grad=False)`: a random permutation of 0..n-1.
#[pyfunction]
#[pyo3(signature = (n, *, generator=None, dtype=None, device=None, requires_grad=false))]
pub(super) fn randperm(
    n: usize,
    generator: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    let dt = opts(dtype, device, DType::I64)?;
    let t = crate::generator::with_generator(generator, || Tensor::randperm(n))?.py()?;
    let t = if dt == t.dtype() {
        t
    } else {
        t.to_dtype(dt).py()?
    };
    finish(t, requires_grad)
}

macro_rules! like {
    ($name:ident, $f:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (input, dtype=None, device=None, requires_grad=false))]
        fn $name(
            input: &PyTensor,
            dtype: Option<&Bound<'_, PyAny>>,
            device: Option<&Bound<'_, PyAny>>,
            requires_grad: bool,
        ) -> PyResult<PyTensor> {
            let dt = opts(dtype, device, input.t.dtype())?;
            let shape = input.t.shape().to_vec();
            finish($f(&shape, dt).py()?, requires_grad)
        }
    };
}

like!(zeros_like, Tensor::zeros, "Zeros shaped like `input`.");
like!(ones_like, Tensor::ones, "Ones shaped like `input`.");
like!(
    rand_like,
    Tensor::rand,
    "U[0,1) samples shaped like `input`."
);
like!(
    randn_like,
    Tensor::randn,
    "N(0,1) samples shaped like `input`."
);
like!(
    empty_like,
    Tensor::zeros,
    "An uninitialised tensor shaped like `input` (zero-filled)."
);

/// `full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False)`: a tensor of `input`'s shape filled with the value.
#[pyfunction]
#[pyo3(signature = (input, fill_value, dtype=None, device=None, requires_grad=false))]
pub(super) fn full_like(
    input: &PyTensor,
    fill_value: f64,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    let dt = opts(dtype, device, input.t.dtype())?;
    finish(
        Tensor::full(input.t.shape(), fill_value, dt).py()?,
        requires_grad,
    )
}

/// `cat(tensors, dim=0)`.
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub(super) fn cat(tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    let ts = tensor_list(tensors)?;
    Ok(PyTensor {
        t: Tensor::cat(&ts, dim).py()?,
    })
}

/// `stack(tensors, dim=0)`: join equally shaped tensors along a new dim.
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub(super) fn stack(tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    let ts = tensor_list(tensors)?;
    Ok(PyTensor {
        t: Tensor::stack(&ts, dim).py()?,
    })
}

/// `where(condition, input, other)`; scalars are accepted for `input` and `other`.
#[pyfunction]
#[pyo3(name = "where")]
pub(super) fn where_(
    condition: &PyTensor,
    input: &Bound<'_, PyAny>,
    other: &Bound<'_, PyAny>,
) -> PyResult<PyTensor> {
    let a = if input.cast::<PyTensor>().is_ok() {
        as_tensor(input)?
    } else {
        let like = other.cast::<PyTensor>().ok().map(|t| t.borrow().t.clone());
        to_tensor_like(input, like.as_ref())?
    };
    let b = to_tensor_like(other, Some(&a))?;
    Ok(PyTensor {
        t: Tensor::where_cond(&condition.t, &a, &b).py()?,
    })
}

/// `einsum(equation, *operands)` (operands may also be one list).
#[pyfunction]
#[pyo3(signature = (equation, *operands))]
pub(super) fn einsum(equation: &str, operands: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
    let ts = if operands.len() == 1 && operands.get_item(0)?.cast::<PyTensor>().is_err() {
        tensor_list(&operands.get_item(0)?)?
    } else {
        tensor_list(operands.as_any())?
    };
    Ok(PyTensor {
        t: Tensor::einsum(equation, &ts).py()?,
    })
}

/// True for deepseek tensors (and subclasses such as Parameter).
#[pyfunction]
pub(super) fn is_tensor(o: &Bound<'_, PyAny>) -> bool {
    o.cast::<PyTensor>().is_ok()
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HookHandle>()?;
    m.add_function(wrap_pyfunction!(tensor, m)?)?;
    m.add_function(wrap_pyfunction!(from_numpy, m)?)?;
    m.add_function(wrap_pyfunction!(as_tensor_py, m)?)?;
    m.add_function(wrap_pyfunction!(zeros, m)?)?;
    m.add_function(wrap_pyfunction!(ones, m)?)?;
    m.add_function(wrap_pyfunction!(rand, m)?)?;
    m.add_function(wrap_pyfunction!(randn, m)?)?;
    m.add_function(wrap_pyfunction!(empty, m)?)?;
    m.add_function(wrap_pyfunction!(full, m)?)?;
    m.add_function(wrap_pyfunction!(arange, m)?)?;
    m.add_function(wrap_pyfunction!(linspace, m)?)?;
    m.add_function(wrap_pyfunction!(eye, m)?)?;
    m.add_function(wrap_pyfunction!(randint, m)?)?;
    m.add_function(wrap_pyfunction!(randperm, m)?)?;
    m.add_function(wrap_pyfunction!(zeros_like, m)?)?;
    m.add_function(wrap_pyfunction!(ones_like, m)?)?;
    m.add_function(wrap_pyfunction!(rand_like, m)?)?;
    m.add_function(wrap_pyfunction!(randn_like, m)?)?;
    m.add_function(wrap_pyfunction!(empty_like, m)?)?;
    m.add_function(wrap_pyfunction!(full_like, m)?)?;
    m.add_function(wrap_pyfunction!(cat, m)?)?;
    m.add_function(wrap_pyfunction!(stack, m)?)?;
    m.add_function(wrap_pyfunction!(where_, m)?)?;
    m.add_function(wrap_pyfunction!(einsum, m)?)?;
    m.add_function(wrap_pyfunction!(is_tensor, m)?)?;
    Ok(())
}

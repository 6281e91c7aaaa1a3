//! `deepseek._C`: the Python extension module of deepseek.
//!
//! A thin layer over the Rust library: [`tensor::PyTensor`] wraps [`deepseek::Tensor`],
//! `_C.functional` holds `torch.nn.functional`-style free functions, `_C` also holds the
//! optimizers and LR schedulers (wrapping `deepseek::optim`), safetensors I/O, DLPack and the
//! grad-mode switches. The pure-Python package `deepseek` (python/deepseek) builds the
//! PyTorch-style front (nn.Module, layers, data, Trainer, amp) on top of it.
//!
//! Every `deepseek::Error` becomes a Python exception of the fitting class (see [`err`]).

use pyo3::exceptions::{PyIndexError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

mod autohyper;
mod dist_checkpoint;
mod distributed;
mod dlpack;
mod functional;
mod generator;
mod io;
mod lazy;
mod models;
mod native;
mod onnx;
mod optim;
mod quant;
mod quant_static;
mod select;
mod share;
mod tensor;
mod tools;
mod viz;

pub use tensor::PyTensor;

use deepseek::{DType, Device, Error};

/// Maps a deepseek error onto the Python exception class of its kind, keeping the message.
pub fn err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Shape { .. } | Error::Value { .. } => PyValueError::new_err(msg),
        Error::DType { .. } => PyTypeError::new_err(msg),
        Error::Index { .. } => PyIndexError::new_err(msg),
        Error::Io { .. } => PyOSError::new_err(msg),
        Error::Device { .. } | Error::Autograd(_) | Error::OutOfMemory { .. } | Error::Msg(_) => {
            PyRuntimeError::new_err(msg)
        }
    }
}

/// `Result<T, deepseek::Error>` into `PyResult<T>`.
pub trait IntoPy<T> {
    fn py(self) -> PyResult<T>;
}
impl<T> IntoPy<T> for deepseek::Result<T> {
    #[inline]
    fn py(self) -> PyResult<T> {
        self.map_err(err)
    }
}

// ------------------------------------------------------------------------------ dtype

/// A tensor element type (`deepseek.float32`, ...), spelled as in PyTorch.
#[pyclass(name = "dtype", module = "deepseek", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDType {
    pub d: DType,
}

#[pymethods]
impl PyDType {
    fn __repr__(&self) -> String {
        format!("deepseek.{}", self.d.name())
    }
    fn __str__(&self) -> String {
        self.__repr__()
    }
    /// True for float16, bfloat16, float32, float64.
    #[getter]
    fn is_floating_point(&self) -> bool {
        self.d.is_float()
    }
    /// Bytes per element.
    #[getter]
    fn itemsize(&self) -> usize {
        self.d.size_in_bytes()
    }
    /// True for signed types.
    #[getter]
    fn is_signed(&self) -> bool {
        !matches!(self.d, DType::Bool | DType::U8)
    }
    fn __reduce__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        // Pickles as a reference to the module attribute (deepseek.float32, ...).
        let m = py.import("deepseek")?;
        let getattr = py.import("builtins")?.getattr("getattr")?;
        Ok((getattr, (m, self.d.name()))
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }
}

/// Reads a dtype argument: a `deepseek.dtype`, a name (`"float32"`, `"long"`), or the Python
/// types `float`, `int`, `bool`.
pub fn dtype_arg(o: &Bound<'_, PyAny>) -> PyResult<DType> {
    if let Ok(d) = o.cast::<PyDType>() {
        return Ok(d.get().d);
    }
    if let Ok(s) = o.extract::<String>() {
        let s = s.strip_prefix("torch.").unwrap_or(&s);
        let s = s.strip_prefix("deepseek.").unwrap_or(s);
        return DType::parse(s)
            .ok_or_else(|| PyTypeError::new_err(format!("unknown dtype name '{s}'")));
    }
    let py = o.py();
    let b = py.import("builtins")?;
    if o.is(&b.getattr("float")?) {
        return Ok(DType::F32);
    }
    if o.is(&b.getattr("int")?) {
        return Ok(DType::I64);
    }
    if o.is(&b.getattr("bool")?) {
        return Ok(DType::Bool);
    }
    // numpy dtypes and scalar types: use their name.
    if let Ok(n) = o.getattr("name").and_then(|n| n.extract::<String>()) {
        if let Some(d) = DType::parse(&n) {
            return Ok(d);
        }
    }
    if let Ok(n) = o.getattr("__name__").and_then(|n| n.extract::<String>()) {
        if let Some(d) = DType::parse(&n) {
            return Ok(d);
        }
    }
    Err(PyTypeError::new_err(format!(
        "expected a dtype (e.g. deepseek.float32), got {}",
        o.repr()?
    )))
}

// ------------------------------------------------------------------------------ device

/// A device (`deepseek.device("cpu")`). Only the CPU backend exists so far: CUDA devices
/// can be named, but moving a tensor there raises RuntimeError.
#[pyclass(name = "device", module = "deepseek", frozen, hash, eq)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDevice {
    pub d: Device,
}

#[pymethods]
impl PyDevice {
    #[new]
    #[pyo3(signature = (kind, index=None))]
    fn new(kind: &Bound<'_, PyAny>, index: Option<usize>) -> PyResult<Self> {
        if let Ok(d) = kind.cast::<PyDevice>() {
            return Ok(*d.get());
        }
        let s: String = kind.extract()?;
        let d = Device::parse(&s).py()?;
        Ok(PyDevice {
            d: match (d, index) {
                (Device::Cuda(_), Some(i)) => Device::Cuda(i),
                (Device::Cpu, Some(_)) => {
                    return Err(PyValueError::new_err("the cpu device takes no index"))
                }
                (d, None) => d,
            },
        })
    }
    /// `"cpu"` or `"cuda"`.
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        match self.d {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }
    #[getter]
    fn index(&self) -> Option<usize> {
        match self.d {
            Device::Cpu => None,
            Device::Cuda(i) => Some(i),
        }
    }
    fn __repr__(&self) -> String {
        match self.d {
            Device::Cpu => "device(type='cpu')".into(),
            Device::Cuda(i) => format!("device(type='cuda', index={i})"),
        }
    }
    fn __str__(&self) -> String {
        self.d.to_string()
    }
}

/// Reads a device argument: a `deepseek.device`, a string, or an int (a CUDA ordinal).
pub fn device_arg(o: &Bound<'_, PyAny>) -> PyResult<Device> {
    if let Ok(d) = o.cast::<PyDevice>() {
        return Ok(d.get().d);
    }
    if let Ok(s) = o.extract::<String>() {
        return Device::parse(&s).py();
    }
    if let Ok(i) = o.extract::<usize>() {
        return Ok(Device::Cuda(i));
    }
    Err(PyTypeError::new_err(format!(
        "expected a device (e.g. 'cpu'), got {}",
        o.repr()?
    )))
}

/// Fails with RuntimeError for a device this build cannot use.
pub fn check_device(d: Device) -> PyResult<()> {
    match d {
        Device::Cpu => Ok(()),
        Device::Cuda(_) => Err(PyRuntimeError::new_err(format!(
            "device {d}: CUDA is not available (this build of deepseek has only the CPU backend; deepseek.cuda.is_available() is False)"
        ))),
    }
}

// ------------------------------------------------------------------------------ module-level

/// Sets how tensors are printed (the Rust `deepseek::set_printoptions`); the Python
/// wrapper `deepseek.set_printoptions` adds `profile`. `sci_mode=None` means automatic.
#[pyfunction]
#[pyo3(signature = (precision=None, threshold=None, edgeitems=None, linewidth=None, sci_mode=None))]
fn set_printoptions(
    precision: Option<usize>,
    threshold: Option<f64>,
    edgeitems: Option<usize>,
    linewidth: Option<usize>,
    sci_mode: Option<bool>,
) -> PyResult<()> {
    let mut o = deepseek::get_printoptions();
    if let Some(p) = precision {
        o.precision = p;
    }
    if let Some(t) = threshold {
        if t.is_nan() || t < 0.0 {
            return Err(PyValueError::new_err(format!(
                "set_printoptions: threshold must be >= 0, got {t}"
            )));
        }
        o.threshold = if t >= usize::MAX as f64 {
            usize::MAX
        } else {
            t as usize
        };
    }
    if let Some(e) = edgeitems {
        o.edgeitems = e;
    }
    if let Some(l) = linewidth {
        o.linewidth = l;
    }
    o.sci_mode = sci_mode;
    deepseek::set_printoptions(o);
    Ok(())
}

/// The current print options as `(precision, threshold, edgeitems, linewidth, sci_mode)`
/// (threshold `inf` when tensors are never summarised).
#[pyfunction]
fn get_printoptions() -> (usize, f64, usize, usize, Option<bool>) {
    let o = deepseek::get_printoptions();
    let t = if o.threshold == usize::MAX {
        f64::INFINITY
    } else {
        o.threshold as f64
    };
    (o.precision, t, o.edgeitems, o.linewidth, o.sci_mode)
}

/// Seeds deepseek's random generator.
#[pyfunction]
fn manual_seed(seed: &Bound<'_, PyAny>) -> PyResult<()> {
    deepseek::manual_seed(generator::seed_arg(seed)?);
    Ok(())
}

/// The generator state as a tuple of four ints.
#[pyfunction]
fn get_rng_state() -> (u64, u64, u64, u64) {
    let s = deepseek::get_rng_state();
    (s[0], s[1], s[2], s[3])
}

/// Restores a state from [`get_rng_state`].
#[pyfunction]
fn set_rng_state(s: (u64, u64, u64, u64)) {
    deepseek::set_rng_state([s.0, s.1, s.2, s.3]);
}

/// True unless inside `no_grad()` / `inference_mode()` (or `set_grad_enabled(False)`).
#[pyfunction]
fn is_grad_enabled() -> bool {
    deepseek::is_grad_enabled()
}

/// Sets grad mode; returns the previous mode.
#[pyfunction]
fn set_grad_enabled(on: bool) -> bool {
    deepseek::set_grad_enabled(on)
}

/// `set_num_threads(n)`: use `n` threads in deepseek's CPU kernels.
#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    if n == 0 {
        return Err(PyValueError::new_err("set_num_threads: n must be positive"));
    }
    deepseek::set_num_threads(n);
    Ok(())
}

/// Number of threads deepseek's CPU kernels use.
#[pyfunction]
fn get_num_threads() -> usize {
    deepseek::get_num_threads()
}

/// The Tensor methods of the attribute-less unary primitives, from the core's declaration
/// table (`deepseek._ops` makes each a module-level function too).
#[pyfunction]
fn _unary_methods() -> Vec<&'static str> {
    deepseek::ops::UNARY_OPS
        .iter()
        .filter(|d| d.method != "_" && d.attrs.is_empty())
        .map(|d| d.method)
        .collect()
}

/// Raises a Rust panic (used by the tests to check that a panic becomes a Python
/// exception and does not abort the interpreter).
#[pyfunction]
fn _panic_for_test(msg: &str) {
    panic!("{}", msg.to_string());
}

/// `torch.autograd.grad`.
#[pyfunction]
#[pyo3(signature = (outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=false, allow_unused=false))]
fn autograd_grad<'py>(
    py: Python<'py>,
    outputs: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    grad_outputs: Option<&Bound<'py, PyAny>>,
    retain_graph: Option<bool>,
    create_graph: bool,
    allow_unused: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let outs = tensor::tensor_list(outputs)?;
    let ins = tensor::tensor_list(inputs)?;
    let gs: Vec<Option<deepseek::Tensor>> = match grad_outputs {
        None => vec![None; outs.len()],
        Some(g) if g.is_none() => vec![None; outs.len()],
        Some(g) => {
            let items: Vec<Bound<'py, PyAny>> = if g.cast::<PyTensor>().is_ok() {
                vec![g.clone()]
            } else {
                g.try_iter()?.collect::<PyResult<_>>()?
            };
            items
                .iter()
                .map(|i| {
                    if i.is_none() {
                        Ok(None)
                    } else {
                        Ok(Some(i.cast::<PyTensor>()?.borrow().t.clone()))
                    }
                })
                .collect::<PyResult<_>>()?
        }
    };
    if gs.len() != outs.len() {
        return Err(PyValueError::new_err(format!(
            "grad: {} grad_outputs for {} outputs",
            gs.len(),
            outs.len()
        )));
    }
    let res = deepseek::autograd::grad(
        &outs,
        &ins,
        &gs,
        retain_graph.unwrap_or(create_graph),
        create_graph,
    )
    .py()?;
    let mut items: Vec<Py<PyAny>> = Vec::with_capacity(res.len());
    for (i, r) in res.into_iter().enumerate() {
        match r {
            Some(t) => items.push(PyTensor::wrap(py, t)?.into_any()),
            None if allow_unused => items.push(py.None()),
            None => {
                return Err(PyRuntimeError::new_err(format!(
                    "autograd.grad: input {i} was not used in the graph; pass allow_unused=True if this is intended"
                )))
            }
        }
    }
    PyTuple::new(py, items)
}

#[pymodule]
#[pyo3(name = "_C")]
fn deepseek_c(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyTensor>()?;
    m.add_class::<PyDType>()?;
    m.add_class::<PyDevice>()?;
    for (names, d) in [
        (&["float32", "float"][..], DType::F32),
        (&["float64", "double"][..], DType::F64),
        (&["float16", "half"][..], DType::F16),
        (&["bfloat16"][..], DType::BF16),
        (&["int64", "long"][..], DType::I64),
        (&["int32", "int"][..], DType::I32),
        (&["uint8"][..], DType::U8),
        (&["bool"][..], DType::Bool),
    ] {
        let obj = Py::new(py, PyDType { d })?;
        for n in names {
            m.add(*n, obj.clone_ref(py))?;
        }
    }
    m.add_function(wrap_pyfunction!(manual_seed, m)?)?;
    m.add_class::<generator::PyGenerator>()?;
    m.add(
        "default_generator",
        generator::PyGenerator::default_generator(),
    )?;
    m.add_function(wrap_pyfunction!(generator::_with_generator, m)?)?;
    m.add_function(wrap_pyfunction!(set_printoptions, m)?)?;
    m.add_function(wrap_pyfunction!(get_printoptions, m)?)?;
    m.add_function(wrap_pyfunction!(get_rng_state, m)?)?;
    m.add_function(wrap_pyfunction!(set_rng_state, m)?)?;
    m.add_function(wrap_pyfunction!(is_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(set_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_unary_methods, m)?)?;
    m.add_function(wrap_pyfunction!(autograd_grad, m)?)?;
    tensor::register(m)?;
    functional::register(m)?;
    optim::register(m)?;
    io::register(m)?;
    dlpack::register(m)?;
    share::register(m)?;
    lazy::register(m)?;
    distributed::register(m)?;
    models::register(m)?;
    tools::register(m)?;
    quant::register(m)?;
    quant_static::register(m)?;
    onnx::register(m)?;
    native::register(m)?;
    select::register(m)?;
    viz::register(m)?;
    autohyper::register(m)?;
    Ok(())
}

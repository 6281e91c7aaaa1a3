//! `deepseek.Tensor`: the Python face of [`deepseek::Tensor`].
//!
//! Operators and methods call the Rust API directly (no Python-level dispatch), so the
//! per-op overhead is one argument conversion and one allocation of the result object.

use crate::{check_device, device_arg, dtype_arg, IntoPy, PyDType, PyDevice};
use deepseek::ops::BinaryOp;
use deepseek::{DType, Device, Tensor};
use numpy::{PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{
    PyIndexError, PyNotImplementedError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyBool, PyEllipsis, PyFloat, PyInt, PyList, PySlice, PyTuple};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod creation;
mod data;
mod dunders;
mod indexing;
mod inplace;
mod math;
mod movement;
mod scalar;

pub use data::{from_numpy_array, tensor_from_data};
use indexing::*;
use scalar::*;

/// Returned by `Tensor.register_hook`; `remove()` disables the hook.
#[pyclass(module = "deepseek")]
pub struct HookHandle {
    active: Arc<AtomicBool>,
}

#[pymethods]
impl HookHandle {
    fn remove(&self) {
        self.active.store(false, Ordering::Relaxed);
    }
}

/// A multi-dimensional array with autograd, like `torch.Tensor`.
#[pyclass(name = "Tensor", module = "deepseek", subclass, weakref)]
pub struct PyTensor {
    pub t: Tensor,
}

impl PyTensor {
    /// A new Python object for `t`.
    pub fn wrap(py: Python<'_>, t: Tensor) -> PyResult<Py<PyTensor>> {
        Py::new(py, PyTensor { t })
    }
}

/// `t` from a Python object that must be a deepseek tensor.
pub fn as_tensor(o: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    match o.cast::<PyTensor>() {
        Ok(t) => Ok(t.borrow().t.clone()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "expected a deepseek.Tensor, got {}",
            o.get_type().name()?
        ))),
    }
}

/// An optional tensor argument (`None` allowed).
pub fn opt_tensor(o: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Tensor>> {
    match o {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => Ok(Some(as_tensor(o)?)),
    }
}

/// A list/tuple of tensors (or one tensor).
pub fn tensor_list(o: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    if let Ok(t) = o.cast::<PyTensor>() {
        return Ok(vec![t.borrow().t.clone()]);
    }
    o.try_iter()?.map(|i| as_tensor(&i?)).collect()
}

/// A tensor, or a Python scalar / list / numpy array converted to one.
pub fn to_tensor_like(o: &Bound<'_, PyAny>, like: Option<&Tensor>) -> PyResult<Tensor> {
    if let Ok(t) = o.cast::<PyTensor>() {
        return Ok(t.borrow().t.clone());
    }
    match scalar(o)? {
        Some(s) => {
            let dt = match like {
                Some(l) => scalar_dtype(l.dtype(), &s),
                None => match s {
                    Scalar::F(_) => DType::F32,
                    Scalar::I(_) => DType::I64,
                    Scalar::B(_) => DType::Bool,
                },
            };
            Tensor::full(&[], s.value(), dt).py()
        }
        None => tensor_from_data(o, None),
    }
}

// ------------------------------------------------------------------------------ args

/// `dim` arguments: None, an int, or a sequence of ints.
pub fn dims_arg(o: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<isize>>> {
    match o {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => {
            if let Ok(i) = o.extract::<isize>() {
                Ok(Some(vec![i]))
            } else {
                Ok(Some(o.extract::<Vec<isize>>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "dim must be an int or a sequence of ints, got {}",
                        o.repr().map(|r| r.to_string()).unwrap_or_default()
                    ))
                })?))
            }
        }
    }
}

/// Shape arguments given as `*sizes` or one sequence (`view(2, 3)` or `view((2, 3))`).
pub fn shape_args(args: &Bound<'_, PyTuple>) -> PyResult<Vec<isize>> {
    if args.len() == 1 {
        let a = args.get_item(0)?;
        if a.extract::<isize>().is_err() {
            return a.extract::<Vec<isize>>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "expected a shape (ints or a sequence of ints), got {}",
                    a.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            });
        }
    }
    args.iter()
        .map(|a| {
            a.extract::<isize>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "expected an int in the shape, got {}",
                    a.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })
        })
        .collect()
}

/// A shape of non-negative sizes.
pub fn usize_shape(v: &[isize], op: &str) -> PyResult<Vec<usize>> {
    v.iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                PyValueError::new_err(format!("{op}: negative dimension {d} in shape {v:?}"))
            })
        })
        .collect()
}

fn all_dims(t: &Tensor) -> Vec<isize> {
    (0..t.rank() as isize).collect()
}

fn check_grad_inplace(t: &Tensor, op: &str) -> PyResult<()> {
    if t.requires_grad() && deepseek::is_grad_enabled() {
        return Err(PyRuntimeError::new_err(format!(
            "{op}: in-place operation on a tensor that requires grad is not supported while grad mode is on (wrap it in deepseek.no_grad(), or use the out-of-place version)"
        )));
    }
    Ok(())
}

// ------------------------------------------------------------------------------ the class

/// One Python method per attribute-less unary primitive, derived from the core's declaration
/// table (`deepseek::for_each_unary_op!`); ops marked `nopy` there are written by hand below.
macro_rules! py_unary_methods {
    ($($key:literal, $name:literal, $method:tt, [$($a:ident),*], [$($nopy:ident)?], [$($doc:literal)*];)*) => {
        $( py_unary_method!($method, [$($a)*], [$($nopy)?], [$($doc)*]); )*
    };
}

macro_rules! py_unary_method {
    ($m:ident, [], [], [$($doc:literal)*]) => {
        #[pymethods]
        impl PyTensor {
            $(#[doc = $doc])*
            fn $m(&self) -> PyResult<PyTensor> {
                Ok(PyTensor { t: self.t.$m().py()? })
            }
        }
    };
    ($($other:tt)*) => {};
}

deepseek::for_each_unary_op!(py_unary_methods);

#[pymethods]
impl PyTensor {
    /// Logical not (bool result).
    fn logical_not(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.logical_not().py()?,
        })
    }
}

#[pymethods]
impl PyTensor {
    /// `Tensor(*sizes)`: a zero-filled float32 tensor of that shape (PyTorch's uninitialised
    /// `torch.Tensor(2, 3)`); `Tensor(data)`: float32 data from a sequence or numpy array,
    /// or a tensor sharing another tensor's storage; `Tensor()`: an empty float tensor.
    /// `dtype=` overrides float32 and `requires_grad=` marks the result.
    #[new]
    #[pyo3(signature = (*args, requires_grad=false, dtype=None))]
    fn py_new(
        args: &Bound<'_, PyTuple>,
        requires_grad: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let dt = dtype.map(dtype_arg).transpose()?;
        let all_ints = !args.is_empty()
            && args
                .iter()
                .all(|a| a.cast::<PyInt>().is_ok() && a.cast::<PyBool>().is_err());
        let t = if args.is_empty() {
            Tensor::zeros(&[0], dt.unwrap_or(DType::F32)).py()?
        } else if all_ints {
            let shape = usize_shape(&shape_args(args)?, "Tensor")?;
            Tensor::zeros(&shape, dt.unwrap_or(DType::F32)).py()?
        } else if args.len() > 1 {
            return Err(PyTypeError::new_err(
                "Tensor(): expected sizes (ints) or one data argument",
            ));
        } else {
            let d = args.get_item(0)?;
            if let Ok(src) = d.cast::<PyTensor>() {
                let t = src.borrow().t.detach();
                match dt {
                    Some(dt) if dt != t.dtype() => t.to_dtype(dt).py()?,
                    _ => t,
                }
            } else {
                tensor_from_data(&d, Some(dt.unwrap_or(DType::F32)))?
            }
        };
        if requires_grad {
            t.requires_grad_(true).py()?;
        }
        Ok(PyTensor { t })
    }

    // ---------------------------------------------------------------- properties

    /// The shape as a tuple.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        size_object(py, self.t.shape())
    }
    /// `size()` (the shape) or `size(dim)`.
    #[pyo3(signature = (dim=None))]
    fn size<'py>(&self, py: Python<'py>, dim: Option<isize>) -> PyResult<Py<PyAny>> {
        match dim {
            None => Ok(size_object(py, self.t.shape())?.unbind()),
            Some(d) => Ok(self.t.size(d).py()?.into_pyobject(py)?.into_any().unbind()),
        }
    }
    /// Strides in elements: `stride()` or `stride(dim)`.
    #[pyo3(signature = (dim=None))]
    fn stride<'py>(&self, py: Python<'py>, dim: Option<isize>) -> PyResult<Py<PyAny>> {
        let s = self.t.stride();
        match dim {
            None => Ok(PyTuple::new(py, s)?.into_any().unbind()),
            Some(d) => {
                let r = s.len() as isize;
                let dd = if d < 0 { d + r } else { d };
                if dd < 0 || dd >= r {
                    return Err(PyIndexError::new_err(format!(
                        "dimension {d} out of range for a {r}-d tensor"
                    )));
                }
                Ok(s[dd as usize].into_pyobject(py)?.into_any().unbind())
            }
        }
    }
    /// Number of dimensions.
    fn dim(&self) -> usize {
        self.t.rank()
    }
    #[getter]
    fn ndim(&self) -> usize {
        self.t.rank()
    }
    /// Alias of `dim()`: number of dimensions.
    fn ndimension(&self) -> usize {
        self.t.rank()
    }
    /// Number of elements.
    fn numel(&self) -> usize {
        self.t.numel()
    }
    /// Alias of `numel()`: number of elements.
    fn nelement(&self) -> usize {
        self.t.numel()
    }
    /// Bytes per element of this dtype.
    fn element_size(&self) -> usize {
        self.t.dtype().size_in_bytes()
    }
    #[getter]
    fn itemsize(&self) -> usize {
        self.t.dtype().size_in_bytes()
    }
    #[getter]
    fn nbytes(&self) -> usize {
        self.t.dtype().size_in_bytes() * self.t.numel()
    }
    #[getter]
    fn dtype(&self) -> PyDType {
        PyDType { d: self.t.dtype() }
    }
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice { d: self.t.device() }
    }
    #[getter]
    fn is_cuda(&self) -> bool {
        matches!(self.t.device(), Device::Cuda(_))
    }
    /// True when the tensor is laid out row-major without gaps.
    fn is_contiguous(&self) -> bool {
        self.t.is_contiguous()
    }
    /// True for floating dtypes (float16, bfloat16, float32, float64).
    fn is_floating_point(&self) -> bool {
        self.t.dtype().is_float()
    }
    /// Offset of the first element in the underlying storage, in elements.
    fn storage_offset(&self) -> usize {
        self.t.layout().offset
    }
    /// True when both tensors share one storage.
    fn is_set_to(&self, other: &PyTensor) -> bool {
        self.t.shares_storage(&other.t)
            && self.t.layout().offset == other.t.layout().offset
            && self.t.shape() == other.t.shape()
            && self.t.stride() == other.t.stride()
    }
    /// True when both tensors share one storage.
    fn _shares_storage(&self, other: &PyTensor) -> bool {
        self.t.shares_storage(&other.t)
    }

    // ---------------------------------------------------------------- autograd

    #[getter(requires_grad)]
    fn get_requires_grad(&self) -> bool {
        self.t.requires_grad()
    }
    #[setter(requires_grad)]
    fn set_requires_grad(&self, on: bool) -> PyResult<()> {
        self.t.requires_grad_(on).py().map(|_| ())
    }
    /// Sets `requires_grad` in place and returns self.
    #[pyo3(signature = (requires_grad=true))]
    fn requires_grad_(slf: Bound<'_, Self>, requires_grad: bool) -> PyResult<Bound<'_, Self>> {
        slf.borrow().t.requires_grad_(requires_grad).py()?;
        Ok(slf)
    }
    #[getter]
    fn is_leaf(&self) -> bool {
        self.t.is_leaf()
    }
    /// The name of the op that produced this tensor (`None` for leaves).
    #[getter]
    fn grad_fn(&self) -> Option<String> {
        self.t
            .grad_fn_name()
            .map(|n| deepseek::tensor::grad_fn_class(&n))
    }
    #[getter(grad)]
    fn get_grad(&self) -> Option<PyTensor> {
        self.t.grad().map(|t| PyTensor { t })
    }
    #[setter(grad)]
    fn set_grad(&self, g: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let g = opt_tensor(g)?;
        self.t.set_grad(g).py()
    }
    /// The same data, cut from the graph (shares storage).
    fn detach(&self) -> PyTensor {
        PyTensor { t: self.t.detach() }
    }
    /// The data without autograd history (shares storage).
    #[getter(data)]
    fn get_data(&self) -> PyTensor {
        PyTensor { t: self.t.detach() }
    }
    /// `t.data = other` copies `other` into this tensor's storage (same shape required; the
    /// tensor object keeps its identity, so optimizers holding it see the new values).
    #[setter(data)]
    fn set_data(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let o = as_tensor(other)?;
        if o.shape() != self.t.shape() {
            return Err(PyValueError::new_err(format!(
                "data: cannot assign a tensor of shape {:?} to one of shape {:?}",
                o.shape(),
                self.t.shape()
            )));
        }
        let _g = deepseek::no_grad();
        self.t.detach().copy_(&o).py()
    }
    /// Keep `.grad` for this non-leaf tensor after `backward()`.
    fn retain_grad(&self) -> PyResult<()> {
        self.t.retain_grad().py()
    }
    #[getter]
    fn retains_grad(&self) -> bool {
        !self.t.is_leaf() && self.t.grad().is_some()
    }
    /// Backward from this tensor: accumulates gradients into the leaves' `.grad`.
    #[pyo3(signature = (gradient=None, retain_graph=None, create_graph=false, inputs=None))]
    fn backward(
        &self,
        py: Python<'_>,
        gradient: Option<&Bound<'_, PyAny>>,
        retain_graph: Option<bool>,
        create_graph: bool,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if inputs.is_some_and(|i| !i.is_none()) {
            return Err(PyNotImplementedError::new_err(
                "backward(inputs=...) is not supported; use deepseek.autograd.grad",
            ));
        }
        let g = opt_tensor(gradient)?;
        let t = &self.t;
        let retain = retain_graph.unwrap_or(create_graph);
        // The backward pass runs without the GIL (tensor hooks re-acquire it).
        py.detach(|| t.backward_with(g.as_ref(), retain, create_graph))
            .py()
    }
    /// Registers `hook(grad)`, called with this tensor's gradient during backward; a tensor it
    /// returns replaces the gradient.
    fn register_hook(&self, hook: Py<PyAny>) -> PyResult<HookHandle> {
        let active = Arc::new(AtomicBool::new(true));
        let on = active.clone();
        self.t
            .register_hook(move |g: &Tensor| {
                if !on.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                Python::attach(|py| {
                    let arg = PyTensor { t: g.clone() };
                    let r = hook
                        .call1(py, (arg,))
                        .map_err(|e| deepseek::Error::Msg(format!("a tensor hook raised: {e}")))?;
                    if r.is_none(py) {
                        return Ok(None);
                    }
                    let b = r.bind(py);
                    match b.cast::<PyTensor>() {
                        Ok(t) => Ok(Some(t.borrow().t.clone())),
                        Err(_) => Err(deepseek::Error::Msg(
                            "a tensor hook must return None or a Tensor".into(),
                        )),
                    }
                })
            })
            .py()?;
        Ok(HookHandle { active })
    }
    /// Formats one-element tensors like their value (`f"{loss:.4f}"`).
    fn __format__(&self, spec: &str) -> PyResult<String> {
        if spec.is_empty() {
            return Ok(self.__repr__());
        }
        if self.t.numel() != 1 {
            return Err(PyTypeError::new_err(format!(
                "unsupported format string passed to Tensor.__format__ (a tensor of {} elements)",
                self.t.numel()
            )));
        }
        Python::attach(|py| {
            let v = self.item(py)?;
            v.bind(py).call_method1("__format__", (spec,))?.extract()
        })
    }
    /// Makes numpy defer to the Tensor operators (`np.float32(2) * t` is a Tensor).
    #[classattr]
    fn __array_priority__() -> f64 {
        1000.0
    }
}

impl PyTensor {
    fn cast(&self, d: DType) -> PyResult<PyTensor> {
        if d == self.t.dtype() {
            return Ok(PyTensor { t: self.t.clone() });
        }
        Ok(PyTensor {
            t: self.t.to_dtype(d).py()?,
        })
    }
    fn cmp(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<PyTensor> {
        match compare(&self.t, other, op)? {
            Some(t) => Ok(PyTensor { t }),
            None => Err(PyTypeError::new_err(format!(
                "comparison with {} is not supported",
                other.get_type().name()?
            ))),
        }
    }
    fn with_dtype(&self, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Tensor> {
        match dtype {
            Some(d) if !d.is_none() => {
                let d = dtype_arg(d)?;
                if d == self.t.dtype() {
                    Ok(self.t.clone())
                } else {
                    self.t.to_dtype(d).py()
                }
            }
            _ => Ok(self.t.clone()),
        }
    }
    fn minmax(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        max: bool,
    ) -> PyResult<Py<PyAny>> {
        let dim = dim.filter(|d| !d.is_none());
        match dim {
            None => {
                let t = if max {
                    self.t.max_all()
                } else {
                    self.t.min_all()
                }
                .py()?;
                Ok(Py::new(py, PyTensor { t })?.into_any())
            }
            Some(d) if d.cast::<PyTensor>().is_ok() => {
                let o = as_tensor(d)?;
                let t = if max {
                    self.t.maximum(&o)
                } else {
                    self.t.minimum(&o)
                }
                .py()?;
                Ok(Py::new(py, PyTensor { t })?.into_any())
            }
            Some(d) => {
                let d: isize = d.extract()?;
                let (v, i) = if max {
                    self.t.max_dim(d, keepdim)
                } else {
                    self.t.min_dim(d, keepdim)
                }
                .py()?;
                let mt = py.import("deepseek.return_types")?;
                let cls = mt.getattr(if max { "max" } else { "min" })?;
                Ok(cls.call1((PyTensor { t: v }, PyTensor { t: i }))?.unbind())
            }
        }
    }
    fn new_full_impl(
        &self,
        size: &Bound<'_, PyTuple>,
        v: f64,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        let dt = dtype.map(dtype_arg).transpose()?.unwrap_or(self.t.dtype());
        let shape = usize_shape(&shape_args(size)?, "new_full")?;
        let t = Tensor::full(&shape, v, dt).py()?;
        if requires_grad {
            t.requires_grad_(true).py()?;
        }
        Ok(PyTensor { t })
    }
}

/// Finishes an in-place op whose result `r` was computed out of place.
///
/// - Outside the autograd graph the result is written into the tensor's storage (views
///   see it, as in PyTorch).
/// - A tensor in the graph (a non-leaf that requires grad, or any tensor when `r` requires
///   grad) is rebound to `r`, which carries the graph: the Python object now stands for the
///   result, and other views of its old storage keep the old values.
/// - A leaf that requires grad is refused while grad mode is on, as in PyTorch.
pub(crate) fn inplace<'py>(
    slf: Bound<'py, PyTensor>,
    r: Tensor,
    op: &str,
) -> PyResult<Bound<'py, PyTensor>> {
    let rebind = {
        let s = slf.borrow();
        let grad_on = deepseek::is_grad_enabled();
        if grad_on && s.t.requires_grad() && s.t.is_leaf() {
            return Err(PyRuntimeError::new_err(format!(
                "{op}: a leaf tensor that requires grad is being used in an in-place operation (wrap it in deepseek.no_grad())"
            )));
        }
        let r = if r.shape() != s.t.shape() {
            r.expand(s.t.shape())
                .and_then(|e| e.contiguous())
                .map_err(|_| {
                    PyValueError::new_err(format!(
                        "{op}: output with shape {:?} doesn't match the broadcast shape {:?}",
                        s.t.shape(),
                        r.shape()
                    ))
                })?
        } else {
            r
        };
        let r = if r.dtype() != s.t.dtype() {
            r.to_dtype(s.t.dtype()).py()?
        } else {
            r
        };
        if grad_on && (s.t.requires_grad() || r.requires_grad()) {
            Some(r)
        } else {
            let _g = deepseek::no_grad();
            s.t.copy_(&r.detach()).py()?;
            None
        }
    };
    if let Some(r) = rebind {
        slf.borrow_mut().t = r;
    }
    Ok(slf)
}

/// The result of `gather`/`take_along_dim` with an empty index (the core's kernels do not
/// take empty indices): zeros shaped like the index, after the usual checks.
fn empty_index_result(
    t: &Tensor,
    index: &Tensor,
    dim: isize,
    op: &str,
) -> PyResult<Option<Tensor>> {
    if index.numel() != 0 {
        return Ok(None);
    }
    if index.dtype().is_float() || index.dtype() == DType::Bool {
        return Err(PyTypeError::new_err(format!(
            "{op}: expected an integer index tensor, got {}",
            index.dtype()
        )));
    }
    let r = t.rank() as isize;
    if index.rank() != t.rank() || dim < -r.max(1) || dim >= r.max(1) {
        return Err(PyValueError::new_err(format!(
            "{op}: index {:?} and input {:?} must have the same number of dims, and dim {dim} must be one of them",
            index.shape(),
            t.shape()
        )));
    }
    Ok(Some(Tensor::zeros(index.shape(), t.dtype()).py()?))
}

fn var_args(
    dim: Option<&Bound<'_, PyAny>>,
    unbiased: Option<&Bound<'_, PyAny>>,
    correction: Option<f64>,
) -> PyResult<(Option<Vec<isize>>, f64)> {
    // PyTorch allows `var(True)` (unbiased as the first positional argument).
    let (dim, unbiased) = match dim {
        Some(d) if d.cast::<PyBool>().is_ok() => (None, Some(d.is_truthy()?)),
        _ => (
            dim,
            unbiased
                .filter(|u| !u.is_none())
                .map(|u| u.is_truthy())
                .transpose()?,
        ),
    };
    let c = match (correction, unbiased) {
        (Some(c), _) => c,
        (None, Some(false)) => 0.0,
        _ => 1.0,
    };
    Ok((dims_arg(dim)?, c))
}

fn wrap_all(v: Vec<Tensor>) -> PyResult<Vec<PyTensor>> {
    Ok(v.into_iter().map(|t| PyTensor { t }).collect())
}

fn build_empty(py: Python<'_>, shape: &[usize]) -> PyResult<Py<PyAny>> {
    if shape.is_empty() || shape[0] == 0 {
        return Ok(PyList::empty(py).into_any().unbind());
    }
    let items: Vec<Py<PyAny>> = (0..shape[0])
        .map(|_| build_empty(py, &shape[1..]))
        .collect::<PyResult<_>>()?;
    Ok(PyList::new(py, items)?.into_any().unbind())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HookHandle>()?;
    creation::register(m)
}

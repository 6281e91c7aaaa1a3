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
fn int_too_big() -> PyErr {
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
fn tensor_op(a: &Tensor, b: &Tensor, op: BinaryOp) -> deepseek::Result<Tensor> {
    match op {
        BinaryOp::And => bitlike(a, b, |x, y| x.logical_and(y)),
        BinaryOp::Or => bitlike(a, b, |x, y| x.logical_or(y)),
        BinaryOp::Xor => bitlike(a, b, |x, y| x.logical_xor(y)),
        _ => a.binary(b, op),
    }
}

/// `&`, `|`, `^` on bool tensors (the only ones deepseek supports for these operators).
fn bitlike(
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
fn scalar_op(a: &Tensor, s: Scalar, op: BinaryOp, reflected: bool) -> deepseek::Result<Tensor> {
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
fn binary(
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
fn method_binary(a: &Tensor, other: &Bound<'_, PyAny>, op: BinaryOp) -> PyResult<Tensor> {
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

fn compare(a: &Tensor, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Option<Tensor>> {
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

// ------------------------------------------------------------------------------ from Python data

fn collect(
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
    macro_rules! try_ty {
        ($t:ty, $conv:expr) => {
            if let Ok(a) = o.extract::<PyReadonlyArrayDyn<'_, $t>>() {
                let shape = a.shape().to_vec();
                let v: Vec<_> = a.as_array().iter().map($conv).collect();
                return Tensor::from_vec(v, &shape).py().map(Some);
            }
        };
    }
    if !o.hasattr("__array_interface__")? {
        return Ok(None);
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

fn build_list(py: Python<'_>, vals: &[f64], shape: &[usize], dt: DType) -> PyResult<Py<PyAny>> {
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

fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
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

// ------------------------------------------------------------------------------ indexing

enum Ix {
    Int(isize),
    Slice(Py<PySlice>),
    NewAxis,
    Ellipsis,
    Adv(Tensor),
}

fn parse_index(idx: &Bound<'_, PyAny>) -> PyResult<Vec<Ix>> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = idx.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        vec![idx.clone()]
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        if it.is_none() {
            out.push(Ix::NewAxis);
        } else if it.cast::<PyEllipsis>().is_ok() {
            out.push(Ix::Ellipsis);
        } else if let Ok(s) = it.cast::<PySlice>() {
            out.push(Ix::Slice(s.clone().unbind()));
        } else if let Ok(t) = it.cast::<PyTensor>() {
            let t = t.borrow().t.clone();
            if t.rank() == 0 && t.dtype() != DType::Bool {
                if t.dtype().is_float() {
                    return Err(PyIndexError::new_err(
                        "tensors used as indices must be long, int, uint8 or bool tensors",
                    ));
                }
                out.push(Ix::Int(t.item().py()? as isize));
            } else {
                out.push(Ix::Adv(t));
            }
        } else if it.cast::<PyBool>().is_ok() {
            return Err(PyIndexError::new_err(
                "indexing with a Python bool is not supported",
            ));
        } else if let Ok(i) = it.extract::<isize>() {
            out.push(Ix::Int(i));
        } else if it.cast::<PyList>().is_ok() || it.hasattr("__array_interface__")? {
            let t = tensor_from_data(&it, None)?;
            if t.dtype().is_float() {
                return Err(PyIndexError::new_err(
                    "index lists must hold ints or bools, got floats",
                ));
            }
            out.push(Ix::Adv(t));
        } else {
            return Err(PyIndexError::new_err(format!(
                "only integers, slices (`:`), ellipsis (`...`), None and integer or boolean tensors are valid indices (got {})",
                it.get_type().name()?
            )));
        }
    }
    Ok(out)
}

/// Positions of the true elements of a bool mask, one int64 tensor per mask dim.
fn nonzero_cols(mask: &Tensor) -> PyResult<Vec<Tensor>> {
    let v = mask.to_vec::<bool>().py()?;
    let shape = mask.shape();
    let r = shape.len();
    let mut cols: Vec<Vec<i64>> = vec![Vec::new(); r];
    for (flat, &b) in v.iter().enumerate() {
        if b {
            let mut rem = flat;
            for d in (0..r).rev() {
                cols[d].push((rem % shape[d]) as i64);
                rem /= shape[d];
            }
        }
    }
    cols.into_iter()
        .map(|c| {
            let n = c.len();
            Tensor::from_vec(c, &[n]).py()
        })
        .collect()
}

/// Basic indexing (views), then advanced indexing with integer / bool tensors.
fn getitem(t: &Tensor, idx: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let (x, adv) = basic_index(t, idx)?;
    if adv.is_empty() {
        return Ok(x);
    }
    let a = Advanced::new(&x, &adv)?;
    let merged = a.xp.reshape(&a.merged_shape).py()?;
    merged
        .index_select(a.first as isize, &a.flat)
        .py()?
        .reshape(&a.out_shape)
        .py()
}

/// The basic part of an index applied as views, and the advanced indices left over as
/// (dim of the view, integer index tensor).
fn basic_index(t: &Tensor, idx: &Bound<'_, PyAny>) -> PyResult<(Tensor, Vec<(usize, Tensor)>)> {
    let py = idx.py();
    let items = parse_index(idx)?;
    let consumed: usize = items
        .iter()
        .map(|i| match i {
            Ix::Int(_) | Ix::Slice(_) => 1,
            Ix::Adv(a) if a.dtype() == DType::Bool => a.rank().max(1),
            Ix::Adv(_) => 1,
            _ => 0,
        })
        .sum();
    if consumed > t.rank() {
        return Err(PyIndexError::new_err(format!(
            "too many indices for tensor of dimension {} (got {consumed})",
            t.rank()
        )));
    }
    if items.iter().filter(|i| matches!(i, Ix::Ellipsis)).count() > 1 {
        return Err(PyIndexError::new_err(
            "an index can only have a single ellipsis ('...')",
        ));
    }
    let mut x = t.clone();
    let mut d = 0usize;
    // (dim in x, index tensors for dims d.., count)
    let mut adv: Vec<(usize, Tensor)> = Vec::new();
    for it in &items {
        match it {
            Ix::Int(i) => {
                let n = x.shape()[d] as isize;
                if *i < -n || *i >= n {
                    return Err(PyIndexError::new_err(format!(
                        "index {i} is out of bounds for dimension {d} with size {n}"
                    )));
                }
                x = x.select(d as isize, *i).py()?;
            }
            Ix::Slice(s) => {
                let n = x.shape()[d] as isize;
                let ind = s.bind(py).indices(n)?;
                if ind.step <= 0 {
                    return Err(PyValueError::new_err("step must be greater than zero"));
                }
                let stop = ind.stop.max(ind.start);
                x = x
                    .slice(d as isize, ind.start, stop, ind.step as usize)
                    .py()?;
                d += 1;
            }
            Ix::NewAxis => {
                x = x.unsqueeze(d as isize).py()?;
                d += 1;
            }
            Ix::Ellipsis => {
                d += t.rank() - consumed;
            }
            Ix::Adv(a) => {
                if a.dtype() == DType::Bool {
                    let k = a.rank();
                    if x.shape().get(d..d + k) != Some(a.shape()) {
                        return Err(PyIndexError::new_err(format!(
                            "the shape of the mask {:?} does not match the shape of the indexed tensor {:?} at dims {d}..{}",
                            a.shape(),
                            x.shape(),
                            d + k
                        )));
                    }
                    for (j, c) in nonzero_cols(a)?.into_iter().enumerate() {
                        adv.push((d + j, c));
                    }
                    d += k;
                } else {
                    adv.push((d, a.clone()));
                    d += 1;
                }
            }
        }
    }
    Ok((x, adv))
}

/// PyTorch's advanced indexing, prepared: the indexed view (advanced dims moved first when
/// they are not adjacent), the advanced dims merged into one of `merged_shape`, and one flat
/// int64 index into that merged dim.
struct Advanced {
    xp: Tensor,
    /// The permutation applied to the view, if any.
    perm: Option<Vec<isize>>,
    first: usize,
    merged_shape: Vec<usize>,
    out_shape: Vec<usize>,
    /// Flat indices into the merged dim, 1-D.
    flat: Tensor,
}

impl Advanced {
    fn new(x: &Tensor, adv: &[(usize, Tensor)]) -> PyResult<Advanced> {
        let dims: Vec<usize> = adv.iter().map(|(d, _)| *d).collect();
        let adjacent = dims.windows(2).all(|w| w[1] == w[0] + 1);
        // Non-adjacent advanced dims go first (as in PyTorch).
        let (xp, first, perm) = if adjacent {
            (x.clone(), dims[0], None)
        } else {
            let mut perm: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            perm.extend(
                (0..x.rank())
                    .filter(|d| !dims.contains(d))
                    .map(|d| d as isize),
            );
            (x.permute(&perm).py()?, 0, Some(perm))
        };
        let k = dims.len();
        let sizes: Vec<usize> = xp.shape()[first..first + k].to_vec();
        // Broadcast the index tensors, wrap negatives, and fold them into one flat index.
        let mut bshape: Vec<usize> = Vec::new();
        for (_, t) in adv {
            bshape = deepseek::tensor::broadcast_shapes("index", &bshape, t.shape()).py()?;
        }
        let mut flat: Option<Tensor> = None;
        for (j, (_, t)) in adv.iter().enumerate() {
            let n = sizes[j] as f64;
            let t = t.to_dtype(DType::I64).py()?;
            let vals = t.to_vec::<i64>().py()?;
            if let Some(bad) = vals.iter().find(|&&v| v < -(n as i64) || v >= n as i64) {
                return Err(PyIndexError::new_err(format!(
                    "index {bad} is out of bounds for dimension with size {}",
                    sizes[j]
                )));
            }
            let t = t
                .add(
                    &t.lt_scalar(0.0)
                        .py()?
                        .to_dtype(DType::I64)
                        .py()?
                        .mul_scalar(n)
                        .py()?,
                )
                .py()?
                .expand(&bshape)
                .py()?;
            let stride: usize = sizes[j + 1..].iter().product();
            let term = t.mul_scalar(stride as f64).py()?;
            flat = Some(match flat {
                None => term,
                Some(f) => f.add(&term).py()?,
            });
        }
        let flat = flat.expect("at least one index");
        let mut merged_shape: Vec<usize> = xp.shape()[..first].to_vec();
        merged_shape.push(sizes.iter().product());
        merged_shape.extend_from_slice(&xp.shape()[first + k..]);
        let mut out_shape: Vec<usize> = xp.shape()[..first].to_vec();
        out_shape.extend_from_slice(&bshape);
        out_shape.extend_from_slice(&xp.shape()[first + k..]);
        let nflat = flat.numel();
        Ok(Advanced {
            flat: flat.reshape(&[nflat]).py()?,
            xp,
            perm,
            first,
            merged_shape,
            out_shape,
        })
    }

    /// `x` with `value` (broadcast to the indexed shape) written at the indexed positions;
    /// for repeated positions the last value wins.
    fn scatter(&self, value: &Tensor) -> PyResult<Tensor> {
        let work = if self.xp.dtype() == DType::Bool {
            DType::I64
        } else {
            self.xp.dtype()
        };
        let merged = self
            .xp
            .to_dtype(work)
            .py()?
            .reshape(&self.merged_shape)
            .py()?;
        let mut vshape: Vec<usize> = self.merged_shape.clone();
        vshape[self.first] = self.flat.numel();
        let v = value
            .to_dtype(work)
            .py()?
            .expand(&self.out_shape)
            .py()?
            .reshape(&vshape)
            .py()?;
        // Keep the last occurrence of each position.
        let fv = self.flat.to_vec::<i64>().py()?;
        let mut seen = std::collections::HashSet::new();
        let mut keep: Vec<i64> = Vec::with_capacity(fv.len());
        for (i, f) in fv.iter().enumerate().rev() {
            if seen.insert(*f) {
                keep.push(i as i64);
            }
        }
        keep.reverse();
        let (flat, v) = if keep.len() < fv.len() {
            let n = keep.len();
            let ki = Tensor::from_vec(keep, &[n]).py()?;
            (
                self.flat.index_select(0, &ki).py()?,
                v.index_select(self.first as isize, &ki).py()?,
            )
        } else {
            (self.flat.clone(), v)
        };
        let d = self.first as isize;
        let cur = merged.index_select(d, &flat).py()?;
        let new = merged
            .index_add(d, &flat, &v.sub(&cur).py()?)
            .py()?
            .reshape(self.xp.shape())
            .py()?;
        match &self.perm {
            None => Ok(new),
            Some(p) => {
                let mut inv = vec![0isize; p.len()];
                for (i, &d) in p.iter().enumerate() {
                    inv[d as usize] = i as isize;
                }
                new.permute(&inv).py()
            }
        }
    }
}

/// `t[idx] = value` as a new tensor, differentiable with respect to `t` (the assigned
/// positions get no gradient). `value` must not require grad.
fn setitem_functional(
    t: &Tensor,
    idx: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<Tensor> {
    let v = to_tensor_like(value, Some(t))?;
    if v.requires_grad() {
        return Err(PyNotImplementedError::new_err(
            "__setitem__: assigning a tensor that requires grad into a tensor in the autograd graph is not supported; build the result with deepseek.where or deepseek.cat",
        ));
    }
    let (sel, full) = {
        let _g = deepseek::no_grad();
        let sel = Tensor::zeros(t.shape(), DType::Bool).py()?;
        setitem(&sel, idx, PyBool::new(idx.py(), true).as_any())?;
        let full = Tensor::zeros(t.shape(), t.dtype()).py()?;
        let vb = Py::new(idx.py(), PyTensor { t: v })?;
        setitem(&full, idx, vb.bind(idx.py()).as_any())?;
        (sel, full)
    };
    Tensor::where_cond(&sel, &full, t).py()
}

fn setitem(t: &Tensor, idx: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    check_grad_inplace(t, "__setitem__")?;
    // A bool mask over the leading dims: masked_fill / where.
    if let Ok(m) = idx.cast::<PyTensor>() {
        let m = m.borrow().t.clone();
        if m.dtype() == DType::Bool {
            if m.rank() > t.rank() || t.shape()[..m.rank()] != *m.shape() {
                return Err(PyIndexError::new_err(format!(
                    "the shape of the mask {:?} does not match the shape of the indexed tensor {:?}",
                    m.shape(),
                    t.shape()
                )));
            }
            let mut ms = m.shape().to_vec();
            ms.resize(t.rank(), 1);
            let mb = m.reshape(&ms).py()?;
            let _g = deepseek::no_grad();
            let new = match scalar(value)? {
                Some(s) => t.masked_fill(&mb, s.value()).py()?,
                None => {
                    let v = to_tensor_like(value, Some(t))?;
                    Tensor::where_cond(&mb, &v.to_dtype(t.dtype()).py()?, t).py()?
                }
            };
            return t.copy_(&new).py();
        }
    }
    let _g = deepseek::no_grad();
    let (view, adv) = basic_index(t, idx)?;
    if !view.shares_storage(t) {
        return Err(PyRuntimeError::new_err(
            "__setitem__: the index did not produce a view",
        ));
    }
    let v = to_tensor_like(value, Some(t))?;
    if adv.is_empty() {
        return view.copy_(&v).py();
    }
    // Integer-tensor (or mixed) indices: compute the updated view, then write it back.
    let new = Advanced::new(&view, &adv)?.scatter(&v)?;
    view.copy_(&new).py()
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
    fn dim(&self) -> usize {
        self.t.rank()
    }
    #[getter]
    fn ndim(&self) -> usize {
        self.t.rank()
    }
    fn ndimension(&self) -> usize {
        self.t.rank()
    }
    fn numel(&self) -> usize {
        self.t.numel()
    }
    fn nelement(&self) -> usize {
        self.t.numel()
    }
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
    fn is_contiguous(&self) -> bool {
        self.t.is_contiguous()
    }
    fn is_floating_point(&self) -> bool {
        self.t.dtype().is_float()
    }
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
    fn retain_grad(&self) {
        self.t.retain_grad();
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
    fn cpu(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
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
    fn float(&self) -> PyResult<PyTensor> {
        self.cast(DType::F32)
    }
    fn double(&self) -> PyResult<PyTensor> {
        self.cast(DType::F64)
    }
    fn half(&self) -> PyResult<PyTensor> {
        self.cast(DType::F16)
    }
    fn bfloat16(&self) -> PyResult<PyTensor> {
        self.cast(DType::BF16)
    }
    fn long(&self) -> PyResult<PyTensor> {
        self.cast(DType::I64)
    }
    fn int(&self) -> PyResult<PyTensor> {
        self.cast(DType::I32)
    }
    fn byte(&self) -> PyResult<PyTensor> {
        self.cast(DType::U8)
    }
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
    fn type_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        self.cast(other.t.dtype())
    }
    /// The value of a one-element tensor as a Python number.
    fn item(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
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
    fn contiguous(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.contiguous().py()?,
        })
    }

    // ---------------------------------------------------------------- dunders

    fn __repr__(&self) -> String {
        // The Rust Display already prints PyTorch's layout, dtype, requires_grad and grad_fn.
        format!("{}", self.t)
    }
    fn __len__(&self) -> PyResult<usize> {
        self.t
            .shape()
            .first()
            .copied()
            .ok_or_else(|| PyTypeError::new_err("len() of a 0-d tensor"))
    }
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.t.rank() == 0 {
            return Err(PyTypeError::new_err("iteration over a 0-d tensor"));
        }
        let items: Vec<PyTensor> = self
            .t
            .unbind(0)
            .py()?
            .into_iter()
            .map(|t| PyTensor { t })
            .collect();
        let l = PyList::new(py, items)?;
        Ok(l.try_iter()?.into_any().unbind())
    }
    fn __bool__(&self) -> PyResult<bool> {
        if self.t.numel() != 1 {
            return Err(PyRuntimeError::new_err(format!(
                "Boolean value of Tensor with {} elements is ambiguous",
                self.t.numel()
            )));
        }
        Ok(self.t.item().py()? != 0.0)
    }
    fn __float__(&self) -> PyResult<f64> {
        self.t.item().py()
    }
    fn __int__(&self) -> PyResult<i64> {
        Ok(self.t.item().py()?.trunc() as i64)
    }
    fn __index__(&self) -> PyResult<i64> {
        if self.t.dtype().is_float() || self.t.dtype() == DType::Bool {
            return Err(PyTypeError::new_err(
                "only integer tensors of a single element can be converted to an index",
            ));
        }
        Ok(self.t.item().py()? as i64)
    }
    fn __hash__(slf: &Bound<'_, Self>) -> isize {
        slf.as_ptr() as isize
    }
    fn __getitem__(&self, idx: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: getitem(&self.t, idx)?,
        })
    }
    fn __setitem__(
        slf: &Bound<'_, Self>,
        idx: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let t = slf.borrow().t.clone();
        if t.requires_grad() && !t.is_leaf() && deepseek::is_grad_enabled() {
            // In the autograd graph: compute the result out of place and rebind (see
            // `inplace`).
            let new = setitem_functional(&t, idx, value)?;
            slf.borrow_mut().t = new;
            return Ok(());
        }
        setitem(&t, idx, value)
    }

    fn __add__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Add, false)
    }
    fn __radd__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Add, true)
    }
    fn __sub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Sub, false)
    }
    fn __rsub__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Sub, true)
    }
    fn __mul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Mul, false)
    }
    fn __rmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Mul, true)
    }
    fn __truediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Div, false)
    }
    fn __rtruediv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Div, true)
    }
    fn __floordiv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::FloorDiv, false)
    }
    fn __rfloordiv__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::FloorDiv, true)
    }
    fn __mod__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Rem, false)
    }
    fn __rmod__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Rem, true)
    }
    fn __pow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        m: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if m.is_some_and(|m| !m.is_none()) {
            return Ok(py.NotImplemented());
        }
        binary(py, &self.t, o, BinaryOp::Pow, false)
    }
    fn __rpow__(
        &self,
        py: Python<'_>,
        o: &Bound<'_, PyAny>,
        m: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if m.is_some_and(|m| !m.is_none()) {
            return Ok(py.NotImplemented());
        }
        binary(py, &self.t, o, BinaryOp::Pow, true)
    }
    fn __and__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::And, false)
    }
    fn __rand__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::And, true)
    }
    fn __or__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Or, false)
    }
    fn __ror__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Or, true)
    }
    fn __xor__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Xor, false)
    }
    fn __rxor__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        binary(py, &self.t, o, BinaryOp::Xor, true)
    }
    fn __matmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match o.cast::<PyTensor>() {
            Ok(b) => Ok(Py::new(
                py,
                PyTensor {
                    t: self.t.matmul(&b.borrow().t).py()?,
                },
            )?
            .into_any()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }
    fn __rmatmul__(&self, py: Python<'_>, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match o.cast::<PyTensor>() {
            Ok(b) => Ok(Py::new(
                py,
                PyTensor {
                    t: b.borrow().t.matmul(&self.t).py()?,
                },
            )?
            .into_any()),
            Err(_) => Ok(py.NotImplemented()),
        }
    }
    fn __neg__(&self) -> PyResult<PyTensor> {
        self.neg()
    }
    fn __pos__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __abs__(&self) -> PyResult<PyTensor> {
        self.abs()
    }
    fn __invert__(&self) -> PyResult<PyTensor> {
        if self.t.dtype() != DType::Bool {
            return Err(PyTypeError::new_err(format!(
                "~ is supported on bool tensors only, got {}",
                self.t.dtype()
            )));
        }
        self.logical_not()
    }
    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        match compare(&self.t, other, op)? {
            Some(t) => Ok(Py::new(py, PyTensor { t })?.into_any()),
            None => match op {
                CompareOp::Eq => Ok(false.into_pyobject(py)?.to_owned().into_any().unbind()),
                CompareOp::Ne => Ok(true.into_pyobject(py)?.to_owned().into_any().unbind()),
                _ => Ok(py.NotImplemented()),
            },
        }
    }

    // ---------------------------------------------------------------- in place

    /// `self += other * alpha`, in place.
    #[pyo3(signature = (other, alpha=None))]
    fn add_<'py>(
        slf: Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<f64>,
    ) -> PyResult<Bound<'py, Self>> {
        let r = {
            let s = slf.borrow();
            s.add(other, alpha)?.t
        };
        inplace(slf, r, "add_")
    }
    #[pyo3(signature = (other, alpha=None))]
    fn sub_<'py>(
        slf: Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<f64>,
    ) -> PyResult<Bound<'py, Self>> {
        let r = slf.borrow().sub(other, alpha)?.t;
        inplace(slf, r, "sub_")
    }
    fn mul_<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let r = method_binary(&slf.borrow().t, other, BinaryOp::Mul)?;
        inplace(slf, r, "mul_")
    }
    fn div_<'py>(slf: Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let r = method_binary(&slf.borrow().t, other, BinaryOp::Div)?;
        inplace(slf, r, "div_")
    }
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
    fn zero_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.zeros_like().py()?;
        inplace(slf, r, "zero_")
    }
    fn fill_<'py>(slf: Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let v: f64 = match value.cast::<PyTensor>() {
            Ok(t) => t.borrow().t.item().py()?,
            Err(_) => value.extract()?,
        };
        let r = slf.borrow().t.full_like(v).py()?;
        inplace(slf, r, "fill_")
    }
    fn copy_<'py>(slf: Bound<'py, Self>, src: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let r = to_tensor_like(src, Some(&slf.borrow().t))?;
        inplace(slf, r, "copy_")
    }
    #[pyo3(signature = (min=None, max=None))]
    fn clamp_<'py>(
        slf: Bound<'py, Self>,
        min: Option<&Bound<'py, PyAny>>,
        max: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let r = slf.borrow().clamp(min, max)?.t;
        inplace(slf, r, "clamp_")
    }
    fn masked_fill_<'py>(
        slf: Bound<'py, Self>,
        mask: &Bound<'py, PyAny>,
        value: f64,
    ) -> PyResult<Bound<'py, Self>> {
        let r = slf.borrow().t.masked_fill(&as_tensor(mask)?, value).py()?;
        inplace(slf, r, "masked_fill_")
    }
    /// Fills with U(from, to).
    #[pyo3(signature = (a=0.0, b=1.0))]
    fn uniform_(slf: Bound<'_, Self>, a: f64, b: f64) -> PyResult<Bound<'_, Self>> {
        let r = {
            let s = slf.borrow();
            Tensor::uniform(s.t.shape(), a, b, s.t.dtype()).py()?
        };
        inplace(slf, r, "uniform_")
    }
    /// Fills with N(mean, std²).
    #[pyo3(signature = (mean=0.0, std=1.0))]
    fn normal_(slf: Bound<'_, Self>, mean: f64, std: f64) -> PyResult<Bound<'_, Self>> {
        let r = {
            let s = slf.borrow();
            Tensor::normal(s.t.shape(), mean, std, s.t.dtype()).py()?
        };
        inplace(slf, r, "normal_")
    }
    fn relu_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.relu().py()?;
        inplace(slf, r, "relu_")
    }
    fn neg_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.neg().py()?;
        inplace(slf, r, "neg_")
    }
    fn exp_(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let r = slf.borrow().t.exp().py()?;
        inplace(slf, r, "exp_")
    }
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

    // ---------------------------------------------------------------- math

    #[pyo3(signature = (other, alpha=None))]
    fn add(&self, other: &Bound<'_, PyAny>, alpha: Option<f64>) -> PyResult<PyTensor> {
        let r = match alpha {
            Some(a) if a != 1.0 => {
                let o = to_tensor_like(other, Some(&self.t))?;
                self.t.add(&o.mul_scalar(a).py()?).py()?
            }
            _ => method_binary(&self.t, other, BinaryOp::Add)?,
        };
        Ok(PyTensor { t: r })
    }
    #[pyo3(signature = (other, alpha=None))]
    fn sub(&self, other: &Bound<'_, PyAny>, alpha: Option<f64>) -> PyResult<PyTensor> {
        let r = match alpha {
            Some(a) if a != 1.0 => {
                let o = to_tensor_like(other, Some(&self.t))?;
                self.t.sub(&o.mul_scalar(a).py()?).py()?
            }
            _ => method_binary(&self.t, other, BinaryOp::Sub)?,
        };
        Ok(PyTensor { t: r })
    }
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
    fn true_divide(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.div(other, None)
    }
    fn floor_divide(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: method_binary(&self.t, other, BinaryOp::FloorDiv)?,
        })
    }
    fn remainder(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: method_binary(&self.t, other, BinaryOp::Rem)?,
        })
    }
    fn pow(&self, exponent: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: method_binary(&self.t, exponent, BinaryOp::Pow)?,
        })
    }
    fn maximum(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let o = to_tensor_like(other, Some(&self.t))?;
        Ok(PyTensor {
            t: self.t.maximum(&o).py()?,
        })
    }
    fn minimum(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let o = to_tensor_like(other, Some(&self.t))?;
        Ok(PyTensor {
            t: self.t.minimum(&o).py()?,
        })
    }
    fn eq(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Eq)
    }
    fn ne(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Ne)
    }
    fn lt(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Lt)
    }
    fn le(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Le)
    }
    fn gt(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        self.cmp(other, CompareOp::Gt)
    }
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
    fn logical_and(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.logical_and(&other.t).py()?,
        })
    }
    fn logical_or(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.logical_or(&other.t).py()?,
        })
    }
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
    #[pyo3(signature = (beta=1.0, threshold=20.0))]
    fn softplus(&self, beta: f64, threshold: f64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.softplus(beta, threshold).py()?,
        })
    }
    /// Clamps into `[min, max]`; bounds may be numbers or tensors.
    #[pyo3(signature = (min=None, max=None))]
    fn clamp(
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
    #[pyo3(signature = (min=None, max=None))]
    fn clip(
        &self,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        self.clamp(min, max)
    }
    fn matmul(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.matmul(&other.t).py()?,
        })
    }
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
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amax(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: self.t.amax(&d, keepdim).py()?,
        })
    }
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
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn min(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Py<PyAny>> {
        self.minmax(py, dim, keepdim, false)
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmax(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.argmax(dim, keepdim).py()?,
        })
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmin(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.argmin(dim, keepdim).py()?,
        })
    }
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
    #[pyo3(signature = (dim=None))]
    fn count_nonzero(&self, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        let z = self.t.ne_scalar(0.0).py()?.to_dtype(DType::I64).py()?;
        let d = dims_arg(dim)?.unwrap_or_else(|| all_dims(&self.t));
        Ok(PyTensor {
            t: z.sum_dim(&d, false).py()?,
        })
    }
    #[pyo3(signature = (dim=-1, dtype=None))]
    fn softmax(&self, dim: isize, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.with_dtype(dtype)?.softmax(dim).py()?,
        })
    }
    #[pyo3(signature = (dim=-1, dtype=None))]
    fn log_softmax(&self, dim: isize, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.with_dtype(dtype)?.log_softmax(dim).py()?,
        })
    }

    // ---------------------------------------------------------------- movement

    #[pyo3(signature = (*shape))]
    fn view(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        if shape.len() == 1 {
            if let Ok(dt) = shape.get_item(0)?.cast::<PyDType>() {
                if dt.get().d != self.t.dtype() {
                    return Err(PyNotImplementedError::new_err(
                        "view(dtype) (reinterpreting bits) is not supported; use .to(dtype)",
                    ));
                }
                return Ok(PyTensor { t: self.t.clone() });
            }
        }
        Ok(PyTensor {
            t: self.t.view(&shape_args(shape)?).py()?,
        })
    }
    #[pyo3(signature = (*shape))]
    fn reshape(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.reshape_infer(&shape_args(shape)?).py()?,
        })
    }
    fn view_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        let s: Vec<isize> = other.t.shape().iter().map(|&d| d as isize).collect();
        Ok(PyTensor {
            t: self.t.view(&s).py()?,
        })
    }
    fn reshape_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.reshape(other.t.shape()).py()?,
        })
    }
    #[pyo3(signature = (*dims))]
    fn permute(&self, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.permute(&shape_args(dims)?).py()?,
        })
    }
    fn transpose(&self, dim0: isize, dim1: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.transpose(dim0, dim1).py()?,
        })
    }
    fn swapaxes(&self, dim0: isize, dim1: isize) -> PyResult<PyTensor> {
        self.transpose(dim0, dim1)
    }
    fn t(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.t().py()?,
        })
    }
    /// The tensor with its dims reversed.
    #[getter(T)]
    fn big_t(&self) -> PyResult<PyTensor> {
        let r = self.t.rank() as isize;
        let d: Vec<isize> = (0..r).rev().collect();
        Ok(PyTensor {
            t: self.t.permute(&d).py()?,
        })
    }
    /// The last two dims swapped.
    #[getter(mT)]
    fn m_t(&self) -> PyResult<PyTensor> {
        self.transpose(-2, -1)
    }
    fn unsqueeze(&self, dim: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.unsqueeze(dim).py()?,
        })
    }
    #[pyo3(signature = (dim=None))]
    fn squeeze(&self, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        let t = match dims_arg(dim)? {
            None => self.t.squeeze().py()?,
            Some(ds) => {
                let r = self.t.rank() as isize;
                let mut nd: Vec<isize> =
                    ds.iter().map(|&d| if d < 0 { d + r } else { d }).collect();
                nd.sort_unstable();
                let mut t = self.t.clone();
                for &d in nd.iter().rev() {
                    t = t.squeeze_dim(d).py()?;
                }
                t
            }
        };
        Ok(PyTensor { t })
    }
    #[pyo3(signature = (*sizes))]
    fn expand(&self, sizes: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.expand_infer(&shape_args(sizes)?).py()?,
        })
    }
    fn expand_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.expand_as(&other.t).py()?,
        })
    }
    #[pyo3(signature = (start_dim=0, end_dim=-1))]
    fn flatten(&self, start_dim: isize, end_dim: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.flatten(start_dim, end_dim).py()?,
        })
    }
    /// Splits dim `dim` into `sizes` (one may be -1).
    fn unflatten(&self, dim: isize, sizes: Vec<isize>) -> PyResult<PyTensor> {
        let r = self.t.rank() as isize;
        let d = if dim < 0 { dim + r } else { dim };
        if d < 0 || d >= r {
            return Err(PyIndexError::new_err(format!(
                "unflatten: dim {dim} out of range for a {r}-d tensor"
            )));
        }
        let mut shape: Vec<isize> = self.t.shape()[..d as usize]
            .iter()
            .map(|&s| s as isize)
            .collect();
        shape.extend_from_slice(&sizes);
        shape.extend(self.t.shape()[d as usize + 1..].iter().map(|&s| s as isize));
        Ok(PyTensor {
            t: self.t.reshape_infer(&shape).py()?,
        })
    }
    fn narrow(&self, dim: isize, start: usize, length: usize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.narrow(dim, start, length).py()?,
        })
    }
    fn select(&self, dim: isize, index: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.select(dim, index).py()?,
        })
    }
    #[pyo3(signature = (chunks, dim=0))]
    fn chunk(&self, chunks: usize, dim: isize) -> PyResult<Vec<PyTensor>> {
        wrap_all(self.t.chunk(chunks, dim).py()?)
    }
    /// `split(size, dim)` or `split([sizes], dim)`.
    #[pyo3(signature = (split_size_or_sections, dim=0))]
    fn split(
        &self,
        split_size_or_sections: &Bound<'_, PyAny>,
        dim: isize,
    ) -> PyResult<Vec<PyTensor>> {
        let parts = if let Ok(s) = split_size_or_sections.extract::<usize>() {
            self.t.split(s, dim).py()?
        } else {
            let sizes: Vec<usize> = split_size_or_sections.extract()?;
            self.t.split_sizes(&sizes, dim).py()?
        };
        wrap_all(parts)
    }
    #[pyo3(signature = (dim=0))]
    fn unbind(&self, dim: isize) -> PyResult<Vec<PyTensor>> {
        wrap_all(self.t.unbind(dim).py()?)
    }
    /// Reverses the order along each of `dims`.
    #[pyo3(signature = (*dims))]
    fn flip(&self, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let mut t = self.t.clone();
        for d in shape_args(dims)? {
            t = t.flip(d).py()?;
        }
        Ok(PyTensor { t })
    }
    #[pyo3(signature = (*sizes))]
    fn repeat(&self, sizes: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let s = usize_shape(&shape_args(sizes)?, "repeat")?;
        Ok(PyTensor {
            t: self.t.repeat(&s).py()?,
        })
    }
    #[pyo3(signature = (diagonal=0))]
    fn tril(&self, diagonal: i64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.tril(diagonal).py()?,
        })
    }
    #[pyo3(signature = (diagonal=0))]
    fn triu(&self, diagonal: i64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.triu(diagonal).py()?,
        })
    }

    // ---------------------------------------------------------------- index ops

    fn gather(&self, dim: isize, index: &PyTensor) -> PyResult<PyTensor> {
        if let Some(t) = empty_index_result(&self.t, &index.t, dim, "gather")? {
            return Ok(PyTensor { t });
        }
        Ok(PyTensor {
            t: self.t.gather(dim, &index.t).py()?,
        })
    }
    fn index_select(&self, dim: isize, index: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.index_select(dim, &index.t).py()?,
        })
    }
    #[pyo3(signature = (indices, dim=None))]
    fn take_along_dim(&self, indices: &PyTensor, dim: Option<isize>) -> PyResult<PyTensor> {
        if let Some(d) = dim {
            if let Some(t) = empty_index_result(&self.t, &indices.t, d, "take_along_dim")? {
                return Ok(PyTensor { t });
            }
        }
        let t = match dim {
            Some(d) => self.t.take_along_dim(&indices.t, d).py()?,
            None => self
                .t
                .reshape(&[self.t.numel()])
                .py()?
                .take_along_dim(&indices.t.reshape(&[indices.t.numel()]).py()?, 0)
                .py()?,
        };
        Ok(PyTensor { t })
    }
    fn masked_fill(&self, mask: &PyTensor, value: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let v: f64 = match value.cast::<PyTensor>() {
            Ok(t) => t.borrow().t.item().py()?,
            Err(_) => value.extract()?,
        };
        Ok(PyTensor {
            t: self.t.masked_fill(&mask.t, v).py()?,
        })
    }
    fn scatter_add(&self, dim: isize, index: &PyTensor, src: &PyTensor) -> PyResult<PyTensor> {
        if index.t.numel() == 0 && index.t.rank() == self.t.rank() {
            // Nothing to add (the core's kernel does not take empty indices).
            return Ok(PyTensor {
                t: self.t.mul_scalar(1.0).py()?,
            });
        }
        Ok(PyTensor {
            t: self.t.scatter_add(dim, &index.t, &src.t).py()?,
        })
    }
    fn index_add(&self, dim: isize, index: &PyTensor, source: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.index_add(dim, &index.t, &source.t).py()?,
        })
    }
    /// `where(condition, self, other)`.
    #[pyo3(name = "where")]
    fn where_(&self, condition: &PyTensor, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let o = to_tensor_like(other, Some(&self.t))?;
        Ok(PyTensor {
            t: Tensor::where_cond(&condition.t, &self.t, &o).py()?,
        })
    }

    // ---------------------------------------------------------------- factories

    #[pyo3(signature = (*size, dtype=None, requires_grad=false))]
    fn new_zeros(
        &self,
        size: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        self.new_full_impl(size, 0.0, dtype, requires_grad)
    }
    #[pyo3(signature = (*size, dtype=None, requires_grad=false))]
    fn new_ones(
        &self,
        size: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        self.new_full_impl(size, 1.0, dtype, requires_grad)
    }
    #[pyo3(signature = (size, fill_value, dtype=None, requires_grad=false))]
    fn new_full(
        &self,
        size: &Bound<'_, PyAny>,
        fill_value: f64,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        let t = PyTuple::new(size.py(), [size])?;
        self.new_full_impl(&t, fill_value, dtype, requires_grad)
    }
    #[pyo3(signature = (data, dtype=None, requires_grad=false))]
    fn new_tensor(
        &self,
        data: &Bound<'_, PyAny>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        let dt = dtype.map(dtype_arg).transpose()?;
        let t = tensor_from_data(data, Some(dt.unwrap_or(self.t.dtype())))?;
        if requires_grad {
            t.requires_grad_(true).py()?;
        }
        Ok(PyTensor { t })
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

// ------------------------------------------------------------------------------ creation functions

fn opts(
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

fn finish(t: Tensor, requires_grad: bool) -> PyResult<PyTensor> {
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
fn as_tensor_py(
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
fn tensor(
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
fn from_numpy(a: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
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
filled!(rand, Tensor::rand, "Uniform samples in [0, 1).");
filled!(randn, Tensor::randn, "Standard normal samples.");
filled!(
    empty,
    Tensor::zeros,
    "An uninitialised tensor (zero-filled here)."
);

/// `full(size, fill_value)`; the dtype follows the value like PyTorch's.
#[pyfunction]
#[pyo3(signature = (size, fill_value, dtype=None, device=None, requires_grad=false))]
fn full(
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
fn arange(
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

#[pyfunction]
#[pyo3(signature = (start, end, steps, dtype=None, device=None, requires_grad=false))]
fn linspace(
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

#[pyfunction]
#[pyo3(signature = (n, m=None, dtype=None, device=None, requires_grad=false))]
fn eye(
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
#[pyo3(signature = (*args, dtype=None, device=None, requires_grad=false))]
fn randint(
    args: &Bound<'_, PyTuple>,
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
    finish(Tensor::randint(lo, hi, &shape, dt).py()?, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (n, dtype=None, device=None))]
fn randperm(
    n: usize,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let dt = opts(dtype, device, DType::I64)?;
    let t = Tensor::randperm(n).py()?;
    Ok(PyTensor {
        t: if dt == t.dtype() {
            t
        } else {
            t.to_dtype(dt).py()?
        },
    })
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

#[pyfunction]
#[pyo3(signature = (input, fill_value, dtype=None, device=None, requires_grad=false))]
fn full_like(
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
fn cat(tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    let ts = tensor_list(tensors)?;
    Ok(PyTensor {
        t: Tensor::cat(&ts, dim).py()?,
    })
}

#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
fn stack(tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    let ts = tensor_list(tensors)?;
    Ok(PyTensor {
        t: Tensor::stack(&ts, dim).py()?,
    })
}

/// `where(condition, input, other)`; scalars are accepted for `input` and `other`.
#[pyfunction]
#[pyo3(name = "where")]
fn where_(
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
fn einsum(equation: &str, operands: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
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
fn is_tensor(o: &Bound<'_, PyAny>) -> bool {
    o.cast::<PyTensor>().is_ok()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
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

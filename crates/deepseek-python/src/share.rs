//! Memory shared with NumPy without copies: `Tensor.numpy()` returns an array over the
//! tensor's storage, and `deepseek.from_numpy` / `deepseek.as_tensor` return a tensor over
//! the array's memory (as PyTorch does). Writes through either side are seen by the other.
//!
//! Each side keeps the other's memory alive: the array's base object holds a clone of the
//! tensor, and the tensor's storage holds a reference to the array.

use crate::IntoPy;
use deepseek::tensor::Layout;
use deepseek::{DType, Tensor};
use numpy::ndarray::{ArrayViewD, IxDyn, ShapeBuilder};
use numpy::{Element as NpElement, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use std::ptr::NonNull;

/// The base object of an array returned by `Tensor.numpy()`: keeps the storage alive.
#[pyclass(frozen, module = "deepseek._C")]
struct TensorMemory {
    _tensor: Tensor,
}

fn view_of<'py, T: NpElement + deepseek::tensor::Element>(
    py: Python<'py>,
    t: &Tensor,
) -> PyResult<Bound<'py, PyAny>> {
    let strides: Vec<usize> = t.stride().to_vec();
    let ptr = t.data_ptr() as *const T;
    // SAFETY: `ptr` is the tensor's first element; every index the shape and strides reach lies
    // inside its storage (the tensor's layout invariant), and the storage stays in place while
    // `TensorMemory` (the array's base) holds a clone of the tensor.
    let view =
        unsafe { ArrayViewD::from_shape_ptr(IxDyn(t.shape()).strides(IxDyn(&strides)), ptr) };
    let base = Bound::new(
        py,
        TensorMemory {
            _tensor: t.detach(),
        },
    )?;
    // SAFETY: as above: the view's memory lives as long as `base`, which the array keeps.
    Ok(unsafe { PyArrayDyn::borrow_from_array(&view, base.into_any()) }.into_any())
}

/// A NumPy array over the tensor's memory (no copy).
pub fn numpy_view<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    match t.dtype() {
        DType::F32 => view_of::<f32>(py, t),
        DType::F64 => view_of::<f64>(py, t),
        DType::F16 => view_of::<half::f16>(py, t),
        DType::I64 => view_of::<i64>(py, t),
        DType::I32 => view_of::<i32>(py, t),
        DType::U8 => view_of::<u8>(py, t),
        DType::Bool => view_of::<bool>(py, t),
        DType::BF16 => Err(PyTypeError::new_err(
            "numpy(): numpy has no bfloat16; convert first with .float()",
        )),
    }
}

/// The array's reference, held by a tensor's storage.
struct ArrayRef(#[allow(dead_code)] Py<PyAny>);

fn share<T: NpElement + deepseek::tensor::Element>(
    o: &Bound<'_, PyAny>,
) -> PyResult<Option<Tensor>> {
    let Ok(a) = o.cast::<PyArrayDyn<T>>() else {
        return Ok(None);
    };
    let size = std::mem::size_of::<T>() as isize;
    let shape = a.shape().to_vec();
    let numel: usize = shape.iter().product();
    let writeable: bool = o.getattr("flags")?.getattr("writeable")?.extract()?;
    let byte_strides = a.strides().to_vec();
    if !writeable
        || !a.is_aligned()
        || numel == 0
        || byte_strides.iter().any(|&s| s < 0 || s % size != 0)
        || a.data().is_null()
    {
        return Ok(None);
    }
    let strides: Vec<usize> = byte_strides.iter().map(|&s| (s / size) as usize).collect();
    let len = 1 + shape
        .iter()
        .zip(&strides)
        .map(|(&n, &s)| (n - 1) * s)
        .sum::<usize>();
    let layout = Layout {
        shape,
        strides,
        offset: 0,
    };
    let ptr = NonNull::new(a.data()).expect("checked non-null");
    // SAFETY: numpy guarantees the (non-negative, element-multiple) strided view lies inside
    // the array's memory, which is aligned and writable (checked) and lives while we hold a
    // reference to the array.
    let t =
        unsafe { Tensor::from_foreign(ptr, len, layout, Box::new(ArrayRef(o.clone().unbind()))) }
            .py()?;
    Ok(Some(t))
}

/// A tensor over a NumPy array's memory when it can be shared (a writable, aligned array of
/// a dtype deepseek has, with non-negative strides); `None` when `o` is not such an array (the
/// caller then copies).
pub fn from_numpy_shared(o: &Bound<'_, PyAny>) -> PyResult<Option<Tensor>> {
    if !o.hasattr("__array_interface__")? {
        return Ok(None);
    }
    macro_rules! try_ty {
        ($($t:ty),*) => {
            $(if let Some(t) = share::<$t>(o)? {
                return Ok(Some(t));
            })*
        };
    }
    try_ty!(f32, f64, i64, i32, u8, bool, half::f16);
    Ok(None)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TensorMemory>()?;
    Ok(())
}

//! DLPack exchange on the CPU without copies: `Tensor.__dlpack__`, `Tensor.__dlpack_device__`
//! and `deepseek.from_dlpack`. An exported capsule points at the tensor's storage (kept alive
//! by a clone of the tensor until the consumer calls the deleter); an imported tensor uses the
//! producer's memory in place and calls its deleter when the last view is gone. Imports that
//! cannot be shared (negative strides, misaligned data, dtypes deepseek does not have such as
//! int16) are copied.

use crate::tensor::PyTensor;
use crate::IntoPy;
use deepseek::{DType, Tensor};
use pyo3::exceptions::{PyBufferError, PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{c_void, CStr};

#[repr(C)]
#[derive(Clone, Copy)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// DLPack 1.x: the versioned managed tensor (with flags: ours are writable, so consumers
/// such as NumPy give writable arrays over the memory).
#[repr(C)]
struct DLManagedTensorVersioned {
    version: [u32; 2],
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DLTensor,
}

const KDL_CPU: i32 = 1;
const NAME_V: &CStr = c"dltensor_versioned";
const NAME: &CStr = c"dltensor";
const USED: &CStr = c"used_dltensor";

/// What an exported DLManagedTensor points into: the tensor (its storage stays alive and in
/// place while this exists) and the shape and strides arrays.
struct Ctx {
    _tensor: Tensor,
    shape: Vec<i64>,
    strides: Vec<i64>,
}

unsafe extern "C" fn deleter(m: *mut DLManagedTensor) {
    if m.is_null() {
        return;
    }
    // SAFETY: `m` and its ctx were made by Box::into_raw in `export` and are freed once.
    let m = unsafe { Box::from_raw(m) };
    drop(unsafe { Box::from_raw(m.manager_ctx as *mut Ctx) });
}

unsafe extern "C" fn deleter_versioned(m: *mut DLManagedTensorVersioned) {
    if m.is_null() {
        return;
    }
    // SAFETY: as `deleter`, for the versioned struct made in `export`.
    let m = unsafe { Box::from_raw(m) };
    drop(unsafe { Box::from_raw(m.manager_ctx as *mut Ctx) });
}

unsafe extern "C" fn capsule_destructor_versioned(cap: *mut ffi::PyObject) {
    // Only a capsule nobody consumed still owns its tensor.
    unsafe {
        if ffi::PyCapsule_IsValid(cap, NAME_V.as_ptr()) == 1 {
            let m =
                ffi::PyCapsule_GetPointer(cap, NAME_V.as_ptr()) as *mut DLManagedTensorVersioned;
            if let Some(d) = (*m).deleter {
                d(m);
            }
        } else {
            ffi::PyErr_Clear();
        }
    }
}

unsafe extern "C" fn capsule_destructor(cap: *mut ffi::PyObject) {
    // Only a capsule nobody consumed still owns its tensor.
    unsafe {
        if ffi::PyCapsule_IsValid(cap, NAME.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(cap, NAME.as_ptr()) as *mut DLManagedTensor;
            if let Some(d) = (*m).deleter {
                d(m);
            }
        } else {
            ffi::PyErr_Clear();
        }
    }
}

fn dl_dtype(d: DType) -> DLDataType {
    let (code, bits) = match d {
        DType::Bool => (6, 8),
        DType::U8 => (1, 8),
        DType::I32 => (0, 32),
        DType::I64 => (0, 64),
        DType::F16 => (2, 16),
        DType::BF16 => (4, 16),
        DType::F32 => (2, 32),
        DType::F64 => (2, 64),
    };
    DLDataType {
        code,
        bits,
        lanes: 1,
    }
}

/// Exports `t` over its memory (no copy): a "dltensor_versioned" capsule (DLPack 1.0) when
/// the consumer accepts `versioned`, else a legacy "dltensor" capsule.
pub fn export(py: Python<'_>, t: &Tensor, versioned: bool) -> PyResult<Py<PyAny>> {
    let t = t.detach();
    let data = t.data_ptr() as *mut c_void;
    let ctx = Box::into_raw(Box::new(Ctx {
        shape: t.shape().iter().map(|&d| d as i64).collect(),
        strides: t.stride().iter().map(|&s| s as i64).collect(),
        _tensor: t.clone(),
    }));
    // SAFETY: ctx is a valid pointer we own until the deleter frees it; the shape and strides
    // vectors inside it do not move.
    let dl_tensor = unsafe {
        DLTensor {
            data,
            device: DLDevice {
                device_type: KDL_CPU,
                device_id: 0,
            },
            ndim: (*ctx).shape.len() as i32,
            dtype: dl_dtype(t.dtype()),
            shape: (*ctx).shape.as_mut_ptr(),
            strides: (*ctx).strides.as_mut_ptr(),
            byte_offset: 0,
        }
    };
    // SAFETY: each managed tensor is owned by its capsule until a consumer takes it; the
    // deleter frees it and the ctx exactly once.
    unsafe {
        let cap = if versioned {
            let m = Box::into_raw(Box::new(DLManagedTensorVersioned {
                version: [1, 0],
                manager_ctx: ctx as *mut c_void,
                deleter: Some(deleter_versioned),
                flags: 0,
                dl_tensor,
            }));
            let cap = ffi::PyCapsule_New(
                m as *mut c_void,
                NAME_V.as_ptr(),
                Some(capsule_destructor_versioned),
            );
            if cap.is_null() {
                deleter_versioned(m);
            }
            cap
        } else {
            let m = Box::into_raw(Box::new(DLManagedTensor {
                dl_tensor,
                manager_ctx: ctx as *mut c_void,
                deleter: Some(deleter),
            }));
            let cap = ffi::PyCapsule_New(m as *mut c_void, NAME.as_ptr(), Some(capsule_destructor));
            if cap.is_null() {
                deleter(m);
            }
            cap
        };
        if cap.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, cap).unbind())
    }
}

fn read_elems<T: Copy>(base: *const u8, shape: &[i64], strides: &[i64]) -> Vec<T> {
    let n: i64 = shape.iter().product();
    let mut out = Vec::with_capacity(n.max(0) as usize);
    let r = shape.len();
    let mut idx = vec![0i64; r];
    for _ in 0..n.max(0) {
        let off: i64 = idx.iter().zip(strides).map(|(i, s)| i * s).sum();
        // SAFETY: the producer guarantees the strided view lies inside its buffer.
        out.push(unsafe { std::ptr::read_unaligned((base as *const T).offset(off as isize)) });
        for d in (0..r).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Owns an imported DLManagedTensor: calling its deleter releases the producer's memory.
struct Imported(*mut DLManagedTensor);

// SAFETY: the DLPack contract lets the deleter be called from any thread; until then the
// memory is only reached through the tensor storage that owns this.
unsafe impl Send for Imported {}
unsafe impl Sync for Imported {}

impl Drop for Imported {
    fn drop(&mut self) {
        // SAFETY: `self.0` is the consumed capsule's tensor; its deleter runs exactly once.
        unsafe {
            if let Some(d) = (*self.0).deleter {
                d(self.0);
            }
        }
    }
}

fn share_as<T: deepseek::tensor::Element>(
    m: *mut DLManagedTensor,
    base: *const u8,
    shape: &[i64],
    strides: &[i64],
) -> PyResult<Option<Tensor>> {
    let numel: i64 = shape.iter().product();
    if numel <= 0
        || strides.iter().any(|&s| s < 0)
        || !(base as usize).is_multiple_of(std::mem::align_of::<T>())
    {
        return Ok(None);
    }
    let len = 1 + shape
        .iter()
        .zip(strides)
        .map(|(&n, &s)| ((n - 1) * s) as usize)
        .sum::<usize>();
    let layout = deepseek::tensor::Layout {
        shape: shape.iter().map(|&d| d as usize).collect(),
        strides: strides.iter().map(|&s| s as usize).collect(),
        offset: 0,
    };
    let ptr = std::ptr::NonNull::new(base as *mut T).expect("non-empty DLPack data");
    // SAFETY: the producer guarantees the strided view lies in live memory until its deleter
    // runs, which `Imported` (owned by the storage) does last.
    let t = unsafe { Tensor::from_foreign(ptr, len, layout, Box::new(Imported(m))) }.py()?;
    Ok(Some(t))
}

/// A tensor over the DLPack tensor's memory when deepseek has its dtype and can address it.
fn share(
    m: *mut DLManagedTensor,
    base: *const u8,
    shape: &[i64],
    strides: &[i64],
    dt: DLDataType,
) -> PyResult<Option<Tensor>> {
    match (dt.code, dt.bits) {
        (2, 32) => share_as::<f32>(m, base, shape, strides),
        (2, 64) => share_as::<f64>(m, base, shape, strides),
        (2, 16) => share_as::<half::f16>(m, base, shape, strides),
        (4, 16) => share_as::<half::bf16>(m, base, shape, strides),
        (0, 64) => share_as::<i64>(m, base, shape, strides),
        (0, 32) => share_as::<i32>(m, base, shape, strides),
        (1, 8) => share_as::<u8>(m, base, shape, strides),
        (6, 8) => share_as::<bool>(m, base, shape, strides),
        _ => Ok(None),
    }
}

/// A tensor from a "dltensor" capsule (which is consumed): over the producer's memory, or a
/// copy when that cannot be shared.
fn import(py: Python<'_>, cap: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let p = cap.as_ptr();
    // SAFETY: checked to be a capsule named "dltensor" before use.
    unsafe {
        if ffi::PyCapsule_IsValid(p, NAME.as_ptr()) != 1 {
            ffi::PyErr_Clear();
            return Err(PyTypeError::new_err(
                "from_dlpack: expected an object with __dlpack__ or an unconsumed 'dltensor' capsule",
            ));
        }
        let m = ffi::PyCapsule_GetPointer(p, NAME.as_ptr()) as *mut DLManagedTensor;
        if m.is_null() {
            return Err(PyErr::fetch(py));
        }
        let dl = &(*m).dl_tensor;
        if dl.device.device_type != KDL_CPU {
            return Err(PyRuntimeError::new_err(format!(
                "from_dlpack: only CPU tensors can be imported (device type {})",
                dl.device.device_type
            )));
        }
        if dl.dtype.lanes != 1 {
            return Err(PyBufferError::new_err(
                "from_dlpack: vector dtypes are not supported",
            ));
        }
        let r = dl.ndim.max(0) as usize;
        let shape: Vec<i64> = if r == 0 {
            vec![]
        } else {
            std::slice::from_raw_parts(dl.shape, r).to_vec()
        };
        let strides: Vec<i64> = if dl.strides.is_null() || r == 0 {
            let mut s = vec![1i64; r];
            for i in (0..r.saturating_sub(1)).rev() {
                s[i] = s[i + 1] * shape[i + 1].max(1);
            }
            s
        } else {
            std::slice::from_raw_parts(dl.strides, r).to_vec()
        };
        let base = (dl.data as *const u8).add(dl.byte_offset as usize);
        if let Some(t) = share(m, base, &shape, &strides, dl.dtype)? {
            // Consumed: the tensor's storage now owns the producer's memory and calls its
            // deleter when the last view is dropped.
            ffi::PyCapsule_SetName(p, USED.as_ptr());
            return Ok(t);
        }
        let us: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let t = match (dl.dtype.code, dl.dtype.bits) {
            (2, 32) => Tensor::from_vec(read_elems::<f32>(base, &shape, &strides), &us),
            (2, 64) => Tensor::from_vec(read_elems::<f64>(base, &shape, &strides), &us),
            (2, 16) => Tensor::from_vec(read_elems::<half::f16>(base, &shape, &strides), &us),
            (4, 16) => Tensor::from_vec(read_elems::<half::bf16>(base, &shape, &strides), &us),
            (0, 64) => Tensor::from_vec(read_elems::<i64>(base, &shape, &strides), &us),
            (0, 32) => Tensor::from_vec(read_elems::<i32>(base, &shape, &strides), &us),
            (0, 16) => Tensor::from_vec(
                read_elems::<i16>(base, &shape, &strides)
                    .into_iter()
                    .map(|v| v as i32)
                    .collect::<Vec<i32>>(),
                &us,
            ),
            (0, 8) => Tensor::from_vec(
                read_elems::<i8>(base, &shape, &strides)
                    .into_iter()
                    .map(|v| v as i32)
                    .collect::<Vec<i32>>(),
                &us,
            ),
            (1, 8) => Tensor::from_vec(read_elems::<u8>(base, &shape, &strides), &us),
            (6, 8) => Tensor::from_vec(
                read_elems::<u8>(base, &shape, &strides)
                    .into_iter()
                    .map(|v| v != 0)
                    .collect::<Vec<bool>>(),
                &us,
            ),
            (c, b) => {
                return Err(PyTypeError::new_err(format!(
                    "from_dlpack: unsupported DLPack dtype (code {c}, bits {b})"
                )))
            }
        }
        .py()?;
        // Consumed: rename, then release the producer's memory.
        ffi::PyCapsule_SetName(p, USED.as_ptr());
        if let Some(d) = (*m).deleter {
            d(m);
        }
        Ok(t)
    }
}

/// `deepseek.from_dlpack(obj)`: a tensor from any object with `__dlpack__` (CPU) or a
/// DLPack capsule, sharing its memory where possible.
#[pyfunction]
fn from_dlpack(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    if obj.hasattr("__dlpack_device__")? {
        let dev: (i32, i32) = obj.call_method0("__dlpack_device__")?.extract()?;
        if dev.0 != KDL_CPU {
            return Err(PyRuntimeError::new_err(format!(
                "from_dlpack: only CPU tensors can be imported (device type {})",
                dev.0
            )));
        }
    }
    let cap = if obj.hasattr("__dlpack__")? {
        obj.call_method0("__dlpack__")?
    } else {
        obj.clone()
    };
    Ok(PyTensor {
        t: import(py, &cap)?,
    })
}

#[pymethods]
impl PyTensor {
    /// Exports this tensor as a DLPack capsule over its memory (CPU, no copy).
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<&Bound<'_, PyAny>>,
        max_version: Option<&Bound<'_, PyAny>>,
        dl_device: Option<&Bound<'_, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let _ = (stream, dl_device);
        if self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "can't export a tensor that requires grad through DLPack; use tensor.detach()",
            ));
        }
        let versioned = match max_version.filter(|v| !v.is_none()) {
            Some(v) => v.extract::<(u32, u32)>()?.0 >= 1,
            None => false,
        };
        let t = if copy == Some(true) {
            self.t.contiguous_copy().py()?
        } else {
            self.t.clone()
        };
        export(py, &t, versioned)
    }
    /// `(device_type, device_id)`: (1, 0), the CPU.
    fn __dlpack_device__(&self) -> (i32, i32) {
        (KDL_CPU, 0)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(from_dlpack, m)?)?;
    Ok(())
}

//! DLPack exchange on the CPU: `Tensor.__dlpack__`, `Tensor.__dlpack_device__` and
//! `deepseek.from_dlpack`. Both directions copy the data once (deepseek's storage sits
//! behind a lock and cannot be lent out safely), so the result never aliases the source.

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

const KDL_CPU: i32 = 1;
const NAME: &CStr = c"dltensor";
const USED: &CStr = c"used_dltensor";

/// The owned buffers behind an exported DLManagedTensor.
struct Ctx {
    _bytes: Vec<u64>,
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

fn raw_bytes(t: &Tensor) -> PyResult<Vec<u8>> {
    macro_rules! b {
        ($ty:ty, $f:expr) => {
            t.to_vec::<$ty>().py()?.into_iter().flat_map($f).collect()
        };
    }
    Ok(match t.dtype() {
        DType::F32 => b!(f32, |x: f32| x.to_le_bytes()),
        DType::F64 => b!(f64, |x: f64| x.to_le_bytes()),
        DType::F16 => b!(half::f16, |x: half::f16| x.to_le_bytes()),
        DType::BF16 => b!(half::bf16, |x: half::bf16| x.to_le_bytes()),
        DType::I64 => b!(i64, |x: i64| x.to_le_bytes()),
        DType::I32 => b!(i32, |x: i32| x.to_le_bytes()),
        DType::U8 => t.to_vec::<u8>().py()?,
        DType::Bool => t
            .to_vec::<bool>()
            .py()?
            .into_iter()
            .map(|b| b as u8)
            .collect(),
    })
}

/// Exports a copy of `t` as a "dltensor" capsule.
pub fn export(py: Python<'_>, t: &Tensor) -> PyResult<Py<PyAny>> {
    let bytes = raw_bytes(t)?;
    // u64 words keep the buffer 8-byte aligned for every dtype.
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    // SAFETY: words has at least bytes.len() bytes; u8 has no alignment needs.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr() as *mut u8, bytes.len());
    }
    let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    let mut strides = vec![1i64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1].max(1);
    }
    let mut ctx = Box::new(Ctx {
        _bytes: words,
        shape,
        strides,
    });
    let m = Box::new(DLManagedTensor {
        dl_tensor: DLTensor {
            data: ctx._bytes.as_mut_ptr() as *mut c_void,
            device: DLDevice {
                device_type: KDL_CPU,
                device_id: 0,
            },
            ndim: ctx.shape.len() as i32,
            dtype: dl_dtype(t.dtype()),
            shape: ctx.shape.as_mut_ptr(),
            strides: ctx.strides.as_mut_ptr(),
            byte_offset: 0,
        },
        manager_ctx: std::ptr::null_mut(),
        deleter: Some(deleter),
    });
    let m = Box::into_raw(m);
    // SAFETY: m is a valid pointer we own; the ctx is freed by `deleter`.
    unsafe {
        (*m).manager_ctx = Box::into_raw(ctx) as *mut c_void;
        let cap = ffi::PyCapsule_New(m as *mut c_void, NAME.as_ptr(), Some(capsule_destructor));
        if cap.is_null() {
            deleter(m);
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

/// A tensor with a copy of the data of a "dltensor" capsule (which is consumed).
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
/// DLPack capsule. The data are copied.
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
    /// Exports a copy of this tensor as a DLPack capsule (CPU).
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<&Bound<'_, PyAny>>,
        max_version: Option<&Bound<'_, PyAny>>,
        dl_device: Option<&Bound<'_, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let _ = (stream, max_version, dl_device, copy);
        if self.t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "can't export a tensor that requires grad through DLPack; use tensor.detach()",
            ));
        }
        export(py, &self.t)
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

//! Typed element buffers. A [`Storage`] is shared by a tensor and all of its views.

use super::buffer::Buffer;
use super::DType;
use half::{bf16, f16};

/// A buffer in host memory, one variant per dtype (owned, or lent by another library: see
/// [`Buffer`]).
#[derive(Debug, Clone)]
pub enum CpuStorage {
    Bool(Buffer<bool>),
    U8(Buffer<u8>),
    I32(Buffer<i32>),
    I64(Buffer<i64>),
    F16(Buffer<f16>),
    BF16(Buffer<bf16>),
    F32(Buffer<f32>),
    F64(Buffer<f64>),
}

/// A tensor's data on some device. Every primitive matches on this in one place.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
}

/// A Rust element type that a tensor can hold.
pub trait Element: Copy + Send + Sync + 'static + PartialOrd + Default + std::fmt::Debug {
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn to_f32(self) -> f32 {
        self.to_f64() as f32
    }
    fn from_f32(v: f32) -> Self {
        Self::from_f64(v as f64)
    }
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        Self::into_buffer_storage(v.into())
    }
    fn into_buffer_storage(v: Buffer<Self>) -> CpuStorage;
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
}

macro_rules! element {
    ($t:ty, $v:ident, $dt:ident, |$x:ident| $to:expr, |$y:ident| $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dt;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                let $x = self;
                $to
            }
            #[inline(always)]
            fn from_f64($y: f64) -> Self {
                $from
            }
            fn into_buffer_storage(v: Buffer<Self>) -> CpuStorage {
                CpuStorage::$v(v)
            }
            fn slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$v(v) => Some(&v[..]),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$v(v) => Some(&mut v[..]),
                    _ => None,
                }
            }
        }
    };
}
element!(bool, Bool, Bool, |x| x as u8 as f64, |y| y != 0.0);
element!(u8, U8, U8, |x| x as f64, |y| y as u8);
element!(i32, I32, I32, |x| x as f64, |y| y as i32);
element!(i64, I64, I64, |x| x as f64, |y| y as i64);
element!(f16, F16, F16, |x| x.to_f64(), |y| f16::from_f64(y));
element!(bf16, BF16, BF16, |x| x.to_f64(), |y| bf16::from_f64(y));
element!(f32, F32, F32, |x| x as f64, |y| y as f32);
element!(f64, F64, F64, |x| x, |y| y);

/// Runs `$body` with `$v` bound to the typed vector of `$s` and `$T` to its element type.
#[macro_export]
#[doc(hidden)]
macro_rules! with_storage {
    ($s:expr, |$v:ident: $T:ident| $body:expr) => {
        match $s {
            $crate::tensor::CpuStorage::Bool($v) => {
                #[allow(dead_code)]
                type $T = bool;
                $body
            }
            $crate::tensor::CpuStorage::U8($v) => {
                #[allow(dead_code)]
                type $T = u8;
                $body
            }
            $crate::tensor::CpuStorage::I32($v) => {
                #[allow(dead_code)]
                type $T = i32;
                $body
            }
            $crate::tensor::CpuStorage::I64($v) => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            $crate::tensor::CpuStorage::F16($v) => {
                #[allow(dead_code)]
                type $T = half::f16;
                $body
            }
            $crate::tensor::CpuStorage::BF16($v) => {
                #[allow(dead_code)]
                type $T = half::bf16;
                $body
            }
            $crate::tensor::CpuStorage::F32($v) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::tensor::CpuStorage::F64($v) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
        }
    };
}

/// Creates an empty typed vector for a dtype and runs `$body` with `$T` bound to its type.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dt:expr, |$T:ident| $body:expr) => {
        match $dt {
            $crate::DType::Bool => {
                #[allow(dead_code)]
                type $T = bool;
                $body
            }
            $crate::DType::U8 => {
                #[allow(dead_code)]
                type $T = u8;
                $body
            }
            $crate::DType::I32 => {
                #[allow(dead_code)]
                type $T = i32;
                $body
            }
            $crate::DType::I64 => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            $crate::DType::F16 => {
                #[allow(dead_code)]
                type $T = half::f16;
                $body
            }
            $crate::DType::BF16 => {
                #[allow(dead_code)]
                type $T = half::bf16;
                $body
            }
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
        }
    };
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        crate::with_storage!(self, |_v: T| T::DTYPE)
    }
    pub fn len(&self) -> usize {
        crate::with_storage!(self, |v: T| v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A buffer with no elements.
    pub fn empty(dtype: DType) -> CpuStorage {
        crate::with_dtype!(dtype, |T| T::into_storage(Vec::new()))
    }
    /// A zero-filled buffer of `n` elements; `Error::OutOfMemory` naming `op` when the
    /// memory cannot be had (see [`crate::memory::try_alloc`]).
    pub fn try_zeros(op: &str, dtype: DType, n: usize) -> crate::Result<CpuStorage> {
        Ok(crate::with_dtype!(dtype, |T| T::into_storage(
            crate::memory::try_full(op, n, T::default())?
        )))
    }
    /// A buffer with every element `v` (converted to the dtype); fallible like
    /// [`CpuStorage::try_zeros`].
    pub fn try_full(op: &str, dtype: DType, n: usize, v: f64) -> crate::Result<CpuStorage> {
        Ok(crate::with_dtype!(dtype, |T| T::into_storage(
            crate::memory::try_full(op, n, T::from_f64(v))?
        )))
    }
    /// True when the memory is lent by another library (see [`Buffer`]).
    pub fn is_foreign(&self) -> bool {
        crate::with_storage!(self, |v: T| v.is_foreign())
    }
    /// Size in bytes.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(c) => c.dtype(),
        }
    }
    pub fn nbytes(&self) -> usize {
        match self {
            Storage::Cpu(c) => c.nbytes(),
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(c) => c.len(),
        }
    }
    /// True when it holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Storage {
    /// Large buffers go to the CPU buffer cache for reuse (see `backend::cpu::cache`).
    fn drop(&mut self) {
        use std::mem::take;
        if !matches!(self, Storage::Cpu(c) if c.is_foreign()) {
            crate::memory::on_free(self.nbytes());
        }
        match self {
            Storage::Cpu(c) => match c {
                CpuStorage::Bool(v) => take(v).recycle(),
                CpuStorage::U8(v) => take(v).recycle(),
                CpuStorage::I32(v) => take(v).recycle(),
                CpuStorage::I64(v) => take(v).recycle(),
                CpuStorage::F16(v) => take(v).recycle(),
                CpuStorage::BF16(v) => take(v).recycle(),
                CpuStorage::F32(v) => take(v).recycle(),
                CpuStorage::F64(v) => take(v).recycle(),
            },
        }
    }
}

//! The element memory behind a CPU storage: a `Vec` deepseek owns, or memory lent by another
//! library (a NumPy array, a DLPack tensor from PyTorch) that deepseek uses in place.

use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Typed element memory. Dereferences to a slice, so kernels see `&[T]` / `&mut [T]` either way.
pub struct Buffer<T>(Repr<T>);

enum Repr<T> {
    Owned(Vec<T>),
    Foreign {
        ptr: NonNull<T>,
        len: usize,
        /// Keeps the lender's memory alive; dropped (releasing it) with the buffer.
        _owner: Box<dyn Any + Send + Sync>,
    },
}

// SAFETY: a foreign buffer is plain memory that `owner` keeps alive; access to it goes through
// the storage's lock exactly like an owned vector's.
unsafe impl<T: Send> Send for Repr<T> {}
unsafe impl<T: Sync> Sync for Repr<T> {}

impl<T> Buffer<T> {
    /// Memory lent by another library: `len` initialised, writable elements of `T` at `ptr`
    /// (aligned for `T`), valid for as long as `owner` lives.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised elements of `T`, properly aligned, readable and
    /// writable, not freed or moved before `owner` is dropped.
    pub unsafe fn foreign(ptr: NonNull<T>, len: usize, owner: Box<dyn Any + Send + Sync>) -> Self {
        Buffer(Repr::Foreign {
            ptr,
            len,
            _owner: owner,
        })
    }

    /// True when the memory belongs to another library.
    pub fn is_foreign(&self) -> bool {
        matches!(self.0, Repr::Foreign { .. })
    }

    /// The vector, copied out when the memory is foreign.
    pub fn into_vec(self) -> Vec<T>
    where
        T: Clone,
    {
        match self.0 {
            Repr::Owned(v) => v,
            Repr::Foreign { .. } => self.to_vec(),
        }
    }

    /// Gives an owned vector's memory to the CPU buffer cache (a foreign buffer is released to
    /// its owner instead).
    pub(crate) fn recycle(self) {
        if let Repr::Owned(v) = self.0 {
            crate::backend::cpu::cache::put(v);
        }
    }
}

impl<T> Default for Buffer<T> {
    fn default() -> Self {
        Buffer(Repr::Owned(Vec::new()))
    }
}

impl<T> From<Vec<T>> for Buffer<T> {
    fn from(v: Vec<T>) -> Self {
        Buffer(Repr::Owned(v))
    }
}

impl<T> FromIterator<T> for Buffer<T> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
        Buffer(Repr::Owned(it.into_iter().collect()))
    }
}

impl<T> Deref for Buffer<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match &self.0 {
            Repr::Owned(v) => v,
            // SAFETY: see `foreign`'s contract.
            Repr::Foreign { ptr, len, .. } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
        }
    }
}

impl<T> DerefMut for Buffer<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.0 {
            Repr::Owned(v) => v,
            // SAFETY: see `foreign`'s contract; `&mut self` makes this the only access.
            Repr::Foreign { ptr, len, .. } => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr(), *len)
            },
        }
    }
}

/// Cloning copies the elements into an owned vector.
impl<T: Clone> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Buffer(Repr::Owned(self.to_vec()))
    }
}

impl<T: fmt::Debug> fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_foreign() {
            write!(f, "foreign ")?;
        }
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_memory_is_used_in_place_and_released_with_the_buffer() {
        struct Owner(
            std::sync::Arc<std::sync::atomic::AtomicBool>,
            #[allow(dead_code)] Vec<f32>,
        );
        impl Drop for Owner {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut mem = vec![1.0f32, 2.0, 3.0];
        let ptr = NonNull::new(mem.as_mut_ptr()).unwrap();
        let owner = Owner(dropped.clone(), mem);
        // SAFETY: the vector's heap memory does not move when the vector moves into `owner`.
        let mut b = unsafe { Buffer::foreign(ptr, 3, Box::new(owner)) };
        assert!(b.is_foreign());
        b[1] = 5.0;
        assert_eq!(&b[..], &[1.0, 5.0, 3.0]);
        let c = b.clone();
        assert!(!c.is_foreign());
        drop(b);
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(c.into_vec(), vec![1.0, 5.0, 3.0]);
    }
}

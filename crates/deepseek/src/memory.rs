//! CPU memory statistics: bytes held by live tensor storages, like PyTorch's
//! `torch.cuda.memory_allocated` family, plus the CPU buffer cache's controls.
//!
//! ```
//! use deepseek::{memory, DType, Tensor};
//! let before = memory::memory_allocated();
//! let t = Tensor::zeros(&[1024, 256], DType::F32)?;
//! assert!(memory::memory_allocated() >= before + 1024 * 256 * 4);
//! drop(t);
//! # Ok::<(), deepseek::Error>(())
//! ```

use std::sync::atomic::{AtomicI64, Ordering};

static ALLOCATED: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

pub(crate) fn on_alloc(bytes: usize) {
    let now = ALLOCATED.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

pub(crate) fn on_free(bytes: usize) {
    ALLOCATED.fetch_sub(bytes as i64, Ordering::Relaxed);
}

/// Bytes held by the storages of all live CPU tensors (views share their storage's bytes).
/// Process-wide: tensors of other threads count too.
pub fn memory_allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed).max(0) as usize
}

/// The highest [`memory_allocated`] since the start or the last [`reset_peak_memory_stats`].
pub fn max_memory_allocated() -> usize {
    PEAK.load(Ordering::Relaxed).max(0) as usize
}

/// Starts peak tracking afresh from the current allocation.
pub fn reset_peak_memory_stats() {
    PEAK.store(ALLOCATED.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Bytes of freed buffers kept by the CPU buffer cache for reuse.
pub fn cached_bytes() -> usize {
    crate::backend::cpu::cache::cached_bytes()
}

/// Returns every cached buffer to the system allocator; returns the bytes released.
pub fn empty_cache() -> usize {
    crate::backend::cpu::cache::empty_cache()
}

/// The number of elements of `shape`, or an error naming `op` when the product does not fit
/// in `usize` (a shape such as `[2**40, 2**40]`).
pub fn checked_numel(op: &str, shape: &[usize]) -> crate::Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            crate::Error::Msg(format!(
                "{op}: shape {shape:?}: storage size calculation overflowed (more elements than this machine can address)"
            ))
        })
}

/// The one fallible CPU allocation of deepseek: an empty vector with room for exactly `n`
/// elements of `T`, taken from the buffer cache when it holds one of that size, otherwise
/// asked of the system allocator with `try_reserve_exact`. A request the allocator refuses,
/// or whose byte size overflows, is [`Error::OutOfMemory`](crate::Error::OutOfMemory)
/// naming `op` and the bytes; the process never aborts.
pub fn try_alloc<T>(op: &str, n: usize) -> crate::Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    let oom = || crate::Error::out_of_memory(op, n as u128 * size as u128);
    let bytes = n.checked_mul(size).ok_or_else(oom)?;
    if bytes > isize::MAX as usize {
        return Err(oom());
    }
    if let Some(v) = crate::backend::cpu::cache::take::<T>(n) {
        return Ok(v);
    }
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        // The cache may hold memory the allocator could have used: free it and try again.
        if empty_cache() == 0 || v.try_reserve_exact(n).is_err() {
            return Err(oom());
        }
    }
    crate::backend::cpu::strided::advise_huge(&mut v);
    Ok(v)
}

/// `n` copies of `value`, allocated through [`try_alloc`].
/// Large fills are split over the kernel threads (a fresh buffer's pages are touched, and
/// zeroed by the kernel, by the thread that fills them).
pub fn try_full<T: Clone + Send + Sync>(op: &str, n: usize, value: T) -> crate::Result<Vec<T>> {
    let mut v = try_alloc(op, n)?;
    let threads = crate::backend::cpu::threads::get_num_threads();
    if n * std::mem::size_of::<T>() < (4 << 20) || threads <= 1 {
        v.resize(n, value);
        return Ok(v);
    }
    let per = n.div_ceil(threads);
    crate::backend::cpu::threads::par_chunks(&mut v.spare_capacity_mut()[..n], per, |_, c| {
        for s in c {
            s.write(value.clone());
        }
    });
    // SAFETY: the chunks cover all `n` slots and each was written above.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// The elements of an exact-size iterator collected through [`try_alloc`].
pub fn try_collect<T>(op: &str, it: impl ExactSizeIterator<Item = T>) -> crate::Result<Vec<T>> {
    let mut v = try_alloc(op, it.len())?;
    v.extend(it);
    Ok(v)
}

/// The unwinding payload that carries an allocation failure out of a kernel whose signature
/// cannot return an error (see [`alloc_or_unwind`]). It is caught, and turned back into the
/// error, by [`catch_oom`] at the backend's dispatch boundary; `resume_unwind` does not run
/// the panic hook, so nothing is printed on the way.
pub(crate) struct OomUnwind(pub(crate) crate::Error);

/// [`try_alloc`] for kernels that return plain vectors: on failure, unwinds with
/// [`OomUnwind`] to the nearest [`catch_oom`] (every backend entry point has one).
pub(crate) fn alloc_or_unwind<T>(op: &str, n: usize) -> Vec<T> {
    match try_alloc(op, n) {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(Box::new(OomUnwind(e))),
    }
}

/// Runs a kernel call, turning an allocation failure inside it (an [`OomUnwind`], also from a
/// rayon worker, which re-raises it in the caller) into `Err(Error::OutOfMemory)` naming `op`.
/// Any other unwinding passes through unchanged.
pub(crate) fn catch_oom<R>(op: &str, f: impl FnOnce() -> crate::Result<R>) -> crate::Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => match payload.downcast::<OomUnwind>() {
            Ok(oom) => Err(match oom.0 {
                crate::Error::OutOfMemory { bytes, .. } => crate::Error::out_of_memory(op, bytes),
                e => e,
            }),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

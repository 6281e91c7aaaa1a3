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

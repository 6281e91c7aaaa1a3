//! A cache of large freed CPU buffers, reused by later allocations of the same size.
//!
//! A training step allocates the same big activations and gradients every time. Returning
//! them to the system allocator means fresh pages next step: a page fault per page and the
//! kernel zeroing it, which costs more than many kernels themselves. Storages of at least
//! [`MIN_BYTES`] hand their buffer here when dropped, and [`take`] gives it back to an
//! allocation of exactly the same byte size and alignment. The cache holds at most
//! `DEEPSEEK_CPU_CACHE_MB` MiB (default 2048); [`empty_cache`] frees everything in it.

use std::collections::HashMap;
use std::sync::Mutex;

/// Buffers below this size go straight back to the allocator (its own free lists serve them).
pub const MIN_BYTES: usize = 1 << 20;

struct Cache {
    /// (bytes, align) -> pointers of free allocations of exactly that layout.
    free: HashMap<(usize, usize), Vec<usize>>,
    held: usize,
    limit: Option<usize>,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    let mut g = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let c = g.get_or_insert_with(|| Cache {
        free: HashMap::new(),
        held: 0,
        limit: None,
    });
    f(c)
}

fn limit(c: &mut Cache) -> usize {
    *c.limit.get_or_insert_with(|| {
        std::env::var("DEEPSEEK_CPU_CACHE_MB")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(2048)
            << 20
    })
}

/// An empty vector with capacity exactly `n`, from the cache when it holds a buffer of that
/// size; `None` otherwise (the caller allocates).
pub fn take<T>(n: usize) -> Option<Vec<T>> {
    let size = std::mem::size_of::<T>();
    let bytes = n.checked_mul(size)?;
    if bytes < MIN_BYTES || size == 0 {
        return None;
    }
    let key = (bytes, std::mem::align_of::<T>());
    let p = with(|c| {
        let p = c.free.get_mut(&key)?.pop()?;
        c.held -= bytes;
        Some(p)
    })?;
    // SAFETY: `p` came from a `Vec` whose allocation had exactly `bytes` bytes with this
    // alignment (the key), so it is a valid allocation for `n` elements of `T`; length 0.
    Some(unsafe { Vec::from_raw_parts(p as *mut T, 0, n) })
}

/// Hands a vector's buffer to the cache (or frees it when small or the cache is full).
pub fn put<T>(mut v: Vec<T>) {
    v.clear();
    let size = std::mem::size_of::<T>();
    let bytes = v.capacity() * size;
    if bytes < MIN_BYTES || size == 0 {
        return;
    }
    let key = (bytes, std::mem::align_of::<T>());
    let mut v = std::mem::ManuallyDrop::new(v);
    let p = v.as_mut_ptr() as usize;
    let kept = with(|c| {
        if c.held + bytes > limit(c) {
            return false;
        }
        c.held += bytes;
        c.free.entry(key).or_default().push(p);
        true
    });
    if !kept {
        // SAFETY: rebuilds the vector just taken apart (length 0), to free it normally.
        drop(unsafe { Vec::from_raw_parts(p as *mut T, 0, bytes / size) });
    }
}

/// Frees every cached buffer. Returns the number of bytes released.
pub fn empty_cache() -> usize {
    let drained: Vec<((usize, usize), Vec<usize>)> = with(|c| {
        c.held = 0;
        c.free.drain().collect()
    });
    let mut total = 0;
    for ((bytes, align), ptrs) in drained {
        let layout = std::alloc::Layout::from_size_align(bytes, align).expect("cached layout");
        for p in ptrs {
            // SAFETY: each pointer is a live allocation of exactly `layout` from the global
            // allocator (it came from a Vec with that byte size and alignment).
            unsafe { std::alloc::dealloc(p as *mut u8, layout) };
            total += bytes;
        }
    }
    total
}

/// Bytes currently held by the cache.
pub fn cached_bytes() -> usize {
    with(|c| c.held)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reuses_same_size_and_alignment_only() {
        let n = (MIN_BYTES / 4) * 3;
        let mut v: Vec<f32> = Vec::with_capacity(n);
        v.resize(n, 1.5);
        let p = v.as_ptr() as usize;
        put(v);
        // Another thread's test may grab it first; only check what we get is sound.
        if let Some(w) = take::<f32>(n) {
            assert_eq!(w.capacity(), n);
            assert_eq!(w.len(), 0);
            let _ = p;
        }
        assert!(take::<f64>(n / 2).is_none_or(|w| w.capacity() == n / 2));
        assert!(take::<f32>(16).is_none());
        put(vec![0u8; 10]);
        empty_cache();
    }
}

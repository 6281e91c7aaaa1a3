//! A team of pool threads that run one closure together and meet at barriers: for
//! sequential loops (the LSTM's timesteps) whose every step is too small for a fork-join.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A barrier for a fixed number of threads that spins briefly, then yields.
pub struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn new(n: usize) -> Self {
        SpinBarrier {
            n,
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Blocks until all `n` threads have called `wait` for this generation.
    pub fn wait(&self) {
        if self.n <= 1 {
            return;
        }
        let g = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == g {
            if spins < 20_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Runs `f(thread, threads, barrier)` on `want` threads of the kernel pool at once (fewer
/// when the pool is smaller, one — the caller — when already inside the pool).
pub fn run(want: usize, f: impl Fn(usize, usize, &SpinBarrier) + Sync) {
    let pool = super::threads::pool();
    let n = want.min(pool.current_num_threads()).max(1);
    if n == 1 || rayon::current_thread_index().is_some() {
        f(0, 1, &SpinBarrier::new(1));
        return;
    }
    let barrier = SpinBarrier::new(n);
    pool.broadcast(|ctx| {
        if ctx.index() < n {
            f(ctx.index(), n, &barrier);
        }
    });
}

/// A raw view of a buffer that team threads write in disjoint parts.
#[derive(Clone, Copy)]
pub struct Shared<T>(*mut T, usize);

// SAFETY: users only touch disjoint ranges from different threads between barriers.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    pub fn new(v: &mut [T]) -> Self {
        Shared(v.as_mut_ptr(), v.len())
    }
    pub fn ptr(&self) -> *mut T {
        self.0
    }
    /// # Safety
    /// No other thread may write `range` while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut(&self, range: std::ops::Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(range.start), range.end - range.start)
    }
    /// # Safety
    /// No other thread may write `range` while the returned slice lives.
    pub unsafe fn slice(&self, range: std::ops::Range<usize>) -> &[T] {
        assert!(range.start <= range.end && range.end <= self.1);
        std::slice::from_raw_parts(self.0.add(range.start), range.end - range.start)
    }
}

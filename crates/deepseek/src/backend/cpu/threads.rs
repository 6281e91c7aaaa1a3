//! The CPU thread pool (`set_num_threads`) and the size thresholds for going parallel.

use std::sync::{Arc, RwLock};

static POOL: RwLock<Option<Arc<rayon::ThreadPool>>> = RwLock::new(None);

/// Elements below which elementwise kernels stay on one thread.
pub const PAR_THRESHOLD: usize = 1 << 15;

fn build(n: usize) -> Arc<rayon::ThreadPool> {
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .expect("rayon pool"),
    )
}

/// The pool every CPU kernel runs on.
pub fn pool() -> Arc<rayon::ThreadPool> {
    if let Some(p) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut w = POOL.write().unwrap_or_else(|e| e.into_inner());
    w.get_or_insert_with(|| {
        let n = std::env::var("DEEPSEEK_NUM_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
        build(n)
    })
    .clone()
}

/// Sets the number of CPU threads used by kernels (PyTorch's `torch.set_num_threads`).
pub fn set_num_threads(n: usize) {
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(build(n));
}

/// The number of CPU threads kernels use.
pub fn get_num_threads() -> usize {
    pool().current_num_threads()
}

/// Runs `f` inside the pool when `work` is large enough to pay for threads.
pub fn par<R: Send>(work: usize, f: impl FnOnce() -> R + Send) -> R {
    if work >= PAR_THRESHOLD && rayon::current_thread_index().is_none() {
        pool().install(f)
    } else {
        f()
    }
}

/// Runs `body(i, chunk)` over `data` cut into chunks of `chunk` elements, the first on the
/// calling thread and the others on the pool, as OpenMP's parallel-for does: the caller works
/// instead of sleeping while the pool works, and only the workers given a chunk are woken.
/// Inside the pool (a nested call) the chunks are split as rayon splits them.
pub fn par_chunks<T: Send>(data: &mut [T], chunk: usize, body: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    if rayon::current_thread_index().is_some() {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| body(i, c));
        return;
    }
    let body = &body;
    let mut parts = data.chunks_mut(chunk).enumerate();
    let Some((i0, first)) = parts.next() else {
        return;
    };
    pool().in_place_scope(|s| {
        for (i, c) in parts {
            s.spawn(move |_| body(i, c));
        }
        body(i0, first);
    });
}

/// Runs `f(0)`, ..., `f(tasks - 1)` on up to `threads` threads that claim tasks one at a
/// time from a shared counter: the calling thread starts at once and the pool threads join as
/// they wake, so a sleeping worker's wake-up latency (tens of µs on a VM) delays nothing and
/// costs nothing when the work is short. For many small tasks of equal cost (the int8 gemm's
/// register-tile groups, the f32 `A·Bᵀ` kernel's column blocks).
pub fn par_claim(tasks: usize, threads: usize, f: impl Fn(usize) + Sync) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let helpers = threads.min(tasks).saturating_sub(1);
    if helpers == 0 {
        (0..tasks).for_each(f);
        return;
    }
    let next = AtomicUsize::new(0);
    let work = || loop {
        let t = next.fetch_add(1, Ordering::Relaxed);
        if t >= tasks {
            break;
        }
        f(t);
    };
    let work = &work;
    if rayon::current_thread_index().is_some() {
        // Inside the pool: idle pool threads steal the helpers.
        rayon::scope(|s| {
            for _ in 0..helpers {
                s.spawn(move |_| work());
            }
            work();
        });
    } else {
        pool().in_place_scope(|s| {
            for _ in 0..helpers {
                s.spawn(move |_| work());
            }
            work();
        });
    }
}

/// Runs `f(0)`, ..., `f(parts - 1)`: `f(0)` on the calling thread, the others on the pool
/// (see [`par_chunks`]); inside the pool, split as rayon splits.
pub fn par_for(parts: usize, f: impl Fn(usize) + Sync) {
    use rayon::prelude::*;
    if parts <= 1 {
        if parts == 1 {
            f(0);
        }
        return;
    }
    if rayon::current_thread_index().is_some() {
        (0..parts).into_par_iter().for_each(&f);
        return;
    }
    let f = &f;
    pool().in_place_scope(|s| {
        for i in 1..parts {
            s.spawn(move |_| f(i));
        }
        f(0);
    });
}

/// Runs `f` compiled for AVX-512 (or AVX2+FMA) when the CPU has it, so that plain loops
/// written in `f` vectorise wide. Falls back to the baseline build otherwise.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") {
            // SAFETY: the CPU supports the features enabled on `avx512`.
            return unsafe { avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features enabled on `avx2`.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi1,bmi2,f16c")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,f16c")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

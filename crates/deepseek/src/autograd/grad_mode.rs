//! Grad mode: whether ops record the graph (`no_grad`).

use std::cell::Cell;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True when new ops record their backward.
pub fn is_grad_enabled() -> bool {
    ENABLED.with(|e| e.get())
}

/// Sets grad mode for this thread; returns the previous value.
pub fn set_grad_enabled(on: bool) -> bool {
    ENABLED.with(|e| e.replace(on))
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard drops"]
pub struct GradModeGuard {
    pub(crate) prev: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.prev);
    }
}

/// Disables graph recording until the guard drops (PyTorch's `torch.no_grad()`).
///
/// ```
/// let _g = deepseek::no_grad();
/// ```
pub fn no_grad() -> GradModeGuard {
    GradModeGuard {
        prev: set_grad_enabled(false),
    }
}

/// Enables graph recording until the guard drops.
pub fn enable_grad() -> GradModeGuard {
    GradModeGuard {
        prev: set_grad_enabled(true),
    }
}

/// Runs `f` without recording the graph.
pub fn with_no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = no_grad();
    f()
}

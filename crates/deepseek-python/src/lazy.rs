//! Deferred execution from Python: `deepseek.lazy()` scopes, `Tensor.realize()`, kernel
//! counters (see `deepseek::lazy`).

use crate::{IntoPy, PyTensor};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::cell::RefCell;

thread_local! {
    /// Open `with deepseek.lazy():` scopes of this thread, innermost last.
    static SCOPES: RefCell<Vec<deepseek::lazy::LazyGuard>> = const { RefCell::new(Vec::new()) };
}

/// Enters a lazy scope (the `__enter__` of `deepseek.lazy()`).
#[pyfunction]
fn _lazy_enter() {
    SCOPES.with(|s| s.borrow_mut().push(deepseek::lazy::lazy()));
}

/// Leaves the innermost lazy scope, realising what it deferred.
#[pyfunction]
fn _lazy_exit() {
    let g = SCOPES.with(|s| s.borrow_mut().pop());
    drop(g);
}

/// Whether ops on this thread are deferred.
#[pyfunction]
fn is_lazy() -> bool {
    deepseek::lazy::is_lazy()
}

/// Sets lazy mode for this thread; returns the previous setting.
#[pyfunction]
fn set_lazy(on: bool) -> bool {
    deepseek::lazy::set_lazy(on)
}

/// The kernel counters as a dict (`kernels`, `fused_kernels`, `fused_ops`,
/// `fused_bytes_read`, `fused_bytes_written`).
#[pyfunction]
fn kernel_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let s = deepseek::lazy::stats();
    let d = PyDict::new(py);
    d.set_item("kernels", s.kernels)?;
    d.set_item("fused_kernels", s.fused_kernels)?;
    d.set_item("fused_ops", s.fused_ops)?;
    d.set_item("fused_bytes_read", s.fused_bytes_read)?;
    d.set_item("fused_bytes_written", s.fused_bytes_written)?;
    Ok(d)
}

/// Zeroes the kernel counters.
#[pyfunction]
fn reset_kernel_stats() {
    deepseek::lazy::reset_stats()
}

#[pymethods]
impl PyTensor {
    /// Computes a deferred value now (lazy mode); returns the tensor.
    fn realize(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.t.realize().py()?;
        Ok(slf)
    }
    /// True while the value is deferred and not yet computed.
    #[getter]
    fn is_deferred(&self) -> bool {
        self.t.is_deferred()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_lazy_enter, m)?)?;
    m.add_function(wrap_pyfunction!(_lazy_exit, m)?)?;
    m.add_function(wrap_pyfunction!(is_lazy, m)?)?;
    m.add_function(wrap_pyfunction!(set_lazy, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_stats, m)?)?;
    m.add_function(wrap_pyfunction!(reset_kernel_stats, m)?)?;
    Ok(())
}

//! Deferred execution and operator fusion.
//!
//! In lazy mode ([`lazy`], [`scope`], or `DEEPSEEK_LAZY=1` for a whole process) the
//! elementwise primitives (unary, binary, where, casts and contiguous copies of float and
//! bool tensors) do not run: the executor (`crate::backend`, the one place ops reach a
//! kernel) returns a tensor whose shape and dtype are known at once — so errors still raise
//! at the call that caused them — and whose value is a deferred expression. The value is
//! computed when something needs it: reading its elements (`to_vec`, `item`, printing,
//! NumPy), any op that is not deferred (matmul, reductions, ...), an in-place write to it or
//! to a storage it reads, [`Tensor::realize`], or the end of a [`lazy`] scope.
//!
//! Realising schedules the whole deferred chain into one fused kernel ([`Kernel`], the
//! kernel IR: loads at index expressions, ALU ops, stores), which the CPU backend runs with
//! a chunked interpreter. A chain of N elementwise ops then reads its inputs once and writes
//! once instead of N times. Autograd works unchanged: backward rules are tensor ops, so in
//! lazy mode the backward graph is deferred and fused the same way, and a training step
//! realises at the optimizer step.
//!
//! `DEEPSEEK_DEBUG=1` prints each fused kernel as it runs (ops fused, shape, bytes);
//! [`stats`] counts kernels in both modes.
//!
//! ```
//! use deepseek::prelude::*;
//! let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0], &[3])?;
//! let y = deepseek::lazy::scope(|| -> deepseek::Result<Tensor> {
//!     let y = x.mul_scalar(2.0)?.add_scalar(1.0)?.relu()?; // nothing runs yet
//!     assert!(y.is_deferred());
//!     y.realize() // one fused kernel: mul, add, relu
//! })?;
//! assert_eq!(y.to_vec::<f32>()?, vec![3.0, 0.0, 7.0]);
//! # Ok::<(), deepseek::Error>(())
//! ```

pub(crate) mod expr;
pub(crate) mod idx;
pub(crate) mod kernel;

pub use idx::Idx;
pub use kernel::{Inst, Kernel};

use crate::tensor::{Storage, StorageCell};
use crate::{Result, Tensor};
use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock, Weak};

thread_local! {
    static MODE: Cell<Option<bool>> = const { Cell::new(None) };
    static SCOPES: RefCell<Vec<Vec<Weak<StorageCell>>>> = const { RefCell::new(Vec::new()) };
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn env_default() -> bool {
    static D: OnceLock<bool> = OnceLock::new();
    *D.get_or_init(|| env_flag("DEEPSEEK_LAZY"))
}

fn debug_level() -> u32 {
    static D: OnceLock<u32> = OnceLock::new();
    *D.get_or_init(|| {
        std::env::var("DEEPSEEK_DEBUG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// Whether ops on this thread are deferred (lazy mode).
pub fn is_lazy() -> bool {
    MODE.with(|m| m.get()).unwrap_or_else(env_default)
}

/// Turns lazy mode on or off for this thread; returns the previous setting. Turning it off
/// does not realise what is already deferred (that happens when it is needed).
pub fn set_lazy(on: bool) -> bool {
    let prev = is_lazy();
    MODE.with(|m| m.set(Some(on)));
    prev
}

/// The mode and device a test harness runs in, e.g. `"mode: lazy, device: cpu"`.
pub fn mode_name() -> &'static str {
    if is_lazy() {
        "lazy"
    } else {
        "eager"
    }
}

/// A lazy-mode scope: ops are deferred until the guard is dropped, which realises every
/// tensor deferred inside it that is still alive and restores the previous mode.
#[must_use = "lazy mode lasts while the guard lives"]
pub struct LazyGuard {
    prev: bool,
}

/// Enters lazy mode until the returned guard is dropped (Python's `with deepseek.lazy():`).
pub fn lazy() -> LazyGuard {
    SCOPES.with(|s| s.borrow_mut().push(Vec::new()));
    LazyGuard {
        prev: set_lazy(true),
    }
}

impl Drop for LazyGuard {
    fn drop(&mut self) {
        let cells = SCOPES.with(|s| s.borrow_mut().pop()).unwrap_or_default();
        set_lazy(self.prev);
        for c in cells.iter().filter_map(Weak::upgrade) {
            c.ensure_realized();
        }
    }
}

/// Runs `f` in lazy mode; everything it deferred is realised when it returns.
pub fn scope<R>(f: impl FnOnce() -> R) -> R {
    let _g = lazy();
    f()
}

/// Records a deferred storage in the innermost scope (realised when the scope ends).
pub(crate) fn track(cell: &Arc<StorageCell>) {
    SCOPES.with(|s| {
        if let Some(top) = s.borrow_mut().last_mut() {
            if top.len() > 64 && top.len().is_power_of_two() {
                top.retain(|w| w.upgrade().is_some_and(|c| c.pending.is_pending()));
            }
            top.push(Arc::downgrade(cell));
        }
    })
}

/// Computes a deferred storage: schedules its expression into one fused kernel and runs it.
pub(crate) fn realize_cell(cell: &Arc<StorageCell>) {
    let mut slot = cell.pending.expr.lock().unwrap_or_else(|e| e.into_inner());
    let Some(root) = slot.clone() else {
        return;
    };
    let k = kernel::schedule(cell, &root);
    let t0 = std::time::Instant::now();
    let outs = run_on_backend(&k, |be, ins| be.run_fused(&k, ins));
    record(&k, "", t0);
    let mut outs = outs.into_iter();
    let first = outs.next().expect("output 0");
    cell.fill(first);
    cell.pending.clear(&mut slot);
    drop(slot);
    fill_outputs(&k.outputs[1..], outs);
}

/// Runs a scheduled kernel on the backend (deferred values live on the CPU today), with
/// read locks on its input storages held while it runs. A backend error here cannot be
/// returned (realisation happens inside element reads), so it unwinds to the executor entry
/// or `Tensor::realize` that catches it, like running out of memory.
fn run_on_backend<R>(
    k: &kernel::Kernel,
    f: impl FnOnce(&dyn crate::backend::Backend, &[&Storage]) -> Result<R>,
) -> R {
    let guards: Vec<_> = k
        .inputs
        .iter()
        .map(|c| c.data.read().unwrap_or_else(|e| e.into_inner()))
        .collect();
    let ins: Vec<&Storage> = guards.iter().map(|g| &**g).collect();
    let r = crate::backend::for_device(crate::Device::Cpu).and_then(|be| f(be, &ins));
    match r {
        Ok(v) => v,
        Err(e) => std::panic::panic_any(e),
    }
}

/// Publishes the values a kernel stored for deferred storages held elsewhere.
fn fill_outputs(outputs: &[(usize, Arc<StorageCell>)], values: impl Iterator<Item = Storage>) {
    for ((_, c), s) in outputs.iter().zip(values) {
        let mut slot = c.pending.expr.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            c.fill(s);
            c.pending.clear(&mut slot);
        }
    }
}

/// A deferred pure copy (a chain of no ops: the value of another storage through a view,
/// as `contiguous()` and `reshape` of a strided view defer) read whole is that storage
/// through that view: returns the view, so a kernel that takes strided inputs (matmul, cat,
/// copies, reductions) reads the source in place and the copy never runs. Anything else is
/// returned as it is. (The source cannot have changed since: writing it realises its
/// deferred readers first.)
pub(crate) fn source_view(t: &Tensor) -> Tensor {
    let Some(e) = t.0.storage.pending.get() else {
        return t.clone();
    };
    let expr::ExprKind::Load { cell, layout, src } = &e.kind else {
        return t.clone();
    };
    let whole = t.layout().offset == 0 && t.is_contiguous() && t.shape() == e.shape.as_slice();
    if !whole || *src != e.dtype || cell.pending.is_pending() {
        return t.clone();
    }
    Tensor::from_shared(cell.clone(), layout.clone(), e.dtype, t.device())
}

/// Whether a reduction of `x` over `dims` should absorb x's deferred producers into its
/// kernel: when the reduced dims are x's trailing dims (rows of contiguous elements). A
/// reduction over leading dims reads its rows with a large stride; the eager kernel, which
/// accumulates whole contiguous rows into the output, does that better on a realised input.
pub(crate) fn fuses_into_reduce(op: crate::ops::ReduceOp, x: &Tensor, dims: &[usize]) -> bool {
    use crate::ops::ReduceOp::*;
    let rank = x.rank();
    let trailing = dims.iter().all(|&d| d >= rank - dims.len());
    x.is_deferred()
        && (trailing || leading_dims(dims))
        && matches!(op, Sum | Mean | Prod | Max | Min)
        && matches!(x.dtype(), crate::DType::F32 | crate::DType::F64)
        && x.numel() > 0
}

/// Whether sorted `dims` are the leading dims `0..dims.len()` (a bias gradient's sum over
/// the batch): the fused kernel then folds each column over the rows.
fn leading_dims(dims: &[usize]) -> bool {
    dims.iter().enumerate().all(|(i, &d)| i == d)
}

/// A reduction over `dims` whose elementwise producers (x's deferred chain) run inside the
/// same kernel: x is never materialised. Returns the reduced values in the order of the kept
/// dims, like the eager kernel.
pub(crate) fn reduce(
    be: &dyn crate::backend::Backend,
    op: crate::ops::ReduceOp,
    x: &Tensor,
    dims: &[usize],
) -> Result<Storage> {
    let rank = x.rank();
    // Reduced dims innermost (rows), or, when they are the leading dims and not all of the
    // trailing ones, kept in place (columns folded over the rows).
    let leading = leading_dims(dims) && !dims.iter().all(|&d| d >= rank - dims.len());
    let kept: Vec<usize> = (0..rank).filter(|d| !dims.contains(d)).collect();
    let perm: Vec<usize> = if leading {
        dims.iter().chain(&kept).copied().collect()
    } else {
        kept.iter().chain(dims).copied().collect()
    };
    let layout = x.layout().permute(&perm);
    let r: usize = dims.iter().map(|&d| x.shape()[d]).product();
    let root = Arc::new(expr::Expr {
        kind: expr::ExprKind::Load {
            cell: x.0.storage.clone(),
            layout: layout.clone(),
            src: x.dtype(),
        },
        dtype: x.dtype(),
        shape: layout.shape.clone(),
        size: 0,
    });
    // The caller's own handle on x does not make x worth storing.
    let own = (Arc::strong_count(&x.0) == 1).then_some(&x.0.storage);
    let k = kernel::schedule_value(&root, own);
    let t0 = std::time::Instant::now();
    let (res, outs) = {
        let guards: Vec<_> = k
            .inputs
            .iter()
            .map(|c| c.data.read().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let ins: Vec<&Storage> = guards.iter().map(|g| &**g).collect();
        be.run_fused_reduce(&k, &ins, r.max(1), op, leading)?
    };
    record(&k, op.name(), t0);
    fill_outputs(&k.outputs, outs.into_iter());
    Ok(res)
}

impl Tensor {
    /// Computes this tensor's value now if it is deferred (lazy mode); returns `self`.
    /// Running out of memory while computing it is an `Error::OutOfMemory`, as in eager mode.
    pub fn realize(&self) -> Result<Tensor> {
        if self.is_deferred() {
            crate::memory::catch_oom("realize", || {
                self.0.storage.ensure_realized();
                Ok(())
            })?;
        }
        Ok(self.clone())
    }
    /// True when the value is deferred and not computed yet.
    pub fn is_deferred(&self) -> bool {
        self.0.storage.pending.is_pending()
    }
}

/// Realises several tensors (each deferred chain becomes one kernel).
pub fn realize_all(ts: &[&Tensor]) -> Result<()> {
    for t in ts {
        t.realize()?;
    }
    Ok(())
}

thread_local! {
    static STATS: Cell<Stats> = const { Cell::new(Stats {
        kernels: 0,
        fused_kernels: 0,
        fused_ops: 0,
        fused_bytes_read: 0,
        fused_bytes_written: 0,
    }) };
}

/// Kernel counters of the calling thread since its last [`reset_stats`]. (Kernels are
/// launched from the thread that runs the op, even when their work is spread over the pool.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Kernels run: every eager op dispatched to a kernel, plus every fused kernel.
    pub kernels: u64,
    /// Of those, fused kernels built by the scheduler.
    pub fused_kernels: u64,
    /// Elementwise ops executed inside fused kernels.
    pub fused_ops: u64,
    /// Bytes the fused kernels read and wrote.
    pub fused_bytes_read: u64,
    pub fused_bytes_written: u64,
}

/// The calling thread's kernel counters.
pub fn stats() -> Stats {
    STATS.with(|s| s.get())
}

/// Zeroes the calling thread's kernel counters.
pub fn reset_stats() {
    STATS.with(|s| s.set(Stats::default()));
}

fn bump(f: impl FnOnce(&mut Stats)) -> u64 {
    STATS.with(|s| {
        let mut v = s.get();
        f(&mut v);
        s.set(v);
        v.kernels
    })
}

/// Counts one eager kernel launch (called by the executor for each op it runs now).
pub(crate) fn count_kernel(name: &str) {
    bump(|s| s.kernels += 1);
    if debug_level() >= 2 {
        eprintln!("[deepseek] kernel {name} (eager)");
    }
}

fn record(k: &Kernel, reduce: &str, t0: std::time::Instant) {
    crate::profiler::record_fused(&k.op_names(), reduce, t0, &k.shape);
    let id = bump(|s| {
        s.kernels += 1;
        s.fused_kernels += 1;
        s.fused_ops += (k.ops() + usize::from(!reduce.is_empty())) as u64;
        s.fused_bytes_read += k.bytes_read() as u64;
        s.fused_bytes_written += k.bytes_written() as u64;
    });
    if debug_level() >= 1 {
        eprintln!(
            "[deepseek] kernel #{id}: fused {} ops [{}{}] over {:?}, {} outputs; read {} B, wrote {} B; {:.3} ms",
            k.ops() + usize::from(!reduce.is_empty()),
            k.op_names().join(", "),
            if reduce.is_empty() { String::new() } else { format!(" -> {reduce}") },
            k.shape,
            k.outputs.len(),
            k.bytes_read(),
            k.bytes_written(),
            t0.elapsed().as_secs_f64() * 1e3
        );
        if debug_level() >= 3 {
            eprint!("{}", k.render_c());
        }
    }
}

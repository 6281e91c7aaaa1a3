//! Deferred values: what a tensor created in lazy mode holds until it is realised.
//!
//! Each deferred op makes one [`Expr`] node whose operands are [`ExprKind::Load`]s of its
//! input tensors' storages (realised or themselves deferred). Nothing is computed here:
//! shapes and dtypes were checked by the op before it got this far, so errors surface at the
//! call that caused them. The scheduler (`kernel.rs`) later inlines deferred loads into one
//! fused kernel.

use crate::ops::{BinaryOp, UnaryOp};
use crate::tensor::{Layout, StorageCell};
use crate::{DType, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Deferred ops fused into one kernel before the scheduler realises their inputs instead.
pub(crate) const MAX_FUSED: usize = 48;

/// The deferred computation of a storage, if any.
pub(crate) struct PendingSlot {
    flag: AtomicBool,
    pub(crate) expr: Mutex<Option<Arc<Expr>>>,
}

impl PendingSlot {
    pub(crate) fn none() -> PendingSlot {
        PendingSlot {
            flag: AtomicBool::new(false),
            expr: Mutex::new(None),
        }
    }
    pub(crate) fn some(e: Arc<Expr>) -> PendingSlot {
        PendingSlot {
            flag: AtomicBool::new(true),
            expr: Mutex::new(Some(e)),
        }
    }
    /// True while the value is not computed yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
    pub(crate) fn clear(&self, slot: &mut Option<Arc<Expr>>) {
        *slot = None;
        self.flag.store(false, Ordering::Release);
    }
    /// The expression, when still deferred.
    pub(crate) fn get(&self) -> Option<Arc<Expr>> {
        if !self.is_pending() {
            return None;
        }
        self.expr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One deferred elementwise op over an iteration space of `shape`.
pub(crate) struct Expr {
    pub kind: ExprKind,
    /// Element type of the value (F32, F64 or Bool).
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Deferred ops in this expression and the deferred inputs it would inline.
    pub size: usize,
}

pub(crate) enum ExprKind {
    /// The elements of `cell` through `layout` (whose shape is this node's shape; broadcast
    /// strides allowed), converted from `src` to this node's dtype.
    Load {
        cell: Arc<StorageCell>,
        layout: Layout,
        src: DType,
    },
    Unary(UnaryOp, Arc<Expr>),
    Binary(BinaryOp, Arc<Expr>, Arc<Expr>),
    Where(Arc<Expr>, Arc<Expr>, Arc<Expr>),
}

impl Expr {
    /// The storages this node loads directly.
    pub(crate) fn loads(&self, out: &mut Vec<Arc<StorageCell>>) {
        match &self.kind {
            ExprKind::Load { cell, .. } => out.push(cell.clone()),
            ExprKind::Unary(_, a) => a.loads(out),
            ExprKind::Binary(_, a, b) => {
                a.loads(out);
                b.loads(out);
            }
            ExprKind::Where(c, a, b) => {
                c.loads(out);
                a.loads(out);
                b.loads(out);
            }
        }
    }
}

/// Element types a deferred value may have.
pub(crate) fn is_register_dtype(dt: DType) -> bool {
    matches!(dt, DType::F32 | DType::F64 | DType::Bool)
}

/// A load of tensor `t` broadcast to `shape`, converted to `dtype`.
fn load(t: &Tensor, shape: &[usize], dtype: DType) -> Arc<Expr> {
    let layout = if t.shape() == shape {
        t.layout().clone()
    } else {
        let strides = t
            .layout()
            .broadcast_strides("lazy", shape)
            .expect("broadcast checked by the op");
        Layout {
            shape: shape.to_vec(),
            strides,
            offset: t.layout().offset,
        }
    };
    let cell = t.0.storage.clone();
    let size = cell.pending.get().map_or(0, |e| e.size);
    Arc::new(Expr {
        kind: ExprKind::Load {
            cell,
            layout,
            src: t.dtype(),
        },
        dtype,
        shape: shape.to_vec(),
        size,
    })
}

/// Wraps a deferred expression into a new tensor (contiguous layout over its own storage).
fn deferred(kind: ExprKind, dtype: DType, shape: &[usize], t: &Tensor) -> Tensor {
    let children: Vec<&Arc<Expr>> = match &kind {
        ExprKind::Load { .. } => vec![],
        ExprKind::Unary(_, a) => vec![a],
        ExprKind::Binary(_, a, b) => vec![a, b],
        ExprKind::Where(c, a, b) => vec![c, a, b],
    };
    let inner = match &kind {
        ExprKind::Load { cell, .. } => cell.pending.get().map_or(0, |e| e.size),
        _ => children.iter().map(|c| c.size).sum::<usize>(),
    };
    let mut size = 1 + inner;
    let mut expr = Expr {
        kind,
        dtype,
        shape: shape.to_vec(),
        size,
    };
    if size > MAX_FUSED {
        // Too much to fuse into one kernel: realise the deferred inputs now, so kernels
        // (and the scheduler's recursion) stay bounded.
        let mut cells = Vec::new();
        expr.loads(&mut cells);
        for c in &cells {
            c.ensure_realized();
        }
        size = 1;
        expr.size = size;
    }
    let expr = Arc::new(expr);
    let mut cells = Vec::new();
    expr.loads(&mut cells);
    let cell = StorageCell::deferred(expr, dtype);
    for c in cells {
        c.add_reader(&cell);
    }
    super::track(&cell);
    Tensor::from_shared(cell, Layout::contiguous(shape), dtype, t.device())
}

/// Deferred `op(x)` (x is F32 or F64).
pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Tensor {
    let dt = x.dtype();
    deferred(
        ExprKind::Unary(op, load(x, x.shape(), dt)),
        dt,
        x.shape(),
        x,
    )
}

/// Deferred `op(a, b)` broadcast to `shape` (a and b share an F32/F64 dtype).
pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, shape: &[usize]) -> Tensor {
    let dt = a.dtype();
    let out = if op.is_predicate() { DType::Bool } else { dt };
    deferred(
        ExprKind::Binary(op, load(a, shape, dt), load(b, shape, dt)),
        out,
        shape,
        a,
    )
}

/// Deferred `where(c, a, b)` broadcast to `shape`.
pub(crate) fn where_(c: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> Tensor {
    let dt = a.dtype();
    deferred(
        ExprKind::Where(
            load(c, shape, DType::Bool),
            load(a, shape, dt),
            load(b, shape, dt),
        ),
        dt,
        shape,
        a,
    )
}

/// Deferred conversion to `dt` (also a contiguous copy when `dt` is x's dtype).
pub(crate) fn cast(x: &Tensor, dt: DType) -> Tensor {
    let kind = ExprKind::Load {
        cell: x.0.storage.clone(),
        layout: x.layout().clone(),
        src: x.dtype(),
    };
    deferred(kind, dt, x.shape(), x)
}

/// Whether `ts` can be deferred: lazy mode on, CPU, non-empty, register dtypes.
pub(crate) fn can_defer(ts: &[&Tensor], out: DType) -> bool {
    super::is_lazy()
        && is_register_dtype(out)
        && ts
            .iter()
            .all(|t| t.device() == crate::Device::Cpu && t.numel() > 0)
}

//! The kernel IR and the scheduler that builds it.
//!
//! A [`Kernel`] is a loop over `n` output elements (`gid`) and a list of SSA instructions:
//! loads of input buffers at an index expression ([`Idx`]), unary/binary/where ALU ops, and
//! the registers stored to each output buffer. It is what the CPU interpreter (`exec.rs`)
//! runs chunk by chunk and what a GPU backend renders as source text ([`Kernel::render_c`]
//! shows the form).
//!
//! Scheduling: realising a deferred storage walks its expression; a load of another deferred
//! storage is inlined (its index map composed with the view's) so the whole elementwise
//! chain becomes one loop. A deferred input that something else still holds (a tensor, a
//! view, another deferred op, autograd) is computed once: stored as a second output of the
//! same kernel when it is read element for element, realised as its own kernel first when
//! it is read through a broadcast or permuted view. Identical loads and sub-expressions are
//! computed once.

use super::expr::{Expr, ExprKind};
use super::idx::Idx;
use crate::ops::{BinaryOp, UnaryOp};
use crate::tensor::StorageCell;
use crate::DType;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// One instruction; its result is register `i` (its position in [`Kernel::insts`]).
#[derive(Clone, Debug)]
pub enum Inst {
    /// `input[index]`, converted from the buffer's dtype `src` to `dt`.
    Load {
        input: usize,
        index: Idx,
        src: DType,
        dt: DType,
    },
    Unary {
        op: UnaryOp,
        a: usize,
        dt: DType,
    },
    /// Operands of dtype `dt`; the result is bool for predicates.
    Binary {
        op: BinaryOp,
        a: usize,
        b: usize,
        dt: DType,
    },
    Where {
        c: usize,
        a: usize,
        b: usize,
        dt: DType,
    },
    /// Register conversion between F32, F64 and Bool.
    Cast {
        a: usize,
        from: DType,
        to: DType,
    },
}

impl Inst {
    /// The dtype of the register this instruction writes.
    pub fn dtype(&self) -> DType {
        match self {
            Inst::Load { dt, .. } | Inst::Unary { dt, .. } | Inst::Where { dt, .. } => *dt,
            Inst::Binary { op, dt, .. } => {
                if op.is_predicate() {
                    DType::Bool
                } else {
                    *dt
                }
            }
            Inst::Cast { to, .. } => *to,
        }
    }
    /// The op's name (for the schedule printout and the profiler).
    pub fn name(&self) -> &'static str {
        match self {
            Inst::Load { .. } => "load",
            Inst::Unary { op, .. } => op.name(),
            Inst::Binary { op, .. } => op.name(),
            Inst::Where { .. } => "where",
            Inst::Cast { .. } => "to",
        }
    }
}

/// A fused elementwise kernel.
pub struct Kernel {
    /// Elements computed (the loop runs `gid` over `0..n`).
    pub n: usize,
    /// The output shape (for the printout).
    pub shape: Vec<usize>,
    pub(crate) inputs: Vec<Arc<StorageCell>>,
    pub insts: Vec<Inst>,
    /// (register, storage) for each store. When the kernel realises a storage, it is output
    /// 0; a reduction kernel consumes `value` instead and stores only deferred values that
    /// are needed elsewhere.
    pub(crate) outputs: Vec<(usize, Arc<StorageCell>)>,
    /// The register holding the expression's value.
    pub value: usize,
}

impl Kernel {
    /// Number of ALU ops (loads excluded).
    pub fn ops(&self) -> usize {
        self.insts
            .iter()
            .filter(|i| !matches!(i, Inst::Load { .. }))
            .count()
    }
    /// Bytes read from input buffers (each load counted once per element).
    pub fn bytes_read(&self) -> usize {
        self.insts
            .iter()
            .map(|i| match i {
                Inst::Load { src, .. } => self.n * src.size_in_bytes(),
                _ => 0,
            })
            .sum()
    }
    /// Bytes written to outputs.
    pub fn bytes_written(&self) -> usize {
        self.outputs
            .iter()
            .map(|(r, _)| self.n * self.insts[*r].dtype().size_in_bytes())
            .sum()
    }
    /// The names of the fused ops, in order.
    pub fn op_names(&self) -> Vec<&'static str> {
        self.insts
            .iter()
            .filter(|i| !matches!(i, Inst::Load { .. }))
            .map(|i| i.name())
            .collect()
    }
    /// The kernel as C-like source (the shape a GPU renderer gives it; for the debug
    /// printout, not compiled on the CPU).
    pub fn render_c(&self) -> String {
        let ty = |d: DType| match d {
            DType::F64 => "double",
            DType::Bool => "bool",
            _ => "float",
        };
        let mut s = String::from("kernel(");
        for i in 0..self.inputs.len() {
            let _ = write!(s, "const in{i}*, ");
        }
        for i in 0..self.outputs.len() {
            let _ = write!(
                s,
                "out{i}*{}",
                if i + 1 < self.outputs.len() { ", " } else { "" }
            );
        }
        let _ = writeln!(s, ") for gid in 0..{}:", self.n);
        for (r, inst) in self.insts.iter().enumerate() {
            let rhs = match inst {
                Inst::Load { input, index, .. } => format!("in{input}[{index}]"),
                Inst::Unary { op, a, .. } => format!("{}(r{a})", op.name()),
                Inst::Binary { op, a, b, .. } => format!("{}(r{a}, r{b})", op.name()),
                Inst::Where { c, a, b, .. } => format!("r{c} ? r{a} : r{b}"),
                Inst::Cast { a, to, .. } => format!("({})r{a}", ty(*to)),
            };
            let _ = writeln!(s, "  {} r{r} = {rhs};", ty(inst.dtype()));
        }
        for (i, (r, _)) in self.outputs.iter().enumerate() {
            let _ = writeln!(s, "  out{i}[gid] = r{r};");
        }
        s
    }
}

struct Builder {
    n: usize,
    inputs: Vec<Arc<StorageCell>>,
    insts: Vec<Inst>,
    outputs: Vec<(usize, Arc<StorageCell>)>,
    /// (expression node, index map) -> register.
    memo: HashMap<(usize, Idx), usize>,
    /// (input, index, dtype) -> register.
    loads: HashMap<(usize, Idx, DType), usize>,
    /// How many loads in this expression graph refer to each deferred storage.
    refs: HashMap<usize, usize>,
}

fn key(c: &Arc<StorageCell>) -> usize {
    Arc::as_ptr(c) as usize
}

/// Counts, over the deferred graph below `e`, the loads of each storage (each expression
/// node visited once).
fn count_refs(e: &Arc<Expr>, seen: &mut HashMap<usize, ()>, refs: &mut HashMap<usize, usize>) {
    if seen.insert(Arc::as_ptr(e) as usize, ()).is_some() {
        return;
    }
    match &e.kind {
        ExprKind::Load { cell, .. } => {
            *refs.entry(key(cell)).or_default() += 1;
            let first = refs[&key(cell)] == 1;
            if first {
                if let Some(p) = cell.pending.get() {
                    count_refs(&p, seen, refs);
                }
            }
        }
        ExprKind::Unary(_, a) => count_refs(a, seen, refs),
        ExprKind::Binary(_, a, b) => {
            count_refs(a, seen, refs);
            count_refs(b, seen, refs);
        }
        ExprKind::Where(c, a, b) => {
            count_refs(c, seen, refs);
            count_refs(a, seen, refs);
            count_refs(b, seen, refs);
        }
    }
}

impl Builder {
    fn push(&mut self, i: Inst) -> usize {
        self.insts.push(i);
        self.insts.len() - 1
    }

    fn lower(&mut self, e: &Arc<Expr>, gid: &Idx) -> usize {
        let k = (Arc::as_ptr(e) as usize, gid.clone());
        if let Some(&r) = self.memo.get(&k) {
            return r;
        }
        let r = match &e.kind {
            ExprKind::Load { cell, layout, src } => {
                // The view map is built over this expression's own iteration space (its
                // `gid` < its numel), then composed with the caller's map into the kernel's.
                let own = Idx::of_view(layout, Idx::Gid, layout.numel());
                let idx = if *gid == Idx::Gid {
                    own
                } else {
                    own.subst(gid, self.n)
                };
                self.load(cell, idx, *src, e.dtype)
            }
            ExprKind::Unary(op, a) => {
                let a = self.lower(a, gid);
                self.push(Inst::Unary {
                    op: *op,
                    a,
                    dt: e.dtype,
                })
            }
            ExprKind::Binary(op, a, b) => {
                let dt = a.dtype;
                let (a, b) = (self.lower(a, gid), self.lower(b, gid));
                self.push(Inst::Binary { op: *op, a, b, dt })
            }
            ExprKind::Where(c, a, b) => {
                let (c, a, b) = (self.lower(c, gid), self.lower(a, gid), self.lower(b, gid));
                self.push(Inst::Where {
                    c,
                    a,
                    b,
                    dt: e.dtype,
                })
            }
        };
        self.memo.insert(k, r);
        r
    }

    /// Register holding `cell[idx]` as `dt`: inlines a deferred storage or loads a buffer.
    fn load(&mut self, cell: &Arc<StorageCell>, idx: Idx, src: DType, dt: DType) -> usize {
        if let Some(p) = cell.pending.get() {
            let held_elsewhere =
                Arc::strong_count(cell) > self.refs.get(&key(cell)).copied().unwrap_or(0);
            let co_iterated = idx == Idx::Gid && p.shape.iter().product::<usize>() == self.n;
            if !held_elsewhere || co_iterated {
                let r = self.lower(&p, &idx);
                if held_elsewhere && !self.outputs.iter().any(|(_, c)| Arc::ptr_eq(c, cell)) {
                    self.outputs.push((r, cell.clone()));
                }
                return self.convert(r, p.dtype, dt);
            }
            cell.ensure_realized();
        }
        let input = match self.inputs.iter().position(|c| Arc::ptr_eq(c, cell)) {
            Some(i) => i,
            None => {
                self.inputs.push(cell.clone());
                self.inputs.len() - 1
            }
        };
        let k = (input, idx.clone(), dt);
        if let Some(&r) = self.loads.get(&k) {
            return r;
        }
        let r = self.push(Inst::Load {
            input,
            index: idx,
            src,
            dt,
        });
        self.loads.insert(k, r);
        r
    }

    fn convert(&mut self, r: usize, from: DType, to: DType) -> usize {
        if from == to {
            r
        } else {
            self.push(Inst::Cast { a: r, from, to })
        }
    }
}

/// Builds the kernel that realises `cell`, whose deferred expression is `root`.
pub(crate) fn schedule(cell: &Arc<StorageCell>, root: &Arc<Expr>) -> Kernel {
    let mut k = schedule_value(root, None);
    k.outputs.insert(0, (k.value, cell.clone()));
    k
}

/// Builds a kernel computing `root` (for a consumer such as a reduction). `held` names a
/// storage whose one handle is the caller's own (not a reason to store it).
pub(crate) fn schedule_value(root: &Arc<Expr>, held: Option<&Arc<StorageCell>>) -> Kernel {
    let n = root.shape.iter().product();
    let mut refs = HashMap::new();
    count_refs(root, &mut HashMap::new(), &mut refs);
    if let Some(c) = held {
        *refs.entry(key(c)).or_default() += 1;
    }
    let mut b = Builder {
        n,
        inputs: Vec::new(),
        insts: Vec::new(),
        outputs: Vec::new(),
        memo: HashMap::new(),
        loads: HashMap::new(),
        refs,
    };
    let value = b.lower(root, &Idx::Gid);
    Kernel {
        n,
        shape: root.shape.clone(),
        inputs: b.inputs,
        insts: b.insts,
        outputs: b.outputs,
        value,
    }
}

//! Define-by-run autograd.
//!
//! Every recorded op becomes a [`Node`] holding its [`Op`] (from the one op IR), edges to the
//! nodes (or leaves) that produced its inputs, and the tensors its backward rule needs.
//! [`backward`] walks the graph in topological order and applies each op's rule
//! (`crate::ops::backward`), written with ordinary tensor ops so `create_graph` works.

mod checkpoint;
mod engine;
mod grad_mode;

pub(crate) use checkpoint::checkpoint_backward;
pub use checkpoint::{checkpoint, Checkpoint};

pub use engine::{backward, grad};
pub use grad_mode::{
    enable_grad, is_grad_enabled, no_grad, set_grad_enabled, with_no_grad, GradModeGuard,
};

use crate::ops::Op;
use crate::tensor::TensorImpl;
use crate::{DType, Error, Result, Tensor};
use std::sync::{Arc, Mutex, Weak};

/// Where the gradient of one input goes.
#[derive(Clone)]
pub(crate) enum Edge {
    /// Output `idx` of another node.
    Node(Arc<Node>, usize),
    /// A leaf tensor that requires grad.
    Leaf(Arc<TensorImpl>),
}

pub(crate) struct Saved {
    pub tensors: Vec<Tensor>,
    /// Outputs, detached (re-attached on demand under `create_graph`).
    pub outputs: Vec<Tensor>,
    /// Storage versions of `tensors` then `outputs` when saved: backward refuses to run
    /// when one of them has since been modified in place.
    pub versions: Vec<u64>,
}

impl Saved {
    fn new(tensors: Vec<Tensor>, outputs: Vec<Tensor>) -> Saved {
        let versions = tensors
            .iter()
            .chain(&outputs)
            .map(|t| t.version())
            .collect();
        Saved {
            tensors,
            outputs,
            versions,
        }
    }

    /// An error naming the first saved tensor written in place since it was saved.
    pub(crate) fn check_versions(&self, op: &str) -> Result<()> {
        let n = self.tensors.len();
        for (i, (t, &v)) in self
            .tensors
            .iter()
            .chain(&self.outputs)
            .zip(&self.versions)
            .enumerate()
        {
            let now = t.version();
            if now != v {
                let what = if i < n {
                    format!("saved tensor {i}")
                } else {
                    format!("output {}", i - n)
                };
                return Err(Error::Autograd(format!(
                    "one of the tensors needed for gradient computation has been modified by an \
                     in-place operation: {op}'s {what} (shape {:?}) is at version {now}; expected \
                     version {v} instead",
                    t.shape()
                )));
            }
        }
        Ok(())
    }
}

/// One recorded op in the graph.
pub struct Node {
    /// The op, with its attributes.
    pub op: Op,
    pub(crate) edges: Vec<Option<Edge>>,
    pub(crate) input_meta: Vec<(Vec<usize>, DType)>,
    pub(crate) out_meta: Vec<(Vec<usize>, DType)>,
    pub(crate) saved: Mutex<Option<Saved>>,
    pub(crate) outputs: Mutex<Vec<Weak<TensorImpl>>>,
    /// Hooks registered on the outputs (`Tensor::register_hook` of a non-leaf), by output
    /// index. They live with the graph, as PyTorch's do: they run in backward even when the
    /// tensor they were registered on has been dropped.
    pub(crate) out_hooks: Mutex<Vec<(usize, crate::tensor::Hook)>>,
    /// Set when a consumer's backward skips this node and sends its gradient straight to this
    /// node's input (`nll_loss` over a `log_softmax`, see [`bypass_log_softmax`]): the
    /// gradient of this node's output is then no longer complete, so hooks, `retain_grad` and
    /// `autograd::grad` with respect to that output are refused.
    pub(crate) bypassed: std::sync::atomic::AtomicBool,
}

impl Node {
    /// The error for asking a bypassed node's output for its gradient (see `bypassed`).
    pub(crate) fn bypassed_error(&self, what: &str) -> Option<Error> {
        if !self.bypassed.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        Some(Error::Autograd(format!(
            "cannot {what} this {} output: nll_loss over it was fused with it into one \
             cross-entropy backward, so its own gradient is never formed; {what} before \
             calling nll_loss (or compute the loss with cross_entropy)",
            self.op.name()
        )))
    }
}

/// What a backward rule sees.
pub struct Ctx<'a> {
    pub(crate) node: &'a Arc<Node>,
    pub(crate) saved: &'a Saved,
    /// True when the rule must build a differentiable graph (`create_graph`).
    pub create_graph: bool,
}

impl Ctx<'_> {
    /// Saved tensor `i` (as the forward stored it).
    pub fn saved(&self, i: usize) -> &Tensor {
        &self.saved.tensors[i]
    }
    /// Whether saved tensor `i` exists.
    pub fn has_saved(&self, i: usize) -> bool {
        i < self.saved.tensors.len()
    }
    /// Output `i` of the forward; under `create_graph` it is re-attached to this node.
    pub fn output(&self, i: usize) -> Tensor {
        let o = &self.saved.outputs[i];
        if self.create_graph {
            o.attach(self.node.clone(), i)
        } else {
            o.clone()
        }
    }
    /// Whether input `i` needs a gradient.
    pub fn needs(&self, i: usize) -> bool {
        self.node.edges[i].is_some()
    }
    /// Shape of input `i`.
    pub fn input_shape(&self, i: usize) -> &[usize] {
        &self.node.input_meta[i].0
    }
    /// Shape of output `i`.
    pub fn output_shape(&self, i: usize) -> &[usize] {
        &self.node.out_meta[i].0
    }
    /// Errors under `create_graph` for ops whose backward is a fused kernel.
    pub fn no_double_backward(&self, op: &str) -> Result<()> {
        if self.create_graph {
            return Err(Error::Autograd(format!(
                "double backward (create_graph=True) through {op} is not supported: its backward is a fused kernel"
            )));
        }
        Ok(())
    }
}

/// True when an op over these inputs must be recorded.
pub(crate) fn needs_record(inputs: &[&Tensor]) -> bool {
    is_grad_enabled() && inputs.iter().any(|t| t.requires_grad())
}

/// Records `op` over `inputs` producing `outputs`, if any input requires grad and grad mode is
/// on; returns the outputs (attached to the new node when recorded). Non-float outputs are never
/// attached.
pub(crate) fn record(
    op: Op,
    inputs: &[&Tensor],
    outputs: Vec<Tensor>,
    saved: Vec<Tensor>,
    save_outputs: bool,
) -> Vec<Tensor> {
    if !needs_record(inputs) {
        return outputs;
    }
    let edges = inputs
        .iter()
        .map(|t| {
            if !t.requires_grad() {
                None
            } else if let Some((n, i)) = t.grad_fn() {
                Some(Edge::Node(n.clone(), *i))
            } else {
                Some(Edge::Leaf(t.0.clone()))
            }
        })
        .collect();
    let input_meta = inputs
        .iter()
        .map(|t| (t.shape().to_vec(), t.dtype()))
        .collect();
    record_node(op, edges, input_meta, outputs, saved, save_outputs)
}

/// [`record`] over explicit edges: builds the node and attaches the outputs to it.
fn record_node(
    op: Op,
    edges: Vec<Option<Edge>>,
    input_meta: Vec<(Vec<usize>, DType)>,
    outputs: Vec<Tensor>,
    saved: Vec<Tensor>,
    save_outputs: bool,
) -> Vec<Tensor> {
    let node = Arc::new(Node {
        op,
        edges,
        input_meta,
        out_meta: outputs
            .iter()
            .map(|t| (t.shape().to_vec(), t.dtype()))
            .collect(),
        saved: Mutex::new(Some(Saved::new(
            saved,
            if save_outputs {
                outputs.iter().map(|o| o.detach()).collect()
            } else {
                Vec::new()
            },
        ))),
        outputs: Mutex::new(Vec::new()),
        out_hooks: Mutex::new(Vec::new()),
        bypassed: std::sync::atomic::AtomicBool::new(false),
    });
    let outs: Vec<Tensor> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            if o.dtype().is_float() {
                o.attach(node.clone(), i)
            } else {
                o
            }
        })
        .collect();
    *node.outputs.lock().unwrap() = outs.iter().map(|o| Arc::downgrade(&o.0)).collect();
    outs
}

/// Records `op` over `[x, rest...]` where `x` is the *input* of the `log_softmax` (over the
/// last dim of a rank-2 tensor) that produced `logp`, skipping that log_softmax node: the
/// backward of `nll_loss(log_softmax(x))` is `softmax(x) - onehot` in one pass over `logp`
/// (the cross-entropy kernel), instead of a dense one-hot gradient, the log_softmax backward
/// reading it, and the zeros under both. Returns `None` (nothing recorded) when `logp` is not
/// such an output or when its own gradient is observed (a hook, `retain_grad`); otherwise
/// marks the log_softmax node bypassed so that asking for that gradient later is an error.
/// `rest` must not require grad.
pub(crate) fn bypass_log_softmax(
    op: Op,
    logp: &Tensor,
    rest: &[&Tensor],
    out: &Tensor,
    saved: Vec<Tensor>,
) -> Option<Tensor> {
    if !is_grad_enabled() || logp.rank() != 2 || logp.retains_grad() {
        return None;
    }
    let (node, idx) = logp.grad_fn()?;
    if *idx != 0
        || !matches!(node.op, Op::LogSoftmax { dim: 1 })
        || rest.iter().any(|t| t.requires_grad())
        || !node.out_hooks.lock().unwrap().is_empty()
    {
        return None;
    }
    let mut edges = vec![node.edges[0].clone()];
    let mut meta = vec![node.input_meta[0].clone()];
    for t in rest {
        edges.push(None);
        meta.push((t.shape().to_vec(), t.dtype()));
    }
    node.bypassed
        .store(true, std::sync::atomic::Ordering::Relaxed);
    record_node(op, edges, meta, vec![out.clone()], saved, false).pop()
}

/// [`record`] for a single output.
pub(crate) fn record1(
    op: Op,
    inputs: &[&Tensor],
    out: Tensor,
    saved: Vec<Tensor>,
    save_output: bool,
) -> Tensor {
    record(op, inputs, vec![out], saved, save_output)
        .pop()
        .expect("one output")
}

//! The op IR: every primitive op is declared here once, with its attributes.
//!
//! Kernels (`crate::backend`), backward rules (next to each op family, dispatched by
//! [`backward`]), and later the profiler, visualizer, ONNX exporter and fuser all read [`Op`].
//! Composite ops (var, logsumexp, cross_entropy, attention, ...) are built from these in the
//! family modules and need no entry here.

#[macro_use]
mod decl;

pub mod activation;
pub mod attention;
pub mod binary;
pub mod conv;
pub mod index;
pub mod loss;
pub mod matmul;
pub mod movement;
pub mod norm;
pub mod reduce;
pub mod rnn;
pub mod select;
pub mod unary;

pub use binary::{BinaryDecl, BinaryOp, BinaryVisitor, BINARY_OPS};
pub use reduce::ReduceOp;
pub use unary::{Domain, UnaryDecl, UnaryOp, UnaryVisitor, UNARY_OPS};

use crate::autograd::Ctx;
use crate::{DType, Result, Tensor};

/// Pooling flavour of [`Op::Pool2d`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PoolKind {
    Max,
    /// Average; `count_include_pad` as in PyTorch.
    Avg {
        count_include_pad: bool,
    },
}

/// Attributes of a 2-D pooling op. Adaptive pooling is expressed by `adaptive` (output size),
/// with kernel/stride/padding unused.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool2dAttrs {
    pub kind: PoolKind,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
    pub adaptive: Option<[usize; 2]>,
}

/// Attributes of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dAttrs {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// One primitive op with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Elementwise, one input.
    Unary(UnaryOp),
    /// Elementwise with broadcasting, two inputs.
    Binary(BinaryOp),
    /// `where(cond, a, b)` with broadcasting.
    Where,
    /// Dtype conversion.
    Cast(DType),
    /// Reduction over `dims` (resolved, sorted).
    Reduce {
        op: ReduceOp,
        dims: Vec<usize>,
        keepdim: bool,
    },
    /// Inclusive prefix sum along `dim`.
    Cumsum { dim: usize },
    /// A view with a new shape over the same elements.
    Reshape { shape: Vec<usize> },
    /// A view with permuted dims.
    Permute { dims: Vec<usize> },
    /// A broadcast view.
    Expand { shape: Vec<usize> },
    /// A strided view `start, start+step, ...` (`len` elements) along `dim`.
    Slice {
        dim: usize,
        start: usize,
        len: usize,
        step: usize,
    },
    /// A contiguous copy.
    Contiguous,
    /// Concatenation along `dim`.
    Cat { dim: usize },
    /// Split into pieces of `sizes` along `dim` (one output per piece).
    Split { dim: usize, sizes: Vec<usize> },
    /// Constant padding: `(before, after)` per dim.
    Pad {
        pads: Vec<(usize, usize)>,
        value: f64,
    },
    /// Rows of `x` picked by an index vector along `dim`.
    IndexSelect { dim: usize },
    /// `out[i][j] = x[i][idx[i][j]]` along `dim`.
    Gather { dim: usize },
    /// `x.scatter_add(dim, idx, src)`.
    ScatterAdd { dim: usize },
    /// `x.scatter(dim, idx, src)`.
    Scatter { dim: usize },
    /// `x.index_add(dim, idx, src)`.
    IndexAdd { dim: usize },
    /// Lookup rows of a weight table; rows equal to `padding_idx` get no gradient.
    Embedding { padding_idx: Option<usize> },
    /// Batched matrix product of two tensors of equal rank >= 2 and equal batch dims.
    Matmul,
    /// Softmax along `dim`.
    Softmax { dim: usize },
    /// Log-softmax along `dim`.
    LogSoftmax { dim: usize },
    /// Layer norm over the trailing `n` elements (inputs x, weight?, bias?).
    LayerNorm {
        n: usize,
        eps: f64,
        has_weight: bool,
        has_bias: bool,
    },
    /// 2-D convolution (inputs x, weight); bias is a separate add.
    Conv2d(Conv2dAttrs),
    /// 2-D pooling (max, average, adaptive average).
    Pool2d(Pool2dAttrs),
    /// One LSTM layer over all timesteps (inputs x[T,B,I], h0, c0, w_ih, w_hh, b_ih, b_hh);
    /// outputs (out[T,B,H], h_T, c_T). With `projected`, x is already the input projection
    /// [T,B,4H] and there is no w_ih input (inputs x, h0, c0, w_hh, b_ih, b_hh).
    LstmLayer { hidden: usize, projected: bool },
    /// Cross-entropy of each row of logits x [N, C] against class indices t [N] (inputs x,
    /// t), with label smoothing; rows whose target is `ignore_index` give 0. Output [N].
    CrossEntropy {
        ignore_index: i64,
        label_smoothing: f64,
    },
    /// A gradient-checkpointed segment (inputs, then parameters): recomputed in backward.
    Checkpoint(crate::autograd::Checkpoint),
}

impl Op {
    /// A short name (profiler, visualizer, errors).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Where => "where",
            Op::Cast(_) => "to",
            Op::Reduce { op, .. } => op.name(),
            Op::Cumsum { .. } => "cumsum",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::Expand { .. } => "expand",
            Op::Slice { .. } => "slice",
            Op::Contiguous => "contiguous",
            Op::Cat { .. } => "cat",
            Op::Split { .. } => "split",
            Op::Pad { .. } => "pad",
            Op::IndexSelect { .. } => "index_select",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Scatter { .. } => "scatter",
            Op::IndexAdd { .. } => "index_add",
            Op::Embedding { .. } => "embedding",
            Op::Matmul => "matmul",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Conv2d(_) => "conv2d",
            Op::Pool2d(p) => match (p.kind, p.adaptive.is_some()) {
                (PoolKind::Max, false) => "max_pool2d",
                (PoolKind::Max, true) => "adaptive_max_pool2d",
                (PoolKind::Avg { .. }, false) => "avg_pool2d",
                (PoolKind::Avg { .. }, true) => "adaptive_avg_pool2d",
            },
            Op::LstmLayer { .. } => "lstm",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::Checkpoint(_) => "checkpoint",
        }
    }
}

/// Applies the backward rule of `op`: output gradients in, input gradients out.
pub(crate) fn backward(
    op: &Op,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    match op {
        Op::Unary(u) => unary::backward(*u, ctx, grads),
        Op::Binary(b) => binary::backward(*b, ctx, grads),
        Op::Where => index::where_backward(ctx, grads),
        Op::Cast(_) => movement::cast_backward(ctx, grads),
        Op::Reduce { op, dims, keepdim } => reduce::backward(*op, dims, *keepdim, ctx, grads),
        Op::Cumsum { dim } => reduce::cumsum_backward(*dim, ctx, grads),
        Op::Reshape { .. }
        | Op::Permute { .. }
        | Op::Expand { .. }
        | Op::Slice { .. }
        | Op::Contiguous
        | Op::Cat { .. }
        | Op::Split { .. }
        | Op::Pad { .. } => movement::backward(op, ctx, grads),
        Op::IndexSelect { .. }
        | Op::Gather { .. }
        | Op::ScatterAdd { .. }
        | Op::Scatter { .. }
        | Op::IndexAdd { .. }
        | Op::Embedding { .. } => index::backward(op, ctx, grads),
        Op::Matmul => matmul::backward(ctx, grads),
        Op::Softmax { dim } => activation::softmax_backward(*dim, ctx, grads),
        Op::LogSoftmax { dim } => activation::log_softmax_backward(*dim, ctx, grads),
        Op::LayerNorm {
            n,
            eps,
            has_weight,
            has_bias,
        } => norm::layer_norm_backward(*n, *eps, *has_weight, *has_bias, ctx, grads),
        Op::Conv2d(a) => conv::conv2d_backward(a, ctx, grads),
        Op::Pool2d(a) => conv::pool2d_backward(a, ctx, grads),
        Op::LstmLayer { projected, .. } => rnn::lstm_layer_backward(ctx, grads, *projected),
        Op::CrossEntropy {
            ignore_index,
            label_smoothing,
        } => loss::cross_entropy_rows_backward(*ignore_index, *label_smoothing, ctx, grads),
        Op::Checkpoint(cp) => crate::autograd::checkpoint_backward(cp, ctx, grads),
    }
}

/// Gradient `g` of a broadcast result reduced back to `shape` (sums broadcast dims).
pub(crate) fn reduce_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.rank() - shape.len();
    let mut dims: Vec<isize> = (0..lead as isize).collect();
    for (i, &s) in shape.iter().enumerate() {
        if s == 1 && g.shape()[lead + i] != 1 {
            dims.push((lead + i) as isize);
        }
    }
    // Trailing summed dims first (a reduction over contiguous rows), then the others over
    // the much smaller result: a bias gradient of [N, C, H, W] sums H*W runs, then N.
    let tail = dims
        .iter()
        .rev()
        .zip((0..g.rank() as isize).rev())
        .take_while(|(d, want)| **d == *want)
        .count();
    let r = if dims.is_empty() {
        g.clone()
    } else if tail > 0 && tail < dims.len() {
        let (rest, trailing) = dims.split_at(dims.len() - tail);
        g.sum_dims(trailing, true)?.sum_dims(rest, true)?
    } else {
        g.sum_dims(&dims, true)?
    };
    r.reshape(shape)
}

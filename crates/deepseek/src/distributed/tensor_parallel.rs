//! Megatron-style tensor parallelism: [`ColumnParallelLinear`], [`RowParallelLinear`],
//! [`ParallelMultiheadAttention`] (heads split over ranks), [`VocabParallelEmbedding`] and
//! [`vocab_parallel_cross_entropy`] (vocabulary split over ranks), and the autograd-aware
//! collectives they are built from.
//!
//! The collectives are differentiable without new graph ops: a value computed outside
//! autograd is attached to the input as `value + (x - x.detach())` (exactly `value`, with
//! the identity as its gradient), and a gradient that must be reduced is reduced by a
//! gradient hook ([`Tensor::register_hook`]) inside a [`checkpoint`]ed identity.

use super::{world, ProcessGroup, ReduceOp};
use crate::autograd::checkpoint;
use crate::{Error, Result, Tensor};

mod attention;
mod vocab;
pub use attention::ParallelMultiheadAttention;
pub use vocab::{
    vocab_parallel_cross_entropy, vocab_parallel_embedding, vocab_parallel_lookup,
    VocabParallelEmbedding,
};

fn group(g: Option<&ProcessGroup>) -> Result<ProcessGroup> {
    match g {
        Some(g) => Ok(g.clone()),
        None => world(),
    }
}

/// `value` carrying `x`'s gradient unchanged.
fn attach(value: &Tensor, x: &Tensor) -> Result<Tensor> {
    if !x.requires_grad() || !crate::is_grad_enabled() {
        return Ok(value.clone());
    }
    value.add(&x.sub(&x.detach())?)
}

/// Identity forward; backward all-reduces (sums) the gradient over the group.
///
/// Built on [`checkpoint`]: the recomputation in backward registers a hook on its (live)
/// output, so the hook runs on the incoming gradient however the caller holds the result.
fn sum_grad_over(x: &Tensor, g: &ProcessGroup) -> Result<Tensor> {
    if !x.requires_grad() || !crate::is_grad_enabled() {
        return Ok(x.clone());
    }
    let g = g.clone();
    let out = checkpoint(
        move |xs| {
            let y = xs[0].mul_scalar(1.0)?;
            if y.requires_grad() {
                let g = g.clone();
                y.register_hook(move |grad| {
                    let r = grad.contiguous_copy()?;
                    g.all_reduce(&r, ReduceOp::Sum)?;
                    Ok(Some(r))
                })?;
            }
            Ok(vec![y])
        },
        std::slice::from_ref(x),
        &[],
    )?;
    Ok(out.into_iter().next().expect("one output"))
}

/// Identity forward, all-reduce (sum) of the gradient backward: where a replicated input
/// enters rank-specific computation (Megatron's `f`).
pub fn copy_to_parallel_region(x: &Tensor, g: Option<&ProcessGroup>) -> Result<Tensor> {
    sum_grad_over(x, &group(g)?)
}

/// All-reduce (sum) forward, identity backward: where rank-specific partial results become
/// a replicated value (Megatron's `g`).
pub fn reduce_from_parallel_region(x: &Tensor, g: Option<&ProcessGroup>) -> Result<Tensor> {
    let g = group(g)?;
    let v = x.detach().contiguous_copy()?;
    g.all_reduce(&v, ReduceOp::Sum)?;
    attach(&v, x)
}

/// Concatenates every rank's `x` along the last dim. With `replicated_downstream` (the
/// result is used identically on all ranks) the backward keeps this rank's slice of the
/// gradient; otherwise it first sums the gradient over ranks (a reduce-scatter).
pub fn gather_from_parallel_region(
    x: &Tensor,
    g: Option<&ProcessGroup>,
    replicated_downstream: bool,
) -> Result<Tensor> {
    let g = group(g)?;
    let me = g.rank()?;
    let xc = x.contiguous_copy()?;
    let mut parts = g.all_gather(&xc.detach())?;
    parts[me] = x.clone();
    let last = x.rank() as isize - 1;
    let y = Tensor::cat(&parts, last.max(0))?;
    if replicated_downstream {
        Ok(y)
    } else {
        sum_grad_over(&y, &g)
    }
}

/// This rank's equal slice of `x` along the last dim (its gradient is gathered back).
pub fn scatter_to_parallel_region(x: &Tensor, g: Option<&ProcessGroup>) -> Result<Tensor> {
    let g = group(g)?;
    let (n, me) = (g.size(), g.rank()?);
    let d = *x.shape().last().unwrap_or(&0);
    if !d.is_multiple_of(n) {
        return Err(Error::shape(
            "scatter_to_parallel_region",
            format!(
                "last dim {d} of {:?} does not split over {n} ranks",
                x.shape()
            ),
        ));
    }
    // Each rank's gradient is non-zero only in its own slice: summing reassembles it.
    let y = sum_grad_over(x, &g)?;
    y.narrow(-1, me * (d / n), d / n)
}

/// The rows `[rank * n/size, (rank+1) * n/size)` of `t` along `dim`, as a new leaf.
pub fn shard(t: &Tensor, dim: isize, g: &ProcessGroup) -> Result<Tensor> {
    let (n, me) = (g.size(), g.rank()?);
    let d = t.size(dim)?;
    if !d.is_multiple_of(n) {
        return Err(Error::shape(
            "shard",
            format!(
                "dim {dim} of {:?} ({d}) does not split over {n} ranks",
                t.shape()
            ),
        ));
    }
    let s = t
        .detach()
        .narrow(dim, me * (d / n), d / n)?
        .contiguous_copy()?;
    s.requires_grad_(t.requires_grad())
}

/// `y = x A^T + b` with `A`'s output rows split over ranks: each rank computes its columns of
/// `y` (and, with `gather_output`, all-gathers them into the full `y`).
pub struct ColumnParallelLinear {
    /// This rank's rows of the weight, `[out / size, in]`.
    pub weight: Tensor,
    /// This rank's part of the bias.
    pub bias: Option<Tensor>,
    pub gather_output: bool,
    pub(crate) group: ProcessGroup,
}

impl ColumnParallelLinear {
    /// Splits a full `[out, in]` weight (and `[out]` bias), taking rank 0's values so all
    /// ranks agree.
    pub fn from_full(
        weight: &Tensor,
        bias: Option<&Tensor>,
        gather_output: bool,
        g: Option<&ProcessGroup>,
    ) -> Result<Self> {
        let g = group(g)?;
        let (w, b) = broadcast_full(weight, bias, &g)?;
        Ok(ColumnParallelLinear {
            weight: shard(&w, 0, &g)?,
            bias: b.map(|b| shard(&b, 0, &g)).transpose()?,
            gather_output,
            group: g,
        })
    }
    /// The forward pass on the replicated input `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = copy_to_parallel_region(x, Some(&self.group))?;
        let y = x.linear(&self.weight, self.bias.as_ref())?;
        if self.gather_output {
            gather_from_parallel_region(&y, Some(&self.group), true)
        } else {
            Ok(y)
        }
    }
}

/// `y = x A^T + b` with `A`'s input columns split over ranks: each rank multiplies its slice
/// of `x` (already split with `input_is_parallel`, else sliced here), and the partial
/// products are all-reduced; the bias is added once, after the reduction.
pub struct RowParallelLinear {
    /// This rank's columns of the weight, `[out, in / size]`.
    pub weight: Tensor,
    /// The full bias (replicated).
    pub bias: Option<Tensor>,
    pub input_is_parallel: bool,
    pub(crate) group: ProcessGroup,
}

impl RowParallelLinear {
    /// Splits a full `[out, in]` weight by columns, taking rank 0's values.
    pub fn from_full(
        weight: &Tensor,
        bias: Option<&Tensor>,
        input_is_parallel: bool,
        g: Option<&ProcessGroup>,
    ) -> Result<Self> {
        let g = group(g)?;
        let (w, b) = broadcast_full(weight, bias, &g)?;
        Ok(RowParallelLinear {
            weight: shard(&w, 1, &g)?,
            bias: b
                .map(|b| {
                    b.detach()
                        .contiguous_copy()?
                        .requires_grad_(b.requires_grad())
                })
                .transpose()?,
            input_is_parallel,
            group: g,
        })
    }
    /// The forward pass; `x` is this rank's slice when `input_is_parallel`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if self.input_is_parallel {
            x.clone()
        } else {
            scatter_to_parallel_region(x, Some(&self.group))?
        };
        let y = reduce_from_parallel_region(&x.linear(&self.weight, None)?, Some(&self.group))?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}

fn broadcast_full(
    w: &Tensor,
    b: Option<&Tensor>,
    g: &ProcessGroup,
) -> Result<(Tensor, Option<Tensor>)> {
    let w2 = w.detach().contiguous_copy()?;
    g.broadcast(&w2, g.ranks()[0])?;
    let w2 = w2.requires_grad_(w.requires_grad())?;
    let b2 = match b {
        Some(b) => {
            let c = b.detach().contiguous_copy()?;
            g.broadcast(&c, g.ranks()[0])?;
            Some(c.requires_grad_(b.requires_grad())?)
        }
        None => None,
    };
    Ok((w2, b2))
}

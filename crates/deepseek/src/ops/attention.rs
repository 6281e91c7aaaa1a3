//! Scaled dot-product attention and multi-head attention, composed of matmul and softmax.
//!
//! [`record_attention`] captures the attention probabilities of every
//! [`scaled_dot_product_attention`] call made while it runs (the `forward_with_attentions`
//! methods of the attention layers and pretrained models are built on it). Outside it the
//! probabilities are neither kept nor copied: the only cost is one thread-local flag read.

use crate::error::bail_shape;
use crate::{DType, Error, Result, Tensor};
use std::cell::{Cell, RefCell};

thread_local! {
    /// Number of active [`record_attention`] scopes on this thread.
    static RECORDING: Cell<usize> = const { Cell::new(0) };
    /// One list of captured maps per active scope (innermost last).
    static MAPS: RefCell<Vec<Vec<Tensor>>> = const { RefCell::new(Vec::new()) };
}

/// Opens a recording scope on this thread: until the matching
/// [`end_attention_recording`], attention maps go to it (see [`record_attention`], which
/// pairs the two for a closure; this pair is for callers whose scope is not a closure, such
/// as module hooks).
pub fn begin_attention_recording() {
    MAPS.with(|m| m.borrow_mut().push(Vec::new()));
    RECORDING.with(|r| r.set(r.get() + 1));
}

/// Closes the innermost scope opened by [`begin_attention_recording`] and returns its maps
/// in call order (empty when no scope is open).
pub fn end_attention_recording() -> Vec<Tensor> {
    if RECORDING.with(|r| r.get()) == 0 {
        return Vec::new();
    }
    RECORDING.with(|r| r.set(r.get() - 1));
    MAPS.with(|m| m.borrow_mut().pop()).unwrap_or_default()
}

/// Ends the scope of [`record_attention`] when dropped (also on an error or a panic in `f`).
struct RecordScope {
    ended: bool,
}

impl Drop for RecordScope {
    fn drop(&mut self) {
        if !self.ended {
            end_attention_recording();
        }
    }
}

/// Runs `f` and returns its result with the attention probabilities
/// `softmax(q kᵀ · scale + mask)` of every [`scaled_dot_product_attention`] call it made on
/// this thread (and of the other attention layers that record, such as
/// [`crate::nn::SparseAttention`]), in call order: one tensor [..., L, S] per call (per head
/// for multi-head inputs, e.g. [B, H, T, S]), taken before attention dropout and still part
/// of the autograd graph. Scopes nest; a map goes to the innermost one only.
///
/// ```
/// # use deepseek::prelude::*;
/// let q = Tensor::randn(&[1, 2, 3, 4], DType::F32)?;
/// let (o, maps) = deepseek::nn::functional::record_attention(|| {
///     deepseek::nn::functional::scaled_dot_product_attention(&q, &q, &q, None, 0.0, false, None)
/// })?;
/// assert_eq!(maps.len(), 1);
/// assert_eq!(maps[0].shape(), &[1, 2, 3, 3]);
/// # let _ = o;
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn record_attention<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Vec<Tensor>)> {
    begin_attention_recording();
    let mut scope = RecordScope { ended: false };
    let out = f();
    let maps = end_attention_recording();
    scope.ended = true;
    Ok((out?, maps))
}

/// Whether a [`record_attention`] scope is active on this thread.
pub fn is_recording_attention() -> bool {
    RECORDING.with(|r| r.get() > 0)
}

/// Hands `p` to the innermost [`record_attention`] scope, if any (for attention layers that
/// compute their probabilities without [`scaled_dot_product_attention`]).
pub fn record_attention_map(p: &Tensor) {
    if is_recording_attention() {
        MAPS.with(|m| {
            if let Some(top) = m.borrow_mut().last_mut() {
                top.push(p.clone());
            }
        });
    }
}

/// `softmax(q @ k^T * scale + mask) @ v` (PyTorch's `F.scaled_dot_product_attention`).
/// A bool mask keeps positions where true; a float mask is added. `is_causal` masks
/// key positions after each query (top-left aligned, like PyTorch).
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    attn_mask: Option<&Tensor>,
    dropout_p: f64,
    is_causal: bool,
    scale: Option<f64>,
) -> Result<Tensor> {
    if q.rank() < 2 || k.rank() < 2 || v.rank() < 2 {
        bail_shape!(
            "scaled_dot_product_attention",
            "q, k, v need at least 2 dims, got {:?}, {:?}, {:?}",
            q.shape(),
            k.shape(),
            v.shape()
        );
    }
    let e = q.shape()[q.rank() - 1];
    if k.shape()[k.rank() - 1] != e {
        bail_shape!(
            "scaled_dot_product_attention",
            "query {:?} and key {:?} differ in the last dim",
            q.shape(),
            k.shape()
        );
    }
    if k.shape()[k.rank() - 2] != v.shape()[v.rank() - 2] {
        bail_shape!(
            "scaled_dot_product_attention",
            "key {:?} and value {:?} must have the same sequence length",
            k.shape(),
            v.shape()
        );
    }
    if is_causal && attn_mask.is_some() {
        return Err(Error::value(
            "scaled_dot_product_attention",
            "attn_mask and is_causal cannot both be set",
        ));
    }
    let scale = scale.unwrap_or(1.0 / (e as f64).sqrt());
    let mut s = q.matmul(&k.transpose(-2, -1)?)?.mul_scalar(scale)?;
    let (lq, lk) = (q.shape()[q.rank() - 2], k.shape()[k.rank() - 2]);
    if is_causal {
        // Positions above the diagonal are masked (PyTorch: `ones(L, S).tril(0)` kept). Built
        // on the host: a constant needs no kernel launches.
        let masked: Vec<bool> = (0..lq).flat_map(|i| (0..lk).map(move |j| j > i)).collect();
        let m = Tensor::from_vec(masked, &[lq, lk])?.to_device(s.device())?;
        s = s.masked_fill(&m, f64::NEG_INFINITY)?;
    }
    if let Some(m) = attn_mask {
        s = if m.dtype() == DType::Bool {
            let full = crate::tensor::broadcast_shapes(
                "scaled_dot_product_attention",
                s.shape(),
                m.shape(),
            )?;
            s.expand(&full)?
                .masked_fill(&m.logical_not()?.expand(&full)?, f64::NEG_INFINITY)?
        } else {
            s.add(m)?
        };
    }
    let p = s.softmax(-1)?;
    // The opt-in branch of `record_attention`: a flag read when not recording.
    record_attention_map(&p);
    let p = if dropout_p > 0.0 {
        super::activation::dropout(&p, dropout_p, true)?
    } else {
        p
    };
    p.matmul(v)
}

/// Multi-head attention over sequence-first inputs [L, N, E] (PyTorch's
/// `F.multi_head_attention_forward` with packed in-projection, no extra options).
#[allow(clippy::too_many_arguments)]
pub fn multi_head_attention_forward(
    query: &Tensor,
    key: &Tensor,
    value: &Tensor,
    embed_dim: usize,
    num_heads: usize,
    in_proj_weight: &Tensor,
    in_proj_bias: Option<&Tensor>,
    out_proj_weight: &Tensor,
    out_proj_bias: Option<&Tensor>,
) -> Result<Tensor> {
    mha(
        query,
        key,
        value,
        embed_dim,
        num_heads,
        in_proj_weight,
        in_proj_bias,
        out_proj_weight,
        out_proj_bias,
        None,
        false,
    )
}

/// [`multi_head_attention_forward`] with an attention mask and causal flag (inputs
/// sequence-first, `[L, N, E]`).
#[allow(clippy::too_many_arguments)]
pub fn mha(
    query: &Tensor,
    key: &Tensor,
    value: &Tensor,
    embed_dim: usize,
    num_heads: usize,
    in_proj_weight: &Tensor,
    in_proj_bias: Option<&Tensor>,
    out_proj_weight: &Tensor,
    out_proj_bias: Option<&Tensor>,
    attn_mask: Option<&Tensor>,
    is_causal: bool,
) -> Result<Tensor> {
    mha_layout(
        query,
        key,
        value,
        false,
        embed_dim,
        num_heads,
        in_proj_weight,
        in_proj_bias,
        out_proj_weight,
        out_proj_bias,
        attn_mask,
        is_causal,
    )
}

/// [`mha`] on `[N, L, E]` inputs when `batch_first` (no transposed copies of the inputs or
/// the output: heads are views of the projections in either layout). Self-attention (one
/// tensor as query, key and value) projects with one matmul against the whole
/// `in_proj_weight`, as PyTorch does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mha_layout(
    query: &Tensor,
    key: &Tensor,
    value: &Tensor,
    batch_first: bool,
    embed_dim: usize,
    num_heads: usize,
    in_proj_weight: &Tensor,
    in_proj_bias: Option<&Tensor>,
    out_proj_weight: &Tensor,
    out_proj_bias: Option<&Tensor>,
    attn_mask: Option<&Tensor>,
    is_causal: bool,
) -> Result<Tensor> {
    let layout = if batch_first { "[N, L, " } else { "[L, N, " };
    for (what, t) in [("query", query), ("key", key), ("value", value)] {
        if t.rank() != 3 || t.shape()[2] != embed_dim {
            bail_shape!(
                "multi_head_attention",
                "expected {what} {layout}{embed_dim}], got {:?}",
                t.shape()
            );
        }
    }
    if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
        return Err(Error::value(
            "multi_head_attention",
            format!("embed_dim {embed_dim} must be divisible by num_heads {num_heads}"),
        ));
    }
    // [3 * E, E] for the whole layer; a tensor-parallel rank's share of the heads has fewer
    // rows, and its out_proj_weight then has as many columns ([E, inner]).
    let w = in_proj_weight.shape();
    let o = out_proj_weight.shape();
    let share_fits = o.len() == 2 && w.first().is_some_and(|&r| o[1] * 3 == r);
    if w.len() != 2
        || w[1] != embed_dim
        || w[0] == 0
        || !w[0].is_multiple_of(3)
        || w[0] > 3 * embed_dim
        || (w[0] != 3 * embed_dim && !share_fits)
    {
        bail_shape!(
            "multi_head_attention",
            "in_proj_weight has shape {:?}, expected [{}, {embed_dim}] (or, for a \
             tensor-parallel share of the heads, [3 * inner, {embed_dim}] with an \
             out_proj_weight of inner columns; out_proj_weight has shape {:?})",
            in_proj_weight.shape(),
            3 * embed_dim,
            out_proj_weight.shape()
        );
    }
    mha_heads(
        query,
        key,
        value,
        batch_first,
        num_heads,
        in_proj_weight,
        in_proj_bias,
        attn_mask,
        is_causal,
    )?
    .linear(out_proj_weight, out_proj_bias)
}

/// The attention part of [`mha_layout`], before the output projection: `in_proj_weight` is
/// `[3 * inner, E]` (q, k, v blocks) with `inner` split into `num_heads` heads, and the
/// result is `[L, N, inner]` (`[N, L, inner]` when `batch_first`), the heads side by side.
/// `inner` may be less than `E`: a tensor-parallel rank holds only some heads
/// ([`crate::distributed::tensor_parallel::ParallelMultiheadAttention`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn mha_heads(
    query: &Tensor,
    key: &Tensor,
    value: &Tensor,
    batch_first: bool,
    num_heads: usize,
    in_proj_weight: &Tensor,
    in_proj_bias: Option<&Tensor>,
    attn_mask: Option<&Tensor>,
    is_causal: bool,
) -> Result<Tensor> {
    let rows = in_proj_weight.shape().first().copied().unwrap_or(0);
    let inner = rows / 3;
    if num_heads == 0 || rows != 3 * inner || !inner.is_multiple_of(num_heads) {
        bail_shape!(
            "multi_head_attention",
            "in_proj_weight has shape {:?}: its rows must be 3 blocks of {num_heads} heads",
            in_proj_weight.shape()
        );
    }
    // (sequence, batch) of a [L, N, E] or [N, L, E] tensor.
    let ln = |t: &Tensor| {
        if batch_first {
            (t.shape()[1], t.shape()[0])
        } else {
            (t.shape()[0], t.shape()[1])
        }
    };
    let (l, n) = ln(query);
    let s = ln(key).0;
    let hd = inner / num_heads;
    let (q, k, v) = if query.id() == key.id() && key.id() == value.id() {
        let qkv = query.linear(in_proj_weight, in_proj_bias)?.chunk(3, -1)?;
        (qkv[0].clone(), qkv[1].clone(), qkv[2].clone())
    } else {
        let w = in_proj_weight.chunk(3, 0)?;
        let b: Vec<Option<Tensor>> = match in_proj_bias {
            Some(b) => b.chunk(3, 0)?.into_iter().map(Some).collect(),
            None => vec![None, None, None],
        };
        (
            query.linear(&w[0], b[0].as_ref())?,
            key.linear(&w[1], b[1].as_ref())?,
            value.linear(&w[2], b[2].as_ref())?,
        )
    };
    // -> [N, H, len, hd] (a view)
    let heads = |t: &Tensor, len: usize| {
        if batch_first {
            t.reshape(&[n, len, num_heads, hd])?.permute(&[0, 2, 1, 3])
        } else {
            t.reshape(&[len, n, num_heads, hd])?.permute(&[1, 2, 0, 3])
        }
    };
    let o = scaled_dot_product_attention(
        &heads(&q, l)?,
        &heads(&k, s)?,
        &heads(&v, s)?,
        attn_mask,
        0.0,
        is_causal,
        None,
    )?;
    if batch_first {
        o.permute(&[0, 2, 1, 3])?.reshape(&[n, l, inner])
    } else {
        o.permute(&[2, 0, 1, 3])?.reshape(&[l, n, inner])
    }
}

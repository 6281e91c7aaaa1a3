//! Scaled dot-product attention and multi-head attention, composed of matmul and softmax.

use crate::error::bail_shape;
use crate::{DType, Error, Result, Tensor};

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
        let m = Tensor::ones(&[lq, lk], DType::Bool)?.tril(0)?;
        s = s.masked_fill(&m.logical_not()?, f64::NEG_INFINITY)?;
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

/// [`multi_head_attention_forward`] with an attention mask and causal flag.
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
    if query.rank() != 3 || query.shape()[2] != embed_dim {
        bail_shape!(
            "multi_head_attention",
            "expected query [L, N, {embed_dim}], got {:?}",
            query.shape()
        );
    }
    if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
        return Err(Error::value(
            "multi_head_attention",
            format!("embed_dim {embed_dim} must be divisible by num_heads {num_heads}"),
        ));
    }
    if in_proj_weight.shape() != [3 * embed_dim, embed_dim] {
        bail_shape!(
            "multi_head_attention",
            "in_proj_weight has shape {:?}, expected [{}, {embed_dim}]",
            in_proj_weight.shape(),
            3 * embed_dim
        );
    }
    let (l, n) = (query.shape()[0], query.shape()[1]);
    let s = key.shape()[0];
    let hd = embed_dim / num_heads;
    let w = in_proj_weight.chunk(3, 0)?;
    let b: Vec<Option<Tensor>> = match in_proj_bias {
        Some(b) => b.chunk(3, 0)?.into_iter().map(Some).collect(),
        None => vec![None, None, None],
    };
    let q = query.linear(&w[0], b[0].as_ref())?;
    let k = key.linear(&w[1], b[1].as_ref())?;
    let v = value.linear(&w[2], b[2].as_ref())?;
    // [L, N, E] -> [N, H, L, hd]
    let heads =
        |t: &Tensor, len: usize| t.reshape(&[len, n, num_heads, hd])?.permute(&[1, 2, 0, 3]);
    let o = scaled_dot_product_attention(
        &heads(&q, l)?,
        &heads(&k, s)?,
        &heads(&v, s)?,
        attn_mask,
        0.0,
        is_causal,
        None,
    )?;
    let o = o.permute(&[2, 0, 1, 3])?.reshape(&[l, n, embed_dim])?;
    o.linear(out_proj_weight, out_proj_bias)
}

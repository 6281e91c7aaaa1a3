//! Attention maps: the `forward_with_attentions` methods of the attention layers and
//! transformer blocks, which return each head's attention probabilities next to the usual
//! output. They run the ordinary forward inside
//! [`record_attention`](crate::nn::functional::record_attention), so the output is the
//! normal path's, bit for bit, and the normal `forward` keeps nothing.
//!
//! Every map is `softmax(q kᵀ · scale + mask)` of one attention call, [B, H, L, S] (batch,
//! head, query, key), taken before attention dropout.

use super::layers::{MultiheadAttention, TransformerEncoderLayer};
use super::llm::{GroupedQueryAttention, KvCache};
use super::transformer::{
    DecoderMasks, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
};
use crate::ops::attention::record_attention;
use crate::{Error, Result, Tensor};

/// The one map a single attention call recorded.
fn single(op: &str, maps: Vec<Tensor>) -> Result<Tensor> {
    let n = maps.len();
    let mut it = maps.into_iter();
    match (it.next(), n) {
        (Some(m), 1) => Ok(m),
        _ => Err(Error::Msg(format!(
            "{op}: expected one attention map from the forward pass, got {n}"
        ))),
    }
}

/// `n` maps, or an error naming `op` (a layer that did not attend as expected).
pub(crate) fn expect_maps(op: &str, maps: Vec<Tensor>, n: usize) -> Result<Vec<Tensor>> {
    if maps.len() != n {
        return Err(Error::Msg(format!(
            "{op}: expected {n} attention maps from the forward pass, got {}",
            maps.len()
        )));
    }
    Ok(maps)
}

impl MultiheadAttention {
    /// [`Self::forward_qkv`] and the per-head weights [N, H, L, S] (PyTorch's
    /// `need_weights=True, average_attn_weights=False`).
    pub fn forward_with_attentions(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        attn_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (o, maps) = record_attention(|| self.forward_qkv(q, k, v, attn_mask, is_causal))?;
        Ok((o, single("MultiheadAttention", maps)?))
    }
}

impl GroupedQueryAttention {
    /// [`Self::forward_cached`] and the weights [B, num_heads, T, S] (S counts the cached
    /// positions too; the key/value heads are shared as in the forward pass).
    pub fn forward_with_attentions(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        causal: bool,
        cache: Option<&mut KvCache>,
    ) -> Result<(Tensor, Tensor)> {
        let (o, maps) = record_attention(|| self.forward_cached(x, mask, causal, cache))?;
        Ok((o, single("GroupedQueryAttention", maps)?))
    }
}

impl TransformerEncoderLayer {
    /// [`Self::forward_with`] and the self-attention weights [N, H, L, L].
    pub fn forward_with_attentions(
        &self,
        src: &Tensor,
        src_mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (o, maps) =
            record_attention(|| self.forward_with(src, src_mask, src_key_padding_mask, is_causal))?;
        Ok((o, single("TransformerEncoderLayer", maps)?))
    }
}

impl TransformerEncoder {
    /// [`Self::forward_with`] and one self-attention map [N, H, L, L] per layer.
    pub fn forward_with_attentions(
        &self,
        src: &Tensor,
        mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (o, maps) =
            record_attention(|| self.forward_with(src, mask, src_key_padding_mask, is_causal))?;
        Ok((
            o,
            expect_maps("TransformerEncoder", maps, self.layers.len())?,
        ))
    }
}

impl TransformerDecoderLayer {
    /// [`Self::forward_with`], the self-attention weights [N, H, T, T] and the
    /// cross-attention weights over the memory [N, H, T, S].
    pub fn forward_with_attentions(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        m: DecoderMasks<'_>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (o, maps) = record_attention(|| self.forward_with(tgt, memory, m))?;
        let mut maps = expect_maps("TransformerDecoderLayer", maps, 2)?;
        let c = maps.pop();
        match (maps.pop(), c) {
            (Some(s), Some(c)) => Ok((o, s, c)),
            _ => Err(Error::Msg(
                "TransformerDecoderLayer: missing attention maps".into(),
            )),
        }
    }
}

impl TransformerDecoder {
    /// [`Self::forward_with`] and, per layer, `(self-attention [N, H, T, T],
    /// cross-attention [N, H, T, S])`.
    pub fn forward_with_attentions(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        m: DecoderMasks<'_>,
    ) -> Result<(Tensor, Vec<(Tensor, Tensor)>)> {
        let (o, maps) = record_attention(|| self.forward_with(tgt, memory, m))?;
        let maps = expect_maps("TransformerDecoder", maps, 2 * self.layers.len())?;
        let pairs = maps
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect();
        Ok((o, pairs))
    }
}

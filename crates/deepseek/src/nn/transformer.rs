//! PyTorch's transformer stacks: `nn.TransformerEncoder`, `nn.TransformerDecoderLayer`,
//! `nn.TransformerDecoder` and `nn.Transformer`, with PyTorch's sub-module names (so their
//! `state_dict`s load unchanged), options (`norm_first`, activation, `batch_first`) and
//! masks.
//!
//! Masks follow PyTorch: an attention mask is [L, S] (or [N*H, L, S]) and a key padding
//! mask is [N, S]; a bool (or uint8) mask is true where attention is **not** allowed, a
//! float mask is added to the scores.

use super::layers::{
    Dropout, Forward, LayerNorm, Linear, MultiheadAttention, TransformerEncoderLayer,
};
use crate::error::bail_shape;
use crate::{DType, Result, Tensor};

/// PyTorch's `nn.Transformer.generate_square_subsequent_mask`: [n, n] float, `-inf` above
/// the diagonal, 0 elsewhere.
pub fn generate_square_subsequent_mask(n: usize) -> Result<Tensor> {
    let mut m = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            m[i * n + j] = f32::NEG_INFINITY;
        }
    }
    Tensor::from_vec(m, &[n, n])
}

/// A PyTorch-style mask (bool/uint8 true = masked, or additive float) as an additive float
/// tensor of `dtype`.
fn additive(m: &Tensor, dtype: DType) -> Result<Tensor> {
    match m.dtype() {
        DType::Bool | DType::U8 | DType::I64 | DType::I32 => {
            let b = m.to_dtype(DType::Bool)?;
            Tensor::zeros(m.shape(), dtype)?.masked_fill(&b, f64::NEG_INFINITY)
        }
        _ => m.to_dtype(dtype),
    }
}

/// One additive mask broadcastable to [N, H, L, S] from an attention mask, a key padding
/// mask and the causal flag, or None when there is nothing to mask.
#[allow(clippy::too_many_arguments)]
pub fn merge_masks(
    attn_mask: Option<&Tensor>,
    key_padding_mask: Option<&Tensor>,
    is_causal: bool,
    n: usize,
    num_heads: usize,
    l: usize,
    s: usize,
    dtype: DType,
) -> Result<Option<Tensor>> {
    let mut m = match attn_mask {
        Some(a) => {
            let a = additive(a, dtype)?;
            match a.rank() {
                2 => Some(a),
                3 => Some(a.reshape(&[n, num_heads, l, s])?),
                _ => bail_shape!(
                    "Transformer",
                    "attn_mask must be [L, S] or [N*H, L, S], got {:?}",
                    a.shape()
                ),
            }
        }
        None if is_causal => Some(generate_square_subsequent_mask(l)?.to_dtype(dtype)?),
        None => None,
    };
    if let Some(k) = key_padding_mask {
        if k.shape() != [n, s] {
            bail_shape!(
                "Transformer",
                "key_padding_mask must be [N, S] = [{n}, {s}], got {:?}",
                k.shape()
            );
        }
        let k = additive(k, dtype)?.reshape(&[n, 1, 1, s])?;
        m = Some(match m {
            Some(m) => m.add(&k)?,
            None => k,
        });
    }
    Ok(m)
}

/// [batch, seq] and sequence length of a layer input, given `batch_first`.
fn dims(x: &Tensor, batch_first: bool) -> Result<(usize, usize)> {
    if x.rank() != 3 {
        bail_shape!("Transformer", "expected a 3-D input, got {:?}", x.shape());
    }
    Ok(if batch_first {
        (x.shape()[0], x.shape()[1])
    } else {
        (x.shape()[1], x.shape()[0])
    })
}

fn attend(
    a: &MultiheadAttention,
    q: &Tensor,
    kv: &Tensor,
    mask: Option<&Tensor>,
    kpm: Option<&Tensor>,
    causal: bool,
) -> Result<Tensor> {
    let (n, l) = dims(q, a.batch_first)?;
    let (_, s) = dims(kv, a.batch_first)?;
    let m = merge_masks(mask, kpm, causal, n, a.num_heads, l, s, q.dtype())?;
    a.forward_qkv(q, kv, kv, m.as_ref(), false)
}

fn feed_forward(
    x: &Tensor,
    l1: &Linear,
    drop: &Dropout,
    l2: &Linear,
    gelu: bool,
) -> Result<Tensor> {
    let h = l1.forward(x)?;
    let h = if gelu { h.gelu("none")? } else { h.relu()? };
    l2.forward(&drop.forward(&h)?)
}

impl TransformerEncoderLayer {
    /// PyTorch's `forward(src, src_mask, src_key_padding_mask, is_causal)` with PyTorch's
    /// mask conventions (see the [module docs](self)).
    pub fn forward_with(
        &self,
        src: &Tensor,
        src_mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<Tensor> {
        let sa = |x: &Tensor| -> Result<Tensor> {
            self.dropout1.forward(&attend(
                &self.self_attn,
                x,
                x,
                src_mask,
                src_key_padding_mask,
                is_causal,
            )?)
        };
        let ff = |x: &Tensor| -> Result<Tensor> {
            self.dropout2.forward(&feed_forward(
                x,
                &self.linear1,
                &self.dropout,
                &self.linear2,
                self.gelu,
            )?)
        };
        if self.norm_first {
            let x = src.add(&sa(&self.norm1.forward(src)?)?)?;
            x.add(&ff(&self.norm2.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&src.add(&sa(src)?)?)?;
            self.norm2.forward(&x.add(&ff(&x)?)?)
        }
    }
}

/// A stack of encoder layers with an optional final norm (PyTorch's `nn.TransformerEncoder`:
/// `layers.{i}.…`, `norm.…`).
#[derive(super::Module)]
pub struct TransformerEncoder {
    pub layers: Vec<TransformerEncoderLayer>,
    pub norm: Option<LayerNorm>,
}

impl TransformerEncoder {
    /// `num_layers` layers made by `make_layer` (each with its own parameters).
    pub fn new(
        mut make_layer: impl FnMut() -> Result<TransformerEncoderLayer>,
        num_layers: usize,
        norm: Option<LayerNorm>,
    ) -> Result<TransformerEncoder> {
        let layers = (0..num_layers)
            .map(|_| make_layer())
            .collect::<Result<_>>()?;
        Ok(TransformerEncoder { layers, norm })
    }
    /// PyTorch's `forward(src, mask, src_key_padding_mask, is_causal)`.
    pub fn forward_with(
        &self,
        src: &Tensor,
        mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<Tensor> {
        let mut x = src.clone();
        for l in &self.layers {
            x = l.forward_with(&x, mask, src_key_padding_mask, is_causal)?;
        }
        match &self.norm {
            Some(n) => n.forward(&x),
            None => Ok(x),
        }
    }
}
impl Forward for TransformerEncoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, None, false)
    }
}

/// Masks of a decoder call (PyTorch's `tgt_mask`, `memory_mask`, `tgt_key_padding_mask`,
/// `memory_key_padding_mask`, `tgt_is_causal`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DecoderMasks<'a> {
    pub tgt_mask: Option<&'a Tensor>,
    pub memory_mask: Option<&'a Tensor>,
    pub tgt_key_padding_mask: Option<&'a Tensor>,
    pub memory_key_padding_mask: Option<&'a Tensor>,
    pub tgt_is_causal: bool,
}

/// PyTorch's `nn.TransformerDecoderLayer`: self-attention, cross-attention over the
/// encoder's memory and a feed-forward block, each with residual, dropout and layer norm
/// (post-norm, or pre-norm with `norm_first`); activation ReLU or GELU.
#[derive(super::Module)]
pub struct TransformerDecoderLayer {
    pub self_attn: MultiheadAttention,
    pub multihead_attn: MultiheadAttention,
    pub linear1: Linear,
    pub dropout: Dropout,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    pub dropout1: Dropout,
    pub dropout2: Dropout,
    pub dropout3: Dropout,
    pub norm_first: bool,
    pub gelu: bool,
}

impl TransformerDecoderLayer {
    /// Same arguments as PyTorch's constructor (activation: `gelu` true for GELU, else ReLU).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        d_model: usize,
        nhead: usize,
        dim_feedforward: usize,
        dropout: f64,
        gelu: bool,
        layer_norm_eps: f64,
        batch_first: bool,
        norm_first: bool,
    ) -> Result<Self> {
        Ok(TransformerDecoderLayer {
            self_attn: MultiheadAttention::new(d_model, nhead, true, batch_first)?,
            multihead_attn: MultiheadAttention::new(d_model, nhead, true, batch_first)?,
            linear1: Linear::new(d_model, dim_feedforward, true)?,
            dropout: Dropout::new(dropout),
            linear2: Linear::new(dim_feedforward, d_model, true)?,
            norm1: LayerNorm::new(&[d_model], layer_norm_eps, true)?,
            norm2: LayerNorm::new(&[d_model], layer_norm_eps, true)?,
            norm3: LayerNorm::new(&[d_model], layer_norm_eps, true)?,
            dropout1: Dropout::new(dropout),
            dropout2: Dropout::new(dropout),
            dropout3: Dropout::new(dropout),
            norm_first,
            gelu,
        })
    }
    /// PyTorch's `forward(tgt, memory, ...masks)`.
    pub fn forward_with(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        m: DecoderMasks<'_>,
    ) -> Result<Tensor> {
        let sa = |x: &Tensor| -> Result<Tensor> {
            self.dropout1.forward(&attend(
                &self.self_attn,
                x,
                x,
                m.tgt_mask,
                m.tgt_key_padding_mask,
                m.tgt_is_causal,
            )?)
        };
        let ca = |x: &Tensor| -> Result<Tensor> {
            self.dropout2.forward(&attend(
                &self.multihead_attn,
                x,
                memory,
                m.memory_mask,
                m.memory_key_padding_mask,
                false,
            )?)
        };
        let ff = |x: &Tensor| -> Result<Tensor> {
            self.dropout3.forward(&feed_forward(
                x,
                &self.linear1,
                &self.dropout,
                &self.linear2,
                self.gelu,
            )?)
        };
        if self.norm_first {
            let x = tgt.add(&sa(&self.norm1.forward(tgt)?)?)?;
            let x = x.add(&ca(&self.norm2.forward(&x)?)?)?;
            x.add(&ff(&self.norm3.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&tgt.add(&sa(tgt)?)?)?;
            let x = self.norm2.forward(&x.add(&ca(&x)?)?)?;
            self.norm3.forward(&x.add(&ff(&x)?)?)
        }
    }
}

/// A stack of decoder layers with an optional final norm (PyTorch's `nn.TransformerDecoder`).
#[derive(super::Module)]
pub struct TransformerDecoder {
    pub layers: Vec<TransformerDecoderLayer>,
    pub norm: Option<LayerNorm>,
}

impl TransformerDecoder {
    /// `num_layers` layers made by `make_layer`.
    pub fn new(
        mut make_layer: impl FnMut() -> Result<TransformerDecoderLayer>,
        num_layers: usize,
        norm: Option<LayerNorm>,
    ) -> Result<TransformerDecoder> {
        let layers = (0..num_layers)
            .map(|_| make_layer())
            .collect::<Result<_>>()?;
        Ok(TransformerDecoder { layers, norm })
    }
    /// PyTorch's `forward(tgt, memory, ...masks)`.
    pub fn forward_with(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        m: DecoderMasks<'_>,
    ) -> Result<Tensor> {
        let mut x = tgt.clone();
        for l in &self.layers {
            x = l.forward_with(&x, memory, m)?;
        }
        match &self.norm {
            Some(n) => n.forward(&x),
            None => Ok(x),
        }
    }
}

/// Options of [`Transformer::new`], PyTorch's defaults.
#[derive(Debug, Clone)]
pub struct TransformerConfig {
    pub d_model: usize,
    pub nhead: usize,
    pub num_encoder_layers: usize,
    pub num_decoder_layers: usize,
    pub dim_feedforward: usize,
    pub dropout: f64,
    /// GELU when true, ReLU otherwise.
    pub gelu: bool,
    pub layer_norm_eps: f64,
    pub batch_first: bool,
    pub norm_first: bool,
}
impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            d_model: 512,
            nhead: 8,
            num_encoder_layers: 6,
            num_decoder_layers: 6,
            dim_feedforward: 2048,
            dropout: 0.1,
            gelu: false,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
        }
    }
}

/// PyTorch's `nn.Transformer`: an encoder and a decoder, each with a final layer norm.
#[derive(super::Module)]
pub struct Transformer {
    pub encoder: TransformerEncoder,
    pub decoder: TransformerDecoder,
    pub d_model: usize,
    pub nhead: usize,
    pub batch_first: bool,
}

impl Transformer {
    /// A model with the given options.
    pub fn new(c: &TransformerConfig) -> Result<Transformer> {
        let norm = || LayerNorm::new(&[c.d_model], c.layer_norm_eps, true);
        let encoder = TransformerEncoder::new(
            || {
                TransformerEncoderLayer::new(
                    c.d_model,
                    c.nhead,
                    c.dim_feedforward,
                    c.dropout,
                    c.gelu,
                    c.layer_norm_eps,
                    c.batch_first,
                    c.norm_first,
                )
            },
            c.num_encoder_layers,
            Some(norm()?),
        )?;
        let decoder = TransformerDecoder::new(
            || {
                TransformerDecoderLayer::new(
                    c.d_model,
                    c.nhead,
                    c.dim_feedforward,
                    c.dropout,
                    c.gelu,
                    c.layer_norm_eps,
                    c.batch_first,
                    c.norm_first,
                )
            },
            c.num_decoder_layers,
            Some(norm()?),
        )?;
        Ok(Transformer {
            encoder,
            decoder,
            d_model: c.d_model,
            nhead: c.nhead,
            batch_first: c.batch_first,
        })
    }
    /// PyTorch's `forward(src, tgt, src_mask, tgt_mask, memory_mask, src_key_padding_mask,
    /// tgt_key_padding_mask, memory_key_padding_mask, src_is_causal, tgt_is_causal)`; the
    /// decoder masks are in `m`.
    pub fn forward_with(
        &self,
        src: &Tensor,
        tgt: &Tensor,
        src_mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
        m: DecoderMasks<'_>,
    ) -> Result<Tensor> {
        let (n_src, _) = dims(src, self.batch_first)?;
        let (n_tgt, _) = dims(tgt, self.batch_first)?;
        if n_src != n_tgt {
            bail_shape!(
                "Transformer",
                "the batch number of src ({n_src}) and tgt ({n_tgt}) must be equal"
            );
        }
        let memory = self
            .encoder
            .forward_with(src, src_mask, src_key_padding_mask, false)?;
        self.decoder.forward_with(tgt, &memory, m)
    }
}

//! BERT (`transformers`' `BertModel`): embeddings, post-norm encoder layers, optional pooler.
//! Parameter names are Hugging Face's (`embeddings.word_embeddings.weight`,
//! `encoder.layer.0.attention.self.query.weight`, ...).

use super::{activation, check_activation, ids_rows, keep_rows, Config, Weights};
use crate::nn::attention_maps::expect_maps;
use crate::nn::{Embedding, Forward, LayerNorm, Linear};
use crate::{DType, Result, Tensor};

/// Token, position and token-type embeddings followed by a layer norm.
#[derive(crate::nn::Module)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    #[module(name = "LayerNorm")]
    pub layer_norm: LayerNorm,
}

/// `attention.self`: the query, key and value projections.
#[derive(crate::nn::Module)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
}

/// A dense layer followed by residual + layer norm (`attention.output`, `output`).
#[derive(crate::nn::Module)]
pub struct BertOutput {
    pub dense: Linear,
    #[module(name = "LayerNorm")]
    pub layer_norm: LayerNorm,
}

/// `attention`: self-attention and its output block.
#[derive(crate::nn::Module)]
pub struct BertAttention {
    #[module(name = "self")]
    pub self_attn: BertSelfAttention,
    pub output: BertOutput,
}

/// `intermediate`: the first feed-forward layer.
#[derive(crate::nn::Module)]
pub struct BertIntermediate {
    pub dense: Linear,
}

/// One encoder layer.
#[derive(crate::nn::Module)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    pub output: BertOutput,
}

/// `encoder`: the layers.
#[derive(crate::nn::Module)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

/// `pooler`: tanh(dense(first token)).
#[derive(crate::nn::Module)]
pub struct BertPooler {
    pub dense: Linear,
}

/// `BertModel`.
#[derive(crate::nn::Module)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
    pub pooler: Option<BertPooler>,
    pub num_heads: usize,
    pub hidden_size: usize,
    pub vocab_size: usize,
    pub max_positions: usize,
    #[module(skip)]
    pub hidden_act: String,
}

impl BertModel {
    /// Builds the model from a config and a checkpoint (names with or without `bert.`).
    pub fn load(cfg: &Config, w: &mut Weights) -> Result<BertModel> {
        w.strip_prefix_if_present("bert.");
        let h = cfg.usize(&["hidden_size"])?;
        let nl = cfg.usize(&["num_hidden_layers"])?;
        let nh = cfg.usize(&["num_attention_heads"])?;
        let inter = cfg.usize(&["intermediate_size"])?;
        let vocab = cfg.usize(&["vocab_size"])?;
        let maxp = cfg.usize_or(&["max_position_embeddings"], 512);
        let types = cfg.usize_or(&["type_vocab_size"], 2);
        let eps = cfg.f64_or("layer_norm_eps", 1e-12);
        if nh == 0 || h % nh != 0 {
            return Err(crate::Error::io(
                &cfg.path,
                format!("hidden_size {h} is not divisible by num_attention_heads {nh}"),
            ));
        }
        let embeddings = BertEmbeddings {
            word_embeddings: w.embedding("embeddings.word_embeddings", vocab, h)?,
            position_embeddings: w.embedding("embeddings.position_embeddings", maxp, h)?,
            token_type_embeddings: w.embedding("embeddings.token_type_embeddings", types, h)?,
            layer_norm: w.layer_norm("embeddings.LayerNorm", h, eps)?,
        };
        // Not `with_capacity(nl)`: nl comes from the file and is trusted only as far as
        // layers load (a missing weight ends the loop with an error; fuzz/ found a GGUF
        // block_count of 2^32 asking for 5 GB here).
        let mut layer = Vec::new();
        for i in 0..nl {
            let p = format!("encoder.layer.{i}");
            layer.push(BertLayer {
                attention: BertAttention {
                    self_attn: BertSelfAttention {
                        query: w.linear(&format!("{p}.attention.self.query"), h, h, true)?,
                        key: w.linear(&format!("{p}.attention.self.key"), h, h, true)?,
                        value: w.linear(&format!("{p}.attention.self.value"), h, h, true)?,
                    },
                    output: BertOutput {
                        dense: w.linear(&format!("{p}.attention.output.dense"), h, h, true)?,
                        layer_norm: w.layer_norm(
                            &format!("{p}.attention.output.LayerNorm"),
                            h,
                            eps,
                        )?,
                    },
                },
                intermediate: BertIntermediate {
                    dense: w.linear(&format!("{p}.intermediate.dense"), h, inter, true)?,
                },
                output: BertOutput {
                    dense: w.linear(&format!("{p}.output.dense"), inter, h, true)?,
                    layer_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
                },
            });
        }
        let pooler = if w.contains("pooler.dense.weight") {
            Some(BertPooler {
                dense: w.linear("pooler.dense", h, h, true)?,
            })
        } else {
            None
        };
        Ok(BertModel {
            embeddings,
            encoder: BertEncoder { layer },
            pooler,
            num_heads: nh,
            hidden_size: h,
            vocab_size: vocab,
            max_positions: maxp,
            hidden_act: check_activation(cfg, cfg.str_or("hidden_act", "gelu"))?,
        })
    }

    /// `(last_hidden_state [B, T, H], pooler_output [B, H] when the model has a pooler)`.
    /// `attention_mask` [B, T] is 1 for tokens and 0 for padding; `token_type_ids` default
    /// to zeros.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (b, t) = ids_rows(input_ids, self.vocab_size, "BertModel")?;
        if t > self.max_positions {
            return Err(crate::Error::value(
                "BertModel",
                format!(
                    "sequence of {t} tokens is longer than max_position_embeddings {}",
                    self.max_positions
                ),
            ));
        }
        let keep = keep_rows(attention_mask, b, t, "BertModel")?;
        let e = &self.embeddings;
        let ids = input_ids.to_dtype(DType::I64)?;
        let pos = Tensor::arange(0.0, t as f64, 1.0, DType::I64)?;
        let tt = match token_type_ids {
            Some(x) => x.to_dtype(DType::I64)?,
            None => Tensor::zeros(&[b, t], DType::I64)?,
        };
        let x = e
            .word_embeddings
            .forward(&ids)?
            .add(&e.position_embeddings.forward(&pos)?)?
            .add(&e.token_type_embeddings.forward(&tt)?)?;
        let mut x = e.layer_norm.forward(&x)?;
        let mask = match &keep {
            Some(k) => Some(crate::nn::llm::attention_mask(
                b,
                1,
                t,
                0,
                false,
                Some(k),
                f32::MIN,
            )?),
            None => None,
        };
        let (nh, hd) = (self.num_heads, self.hidden_size / self.num_heads);
        let heads = |y: Tensor| y.reshape(&[b, t, nh, hd])?.transpose(1, 2);
        for l in &self.encoder.layer {
            let a = &l.attention.self_attn;
            let ctx = crate::nn::functional::scaled_dot_product_attention(
                &heads(a.query.forward(&x)?)?,
                &heads(a.key.forward(&x)?)?,
                &heads(a.value.forward(&x)?)?,
                mask.as_ref(),
                0.0,
                false,
                None,
            )?
            .transpose(1, 2)?
            .reshape(&[b, t, self.hidden_size])?;
            let o = &l.attention.output;
            let h1 = o.layer_norm.forward(&o.dense.forward(&ctx)?.add(&x)?)?;
            let f = activation(&self.hidden_act, &l.intermediate.dense.forward(&h1)?)?;
            x = l
                .output
                .layer_norm
                .forward(&l.output.dense.forward(&f)?.add(&h1)?)?;
        }
        let pooled = match &self.pooler {
            Some(p) => Some(p.dense.forward(&x.select(1, 0)?)?.tanh()?),
            None => None,
        };
        Ok((x, pooled))
    }
}

impl BertModel {
    /// [`Self::forward`] and one attention map [B, num_heads, T, T] per layer, like
    /// `transformers`' `output_attentions=True` (padding keys get weight 0).
    pub fn forward_with_attentions(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>, Vec<Tensor>)> {
        let ((h, p), maps) = crate::nn::functional::record_attention(|| {
            self.forward(input_ids, attention_mask, token_type_ids)
        })?;
        let maps = expect_maps("BertModel", maps, self.encoder.layer.len())?;
        Ok((h, p, maps))
    }
}

/// Mean of `hidden` [B, T, H] over the tokens where `attention_mask` [B, T] is 1, then L2
/// normalised (sentence-transformers' mean pooling + `Normalize`).
pub fn mean_pool_normalize(hidden: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
    let m = attention_mask.to_dtype(hidden.dtype())?.unsqueeze(-1)?;
    let s = hidden.mul(&m)?.sum_dim(&[1], false)?;
    let n = m.sum_dim(&[1], false)?.clamp(Some(1e-9), None)?;
    let e = s.div(&n)?;
    let norm = e
        .mul(&e)?
        .sum_dim(&[1], true)?
        .sqrt()?
        .clamp(Some(1e-12), None)?;
    e.div(&norm)
}

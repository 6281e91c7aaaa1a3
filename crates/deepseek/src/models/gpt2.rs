//! GPT-2 (`transformers`' `GPT2LMHeadModel`): learned positions, pre-norm blocks with
//! `Conv1D` projections (weights stored [in, out]), tanh-GELU, tied output embedding.

use super::generate::CausalLm;
use super::{activation, check_activation, ids_rows, keep_rows, new_cache, Config, Weights};
use crate::nn::llm::attention_mask as build_mask;
use crate::nn::{Embedding, Forward, KvCache, LayerNorm};
use crate::{DType, Error, Result, Tensor};

/// GPT-2's `Conv1D`: `x @ weight + bias` with `weight` [in, out].
#[derive(crate::nn::Module)]
pub struct Conv1D {
    pub weight: Tensor,
    pub bias: Tensor,
}
impl Conv1D {
    fn load(w: &mut Weights, name: &str, inp: usize, out: usize) -> Result<Conv1D> {
        Ok(Conv1D {
            weight: w.take(&format!("{name}.weight"), &[inp, out])?,
            bias: w.take(&format!("{name}.bias"), &[out])?,
        })
    }
}
impl Forward for Conv1D {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?.add(&self.bias)
    }
}

/// `attn`: packed query/key/value projection and output projection.
#[derive(crate::nn::Module)]
pub struct Gpt2Attention {
    pub c_attn: Conv1D,
    pub c_proj: Conv1D,
}

/// `mlp`: the feed-forward block.
#[derive(crate::nn::Module)]
pub struct Gpt2Mlp {
    pub c_fc: Conv1D,
    pub c_proj: Conv1D,
}

/// One block `h.{i}`.
#[derive(crate::nn::Module)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    pub attn: Gpt2Attention,
    pub ln_2: LayerNorm,
    pub mlp: Gpt2Mlp,
}

/// `transformer`: embeddings, blocks and the final norm.
#[derive(crate::nn::Module)]
pub struct Gpt2Model {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub h: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
}

/// `GPT2LMHeadModel`; the output projection is `wte` (tied) unless the checkpoint has its
/// own `lm_head.weight`.
#[derive(crate::nn::Module)]
pub struct Gpt2LMHeadModel {
    pub transformer: Gpt2Model,
    pub lm_head: Option<crate::nn::Linear>,
    pub n_head: usize,
    pub n_embd: usize,
    pub vocab_size: usize,
    pub n_positions: usize,
    #[module(skip)]
    pub act: String,
}

impl Gpt2LMHeadModel {
    /// Builds the model from a config and a checkpoint (names with or without
    /// `transformer.`).
    pub fn load(cfg: &Config, w: &mut Weights) -> Result<Gpt2LMHeadModel> {
        let e = cfg.usize(&["n_embd", "hidden_size"])?;
        let nl = cfg.usize(&["n_layer", "num_hidden_layers"])?;
        let nh = cfg.usize(&["n_head", "num_attention_heads"])?;
        let vocab = cfg.usize(&["vocab_size"])?;
        let npos = cfg.usize_or(&["n_positions", "max_position_embeddings"], 1024);
        let inner = cfg.usize_or(&["n_inner"], 4 * e);
        let eps = cfg.f64_or("layer_norm_epsilon", 1e-5);
        if nh == 0 || e % nh != 0 {
            return Err(Error::io(
                &cfg.path,
                format!("n_embd {e} is not divisible by n_head {nh}"),
            ));
        }
        let act = check_activation(cfg, cfg.str_or("activation_function", "gelu_new"))?;
        let lm_head = if w.contains("lm_head.weight") && !cfg.bool_or("tie_word_embeddings", true) {
            Some(w.linear("lm_head", e, vocab, false)?)
        } else {
            None
        };
        w.strip_prefix_if_present("transformer.");
        // Not `with_capacity(nl)`: nl comes from the file and is trusted only as far as
        // layers load (a missing weight ends the loop with an error; fuzz/ found a GGUF
        // block_count of 2^32 asking for 5 GB here).
        let mut h = Vec::new();
        for i in 0..nl {
            let p = format!("h.{i}");
            h.push(Gpt2Block {
                ln_1: w.layer_norm(&format!("{p}.ln_1"), e, eps)?,
                attn: Gpt2Attention {
                    c_attn: Conv1D::load(w, &format!("{p}.attn.c_attn"), e, 3 * e)?,
                    c_proj: Conv1D::load(w, &format!("{p}.attn.c_proj"), e, e)?,
                },
                ln_2: w.layer_norm(&format!("{p}.ln_2"), e, eps)?,
                mlp: Gpt2Mlp {
                    c_fc: Conv1D::load(w, &format!("{p}.mlp.c_fc"), e, inner)?,
                    c_proj: Conv1D::load(w, &format!("{p}.mlp.c_proj"), inner, e)?,
                },
            });
        }
        let transformer = Gpt2Model {
            wte: w.embedding("wte", vocab, e)?,
            wpe: w.embedding("wpe", npos, e)?,
            h,
            ln_f: w.layer_norm("ln_f", e, eps)?,
        };
        Ok(Gpt2LMHeadModel {
            transformer,
            lm_head,
            n_head: nh,
            n_embd: e,
            vocab_size: vocab,
            n_positions: npos,
            act,
        })
    }

    /// Logits [B, T, vocab] of a whole batch (`attention_mask` [B, T]: 1 token, 0 padding;
    /// right padding).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let mut cache = new_cache(self.transformer.h.len());
        self.forward_cached(input_ids, attention_mask, &mut cache)
    }

    /// [`Self::forward`] and one attention map [B, heads, T, T] per layer, like
    /// `transformers`' `output_attentions=True` (causal: zero above the diagonal; padding
    /// keys get weight 0).
    pub fn forward_with_attentions(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (logits, maps) =
            crate::nn::functional::record_attention(|| self.forward(input_ids, attention_mask))?;
        let maps = crate::nn::attention_maps::expect_maps(
            "GPT2LMHeadModel",
            maps,
            self.transformer.h.len(),
        )?;
        Ok((logits, maps))
    }
}

impl CausalLm for Gpt2LMHeadModel {
    fn num_layers(&self) -> usize {
        self.transformer.h.len()
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn max_positions(&self) -> Option<usize> {
        Some(self.n_positions)
    }
    fn forward_cached(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let (b, t) = ids_rows(input_ids, self.vocab_size, "GPT2LMHeadModel")?;
        let off = cache.first().map_or(0, |c| c.len());
        if off + t > self.n_positions {
            return Err(Error::value(
                "GPT2LMHeadModel",
                format!(
                    "{} positions exceed the model's context of {} (n_positions)",
                    off + t,
                    self.n_positions
                ),
            ));
        }
        if cache.len() != self.transformer.h.len() {
            return Err(Error::value(
                "GPT2LMHeadModel",
                "the cache needs one entry per layer",
            ));
        }
        let keep = keep_rows(attention_mask, b, off + t, "GPT2LMHeadModel")?;
        let tr = &self.transformer;
        let ids = input_ids.to_dtype(DType::I64)?;
        let pos = Tensor::arange(off as f64, (off + t) as f64, 1.0, DType::I64)?;
        let mut x = tr.wte.forward(&ids)?.add(&tr.wpe.forward(&pos)?)?;
        let mask = build_mask(b, t, off + t, off, true, keep.as_deref(), f32::MIN)?;
        let (nh, e) = (self.n_head, self.n_embd);
        let hd = e / nh;
        for (blk, c) in tr.h.iter().zip(cache.iter_mut()) {
            let qkv = blk.attn.c_attn.forward(&blk.ln_1.forward(&x)?)?;
            let qkv = qkv.reshape(&[b, t, 3, nh, hd])?.permute(&[2, 0, 3, 1, 4])?;
            let (k, v) = c.append(&qkv.select(0, 1)?, &qkv.select(0, 2)?)?;
            let o = crate::nn::functional::scaled_dot_product_attention(
                &qkv.select(0, 0)?,
                &k,
                &v,
                Some(&mask),
                0.0,
                false,
                None,
            )?
            .transpose(1, 2)?
            .reshape(&[b, t, e])?;
            x = x.add(&blk.attn.c_proj.forward(&o)?)?;
            let f = activation(&self.act, &blk.mlp.c_fc.forward(&blk.ln_2.forward(&x)?)?)?;
            x = x.add(&blk.mlp.c_proj.forward(&f)?)?;
        }
        let x = tr.ln_f.forward(&x)?;
        match &self.lm_head {
            Some(l) => l.forward(&x),
            None => x.linear(&tr.wte.weight, None),
        }
    }
}

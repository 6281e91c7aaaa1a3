//! Llama-architecture decoders (`transformers`' `LlamaForCausalLM`; also Mistral/SmolLM
//! checkpoints with the same layout): RMSNorm pre-norm blocks, grouped-query attention with
//! half-split rotary embeddings, SwiGLU feed-forward, optional tied output embedding.

use super::generate::CausalLm;
use super::gguf::{GgmlType, GgufFile};
use super::{ids_rows, keep_rows, new_cache, Config, Weights};
use crate::nn::linear_maybe_packed;
use crate::nn::llm::attention_mask as build_mask;
use crate::nn::{
    Embedding, Forward, GroupedQueryAttention, KvCache, Linear, RmsNorm, RopeLayout,
    RotaryEmbedding, SwiGLU,
};
use crate::quant::BlockQuantWeight;
use crate::{DType, Error, Result, Tensor};
use std::sync::Arc;

/// One decoder layer `model.layers.{i}`.
#[derive(crate::nn::Module)]
pub struct LlamaDecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: GroupedQueryAttention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: SwiGLU,
}

/// `model`: embeddings, layers, final norm.
#[derive(crate::nn::Module)]
pub struct LlamaModel {
    pub embed_tokens: Embedding,
    pub layers: Vec<LlamaDecoderLayer>,
    pub norm: RmsNorm,
}

/// `LlamaForCausalLM`; `lm_head` is None when the output embedding is tied to
/// `embed_tokens`.
#[derive(crate::nn::Module)]
pub struct LlamaForCausalLM {
    pub model: LlamaModel,
    pub lm_head: Option<Linear>,
    /// The tied output embedding block-quantised (GGUF models), used like
    /// [`Linear::packed`].
    #[module(skip)]
    pub lm_head_packed: Option<Arc<BlockQuantWeight>>,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
}

impl LlamaForCausalLM {
    /// Builds the model from a config and a checkpoint.
    pub fn load(cfg: &Config, w: &mut Weights) -> Result<LlamaForCausalLM> {
        let h = cfg.usize(&["hidden_size"])?;
        let nl = cfg.usize(&["num_hidden_layers"])?;
        let nh = cfg.usize(&["num_attention_heads"])?;
        let nkv = cfg.usize_or(&["num_key_value_heads"], nh);
        let inter = cfg.usize(&["intermediate_size"])?;
        let vocab = cfg.usize(&["vocab_size"])?;
        let maxp = cfg.usize_or(&["max_position_embeddings"], 2048);
        let eps = cfg.f64_or("rms_norm_eps", 1e-6);
        if nh == 0 || nkv == 0 || nh % nkv != 0 || h % nh != 0 {
            return Err(Error::io(
                &cfg.path,
                format!("hidden_size {h}, num_attention_heads {nh}, num_key_value_heads {nkv} do not fit together"),
            ));
        }
        let hd = cfg.usize_or(&["head_dim"], h / nh);
        let theta = cfg
            .json
            .get("rope_parameters")
            .and_then(|r| r.get("rope_theta"))
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| cfg.f64_or("rope_theta", 10000.0));
        let scaling = cfg
            .json
            .get("rope_scaling")
            .filter(|v| !v.is_null())
            .or_else(|| {
                cfg.json
                    .get("rope_parameters")
                    .and_then(|r| r.get("rope_type"))
                    .filter(|t| t.as_str() != Some("default"))
            });
        if let Some(s) = scaling {
            return Err(Error::io(
                &cfg.path,
                format!("unsupported rope scaling {s}"),
            ));
        }
        if cfg.str_or("hidden_act", "silu") != "silu" {
            return Err(Error::io(
                &cfg.path,
                format!(
                    "unsupported hidden_act `{}` (Llama uses silu)",
                    cfg.str_or("hidden_act", "")
                ),
            ));
        }
        let ab = cfg.bool_or("attention_bias", false);
        let mb = cfg.bool_or("mlp_bias", false);
        let tied = cfg.bool_or("tie_word_embeddings", false) || !w.contains("lm_head.weight");
        let lm_head = if tied {
            None
        } else {
            Some(w.linear("lm_head", h, vocab, false)?)
        };
        // Not `with_capacity(nl)`: nl comes from the file and is trusted only as far as
        // layers load (a missing weight ends the loop with an error; fuzz/ found a GGUF
        // block_count of 2^32 asking for 5 GB here).
        let mut layers = Vec::new();
        for i in 0..nl {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            layers.push(LlamaDecoderLayer {
                input_layernorm: w.rms_norm(&format!("{p}.input_layernorm"), h, eps)?,
                self_attn: GroupedQueryAttention {
                    q_proj: w.linear(&format!("{a}.q_proj"), h, nh * hd, ab)?,
                    k_proj: w.linear(&format!("{a}.k_proj"), h, nkv * hd, ab)?,
                    v_proj: w.linear(&format!("{a}.v_proj"), h, nkv * hd, ab)?,
                    o_proj: w.linear(&format!("{a}.o_proj"), nh * hd, h, ab)?,
                    num_heads: nh,
                    num_kv_heads: nkv,
                    head_dim: hd,
                    rope: Some(RotaryEmbedding::new(hd, theta, RopeLayout::HalfSplit)?),
                },
                post_attention_layernorm: w.rms_norm(
                    &format!("{p}.post_attention_layernorm"),
                    h,
                    eps,
                )?,
                mlp: SwiGLU {
                    gate_proj: w.linear(&format!("{p}.mlp.gate_proj"), h, inter, mb)?,
                    up_proj: w.linear(&format!("{p}.mlp.up_proj"), h, inter, mb)?,
                    down_proj: w.linear(&format!("{p}.mlp.down_proj"), inter, h, mb)?,
                },
            });
        }
        let model = LlamaModel {
            embed_tokens: w.embedding("model.embed_tokens", vocab, h)?,
            layers,
            norm: w.rms_norm("model.norm", h, eps)?,
        };
        Ok(LlamaForCausalLM {
            model,
            lm_head,
            lm_head_packed: None,
            vocab_size: vocab,
            max_position_embeddings: maxp,
        })
    }

    /// Builds the model from a GGUF file of architecture `llama` (llama.cpp's layout: the
    /// hyper-parameters in `llama.*` metadata, tensors named `blk.{i}.attn_q.weight` ...,
    /// query and key rows permuted for rotary embeddings on adjacent pairs). The weights are
    /// dequantised to float32, the q/k rows put back in Hugging Face's half-split order, and
    /// the result is the same model `from_pretrained` builds from a Hugging Face directory.
    pub fn from_gguf(f: &GgufFile) -> Result<LlamaForCausalLM> {
        let arch = f.str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::io(
                &f.path,
                format!("GGUF architecture `{arch}` is not supported (supported: llama)"),
            ));
        }
        if let Some(t) = f.get("llama.rope.scaling.type").and_then(|v| v.as_str()) {
            if t != "none" {
                return Err(Error::io(
                    &f.path,
                    format!("unsupported rope scaling `{t}`"),
                ));
            }
        }
        let h = f.u64("llama.embedding_length")? as usize;
        let nh = f.u64("llama.attention.head_count")? as usize;
        let nkv = f
            .get("llama.attention.head_count_kv")
            .and_then(|v| v.as_u64())
            .map_or(nh, |v| v as usize);
        let emb = f.info("token_embd.weight")?;
        if emb.shape.len() != 2 || emb.shape[1] != h {
            return Err(Error::io(
                &f.path,
                format!(
                    "token_embd.weight has shape {:?}, expected [vocab, {h}]",
                    emb.shape
                ),
            ));
        }
        let vocab = emb.shape[0];
        if nh == 0 || nkv == 0 || !h.is_multiple_of(nh) || !nh.is_multiple_of(nkv) {
            return Err(Error::io(
                &f.path,
                format!("embedding_length {h}, head_count {nh}, head_count_kv {nkv} do not fit together"),
            ));
        }
        let hd = f
            .get("llama.rope.dimension_count")
            .and_then(|v| v.as_u64())
            .map_or(h / nh, |v| v as usize);
        let mut json = serde_json::json!({
            "model_type": "llama",
            "hidden_size": h,
            "num_hidden_layers": f.u64("llama.block_count")?,
            "num_attention_heads": nh,
            "num_key_value_heads": nkv,
            "intermediate_size": f.u64("llama.feed_forward_length")?,
            "vocab_size": vocab,
            "head_dim": hd,
            "rms_norm_eps": f.f64("llama.attention.layer_norm_rms_epsilon")?,
            "tie_word_embeddings": f.info("output.weight").is_err(),
        });
        if let Ok(n) = f.u64("llama.context_length") {
            json["max_position_embeddings"] = n.into();
        }
        if let Ok(t) = f.f64("llama.rope.freq_base") {
            json["rope_theta"] = t.into();
        }
        let cfg = Config {
            path: f.path.clone(),
            json,
        };
        let mut map = std::collections::HashMap::new();
        for info in &f.tensors {
            let Some(hf) = hf_name(&info.name) else {
                return Err(Error::io(
                    &f.path,
                    format!("unexpected tensor `{}` for architecture llama", info.name),
                ));
            };
            let mut t = f.tensor_f32(&info.name)?;
            if info.name.ends_with("attn_q.weight") {
                t = unpermute_rope_rows(&t, nh)?;
            } else if info.name.ends_with("attn_k.weight") {
                t = unpermute_rope_rows(&t, nkv)?;
            }
            map.insert(hf, t);
        }
        let mut w = Weights::from_map(&f.path, map);
        let mut model = LlamaForCausalLM::load(&cfg, &mut w)?;
        w.finish(|_| false)?;
        // Keep the quantised blocks beside the float32 weights for fast decoding.
        for (i, l) in model.model.layers.iter_mut().enumerate() {
            let a = &mut l.self_attn;
            let p = &mut l.mlp;
            for (name, lin, heads) in [
                ("attn_q", &mut a.q_proj, Some(nh)),
                ("attn_k", &mut a.k_proj, Some(nkv)),
                ("attn_v", &mut a.v_proj, None),
                ("attn_output", &mut a.o_proj, None),
                ("ffn_gate", &mut p.gate_proj, None),
                ("ffn_up", &mut p.up_proj, None),
                ("ffn_down", &mut p.down_proj, None),
            ] {
                lin.packed = pack(f, &format!("blk.{i}.{name}.weight"), &lin.weight, heads)?;
            }
        }
        match &mut model.lm_head {
            Some(h) => h.packed = pack(f, "output.weight", &h.weight, None)?,
            None => {
                model.lm_head_packed = pack(
                    f,
                    "token_embd.weight",
                    &model.model.embed_tokens.weight,
                    None,
                )?
            }
        }
        Ok(model)
    }

    /// Logits [B, T, vocab] of a whole batch (`attention_mask` [B, T]: 1 token, 0 padding;
    /// right padding).
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let mut cache = new_cache(self.model.layers.len());
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
            "LlamaForCausalLM",
            maps,
            self.model.layers.len(),
        )?;
        Ok((logits, maps))
    }
}

impl CausalLm for LlamaForCausalLM {
    fn num_layers(&self) -> usize {
        self.model.layers.len()
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn max_positions(&self) -> Option<usize> {
        Some(self.max_position_embeddings)
    }
    fn forward_cached(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let (b, t) = ids_rows(input_ids, self.vocab_size, "LlamaForCausalLM")?;
        if cache.len() != self.model.layers.len() {
            return Err(Error::value(
                "LlamaForCausalLM",
                "the cache needs one entry per layer",
            ));
        }
        let off = cache.first().map_or(0, |c| c.len());
        let keep = keep_rows(attention_mask, b, off + t, "LlamaForCausalLM")?;
        let mut x = self
            .model
            .embed_tokens
            .forward(&input_ids.to_dtype(DType::I64)?)?;
        let mask = build_mask(b, t, off + t, off, true, keep.as_deref(), f32::MIN)?;
        for (l, c) in self.model.layers.iter().zip(cache.iter_mut()) {
            let a = l.self_attn.forward_cached(
                &l.input_layernorm.forward(&x)?,
                Some(&mask),
                true,
                Some(c),
            )?;
            x = x.add(&a)?;
            x = x.add(&l.mlp.forward(&l.post_attention_layernorm.forward(&x)?)?)?;
        }
        let x = self.model.norm.forward(&x)?;
        match &self.lm_head {
            Some(h) => h.forward(&x),
            None => linear_maybe_packed(
                &x,
                &self.model.embed_tokens.weight,
                None,
                self.lm_head_packed.as_deref(),
            ),
        }
    }
}

/// The Hugging Face name of a llama.cpp tensor name.
fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (i, rest) = rest.split_once('.')?;
    i.parse::<usize>().ok()?;
    let (part, kind) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{i}.{hf}.{kind}"))
}

/// Undoes llama.cpp's conversion permutation of query/key rows: within each head, GGUF row
/// `2i + j` is Hugging Face row `j·hd/2 + i` (rotary embedding on adjacent pairs vs halves).
fn unpermute_rope_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = (w.shape()[0], w.shape().get(1).copied().unwrap_or(1));
    if heads == 0 || rows % (2 * heads) != 0 {
        return Err(Error::shape(
            "from_gguf",
            format!("{rows} query/key rows do not split into {heads} heads of pairs"),
        ));
    }
    let hd = rows / heads;
    // [heads, hd/2, 2, cols] -> [heads, 2, hd/2, cols]
    w.reshape(&[heads, hd / 2, 2, cols])?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(w.shape())
}

/// The GGUF tensor `name` as blocks tied to `weight` (its float32 form), when it is
/// block-quantised; `heads` undoes the rotary row permutation as for the float weights.
fn pack(
    f: &GgufFile,
    name: &str,
    weight: &Tensor,
    heads: Option<usize>,
) -> Result<Option<Arc<BlockQuantWeight>>> {
    let info = f.info(name)?;
    if !matches!(info.ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1) || info.shape.len() != 2
    {
        return Ok(None);
    }
    let (n, k) = (info.shape[0], info.shape[1]);
    let raw = f.raw(info);
    let bytes: std::borrow::Cow<[u8]> = match heads {
        None => raw.into(),
        Some(h) => {
            let (hd, row) = (n / h, raw.len() / n);
            let mut out = Vec::with_capacity(raw.len());
            for r in 0..n {
                // Hugging Face row r = head·hd + j·hd/2 + i comes from GGUF row head·hd + 2i + j.
                let (head, rest) = (r / hd, r % hd);
                let (j, i) = (rest / (hd / 2), rest % (hd / 2));
                let src = head * hd + 2 * i + j;
                out.extend_from_slice(&raw[src * row..(src + 1) * row]);
            }
            out.into()
        }
    };
    Ok(Some(Arc::new(
        BlockQuantWeight::from_gguf(info.ty, n, k, &bytes)?.tied_to(weight)?,
    )))
}

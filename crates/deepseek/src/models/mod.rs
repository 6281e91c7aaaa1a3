//! Pretrained models with Hugging Face names: BERT, GPT-2 and Llama-architecture decoders,
//! loaded from a Hugging Face directory (`config.json` + `model.safetensors`) by
//! [`from_pretrained`].
//!
//! ```no_run
//! use deepseek::prelude::*;
//! let model = deepseek::models::from_pretrained("path/to/all-MiniLM-L6-v2")?;
//! let tok = deepseek::tokenizers::Tokenizer::from_file("path/to/all-MiniLM-L6-v2/tokenizer.json")?;
//! let (ids, mask) = tok.encode_batch(&["Hello!", "Transformers in Rust."], true)?;
//! let out = model.forward(&ids, Some(&mask))?; // BERT: [last_hidden_state, pooler_output]
//! println!("{:?}", out[0].shape());
//! # Ok::<(), deepseek::Error>(())
//! ```
//!
//! Parameters are loaded as float32 leaves without `requires_grad` (call `requires_grad_` on
//! [`crate::nn::Module::parameters`] to fine-tune). A checkpoint whose tensor names or shapes
//! do not match the architecture is an error naming the first mismatch.

pub mod bert;
pub mod generate;
pub mod gguf;
pub mod gpt2;
pub mod llama;

use crate::nn::{Embedding, KvCache, LayerNorm, Linear, RmsNorm};
use crate::{DType, Error, Result, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

pub use generate::GenerateOptions;

/// The tensors of a checkpoint, handed out by name with their expected shapes; what is
/// left at the end is reported by [`Weights::finish`].
pub struct Weights {
    path: String,
    map: HashMap<String, Tensor>,
    prefix: String,
}

impl Weights {
    /// Reads a safetensors file (tensors converted to float32 where floating).
    pub fn load(path: &Path) -> Result<Weights> {
        let map = crate::nn::load_safetensors(path)?;
        let map = map
            .into_iter()
            .map(|(k, t)| {
                let t = if t.dtype().is_float() && t.dtype() != DType::F32 {
                    t.to_dtype(DType::F32)?
                } else {
                    t
                };
                Ok((k, t))
            })
            .collect::<Result<_>>()?;
        Ok(Weights {
            path: path.display().to_string(),
            map,
            prefix: String::new(),
        })
    }
    /// Tensors already in memory, by name (`path` names their file in messages).
    pub fn from_map(path: impl Into<String>, map: HashMap<String, Tensor>) -> Weights {
        Weights {
            path: path.into(),
            map,
            prefix: String::new(),
        }
    }
    /// Uses `prefix` (e.g. `"bert."`) when the checkpoint's names carry it.
    pub fn strip_prefix_if_present(&mut self, prefix: &str) {
        if self.map.keys().any(|k| k.starts_with(prefix)) {
            self.prefix = prefix.to_string();
        }
    }
    /// Whether the checkpoint has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(&format!("{}{name}", self.prefix))
    }
    /// Takes tensor `name`, which must have `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self.map.remove(&full).ok_or_else(|| {
            Error::io(
                &self.path,
                format!(
                    "the checkpoint has no tensor `{full}` (shape {shape:?}) that the model needs"
                ),
            )
        })?;
        if t.shape() != shape {
            return Err(Error::io(
                &self.path,
                format!(
                    "tensor `{full}` has shape {:?} in the checkpoint, the model expects {shape:?}",
                    t.shape()
                ),
            ));
        }
        Ok(t)
    }
    /// A `Linear` from `{name}.weight` [out, in] and, with `bias`, `{name}.bias`.
    pub fn linear(&mut self, name: &str, inp: usize, out: usize, bias: bool) -> Result<Linear> {
        Ok(Linear {
            weight: self.take(&format!("{name}.weight"), &[out, inp])?,
            bias: if bias {
                Some(self.take(&format!("{name}.bias"), &[out])?)
            } else {
                None
            },
            packed: None,
        })
    }
    /// A `LayerNorm` from `{name}.weight` and `{name}.bias`.
    pub fn layer_norm(&mut self, name: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: Some(self.take(&format!("{name}.weight"), &[dim])?),
            bias: Some(self.take(&format!("{name}.bias"), &[dim])?),
            normalized_shape: vec![dim],
            eps,
        })
    }
    /// An `RmsNorm` from `{name}.weight`.
    pub fn rms_norm(&mut self, name: &str, dim: usize, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: Some(self.take(&format!("{name}.weight"), &[dim])?),
            normalized_shape: vec![dim],
            eps: Some(eps),
        })
    }
    /// An `Embedding` from `{name}.weight` [n, dim].
    pub fn embedding(&mut self, name: &str, n: usize, dim: usize) -> Result<Embedding> {
        Ok(Embedding {
            weight: self.take(&format!("{name}.weight"), &[n, dim])?,
            padding_idx: None,
        })
    }
    /// Errors on the first tensor no part of the model took (sorted by name), ignoring
    /// those for which `ignore` is true (non-parameter buffers such as `position_ids`).
    pub fn finish(self, ignore: impl Fn(&str) -> bool) -> Result<()> {
        let left: BTreeSet<&String> = self.map.keys().filter(|k| !ignore(k)).collect();
        if let Some(first) = left.iter().next() {
            return Err(Error::io(
                &self.path,
                format!(
                    "unexpected tensor `{first}` in the checkpoint ({} unused in all): it does not belong to this architecture",
                    left.len()
                ),
            ));
        }
        Ok(())
    }
}

/// A model's `config.json`.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: String,
    pub json: serde_json::Value,
}

impl Config {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(&p, format!("cannot read: {e}")))?;
        let json = serde_json::from_str(&text)
            .map_err(|e| Error::io(&p, format!("not valid JSON: {e}")))?;
        Ok(Config { path: p, json })
    }
    /// The first of `keys` present, as an unsigned integer.
    pub fn usize(&self, keys: &[&str]) -> Result<usize> {
        keys.iter()
            .find_map(|k| self.json.get(*k).and_then(|v| v.as_u64()))
            .map(|v| v as usize)
            .ok_or_else(|| {
                Error::io(
                    &self.path,
                    format!("missing integer field {}", keys.join(" / ")),
                )
            })
    }
    /// The first of `keys` present as an unsigned integer, or `default`.
    pub fn usize_or(&self, keys: &[&str], default: usize) -> usize {
        self.usize(keys).unwrap_or(default)
    }
    /// Float field `key`, or `default`.
    pub fn f64_or(&self, key: &str, default: f64) -> f64 {
        self.json
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or(default)
    }
    /// String field `key`, or `default`.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.json
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or(default)
    }
    /// Bool field `key`, or `default`.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        self.json
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    }
}

const ACTIVATIONS: [&str; 7] = [
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "relu",
    "silu",
    "swish",
];

/// `name` if it is an activation [`activation`] knows, else an error naming the config.
pub(crate) fn check_activation(cfg: &Config, name: &str) -> Result<String> {
    if ACTIVATIONS.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(Error::io(
            &cfg.path,
            format!("unsupported activation `{name}` (supported: {ACTIVATIONS:?})"),
        ))
    }
}

/// Applies a Hugging Face activation by its `config.json` name.
pub(crate) fn activation(name: &str, x: &Tensor) -> Result<Tensor> {
    match name {
        "gelu" => x.gelu("none"),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => x.gelu("tanh"),
        "relu" => x.relu(),
        "silu" | "swish" => x.silu(),
        other => Err(Error::value(
            "activation",
            format!("unsupported activation `{other}`"),
        )),
    }
}

/// `input_ids` as rows of i64 (checked to be [B, T] and inside the vocabulary).
pub(crate) fn ids_rows(ids: &Tensor, vocab: usize, op: &str) -> Result<(usize, usize)> {
    if ids.rank() != 2 || ids.dtype().is_float() {
        return Err(Error::shape(
            op,
            format!(
                "input_ids must be an integer tensor [batch, seq], got {:?} of {}",
                ids.shape(),
                ids.dtype()
            ),
        ));
    }
    let v = ids.to_dtype(DType::I64)?.to_vec::<i64>()?;
    if let Some(bad) = v.iter().find(|&&i| i < 0 || i as usize >= vocab) {
        return Err(Error::index(
            op,
            format!("token id {bad} is outside the vocabulary of {vocab}"),
        ));
    }
    Ok((ids.shape()[0], ids.shape()[1]))
}

/// `attention_mask` [B, S] (1 keep, 0 pad) as rows of bools.
pub(crate) fn keep_rows(
    mask: Option<&Tensor>,
    b: usize,
    s: usize,
    op: &str,
) -> Result<Option<Vec<Vec<bool>>>> {
    let Some(m) = mask else { return Ok(None) };
    if m.shape() != [b, s] {
        return Err(Error::shape(
            op,
            format!("attention_mask must be [{b}, {s}], got {:?}", m.shape()),
        ));
    }
    let v = m.to_vec_f64()?;
    Ok(Some(
        v.chunks(s.max(1))
            .map(|r| r.iter().map(|&x| x != 0.0).collect())
            .collect(),
    ))
}

/// A model loaded by [`from_pretrained`].
pub enum PretrainedModel {
    /// `BertModel` (encoder); forward gives `[last_hidden_state, pooler_output]`.
    Bert(bert::BertModel),
    /// `GPT2LMHeadModel`; forward gives `[logits]`.
    Gpt2(gpt2::Gpt2LMHeadModel),
    /// `LlamaForCausalLM` (Llama, Mistral-style, SmolLM, ...); forward gives `[logits]`.
    Llama(llama::LlamaForCausalLM),
}

impl PretrainedModel {
    /// The architecture's Hugging Face `model_type`.
    pub fn model_type(&self) -> &'static str {
        match self {
            PretrainedModel::Bert(_) => "bert",
            PretrainedModel::Gpt2(_) => "gpt2",
            PretrainedModel::Llama(_) => "llama",
        }
    }
    /// Like `transformers`' `model(input_ids, attention_mask)`: BERT returns
    /// `[last_hidden_state, pooler_output]` (the pooler output only when the checkpoint has
    /// a pooler), the causal LMs `[logits]`.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<Vec<Tensor>> {
        match self {
            PretrainedModel::Bert(m) => {
                let (h, p) = m.forward(input_ids, attention_mask, None)?;
                Ok(std::iter::once(h).chain(p).collect())
            }
            PretrainedModel::Gpt2(m) => Ok(vec![m.forward(input_ids, attention_mask)?]),
            PretrainedModel::Llama(m) => Ok(vec![m.forward(input_ids, attention_mask)?]),
        }
    }
    /// [`Self::forward`] and the attention probabilities of every layer, one [B, heads, T,
    /// T] tensor each (`transformers`' `output_attentions=True`): `(outputs, attentions)`.
    /// The plain [`Self::forward`] computes no more than it needs for its outputs.
    pub fn forward_with_attentions(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        match self {
            PretrainedModel::Bert(m) => {
                let (h, p, a) = m.forward_with_attentions(input_ids, attention_mask, None)?;
                Ok((std::iter::once(h).chain(p).collect(), a))
            }
            PretrainedModel::Gpt2(m) => {
                let (l, a) = m.forward_with_attentions(input_ids, attention_mask)?;
                Ok((vec![l], a))
            }
            PretrainedModel::Llama(m) => {
                let (l, a) = m.forward_with_attentions(input_ids, attention_mask)?;
                Ok((vec![l], a))
            }
        }
    }
    /// The causal LM behind this model, or an error for encoders.
    pub fn causal_lm(&self) -> Result<&dyn generate::CausalLm> {
        match self {
            PretrainedModel::Gpt2(m) => Ok(m),
            PretrainedModel::Llama(m) => Ok(m),
            PretrainedModel::Bert(_) => Err(Error::value(
                "generate",
                "a BERT encoder cannot generate text; load a GPT-2 or Llama checkpoint",
            )),
        }
    }
    /// Generates up to `opts.max_new_tokens` tokens after `prompt` with a KV cache, calling
    /// `on_token` for each as it comes; returns the new tokens.
    pub fn generate(
        &self,
        prompt: &[i64],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(i64) -> Result<()>,
    ) -> Result<Vec<i64>> {
        generate::generate(self.causal_lm()?, prompt, opts, on_token)
    }
    /// The model's parameters by their Hugging Face names.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        use crate::nn::Module;
        match self {
            PretrainedModel::Bert(m) => m.named_parameters(),
            PretrainedModel::Gpt2(m) => m.named_parameters(),
            PretrainedModel::Llama(m) => m.named_parameters(),
        }
    }
}

/// Whether `path` is a file that starts with GGUF's magic bytes.
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && &magic == b"GGUF"
}

fn resolve_dir(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let p = path.display().to_string();
    if !path.is_dir() {
        return Err(Error::io(
            &p,
            "not a directory: expected a Hugging Face model directory with config.json and model.safetensors, or a .gguf file",
        ));
    }
    let cfg = path.join("config.json");
    if !cfg.is_file() {
        return Err(Error::io(&p, "no config.json in this directory"));
    }
    for cand in ["model.safetensors", "model/model.safetensors"] {
        let w = path.join(cand);
        if w.is_file() {
            return Ok((cfg, w));
        }
    }
    Err(Error::io(&p, "no model.safetensors in this directory"))
}

/// Loads a Hugging Face model directory (`config.json` + `model.safetensors`): BERT
/// (`model_type` "bert"), GPT-2 ("gpt2") or a Llama-architecture decoder ("llama",
/// "mistral" without sliding windows, "qwen2"-style configs with `attention_bias`).
///
/// A `.gguf` file (llama.cpp's format, architecture `llama`, tensors F32/F16/BF16/Q8_0/
/// Q4_0/Q4_1) loads too: its weights are dequantised to float32 (see
/// [`llama::LlamaForCausalLM::from_gguf`]); its tokenizer is
/// [`crate::tokenizers::Tokenizer::from_gguf`].
pub fn from_pretrained(path: impl AsRef<Path>) -> Result<PretrainedModel> {
    let path = path.as_ref();
    if is_gguf(path) {
        let f = gguf::GgufFile::open(path)?;
        return Ok(PretrainedModel::Llama(llama::LlamaForCausalLM::from_gguf(
            &f,
        )?));
    }
    let (cfg_path, weights_path) = resolve_dir(path)?;
    let cfg = Config::load(&cfg_path)?;
    let mut w = Weights::load(&weights_path)?;
    let ty = cfg.str_or("model_type", "").to_string();
    let model = match ty.as_str() {
        "bert" => PretrainedModel::Bert(bert::BertModel::load(&cfg, &mut w)?),
        "gpt2" => PretrainedModel::Gpt2(gpt2::Gpt2LMHeadModel::load(&cfg, &mut w)?),
        "llama" | "mistral" | "qwen2" => {
            PretrainedModel::Llama(llama::LlamaForCausalLM::load(&cfg, &mut w)?)
        }
        other => {
            return Err(Error::io(
                &cfg.path,
                format!("unsupported model_type `{other}` (supported: bert, gpt2, llama)"),
            ))
        }
    };
    w.finish(|k| {
        k.ends_with("position_ids")
            || k.ends_with("rotary_emb.inv_freq")
            || k.ends_with(".attn.bias")
            || k.ends_with(".attn.masked_bias")
            || k.starts_with("cls.")
    })?;
    Ok(model)
}

/// One [`KvCache`] per layer.
pub fn new_cache(layers: usize) -> Vec<KvCache> {
    (0..layers).map(|_| KvCache::new()).collect()
}

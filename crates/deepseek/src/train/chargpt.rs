//! A small character-level GPT for `deepseek train --model gpt`: token and learned position
//! embeddings, pre-norm causal transformer layers (PyTorch's `nn.TransformerEncoderLayer`
//! with `norm_first=True`, GELU, feed-forward 4 × width), a final layer norm and a linear
//! head. It trains with the same [`Trainer`](super::Trainer), batches
//! ([`TextBatches`](super::TextBatches)), checkpoints and tokenizer as the LSTM
//! [`TextGenerator`](super::TextGenerator).

use super::textgen::{
    find_beside, resolve_checkpoint, safetensors_shapes, sample, SampleOptions, CONFIG_FILE,
    TOKENIZER_FILE,
};
use crate::data::CharTokenizer;
use crate::nn::{Embedding, Forward, LayerNorm, Linear, Module, TransformerEncoderLayer};
use crate::tensor::Generator;
use crate::{DType, Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `model_type` written in a [`CharGpt`]'s `config.json`.
pub const CHAR_GPT_MODEL_TYPE: &str = "char_gpt";

/// Sizes of a [`CharGpt`] (its `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharGptConfig {
    /// Always [`CHAR_GPT_MODEL_TYPE`]; tells a GPT checkpoint from an LSTM one.
    pub model_type: String,
    /// Distinct tokens (characters).
    pub vocab_size: usize,
    /// Model width (embedding and residual stream).
    pub n_embd: usize,
    /// Transformer layers.
    pub n_layer: usize,
    /// Attention heads per layer (`n_embd` must be divisible by it).
    pub n_head: usize,
    /// Longest context (rows of the position embedding).
    pub block_size: usize,
    /// Dropout inside each layer (attention output, feed-forward).
    pub dropout: f64,
}

impl CharGptConfig {
    /// A config with the given sizes and no dropout.
    pub fn new(
        vocab_size: usize,
        n_embd: usize,
        n_layer: usize,
        n_head: usize,
        block_size: usize,
    ) -> CharGptConfig {
        CharGptConfig {
            model_type: CHAR_GPT_MODEL_TYPE.into(),
            vocab_size,
            n_embd,
            n_layer,
            n_head,
            block_size,
            dropout: 0.0,
        }
    }

    /// Why these sizes cannot make a model (`None` when they can).
    fn invalid(&self) -> Option<String> {
        let c = self;
        if c.model_type != CHAR_GPT_MODEL_TYPE {
            return Some(format!(
                "model_type must be {CHAR_GPT_MODEL_TYPE:?}, got {:?}",
                c.model_type
            ));
        }
        if c.vocab_size == 0
            || c.n_embd == 0
            || c.n_layer == 0
            || c.n_head == 0
            || c.block_size == 0
        {
            return Some(format!("sizes must be positive, got {c:?}"));
        }
        if !c.n_embd.is_multiple_of(c.n_head) {
            return Some(format!(
                "n_embd {} is not divisible by n_head {}",
                c.n_embd, c.n_head
            ));
        }
        if !(0.0..1.0).contains(&c.dropout) {
            return Some(format!("dropout {} is not in [0, 1)", c.dropout));
        }
        None
    }

    /// Parameter names and shapes of the model this config describes, in state-dict
    /// order (the names of the same model written with PyTorch modules); `None` when a
    /// size overflows.
    pub fn parameter_shapes(&self) -> Option<Vec<(String, Vec<usize>)>> {
        let (v, e, t) = (self.vocab_size, self.n_embd, self.block_size);
        let (e3, e4) = (e.checked_mul(3)?, e.checked_mul(4)?);
        let mut out = vec![
            ("tok_emb.weight".to_string(), vec![v, e]),
            ("pos_emb.weight".to_string(), vec![t, e]),
        ];
        for l in 0..self.n_layer {
            let p = format!("blocks.{l}");
            for (n, s) in [
                ("self_attn.in_proj_weight", vec![e3, e]),
                ("self_attn.in_proj_bias", vec![e3]),
                ("self_attn.out_proj.weight", vec![e, e]),
                ("self_attn.out_proj.bias", vec![e]),
                ("linear1.weight", vec![e4, e]),
                ("linear1.bias", vec![e4]),
                ("linear2.weight", vec![e, e4]),
                ("linear2.bias", vec![e]),
                ("norm1.weight", vec![e]),
                ("norm1.bias", vec![e]),
                ("norm2.weight", vec![e]),
                ("norm2.bias", vec![e]),
            ] {
                out.push((format!("{p}.{n}"), s));
            }
        }
        for (n, s) in [
            ("norm.weight", vec![e]),
            ("norm.bias", vec![e]),
            ("head.weight", vec![v, e]),
            ("head.bias", vec![v]),
        ] {
            out.push((n.to_string(), s));
        }
        for (_, s) in &out {
            crate::memory::checked_numel("CharGpt", s)
                .ok()?
                .checked_mul(4)?;
        }
        Some(out)
    }
}

/// A character-level GPT. Parameter names follow the same model written in PyTorch
/// (`tok_emb`, `pos_emb`, `blocks.{i}` as `nn.TransformerEncoderLayer(batch_first=True,
/// norm_first=True, activation="gelu")`, `norm`, `head`), so its `model.safetensors`
/// loads into that model with `load_state_dict`.
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::train::{CharGpt, CharGptConfig};
/// let m = CharGpt::new(CharGptConfig::new(10, 16, 2, 2, 8))?;
/// let x = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[2, 3])?;
/// assert_eq!(m.forward(&x)?.shape(), &[2, 3, 10]);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(crate::nn::Module)]
pub struct CharGpt {
    pub tok_emb: Embedding,
    pub pos_emb: Embedding,
    pub blocks: Vec<TransformerEncoderLayer>,
    pub norm: LayerNorm,
    pub head: Linear,
    #[module(skip)]
    pub config: CharGptConfig,
}

impl CharGpt {
    /// A freshly initialised model (PyTorch's default initialisations, from the global
    /// generator).
    pub fn new(config: CharGptConfig) -> Result<CharGpt> {
        if let Some(m) = config.invalid() {
            return Err(Error::value("CharGpt", m));
        }
        let c = &config;
        let e = c.n_embd;
        let blocks = (0..c.n_layer)
            .map(|_| {
                TransformerEncoderLayer::new(e, c.n_head, 4 * e, c.dropout, true, 1e-5, true, true)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CharGpt {
            tok_emb: Embedding::new(c.vocab_size, e, None)?,
            pos_emb: Embedding::new(c.block_size, e, None)?,
            blocks,
            norm: LayerNorm::new(&[e], 1e-5, true)?,
            head: Linear::new(e, c.vocab_size, true)?,
            config,
        })
    }

    /// Logits `[B, T, vocab]` for token ids `[B, T]` (causal: position `t` sees `0..=t`);
    /// `T` may not exceed `block_size`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 2 {
            return Err(Error::shape(
                "CharGpt",
                format!(
                    "expected token ids [batch, time], got shape {:?}",
                    x.shape()
                ),
            ));
        }
        let t = x.shape()[1];
        if t > self.config.block_size {
            return Err(Error::value(
                "CharGpt",
                format!(
                    "{t} positions exceed the model's context of {} (block_size)",
                    self.config.block_size
                ),
            ));
        }
        let pos = Tensor::arange(0.0, t as f64, 1.0, DType::I64)?;
        let mut h = self.tok_emb.forward(x)?.add(&self.pos_emb.forward(&pos)?)?;
        for b in &self.blocks {
            h = b.forward_masked(&h, None, true)?;
        }
        self.head.forward(&self.norm.forward(&h)?)
    }

    /// Mean cross-entropy of a batch `[x, y]` (ids `[B, T]` and next-character targets
    /// `[B, T]`), in nats per character.
    pub fn loss(&self, batch: &[Tensor]) -> Result<Tensor> {
        let [x, y] = batch else {
            return Err(Error::value(
                "CharGpt::loss",
                format!(
                    "expected a batch of [inputs, targets], got {} tensors",
                    batch.len()
                ),
            ));
        };
        let logits = self.forward(x)?;
        let v = self.config.vocab_size;
        crate::nn::functional::cross_entropy(
            &logits.reshape(&[y.numel(), v])?,
            &y.reshape(&[y.numel()])?,
            None,
            -100,
            "mean",
            0.0,
        )
    }

    /// Continues `prompt` by `opts.length` characters (returned without the prompt),
    /// sampling with `rng`; the context is the last `block_size` characters. Runs under
    /// `no_grad`; put the model in eval mode first. An empty prompt starts from a newline.
    pub fn generate(
        &self,
        tok: &CharTokenizer,
        prompt: &str,
        opts: &SampleOptions,
        rng: &mut Generator,
    ) -> Result<String> {
        let v = self.config.vocab_size;
        if tok.vocab_size() != v {
            return Err(Error::value(
                "CharGpt::generate",
                format!(
                    "the tokenizer has {} characters but the model {v}",
                    tok.vocab_size()
                ),
            ));
        }
        if !opts.temperature.is_finite() || opts.temperature < 0.0 {
            return Err(Error::value(
                "CharGpt::generate",
                format!("temperature must be >= 0, got {}", opts.temperature),
            ));
        }
        if opts.top_k == Some(0) {
            return Err(Error::value("CharGpt::generate", "top_k must be positive"));
        }
        let _g = crate::no_grad();
        let mut ids = tok.encode(prompt)?;
        if ids.is_empty() {
            ids = vec![tok.encode("\n").map(|v| v[0]).unwrap_or(0)];
        }
        let start = ids.len();
        for _ in 0..opts.length {
            let ctx = &ids[ids.len().saturating_sub(self.config.block_size)..];
            let x = Tensor::from_vec(ctx.to_vec(), &[1, ctx.len()])?;
            let last = self.forward(&x)?.select(1, -1)?.reshape(&[v])?;
            ids.push(sample(&last.to_vec_f64()?, opts, rng));
        }
        tok.decode(&ids[start..])
    }

    /// Whether a `config.json` text describes a [`CharGpt`] (its `model_type`).
    pub fn describes(config_json: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(config_json)
            .ok()
            .and_then(|v| {
                v.get("model_type")?
                    .as_str()
                    .map(|s| s == CHAR_GPT_MODEL_TYPE)
            })
            .unwrap_or(false)
    }

    /// Whether the checkpoint meant by `path` (a checkpoint, a run's `checkpoints/` or a
    /// run directory) holds a [`CharGpt`] rather than a [`TextGenerator`](super::TextGenerator)
    /// (by the `model_type` of its `config.json`).
    pub fn is_checkpoint(path: &Path) -> Result<bool> {
        let dir = resolve_checkpoint(path)?;
        let cp = find_beside(&dir, CONFIG_FILE)?;
        let s = std::fs::read_to_string(&cp)
            .map_err(|e| Error::io(cp.display().to_string(), e.to_string()))?;
        Ok(Self::describes(&s))
    }

    /// Loads a model and its tokenizer from a checkpoint, like
    /// [`TextGenerator::from_checkpoint_with`](super::TextGenerator::from_checkpoint_with):
    /// `path` is a checkpoint, a run's `checkpoints/` or a run directory; the checkpoint's
    /// `SHA256SUMS` is verified when `verify`; `config.json` is checked against the tensor
    /// shapes in `model.safetensors` before anything is allocated.
    pub fn from_checkpoint_with(
        path: &Path,
        verify: bool,
    ) -> Result<(CharGpt, CharTokenizer, PathBuf)> {
        let dir = resolve_checkpoint(path)?;
        if verify {
            super::checkpoint::verify(&dir)?;
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| Error::io(p.display().to_string(), e.to_string()))
        };
        let cp = find_beside(&dir, CONFIG_FILE)?;
        let cfg: CharGptConfig = serde_json::from_str(&read(&cp)?).map_err(|e| {
            Error::io(
                cp.display().to_string(),
                format!("not a CharGpt config: {e}"),
            )
        })?;
        if let Some(m) = cfg.invalid() {
            return Err(Error::io(cp.display().to_string(), m));
        }
        let tp = find_beside(&dir, TOKENIZER_FILE)?;
        let tok = CharTokenizer::from_json(&read(&tp)?)
            .map_err(|e| Error::io(tp.display().to_string(), e.to_string()))?;
        if tok.vocab_size() != cfg.vocab_size {
            return Err(Error::io(
                tp.display().to_string(),
                format!(
                    "the tokenizer has {} characters but {} says vocab_size {}",
                    tok.vocab_size(),
                    cp.display(),
                    cfg.vocab_size
                ),
            ));
        }
        let mp = dir.join(super::checkpoint::MODEL_FILE);
        let in_file = safetensors_shapes(&mp)?;
        // The layer count is checked against the file before the shape list is built.
        let mismatch = if cfg.n_layer > in_file.len() {
            Some(format!(
                "n_layer {} but the weights hold only {} tensors",
                cfg.n_layer,
                in_file.len()
            ))
        } else {
            match cfg.parameter_shapes() {
                None => Some(format!("sizes too large: {cfg:?}")),
                Some(ours) => {
                    let theirs: Vec<(String, Vec<usize>)> = in_file.into_iter().collect();
                    super::checkpoint::fingerprint_mismatch(&ours, &theirs)
                        .map(|m| m.replace("this model", "config.json"))
                }
            }
        };
        if let Some(m) = mismatch {
            return Err(Error::io(
                cp.display().to_string(),
                format!("does not describe {}: {m}", mp.display()),
            ));
        }
        let model = CharGpt::new(cfg)?;
        model.load(&mp)?;
        Ok((model, tok, dir))
    }
}

//! The tutorials' TextGenerator (Embedding -> LSTM -> Linear) at the character level: the
//! model, its batches of text, checkpoint loading and sampling.

use super::BatchSource;
use crate::data::CharTokenizer;
use crate::nn::{Embedding, Forward, Linear, Lstm, Module, RnnConfig};
use crate::tensor::Generator;
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The model configuration file stored in a run directory and in each checkpoint.
pub const CONFIG_FILE: &str = "config.json";
/// The tokenizer file stored in a run directory and in each checkpoint.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Sizes of a [`TextGenerator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextGeneratorConfig {
    /// Distinct tokens (characters).
    pub vocab_size: usize,
    /// Width of the embedding (the LSTM's input size).
    pub embedding_dim: usize,
    /// LSTM hidden size.
    pub hidden_size: usize,
    /// Stacked LSTM layers.
    pub num_layers: usize,
    /// Dropout between LSTM layers (PyTorch's `nn.LSTM(dropout=...)`).
    pub dropout: f64,
}

impl TextGeneratorConfig {
    /// One LSTM layer, embedding width = hidden size, no dropout.
    pub fn new(vocab_size: usize, hidden_size: usize) -> TextGeneratorConfig {
        TextGeneratorConfig {
            vocab_size,
            embedding_dim: hidden_size,
            hidden_size,
            num_layers: 1,
            dropout: 0.0,
        }
    }
}

/// Embedding -> LSTM (batch first) -> Linear, with PyTorch's parameter names
/// (`embedding.weight`, `lstm.weight_ih_l0`, ..., `fc.weight`, `fc.bias`), so its
/// `model.safetensors` loads into the same model written in PyTorch.
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::train::{TextGenerator, TextGeneratorConfig};
/// let m = TextGenerator::new(TextGeneratorConfig::new(10, 16))?;
/// let x = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[2, 3])?;
/// assert_eq!(m.forward(&x)?.shape(), &[2, 3, 10]);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(crate::nn::Module)]
pub struct TextGenerator {
    pub embedding: Embedding,
    pub lstm: Lstm,
    pub fc: Linear,
    #[module(skip)]
    pub config: TextGeneratorConfig,
}

/// How [`TextGenerator::generate`] samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Characters to generate.
    pub length: usize,
    /// Softmax temperature; 0 picks the most likely character every time.
    pub temperature: f64,
    /// Sample only among the `k` most likely characters.
    pub top_k: Option<usize>,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            length: 400,
            temperature: 0.8,
            top_k: None,
        }
    }
}

impl TextGenerator {
    /// A freshly initialised model (PyTorch's initialisations, from the global generator).
    pub fn new(config: TextGeneratorConfig) -> Result<TextGenerator> {
        let c = &config;
        if c.vocab_size == 0 || c.embedding_dim == 0 || c.hidden_size == 0 || c.num_layers == 0 {
            return Err(Error::value(
                "TextGenerator",
                format!("sizes must be positive, got {c:?}"),
            ));
        }
        Ok(TextGenerator {
            embedding: Embedding::new(c.vocab_size, c.embedding_dim, None)?,
            lstm: Lstm::new(
                c.embedding_dim,
                c.hidden_size,
                RnnConfig {
                    num_layers: c.num_layers,
                    batch_first: true,
                    dropout: c.dropout,
                    ..Default::default()
                },
            )?,
            fc: Linear::new(c.hidden_size, c.vocab_size, true)?,
            config,
        })
    }

    /// Logits `[B, T, vocab]` for token ids `[B, T]`, from a zero state.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with_state(x, None)?.0)
    }

    /// Logits `[B, T, vocab]` and the final `(h, c)` (each `[layers, B, hidden]`) for
    /// token ids `[B, T]`, starting from `state` (zeros when `None`). Feeding the returned
    /// state back in continues the sequence, which is how generation runs one character
    /// at a time.
    pub fn forward_with_state(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        if x.rank() != 2 {
            return Err(Error::shape(
                "TextGenerator",
                format!(
                    "expected token ids [batch, time], got shape {:?}",
                    x.shape()
                ),
            ));
        }
        // Embedding -> LSTM through the projected embedding table when the vocabulary is small
        // (character level): same model and gradients, fewer flops.
        let (out, hc) = self.lstm.forward_tokens(&self.embedding, x, state)?;
        Ok((self.fc.forward(&out)?, hc))
    }

    /// Mean cross-entropy of a batch `[x, y]` (ids `[B, T]` and next-character targets
    /// `[B, T]`), in nats per character.
    pub fn loss(&self, batch: &[Tensor]) -> Result<Tensor> {
        let [x, y] = batch else {
            return Err(Error::value(
                "TextGenerator::loss",
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
    /// sampling with `rng`. Runs under `no_grad`; put the model in eval mode first if it
    /// has dropout. An empty prompt starts from a newline (or token 0).
    pub fn generate(
        &self,
        tok: &CharTokenizer,
        prompt: &str,
        opts: &SampleOptions,
        rng: &mut Generator,
    ) -> Result<String> {
        if tok.vocab_size() != self.config.vocab_size {
            return Err(Error::value(
                "TextGenerator::generate",
                format!(
                    "the tokenizer has {} characters but the model {}",
                    tok.vocab_size(),
                    self.config.vocab_size
                ),
            ));
        }
        if !opts.temperature.is_finite() || opts.temperature < 0.0 {
            return Err(Error::value(
                "TextGenerator::generate",
                format!("temperature must be >= 0, got {}", opts.temperature),
            ));
        }
        if opts.top_k == Some(0) {
            return Err(Error::value(
                "TextGenerator::generate",
                "top_k must be positive",
            ));
        }
        let _g = crate::no_grad();
        let mut ids = tok.encode(prompt)?;
        if ids.is_empty() {
            ids = vec![tok.encode("\n").map(|v| v[0]).unwrap_or(0)];
        }
        let n = ids.len();
        let x = Tensor::from_vec(ids, &[1, n])?;
        let (logits, (mut h, mut c)) = self.forward_with_state(&x, None)?;
        let mut last = logits.select(1, -1)?.reshape(&[self.config.vocab_size])?;
        let mut out = Vec::with_capacity(opts.length);
        for _ in 0..opts.length {
            let next = sample(&last.to_vec_f64()?, opts, rng);
            out.push(next);
            let x = Tensor::from_vec(vec![next], &[1, 1])?;
            let (l, (h2, c2)) = self.forward_with_state(&x, Some((&h, &c)))?;
            (h, c) = (h2, c2);
            last = l.reshape(&[self.config.vocab_size])?;
        }
        tok.decode(&out)
    }

    /// Loads a model and its tokenizer for generation. `path` may be a checkpoint
    /// directory (`.../step-<N>`), a run's `checkpoints/` directory or a run directory
    /// (the newest checkpoint is used). Returns the checkpoint directory used too.
    pub fn from_checkpoint(path: &Path) -> Result<(TextGenerator, CharTokenizer, PathBuf)> {
        Self::from_checkpoint_with(path, true)
    }

    /// [`TextGenerator::from_checkpoint`], verifying the checkpoint's `SHA256SUMS` only when
    /// `verify` is true. The sizes in `config.json` are checked against the shapes in
    /// `model.safetensors`' header before the model is allocated, so a damaged config
    /// cannot ask for unbounded memory.
    pub fn from_checkpoint_with(
        path: &Path,
        verify: bool,
    ) -> Result<(TextGenerator, CharTokenizer, PathBuf)> {
        let dir = resolve_checkpoint(path)?;
        if verify {
            super::checkpoint::verify(&dir)?;
        }
        let find = |name: &str| find_beside(&dir, name);
        let cp = find(CONFIG_FILE)?;
        let cs = std::fs::read_to_string(&cp)
            .map_err(|e| Error::io(cp.display().to_string(), e.to_string()))?;
        let cfg: TextGeneratorConfig = serde_json::from_str(&cs).map_err(|e| {
            Error::io(
                cp.display().to_string(),
                format!("not a TextGenerator config: {e}"),
            )
        })?;
        let tp = find(TOKENIZER_FILE)?;
        let ts = std::fs::read_to_string(&tp)
            .map_err(|e| Error::io(tp.display().to_string(), e.to_string()))?;
        let tok = CharTokenizer::from_json(&ts)
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
        if let Some(msg) = cfg.mismatch(&in_file) {
            return Err(Error::io(
                cp.display().to_string(),
                format!("does not describe {}: {msg}", mp.display()),
            ));
        }
        let model = TextGenerator::new(cfg)?;
        model.load(&mp)?;
        Ok((model, tok, dir))
    }
}

impl TextGeneratorConfig {
    /// Parameter names and shapes of the model this config describes, in state-dict
    /// order; `None` when a size overflows.
    pub fn parameter_shapes(&self) -> Option<Vec<(String, Vec<usize>)>> {
        let (v, e, h) = (self.vocab_size, self.embedding_dim, self.hidden_size);
        let g = h.checked_mul(4)?;
        let mut out = vec![("embedding.weight".to_string(), vec![v, e])];
        for l in 0..self.num_layers {
            let input = if l == 0 { e } else { h };
            out.push((format!("lstm.weight_ih_l{l}"), vec![g, input]));
            out.push((format!("lstm.weight_hh_l{l}"), vec![g, h]));
            out.push((format!("lstm.bias_ih_l{l}"), vec![g]));
            out.push((format!("lstm.bias_hh_l{l}"), vec![g]));
        }
        out.push(("fc.weight".to_string(), vec![v, h]));
        out.push(("fc.bias".to_string(), vec![v]));
        for (_, s) in &out {
            crate::memory::checked_numel("TextGenerator", s)
                .ok()?
                .checked_mul(4)?;
        }
        Some(out)
    }

    /// How this config disagrees with the tensor shapes of a weights file (`None` when it
    /// describes exactly those tensors). Cheap even for absurd sizes: nothing is
    /// allocated per layer before the layer count is checked against the file.
    fn mismatch(&self, in_file: &std::collections::BTreeMap<String, Vec<usize>>) -> Option<String> {
        if self.num_layers > in_file.len() {
            return Some(format!(
                "num_layers {} but the weights hold only {} tensors",
                self.num_layers,
                in_file.len()
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        let Some(want) = self.parameter_shapes() else {
            return Some(format!("sizes too large: {self:?}"));
        };
        let want: std::collections::BTreeMap<String, Vec<usize>> = want.into_iter().collect();
        let ours: Vec<(String, Vec<usize>)> = want.into_iter().collect();
        let theirs: Vec<(String, Vec<usize>)> = in_file
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        super::checkpoint::fingerprint_mismatch(&ours, &theirs)
            .map(|m| m.replace("this model", "config.json"))
    }
}

/// `name` in the checkpoint directory `dir` or one of its two parents (the run directory).
pub(crate) fn find_beside(dir: &Path, name: &str) -> Result<PathBuf> {
    dir.ancestors()
        .take(3)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::io(
                dir.join(name).display().to_string(),
                format!(
                    "missing: {name} is needed beside the checkpoint (or in its run directory)"
                ),
            )
        })
}

/// Tensor names and shapes from a safetensors file's header, read without loading the
/// data (the header size is checked against the file size first).
pub(crate) fn safetensors_shapes(
    path: &Path,
) -> Result<std::collections::BTreeMap<String, Vec<usize>>> {
    use std::io::Read;
    let pd = path.display().to_string();
    let bad = |m: &str| Error::io(&pd, m.to_string());
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::io(&pd, format!("cannot open: {e}")))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io(&pd, format!("cannot stat: {e}")))?
        .len();
    let mut n8 = [0u8; 8];
    f.read_exact(&mut n8)
        .map_err(|_| bad("truncated: shorter than a safetensors header"))?;
    let n = u64::from_le_bytes(n8);
    if n > len.saturating_sub(8) || n > 100 << 20 {
        return Err(bad("corrupt: the safetensors header size exceeds the file"));
    }
    let mut h = vec![0u8; n as usize];
    f.read_exact(&mut h)
        .map_err(|_| bad("truncated: the safetensors header ends early"))?;
    let v: serde_json::Value = serde_json::from_slice(&h)
        .map_err(|_| bad("corrupt: the safetensors header is not JSON"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("corrupt: the safetensors header is not a JSON object"))?;
    let mut out = std::collections::BTreeMap::new();
    for (k, t) in obj {
        if k == "__metadata__" {
            continue;
        }
        let shape = t
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| {
                a.iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| bad(&format!("corrupt: tensor `{k}` has no valid shape")))?;
        out.insert(k.clone(), shape);
    }
    Ok(out)
}

/// The checkpoint directory meant by `path` (see [`TextGenerator::from_checkpoint`]): a
/// checkpoint directory, a run's `checkpoints/` directory, a run directory, or the
/// `model.safetensors` file of a checkpoint.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf> {
    if path.join(super::checkpoint::MODEL_FILE).is_file() {
        return Ok(path.to_path_buf());
    }
    if path.is_file() {
        return match path.parent() {
            Some(d) if path.file_name() == Some(std::ffi::OsStr::new(super::checkpoint::MODEL_FILE)) => {
                Ok(if d.as_os_str().is_empty() { Path::new(".").to_path_buf() } else { d.to_path_buf() })
            }
            _ => Err(Error::io(
                path.display().to_string(),
                "is a file: give a checkpoint directory (step-<N>, with model.safetensors, config.json and tokenizer.json) or a run directory",
            )),
        };
    }
    if !path.exists() {
        return Err(Error::io(
            path.display().to_string(),
            "no such file or directory",
        ));
    }
    for root in [path.join("checkpoints"), path.to_path_buf()] {
        if let Some(d) = super::checkpoint::latest(&root)? {
            return Ok(d);
        }
    }
    Err(Error::io(
        path.display().to_string(),
        "no checkpoint here (expected a step-<N> directory with model.safetensors, or a run directory with checkpoints/)",
    ))
}

/// Picks a token from logits.
pub(crate) fn sample(logits: &[f64], opts: &SampleOptions, rng: &mut Generator) -> i64 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0 as i64
    };
    if opts.temperature == 0.0 {
        return argmax();
    }
    let mut keep = vec![true; logits.len()];
    if let Some(k) = opts.top_k.filter(|&k| k < logits.len()) {
        let mut sorted: Vec<f64> = logits.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let cut = sorted[k - 1];
        let mut kept = 0;
        for (i, &l) in logits.iter().enumerate() {
            keep[i] = l >= cut && kept < k;
            kept += keep[i] as usize;
        }
    }
    let m = logits
        .iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(&l, _)| l)
        .fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logits
        .iter()
        .zip(&keep)
        .map(|(&l, &k)| {
            if k {
                ((l - m) / opts.temperature).exp()
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = w.iter().sum();
    if !total.is_finite() || total <= 0.0 {
        return argmax();
    }
    let u = rng.uniform() * total;
    let mut acc = 0.0;
    for (i, &p) in w.iter().enumerate() {
        acc += p;
        if u < acc {
            return i as i64;
        }
    }
    w.iter().rposition(|&p| p > 0.0).unwrap_or(0) as i64
}

/// Reads a UTF-8 text file; a missing, unreadable or empty file is an error naming it.
pub fn load_text(path: &Path) -> Result<String> {
    let p = path.display().to_string();
    let s = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::io(&p, "the data file does not exist")
        } else {
            Error::io(&p, format!("cannot read the data file: {e}"))
        }
    })?;
    if s.is_empty() {
        return Err(Error::io(&p, "the data file is empty"));
    }
    Ok(s)
}

/// Batches of `(x, y)` windows of a token stream: `x` = ids `[B, T]`, `y` = the next ids.
///
/// [`TextBatches::new`] gives fixed, non-overlapping windows in order, with a short last
/// batch (validation). [`TextBatches::shuffled`] draws, for each epoch, a random offset
/// into the text (so window boundaries differ between epochs) and a random window order,
/// both from `(seed, epoch)` only, and drops the short last batch (training).
pub struct TextBatches {
    ids: Vec<i64>,
    seq_len: usize,
    batch_size: usize,
    shuffle: Option<u64>,
    windows: usize,
}

impl TextBatches {
    /// Fixed windows in order (for validation).
    pub fn new(ids: Vec<i64>, seq_len: usize, batch_size: usize) -> Result<TextBatches> {
        Self::make(ids, seq_len, batch_size, None)
    }
    /// Shuffled windows at a per-epoch random offset (for training).
    pub fn shuffled(
        ids: Vec<i64>,
        seq_len: usize,
        batch_size: usize,
        seed: u64,
    ) -> Result<TextBatches> {
        Self::make(ids, seq_len, batch_size, Some(seed))
    }
    fn make(
        ids: Vec<i64>,
        seq_len: usize,
        batch_size: usize,
        shuffle: Option<u64>,
    ) -> Result<TextBatches> {
        let op = "TextBatches";
        if batch_size == 0 {
            return Err(Error::value(
                op,
                "batch_size must be a positive integer, got 0",
            ));
        }
        if seq_len == 0 {
            return Err(Error::value(
                op,
                "seq_len must be a positive integer, got 0",
            ));
        }
        // With random offsets in [0, seq_len) every epoch has the same number of windows.
        let usable = if shuffle.is_some() {
            ids.len().saturating_sub(seq_len)
        } else {
            ids.len().saturating_sub(1)
        };
        let windows = usable / seq_len;
        let b = TextBatches {
            ids,
            seq_len,
            batch_size,
            shuffle,
            windows,
        };
        if b.batches_per_epoch() == 0 {
            return Err(Error::value(
                op,
                format!(
                    "the text has {} tokens: {} windows of {} + 1, fewer than one batch of {}",
                    b.ids.len(),
                    windows,
                    seq_len,
                    batch_size
                ),
            ));
        }
        Ok(b)
    }
    /// Windows per epoch.
    pub fn windows(&self) -> usize {
        self.windows
    }
}

impl BatchSource for TextBatches {
    fn batches_per_epoch(&self) -> usize {
        if self.shuffle.is_some() {
            self.windows / self.batch_size
        } else {
            self.windows.div_ceil(self.batch_size)
        }
    }
    fn epoch_from(
        &self,
        epoch: u64,
        skip: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<Tensor>>> + '_> {
        let mut order: Vec<usize> = (0..self.windows).collect();
        let mut offset = 0;
        if let Some(seed) = self.shuffle {
            let mut g =
                Generator::new(seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            offset = g.below(self.seq_len as u64) as usize;
            for i in (1..order.len()).rev() {
                order.swap(i, g.below(i as u64 + 1) as usize);
            }
        }
        let (t, bs) = (self.seq_len, self.batch_size);
        let nb = self.batches_per_epoch();
        Box::new((skip.min(nb)..nb).map(move |b| {
            let w = &order[b * bs..((b + 1) * bs).min(order.len())];
            let mut xs = Vec::with_capacity(w.len() * t);
            let mut ys = Vec::with_capacity(w.len() * t);
            for &i in w {
                let s = offset + i * t;
                xs.extend_from_slice(&self.ids[s..s + t]);
                ys.extend_from_slice(&self.ids[s + 1..s + t + 1]);
            }
            Ok(vec![
                Tensor::from_vec(xs, &[w.len(), t])?,
                Tensor::from_vec(ys, &[w.len(), t])?,
            ])
        }))
    }
}

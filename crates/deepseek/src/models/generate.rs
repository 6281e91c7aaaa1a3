//! Text generation with a KV cache: greedy, temperature, top-k, top-p, repetition penalty
//! and stop tokens; each token is handed to a callback as soon as it is chosen (streaming).

use super::new_cache;
use crate::nn::KvCache;
use crate::{DType, Error, Result, Tensor};

/// A decoder language model that can run incrementally over a [`KvCache`] per layer.
pub trait CausalLm {
    /// Number of layers (the length of the cache).
    fn num_layers(&self) -> usize;
    /// Size of the vocabulary (the last dim of the logits).
    fn vocab_size(&self) -> usize;
    /// The longest context the model supports, if it has a limit.
    fn max_positions(&self) -> Option<usize>;
    /// Logits [B, T, vocab] for `input_ids` [B, T] at positions `cache.len()..`, appending
    /// their keys and values to `cache`; `attention_mask` covers cached + new positions.
    fn forward_cached(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        cache: &mut [KvCache],
    ) -> Result<Tensor>;
}

/// How [`generate`] picks tokens. `temperature == 0` is greedy decoding (the default).
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (1: all).
    pub top_p: f64,
    /// CTRL-style penalty (> 1 discourages tokens already in the prompt or output).
    pub repetition_penalty: f64,
    /// Generation ends after any of these tokens (which is included in the output).
    pub stop_tokens: Vec<i64>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 32,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            stop_tokens: Vec::new(),
        }
    }
}

/// Picks the next token from `logits` (one row) given the tokens so far.
pub fn sample(logits: &[f32], seen: &[i64], o: &GenerateOptions) -> Result<i64> {
    if logits.is_empty() {
        return Err(Error::value("generate", "empty logits"));
    }
    let mut l: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
    if o.repetition_penalty != 1.0 {
        for &t in seen {
            if let Some(x) = l.get_mut(t as usize) {
                *x = if *x > 0.0 {
                    *x / o.repetition_penalty
                } else {
                    *x * o.repetition_penalty
                };
            }
        }
    }
    let argmax = |l: &[f64]| {
        let mut best = 0;
        for (i, &x) in l.iter().enumerate() {
            if x > l[best] {
                best = i;
            }
        }
        best as i64
    };
    if o.temperature <= 0.0 {
        return Ok(argmax(&l));
    }
    let mut idx: Vec<usize> = (0..l.len()).collect();
    idx.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
    if o.top_k > 0 {
        idx.truncate(o.top_k);
    }
    let m = l[idx[0]];
    let mut p: Vec<f64> = idx
        .iter()
        .map(|&i| ((l[i] - m) / o.temperature).exp())
        .collect();
    let z: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= z);
    if o.top_p < 1.0 {
        let mut acc = 0.0;
        let mut keep = p.len();
        for (n, &x) in p.iter().enumerate() {
            acc += x;
            if acc >= o.top_p {
                keep = n + 1;
                break;
            }
        }
        p.truncate(keep);
        idx.truncate(keep);
        let z: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= z);
    }
    let u = Tensor::rand(&[1], DType::F64)?.to_vec::<f64>()?[0];
    let mut acc = 0.0;
    for (n, &x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return Ok(idx[n] as i64);
        }
    }
    Ok(idx[p.len() - 1] as i64)
}

/// Generates after `prompt`: one forward pass over the prompt, then one per new token over
/// the cache. A prompt plus `max_new_tokens` longer than the model's context is an error.
pub fn generate(
    model: &dyn CausalLm,
    prompt: &[i64],
    o: &GenerateOptions,
    on_token: &mut dyn FnMut(i64) -> Result<()>,
) -> Result<Vec<i64>> {
    if prompt.is_empty() {
        return Err(Error::value("generate", "the prompt has no tokens"));
    }
    if let Some(maxp) = model.max_positions() {
        if prompt.len() + o.max_new_tokens > maxp {
            return Err(Error::value(
                "generate",
                format!(
                    "prompt of {} tokens + max_new_tokens {} exceeds the model's context of {maxp}",
                    prompt.len(),
                    o.max_new_tokens
                ),
            ));
        }
    }
    let _g = crate::no_grad();
    let mut cache = new_cache(model.num_layers());
    let mut seen = prompt.to_vec();
    let mut out = Vec::new();
    let mut input = Tensor::from_vec(prompt.to_vec(), &[1, prompt.len()])?;
    for _ in 0..o.max_new_tokens {
        let logits = model.forward_cached(&input, None, &mut cache)?;
        let t = logits.shape()[1];
        let last = logits
            .select(1, t as isize - 1)?
            .to_dtype(DType::F32)?
            .to_vec::<f32>()?;
        let next = sample(&last, &seen, o)?;
        out.push(next);
        seen.push(next);
        on_token(next)?;
        if o.stop_tokens.contains(&next) {
            break;
        }
        input = Tensor::from_vec(vec![next], &[1, 1])?;
    }
    Ok(out)
}

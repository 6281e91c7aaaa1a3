//! Attention position biases added to the attention scores: ALiBi (Press et al., "Train
//! Short, Test Long", as in BLOOM/MPT) and T5's learned relative position buckets (as in
//! Hugging Face `transformers`' `T5Attention`).
//!
//! Both produce an additive bias `[1, heads, q_len, k_len]` to pass as the float `attn_mask`
//! of [`scaled_dot_product_attention`](super::functional::scaled_dot_product_attention)
//! (added to `q·kᵀ/√d` before the softmax; T5 itself does not scale the scores, so give it
//! `scale = Some(1.0)`):
//!
//! ```
//! use deepseek::prelude::*;
//! use deepseek::nn::{functional as F, position_bias::{alibi_bias, T5RelativePositionBias}};
//! let (b, h, t, d) = (2, 4, 5, 8);
//! let q = Tensor::randn(&[b, h, t, d], DType::F32)?;
//! let bias = alibi_bias(h, t, t, true)?;                      // causal ALiBi, [1, 4, 5, 5]
//! let y = F::scaled_dot_product_attention(&q, &q, &q, Some(&bias), 0.0, false, None)?;
//! let t5 = T5RelativePositionBias::new(h, true, 32, 128)?;  // encoder: bidirectional
//! let y5 = F::scaled_dot_product_attention(&q, &q, &q, Some(&t5.forward(t, t, 0)?), 0.0, false, Some(1.0))?;
//! assert_eq!(y.shape(), y5.shape());
//! # Ok::<(), deepseek::Error>(())
//! ```

use super::{Embedding, Forward};
use crate::{DType, Error, Result, Tensor};

/// ALiBi's per-head slopes: the geometric sequence `2^(-8/n), 2^(-16/n), …` for `n` heads
/// when `n` is a power of two; otherwise those of the largest power of two below `n`,
/// followed by every other slope of twice that power (the paper's and BLOOM's rule).
pub fn alibi_slopes(num_heads: usize) -> Result<Vec<f32>> {
    if num_heads == 0 {
        return Err(Error::value("alibi_slopes", "num_heads must be positive"));
    }
    let closest = 1usize << (usize::BITS - 1 - num_heads.leading_zeros());
    let base = |p: usize| 2f64.powf(-(2f64.powf(-((p as f64).log2() - 3.0))));
    // The base rounded to f32 first, then its powers rounded once (as BLOOM's f32 `pow`).
    let pow = |b: f64, e: usize| ((b as f32) as f64).powi(e as i32) as f32;
    let b = base(closest);
    let mut s: Vec<f32> = (1..=closest).map(|i| pow(b, i)).collect();
    if closest != num_heads {
        let eb = base(2 * closest);
        let rest = closest.min(num_heads - closest);
        s.extend((0..rest).map(|i| pow(eb, 2 * i + 1)));
    }
    Ok(s)
}

/// ALiBi's additive attention bias `[1, num_heads, q_len, k_len]`: `-slope_h · (i - j)` for
/// query `i` and key `j`, where the queries are the last `q_len` of the `k_len` positions
/// (so a decoding step with a KV cache gets the rows it needs). `causal`: keys after the
/// query get `-inf` (the causal mask is included); otherwise the distance is `|i - j|`
/// (the symmetric variant of bidirectional encoders).
pub fn alibi_bias(num_heads: usize, q_len: usize, k_len: usize, causal: bool) -> Result<Tensor> {
    if q_len > k_len {
        return Err(Error::value(
            "alibi_bias",
            format!("q_len ({q_len}) may not exceed k_len ({k_len})"),
        ));
    }
    crate::memory::checked_numel("alibi_bias", &[num_heads, q_len, k_len])?;
    let slopes = alibi_slopes(num_heads)?;
    let off = k_len - q_len;
    let mut v = Vec::with_capacity(num_heads * q_len * k_len);
    for s in &slopes {
        for i in 0..q_len {
            let qi = (i + off) as f32;
            for j in 0..k_len {
                let j = j as f32;
                v.push(if causal && j > qi {
                    f32::NEG_INFINITY
                } else {
                    -s * (qi - j).abs()
                });
            }
        }
    }
    Tensor::from_vec(v, &[1, num_heads, q_len, k_len])
}

/// T5's bucket of a relative position `key - query` (`transformers`'
/// `T5Attention._relative_position_bucket`): half the buckets (all when not
/// `bidirectional`, where only keys before the query count) hold exact distances
/// `0..max_exact`, the rest grow logarithmically up to `max_distance`; farther distances
/// share the last bucket. Computed in f32 like the reference.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> i64 {
    let mut nb = num_buckets as i64;
    let mut bucket = 0i64;
    let rp = if bidirectional {
        nb /= 2;
        if relative_position > 0 {
            bucket += nb;
        }
        relative_position.abs()
    } else {
        -relative_position.min(0)
    };
    let max_exact = nb / 2;
    if rp < max_exact {
        return bucket + rp;
    }
    let scale = ((max_distance as f64 / max_exact as f64).ln()) as f32;
    let large = ((rp as f32 / max_exact as f32).ln() / scale * (nb - max_exact) as f32) as i64;
    bucket + (max_exact + large).min(nb - 1)
}

/// T5's relative position bias: a learned `relative_attention_bias` embedding
/// `[num_buckets, num_heads]` looked up by [`relative_position_bucket`] (`transformers`'
/// `T5Attention.compute_bias`; its parameter name, so T5 checkpoints load).
#[derive(super::Module)]
pub struct T5RelativePositionBias {
    pub relative_attention_bias: Embedding,
    #[module(skip)]
    pub bidirectional: bool,
    #[module(skip)]
    pub num_buckets: usize,
    #[module(skip)]
    pub max_distance: usize,
}

impl T5RelativePositionBias {
    /// `bidirectional` for encoders (T5's `not is_decoder`); T5's defaults are 32 buckets
    /// and a maximum distance of 128.
    pub fn new(
        num_heads: usize,
        bidirectional: bool,
        num_buckets: usize,
        max_distance: usize,
    ) -> Result<T5RelativePositionBias> {
        let min_buckets = if bidirectional { 4 } else { 2 };
        if num_heads == 0 || num_buckets < min_buckets {
            return Err(Error::value(
                "T5RelativePositionBias",
                format!(
                    "need num_heads > 0 and num_buckets >= {min_buckets}, got {num_heads} and {num_buckets}"
                ),
            ));
        }
        let exact = if bidirectional {
            num_buckets / 4
        } else {
            num_buckets / 2
        };
        if max_distance <= exact {
            return Err(Error::value(
                "T5RelativePositionBias",
                format!("max_distance ({max_distance}) must exceed the exact range ({exact})"),
            ));
        }
        Ok(T5RelativePositionBias {
            relative_attention_bias: Embedding::new(num_buckets, num_heads, None)?,
            bidirectional,
            num_buckets,
            max_distance,
        })
    }

    /// The bucket ids `[q_len, k_len]` for queries at positions `offset..offset + q_len`
    /// and keys at `0..k_len`.
    pub fn buckets(&self, q_len: usize, k_len: usize, offset: usize) -> Result<Tensor> {
        crate::memory::checked_numel("T5RelativePositionBias", &[q_len, k_len])?;
        let mut v = Vec::with_capacity(q_len * k_len);
        for i in 0..q_len {
            for j in 0..k_len {
                let rel = j as i64 - (i + offset) as i64;
                v.push(relative_position_bucket(
                    rel,
                    self.bidirectional,
                    self.num_buckets,
                    self.max_distance,
                ));
            }
        }
        Tensor::from_vec(v, &[q_len, k_len])
    }

    /// The bias `[1, num_heads, q_len, k_len]` for queries at positions
    /// `offset..offset + q_len` (`offset` = tokens already in a KV cache) and keys at
    /// `0..k_len`; differentiable in `relative_attention_bias`.
    pub fn forward(&self, q_len: usize, k_len: usize, offset: usize) -> Result<Tensor> {
        let b = self.buckets(q_len, k_len, offset)?;
        let v = self
            .relative_attention_bias
            .forward(&b.to_dtype(DType::I64)?)?;
        v.permute(&[2, 0, 1])?.unsqueeze(0)
    }
}

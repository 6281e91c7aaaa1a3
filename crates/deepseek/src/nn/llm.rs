//! Building blocks of modern decoder LLMs, composed of ordinary tensor ops (so autograd and
//! every backend work unchanged): rotary position embeddings in both layouts, the SwiGLU
//! feed-forward block, grouped-query attention with a KV cache, and the attention masks
//! they need.

use super::layers::{Forward, Linear};
use crate::error::bail_shape;
use crate::{Error, Result, Tensor};

/// How a rotary embedding pairs the features of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// Feature `i` is rotated with feature `i + d/2` (GPT-NeoX, Hugging Face Llama:
    /// `x * cos + rotate_half(x) * sin`).
    HalfSplit,
    /// Features `2i` and `2i + 1` form a pair (GPT-J, Meta's Llama, GGUF files).
    Interleaved,
}

/// Rotary position embedding (RoPE) over heads of `head_dim` features with base `theta`.
/// The angle of pair `i` at position `p` is `p * theta^(-2i/d)`; it has no parameters.
#[derive(Debug, Clone, super::Module)]
pub struct RotaryEmbedding {
    pub head_dim: usize,
    pub theta: f64,
    #[module(skip)]
    pub layout: RopeLayout,
}

impl RotaryEmbedding {
    /// A rotary embedding; `head_dim` must be even.
    pub fn new(head_dim: usize, theta: f64, layout: RopeLayout) -> Result<RotaryEmbedding> {
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(Error::value(
                "RotaryEmbedding",
                format!("head_dim must be even and positive, got {head_dim}"),
            ));
        }
        Ok(RotaryEmbedding {
            head_dim,
            theta,
            layout,
        })
    }

    /// `(cos, sin)` tables of shape [len, head_dim/2] for positions `offset..offset+len`.
    pub fn tables(
        &self,
        offset: usize,
        len: usize,
        dtype: crate::DType,
    ) -> Result<(Tensor, Tensor)> {
        let half = self.head_dim / 2;
        let mut c = Vec::with_capacity(len * half);
        let mut s = Vec::with_capacity(len * half);
        for p in offset..offset + len {
            for i in 0..half {
                let inv = self.theta.powf(-((2 * i) as f64) / self.head_dim as f64);
                let a = p as f64 * inv;
                c.push(a.cos());
                s.push(a.sin());
            }
        }
        Ok((
            Tensor::from_vec(c, &[len, half])?.to_dtype(dtype)?,
            Tensor::from_vec(s, &[len, half])?.to_dtype(dtype)?,
        ))
    }

    /// Rotates `x` of shape [..., T, head_dim] (positions `offset..offset+T` along dim -2).
    pub fn forward(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let r = x.rank();
        if r < 2 || x.shape()[r - 1] != self.head_dim {
            bail_shape!(
                "RotaryEmbedding",
                "expected [..., T, {}], got {:?}",
                self.head_dim,
                x.shape()
            );
        }
        let t = x.shape()[r - 2];
        let half = self.head_dim / 2;
        let (c, s) = self.tables(offset, t, x.dtype())?;
        match self.layout {
            RopeLayout::HalfSplit => {
                let x1 = x.narrow(-1, 0, half)?;
                let x2 = x.narrow(-1, half, half)?;
                let a = x1.mul(&c)?.sub(&x2.mul(&s)?)?;
                let b = x2.mul(&c)?.add(&x1.mul(&s)?)?;
                Tensor::cat(&[a, b], -1)
            }
            RopeLayout::Interleaved => {
                let mut pairs = x.shape()[..r - 1].to_vec();
                pairs.extend([half, 2]);
                let xp = x.reshape(&pairs)?;
                let xe = xp.select(-1, 0)?;
                let xo = xp.select(-1, 1)?;
                let a = xe.mul(&c)?.sub(&xo.mul(&s)?)?;
                let b = xe.mul(&s)?.add(&xo.mul(&c)?)?;
                Tensor::stack(&[a, b], -1)?.reshape(x.shape())
            }
        }
    }
}

/// The SwiGLU feed-forward block of Llama-style models:
/// `down_proj(silu(gate_proj(x)) * up_proj(x))` (Hugging Face names, no biases by default).
#[derive(super::Module)]
pub struct SwiGLU {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl SwiGLU {
    /// A block from `dim` to `hidden_dim` and back (PyTorch's Linear initialisation).
    pub fn new(dim: usize, hidden_dim: usize, bias: bool) -> Result<SwiGLU> {
        Ok(SwiGLU {
            gate_proj: Linear::new(dim, hidden_dim, bias)?,
            up_proj: Linear::new(dim, hidden_dim, bias)?,
            down_proj: Linear::new(hidden_dim, dim, bias)?,
        })
    }
}
impl Forward for SwiGLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.gate_proj.forward(x)?.silu()?;
        self.down_proj.forward(&g.mul(&self.up_proj.forward(x)?)?)
    }
}

/// The keys and values of one attention layer seen so far, [B, H_kv, S, head_dim] each;
/// [`GroupedQueryAttention::forward_cached`] appends to it, so each generation step feeds
/// only the new tokens.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub k: Option<Tensor>,
    pub v: Option<Tensor>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> KvCache {
        KvCache::default()
    }
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.shape()[k.rank() - 2])
    }
    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends `k`, `v` ([B, H, T, D]) along the sequence and returns the whole keys and
    /// values.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, v) = match (&self.k, &self.v) {
            (Some(k0), Some(v0)) => (
                Tensor::cat(&[k0.clone(), k.clone()], 2)?,
                Tensor::cat(&[v0.clone(), v.clone()], 2)?,
            ),
            _ => (k.clone(), v.clone()),
        };
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        Ok((k, v))
    }
}

/// An additive attention mask [B, 1, T, S] (0 where allowed, `fill` where not) for `t` new
/// queries at positions `offset..offset+t` over `s = offset + t` keys: causal when `causal`,
/// and with keys whose `key_keep[b][j]` is false masked out. Use a finite `fill` such as
/// `f32::MIN` (Hugging Face's choice) to keep fully masked rows finite, `-inf` to follow
/// PyTorch's `nn.Transformer`.
pub fn attention_mask(
    batch: usize,
    t: usize,
    s: usize,
    offset: usize,
    causal: bool,
    key_keep: Option<&[Vec<bool>]>,
    fill: f32,
) -> Result<Tensor> {
    if let Some(kk) = key_keep {
        if kk.len() != batch || kk.iter().any(|r| r.len() != s) {
            bail_shape!(
                "attention_mask",
                "key mask must be [{batch}, {s}], got {} rows of lengths {:?}",
                kk.len(),
                kk.iter().map(|r| r.len()).collect::<Vec<_>>()
            );
        }
    }
    let mut m = vec![0f32; batch * t * s];
    for b in 0..batch {
        for i in 0..t {
            for j in 0..s {
                let future = causal && j > offset + i;
                let pad = key_keep.is_some_and(|kk| !kk[b][j]);
                if future || pad {
                    m[(b * t + i) * s + j] = fill;
                }
            }
        }
    }
    Tensor::from_vec(m, &[batch, 1, t, s])
}

/// Repeats each of the `h_kv` heads of `x` [B, h_kv, S, D] `rep` times, giving
/// [B, h_kv * rep, S, D] (heads `g*rep .. (g+1)*rep` share kv head `g`, like Hugging Face's
/// `repeat_kv`).
pub fn repeat_kv(x: &Tensor, rep: usize) -> Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let s = x.shape();
    if s.len() != 4 {
        bail_shape!("repeat_kv", "expected [B, H, S, D], got {s:?}");
    }
    x.unsqueeze(2)?
        .expand(&[s[0], s[1], rep, s[2], s[3]])?
        .reshape(&[s[0], s[1] * rep, s[2], s[3]])
}

/// Grouped-query attention (Llama names `q_proj`, `k_proj`, `v_proj`, `o_proj`): `num_heads`
/// query heads share `num_kv_heads` key/value heads (multi-query when 1, ordinary multi-head
/// when equal), with an optional rotary embedding and a [`KvCache`]. Inputs are batch-first
/// [B, T, E].
#[derive(super::Module)]
pub struct GroupedQueryAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rope: Option<RotaryEmbedding>,
}

impl GroupedQueryAttention {
    /// A layer over `embed_dim` features with `head_dim = embed_dim / num_heads`.
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        num_kv_heads: usize,
        bias: bool,
        rope: Option<RotaryEmbedding>,
    ) -> Result<GroupedQueryAttention> {
        if num_heads == 0
            || num_kv_heads == 0
            || !embed_dim.is_multiple_of(num_heads)
            || !num_heads.is_multiple_of(num_kv_heads)
        {
            return Err(Error::value(
                "GroupedQueryAttention",
                format!("embed_dim {embed_dim}, num_heads {num_heads} and num_kv_heads {num_kv_heads}: heads must divide embed_dim and kv heads must divide heads"),
            ));
        }
        let hd = embed_dim / num_heads;
        Ok(GroupedQueryAttention {
            q_proj: Linear::new(embed_dim, num_heads * hd, bias)?,
            k_proj: Linear::new(embed_dim, num_kv_heads * hd, bias)?,
            v_proj: Linear::new(embed_dim, num_kv_heads * hd, bias)?,
            o_proj: Linear::new(num_heads * hd, embed_dim, bias)?,
            num_heads,
            num_kv_heads,
            head_dim: hd,
            rope,
        })
    }

    /// Attention of `x` [B, T, E] with an additive `mask` broadcastable to [B, H, T, S]
    /// (or causal when `mask` is None and `causal`), appending to `cache` when given (the
    /// new tokens are at positions `cache.len()..`; pass a mask built with that offset, see
    /// [`attention_mask`]).
    pub fn forward_cached(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        causal: bool,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        if x.rank() != 3 {
            bail_shape!(
                "GroupedQueryAttention",
                "expected [B, T, E], got {:?}",
                x.shape()
            );
        }
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let hd = self.head_dim;
        let heads = |y: Tensor, h: usize| y.reshape(&[b, t, h, hd])?.transpose(1, 2);
        let mut q = heads(self.q_proj.forward(x)?, self.num_heads)?;
        let mut k = heads(self.k_proj.forward(x)?, self.num_kv_heads)?;
        let v = heads(self.v_proj.forward(x)?, self.num_kv_heads)?;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        if let Some(r) = &self.rope {
            q = r.forward(&q, offset)?;
            k = r.forward(&k, offset)?;
        }
        let (k, v) = match cache {
            Some(c) => c.append(&k, &v)?,
            None => (k, v),
        };
        let rep = self.num_heads / self.num_kv_heads;
        let (k, v) = (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?);
        let built;
        let mask = match (mask, causal) {
            (Some(m), _) => Some(m),
            (None, true) => {
                built = attention_mask(1, t, offset + t, offset, true, None, f32::NEG_INFINITY)?
                    .to_dtype(q.dtype())?;
                Some(&built)
            }
            (None, false) => None,
        };
        let o =
            super::functional::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, false, None)?;
        self.o_proj
            .forward(&o.transpose(1, 2)?.reshape(&[b, t, self.num_heads * hd])?)
    }
}
impl Forward for GroupedQueryAttention {
    /// Causal self-attention without a cache.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_cached(x, None, true, None)
    }
}

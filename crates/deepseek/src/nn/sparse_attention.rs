//! The tutorial's `SparseAttention(dim, num_heads, locality_window=32)`, finished: each query
//! attends to the keys of a local window plus a set of global tokens, and global tokens
//! attend to every position (Longformer/BigBird-style). The scores are computed blockwise,
//! so time and memory grow as O(T·w) rather than O(T²); everything is composed of tensor ops,
//! so the backward pass comes from autograd.
//!
//! The pattern: query `i` may attend key `j` when
//! `(|i - j| < w  or  i is global  or  j is global)  and  (not causal or j <= i)`,
//! with `w = locality_window`. [`SparseAttention::dense_mask`] gives the same pattern as a
//! dense [T, T] mask, and [`SparseAttention::forward_dense`] the dense computation with it
//! (the tests check the two paths agree, forward and backward).

use super::layers::{Forward, Linear};
use crate::error::bail_shape;
use crate::{DType, Error, Result, Tensor};

/// Multi-head local-window + global attention over batch-first inputs [B, T, dim]
/// (parameters `qkv` [3·dim, dim] and `proj` [dim, dim], PyTorch's Linear initialisation).
#[derive(super::Module)]
pub struct SparseAttention {
    pub qkv: Linear,
    pub proj: Linear,
    pub dim: usize,
    pub num_heads: usize,
    pub locality_window: usize,
    /// Positions that attend everywhere and are attended from everywhere.
    #[module(skip)]
    pub global_tokens: Vec<usize>,
    pub causal: bool,
}

/// Additive mask fill: finite, so rows of padding stay finite (they are dropped).
const NEG: f32 = f32::MIN;

impl SparseAttention {
    /// `SparseAttention(dim, num_heads, locality_window)`, non-causal, no global tokens;
    /// set [`Self::global_tokens`] and [`Self::causal`] as needed.
    pub fn new(dim: usize, num_heads: usize, locality_window: usize) -> Result<SparseAttention> {
        if num_heads == 0 || !dim.is_multiple_of(num_heads) || locality_window == 0 {
            return Err(Error::value(
                "SparseAttention",
                format!("dim {dim} must be divisible by num_heads {num_heads}, and locality_window ({locality_window}) positive"),
            ));
        }
        Ok(SparseAttention {
            qkv: Linear::new(dim, 3 * dim, true)?,
            proj: Linear::new(dim, dim, true)?,
            dim,
            num_heads,
            locality_window,
            global_tokens: Vec::new(),
            causal: false,
        })
    }

    fn globals(&self, t: usize) -> Result<Vec<usize>> {
        let mut g = self.global_tokens.clone();
        g.sort_unstable();
        g.dedup();
        if let Some(&bad) = g.iter().find(|&&i| i >= t) {
            return Err(Error::index(
                "SparseAttention",
                format!("global token {bad} is outside a sequence of length {t}"),
            ));
        }
        Ok(g)
    }

    fn allowed(&self, i: usize, j: usize, is_global: &[bool]) -> bool {
        let near = i.abs_diff(j) < self.locality_window;
        (near || is_global[i] || is_global[j]) && (!self.causal || j <= i)
    }

    /// The attention pattern as a dense [T, T] bool mask (true = may attend).
    pub fn dense_mask(&self, t: usize) -> Result<Tensor> {
        let g = self.globals(t)?;
        let mut is_g = vec![false; t];
        for &i in &g {
            is_g[i] = true;
        }
        let mut m = vec![0u8; t * t];
        for i in 0..t {
            for j in 0..t {
                m[i * t + j] = self.allowed(i, j, &is_g) as u8;
            }
        }
        Tensor::from_vec(m, &[t, t])?.to_dtype(DType::Bool)
    }

    /// q, k, v as [B, H, T, hd].
    fn project(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        if x.rank() != 3 || x.shape()[2] != self.dim {
            bail_shape!(
                "SparseAttention",
                "expected [B, T, {}], got {:?}",
                self.dim,
                x.shape()
            );
        }
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let hd = self.dim / self.num_heads;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape(&[b, t, 3, self.num_heads, hd])?
            .permute(&[2, 0, 3, 1, 4])?;
        Ok((qkv.select(0, 0)?, qkv.select(0, 1)?, qkv.select(0, 2)?))
    }

    fn output(&self, o: &Tensor) -> Result<Tensor> {
        let (b, t) = (o.shape()[0], o.shape()[2]);
        self.proj
            .forward(&o.transpose(1, 2)?.reshape(&[b, t, self.dim])?)
    }

    /// The same attention computed densely with [`Self::dense_mask`] (O(T²); a reference).
    pub fn forward_dense(&self, x: &Tensor) -> Result<Tensor> {
        let (q, k, v) = self.project(x)?;
        let m = self.dense_mask(x.shape()[1])?;
        let o = super::functional::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            Some(&m),
            0.0,
            false,
            None,
        )?;
        self.output(&o)
    }

    /// Blockwise attention of q, k, v [B, H, T, hd]: O(T·(3w + G)) scores.
    pub fn attend_blockwise(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (b, h, t, hd) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
        let w = self.locality_window.min(t.max(1));
        let nb = t.div_ceil(w);
        let tp = nb * w;
        let g = self.globals(t)?;
        let mut is_g = vec![false; t];
        for &i in &g {
            is_g[i] = true;
        }
        let scale = 1.0 / (hd as f64).sqrt();
        let q = q.mul_scalar(scale)?;
        // Pad the sequence to nb*w queries and w keys on each side: [B, H, tp + 2w, hd].
        let pad_q = |x: &Tensor| x.pad(&[0, 0, 0, tp - t], 0.0);
        let pad_kv = |x: &Tensor| x.pad(&[0, 0, w, tp - t + w], 0.0);
        let qb = pad_q(&q)?.reshape(&[b, h, nb, w, hd])?;
        let band = |x: &Tensor| -> Result<Tensor> {
            let xp = pad_kv(x)?;
            let parts = (0..3)
                .map(|s| xp.narrow(2, s * w, tp)?.reshape(&[b, h, nb, w, hd]))
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&parts, 3) // [B, H, nb, 3w, hd]
        };
        let (kb, vb) = (band(k)?, band(v)?);
        // Local scores [B, H, nb, w, 3w] with the band mask (global keys are left to the
        // global columns so that no key counts twice).
        let mut lm = vec![NEG; nb * w * 3 * w];
        for blk in 0..nb {
            for r in 0..w {
                let i = blk * w + r;
                for c in 0..3 * w {
                    let j = (blk * w + c) as isize - w as isize;
                    if i < t && j >= 0 && (j as usize) < t {
                        let j = j as usize;
                        let near = i.abs_diff(j) < self.locality_window;
                        if near && !is_g[j] && (!self.causal || j <= i) {
                            lm[(blk * w + r) * 3 * w + c] = 0.0;
                        }
                    }
                }
            }
        }
        let lmask = Tensor::from_vec(lm, &[nb, w, 3 * w])?.to_dtype(q.dtype())?;
        let mut scores = vec![qb.matmul(&kb.transpose(-2, -1)?)?.add(&lmask)?];
        let mut values = vec![vb];
        let gi = Tensor::from_vec(g.iter().map(|&i| i as i64).collect::<Vec<_>>(), &[g.len()])?;
        if !g.is_empty() {
            // Every query against the global keys: [B, H, nb, w, G].
            let (kg, vg) = (k.index_select(2, &gi)?, v.index_select(2, &gi)?);
            let mut gm = vec![NEG; tp * g.len()];
            for i in 0..t {
                for (c, &j) in g.iter().enumerate() {
                    if !self.causal || j <= i {
                        gm[i * g.len() + c] = 0.0;
                    }
                }
            }
            let gmask = Tensor::from_vec(gm, &[nb, w, g.len()])?.to_dtype(q.dtype())?;
            scores.push(
                qb.matmul(&kg.transpose(-2, -1)?.unsqueeze(2)?)?
                    .add(&gmask)?,
            );
            values.push(vg.unsqueeze(2)?.expand(&[b, h, nb, g.len(), hd])?);
        }
        let p = Tensor::cat(&scores, -1)?.softmax(-1)?;
        let mut o: Option<Tensor> = None;
        let mut at = 0;
        for (s, val) in scores.iter().zip(&values) {
            let n = s.shape()[4];
            let part = p.narrow(-1, at, n)?.matmul(val)?;
            at += n;
            o = Some(match o {
                Some(o) => o.add(&part)?,
                None => part,
            });
        }
        let local = o
            .ok_or_else(|| Error::value("SparseAttention", "no scores"))?
            .reshape(&[b, h, tp, hd])?
            .narrow(2, 0, t)?;
        if g.is_empty() {
            return Ok(local);
        }
        // Global queries attend to every key (causally when causal): [B, H, G, hd].
        let qg = q.index_select(2, &gi)?;
        let mut dm = vec![0f32; g.len() * t];
        if self.causal {
            for (r, &i) in g.iter().enumerate() {
                for j in i + 1..t {
                    dm[r * t + j] = NEG;
                }
            }
        }
        let dmask = Tensor::from_vec(dm, &[g.len(), t])?.to_dtype(q.dtype())?;
        let og = qg
            .matmul(&k.transpose(-2, -1)?)?
            .add(&dmask)?
            .softmax(-1)?
            .matmul(v)?;
        // Put the global rows in place: local * keep + onehot @ og.
        let mut keep = vec![1f32; t];
        let mut onehot = vec![0f32; t * g.len()];
        for (c, &i) in g.iter().enumerate() {
            keep[i] = 0.0;
            onehot[i * g.len() + c] = 1.0;
        }
        let keep = Tensor::from_vec(keep, &[t, 1])?.to_dtype(q.dtype())?;
        let onehot = Tensor::from_vec(onehot, &[t, g.len()])?.to_dtype(q.dtype())?;
        local.mul(&keep)?.add(&onehot.matmul(&og)?)
    }
}

impl SparseAttention {
    /// The attention probabilities [B, H, T, T] of `x` [B, T, dim]: `softmax(q kᵀ/√hd)` over
    /// the keys [`Self::dense_mask`] allows, zero elsewhere. Dense, O(T²): for inspection
    /// (attention maps), not for the forward pass.
    pub fn attention_weights(&self, x: &Tensor) -> Result<Tensor> {
        let (q, k, _) = self.project(x)?;
        self.weights_of(&q, &k)
    }

    fn weights_of(&self, q: &Tensor, k: &Tensor) -> Result<Tensor> {
        let hd = self.dim / self.num_heads;
        let keep = self.dense_mask(q.shape()[2])?;
        q.matmul(&k.transpose(-2, -1)?)?
            .mul_scalar(1.0 / (hd as f64).sqrt())?
            .masked_fill(&keep.logical_not()?, f64::NEG_INFINITY)?
            .softmax(-1)
    }

    /// The blockwise forward of `x` [B, T, dim] and its attention probabilities
    /// [B, H, T, T] (see [`Self::attention_weights`]).
    pub fn forward_with_attentions(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (q, k, v) = self.project(x)?;
        let w = self.weights_of(&q, &k)?;
        Ok((self.output(&self.attend_blockwise(&q, &k, &v)?)?, w))
    }
}

impl Forward for SparseAttention {
    /// Blockwise sparse attention of `x` [B, T, dim]. Inside
    /// [`crate::nn::functional::record_attention`] its (dense) probabilities are recorded
    /// too.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (q, k, v) = self.project(x)?;
        if crate::ops::attention::is_recording_attention() {
            crate::ops::attention::record_attention_map(&self.weights_of(&q, &k)?);
        }
        let o = self.attend_blockwise(&q, &k, &v)?;
        self.output(&o)
    }
}

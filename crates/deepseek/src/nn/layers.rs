//! Layers with PyTorch's parameter names, shapes and default initialisations.

use super::functional as F;
use super::module::{join, TrainFlag, Visit, Visitor};
use crate::error::bail_shape;
use crate::{DType, Error, Result, Tensor};

/// A module with one tensor in and one out (what [`Sequential`] chains).
pub trait Forward {
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
}

/// `Module + Forward`, object-safe, for containers.
pub trait Layer: super::Module + Forward + Send + Sync {}
impl<T: super::Module + Forward + Send + Sync> Layer for T {}

fn uniform(shape: &[usize], bound: f64) -> Result<Tensor> {
    Tensor::uniform(shape, -bound, bound, DType::F32)?.requires_grad_(true)
}

/// `y = x W^T + b` (weight [out, in]); PyTorch's init: U(-1/sqrt(in), 1/sqrt(in)).
///
/// `packed` optionally holds the same weight block-quantised (e.g. from a GGUF file; see
/// [`crate::quant::block`]): inference on a few rows then reads the blocks instead of the
/// float32 matrix. It is only used while `weight` is unchanged and no gradient is needed.
#[derive(super::Module)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    #[module(skip)]
    pub packed: Option<std::sync::Arc<crate::quant::BlockQuantWeight>>,
}

impl Linear {
    pub fn new(in_features: usize, out_features: usize, bias: bool) -> Result<Linear> {
        let k = 1.0 / (in_features.max(1) as f64).sqrt();
        Ok(Linear {
            weight: uniform(&[out_features, in_features], k)?,
            bias: if bias {
                Some(uniform(&[out_features], k)?)
            } else {
                None
            },
            packed: None,
        })
    }
}
impl Forward for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear_maybe_packed(x, &self.weight, self.bias.as_ref(), self.packed.as_deref())
    }
}

/// `x.linear(weight, bias)`, through `packed` when it applies (see [`Linear`]).
pub fn linear_maybe_packed(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    packed: Option<&crate::quant::BlockQuantWeight>,
) -> Result<Tensor> {
    if let Some(p) = packed {
        if let Some(y) = p.forward(weight, bias, x)? {
            return Ok(y);
        }
    }
    x.linear(weight, bias)
}

/// A lookup table of `num_embeddings` rows of `embedding_dim`, N(0, 1) init; the
/// `padding_idx` row starts at zero and gets no gradient.
#[derive(super::Module)]
pub struct Embedding {
    pub weight: Tensor,
    pub padding_idx: Option<i64>,
}

impl Embedding {
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<i64>,
    ) -> Result<Embedding> {
        let w = Tensor::randn(&[num_embeddings, embedding_dim], DType::F32)?;
        if let Some(p) = padding_idx {
            let q = if p < 0 { p + num_embeddings as i64 } else { p };
            if q < 0 || q >= num_embeddings as i64 {
                return Err(Error::index(
                    "Embedding",
                    format!("padding_idx {p} must be within num_embeddings {num_embeddings}"),
                ));
            }
            w.select(0, q as isize)?
                .copy_(&Tensor::zeros(&[embedding_dim], DType::F32)?)?;
        }
        Ok(Embedding {
            weight: w.requires_grad_(true)?,
            padding_idx,
        })
    }
}
impl Forward for Embedding {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Tensor::embedding(&self.weight, x, self.padding_idx)
    }
}

/// Configuration of [`Lstm`] and [`Gru`], with PyTorch's defaults.
#[derive(Debug, Clone, Copy)]
pub struct RnnConfig {
    pub num_layers: usize,
    pub bias: bool,
    pub batch_first: bool,
    pub dropout: f64,
    pub bidirectional: bool,
}
impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig {
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
}

/// Weights of a multi-layer recurrent net in PyTorch's order and names.
pub struct RnnWeights {
    pub names: Vec<String>,
    pub tensors: Vec<Tensor>,
}

impl RnnWeights {
    fn new(gates: usize, input: usize, hidden: usize, c: &RnnConfig) -> Result<RnnWeights> {
        let k = 1.0 / (hidden.max(1) as f64).sqrt();
        let dirs = if c.bidirectional { 2 } else { 1 };
        let mut names = Vec::new();
        let mut tensors = Vec::new();
        for l in 0..c.num_layers {
            for d in 0..dirs {
                let sfx = if d == 1 {
                    format!("l{l}_reverse")
                } else {
                    format!("l{l}")
                };
                let in_l = if l == 0 { input } else { hidden * dirs };
                names.push(format!("weight_ih_{sfx}"));
                tensors.push(uniform(&[gates * hidden, in_l], k)?);
                names.push(format!("weight_hh_{sfx}"));
                tensors.push(uniform(&[gates * hidden, hidden], k)?);
                if c.bias {
                    names.push(format!("bias_ih_{sfx}"));
                    tensors.push(uniform(&[gates * hidden], k)?);
                    names.push(format!("bias_hh_{sfx}"));
                    tensors.push(uniform(&[gates * hidden], k)?);
                }
            }
        }
        Ok(RnnWeights { names, tensors })
    }
}

impl Visit for RnnWeights {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        for (n, t) in self.names.iter().zip(&self.tensors) {
            v.param(&join(prefix, n), t);
        }
    }
}

fn initial_state(
    x: &Tensor,
    layers: usize,
    hidden: usize,
    batch_first: bool,
    unbatched: bool,
) -> Result<Tensor> {
    let b = if unbatched {
        1
    } else if batch_first {
        x.shape()[0]
    } else {
        x.shape()[1]
    };
    Tensor::zeros(&[layers, b, hidden], x.dtype())
}

/// Long short-term memory (PyTorch's `nn.LSTM`): gates i, f, g, o; weights
/// `weight_ih_l{k}` [4H, in], `weight_hh_l{k}` [4H, H], `bias_ih_l{k}`, `bias_hh_l{k}`.
/// `forward` returns `(output, (h_n, c_n))`.
pub struct Lstm {
    pub input_size: usize,
    pub hidden_size: usize,
    pub config: RnnConfig,
    pub weights: RnnWeights,
    pub training: TrainFlag,
}

impl Visit for Lstm {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        self.weights.visit(prefix, v);
    }
    fn set_train(&mut self, on: bool) {
        self.training.0 = on;
    }
}
impl super::Module for Lstm {}

impl Lstm {
    pub fn new(input_size: usize, hidden_size: usize, config: RnnConfig) -> Result<Lstm> {
        Ok(Lstm {
            input_size,
            hidden_size,
            config,
            weights: RnnWeights::new(4, input_size, hidden_size, &config)?,
            training: TrainFlag::default(),
        })
    }
    /// Runs the sequence; `state` is `(h_0, c_0)`, each [layers*dirs, B, H] (zeros if None).
    pub fn forward_with(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        if !x.dtype().is_float() {
            return Err(Error::dtype(
                "LSTM",
                format!(
                    "expected a floating-point input (e.g. an Embedding's output), got {}",
                    x.dtype()
                ),
            ));
        }
        let unbatched = x.rank() == 2;
        let x3 = if unbatched {
            x.unsqueeze(if self.config.batch_first { 0 } else { 1 })?
        } else {
            x.clone()
        };
        if x3.rank() != 3 || x3.shape()[2] != self.input_size {
            bail_shape!(
                "LSTM",
                "expected input [.., .., {}], got {:?}",
                self.input_size,
                x.shape()
            );
        }
        let dirs = if self.config.bidirectional { 2 } else { 1 };
        let n = self.config.num_layers * dirs;
        let (h0, c0) = match state {
            Some((h, c)) => {
                let f = |t: &Tensor| {
                    if unbatched {
                        t.unsqueeze(1)
                    } else {
                        Ok(t.clone())
                    }
                };
                (f(h)?, f(c)?)
            }
            None => {
                let z = initial_state(&x3, n, self.hidden_size, self.config.batch_first, false)?;
                (z.clone(), z)
            }
        };
        let opt = F::RnnOptions {
            bidirectional: self.config.bidirectional,
            dropout: self.config.dropout,
            training: self.training.0,
        };
        let (o, h, c) = F::lstm_with(
            &x3,
            &h0,
            &c0,
            &self.weights.tensors,
            self.config.num_layers,
            self.config.batch_first,
            opt,
        )?;
        if unbatched {
            let d = if self.config.batch_first { 0 } else { 1 };
            Ok((o.squeeze_dim(d)?, (h.squeeze_dim(1)?, c.squeeze_dim(1)?)))
        } else {
            Ok((o, (h, c)))
        }
    }

    /// `self.forward_with(&embedding.forward(ids)?, state)`, computed faster when the
    /// vocabulary is smaller than the batch's token count: the embedding table is projected
    /// through the first layer's input weights once (`table = E @ W_ih^T`, [V, 4H]) and each
    /// token gathers its row, instead of multiplying every token's embedding by `W_ih`
    /// (and, in backward, two more `[tokens, E] x [E, 4H]` products). Same model, same
    /// parameters and gradients (up to rounding). Falls back to the plain path for a
    /// bidirectional LSTM, an embedding with `padding_idx`, or a large vocabulary.
    ///
    /// ```
    /// use deepseek::nn::{Embedding, Forward, Lstm, RnnConfig};
    /// use deepseek::Tensor;
    /// let emb = Embedding::new(10, 8, None)?;
    /// let cfg = RnnConfig { batch_first: true, ..Default::default() };
    /// let lstm = Lstm::new(8, 16, cfg)?;
    /// let ids = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2], &[2, 6])?;
    /// let (fast, _) = lstm.forward_tokens(&emb, &ids, None)?;
    /// let (plain, _) = lstm.forward(&emb.forward(&ids)?)?;
    /// assert!(fast.sub(&plain)?.abs()?.max_all()?.item()? < 1e-5);
    /// # Ok::<(), deepseek::Error>(())
    /// ```
    pub fn forward_tokens(
        &self,
        embedding: &Embedding,
        ids: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let w = &embedding.weight;
        let fits = !self.config.bidirectional
            && embedding.padding_idx.is_none()
            && ids.rank() == 2
            && w.rank() == 2
            && w.shape()[1] == self.input_size
            && w.shape()[0] <= ids.numel()
            && !self.weights.tensors.is_empty();
        if !fits {
            return self.forward_with(&embedding.forward(ids)?, state);
        }
        let table = w.matmul(&self.weights.tensors[0].t()?)?;
        // Gather in the order the layer runs (time-major), so no transposed copy is needed.
        let (tm_ids, batch_first) = if self.config.batch_first {
            (ids.t()?.contiguous()?, true)
        } else {
            (ids.clone(), false)
        };
        let gx = Tensor::embedding(&table, &tm_ids, None)?;
        let (out, hc) = self.run_time_major(&gx, true, state)?;
        let out = if batch_first {
            out.transpose(0, 1)?
        } else {
            out
        };
        Ok((out, hc))
    }

    /// Runs a time-major input (or projection) through the layers with the batch-first flag
    /// off; the caller transposes the output back.
    fn run_time_major(
        &self,
        x: &Tensor,
        projected: bool,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let n = self.config.num_layers;
        let (h0, c0) = match state {
            Some((h, c)) => (h.clone(), c.clone()),
            None => {
                let z = initial_state(x, n, self.hidden_size, false, false)?;
                (z.clone(), z)
            }
        };
        let opt = F::RnnOptions {
            bidirectional: false,
            dropout: self.config.dropout,
            training: self.training.0,
        };
        let f = if projected {
            F::lstm_with_projected_input
        } else {
            F::lstm_with
        };
        let (o, h, c) = f(x, &h0, &c0, &self.weights.tensors, n, false, opt)?;
        Ok((o, (h, c)))
    }

    /// [`Lstm::forward_with`] from a zero state.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, (Tensor, Tensor))> {
        self.forward_with(x, None)
    }
}

/// Gated recurrent unit (PyTorch's `nn.GRU`): gates r, z, n. `forward` returns
/// `(output, h_n)`.
pub struct Gru {
    pub input_size: usize,
    pub hidden_size: usize,
    pub config: RnnConfig,
    pub weights: RnnWeights,
    pub training: TrainFlag,
}

impl Visit for Gru {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        self.weights.visit(prefix, v);
    }
    fn set_train(&mut self, on: bool) {
        self.training.0 = on;
    }
}
impl super::Module for Gru {}

impl Gru {
    pub fn new(input_size: usize, hidden_size: usize, config: RnnConfig) -> Result<Gru> {
        Ok(Gru {
            input_size,
            hidden_size,
            config,
            weights: RnnWeights::new(3, input_size, hidden_size, &config)?,
            training: TrainFlag::default(),
        })
    }
    /// Runs the sequence from `h_0` [layers*dirs, B, H] (zeros if None).
    pub fn forward_with(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        if x.rank() != 3 || x.shape()[2] != self.input_size {
            bail_shape!(
                "GRU",
                "expected input [.., .., {}], got {:?}",
                self.input_size,
                x.shape()
            );
        }
        let dirs = if self.config.bidirectional { 2 } else { 1 };
        let h0 = match h0 {
            Some(h) => h.clone(),
            None => initial_state(
                x,
                self.config.num_layers * dirs,
                self.hidden_size,
                self.config.batch_first,
                false,
            )?,
        };
        let opt = F::RnnOptions {
            bidirectional: self.config.bidirectional,
            dropout: self.config.dropout,
            training: self.training.0,
        };
        F::gru_with(
            x,
            &h0,
            &self.weights.tensors,
            self.config.num_layers,
            self.config.batch_first,
            opt,
        )
    }
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        self.forward_with(x, None)
    }
}

/// 2-D convolution layer (weight [out, in/groups, kh, kw]).
#[derive(super::Module)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    #[module(skip)]
    pub stride: [usize; 2],
    #[module(skip)]
    pub padding: [usize; 2],
    #[module(skip)]
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
        bias: bool,
    ) -> Result<Conv2d> {
        if groups == 0 || !in_ch.is_multiple_of(groups) || !out_ch.is_multiple_of(groups) {
            return Err(Error::value("Conv2d", format!("in_channels {in_ch} and out_channels {out_ch} must be divisible by groups {groups}")));
        }
        let fan_in = in_ch / groups * kernel[0] * kernel[1];
        let k = 1.0 / (fan_in.max(1) as f64).sqrt();
        Ok(Conv2d {
            weight: uniform(&[out_ch, in_ch / groups, kernel[0], kernel[1]], k)?,
            bias: if bias {
                Some(uniform(&[out_ch], k)?)
            } else {
                None
            },
            stride,
            padding,
            dilation,
            groups,
        })
    }
}
impl Forward for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::conv2d(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }
}

/// 1-D convolution layer (weight [out, in/groups, k]).
#[derive(super::Module)]
pub struct Conv1d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

impl Conv1d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        groups: usize,
        bias: bool,
    ) -> Result<Conv1d> {
        let c = Conv2d::new(
            in_ch,
            out_ch,
            [1, kernel],
            [1, stride],
            [0, padding],
            [1, dilation],
            groups,
            bias,
        )?;
        Ok(Conv1d {
            weight: c.weight.squeeze_dim(2)?.detach().requires_grad_(true)?,
            bias: c.bias,
            stride,
            padding,
            dilation,
            groups,
        })
    }
}
impl Forward for Conv1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::conv1d(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
    }
}

/// Max pooling layer.
#[derive(super::Module, Clone, Copy)]
pub struct MaxPool2d {
    #[module(skip)]
    pub kernel: [usize; 2],
    #[module(skip)]
    pub stride: [usize; 2],
    #[module(skip)]
    pub padding: [usize; 2],
}
impl Forward for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::max_pool2d(x, self.kernel, self.stride, self.padding, [1, 1], false)
    }
}

/// Average pooling layer (count_include_pad = true, like PyTorch's default).
#[derive(super::Module, Clone, Copy)]
pub struct AvgPool2d {
    #[module(skip)]
    pub kernel: [usize; 2],
    #[module(skip)]
    pub stride: [usize; 2],
    #[module(skip)]
    pub padding: [usize; 2],
}
impl Forward for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::avg_pool2d(x, self.kernel, self.stride, self.padding, false, true, None)
    }
}

/// Layer norm over the trailing `normalized_shape` (weight ones, bias zeros).
#[derive(super::Module)]
pub struct LayerNorm {
    pub weight: Option<Tensor>,
    pub bias: Option<Tensor>,
    pub normalized_shape: Vec<usize>,
    pub eps: f64,
}
impl LayerNorm {
    pub fn new(normalized_shape: &[usize], eps: f64, affine: bool) -> Result<LayerNorm> {
        let (w, b) = if affine {
            (
                Some(Tensor::ones(normalized_shape, DType::F32)?.requires_grad_(true)?),
                Some(Tensor::zeros(normalized_shape, DType::F32)?.requires_grad_(true)?),
            )
        } else {
            (None, None)
        };
        Ok(LayerNorm {
            weight: w,
            bias: b,
            normalized_shape: normalized_shape.to_vec(),
            eps,
        })
    }
}
impl Forward for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::layer_norm(
            x,
            &self.normalized_shape,
            self.weight.as_ref(),
            self.bias.as_ref(),
            self.eps,
        )
    }
}

/// RMS norm (weight ones).
#[derive(super::Module)]
pub struct RmsNorm {
    pub weight: Option<Tensor>,
    pub normalized_shape: Vec<usize>,
    pub eps: Option<f64>,
}
impl RmsNorm {
    pub fn new(normalized_shape: &[usize], eps: Option<f64>) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: Some(Tensor::ones(normalized_shape, DType::F32)?.requires_grad_(true)?),
            normalized_shape: normalized_shape.to_vec(),
            eps,
        })
    }
}
impl Forward for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::rms_norm(x, &self.normalized_shape, self.weight.as_ref(), self.eps)
    }
}

/// Batch norm over dim 1 with running statistics (PyTorch's `BatchNorm1d`/`BatchNorm2d`:
/// buffers `running_mean`, `running_var`, `num_batches_tracked`).
#[derive(super::Module)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    #[module(buffer)]
    pub running_mean: Tensor,
    #[module(buffer)]
    pub running_var: Tensor,
    #[module(buffer)]
    pub num_batches_tracked: Tensor,
    pub momentum: f64,
    pub eps: f64,
    pub training: TrainFlag,
}
/// PyTorch's `BatchNorm1d`.
pub type BatchNorm1d = BatchNorm;
/// PyTorch's `BatchNorm2d`.
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    pub fn new(num_features: usize, eps: f64, momentum: f64) -> Result<BatchNorm> {
        Ok(BatchNorm {
            weight: Tensor::ones(&[num_features], DType::F32)?.requires_grad_(true)?,
            bias: Tensor::zeros(&[num_features], DType::F32)?.requires_grad_(true)?,
            running_mean: Tensor::zeros(&[num_features], DType::F32)?,
            running_var: Tensor::ones(&[num_features], DType::F32)?,
            num_batches_tracked: Tensor::zeros(&[], DType::I64)?,
            momentum,
            eps,
            training: TrainFlag::default(),
        })
    }
}
impl Forward for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.training.0 {
            let _g = crate::no_grad();
            self.num_batches_tracked
                .copy_(&self.num_batches_tracked.add_scalar(1.0)?)?;
        }
        F::batch_norm(
            x,
            Some(&self.running_mean),
            Some(&self.running_var),
            Some(&self.weight),
            Some(&self.bias),
            self.training.0,
            self.momentum,
            self.eps,
        )
    }
}

/// Dropout with probability `p` (identity in eval mode).
#[derive(super::Module)]
pub struct Dropout {
    pub p: f64,
    pub training: TrainFlag,
}
impl Dropout {
    pub fn new(p: f64) -> Dropout {
        Dropout {
            p,
            training: TrainFlag::default(),
        }
    }
}
impl Forward for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::dropout(x, self.p, self.training.0)
    }
}

/// Multi-head attention (PyTorch's `nn.MultiheadAttention` with packed `in_proj_weight`
/// [3E, E], `in_proj_bias`, and `out_proj`).
#[derive(super::Module)]
pub struct MultiheadAttention {
    pub in_proj_weight: Tensor,
    pub in_proj_bias: Option<Tensor>,
    pub out_proj: Linear,
    pub embed_dim: usize,
    pub num_heads: usize,
    pub batch_first: bool,
}

impl MultiheadAttention {
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        bias: bool,
        batch_first: bool,
    ) -> Result<MultiheadAttention> {
        if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            return Err(Error::value(
                "MultiheadAttention",
                format!("embed_dim {embed_dim} must be divisible by num_heads {num_heads}"),
            ));
        }
        let xavier = (6.0 / (4 * embed_dim) as f64).sqrt();
        let mut out_proj = Linear::new(embed_dim, embed_dim, bias)?;
        if let Some(b) = &out_proj.bias {
            let _g = crate::no_grad();
            b.copy_(&Tensor::zeros(&[embed_dim], DType::F32)?)?;
        }
        out_proj.bias = out_proj.bias.take();
        Ok(MultiheadAttention {
            in_proj_weight: uniform(&[3 * embed_dim, embed_dim], xavier)?,
            in_proj_bias: if bias {
                Some(Tensor::zeros(&[3 * embed_dim], DType::F32)?.requires_grad_(true)?)
            } else {
                None
            },
            out_proj,
            embed_dim,
            num_heads,
            batch_first,
        })
    }
    /// Attention of `query` over `key`/`value`; returns the attended output.
    pub fn forward_qkv(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        attn_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<Tensor> {
        crate::ops::attention::mha_layout(
            q,
            k,
            v,
            self.batch_first,
            self.embed_dim,
            self.num_heads,
            &self.in_proj_weight,
            self.in_proj_bias.as_ref(),
            &self.out_proj.weight,
            self.out_proj.bias.as_ref(),
            attn_mask,
            is_causal,
        )
    }
}
impl Forward for MultiheadAttention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_qkv(x, x, x, None, false)
    }
}

/// A transformer encoder layer (PyTorch's `nn.TransformerEncoderLayer`: self-attention and a
/// feed-forward block, each with residual, dropout and layer norm; `norm_first` switches to
/// pre-norm; activation ReLU or GELU).
#[derive(super::Module)]
pub struct TransformerEncoderLayer {
    pub self_attn: MultiheadAttention,
    pub linear1: Linear,
    pub dropout: Dropout,
    pub linear2: Linear,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub dropout1: Dropout,
    pub dropout2: Dropout,
    pub norm_first: bool,
    pub gelu: bool,
}

impl TransformerEncoderLayer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        d_model: usize,
        nhead: usize,
        dim_feedforward: usize,
        dropout: f64,
        gelu: bool,
        layer_norm_eps: f64,
        batch_first: bool,
        norm_first: bool,
    ) -> Result<Self> {
        Ok(TransformerEncoderLayer {
            self_attn: MultiheadAttention::new(d_model, nhead, true, batch_first)?,
            linear1: Linear::new(d_model, dim_feedforward, true)?,
            dropout: Dropout::new(dropout),
            linear2: Linear::new(dim_feedforward, d_model, true)?,
            norm1: LayerNorm::new(&[d_model], layer_norm_eps, true)?,
            norm2: LayerNorm::new(&[d_model], layer_norm_eps, true)?,
            dropout1: Dropout::new(dropout),
            dropout2: Dropout::new(dropout),
            norm_first,
            gelu,
        })
    }
    fn sa(&self, x: &Tensor, mask: Option<&Tensor>, causal: bool) -> Result<Tensor> {
        self.dropout1
            .forward(&self.self_attn.forward_qkv(x, x, x, mask, causal)?)
    }
    fn ff(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.linear1.forward(x)?;
        let h = if self.gelu {
            h.gelu("none")?
        } else {
            h.relu()?
        };
        self.dropout2
            .forward(&self.linear2.forward(&self.dropout.forward(&h)?)?)
    }
    /// With an optional attention mask and causal flag.
    pub fn forward_masked(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        causal: bool,
    ) -> Result<Tensor> {
        if self.norm_first {
            let x = x.add(&self.sa(&self.norm1.forward(x)?, mask, causal)?)?;
            x.add(&self.ff(&self.norm2.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&x.add(&self.sa(x, mask, causal)?)?)?;
            self.norm2.forward(&x.add(&self.ff(&x)?)?)
        }
    }
}
impl Forward for TransformerEncoderLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_masked(x, None, false)
    }
}

/// Layers applied in order; parameters are named `0.weight`, `1.bias`, ...
#[derive(Default)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Layer>>,
}
impl Visit for Sequential {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        self.layers.visit(prefix, v);
    }
    fn set_train(&mut self, on: bool) {
        self.layers.set_train(on);
    }
}
impl super::Module for Sequential {}
impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }
    /// Appends a layer (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, l: impl Layer + 'static) -> Sequential {
        self.layers.push(Box::new(l));
        self
    }
}
impl Forward for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h)?;
        }
        Ok(h)
    }
}

/// ReLU as a layer.
#[derive(super::Module, Default, Clone, Copy)]
pub struct ReLU {}
impl Forward for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.relu()
    }
}
/// GELU as a layer.
#[derive(super::Module, Default, Clone, Copy)]
pub struct GELU {}
impl Forward for GELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.gelu("none")
    }
}
/// Tanh as a layer.
#[derive(super::Module, Default, Clone, Copy)]
pub struct Tanh {}
impl Forward for Tanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.tanh()
    }
}

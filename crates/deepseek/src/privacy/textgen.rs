//! Per-sample gradients of the character-level [`TextGenerator`] (Embedding -> LSTM ->
//! Linear), for DP-SGD.
//!
//! The design follows Opacus' `DPLSTM` (an LSTM written as `Linear` layers so that the
//! per-layer per-sample rules apply) without unrolling anything: the fused LSTM layer is run
//! on its *input projection* `gx = x @ W_ih^T` ([`crate::ops::rnn::lstm_layer_projected`]).
//! Its gates are `gx + b_ih + h_{t-1} @ W_hh^T + b_hh`, so the gradient of the loss with
//! respect to `gx` is the gradient with respect to the gates at every step, and one
//! backward pass (with the parameters detached, so no summed gradient is formed) gives
//! everything the per-sample rules need:
//!
//! * `bias_ih`, `bias_hh`: `Σ_t dG[b, t]`;
//! * `weight_hh`: `dG[b]^T @ h_prev[b]` (the layer's outputs shifted by one step, zero first);
//! * `weight_ih` of layers after the first: `dG[b]^T @ input[b]`;
//! * the first layer reads a projected embedding table `P = E @ W_ih^T`, so with the one-hot
//!   ids `O[b]`: `dP[b] = O[b]^T @ dG[b]`, `embedding.weight`: `dP[b] @ W_ih`,
//!   `weight_ih_l0`: `dP[b]^T @ E`;
//! * `fc.weight`: `dLogits[b]^T @ out[b]`; `fc.bias`: `Σ_t dLogits[b, t]`.
//!
//! Each sample's loss is the mean cross-entropy over its characters, so the batch loss of
//! [`TextGenerator::loss`] is the mean of the per-sample losses.

use crate::nn::Module;
use crate::train::TextGenerator;
use crate::{DType, Error, Result, Tensor};

/// The per-sample gradients of one batch: `grads[i]` is `[B, ...params[i].shape()]`.
pub struct PerSampleGrads {
    /// Mean over the batch of the per-sample losses (NaN for an empty batch).
    pub loss: f64,
    /// The model's parameters, in [`Module::parameters`] order.
    pub params: Vec<Tensor>,
    /// One tensor per parameter: the gradient of each sample's loss, stacked on dim 0.
    pub grads: Vec<Tensor>,
}

fn one_hot(ids: &Tensor, classes: usize, dtype: DType) -> Result<Tensor> {
    let v = ids.to_vec::<i64>()?;
    let mut out = vec![0.0f64; v.len() * classes];
    for (k, &c) in v.iter().enumerate() {
        if c < 0 || c as usize >= classes {
            return Err(Error::value(
                "per_sample_grads",
                format!("token id {c} is outside the vocabulary of {classes}"),
            ));
        }
        out[k * classes + c as usize] = 1.0;
    }
    let mut shape = ids.shape().to_vec();
    shape.push(classes);
    Tensor::from_vec(out, &shape)?.to_dtype(dtype)
}

/// Per-sample gradients of [`TextGenerator::loss`] for a batch of ids `x` and targets `y`
/// (both `[B, T]` i64): `grads[i][b]` equals the gradient of the loss of sample `b` alone.
/// An empty batch (`B = 0`) gives zero-sized gradients. Dropout between LSTM layers is
/// applied when the model is in training mode, per element as usual.
///
/// ```
/// use deepseek::prelude::*;
/// use deepseek::privacy::per_sample_grads;
/// use deepseek::train::{TextGenerator, TextGeneratorConfig};
/// let m = TextGenerator::new(TextGeneratorConfig::new(5, 8))?;
/// let x = Tensor::from_vec(vec![0i64, 1, 2, 3, 4, 0], &[2, 3])?;
/// let y = Tensor::from_vec(vec![1i64, 2, 3, 4, 0, 1], &[2, 3])?;
/// let ps = per_sample_grads(&m, &x, &y)?;
/// assert_eq!(ps.grads[0].shape(), &[2, 5, 8]); // embedding.weight, per sample
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn per_sample_grads(model: &TextGenerator, x: &Tensor, y: &Tensor) -> Result<PerSampleGrads> {
    let op = "per_sample_grads";
    if x.rank() != 2 || x.shape() != y.shape() {
        return Err(Error::shape(
            op,
            format!(
                "expected ids and targets of one shape [batch, time], got {:?} and {:?}",
                x.shape(),
                y.shape()
            ),
        ));
    }
    if x.dtype() != DType::I64 || y.dtype() != DType::I64 {
        return Err(Error::dtype(
            op,
            format!(
                "expected i64 ids and targets, got {} and {}",
                x.dtype(),
                y.dtype()
            ),
        ));
    }
    let c = &model.config;
    let (nl, hid, v) = (c.num_layers, c.hidden_size, c.vocab_size);
    let w = &model.lstm.weights.tensors;
    if model.lstm.config.bidirectional || w.len() != 4 * nl {
        return Err(Error::value(
            op,
            "the per-sample rule covers a unidirectional LSTM with biases",
        ));
    }
    if model.embedding.padding_idx.is_some() {
        return Err(Error::value(
            op,
            "the per-sample rule covers an Embedding without padding_idx",
        ));
    }
    let Some(fc_b) = model.fc.bias.as_ref() else {
        return Err(Error::value(
            op,
            "the per-sample rule needs the fc layer's bias",
        ));
    };
    let params = model.parameters();
    let (b, t) = (x.shape()[0], x.shape()[1]);
    let dt = model.embedding.weight.dtype();
    if b == 0 || t == 0 {
        let grads = params
            .iter()
            .map(|p| {
                let mut s = vec![b];
                s.extend_from_slice(p.shape());
                Tensor::zeros(&s, dt)
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(PerSampleGrads {
            loss: f64::NAN,
            params,
            grads,
        });
    }
    let _grad = crate::enable_grad();
    let emb = model.embedding.weight.detach();
    let wih0 = w[0].detach();
    let table = emb.matmul(&wih0.t()?)?; // [V, 4H]
    let gx0 = Tensor::embedding(&table, &x.t()?.contiguous()?, None)?.requires_grad_(true)?;
    let training = model.lstm.training.0;
    let zeros = Tensor::zeros(&[b, hid], dt)?;
    let (mut gxs, mut outs, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
    let mut seq = gx0.clone();
    for l in 0..nl {
        let lw: Vec<Tensor> = w[4 * l..4 * l + 4].iter().map(|p| p.detach()).collect();
        let gx = if l == 0 {
            gx0.clone()
        } else {
            inputs.push(seq.clone());
            seq.matmul(&lw[0].t()?)?
        };
        let (o, _, _) = crate::ops::rnn::lstm_layer_projected(
            &gx,
            &zeros,
            &zeros,
            &lw[1],
            Some(&lw[2]),
            Some(&lw[3]),
        )?;
        gxs.push(gx);
        outs.push(o.clone());
        seq = if l + 1 < nl {
            crate::ops::activation::dropout(&o, c.dropout, training)?
        } else {
            o
        };
    }
    let out = seq.transpose(0, 1)?.contiguous()?; // [B, T, H]
    let logits = out
        .matmul(&model.fc.weight.detach().t()?)?
        .add(&fc_b.detach())?;
    let ce = crate::nn::functional::cross_entropy(
        &logits.reshape(&[b * t, v])?,
        &y.reshape(&[b * t])?,
        None,
        -100,
        "sum",
        0.0,
    )?;
    let root = ce.mul_scalar(1.0 / t as f64)?; // Σ_b (mean loss of sample b)
    let loss = root.item()? / b as f64;
    let mut want = gxs.clone();
    want.push(logits.clone());
    let g = crate::autograd::grad(&[root], &want, &[None], false, false)?;
    let g: Vec<Tensor> = g
        .into_iter()
        .zip(&want)
        .map(|(g, w)| match g {
            Some(g) => Ok(g),
            None => Tensor::zeros(w.shape(), dt),
        })
        .collect::<Result<_>>()?;
    let d_logits = &g[nl]; // [B, T, V]
    let mut grads = Vec::with_capacity(params.len());
    let mut lstm = Vec::with_capacity(4 * nl);
    let mut d_emb = None;
    for l in 0..nl {
        let dg = g[l].transpose(0, 1)?.contiguous()?; // [B, T, 4H]
        let dgt = dg.transpose(1, 2)?; // [B, 4H, T]
        let d_bias = dg.sum_dim(&[1], false)?;
        let d_wih = if l == 0 {
            let d_table = one_hot(x, v, dt)?.transpose(1, 2)?.matmul(&dg)?; // [B, V, 4H]
            d_emb = Some(d_table.matmul(&wih0)?); // [B, V, E]
            d_table.transpose(1, 2)?.matmul(&emb)? // [B, 4H, E]
        } else {
            dgt.matmul(&inputs[l - 1].transpose(0, 1)?)?
        };
        let o = &outs[l]; // [T, B, H]
        let h_prev = Tensor::cat(&[zeros.unsqueeze(0)?, o.narrow(0, 0, t - 1)?], 0)?;
        let d_whh = dgt.matmul(&h_prev.transpose(0, 1)?)?;
        lstm.extend([d_wih, d_whh, d_bias.clone(), d_bias]);
    }
    grads.push(d_emb.expect("at least one layer"));
    grads.extend(lstm);
    grads.push(d_logits.transpose(1, 2)?.matmul(&out)?);
    grads.push(d_logits.sum_dim(&[1], false)?);
    if grads.len() != params.len() {
        return Err(Error::Msg(format!(
            "per_sample_grads: internal: {} gradients for {} parameters",
            grads.len(),
            params.len()
        )));
    }
    Ok(PerSampleGrads {
        loss,
        params,
        grads,
    })
}

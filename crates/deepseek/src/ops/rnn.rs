//! Recurrent layers: the fused LSTM layer op, and multi-layer / bidirectional LSTM and GRU
//! with PyTorch's weight layout and gate order (LSTM: i, f, g, o; GRU: r, z, n).

use super::Op;
use crate::autograd::{needs_record, record, Ctx};
use crate::error::bail_shape;
use crate::{backend, Error, Result, Tensor};

/// One LSTM layer over time-major `x` [T, B, I] from `h0`, `c0` [B, H]:
/// returns (out [T, B, H], h_T, c_T).
#[allow(clippy::too_many_arguments)]
pub fn lstm_layer(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: Option<&Tensor>,
    b_hh: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Tensor)> {
    layer(x, h0, c0, Some(w_ih), w_hh, b_ih, b_hh)
}

/// [`lstm_layer`] from the input projection `gx = x @ w_ih^T` [T, B, 4H] computed by the
/// caller (for example gathered from a projected embedding table, see
/// [`crate::nn::Lstm::forward_tokens`]).
pub fn lstm_layer_projected(
    gx: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_hh: &Tensor,
    b_ih: Option<&Tensor>,
    b_hh: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Tensor)> {
    layer(gx, h0, c0, None, w_hh, b_ih, b_hh)
}

fn layer(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: Option<&Tensor>,
    w_hh: &Tensor,
    b_ih: Option<&Tensor>,
    b_hh: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Tensor)> {
    if x.rank() != 3 {
        bail_shape!("lstm", "expected input [T, B, I], got {:?}", x.shape());
    }
    let (t, b, i) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let h = w_hh.shape().get(1).copied().unwrap_or(0);
    if w_hh.shape() != [4 * h, h] {
        bail_shape!(
            "lstm",
            "w_hh has shape {:?}; expected [4 * hidden, hidden]",
            w_hh.shape()
        );
    }
    match w_ih {
        Some(w) if w.shape() != [4 * h, i] => {
            bail_shape!("lstm", "weights {:?} and {:?} do not fit input size {i} and hidden size {h} (expected [{}, {i}] and [{}, {h}])", w.shape(), w_hh.shape(), 4 * h, 4 * h);
        }
        None if i != 4 * h => {
            bail_shape!(
                "lstm",
                "projected input {:?} must be [T, B, 4 * hidden = {}]",
                x.shape(),
                4 * h
            );
        }
        _ => {}
    }
    for (name, s) in [("h0", h0), ("c0", c0)] {
        if s.shape() != [b, h] {
            bail_shape!(
                "lstm",
                "{name} has shape {:?}, expected [{b}, {h}]",
                s.shape()
            );
        }
    }
    let dt = x.dtype();
    let zeros = Tensor::zeros(&[4 * h], dt)?;
    let b_ih = b_ih.cloned().unwrap_or_else(|| zeros.clone());
    let b_hh = b_hh.cloned().unwrap_or_else(|| zeros.clone());
    let bias = b_ih.detach().add(&b_hh.detach())?;
    let mut args: Vec<Tensor> = vec![x.clone(), h0.clone(), c0.clone()];
    args.extend(w_ih.cloned());
    args.push(w_hh.clone());
    let args: Vec<Tensor> = args
        .iter()
        .map(|t| t.to_dtype(dt)?.contiguous())
        .collect::<Result<_>>()?;
    let d = LstmDims { t, b, i, h };
    let detached: Vec<Tensor> = args.iter().map(|t| t.detach()).collect();
    let projected = w_ih.is_none();
    let w_ih_d = if projected { None } else { Some(&detached[3]) };
    let [out, hn, cn, gates, cells] = backend::lstm_layer(
        &detached[0],
        &detached[1],
        &detached[2],
        w_ih_d,
        detached.last().expect("w_hh"),
        &bias,
        d,
    )?;
    let mut inputs: Vec<&Tensor> = args.iter().collect();
    inputs.extend([&b_ih, &b_hh]);
    if !needs_record(&inputs) {
        return Ok((out, hn, cn));
    }
    let mut saved = detached;
    saved.extend([gates, cells, out.clone()]);
    let mut r = record(
        Op::LstmLayer {
            hidden: h,
            projected,
        },
        &inputs,
        vec![out, hn, cn],
        saved,
        false,
    );
    let cn = r.pop().expect("3 outputs");
    let hn = r.pop().expect("3 outputs");
    let out = r.pop().expect("3 outputs");
    Ok((out, hn, cn))
}

pub(crate) fn lstm_layer_backward(
    ctx: &Ctx,
    grads: &[Option<Tensor>],
    projected: bool,
) -> Result<Vec<Option<Tensor>>> {
    ctx.no_double_backward("lstm")?;
    let x = ctx.saved(0);
    let (t, b, i) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let h = ctx.saved(1).shape()[1];
    let n_saved = if projected { 7 } else { 8 };
    let saved: Vec<Tensor> = (0..n_saved).map(|k| ctx.saved(k).clone()).collect();
    let [dx, dh0, dc0, dwi, dwh, db] = backend::lstm_layer_backward(
        &saved,
        LstmDims { t, b, i, h },
        grads[0].as_ref(),
        grads[1].as_ref(),
        grads[2].as_ref(),
    )?;
    let pick = |k: usize, g: Option<Tensor>| g.filter(|_| ctx.needs(k));
    let mut r = vec![pick(0, dx), pick(1, dh0), pick(2, dc0)];
    let mut k = 3;
    if dwi.is_some() {
        r.push(pick(k, dwi));
        k += 1;
    }
    r.extend([pick(k, dwh), pick(k + 1, db.clone()), pick(k + 2, db)]);
    Ok(r)
}

/// Options of a multi-layer recurrent call beyond PyTorch's positional ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct RnnOptions {
    pub bidirectional: bool,
    /// Dropout on the outputs of each layer except the last (training only).
    pub dropout: f64,
    pub training: bool,
}

fn split_weights(
    op: &str,
    weights: &[Tensor],
    layers: usize,
    dirs: usize,
) -> Result<(usize, bool)> {
    let per = weights.len() / (layers * dirs).max(1);
    if per * layers * dirs != weights.len() || !(per == 2 || per == 4) {
        return Err(Error::value(op, format!("expected 2 or 4 weights per layer and direction ({layers} layers, {dirs} directions), got {}", weights.len())));
    }
    Ok((per, per == 4))
}

/// Multi-layer LSTM (PyTorch's `_VF.lstm` / `nn.LSTM` forward). `h0`/`c0` are
/// [layers*dirs, B, H]; `weights` per layer and direction: w_ih, w_hh[, b_ih, b_hh].
/// Returns (output, h_n, c_n).
pub fn lstm(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    weights: &[Tensor],
    num_layers: usize,
    batch_first: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    lstm_with(
        x,
        h0,
        c0,
        weights,
        num_layers,
        batch_first,
        RnnOptions::default(),
    )
}

/// [`lstm`] with bidirectional and dropout options.
#[allow(clippy::too_many_arguments)]
pub fn lstm_with(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    weights: &[Tensor],
    num_layers: usize,
    batch_first: bool,
    opt: RnnOptions,
) -> Result<(Tensor, Tensor, Tensor)> {
    lstm_impl(x, false, h0, c0, weights, num_layers, batch_first, opt)
}

/// [`lstm_with`] given the first layer's input projection `gx = x @ weight_ih_l0^T`
/// ([T, B, 4H], or [B, T, 4H] when `batch_first`) instead of `x`; `weights` are the usual
/// list (`weight_ih_l0` is not used). Unidirectional only.
#[allow(clippy::too_many_arguments)]
pub fn lstm_with_projected_input(
    gx: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    weights: &[Tensor],
    num_layers: usize,
    batch_first: bool,
    opt: RnnOptions,
) -> Result<(Tensor, Tensor, Tensor)> {
    if opt.bidirectional {
        return Err(Error::value(
            "lstm",
            "a projected first-layer input needs a unidirectional LSTM",
        ));
    }
    lstm_impl(gx, true, h0, c0, weights, num_layers, batch_first, opt)
}

#[allow(clippy::too_many_arguments)]
fn lstm_impl(
    x: &Tensor,
    projected: bool,
    h0: &Tensor,
    c0: &Tensor,
    weights: &[Tensor],
    num_layers: usize,
    batch_first: bool,
    opt: RnnOptions,
) -> Result<(Tensor, Tensor, Tensor)> {
    let dirs = if opt.bidirectional { 2 } else { 1 };
    let (per, has_bias) = split_weights("lstm", weights, num_layers, dirs)?;
    if x.rank() != 3 {
        bail_shape!("lstm", "expected a 3-D input, got {:?}", x.shape());
    }
    for (name, s) in [("h0", h0), ("c0", c0)] {
        if s.rank() != 3 || s.shape()[0] != num_layers * dirs {
            bail_shape!("lstm", "{name} has shape {:?}; expected [{}, batch, hidden] for {num_layers} layers x {dirs} directions", s.shape(), num_layers * dirs);
        }
    }
    let mut seq = if batch_first {
        x.transpose(0, 1)?.contiguous()?
    } else {
        x.clone()
    };
    let mut hs = Vec::new();
    let mut cs = Vec::new();
    for l in 0..num_layers {
        let mut outs = Vec::new();
        for d in 0..dirs {
            let k = l * dirs + d;
            let w = &weights[k * per..(k + 1) * per];
            let (bi, bh) = if has_bias {
                (Some(&w[2]), Some(&w[3]))
            } else {
                (None, None)
            };
            let inp = if d == 1 { seq.flip(0)? } else { seq.clone() };
            let (h0k, c0k) = (h0.select(0, k as isize)?, c0.select(0, k as isize)?);
            let (o, h, c) = if projected && l == 0 {
                lstm_layer_projected(&inp, &h0k, &c0k, &w[1], bi, bh)?
            } else {
                lstm_layer(&inp, &h0k, &c0k, &w[0], &w[1], bi, bh)?
            };
            outs.push(if d == 1 { o.flip(0)? } else { o });
            hs.push(h);
            cs.push(c);
        }
        seq = if dirs == 2 {
            Tensor::cat(&outs, 2)?
        } else {
            outs.pop().expect("one direction")
        };
        if l + 1 < num_layers && opt.dropout > 0.0 {
            seq = super::activation::dropout(&seq, opt.dropout, opt.training)?;
        }
    }
    let out = if batch_first {
        seq.transpose(0, 1)?
    } else {
        seq
    };
    Ok((out, Tensor::stack(&hs, 0)?, Tensor::stack(&cs, 0)?))
}

/// Multi-layer GRU (PyTorch's `_VF.gru`): returns (output, h_n).
pub fn gru(
    x: &Tensor,
    h0: &Tensor,
    weights: &[Tensor],
    num_layers: usize,
    batch_first: bool,
) -> Result<(Tensor, Tensor)> {
    gru_with(
        x,
        h0,
        weights,
        num_layers,
        batch_first,
        RnnOptions::default(),
    )
}

/// [`gru`] with bidirectional and dropout options.
pub fn gru_with(
    x: &Tensor,
    h0: &Tensor,
    weights: &[Tensor],
    num_layers: usize,
    batch_first: bool,
    opt: RnnOptions,
) -> Result<(Tensor, Tensor)> {
    let dirs = if opt.bidirectional { 2 } else { 1 };
    let (per, has_bias) = split_weights("gru", weights, num_layers, dirs)?;
    if x.rank() != 3 {
        bail_shape!("gru", "expected a 3-D input, got {:?}", x.shape());
    }
    if h0.rank() != 3 || h0.shape()[0] != num_layers * dirs {
        bail_shape!("gru", "h0 has shape {:?}; expected [{}, batch, hidden] for {num_layers} layers x {dirs} directions", h0.shape(), num_layers * dirs);
    }
    let mut seq = if batch_first {
        x.transpose(0, 1)?
    } else {
        x.clone()
    };
    let mut hs = Vec::new();
    for l in 0..num_layers {
        let mut outs = Vec::new();
        for d in 0..dirs {
            let k = l * dirs + d;
            let w = &weights[k * per..(k + 1) * per];
            let inp = if d == 1 { seq.flip(0)? } else { seq.clone() };
            let (bi, bh) = if has_bias {
                (Some(&w[2]), Some(&w[3]))
            } else {
                (None, None)
            };
            let (o, h) = gru_layer(&inp, &h0.select(0, k as isize)?, &w[0], &w[1], bi, bh)?;
            outs.push(if d == 1 { o.flip(0)? } else { o });
            hs.push(h);
        }
        seq = if dirs == 2 {
            Tensor::cat(&outs, 2)?
        } else {
            outs.pop().expect("one direction")
        };
        if l + 1 < num_layers && opt.dropout > 0.0 {
            seq = super::activation::dropout(&seq, opt.dropout, opt.training)?;
        }
    }
    let out = if batch_first {
        seq.transpose(0, 1)?
    } else {
        seq
    };
    Ok((out, Tensor::stack(&hs, 0)?))
}

/// One GRU layer over time-major x [T, B, I], composed of tensor ops.
pub fn gru_layer(
    x: &Tensor,
    h0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: Option<&Tensor>,
    b_hh: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let h = w_hh.shape().get(1).copied().unwrap_or(0);
    if w_ih.rank() != 2
        || w_ih.shape()[0] != 3 * h
        || w_hh.shape() != [3 * h, h]
        || x.shape().get(2) != Some(&w_ih.shape()[1])
    {
        bail_shape!(
            "gru",
            "weights {:?}, {:?} do not fit input {:?}",
            w_ih.shape(),
            w_hh.shape(),
            x.shape()
        );
    }
    let gx = x.linear(w_ih, b_ih)?;
    let steps = gx.unbind(0)?;
    let mut hcur = h0.clone();
    let mut outs = Vec::with_capacity(steps.len());
    for g in steps {
        let gh = hcur.linear(w_hh, b_hh)?;
        let gxs = g.chunk(3, 1)?;
        let ghs = gh.chunk(3, 1)?;
        let r = gxs[0].add(&ghs[0])?.sigmoid()?;
        let z = gxs[1].add(&ghs[1])?.sigmoid()?;
        let n = gxs[2].add(&r.mul(&ghs[2])?)?.tanh()?;
        hcur = n.add(&z.mul(&hcur.sub(&n)?)?)?;
        outs.push(hcur.clone());
    }
    Ok((Tensor::stack(&outs, 0)?, hcur))
}

/// Sizes of one LSTM layer call.
#[derive(Clone, Copy, Debug)]
pub struct LstmDims {
    pub t: usize,
    pub b: usize,
    pub i: usize,
    pub h: usize,
}

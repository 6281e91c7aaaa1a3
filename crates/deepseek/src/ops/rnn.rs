//! Recurrent layers: the fused LSTM layer op, and multi-layer / bidirectional LSTM and GRU
//! with PyTorch's weight layout and gate order (LSTM: i, f, g, o; GRU: r, z, n).

use super::Op;
use crate::autograd::{needs_record, record, Ctx};
use crate::backend::cpu::rnn::LstmDims;
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
    if x.rank() != 3 {
        bail_shape!("lstm", "expected input [T, B, I], got {:?}", x.shape());
    }
    let (t, b, i) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let h = w_hh.shape().get(1).copied().unwrap_or(0);
    if w_ih.shape() != [4 * h, i] || w_hh.shape() != [4 * h, h] {
        bail_shape!("lstm", "weights {:?} and {:?} do not fit input size {i} and hidden size {h} (expected [{}, {i}] and [{}, {h}])", w_ih.shape(), w_hh.shape(), 4 * h, 4 * h);
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
    let args: Vec<Tensor> = [x, h0, c0, w_ih, w_hh]
        .iter()
        .map(|t| t.to_dtype(dt)?.contiguous())
        .collect::<Result<_>>()?;
    let d = LstmDims { t, b, i, h };
    let detached: Vec<Tensor> = args.iter().map(|t| t.detach()).collect();
    let [out, hn, cn, gates, cells] = backend::lstm_layer(
        &detached[0],
        &detached[1],
        &detached[2],
        &detached[3],
        &detached[4],
        &bias,
        d,
    )?;
    let inputs: Vec<&Tensor> = vec![
        &args[0], &args[1], &args[2], &args[3], &args[4], &b_ih, &b_hh,
    ];
    if !needs_record(&inputs) {
        return Ok((out, hn, cn));
    }
    let mut saved = detached;
    saved.extend([gates, cells, out.clone()]);
    let mut r = record(
        Op::LstmLayer { hidden: h },
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
) -> Result<Vec<Option<Tensor>>> {
    ctx.no_double_backward("lstm")?;
    let x = ctx.saved(0);
    let (t, b, i) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let h = ctx.saved(1).shape()[1];
    let saved: Vec<Tensor> = (0..8).map(|k| ctx.saved(k).clone()).collect();
    let [dx, dh0, dc0, dwi, dwh, db] = backend::lstm_layer_backward(
        &saved,
        LstmDims { t, b, i, h },
        grads[0].as_ref(),
        grads[1].as_ref(),
        grads[2].as_ref(),
    )?;
    let pick = |k: usize, g: Tensor| if ctx.needs(k) { Some(g) } else { None };
    Ok(vec![
        pick(0, dx),
        pick(1, dh0),
        pick(2, dc0),
        pick(3, dwi),
        pick(4, dwh),
        pick(5, db.clone()),
        pick(6, db),
    ])
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
            let (o, h, c) = lstm_layer(
                &inp,
                &h0.select(0, k as isize)?,
                &c0.select(0, k as isize)?,
                &w[0],
                &w[1],
                bi,
                bh,
            )?;
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

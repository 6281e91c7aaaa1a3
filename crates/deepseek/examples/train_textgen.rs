//! The tutorials' TextGenerator (Embedding -> LSTM -> Linear), trained character by character
//! on the bundled Shakespeare tragedies with Adam, gradient clipping and periodic validation,
//! then sampled. Built directly on the tensor core, autograd and optimizers.
//!
//! `cargo run --release --example train_textgen -- [--steps N] [--minutes M] [--hidden H]
//!  [--batch B] [--seq T] [--lr LR] [--seed S] [--data DIR]`

use deepseek::nn::functional as F;
use deepseek::optim::{clip_grad_norm_, Adam, AdamConfig, Optimizer};
use deepseek::prelude::*;
use std::time::Instant;

struct Args {
    steps: usize,
    minutes: f64,
    hidden: usize,
    batch: usize,
    seq: usize,
    lr: f64,
    seed: u64,
    data: String,
}

fn parse() -> std::result::Result<Args, String> {
    let mut a = Args {
        steps: 3000,
        minutes: 4.0,
        hidden: 256,
        batch: 32,
        seq: 128,
        lr: 2e-3,
        seed: 0,
        data: concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/shakespeare").to_string(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v
            .get(i + 1)
            .ok_or_else(|| format!("missing value after {}", v[i]))?;
        let bad = |e: &dyn std::fmt::Display| format!("bad value {val:?} for {}: {e}", v[i]);
        match v[i].as_str() {
            "--steps" => a.steps = val.parse().map_err(|e| bad(&e))?,
            "--minutes" => a.minutes = val.parse().map_err(|e| bad(&e))?,
            "--hidden" => a.hidden = val.parse().map_err(|e| bad(&e))?,
            "--batch" => a.batch = val.parse().map_err(|e| bad(&e))?,
            "--seq" => a.seq = val.parse().map_err(|e| bad(&e))?,
            "--lr" => a.lr = val.parse().map_err(|e| bad(&e))?,
            "--seed" => a.seed = val.parse().map_err(|e| bad(&e))?,
            "--data" => a.data = val.clone(),
            f => return Err(format!("unknown flag {f}")),
        }
        i += 2;
    }
    if a.batch == 0 || a.seq == 0 || a.hidden == 0 {
        return Err("batch, seq and hidden must be positive".into());
    }
    Ok(a)
}

struct Model {
    emb: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    fc_w: Tensor,
    fc_b: Tensor,
}

impl Model {
    fn new(vocab: usize, h: usize) -> Result<Model> {
        let k = 1.0 / (h as f64).sqrt();
        let u = |s: &[usize]| Tensor::uniform(s, -k, k, DType::F32)?.requires_grad_(true);
        Ok(Model {
            emb: Tensor::randn(&[vocab, h], DType::F32)?.requires_grad_(true)?,
            w_ih: u(&[4 * h, h])?,
            w_hh: u(&[4 * h, h])?,
            b_ih: u(&[4 * h])?,
            b_hh: u(&[4 * h])?,
            fc_w: u(&[vocab, h])?,
            fc_b: u(&[vocab])?,
        })
    }
    fn params(&self) -> Vec<Tensor> {
        vec![
            self.emb.clone(),
            self.w_ih.clone(),
            self.w_hh.clone(),
            self.b_ih.clone(),
            self.b_hh.clone(),
            self.fc_w.clone(),
            self.fc_b.clone(),
        ]
    }
    /// Logits [B, T, V] and the final (h, c) for token ids [B, T].
    fn forward(
        &self,
        x: &Tensor,
        state: Option<(Tensor, Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (b, h) = (x.shape()[0], self.w_hh.shape()[1]);
        let e = Tensor::embedding(&self.emb, x, None)?;
        let (h0, c0) = match state {
            Some(s) => s,
            None => (
                Tensor::zeros(&[1, b, h], DType::F32)?,
                Tensor::zeros(&[1, b, h], DType::F32)?,
            ),
        };
        let w = [
            self.w_ih.clone(),
            self.w_hh.clone(),
            self.b_ih.clone(),
            self.b_hh.clone(),
        ];
        let (out, hn, cn) = F::lstm(&e, &h0, &c0, &w, 1, true)?;
        Ok((out.linear(&self.fc_w, Some(&self.fc_b))?, (hn, cn)))
    }
}

fn batch(data: &[i64], b: usize, t: usize) -> Result<(Tensor, Tensor)> {
    let mut xs = Vec::with_capacity(b * t);
    let mut ys = Vec::with_capacity(b * t);
    for _ in 0..b {
        let off = Tensor::randint(0, (data.len() - t - 1) as i64, &[1], DType::I64)?
            .to_vec::<i64>()?[0] as usize;
        xs.extend_from_slice(&data[off..off + t]);
        ys.extend_from_slice(&data[off + 1..off + t + 1]);
    }
    Ok((
        Tensor::from_vec(xs, &[b, t])?,
        Tensor::from_vec(ys, &[b * t])?,
    ))
}

fn loss_of(m: &Model, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (logits, _) = m.forward(x, None)?;
    let v = logits.shape()[2];
    F::cross_entropy(
        &logits.reshape(&[y.numel(), v])?,
        y,
        None,
        -100,
        "mean",
        0.0,
    )
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::result::Result<(), String> {
    let a = parse()?;
    let read = |f: &str| {
        let p = format!("{}/{f}", a.data);
        let s = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
        if s.len() < a.seq + 2 {
            return Err(format!(
                "{p}: too short ({} bytes) for sequence length {}",
                s.len(),
                a.seq
            ));
        }
        Ok(s)
    };
    let (train, val) = (read("train.txt")?, read("val.txt")?);
    let mut vocab: Vec<char> = train.chars().chain(val.chars()).collect();
    vocab.sort();
    vocab.dedup();
    let encode = |s: &str| -> Vec<i64> {
        s.chars()
            .map(|c| vocab.binary_search(&c).unwrap_or(0) as i64)
            .collect()
    };
    let (tr, va) = (encode(&train), encode(&val));
    deepseek::manual_seed(a.seed);
    let m = Model::new(vocab.len(), a.hidden).map_err(|e| e.to_string())?;
    let mut opt = Adam::new(
        m.params(),
        AdamConfig {
            lr: a.lr,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    println!(
        "TextGenerator: vocab {}, hidden {}, batch {}, seq {}, Adam lr {}, {} threads; train {} chars, val {} chars",
        vocab.len(),
        a.hidden,
        a.batch,
        a.seq,
        a.lr,
        deepseek::get_num_threads(),
        tr.len(),
        va.len()
    );
    let start = Instant::now();
    let eval = |m: &Model| -> Result<f64> {
        let _g = deepseek::no_grad();
        let mut s = 0.0;
        for _ in 0..8 {
            let (x, y) = batch(&va, a.batch, a.seq)?;
            s += loss_of(m, &x, &y)?.item()?;
        }
        Ok(s / 8.0)
    };
    let mut step = 0;
    let mut smooth = 0.0;
    let mut best_val = f64::INFINITY;
    while step < a.steps && start.elapsed().as_secs_f64() < a.minutes * 60.0 {
        let (x, y) = batch(&tr, a.batch, a.seq).map_err(|e| e.to_string())?;
        opt.zero_grad();
        let loss = loss_of(&m, &x, &y).map_err(|e| e.to_string())?;
        let l = loss.item().map_err(|e| e.to_string())?;
        if !l.is_finite() {
            return Err(format!(
                "loss became {l} at step {step}; lower the learning rate"
            ));
        }
        loss.backward().map_err(|e| e.to_string())?;
        clip_grad_norm_(&m.params(), 1.0, 2.0).map_err(|e| e.to_string())?;
        opt.step().map_err(|e| e.to_string())?;
        smooth = if step == 0 {
            l
        } else {
            0.98 * smooth + 0.02 * l
        };
        step += 1;
        if step % 100 == 0 {
            let v = eval(&m).map_err(|e| e.to_string())?;
            best_val = best_val.min(v);
            let el = start.elapsed().as_secs_f64();
            println!(
                "step {step:5}  train loss {smooth:.4}  val loss {v:.4}  {:.0} chars/s  {el:.0}s",
                (step * a.batch * a.seq) as f64 / el
            );
        }
    }
    let v = eval(&m).map_err(|e| e.to_string())?;
    best_val = best_val.min(v);
    println!(
        "done: {step} steps in {:.1}s, final val loss {v:.4} nats/char (best {best_val:.4})",
        start.elapsed().as_secs_f64()
    );
    // Sample 400 characters, temperature 0.8, starting from a newline.
    let _g = deepseek::no_grad();
    let mut state = None;
    let mut cur = vocab.binary_search(&'\n').unwrap_or(0) as i64;
    let mut text = String::new();
    for _ in 0..400 {
        let x = Tensor::from_vec(vec![cur], &[1, 1]).map_err(|e| e.to_string())?;
        let (logits, s) = m.forward(&x, state).map_err(|e| e.to_string())?;
        state = Some(s);
        let p = logits
            .reshape(&[vocab.len()])
            .and_then(|l| l.mul_scalar(1.0 / 0.8))
            .and_then(|l| l.softmax(0))
            .and_then(|p| p.to_vec::<f32>())
            .map_err(|e| e.to_string())?;
        let u = Tensor::rand(&[1], DType::F64)
            .and_then(|t| t.item())
            .map_err(|e| e.to_string())?;
        let mut acc = 0.0;
        cur = (p.len() - 1) as i64;
        for (i, &q) in p.iter().enumerate() {
            acc += q as f64;
            if u < acc {
                cur = i as i64;
                break;
            }
        }
        text.push(vocab[cur as usize]);
    }
    println!("--- sample ---\n{text}\n--------------");
    Ok(())
}

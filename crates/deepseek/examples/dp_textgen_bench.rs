//! The cost of DP-SGD for the main job's model in Rust: one training step of the
//! character-level TextGenerator with per-sample gradients, per-sample clipping and noise
//! (`deepseek::privacy`, what `deepseek train --dp-epsilon` runs) against the plain step
//! (loss, backward, global clipping), both followed by Adam, in one process.
//!
//!     cargo run --release --example dp_textgen_bench -- [hidden] [batch] [seq] [reps]
//!
//! Defaults: vocab 65 (Shakespeare's characters), hidden 256, batch 32, seq 128, 10 reps
//! (median, after 2 warm-up steps).

use deepseek::nn::Module;
use deepseek::optim::{clip_grad_norm_, Adam, AdamConfig, Optimizer};
use deepseek::privacy::{DpSgdConfig, DpTextGenerator};
use deepseek::train::{TextGenerator, TextGeneratorConfig};
use deepseek::{DType, Result, Tensor};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (hidden, batch, seq, reps) = (arg(1, 256), arg(2, 32), arg(3, 128), arg(4, 10));
    let vocab = 65;
    deepseek::manual_seed(0);
    let model = TextGenerator::new(TextGeneratorConfig::new(vocab, hidden))?;
    let mut opt = Adam::new(model.parameters(), AdamConfig::default())?;
    let x = Tensor::randint(0, vocab as i64, &[batch, seq], DType::I64)?;
    let y = Tensor::randint(0, vocab as i64, &[batch, seq], DType::I64)?;
    let b = [x, y];
    let dp = DpTextGenerator::new(DpSgdConfig {
        noise_multiplier: 1.0,
        max_grad_norm: 1.0,
        expected_batch_size: batch as f64,
    })?;
    let params = model.parameters();
    let mut time = |dp_step: bool| -> Result<f64> {
        let mut t = Vec::new();
        for r in 0..reps + 2 {
            let s = Instant::now();
            opt.zero_grad();
            if dp_step {
                dp.step(&model, &b)?;
            } else {
                model.loss(&b)?.backward()?;
                clip_grad_norm_(&params, 1.0, 2.0)?;
            }
            opt.step()?;
            if r >= 2 {
                t.push(s.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(median(t))
    };
    let plain = time(false)?;
    let private = time(true)?;
    println!(
        "TextGenerator vocab {vocab}, hidden {hidden}, batch {batch}, seq {seq}, {} threads, {} parameters",
        deepseek::get_num_threads(),
        model.num_parameters()
    );
    println!(
        "plain step {plain:.1} ms | DP-SGD step {private:.1} ms | DP / plain {:.2}x",
        private / plain
    );
    Ok(())
}

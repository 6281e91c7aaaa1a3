//! The Trainer on a small regression problem: a data loader, Adam with a cosine schedule,
//! gradient accumulation, clipping, validation, early stopping, a callback, checkpoints
//! and resume. Writes into `runs/quickstart/` (metrics.jsonl, loss.svg, checkpoints/).
//!
//! `cargo run --release --example trainer_quickstart [-- --resume]`

use deepseek::data::{DataLoader, DataLoaderConfig, TensorDataset};
use deepseek::nn::{functional as F, Forward, Linear, Module};
use deepseek::optim::{Adam, AdamConfig, CosineAnnealingLR};
use deepseek::prelude::*;
use deepseek::train::{Callback, Control, Trainer, TrainerState};

#[derive(deepseek::nn::Module)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.tanh()?)
    }
}

/// Prints a line whenever the validation loss reaches a new best.
struct ReportBest(f64);
impl Callback for ReportBest {
    fn on_eval_end(&mut self, s: &TrainerState) -> Control {
        if let Some(v) = s.val_loss().filter(|&v| v < self.0) {
            self.0 = v;
            println!("  new best validation loss {v:.5} at step {}", s.step);
        }
        Control::Continue
    }
}

fn main() -> Result<()> {
    let resume = std::env::args().any(|a| a == "--resume");
    deepseek::manual_seed(0);
    // y = sin(x0) + x1 * x2 with a little noise.
    let data = |n: usize| -> Result<Vec<Tensor>> {
        let x = Tensor::randn(&[n, 3], DType::F32)?;
        let c = |i: isize| x.select(1, i);
        let y = c(0)?.sin()?.add(&c(1)?.mul(&c(2)?)?)?;
        let y = y.add(&Tensor::randn(&[n], DType::F32)?.mul_scalar(0.05)?)?;
        Ok(vec![x, y.unsqueeze(1)?])
    };
    let cfg = |shuffle| DataLoaderConfig {
        batch_size: 64,
        shuffle,
        drop_last: shuffle,
        seed: 1,
        prefetch: 2,
    };
    let train = DataLoader::new(TensorDataset::new(data(4096)?)?, cfg(true))?;
    let val = DataLoader::new(TensorDataset::new(data(512)?)?, cfg(false))?;

    let model = Mlp {
        fc1: Linear::new(3, 64, true)?,
        fc2: Linear::new(64, 1, true)?,
    };
    let mut opt = Adam::new(
        model.parameters(),
        AdamConfig {
            lr: 1e-2,
            ..Default::default()
        },
    )?;
    let sched = CosineAnnealingLR::new(&mut opt, 600, 1e-4)?;
    let mut trainer = Trainer::builder(model)
        .optimizer(Box::new(opt))
        .scheduler(Box::new(sched))
        .loss(|m: &Mlp, b: &[Tensor]| F::mse_loss(&m.forward(&b[0])?, &b[1], "mean"))
        .gradient_accumulation_steps(2) // 2 x 64 samples per step
        .clip_grad_norm(1.0)
        .max_steps(600)
        .eval_every(50)
        .early_stopping(4, 1e-4)
        .callback(Box::new(ReportBest(f64::INFINITY)))
        .out_dir("runs/quickstart")
        .checkpoint_every(100)
        .keep_last(2)
        .resume(resume)
        .overwrite(!resume)
        .log_every(100)
        .build()?;
    let r = trainer.fit(&train, Some(&val))?;
    println!(
        "{} steps ({:?}), final validation MSE {:.5}, best {:.5}; checkpoint {}",
        r.steps,
        r.stop_reason,
        r.final_val_loss.unwrap_or(f64::NAN),
        r.best_val_loss().unwrap_or(f64::NAN),
        r.last_checkpoint
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    Ok(())
}

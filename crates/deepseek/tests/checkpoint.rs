//! Gradient checkpointing: same gradients as without, less memory held for backward.
//! One test function on purpose: the memory counters are process-wide, and tests of one
//! binary run in parallel.

use deepseek::nn::{Checkpointed, Dropout, Forward, Linear, Module, Sequential, Tanh};
use deepseek::{manual_seed, memory, DType, Result, Tensor};

const WIDTH: usize = 256;
const DEPTH: usize = 8;

fn stack() -> Result<Sequential> {
    let mut s = Sequential::new();
    for _ in 0..DEPTH {
        s = s
            .add(Linear::new(WIDTH, WIDTH, true)?)
            .add(Tanh {})
            .add(Dropout::new(0.1));
    }
    Ok(s)
}

fn copy_params(from: &impl Module, to: &impl Module) -> Result<()> {
    let _g = deepseek::no_grad();
    for (a, b) in from.parameters().iter().zip(to.parameters()) {
        b.copy_(a)?;
    }
    Ok(())
}

/// Runs forward, returns (loss, bytes held after forward beyond `base`), then backward.
fn run(m: &dyn Forward, x: &Tensor) -> Result<(f64, usize)> {
    let base = memory::memory_allocated();
    manual_seed(7);
    let loss = m.forward(x)?.square()?.mean_all()?;
    let held = memory::memory_allocated().saturating_sub(base);
    loss.backward()?;
    Ok((loss.item()?, held))
}

#[test]
fn checkpointed_stack_matches_plain_and_holds_less() -> Result<()> {
    manual_seed(1);
    let plain = stack()?;
    let ckpt = Checkpointed::new(stack()?);
    copy_params(&plain, &ckpt)?;
    assert_eq!(
        plain
            .named_parameters()
            .iter()
            .map(|p| p.0.clone())
            .collect::<Vec<_>>(),
        ckpt.named_parameters()
            .iter()
            .map(|p| p.0.clone())
            .collect::<Vec<_>>(),
        "checkpointing keeps the wrapped module's parameter names"
    );

    let x = Tensor::randn(&[128, WIDTH], DType::F32)?;
    let x1 = x.detach().requires_grad_(true)?;
    let x2 = x.detach().requires_grad_(true)?;
    let (l1, held_plain) = run(&plain, &x1)?;
    let (l2, held_ckpt) = run(&ckpt, &x2)?;

    // Same loss and same gradients (dropout masks replayed from the saved RNG state).
    assert_eq!(l1, l2);
    let close = |a: &Tensor, b: &Tensor| -> Result<f64> { a.sub(b)?.abs()?.max_all()?.item() };
    assert!(close(&x1.grad().unwrap(), &x2.grad().unwrap())? < 1e-6);
    for ((n, a), b) in plain.named_parameters().iter().zip(ckpt.parameters()) {
        let d = close(&a.grad().unwrap(), &b.grad().unwrap())?;
        assert!(d < 1e-6, "{n}: gradients differ by {d}");
    }

    // Memory held between forward and backward: the plain stack keeps every layer's
    // activations (DEPTH x several [128, 256] tensors), the checkpointed one its output only.
    let act = 128 * WIDTH * 4;
    eprintln!("held after forward: plain {held_plain} B, checkpointed {held_ckpt} B");
    assert!(held_plain >= DEPTH * 2 * act, "plain held {held_plain}");
    assert!(held_ckpt <= 3 * act, "checkpointed held {held_ckpt}");

    // Inputs that do not require grad still give the parameters their gradients.
    for p in ckpt.parameters() {
        p.set_grad(None)?;
    }
    let (_, _) = run(&ckpt, &x)?;
    assert!(ckpt.parameters().iter().all(|p| p.grad().is_some()));
    Ok(())
}

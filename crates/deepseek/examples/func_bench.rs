//! The cost of `deepseek::func::jvp` (double vjp) against the forward pass, one vjp, and the
//! Jacobian-then-contract alternative, for f: R^256 -> R^m, `sin(W @ tanh(x))`, in f32.
//!
//!     cargo run --release --example func_bench -- [reps]

use deepseek::func;
use deepseek::{DType, Result, Tensor};
use std::time::Instant;

fn best(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let mut b = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        b = b.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(b)
}

fn main() -> Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    deepseek::manual_seed(0);
    println!("{} threads, best of {reps}", deepseek::get_num_threads());
    println!("| m | forward ms | vjp ms | jvp (double vjp) ms | jacrev + contract ms |");
    for m in [16usize, 256] {
        let w = Tensor::randn(&[m, 256], DType::F32)?.mul_scalar(0.1)?;
        let x = Tensor::randn(&[256, 1], DType::F32)?;
        let v = Tensor::randn(&[256, 1], DType::F32)?;
        let u = Tensor::randn(&[m, 1], DType::F32)?;
        let f = |a: &[Tensor]| w.matmul(&a[0].tanh()?)?.sin();
        let fwd = best(reps, || f(std::slice::from_ref(&x)).map(|_| ()))?;
        let vjp = best(reps, || {
            let (_, g) = func::vjp(f, std::slice::from_ref(&x))?;
            g.call(&u).map(|_| ())
        })?;
        let jvp = best(reps, || {
            func::jvp(f, std::slice::from_ref(&x), std::slice::from_ref(&v)).map(|_| ())
        })?;
        let jac = best(reps.min(10), || {
            let j = func::jacrev(f, std::slice::from_ref(&x))?.remove(0); // [m, 1, 256, 1]
            j.reshape(&[m, 256])?.matmul(&v).map(|_| ())
        })?;
        println!(
            "| {m} | {fwd:.3} | {vjp:.3} ({:.0}x) | {jvp:.3} ({:.0}x) | {jac:.3} ({:.0}x) |",
            vjp / fwd,
            jvp / fwd,
            jac / fwd
        );
    }
    Ok(())
}

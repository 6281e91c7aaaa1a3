//! The random ops: ranges, distributions and dropout's one-pass mask.

use deepseek::prelude::*;
use deepseek::tensor::manual_seed;

fn stats(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

#[test]
fn rand_stays_below_one_in_every_float_dtype() -> Result<()> {
    manual_seed(7);
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let t = Tensor::rand(&[1 << 16], dt)?.to_dtype(DType::F64)?;
        let v = t.to_vec::<f64>()?;
        assert!(
            v.iter().all(|&x| (0.0..1.0).contains(&x)),
            "{dt}: a value outside [0, 1)"
        );
        let (m, s) = stats(&v);
        assert!((m - 0.5).abs() < 0.01, "{dt}: mean {m}");
        assert!((s - (1.0f64 / 12.0).sqrt()).abs() < 0.01, "{dt}: std {s}");
    }
    // odd lengths use half of the last 64-bit draw
    assert_eq!(Tensor::rand(&[3, 5], DType::F32)?.shape(), &[3, 5]);
    Ok(())
}

#[test]
fn randn_pairs_are_standard_normal_and_uncorrelated() -> Result<()> {
    manual_seed(3);
    let v = Tensor::randn(&[1 << 16], DType::F32)?
        .to_dtype(DType::F64)?
        .to_vec::<f64>()?;
    let (m, s) = stats(&v);
    assert!(m.abs() < 0.02 && (s - 1.0).abs() < 0.02, "mean {m} std {s}");
    // the two values of each Box-Muller pair sit side by side: they must not be correlated
    let c = v.chunks_exact(2).map(|p| p[0] * p[1]).sum::<f64>() / (v.len() / 2) as f64;
    assert!(c.abs() < 0.02, "pair correlation {c}");
    let t = Tensor::normal(&[7], 10.0, 0.0, DType::F64)?.to_vec::<f64>()?;
    assert_eq!(t, vec![10.0; 7]);
    // same seed, same values
    manual_seed(11);
    let a = Tensor::randn(&[9], DType::F32)?.to_vec::<f32>()?;
    manual_seed(11);
    assert_eq!(a, Tensor::randn(&[9], DType::F32)?.to_vec::<f32>()?);
    Ok(())
}

#[test]
fn dropout_keeps_one_minus_p_and_scales() -> Result<()> {
    manual_seed(5);
    for (dt, p) in [(DType::F32, 0.2), (DType::F64, 0.5), (DType::F32, 0.9)] {
        let x = Tensor::ones(&[1 << 15], dt)?.requires_grad_(true)?;
        let y = deepseek::nn::functional::dropout(&x, p, true)?;
        let v = y.to_dtype(DType::F64)?.to_vec::<f64>()?;
        let scale = 1.0 / (1.0 - p);
        let kept = v.iter().filter(|&&e| e != 0.0).count() as f64 / v.len() as f64;
        assert!(v
            .iter()
            .all(|&e| e == 0.0 || (e - scale).abs() < 1e-6 * scale));
        assert!((kept - (1.0 - p)).abs() < 0.015, "{dt} p={p}: kept {kept}");
        // the gradient is the same mask
        y.sum_all()?.backward()?;
        let g = x.grad().unwrap().to_dtype(DType::F64)?.to_vec::<f64>()?;
        assert_eq!(g, v);
    }
    let x = Tensor::ones(&[4], DType::F32)?;
    let e = deepseek::nn::functional::dropout(&x, 1.5, true).unwrap_err();
    assert!(e.to_string().contains("between 0 and 1"), "{e}");
    assert!(
        deepseek::nn::functional::dropout(&Tensor::ones(&[4], DType::I64)?, 0.5, true).is_err()
    );
    Ok(())
}

//! Deferred execution: lazy results equal eager ones (bit for bit: the fused kernels use the
//! same scalar functions), chains fuse into one kernel, in-place writes and autograd see the
//! right values, and errors raise at the op call.

use deepseek::lazy::{self, reset_stats, stats};
use deepseek::prelude::*;
use proptest::prelude::*;

fn eager<R>(f: impl FnOnce() -> R) -> R {
    let prev = lazy::set_lazy(false);
    let r = f();
    lazy::set_lazy(prev);
    r
}

#[test]
fn gelu_chain_fuses_into_one_kernel() -> Result<()> {
    let x = eager(|| Tensor::randn(&[1000, 37], DType::F32))?;
    let gelu = |x: &Tensor| -> Result<Tensor> {
        let k = (2.0 / std::f64::consts::PI).sqrt();
        let inner = x.mul(&x.square()?.mul_scalar(0.044715)?.add_scalar(1.0)?)?;
        inner
            .mul_scalar(k)?
            .tanh()?
            .add_scalar(1.0)?
            .mul(&x.mul_scalar(0.5)?)
    };
    let want = eager(|| gelu(&x))?.to_vec::<f32>()?;
    let _g = lazy::lazy();
    reset_stats();
    let y = gelu(&x)?;
    assert!(y.is_deferred());
    assert_eq!(
        stats().kernels,
        0,
        "nothing runs before the value is needed"
    );
    let got = y.to_vec::<f32>()?;
    let s = stats();
    assert_eq!(s.fused_kernels, 1, "{s:?}");
    assert_eq!(s.fused_ops, 9, "{s:?}");
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn reductions_absorb_their_producers() -> Result<()> {
    let x = eager(|| Tensor::randn(&[37, 1500], DType::F32))?;
    // softmax written out: max, exp(x - max), sum, divide.
    let softmax = |x: &Tensor| -> Result<Tensor> {
        let m = x.amax(&[-1], true)?;
        let e = x.sub(&m)?.exp()?;
        e.div(&e.sum_dims(&[-1], true)?)
    };
    let want = eager(|| softmax(&x))?.to_vec::<f32>()?;
    let _g = lazy::lazy();
    reset_stats();
    let got = softmax(&x)?.to_vec::<f32>()?;
    let s = stats();
    // amax (eager: x is realised), sum with exp(x - max) inside, then the division with
    // exp(x - max) inlined again: three kernels, no intermediate [37, 1500] buffer but the
    // output.
    assert_eq!(s.kernels, 3, "{s:?}");
    assert_eq!(got, want);
    // A reduction over a leading dim of a deferred product (another summation order than
    // the eager kernel's: compared with a tolerance).
    let y = eager(|| Tensor::randn(&[64, 48], DType::F64))?;
    let a = y.mul(&y)?.sum_dims(&[0], false)?.to_vec::<f64>()?;
    let b = eager(|| y.mul(&y)?.sum_dims(&[0], false))?.to_vec::<f64>()?;
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() <= 1e-12 * q.abs().max(1.0), "{p} vs {q}");
    }
    Ok(())
}

#[test]
fn shapes_and_dtypes_error_at_the_call() -> Result<()> {
    let _g = lazy::lazy();
    let a = Tensor::ones(&[2, 3], DType::F32)?;
    let b = Tensor::ones(&[4], DType::F32)?;
    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("add"), "{e}");
    Ok(())
}

#[test]
fn in_place_write_realises_readers_first() -> Result<()> {
    let _g = lazy::lazy();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
    let y = x.mul_scalar(10.0)?;
    assert!(y.is_deferred());
    x.copy_(&Tensor::zeros(&[3], DType::F32)?)?;
    assert_eq!(y.to_vec::<f32>()?, vec![10.0, 20.0, 30.0]);
    assert_eq!(x.to_vec::<f32>()?, vec![0.0, 0.0, 0.0]);
    Ok(())
}

#[test]
fn shared_intermediate_is_computed_once_and_kept() -> Result<()> {
    let _g = lazy::lazy();
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
    let h = x.exp()?; // held by the test: stored as a second output, not recomputed
    let a = h.add_scalar(1.0)?;
    reset_stats();
    a.realize()?;
    assert_eq!(stats().fused_kernels, 1);
    assert!(!h.is_deferred());
    let b = h.t()?.mul(&h)?; // a permuted view of a realised tensor
    let want: Vec<f64> = {
        let e: Vec<f64> = [1.0f64, 2.0, 3.0, 4.0].iter().map(|v| v.exp()).collect();
        vec![e[0] * e[0], e[2] * e[1], e[1] * e[2], e[3] * e[3]]
    };
    assert_eq!(b.to_vec::<f64>()?, want);
    Ok(())
}

#[test]
fn views_of_deferred_tensors() -> Result<()> {
    let x = eager(|| Tensor::randn(&[3, 4, 5], DType::F32))?;
    let f = |x: &Tensor| -> Result<Tensor> {
        let y = x.sigmoid()?; // deferred
        let p = y.permute(&[2, 0, 1])?; // a view of it
        let s = y.slice(1, 1, 3, 1)?.mul_scalar(3.0)?;
        let b = x.slice(2, 0, 1, 1)?.tanh()?.expand(&[3, 4, 5])?;
        p.contiguous()?
            .permute(&[1, 2, 0])?
            .add(&b)?
            .slice(1, 1, 3, 1)?
            .sub(&s)
    };
    let want = eager(|| f(&x))?.to_vec::<f32>()?;
    let got = lazy::scope(|| f(&x))?.to_vec::<f32>()?;
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn inlined_through_a_smaller_view() -> Result<()> {
    // The deferred exp has 24 elements; the kernel that inlines it computes 6 of them
    // through a sliced, permuted view (its index map must use exp's own bounds).
    let x = eager(|| Tensor::randn(&[24], DType::F64))?;
    let f = |x: &Tensor| -> Result<Tensor> {
        x.exp()?
            .reshape(&[4, 6])?
            .slice(0, 2, 4, 1)?
            .slice(1, 1, 6, 2)?
            .permute(&[1, 0])?
            .tanh()
    };
    assert_eq!(
        lazy::scope(|| f(&x))?.to_vec::<f64>()?,
        eager(|| f(&x))?.to_vec::<f64>()?
    );
    Ok(())
}

#[test]
fn autograd_through_deferred_ops() -> Result<()> {
    // Inputs drawn once (tests run in parallel and share the global generator).
    let (x0, w0) = eager(|| -> Result<(Tensor, Tensor)> {
        Ok((
            Tensor::randn(&[4, 6], DType::F32)?,
            Tensor::randn(&[6], DType::F32)?,
        ))
    })?;
    let run = || -> Result<(Vec<f32>, Vec<f32>)> {
        let x = x0.detach().requires_grad_(true)?;
        let w = w0.detach().requires_grad_(true)?;
        let y = x.mul(&w)?.gelu("tanh")?.add_scalar(0.5)?.sigmoid()?;
        let loss = y.mul(&y)?.sum_all()?;
        loss.backward()?;
        Ok((
            x.grad().unwrap().to_vec::<f32>()?,
            w.grad().unwrap().to_vec::<f32>()?,
        ))
    };
    let e = eager(run)?;
    let l = lazy::scope(run)?;
    assert_eq!(e, l);
    Ok(())
}

#[test]
fn end_of_scope_realises() -> Result<()> {
    let x = Tensor::from_vec(vec![1.0f32, 4.0], &[2])?;
    let y;
    {
        let _g = lazy::lazy();
        y = x.sqrt()?;
        assert!(y.is_deferred());
    }
    assert!(!y.is_deferred());
    assert_eq!(y.to_vec::<f32>()?, vec![1.0, 2.0]);
    Ok(())
}

#[test]
fn long_chains_stay_bounded() -> Result<()> {
    let _g = lazy::lazy();
    let mut h = Tensor::zeros(&[8], DType::F32)?;
    let x = Tensor::ones(&[8], DType::F32)?;
    for _ in 0..10_000 {
        h = h.mul_scalar(0.5)?.add(&x)?;
    }
    let v = h.to_vec::<f32>()?;
    assert!(v.iter().all(|&e| (e - 2.0).abs() < 1e-6));
    Ok(())
}

#[test]
fn mixed_dtypes_and_predicates() -> Result<()> {
    let f = || -> Result<Tensor> {
        let a = Tensor::from_vec(vec![1i64, -2, 3, 0], &[4])?;
        let b = Tensor::from_vec(vec![0.5f64, 0.25, -1.0, 2.0], &[4])?;
        let m = b.gt_scalar(0.3)?;
        let s = a.to_dtype(DType::F64)?.mul(&b)?;
        s.masked_fill(&m, 7.0)?.add(&m.to_dtype(DType::F64)?)
    };
    assert_eq!(lazy::scope(f)?.to_vec::<f64>()?, eager(f)?.to_vec::<f64>()?);
    Ok(())
}

/// A random elementwise/broadcast/reduce graph, built the same way in both modes.
fn random_graph(seed: u64, ops: &[u8], shape: &[usize]) -> Result<Vec<f64>> {
    // A generator of its own: tests run in parallel and share the global one.
    let mut g = deepseek::tensor::Generator::new(seed);
    let mut draw = |s: &[usize]| -> Result<Tensor> {
        let n: usize = s.iter().product();
        Tensor::from_vec((0..n).map(|_| g.normal()).collect::<Vec<f64>>(), s)
    };
    let x = draw(shape)?;
    let row = draw(&shape[1..])?;
    let mut vals = vec![x.clone(), row];
    for &o in ops {
        let n = vals.len();
        let a = vals[o as usize % n].clone();
        let b = vals[(o as usize / 7) % n].clone();
        let t = match o % 12 {
            0 => a.add(&b)?,
            1 => a.mul(&b)?,
            2 => a.tanh()?,
            3 => a.sub(&b)?.abs()?,
            4 => a.sigmoid()?,
            5 => a.maximum(&b)?,
            6 => a.mul_scalar(0.5)?.exp()?,
            7 => a.sum_dims(&[-1], true)?,
            8 => a.t().map(|t| t.contiguous()).unwrap_or(Ok(a.clone()))?,
            9 => Tensor::where_cond(&a.gt(&b)?, &a, &b)?,
            10 => a.square()?.add_scalar(1.0)?.sqrt()?,
            _ => a.div(&b.abs()?.add_scalar(1.0)?)?,
        };
        vals.push(t);
    }
    let last = vals.last().unwrap().clone();
    last.to_vec_f64()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn lazy_equals_eager(seed in 0u64..1000, ops in prop::collection::vec(any::<u8>(), 1..24),
                         a in 1usize..5, b in 1usize..7) {
        let shape = [a, b];
        let e = eager(|| random_graph(seed, &ops, &shape));
        let l = lazy::scope(|| random_graph(seed, &ops, &shape));
        match (e, l) {
            (Ok(e), Ok(l)) => {
                prop_assert_eq!(e.len(), l.len());
                for (x, y) in e.iter().zip(&l) {
                    prop_assert!(x == y || (x.is_nan() && y.is_nan()), "{} vs {}", x, y);
                }
            }
            (Err(_), Err(_)) => {}
            (e, l) => prop_assert!(false, "eager {:?} vs lazy {:?}", e.is_ok(), l.is_ok()),
        }
    }
}

#[test]
fn inline_powi_matches_the_runtime_routine() {
    use deepseek::scalar::powi;
    for n in -9..=9 {
        for &x in &[
            0.0f32,
            -0.0,
            1.5,
            -2.25,
            3.1e-3,
            7.7e4,
            f32::NAN,
            f32::INFINITY,
        ] {
            let (a, b) = (powi(x, n), x.powi(n));
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{x}^{n}: {a} vs {b}"
            );
            let xd = x as f64 * 1.000001;
            let (a, b) = (powi(xd, n), xd.powi(n));
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{xd}^{n}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn a_deferred_copy_read_by_a_strided_kernel_never_runs() -> Result<()> {
    let a = eager(|| Tensor::randn(&[2, 5, 3], DType::F32))?;
    let b = eager(|| Tensor::randn(&[2, 5, 4], DType::F32))?;
    // a^T b with a's transpose made contiguous first (as model code does).
    let f = |a: &Tensor, b: &Tensor| a.transpose(1, 2)?.contiguous()?.matmul(b);
    let want = eager(|| f(&a, &b))?.to_vec::<f32>()?;
    let _g = lazy::lazy();
    reset_stats();
    let y = f(&a, &b)?;
    let s = stats();
    assert_eq!(s.fused_kernels, 0, "the copy is read in place: {s:?}");
    assert_eq!(s.kernels, 1, "only the matmul runs: {s:?}");
    assert_eq!(y.to_vec::<f32>()?, want);
    // Writing the source after deferring the copy realises the copy first.
    let c = a.transpose(1, 2)?.contiguous()?;
    a.copy_(&a.mul_scalar(2.0)?)?;
    let got = c.matmul(&b)?.to_vec::<f32>()?;
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn reductions_over_leading_dims_fold_columns_in_the_kernel() -> Result<()> {
    let mut g = deepseek::tensor::Generator::new(11);
    let mut draw = |s: &[usize]| -> Result<Tensor> {
        let n: usize = s.iter().product();
        Tensor::from_vec((0..n).map(|_| g.normal() as f32).collect::<Vec<f32>>(), s)
    };
    // Rows shorter and longer than one interpreter chunk.
    for shape in [[7usize, 9, 33], [3, 2, 1500]] {
        let x = draw(&shape)?;
        let w = draw(&shape[2..])?;
        for (op, dims) in [
            ("sum", vec![0isize, 1]),
            ("mean", vec![0]),
            ("amax", vec![0, 1]),
        ] {
            let f = |x: &Tensor| -> Result<Tensor> {
                let y = x.mul(&w)?.tanh()?;
                match op {
                    "sum" => y.sum_dim(&dims, false),
                    "mean" => y.mean_dim(&dims, true),
                    _ => y.amax(&dims, false),
                }
            };
            let want = eager(|| f(&x))?.to_vec::<f32>()?;
            let _l = lazy::lazy();
            reset_stats();
            let got = f(&x)?.to_vec::<f32>()?;
            let s = stats();
            assert_eq!(s.fused_kernels, 1, "{op} {shape:?}: {s:?}");
            assert_eq!(
                s.kernels, 1,
                "{op} {shape:?}: the input is never materialised: {s:?}"
            );
            assert_eq!(got, want, "{op} over {dims:?} of {shape:?}");
        }
    }
    Ok(())
}

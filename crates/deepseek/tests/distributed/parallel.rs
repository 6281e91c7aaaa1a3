//! The ranks' side of the pipeline, ZeRO-1 and in-place collective cases of
//! `tests/distributed.rs` (same harness: launched under mpirun, one case per job).

use super::{close, ensure, mlp, mlp_params, mse};
use deepseek::distributed::{
    self as dist, PipelineStage, ReduceOp, Schedule1F1B, ScheduleGPipe, ZeroRedundancyOptimizer,
};
use deepseek::nn::functional as F;
use deepseek::optim::{AdamConfig, AdamW, Optimizer};
use deepseek::{DType, Result, Tensor};
use std::sync::Arc;

/// In-place all-reduce and broadcast on views of a storage, the copy path for strided and
/// half tensors, and the async shape check.
pub fn in_place(rank: usize, n: usize) -> Result<()> {
    let base = Tensor::from_vec(vec![rank as f32 + 1.0; 12], &[3, 4])?;
    // A contiguous view with an offset: row 1 only is reduced; rows 0 and 2 stay.
    let row = base.narrow(0, 1, 1)?;
    let v0 = base.version();
    dist::all_reduce(&row, ReduceOp::Sum)?;
    ensure(base.version() > v0, "in-place all_reduce bumps the version")?;
    let sum: f32 = (1..=n).map(|i| i as f32).sum();
    let got = base.to_vec::<f32>()?;
    let me = rank as f32 + 1.0;
    let want: Vec<f32> = (0..12)
        .map(|i| if (4..8).contains(&i) { sum } else { me })
        .collect();
    ensure(got == want, format!("all_reduce of a row view: {got:?}"))?;
    // A strided view (a column) goes through the copy path.
    let col = base.narrow(1, 2, 1)?;
    dist::all_reduce(&col, ReduceOp::Max)?;
    ensure(
        col.to_vec::<f32>()? == vec![n as f32, sum, n as f32],
        format!("all_reduce of a column: {:?}", col.to_vec::<f32>()?),
    )?;
    // avg in place, f64 and i32.
    let t = Tensor::from_vec(vec![rank as f64 * 2.0; 5], &[5])?;
    dist::all_reduce(&t, ReduceOp::Avg)?;
    ensure(
        t.to_vec::<f64>()? == vec![(n - 1) as f64; 5],
        "avg f64 in place",
    )?;
    let t = Tensor::from_vec(vec![rank as i32 + 1; 3], &[3])?;
    dist::all_reduce(&t, ReduceOp::Avg)?;
    let want = (1..=n as i32).sum::<i32>().div_euclid(n as i32);
    ensure(t.to_vec::<i32>()? == vec![want; 3], "avg i32 in place")?;
    // f16 travels through the copy path.
    let h = Tensor::from_vec(vec![1.5f32; 4], &[4])?.to_dtype(DType::F16)?;
    dist::all_reduce(&h, ReduceOp::Sum)?;
    ensure(h.to_vec_f64()? == vec![1.5 * n as f64; 4], "f16 all_reduce")?;
    // A large message (several MPI chunks' worth of work for the shared-memory transport).
    let big = Tensor::full(&[3 << 20], rank as f64 + 1.0, DType::F32)?;
    dist::broadcast(&big, n - 1)?;
    ensure(
        big.to_vec::<f32>()?.iter().all(|&x| x == n as f32),
        "large in-place broadcast",
    )?;
    // async: the shape check runs in the request; a mismatch surfaces at wait().
    let w = dist::world()?;
    let t = Tensor::zeros(&[2 + rank], DType::F32)?;
    let mut work = w.all_reduce_async(&t, ReduceOp::Sum)?;
    let e = work.wait().unwrap_err().to_string();
    ensure(
        e.contains("all_reduce") && e.contains("rank 0 has [2] float32"),
        format!("async mismatch: {e}"),
    )?;
    dist::barrier()
}

/// The sequential model cut in two: stage 0 is the first linear layer + tanh, stage 1 the
/// second linear layer.
pub fn pipeline(rank: usize, one_f_one_b: bool, width: usize) -> Result<()> {
    let p = wide_params(width)?;
    let reference = wide_params(width)?;
    let stage_params = if rank == 0 {
        vec![p[0].clone(), p[1].clone()]
    } else {
        vec![p[2].clone(), p[3].clone()]
    };
    let sp = stage_params.clone();
    let fwd = move |x: &Tensor| -> Result<Tensor> {
        let y = x.linear(&sp[0], Some(&sp[1]))?;
        if rank == 0 {
            F::tanh(&y)
        } else {
            Ok(y)
        }
    };
    let stage = PipelineStage::new(fwd, rank, 2, None)?;
    let loss: dist::pipeline::LossFn = Arc::new(|y: &Tensor, t: &Tensor| F::mse_loss(y, t, "mean"));
    let micro = 4;
    enum S {
        G(ScheduleGPipe),
        O(Schedule1F1B),
    }
    let sched = if one_f_one_b {
        S::O(Schedule1F1B::new(stage, micro, Some(loss))?)
    } else {
        S::G(ScheduleGPipe::new(stage, micro, Some(loss))?)
    };
    let step = |x: Option<&Tensor>, y: Option<&Tensor>, l: Option<&mut Vec<Tensor>>| match &sched {
        S::G(s) => s.step(x, y, l),
        S::O(s) => s.step(x, y, l),
    };
    deepseek::manual_seed(21);
    for it in 0..3 {
        let x = Tensor::randn(&[16, 6], DType::F32)?;
        let y = Tensor::randn(&[16, 3], DType::F32)?;
        for t in p.iter().chain(&reference) {
            t.zero_grad();
        }
        let ref_loss = mse(&reference, &x, &y)?;
        ref_loss.backward()?;
        let mut losses = Vec::new();
        let out = if rank == 0 {
            step(Some(&x), None, None)?
        } else {
            step(None, Some(&y), Some(&mut losses))?
        };
        if rank == 1 {
            let out = out.expect("the last stage returns the output");
            close(&out, &mlp(&reference, &x)?, 1e-5, "pipeline output")?;
            ensure(losses.len() == micro, format!("{} losses", losses.len()))?;
            let mean = Tensor::stack(&losses, 0)?.mean_all()?;
            close(&mean, &ref_loss, 1e-5, &format!("loss at iteration {it}"))?;
        } else {
            ensure(out.is_none(), "stage 0 returns no output")?;
        }
        for (i, t) in stage_params.iter().enumerate() {
            let r = &reference[2 * rank + i];
            close(
                &t.grad().expect("stage gradient"),
                &r.grad().expect("reference gradient"),
                1e-5,
                &format!("stage {rank} parameter {i} gradient, iteration {it}"),
            )?;
        }
    }
    // Errors: the wrong stage given the input, a batch that does not split.
    let e = if rank == 0 {
        step(Some(&Tensor::zeros(&[15, 6], DType::F32)?), None, None)
    } else {
        step(Some(&Tensor::zeros(&[16, 6], DType::F32)?), None, None)
    };
    let e = e.unwrap_err().to_string();
    ensure(
        e.contains(if rank == 0 { "equal" } else { "only stage 0" }),
        format!("pipeline error: {e}"),
    )?;
    let e = PipelineStage::new(|x: &Tensor| Ok(x.clone()), 1 - rank, 2, None)
        .unwrap_err()
        .to_string();
    ensure(e.contains("stage i runs on rank i"), e)?;
    dist::barrier()
}

/// `mlp_params` widened: `width` hidden units, so activations can exceed MPI's eager limit
/// (then a send waits for the matching receive: the schedules must not deadlock).
fn wide_params(width: usize) -> Result<Vec<Tensor>> {
    if width == 16 {
        return mlp_params();
    }
    deepseek::manual_seed(11);
    let p = vec![
        Tensor::randn(&[width, 6], DType::F32)?.mul_scalar(0.4)?,
        Tensor::zeros(&[width], DType::F32)?,
        Tensor::randn(&[3, width], DType::F32)?.mul_scalar(0.05)?,
        Tensor::zeros(&[3], DType::F32)?,
    ];
    p.into_iter().map(|t| t.requires_grad_(true)).collect()
}

/// ZeRO-1 AdamW on `n` ranks, each on its share of the batch == plain AdamW on the whole
/// batch in one process, over several steps.
pub fn zero(rank: usize, n: usize) -> Result<()> {
    let mine = mlp_params()?;
    let reference = mlp_params()?;
    if rank > 0 {
        // ZeRO must start every rank from rank 0's values.
        deepseek::with_no_grad(|| mine[2].copy_(&mine[2].mul_scalar(-2.0)?))?;
    }
    let cfg = AdamConfig {
        lr: 0.01,
        weight_decay: 0.05,
        ..AdamConfig::adamw_default()
    };
    let mut opt = ZeroRedundancyOptimizer::new(
        mine.clone(),
        |shard| Ok(Box::new(AdamW::new(shard, cfg)?) as Box<dyn Optimizer>),
        None,
    )?;
    let total: usize = mine.iter().map(|p| p.numel()).sum();
    ensure(
        opt.shard_numel() == total.div_ceil(n),
        format!("shard of {} elements of {total}", opt.shard_numel()),
    )?;
    let mut ref_opt = AdamW::new(reference.clone(), cfg)?;
    deepseek::manual_seed(8);
    let rows = 3;
    for step in 0..6 {
        let x = Tensor::randn(&[rows * n, 6], DType::F32)?;
        let y = Tensor::randn(&[rows * n, 3], DType::F32)?;
        ref_opt.zero_grad();
        mse(&reference, &x, &y)?.backward()?;
        ref_opt.step()?;
        opt.zero_grad();
        mse(
            &mine,
            &x.narrow(0, rank * rows, rows)?,
            &y.narrow(0, rank * rows, rows)?,
        )?
        .backward()?;
        opt.step()?;
        for (i, (a, b)) in mine.iter().zip(&reference).enumerate() {
            close(a, b, 1e-5, &format!("parameter {i} after step {step}"))?;
        }
    }
    // The state covers this rank's slice only.
    let st = opt.state_dict()?;
    let json = st.to_json()?;
    ensure(json.contains("exp_avg"), "AdamW state present")?;
    ensure(opt.lr() == 0.01, "lr from the inner optimizer")?;
    dist::barrier()
}

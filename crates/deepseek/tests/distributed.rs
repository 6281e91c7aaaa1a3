//! Multi-process tests of `deepseek::distributed` (feature `mpi`).
//!
//! Run by `cargo test --release -p deepseek --features mpi --test distributed`: the test
//! process launches itself under `mpirun --allow-run-as-root --oversubscribe` once per case
//! (`DEEPSEEK_DIST_CASE` selects the case in the ranks) and checks each job's exit status
//! and output. Every job runs under a wall-clock limit, so a hang fails instead of blocking.

use deepseek::distributed::{
    self as dist, ColumnParallelLinear, DistributedDataParallel, ReduceOp, RowParallelLinear,
};
use deepseek::nn::functional as F;
use deepseek::optim::{Optimizer, Sgd, SgdConfig};
use deepseek::{DType, Error, Result, Tensor};
use std::process::Command;

#[path = "distributed/parallel.rs"]
mod parallel;
#[path = "distributed/sharded_ckpt.rs"]
mod sharded_ckpt;
#[path = "distributed/tp_vocab.rs"]
mod tp_vocab;
use std::time::{Duration, Instant};

fn main() {
    if let Ok(case) = std::env::var("DEEPSEEK_DIST_CASE") {
        // A rank of a job.
        let r = run_case(&case);
        if let Err(e) = &r {
            eprintln!("rank failed: {e}");
        }
        dist::destroy_process_group();
        std::process::exit(if r.is_ok() { 0 } else { 1 });
    }
    let mut failed = 0;
    for (case, np) in [
        ("collectives", 2),
        ("collectives", 3),
        ("ddp", 2),
        ("no_sync", 2),
        ("tp", 2),
        ("tp_attention", 2),
        ("tp_vocab", 2),
        ("errors", 2),
        ("in_place", 2),
        ("in_place", 3),
        ("pipeline_gpipe", 2),
        ("pipeline_1f1b", 2),
        ("pipeline_1f1b_wide", 2),
        ("pipeline_gpipe_wide", 2),
        ("zero", 2),
        ("zero", 3),
    ] {
        // DEEPSEEK_DIST_ONLY=case runs one case (while working on it).
        if std::env::var("DEEPSEEK_DIST_ONLY").is_ok_and(|o| o != case) {
            continue;
        }
        failed += check(case, np, launch(case, np, &[]), |out| {
            out.contains("case ok")
        });
    }
    let only = std::env::var("DEEPSEEK_DIST_ONLY").ok();
    failed += sharded_ckpt::jobs(only.as_deref());
    if only.as_deref().is_none_or(|o| o == "fault") {
        // A rank killed mid-training: the job must end (no hang) with an error naming it.
        let r = launch("fault", 2, &[]);
        failed += check("fault", 2, r, |out| {
            false_if_zero(out) && out.contains("rank 1") && out.contains("exited on signal")
        });
    }
    if only.as_deref().is_none_or(|o| o == "mixed") {
        failed += mixed_with_mpi4py();
    }
    println!("distributed: {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

fn false_if_zero(out: &str) -> bool {
    !out.contains("exit status: 0")
}

struct Job {
    ok: bool,
    text: String,
}

fn mpirun() -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe"]);
    c.env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    c
}

fn run_job(mut c: Command, limit: Duration) -> Job {
    let out = tempfile_path();
    let f = std::fs::File::create(&out).expect("log file");
    c.stdout(f.try_clone().expect("log")).stderr(f);
    let start = Instant::now();
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            return Job {
                ok: false,
                text: format!("cannot run mpirun: {e}"),
            }
        }
    };
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    match status {
        Some(s) => {
            text.push_str(&format!(
                "\n[{s}] after {:.1} s",
                start.elapsed().as_secs_f64()
            ));
            Job {
                ok: s.success(),
                text,
            }
        }
        None => Job {
            ok: false,
            text: format!("{text}\nTIMED OUT after {limit:?}"),
        },
    }
}

fn tempfile_path() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "deepseek-dist-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn launch(case: &str, np: usize, extra: &[&str]) -> Job {
    let exe = std::env::current_exe().expect("test executable");
    let mut c = mpirun();
    c.args(["-np", &np.to_string()]);
    c.args(extra);
    c.arg(exe)
        .env("DEEPSEEK_DIST_CASE", case)
        .env("DEEPSEEK_DIST_TIMEOUT", "60");
    c.env("DEEPSEEK_NUM_THREADS", "1");
    run_job(c, Duration::from_secs(90))
}

fn check(case: &str, np: usize, j: Job, pass: impl Fn(&str) -> bool) -> i32 {
    let expect_ok = case != "fault";
    let good = j.ok == expect_ok && pass(&j.text);
    println!("{} {case} (np {np})", if good { "ok  " } else { "FAIL" });
    if !good {
        println!("---- output of {case}:\n{}\n----", j.text);
    }
    i32::from(!good)
}

fn mixed_with_mpi4py() -> i32 {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&py)
        .args(["-c", "import mpi4py"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has {
        println!("FAIL mixed (mpi4py is not installed for {py}; scripts/test.sh installs it)");
        return 1;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../python/tests/dist/mpi4py_peer.py"
    );
    let exe = std::env::current_exe().expect("test executable");
    let mut c = mpirun();
    c.args(["-np", "1", "-x", "DEEPSEEK_DIST_CASE=mixed"]);
    c.arg(exe).args([":", "-np", "1"]).arg(&py).arg(script);
    let j = run_job(c, Duration::from_secs(90));
    check("mixed", 2, j, |out| {
        out.contains("case ok") && out.contains("mpi4py ok")
    })
}

// ------------------------------------------------------------------ the ranks' side

fn run_case(case: &str) -> Result<()> {
    dist::init_process_group("mpi")?;
    let (rank, n) = (dist::get_rank()?, dist::get_world_size()?);
    if std::env::var_os("DEEPSEEK_DIST_SHOW_NETNS").is_some() {
        // scripts/test_two_hosts.sh checks that the ranks ran in different namespaces.
        let ns = std::fs::read_link("/proc/self/ns/net").unwrap_or_default();
        println!("rank {rank}: netns {}", ns.display());
    }
    match case {
        "collectives" => collectives(rank, n)?,
        "ddp" => ddp(rank, n, false)?,
        "no_sync" => ddp(rank, n, true)?,
        "tp" => tp(rank)?,
        "errors" => errors(rank)?,
        "fault" => fault(rank)?,
        "mixed" => mixed()?,
        "in_place" => parallel::in_place(rank, n)?,
        "pipeline_gpipe" => parallel::pipeline(rank, false, 16)?,
        "pipeline_1f1b" => parallel::pipeline(rank, true, 16)?,
        "pipeline_gpipe_wide" => parallel::pipeline(rank, false, 4096)?,
        "pipeline_1f1b_wide" => parallel::pipeline(rank, true, 4096)?,
        "zero" => parallel::zero(rank, n)?,
        "tp_attention" => tp_vocab::attention(rank, n)?,
        "tp_vocab" => tp_vocab::vocab(rank, n)?,
        c if c.starts_with("ckpt_") => sharded_ckpt::run(c, rank, n)?,
        _ => return Err(Error::Msg(format!("unknown case {case}"))),
    }
    println!("rank {rank}: case ok");
    Ok(())
}

fn ensure(cond: bool, what: impl Into<String>) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Msg(what.into()))
    }
}

fn close(a: &Tensor, b: &Tensor, tol: f64, what: &str) -> Result<()> {
    let (x, y) = (a.to_vec_f64()?, b.to_vec_f64()?);
    ensure(
        x.len() == y.len(),
        format!("{what}: lengths {} vs {}", x.len(), y.len()),
    )?;
    let worst = x
        .iter()
        .zip(&y)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    ensure(
        worst <= tol,
        format!("{what}: worst difference {worst:e} > {tol:e}"),
    )
}

fn collectives(rank: usize, n: usize) -> Result<()> {
    let r = rank as f64;
    let v = |x: Vec<f64>| Tensor::from_vec(x, &[2]);
    let sum: f64 = (0..n).map(|i| i as f64 + 1.0).sum();
    for (op, want) in [
        (ReduceOp::Sum, sum),
        (ReduceOp::Avg, sum / n as f64),
        (ReduceOp::Max, n as f64),
        (ReduceOp::Min, 1.0),
        (ReduceOp::Product, (1..=n).map(|i| i as f64).product()),
    ] {
        let t = v(vec![r + 1.0, -(r + 1.0)])?;
        dist::all_reduce(&t, op)?;
        let neg = match op {
            ReduceOp::Max => -1.0,
            ReduceOp::Min => -(n as f64),
            ReduceOp::Product if n % 2 == 1 => -want,
            ReduceOp::Product => want,
            _ => -want,
        };
        ensure(
            t.to_vec::<f64>()? == vec![want, neg],
            format!("all_reduce {op:?}: {:?}", t.to_vec::<f64>()?),
        )?;
    }
    // f32 and integers.
    let t = Tensor::from_vec(vec![rank as i64; 3], &[3])?;
    dist::all_reduce(&t, ReduceOp::Sum)?;
    ensure(
        t.to_vec::<i64>()? == vec![(n * (n - 1) / 2) as i64; 3],
        "all_reduce i64",
    )?;
    let t = Tensor::from_vec(vec![rank as f32 * 10.0; 5], &[5])?;
    dist::broadcast(&t, n - 1)?;
    ensure(
        t.to_vec::<f32>()? == vec![(n - 1) as f32 * 10.0; 5],
        "broadcast",
    )?;
    let parts = dist::all_gather(&Tensor::from_vec(vec![rank as f32; 2], &[1, 2])?)?;
    for (i, p) in parts.iter().enumerate() {
        ensure(
            p.shape() == [1, 2] && p.to_vec::<f32>()? == vec![i as f32; 2],
            "all_gather",
        )?;
    }
    let input = Tensor::from_vec(
        (0..2 * n).map(|i| i as f32 + rank as f32).collect(),
        &[2 * n],
    )?;
    let out = Tensor::zeros(&[2], DType::F32)?;
    dist::reduce_scatter_tensor(&out, &input, ReduceOp::Sum, None)?;
    let base: f32 = (0..n).map(|i| i as f32).sum();
    let want: Vec<f32> = (0..2)
        .map(|j| n as f32 * (2 * rank + j) as f32 + base)
        .collect();
    ensure(
        out.to_vec::<f32>()? == want,
        format!("reduce_scatter {:?} vs {want:?}", out.to_vec::<f32>()?),
    )?;
    dist::barrier()?;
    // Point to point around a ring, asynchronous both ways.
    let w = dist::world()?;
    let send = Tensor::from_vec(vec![rank as f32; 4], &[2, 2])?;
    let got = Tensor::zeros(&[2, 2], DType::F32)?;
    let mut s = w.isend(&send, (rank + 1) % n, 3)?;
    let mut q = w.irecv(&got, (rank + n - 1) % n, 3)?;
    q.wait()?;
    s.wait()?;
    ensure(
        got.to_vec::<f32>()? == vec![((rank + n - 1) % n) as f32; 4],
        "send/recv ring",
    )?;
    // Async all_reduce overlapping local work.
    let t = Tensor::ones(&[1000], DType::F32)?;
    let mut work = w.all_reduce_async(&t, ReduceOp::Sum)?;
    let _local =
        Tensor::randn(&[64, 64], DType::F32)?.matmul(&Tensor::randn(&[64, 64], DType::F32)?)?;
    work.wait()?;
    ensure(
        t.to_vec::<f32>()?.iter().all(|&x| x == n as f32),
        "async all_reduce",
    )?;
    // A sub-group of ranks {0, n-1}.
    let g = dist::new_group(&[0, n - 1])?;
    let t = Tensor::from_vec(vec![1.0f32], &[1])?;
    if rank == 0 || rank == n - 1 {
        g.all_reduce(&t, ReduceOp::Sum)?;
        ensure(t.to_vec::<f32>()? == vec![2.0], "sub-group all_reduce")?;
    } else {
        let e = g.all_reduce(&t, ReduceOp::Sum).unwrap_err().to_string();
        ensure(e.contains("not a member"), format!("non-member error: {e}"))?;
    }
    dist::barrier()
}

/// A two-layer MLP whose parameters the test can clone.
fn mlp_params() -> Result<Vec<Tensor>> {
    deepseek::manual_seed(11);
    let p = vec![
        Tensor::randn(&[16, 6], DType::F32)?.mul_scalar(0.4)?,
        Tensor::zeros(&[16], DType::F32)?,
        Tensor::randn(&[3, 16], DType::F32)?.mul_scalar(0.3)?,
        Tensor::zeros(&[3], DType::F32)?,
    ];
    p.into_iter().map(|t| t.requires_grad_(true)).collect()
}
fn mlp(p: &[Tensor], x: &Tensor) -> Result<Tensor> {
    F::tanh(&x.linear(&p[0], Some(&p[1]))?)?.linear(&p[2], Some(&p[3]))
}
fn mse(p: &[Tensor], x: &Tensor, y: &Tensor) -> Result<Tensor> {
    F::mse_loss(&mlp(p, x)?, y, "mean")
}

fn ddp(rank: usize, n: usize, accumulate: bool) -> Result<()> {
    let batch = 4 * n;
    let mine = mlp_params()?;
    let reference = mlp_params()?;
    // Different starting values on other ranks: DDP must broadcast rank 0's.
    if rank > 0 {
        deepseek::with_no_grad(|| mine[0].copy_(&mine[0].mul_scalar(3.0)?))?;
    }
    let names = (0..4).map(|i| format!("p{i}")).collect();
    // A tiny bucket cap: one bucket per parameter, so several buckets are exercised.
    let cap = if accumulate { 25.0 } else { 1e-4 };
    let ddp = DistributedDataParallel::from_params(mine.clone(), names, vec![], None, cap)?;
    ensure(
        ddp.num_buckets() == if accumulate { 1 } else { 4 },
        format!("{} buckets", ddp.num_buckets()),
    )?;
    let cfg = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..SgdConfig::default()
    };
    let mut opt = Sgd::new(mine.clone(), cfg)?;
    let mut ref_opt = Sgd::new(reference.clone(), cfg)?;
    deepseek::manual_seed(5);
    for step in 0..20 {
        let x = Tensor::randn(&[batch, 6], DType::F32)?;
        let y = Tensor::randn(&[batch, 3], DType::F32)?;
        // Reference: one process, the whole batch.
        ref_opt.zero_grad();
        let ref_loss = mse(&reference, &x, &y)?;
        ref_loss.backward()?;
        ref_opt.step()?;
        // DDP: this rank's rows.
        opt.zero_grad();
        let (xs, ys) = (x.narrow(0, rank * 4, 4)?, y.narrow(0, rank * 4, 4)?);
        let loss = if accumulate {
            // Two micro-batches of 2 rows; the first without synchronisation.
            let l1 = {
                let _g = ddp.no_sync();
                let l = mse(&mine, &xs.narrow(0, 0, 2)?, &ys.narrow(0, 0, 2)?)?.mul_scalar(0.5)?;
                l.backward()?;
                l
            };
            ensure(ddp.is_sync(), "no_sync guard restores sync")?;
            let l2 = mse(&mine, &xs.narrow(0, 2, 2)?, &ys.narrow(0, 2, 2)?)?.mul_scalar(0.5)?;
            l2.backward()?;
            l1.add(&l2)?
        } else {
            let l = mse(&mine, &xs, &ys)?;
            l.backward()?;
            l
        };
        ddp.check_finished()?;
        opt.step()?;
        let l = loss.detach().contiguous_copy()?;
        dist::all_reduce(&l, ReduceOp::Avg)?;
        close(&l, &ref_loss, 1e-5, &format!("loss at step {step}"))?;
        for (i, (a, b)) in mine.iter().zip(&reference).enumerate() {
            close(a, b, 1e-5, &format!("parameter {i} after step {step}"))?;
        }
    }
    Ok(())
}

fn tp(rank: usize) -> Result<()> {
    deepseek::manual_seed(3 + rank as u64); // ranks disagree; from_full broadcasts rank 0's
    let w1 = Tensor::randn(&[8, 6], DType::F32)?.requires_grad_(true)?;
    let b1 = Tensor::randn(&[8], DType::F32)?.requires_grad_(true)?;
    let w2 = Tensor::randn(&[5, 8], DType::F32)?.requires_grad_(true)?;
    let b2 = Tensor::randn(&[5], DType::F32)?.requires_grad_(true)?;
    let col = ColumnParallelLinear::from_full(&w1, Some(&b1), false, None)?;
    let row = RowParallelLinear::from_full(&w2, Some(&b2), true, None)?;
    // The unsplit reference from rank 0's weights.
    let full: Vec<Tensor> = [&w1, &b1, &w2, &b2]
        .iter()
        .map(|t| -> Result<Tensor> {
            let c = t.detach().contiguous_copy()?;
            dist::broadcast(&c, 0)?;
            c.requires_grad_(true)
        })
        .collect::<Result<_>>()?;
    deepseek::manual_seed(99);
    let x = Tensor::randn(&[4, 6], DType::F32)?.requires_grad_(true)?;
    let x_ref = x.detach().requires_grad_(true)?;
    let y = row.forward(&F::relu(&col.forward(&x)?)?)?;
    let y_ref =
        F::relu(&x_ref.linear(&full[0], Some(&full[1]))?)?.linear(&full[2], Some(&full[3]))?;
    close(&y, &y_ref, 1e-5, "tensor-parallel MLP output")?;
    y.mul(&y)?.sum_all()?.backward()?;
    y_ref.mul(&y_ref)?.sum_all()?.backward()?;
    close(
        &x.grad().expect("x grad"),
        &x_ref.grad().expect("grad"),
        1e-4,
        "input gradient",
    )?;
    let g0 = full[0].grad().expect("grad").narrow(0, rank * 4, 4)?;
    close(
        &col.weight.grad().expect("grad"),
        &g0,
        1e-4,
        "column weight gradient",
    )?;
    let g2 = full[2].grad().expect("grad").narrow(1, rank * 4, 4)?;
    close(
        &row.weight.grad().expect("grad"),
        &g2,
        1e-4,
        "row weight gradient",
    )?;
    close(
        &row.bias.as_ref().expect("bias").grad().expect("grad"),
        &full[3].grad().expect("grad"),
        1e-4,
        "row bias gradient",
    )
}

fn errors(rank: usize) -> Result<()> {
    // Ranks disagree on the shape: both get an error naming the collective and the shapes.
    let t = Tensor::zeros(&[2 + rank, 3], DType::F32)?;
    let e = dist::all_reduce(&t, ReduceOp::Sum).unwrap_err().to_string();
    ensure(
        e.contains("all_reduce")
            && e.contains("rank 0 has [2, 3] float32")
            && e.contains("rank 1 has [3, 3] float32"),
        format!("mismatch message: {e}"),
    )?;
    let t = Tensor::zeros(&[4], if rank == 0 { DType::F32 } else { DType::F64 })?;
    let e = dist::broadcast(&t, 0).unwrap_err().to_string();
    ensure(
        e.contains("broadcast") && e.contains("float64"),
        format!("dtype mismatch message: {e}"),
    )?;
    // recv into a tensor of the wrong shape.
    if rank == 0 {
        dist::send(&Tensor::zeros(&[5], DType::F32)?, 1)?;
    } else {
        let e = dist::recv(&Tensor::zeros(&[4], DType::F32)?, 0)
            .unwrap_err()
            .to_string();
        ensure(
            e.contains("recv") && e.contains("[5]") && e.contains("[4]"),
            format!("recv message: {e}"),
        )?;
    }
    // The group still works after the errors.
    let t = Tensor::ones(&[3], DType::F32)?;
    dist::all_reduce(&t, ReduceOp::Sum)?;
    ensure(
        t.to_vec::<f32>()? == vec![2.0; 3],
        "all_reduce after errors",
    )?;
    let e = dist::init_process_group("mpi").unwrap_err().to_string();
    ensure(e.contains("already"), e)?;
    ensure("bogus".parse::<ReduceOp>().is_err(), "bad ReduceOp name")?;
    dist::barrier()
}

fn fault(rank: usize) -> Result<()> {
    let params = mlp_params()?;
    let _ddp = DistributedDataParallel::from_params(
        params.clone(),
        (0..4).map(|i| format!("p{i}")).collect(),
        vec![],
        None,
        25.0,
    )?;
    for step in 0..1000 {
        if rank == 1 && step == 3 {
            // SAFETY: killing this process, as a crash would.
            unsafe { libc_kill() };
        }
        let x = Tensor::randn(&[4, 6], DType::F32)?;
        mse(&params, &x, &Tensor::zeros(&[4, 3], DType::F32)?)?.backward()?;
    }
    Err(Error::Msg("training continued after a rank died".into()))
}

unsafe fn libc_kill() {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    kill(std::process::id() as i32, 9);
}

fn mixed() -> Result<()> {
    // The peer is an mpi4py program (python/tests/dist/mpi4py_peer.py) at rank 1.
    let t = Tensor::from_vec(vec![1.5f64, 2.0, -3.0], &[3])?;
    dist::all_reduce(&t, ReduceOp::Sum)?;
    ensure(
        t.to_vec::<f64>()? == vec![11.5, 22.0, -33.0],
        format!("mixed all_reduce: {:?}", t.to_vec::<f64>()?),
    )?;
    let b = Tensor::zeros(&[4], DType::F32)?;
    dist::broadcast(&b, 1)?;
    ensure(
        b.to_vec::<f32>()? == vec![7.0, 8.0, 9.0, 10.0],
        "mixed broadcast",
    )?;
    let m = Tensor::from_vec(vec![5i64, -1], &[2])?;
    dist::all_reduce(&m, ReduceOp::Max)?;
    ensure(m.to_vec::<i64>()? == vec![5, 4], "mixed max")
}

//! Sharded checkpoints (`deepseek::distributed::checkpoint`) under mpirun: exact resume of
//! a tensor-parallel model with AdamW and of a ZeRO-1 AdamW job, consolidation into the
//! unsplit model's state dict, the error paths, and a resume on another world size.
//!
//! The jobs share one directory (`DEEPSEEK_CKPT_DIR`, set by [`jobs`]): `ckpt_tp` leaves a
//! 2-rank checkpoint there that `ckpt_resize` (3 ranks) must refuse.

use super::{check, close, ensure, launch, mlp, mlp_params, mse};
use deepseek::distributed::checkpoint::{
    self, ShardedModule, ShardedOptimizer, ShardedParam, INDEX_FILE,
};
use deepseek::distributed::{
    self as dist, ColumnParallelLinear, ParallelMultiheadAttention, RowParallelLinear,
    VocabParallelEmbedding, ZeroRedundancyOptimizer,
};
use deepseek::nn::functional as F;
use deepseek::nn::load_safetensors;
use deepseek::nn::{Embedding, Module, MultiheadAttention};
use deepseek::optim::{AdamConfig, AdamW, Optimizer};
use deepseek::{DType, Error, Result, Tensor};
use std::path::{Path, PathBuf};

/// Launches the cases (from the test's `main`); returns the number that failed.
pub fn jobs(only: Option<&str>) -> i32 {
    let dir = std::env::temp_dir().join(format!("deepseek-sharded-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = format!("DEEPSEEK_CKPT_DIR={}", dir.display());
    let mut failed = 0;
    for (case, np) in [
        ("ckpt_tp", 2),
        ("ckpt_zero", 2),
        ("ckpt_errors", 2),
        ("ckpt_resize", 3),
        ("ckpt_megatron", 2),
    ] {
        if only.is_some_and(|o| o != case && o != "ckpt") {
            continue;
        }
        failed += check(case, np, launch(case, np, &["-x", env.as_str()]), |out| {
            out.contains("case ok")
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    failed
}

/// The ranks' side.
pub fn run(case: &str, rank: usize, n: usize) -> Result<()> {
    let root = PathBuf::from(
        std::env::var("DEEPSEEK_CKPT_DIR")
            .map_err(|_| Error::Msg("DEEPSEEK_CKPT_DIR unset".into()))?,
    );
    match case {
        "ckpt_tp" => tp(rank, &root.join("tp")),
        "ckpt_zero" => zero(rank, n, &root.join("zero")),
        "ckpt_errors" => errors(rank, &root.join("errors")),
        "ckpt_resize" => resize(&root.join("tp")),
        "ckpt_megatron" => megatron(rank, &root.join("megatron")),
        _ => Err(Error::Msg(format!("unknown case {case}"))),
    }
}

fn bits(t: &Tensor) -> Result<Vec<u32>> {
    Ok(t.to_vec::<f32>()?.into_iter().map(f32::to_bits).collect())
}

fn same(a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    ensure(
        a.shape() == b.shape(),
        format!("{what}: shapes {:?} vs {:?}", a.shape(), b.shape()),
    )?;
    ensure(bits(a)? == bits(b)?, format!("{what}: not bitwise equal"))
}

/// Batch `step` of the shared data stream (the same on every rank).
fn batch(step: usize, rows: usize) -> Result<(Tensor, Tensor)> {
    deepseek::manual_seed(1000 + step as u64);
    Ok((
        Tensor::randn(&[rows, 6], DType::F32)?,
        Tensor::randn(&[rows, 3], DType::F32)?,
    ))
}

fn adamw() -> AdamConfig {
    AdamConfig {
        lr: 0.02,
        weight_decay: 0.05,
        ..AdamConfig::adamw_default()
    }
}

struct Tp {
    col: ColumnParallelLinear,
    row: RowParallelLinear,
    opt: AdamW,
}

impl Tp {
    /// The MLP of `mlp_params` split Megatron-style; `scale` perturbs the starting weights.
    fn new(scale: f64) -> Result<Tp> {
        let p = mlp_params()?;
        let p: Vec<Tensor> = p
            .iter()
            .map(|t| {
                t.detach()
                    .mul_scalar(scale)?
                    .sub_scalar(1.0 - scale)?
                    .requires_grad_(true)
            })
            .collect::<Result<_>>()?;
        let col = ColumnParallelLinear::from_full(&p[0], Some(&p[1]), false, None)?;
        let row = RowParallelLinear::from_full(&p[2], Some(&p[3]), true, None)?;
        let opt = AdamW::new(
            vec![
                col.weight.clone(),
                col.bias.clone().expect("bias"),
                row.weight.clone(),
                row.bias.clone().expect("bias"),
            ],
            adamw(),
        )?;
        Ok(Tp { col, row, opt })
    }
    fn params(&self) -> Vec<ShardedParam> {
        let mut v = self.col.sharded_parameters("fc1");
        v.extend(self.row.sharded_parameters("fc2"));
        v
    }
    fn step(&mut self, step: usize) -> Result<f32> {
        let (x, y) = batch(step, 8)?;
        self.opt.zero_grad();
        let out = self.row.forward(&F::tanh(&self.col.forward(&x)?)?)?;
        let loss = F::mse_loss(&out, &y, "mean")?;
        loss.backward()?;
        self.opt.step()?;
        Ok(loss.to_vec::<f32>()?[0])
    }
    fn tensors(&self) -> Vec<Tensor> {
        self.params().into_iter().map(|p| p.tensor).collect()
    }
}

/// Full tensors from every rank's shard (along `dim`).
fn gather(t: &Tensor, dim: isize) -> Result<Tensor> {
    let parts = dist::all_gather(&t.detach().contiguous_copy()?)?;
    Tensor::cat(&parts, dim)
}

/// Tensor-parallel MLP + AdamW: save after 3 steps, 3 more steps == load into a differently
/// initialised copy + the same 3 steps (losses and parameters bitwise); the consolidated
/// file is the unsplit model's state dict.
fn tp(rank: usize, dir: &Path) -> Result<()> {
    let mut a = Tp::new(1.0)?;
    let reference = mlp_params()?;
    let mut ref_opt = AdamW::new(reference.clone(), adamw())?;
    for s in 0..3 {
        let l = a.step(s)?;
        let (x, y) = batch(s, 8)?;
        ref_opt.zero_grad();
        let rl = mse(&reference, &x, &y)?;
        rl.backward()?;
        ref_opt.step()?;
        ensure(
            (l - rl.to_vec::<f32>()?[0]).abs() < 1e-5,
            format!("loss {l} vs unsplit"),
        )?;
    }
    checkpoint::save(
        dir,
        &a.params(),
        Some(ShardedOptimizer::Local(&mut a.opt)),
        serde_json::json!({"step": 3}),
    )?;
    ensure(dir.join(INDEX_FILE).is_file(), "index written")?;
    // The full model at the save, gathered over the ranks.
    let full_at_save = [
        gather(&a.col.weight, 0)?,
        gather(a.col.bias.as_ref().expect("bias"), 0)?,
        gather(&a.row.weight, 1)?,
        a.row
            .bias
            .as_ref()
            .expect("bias")
            .detach()
            .contiguous_copy()?,
    ];
    let ref_state = ref_opt.state_dict()?;
    let mut losses = Vec::new();
    for s in 3..6 {
        losses.push(a.step(s)?);
    }
    let mut b = Tp::new(0.5)?;
    let params_b = b.params();
    let meta = checkpoint::load(dir, &params_b, Some(ShardedOptimizer::Local(&mut b.opt)))?;
    ensure(meta["step"] == 3, format!("metadata {meta}"))?;
    for s in 3..6 {
        let l = b.step(s)?;
        ensure(
            l.to_bits() == losses[s - 3].to_bits(),
            format!("resumed loss at step {s}: {l} vs {}", losses[s - 3]),
        )?;
    }
    for (i, (x, y)) in a.tensors().iter().zip(b.tensors()).enumerate() {
        same(x, &y, &format!("resumed parameter {i}"))?;
    }
    if rank == 0 {
        // One process, no collectives: the unsplit model's state dict.
        let out = dir.with_extension("full.safetensors");
        let c = checkpoint::consolidate(dir, &out, None)?;
        ensure(c.model_tensors == 4 && c.world_size == 2, format!("{c:?}"))?;
        let sd = load_safetensors(&out)?;
        let names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];
        for (i, name) in names.iter().enumerate() {
            let t = sd
                .get(*name)
                .ok_or_else(|| Error::Msg(format!("no {name}")))?;
            same(t, &full_at_save[i], &format!("consolidated {name}"))?;
            close(
                t,
                &reference[i],
                1e-5,
                &format!("consolidated {name} vs unsplit AdamW"),
            )?;
        }
        // The unsplit model runs from it (the reference MLP, loaded by name).
        let loaded: Vec<Tensor> = names.iter().map(|n| sd[*n].clone()).collect();
        let (x, _) = batch(0, 4)?;
        close(
            &mlp(&loaded, &x)?,
            &mlp(&reference, &x)?,
            1e-5,
            "unsplit forward",
        )?;
        let op = sd_optim(&c)?;
        for (i, name) in names.iter().enumerate() {
            let ps = ref_state.param_groups[0].params[i]
                .state
                .as_ref()
                .expect("state");
            for buf in ["exp_avg", "exp_avg_sq"] {
                let t = &op[&format!("state.{name}.{buf}")];
                let want = Tensor::from_vec(ps.buffers[buf].clone(), reference[i].shape())?;
                close(t, &want, 1e-5, &format!("consolidated {buf} of {name}"))?;
            }
            let step = op[&format!("state.{name}.step")].to_vec::<f32>()?;
            ensure(step == vec![3.0], format!("step of {name}: {step:?}"))?;
        }
    }
    dist::barrier()
}

fn sd_optim(c: &checkpoint::Consolidated) -> Result<std::collections::HashMap<String, Tensor>> {
    let p = c
        .optimizer_path
        .as_ref()
        .ok_or_else(|| Error::Msg("no optimizer file".into()))?;
    load_safetensors(p)
}

/// ZeRO-1 AdamW over a replicated MLP: the optimizer state is saved as each rank's flat
/// slice; resume is exact; consolidation reassembles the state per parameter.
fn zero(rank: usize, n: usize, dir: &Path) -> Result<()> {
    let rows = 3;
    let make = |scale: f64| -> Result<(Vec<Tensor>, ZeroRedundancyOptimizer)> {
        let p: Vec<Tensor> = mlp_params()?
            .iter()
            .map(|t| t.detach().mul_scalar(scale)?.requires_grad_(true))
            .collect::<Result<_>>()?;
        let cfg = adamw();
        let opt = ZeroRedundancyOptimizer::new(
            p.clone(),
            move |shard| Ok(Box::new(AdamW::new(shard, cfg)?) as Box<dyn Optimizer>),
            None,
        )?;
        Ok((p, opt))
    };
    let names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];
    let named = |p: &[Tensor]| -> Vec<ShardedParam> {
        names
            .iter()
            .zip(p)
            .map(|(n, t)| ShardedParam::replicated(*n, t))
            .collect()
    };
    let step = |p: &[Tensor], opt: &mut ZeroRedundancyOptimizer, s: usize| -> Result<f32> {
        let (x, y) = batch(s, rows * n)?;
        opt.zero_grad();
        let l = mse(
            p,
            &x.narrow(0, rank * rows, rows)?,
            &y.narrow(0, rank * rows, rows)?,
        )?;
        l.backward()?;
        opt.step()?;
        Ok(l.to_vec::<f32>()?[0])
    };
    let (pa, mut oa) = make(1.0)?;
    for s in 0..4 {
        step(&pa, &mut oa, s)?;
    }
    checkpoint::save(
        dir,
        &named(&pa),
        Some(ShardedOptimizer::Zero(&mut oa)),
        serde_json::json!({"step": 4}),
    )?;
    let at_save: Vec<Tensor> = pa
        .iter()
        .map(|t| t.detach().contiguous_copy())
        .collect::<Result<_>>()?;
    // The whole flat state, gathered: what consolidation must reproduce bitwise.
    let inner = oa.inner().state_dict()?;
    let slot = inner.param_groups[0].params[0]
        .state
        .clone()
        .expect("state");
    let mut flat_state = std::collections::BTreeMap::new();
    for (b, v) in &slot.buffers {
        let all = gather(&Tensor::from_vec(v.clone(), &[v.len()])?, 0)?;
        flat_state.insert(b.clone(), all);
    }
    let mut losses = Vec::new();
    for s in 4..7 {
        losses.push(step(&pa, &mut oa, s)?);
    }
    let (pb, mut ob) = make(-0.7)?;
    checkpoint::load(dir, &named(&pb), Some(ShardedOptimizer::Zero(&mut ob)))?;
    for s in 4..7 {
        let l = step(&pb, &mut ob, s)?;
        ensure(
            l.to_bits() == losses[s - 4].to_bits(),
            format!("resumed ZeRO loss at step {s}"),
        )?;
    }
    for (i, (x, y)) in pa.iter().zip(&pb).enumerate() {
        same(x, y, &format!("resumed ZeRO parameter {i}"))?;
    }
    // A plain optimizer cannot take ZeRO state.
    let mut plain = AdamW::new(pb.clone(), adamw())?;
    let e = checkpoint::load(dir, &named(&pb), Some(ShardedOptimizer::Local(&mut plain)))
        .unwrap_err()
        .to_string();
    ensure(
        e.contains("ShardedOptimizer::Zero"),
        format!("plain optimizer on ZeRO state: {e}"),
    )?;
    if rank == 0 {
        let out = dir.with_extension("full.safetensors");
        let c = checkpoint::consolidate(dir, &out, None)?;
        let sd = load_safetensors(&out)?;
        ensure(sd.len() == 4, format!("{} model tensors", sd.len()))?;
        let op = sd_optim(&c)?;
        let mut off = 0;
        for (i, name) in names.iter().enumerate() {
            same(&sd[*name], &at_save[i], &format!("consolidated {name}"))?;
            let k = at_save[i].numel();
            for (b, all) in &flat_state {
                let want = all.narrow(0, off, k)?.reshape(at_save[i].shape())?;
                same(
                    &op[&format!("state.{name}.{b}")],
                    &want,
                    &format!("consolidated {b} of {name}"),
                )?;
            }
            ensure(
                op[&format!("state.{name}.step")].to_vec::<f32>()? == vec![4.0],
                format!("step of {name}"),
            )?;
            off += k;
        }
    }
    dist::barrier()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::Msg(format!("copy {}: {e}", from.display()));
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).map_err(io)?;
    for e in std::fs::read_dir(from).map_err(io)? {
        let e = e.map_err(io)?;
        std::fs::copy(e.path(), to.join(e.file_name())).map_err(io)?;
    }
    Ok(())
}

/// Every load/save error is clean, the same kind on all ranks, and leaves no panic.
fn errors(rank: usize, dir: &Path) -> Result<()> {
    let mut t = Tp::new(1.0)?;
    t.step(0)?;
    let good = dir.join("good");
    checkpoint::save(
        &good,
        &t.params(),
        Some(ShardedOptimizer::Local(&mut t.opt)),
        serde_json::Value::Null,
    )?;
    // Each damaged copy is made by rank 0, then every rank loads it.
    let damaged = |name: &str, f: &dyn Fn(&Path) -> std::io::Result<()>| -> Result<PathBuf> {
        let d = dir.join(name);
        if rank == 0 {
            copy_dir(&good, &d)?;
            f(&d).map_err(|e| Error::Msg(format!("damage {name}: {e}")))?;
        }
        dist::barrier()?;
        Ok(d)
    };
    let expect = |d: &Path, want_here: &str, want_elsewhere: Option<(usize, &str)>| -> Result<()> {
        let mut o = Tp::new(0.3)?;
        let e = checkpoint::load(d, &o.params(), Some(ShardedOptimizer::Local(&mut o.opt)));
        let e = match e {
            Ok(_) => return Err(Error::Msg(format!("{} loaded", d.display()))),
            Err(e) => e.to_string(),
        };
        let want = match want_elsewhere {
            Some((r, w)) if r == rank => w,
            _ => want_here,
        };
        ensure(
            e.contains(want),
            format!("rank {rank}, {}: {e:?} lacks {want:?}", d.display()),
        )?;
        // The failed load changed nothing.
        same(
            &o.col.weight,
            &Tp::new(0.3)?.col.weight,
            "weights after a failed load",
        )
    };
    let rank1 = checkpoint::rank_file_name(1, 2);
    let d = damaged("no_index", &|d: &Path| {
        std::fs::remove_file(d.join(INDEX_FILE))
    })?;
    expect(&d, "index.json is missing", None)?;
    let d = damaged("missing_rank", &|d: &Path| {
        std::fs::remove_file(d.join(&rank1))
    })?;
    expect(
        &d,
        "rank 1's file rank-00001-of-00002.safetensors is missing",
        None,
    )?;
    let d = damaged("corrupt", &|d: &Path| {
        let p = d.join(&rank1);
        let mut b = std::fs::read(&p)?;
        let k = b.len() - 3;
        b[k] ^= 0x40;
        std::fs::write(p, b)
    })?;
    // Rank 1 reads the damaged file; rank 0 learns that rank 1 failed.
    expect(&d, "rank(s) 1 failed", Some((1, "corrupt rank file")))?;
    if rank == 0 {
        let e = checkpoint::consolidate(&d, dir.join("x.safetensors"), None)
            .unwrap_err()
            .to_string();
        ensure(
            e.contains("corrupt rank file") && e.contains("rank-00001"),
            format!("consolidate: {e}"),
        )?;
    }
    let d = damaged("world", &|d: &Path| {
        let p = d.join(INDEX_FILE);
        let s = std::fs::read_to_string(&p)?.replacen("\"world_size\": 2", "\"world_size\": 3", 1);
        std::fs::write(p, s)
    })?;
    expect(&d, "index/world-size mismatch", None)?;
    let d = damaged("truncated_index", &|d: &Path| {
        let p = d.join(INDEX_FILE);
        let b = std::fs::read(&p)?;
        std::fs::write(p, &b[..b.len() / 2])
    })?;
    expect(&d, "corrupt index", None)?;
    let d = damaged("not_safetensors", &|d: &Path| {
        std::fs::write(d.join(&rank1), b"garbage")
    })?;
    expect(&d, "rank(s) 1 failed", Some((1, "corrupt rank file")))?;
    // Another model: a name the checkpoint does not have.
    let mut o = Tp::new(0.3)?;
    let mut ps = o.params();
    ps[0].name = "encoder.weight".into();
    let e = checkpoint::load(&good, &ps, Some(ShardedOptimizer::Local(&mut o.opt)))
        .unwrap_err()
        .to_string();
    ensure(
        e.contains("no tensor \"encoder.weight\""),
        format!("renamed: {e}"),
    )?;
    // Another sharding of the same tensor: fc1.weight as replicated.
    let mut ps = o.params();
    let t0 = ps[0].tensor.clone();
    ps[0] = ShardedParam::replicated("fc1.weight", &t0);
    let e = checkpoint::load(&good, &ps, None).unwrap_err().to_string();
    ensure(e.contains("sharding differs"), format!("resharded: {e}"))?;
    // A failed save fails on every rank and leaves no index behind.
    let bad = dir.join("bad_save");
    let mut ps = o.params();
    if rank == 1 {
        ps[1].name = ps[0].name.clone();
    }
    let e = checkpoint::save(&bad, &ps, None, serde_json::Value::Null)
        .unwrap_err()
        .to_string();
    ensure(
        e.contains(if rank == 1 {
            "appears twice"
        } else {
            "rank(s) 1 failed"
        }),
        format!("bad save: {e}"),
    )?;
    ensure(!bad.join(INDEX_FILE).exists(), "index after a failed save")?;
    dist::barrier()
}

/// The 2-rank checkpoint of `ckpt_tp` on 3 ranks: refused, telling to consolidate.
fn resize(dir: &Path) -> Result<()> {
    let e = checkpoint::load(dir, &[], None).unwrap_err().to_string();
    ensure(
        e.contains("saved by 2 ranks and this job has 3") && e.contains("consolidate"),
        format!("resize: {e}"),
    )?;
    dist::barrier()
}

/// The Megatron layers split by heads and by vocabulary rows: the consolidated file is the
/// unsplit layers' state dict (rank 0's weights, which the split takes), by their names.
fn megatron(rank: usize, dir: &Path) -> Result<()> {
    let emb = Embedding::new(10, 8, None)?;
    let mha = MultiheadAttention::new(8, 4, true, false)?;
    let pemb = VocabParallelEmbedding::from_embedding(&emb, None)?;
    let pmha = ParallelMultiheadAttention::from_mha(&mha, None)?;
    let mut params = pemb.sharded_parameters("emb");
    params.extend(pmha.sharded_parameters("attn"));
    checkpoint::save(dir, &params, None, serde_json::json!({}))?;
    if rank == 0 {
        let out = dir.with_extension("full.safetensors");
        let c = checkpoint::consolidate(dir, &out, None)?;
        let sd = load_safetensors(&out)?;
        let mut want: Vec<(String, Tensor)> = emb
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (format!("emb.{n}"), t))
            .collect();
        want.extend(
            mha.named_parameters()
                .into_iter()
                .map(|(n, t)| (format!("attn.{n}"), t)),
        );
        ensure(
            c.model_tensors == want.len() && sd.len() == want.len(),
            format!("{} tensors consolidated, {} expected", sd.len(), want.len()),
        )?;
        for (name, t) in &want {
            let got = sd
                .get(name)
                .ok_or_else(|| Error::Msg(format!("no {name} in the consolidated file")))?;
            same(got, t, &format!("consolidated {name}"))?;
        }
    }
    dist::barrier()
}

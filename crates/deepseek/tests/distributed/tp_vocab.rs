//! The ranks' side of the Megatron attention and vocabulary-parallel cases of
//! `tests/distributed.rs` (same harness: launched under mpirun, one case per job): each
//! parallel layer against the unsplit layer in one process with rank 0's weights.

use super::{close, ensure};
use deepseek::distributed::{
    self as dist, vocab_parallel_cross_entropy, ColumnParallelLinear, ParallelMultiheadAttention,
    VocabParallelEmbedding,
};
use deepseek::nn::functional as F;
use deepseek::nn::{Embedding, Forward, MultiheadAttention};
use deepseek::{DType, Result, Tensor};

/// `t`'s value (rank 0's) as a fresh leaf on every rank.
fn from_rank0(t: &Tensor) -> Result<Tensor> {
    let c = t.detach().contiguous_copy()?;
    dist::broadcast(&c, 0)?;
    c.requires_grad_(true)
}

fn grad(t: &Tensor, what: &str) -> Result<Tensor> {
    t.grad()
        .ok_or_else(|| deepseek::Error::Msg(format!("{what} has no gradient")))
}

/// ParallelMultiheadAttention (heads split over the ranks) == MultiheadAttention: outputs,
/// the input's and every parameter's gradient, in both layouts, with a causal mask, a
/// boolean [L, S] mask and a per-head float mask [N, H, L, S].
pub fn attention(rank: usize, n: usize) -> Result<()> {
    let (e, h, b, l) = (8, 4, 2, 5);
    for batch_first in [false, true] {
        for mask_kind in ["none", "causal", "bool", "per_head"] {
            deepseek::manual_seed(10 + rank as u64); // ranks disagree; from_mha takes rank 0's
            let mha = MultiheadAttention::new(e, h, true, batch_first)?;
            {
                // Non-zero biases, so their split is checked too.
                let _g = deepseek::no_grad();
                let ib = mha.in_proj_bias.as_ref().expect("bias");
                ib.copy_(&Tensor::randn(&[3 * e], DType::F32)?)?;
                let ob = mha.out_proj.bias.as_ref().expect("bias");
                ob.copy_(&Tensor::randn(&[e], DType::F32)?)?;
            }
            let par = ParallelMultiheadAttention::from_mha(&mha, None)?;
            ensure(par.local_heads == h / n, "heads per rank")?;
            let mut full = MultiheadAttention::new(e, h, true, batch_first)?;
            full.in_proj_weight = from_rank0(&mha.in_proj_weight)?;
            full.in_proj_bias = Some(from_rank0(mha.in_proj_bias.as_ref().expect("b"))?);
            full.out_proj.weight = from_rank0(&mha.out_proj.weight)?;
            full.out_proj.bias = Some(from_rank0(mha.out_proj.bias.as_ref().expect("b"))?);
            deepseek::manual_seed(77);
            let shape = if batch_first { [b, l, e] } else { [l, b, e] };
            let x = Tensor::randn(&shape, DType::F32)?.requires_grad_(true)?;
            let x_ref = x.detach().requires_grad_(true)?;
            let cot = Tensor::randn(&shape, DType::F32)?;
            let (mask, causal) = match mask_kind {
                "causal" => (None, true),
                "bool" => {
                    let keep: Vec<bool> = (0..l * l).map(|i| i % 3 != 1 || i % l == 0).collect();
                    (Some(Tensor::from_vec(keep, &[l, l])?), false)
                }
                "per_head" => (Some(Tensor::randn(&[b, h, l, l], DType::F32)?), false),
                _ => (None, false),
            };
            let what = format!("attention (batch_first {batch_first}, mask {mask_kind})");
            let y = par.forward_qkv(&x, &x, &x, mask.as_ref(), causal)?;
            let y_ref = full.forward_qkv(&x_ref, &x_ref, &x_ref, mask.as_ref(), causal)?;
            close(&y, &y_ref, 1e-5, &format!("{what}: output"))?;
            y.mul(&cot)?.sum_all()?.backward()?;
            y_ref.mul(&cot)?.sum_all()?.backward()?;
            close(
                &grad(&x, "x")?,
                &grad(&x_ref, "x_ref")?,
                1e-5,
                &format!("{what}: input gradient"),
            )?;
            // This rank's rows of each of the q, k, v blocks.
            let rows = |t: &Tensor| -> Result<Tensor> {
                let parts = t
                    .chunk(3, 0)?
                    .iter()
                    .map(|p| p.narrow(0, rank * e / n, e / n))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0)
            };
            close(
                &grad(&par.in_proj_weight, "in_proj_weight")?,
                &rows(&grad(&full.in_proj_weight, "ref in_proj_weight")?)?,
                1e-5,
                &format!("{what}: in_proj_weight gradient"),
            )?;
            close(
                &grad(par.in_proj_bias.as_ref().expect("b"), "in_proj_bias")?,
                &rows(&grad(full.in_proj_bias.as_ref().expect("b"), "ref")?)?,
                1e-5,
                &format!("{what}: in_proj_bias gradient"),
            )?;
            close(
                &grad(&par.out_proj_weight, "out_proj_weight")?,
                &grad(&full.out_proj.weight, "ref")?.narrow(1, rank * e / n, e / n)?,
                1e-5,
                &format!("{what}: out_proj weight gradient"),
            )?;
            close(
                &grad(par.out_proj_bias.as_ref().expect("b"), "out_proj_bias")?,
                &grad(full.out_proj.bias.as_ref().expect("b"), "ref")?,
                1e-5,
                &format!("{what}: out_proj bias gradient"),
            )?;
        }
    }
    // Cross-attention (distinct query and key/value) through the Forward-free entry point.
    deepseek::manual_seed(5);
    let mha = MultiheadAttention::new(e, h, false, true)?;
    let par = ParallelMultiheadAttention::from_mha(&mha, None)?;
    let q = Tensor::randn(&[b, 3, e], DType::F32)?;
    let kv = Tensor::randn(&[b, l, e], DType::F32)?;
    let mut full = MultiheadAttention::new(e, h, false, true)?;
    full.in_proj_weight = from_rank0(&mha.in_proj_weight)?;
    full.out_proj.weight = from_rank0(&mha.out_proj.weight)?;
    close(
        &par.forward_qkv(&q, &kv, &kv, None, false)?,
        &full.forward_qkv(&q, &kv, &kv, None, false)?,
        1e-5,
        "cross-attention output",
    )?;
    ensure(par.forward(&q)?.shape() == [b, 3, e], "Forward shape")?;
    // Heads that do not split: a clear error naming both sizes, on every rank.
    let e3 = ParallelMultiheadAttention::new(6, 3, true, false, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure(
        e3.contains("num_heads 3") && e3.contains(&format!("world size {n}")),
        format!("indivisible heads error: {e3:?}"),
    )?;
    let bad = par
        .forward_qkv(
            &Tensor::zeros(&[b, l, e + 1], DType::F32)?,
            &kv,
            &kv,
            None,
            false,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure(bad.contains("[N, L, 8]"), format!("shape error: {bad:?}"))?;
    dist::barrier()
}

/// VocabParallelEmbedding == Embedding (outputs and weight gradient, with padding_idx), and
/// a column-parallel LM head (gather_output = false) + vocab_parallel_cross_entropy ==
/// Linear + F::cross_entropy on the full logits (loss, logits and weight gradients), with
/// ignore_index, every reduction and label smoothing.
pub fn vocab(rank: usize, n: usize) -> Result<()> {
    let (v, d) = (12, 6);
    let per = v / n;
    deepseek::manual_seed(20 + rank as u64);
    let emb = Embedding::new(v, d, Some(7))?;
    let par = VocabParallelEmbedding::from_embedding(&emb, None)?;
    ensure(par.vocab_start == rank * per, "vocab_start")?;
    let w_ref = from_rank0(&emb.weight)?;
    let ids = Tensor::from_vec(vec![0i64, 11, 5, 6, 7, 3, 3, 10, 1, 7], &[2, 5])?;
    let y = par.forward(&ids)?;
    let y_ref = Tensor::embedding(&w_ref, &ids, Some(7))?;
    close(&y, &y_ref, 1e-6, "vocab-parallel embedding output")?;
    let cot = Tensor::randn(&[2, 5, d], DType::F32)?;
    let cot = from_rank0(&cot)?.detach();
    y.mul(&cot)?.sum_all()?.backward()?;
    y_ref.mul(&cot)?.sum_all()?.backward()?;
    close(
        &grad(&par.weight, "embedding weight")?,
        &grad(&w_ref, "ref")?.narrow(0, rank * per, per)?,
        1e-6,
        "vocab-parallel embedding weight gradient",
    )?;
    // The LM head: x [B, T, d] -> logits shard [B, T, V / n] -> parallel cross-entropy.
    for (reduction, smoothing, ignore) in [
        ("mean", 0.0, -100),
        ("mean", 0.0, 4),
        ("sum", 0.0, -100),
        ("none", 0.0, 9),
        ("mean", 0.1, 4),
    ] {
        let what = format!("cross-entropy ({reduction}, smoothing {smoothing}, ignore {ignore})");
        deepseek::manual_seed(30 + rank as u64);
        let w = Tensor::randn(&[v, d], DType::F32)?.requires_grad_(true)?;
        let head = ColumnParallelLinear::from_full(&w, None, false, None)?;
        let w_full = from_rank0(&w)?;
        deepseek::manual_seed(31);
        let x = Tensor::randn(&[2, 5, d], DType::F32)?.requires_grad_(true)?;
        let x_ref = x.detach().requires_grad_(true)?;
        let target = Tensor::from_vec(vec![4i64, 11, 0, 5, 6, -100, 4, 9, 2, 7], &[2, 5])?;
        // -100 marks an ignored target (replaced by this round's ignore_index).
        let target = target.masked_fill(&target.eq_scalar(-100.0)?, ignore as f64)?;
        let shard = head.forward(&x)?;
        ensure(shard.shape() == [2, 5, per], "logits shard shape")?;
        let loss =
            vocab_parallel_cross_entropy(&shard, &target, ignore, reduction, smoothing, None)?;
        let logits = x_ref.linear(&w_full, None)?;
        let flat = logits.reshape(&[10, v])?;
        let loss_ref = F::cross_entropy(
            &flat,
            &target.reshape(&[10])?,
            None,
            ignore,
            reduction,
            smoothing,
        )?;
        let loss_ref = if reduction == "none" {
            loss_ref.reshape(&[2, 5])?
        } else {
            loss_ref
        };
        ensure(
            loss.shape() == loss_ref.shape(),
            format!("{what}: loss shape"),
        )?;
        close(&loss, &loss_ref, 1e-5, &format!("{what}: loss"))?;
        shard.retain_grad()?;
        logits.retain_grad()?;
        let lcot = Tensor::randn(loss.shape(), DType::F32)?;
        let lcot = from_rank0(&lcot)?.detach();
        loss.mul(&lcot)?.sum_all()?.backward()?;
        loss_ref.mul(&lcot)?.sum_all()?.backward()?;
        close(
            &grad(&shard, "logits shard")?,
            &grad(&logits, "logits")?.narrow(2, rank * per, per)?,
            1e-5,
            &format!("{what}: logits gradient"),
        )?;
        close(
            &grad(&head.weight, "head weight")?,
            &grad(&w_full, "ref")?.narrow(0, rank * per, per)?,
            1e-5,
            &format!("{what}: LM head weight gradient"),
        )?;
        close(
            &grad(&x, "x")?,
            &grad(&x_ref, "ref")?,
            1e-5,
            &format!("{what}: input gradient"),
        )?;
    }
    // Errors: sizes that do not split, out-of-range ids and targets, shapes.
    let msg = |r: Result<Tensor>| r.err().map(|e| e.to_string()).unwrap_or_default();
    let e7 = VocabParallelEmbedding::new(7, 4, None, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure(
        e7.contains("vocabulary size 7") && e7.contains(&format!("world size {n}")),
        format!("indivisible vocabulary error: {e7:?}"),
    )?;
    let oob = msg(par.forward(&Tensor::from_vec(vec![3i64, 12], &[2])?));
    ensure(
        oob.contains("index 12") && oob.contains("12 rows"),
        format!("out-of-range id: {oob:?}"),
    )?;
    let shard = Tensor::zeros(&[3, per], DType::F32)?;
    let bad_t = msg(vocab_parallel_cross_entropy(
        &shard,
        &Tensor::from_vec(vec![0i64, 12, 1], &[3])?,
        -100,
        "mean",
        0.0,
        None,
    ));
    ensure(
        bad_t.contains("target 12"),
        format!("target error: {bad_t:?}"),
    )?;
    let bad_s = msg(vocab_parallel_cross_entropy(
        &shard,
        &Tensor::from_vec(vec![0i64, 1], &[2])?,
        -100,
        "mean",
        0.0,
        None,
    ));
    ensure(
        bad_s.contains(&format!("[3, {per}]")),
        format!("shape error: {bad_s:?}"),
    )?;
    dist::barrier()
}

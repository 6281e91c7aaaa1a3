//! Megatron's vocabulary-parallel embedding and cross-entropy: each rank holds a contiguous
//! slice of the vocabulary (rows of the embedding, columns of the logits), and nothing ever
//! gathers the whole vocabulary.

use super::{broadcast_full, group, reduce_from_parallel_region, shard};
use crate::distributed::{ProcessGroup, ReduceOp};
use crate::nn::{Embedding, Forward};
use crate::{DType, Error, Result, Tensor};

/// `[start, end)` of this rank's slice of a `vocab`-entry vocabulary.
fn vocab_range(op: &str, vocab: usize, g: &ProcessGroup) -> Result<(usize, usize)> {
    let (n, me) = (g.size(), g.rank()?);
    if vocab == 0 || !vocab.is_multiple_of(n) {
        return Err(Error::value(
            op,
            format!(
                "the vocabulary size {vocab} is not divisible by the world size {n}: each of \
                 the {n} ranks must hold the same number of vocabulary entries"
            ),
        ));
    }
    let per = vocab / n;
    Ok((me * per, (me + 1) * per))
}

fn int64_ids(op: &str, t: &Tensor, what: &str) -> Result<Tensor> {
    if !matches!(t.dtype(), DType::I64 | DType::I32 | DType::U8) {
        return Err(Error::dtype(
            op,
            format!(
                "expected integer {what} (int64 or int32), got {}",
                t.dtype()
            ),
        ));
    }
    t.to_dtype(DType::I64)
}

/// The lookup of [`VocabParallelEmbedding`] as a function: `weight` is this rank's slice of
/// the table (`[V / n, D]`, rows `[r * V/n, (r+1) * V/n)`), `ids` the whole (replicated)
/// index tensor. Ids outside the slice give zero rows here; the all-reduce of the ranks'
/// results (sum) is the full lookup. `padding_idx` is a global id: its row gets no
/// gradient. Fails on every rank (before any communication) for an id outside `[0, V)`.
pub fn vocab_parallel_embedding(
    ids: &Tensor,
    weight: &Tensor,
    padding_idx: Option<i64>,
    g: Option<&ProcessGroup>,
) -> Result<Tensor> {
    let g = group(g)?;
    reduce_from_parallel_region(
        &vocab_parallel_lookup(ids, weight, padding_idx, Some(&g))?,
        Some(&g),
    )
}

/// This rank's part of [`vocab_parallel_embedding`], before the all-reduce: the rows of the
/// ids in its slice, zeros for the others (`TensorParallel.split` of an `Embedding`, whose
/// caller sums the parts). Same arguments and checks; no communication.
pub fn vocab_parallel_lookup(
    ids: &Tensor,
    weight: &Tensor,
    padding_idx: Option<i64>,
    g: Option<&ProcessGroup>,
) -> Result<Tensor> {
    let op = "VocabParallelEmbedding";
    let g = group(g)?;
    if weight.rank() != 2 {
        return Err(Error::shape(
            op,
            format!(
                "weight must be this rank's [num_embeddings / world size, dim] slice, got {:?}",
                weight.shape()
            ),
        ));
    }
    let vocab = weight.shape()[0] * g.size();
    let (start, end) = vocab_range(op, vocab, &g)?;
    let ids = int64_ids(op, ids, "indices")?;
    if let Some(&i) = ids
        .to_vec::<i64>()?
        .iter()
        .find(|&&i| i < 0 || i >= vocab as i64)
    {
        return Err(Error::index(
            op,
            format!("index {i} is out of range for a vocabulary of {vocab} rows"),
        ));
    }
    let pad = match padding_idx {
        Some(p) => {
            let q = if p < 0 { p + vocab as i64 } else { p };
            if q < 0 || q >= vocab as i64 {
                return Err(Error::index(
                    op,
                    format!("padding_idx {p} must be within num_embeddings {vocab}"),
                ));
            }
            let q = q as usize;
            if (start..end).contains(&q) {
                Some((q - start) as i64)
            } else {
                None
            }
        }
        None => None,
    };
    let outside = ids
        .lt_scalar(start as f64)?
        .logical_or(&ids.ge_scalar(end as f64)?)?;
    let local = ids.sub_scalar(start as f64)?.masked_fill(&outside, 0.0)?;
    let rows = Tensor::embedding(weight, &local, pad)?;
    let keep = outside
        .logical_not()?
        .to_dtype(rows.dtype())?
        .unsqueeze(-1)?;
    rows.mul(&keep)
}

/// An embedding table split by vocabulary rows over the ranks of a group (Megatron's
/// `VocabParallelEmbedding`): rank `r` of `n` holds rows `[r * V/n, (r+1) * V/n)`; each rank
/// looks up the ids in its slice (zeros for the others) and one all-reduce sums the ranks'
/// results. Equal to [`Embedding`] with rank 0's weights, forward and backward (each rank's
/// gradient is its rows of the full one).
#[derive(crate::nn::Module)]
pub struct VocabParallelEmbedding {
    /// This rank's rows of the table, `[V / n, D]`.
    pub weight: Tensor,
    /// `V`, the whole vocabulary.
    pub num_embeddings: usize,
    pub embedding_dim: usize,
    /// The first id of this rank's slice.
    pub vocab_start: usize,
    /// A global id whose row gets no gradient (as in [`Embedding`]).
    pub padding_idx: Option<i64>,
    #[module(skip)]
    pub(crate) group: ProcessGroup,
}

impl VocabParallelEmbedding {
    /// A new table initialised as [`Embedding::new`] does on rank 0, then split.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<i64>,
        g: Option<&ProcessGroup>,
    ) -> Result<Self> {
        let g = group(g)?;
        vocab_range("VocabParallelEmbedding", num_embeddings, &g)?;
        Self::from_embedding(
            &Embedding::new(num_embeddings, embedding_dim, padding_idx)?,
            Some(&g),
        )
    }

    /// Splits an existing [`Embedding`], taking rank 0's weights so that all ranks agree.
    pub fn from_embedding(e: &Embedding, g: Option<&ProcessGroup>) -> Result<Self> {
        Self::from_full(&e.weight, e.padding_idx, g)
    }

    /// Splits a full `[V, D]` table (rank 0's values). Fails on every rank when `V` does not
    /// split over the group.
    pub fn from_full(
        weight: &Tensor,
        padding_idx: Option<i64>,
        g: Option<&ProcessGroup>,
    ) -> Result<Self> {
        let op = "VocabParallelEmbedding";
        let g = group(g)?;
        if weight.rank() != 2 {
            return Err(Error::shape(
                op,
                format!(
                    "weight must be 2-D [num_embeddings, dim], got {:?}",
                    weight.shape()
                ),
            ));
        }
        let (v, d) = (weight.shape()[0], weight.shape()[1]);
        let (start, _) = vocab_range(op, v, &g)?;
        let (w, _) = broadcast_full(weight, None, &g)?;
        Ok(VocabParallelEmbedding {
            weight: shard(&w, 0, &g)?,
            num_embeddings: v,
            embedding_dim: d,
            vocab_start: start,
            padding_idx,
            group: g,
        })
    }
}

impl Forward for VocabParallelEmbedding {
    /// The rows of the (replicated) `ids`, `[*ids.shape, D]`, the same on every rank.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        vocab_parallel_embedding(ids, &self.weight, self.padding_idx, Some(&self.group))
    }
}

/// Cross-entropy of logits whose vocabulary (last) dim is split over the ranks (Megatron's
/// `vocab_parallel_cross_entropy`): `logits` is this rank's `[..., V / n]` slice (the output
/// of a [`super::ColumnParallelLinear`] LM head with `gather_output = false`), `target` the
/// whole (replicated) class ids `[...]`. Equal to
/// `F.cross_entropy(full_logits.reshape(-1, V), target.reshape(-1), ...)`, loss and
/// gradient, with `ignore_index`, `reduction` ("mean" over the kept targets, "sum" or
/// "none") and `label_smoothing` as in PyTorch.
///
/// Three values per row cross the network, never the logits: an all-reduce (max) of the
/// row maxima, then one all-reduce (sum) of the rows' `sum(exp(x - max))`, target logit
/// (non-zero on the rank that holds the target) and, with smoothing, `sum(x - max)`. The
/// returned loss is the same on every rank; each rank's backward gives its slice's
/// gradient `softmax - one_hot` (no further communication).
pub fn vocab_parallel_cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
    g: Option<&ProcessGroup>,
) -> Result<Tensor> {
    let op = "vocab_parallel_cross_entropy";
    let g = group(g)?;
    if !matches!(reduction, "mean" | "sum" | "none") {
        return Err(Error::value(
            op,
            format!("reduction must be 'mean', 'sum' or 'none', got '{reduction}'"),
        ));
    }
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::value(
            op,
            format!("label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"),
        ));
    }
    if !logits.dtype().is_float() {
        return Err(Error::dtype(
            op,
            format!("expected floating-point logits, got {}", logits.dtype()),
        ));
    }
    let shape = logits.shape();
    if shape.is_empty() || shape[..shape.len() - 1] != *target.shape() {
        return Err(Error::shape(
            op,
            format!(
                "logits {:?} must be target {:?} plus a last dim (this rank's vocabulary slice)",
                shape,
                target.shape()
            ),
        ));
    }
    let per = shape[shape.len() - 1];
    let vocab = per * g.size();
    let (start, end) = vocab_range(op, vocab, &g)?;
    let t = int64_ids(op, target, "targets")?.reshape(&[target.numel()])?;
    if let Some(&i) = t
        .to_vec::<i64>()?
        .iter()
        .find(|&&i| i != ignore_index && (i < 0 || i >= vocab as i64))
    {
        return Err(Error::index(
            op,
            format!(
                "target {i} is out of range for a vocabulary of {vocab} classes ({per} on each \
                 of {} ranks)",
                g.size()
            ),
        ));
    }
    let rows = target.numel();
    let x = logits.reshape(&[rows, per])?;
    // The row maxima over the whole vocabulary: a constant shift (no gradient needed).
    let m = x.detach().amax(&[-1], false)?.contiguous_copy()?;
    g.all_reduce(&m, ReduceOp::Max)?;
    let z = x.sub(&m.unsqueeze(1)?)?;
    let keep = t.ne_scalar(ignore_index as f64)?;
    let mine = t
        .ge_scalar(start as f64)?
        .logical_and(&t.lt_scalar(end as f64)?)?
        .logical_and(&keep)?;
    let local = t
        .sub_scalar(start as f64)?
        .masked_fill(&mine.logical_not()?, 0.0)?;
    let picked = z
        .gather(1, &local.unsqueeze(1)?)?
        .squeeze_dim(1)?
        .mul(&mine.to_dtype(z.dtype())?)?;
    let mut parts = vec![z.exp()?.sum_dim(&[-1], false)?, picked];
    if label_smoothing > 0.0 {
        parts.push(z.sum_dim(&[-1], false)?);
    }
    let sums = reduce_from_parallel_region(&Tensor::stack(&parts, 0)?, Some(&g))?.unbind(0)?;
    let lse = sums[0].log()?;
    let mut loss = lse.sub(&sums[1])?;
    if label_smoothing > 0.0 {
        let smooth = lse.sub(&sums[2].div_scalar(vocab as f64)?)?;
        loss = loss
            .mul_scalar(1.0 - label_smoothing)?
            .add(&smooth.mul_scalar(label_smoothing)?)?;
    }
    let kept = keep.to_dtype(loss.dtype())?;
    let loss = loss.mul(&kept)?;
    match reduction {
        "none" => loss.reshape(target.shape()),
        "sum" => loss.sum_all(),
        _ => loss.sum_all()?.div(&kept.sum_all()?),
    }
}

//! Megatron's parallel self-attention: the heads are split over the ranks.

use super::{broadcast_full, copy_to_parallel_region, group, reduce_from_parallel_region, shard};
use crate::distributed::ProcessGroup;
use crate::nn::{Forward, MultiheadAttention};
use crate::ops::attention::mha_heads;
use crate::{Error, Result, Tensor};

/// Multi-head attention with its heads split over the ranks of a group (Megatron's
/// `ParallelAttention`): rank `r` of `n` holds heads `[r * H/n, (r+1) * H/n)`, i.e. its
/// rows of the q, k and v blocks of `in_proj_weight` (column parallel, no communication)
/// and the matching columns of the output projection (row parallel); one all-reduce sums
/// the ranks' partial outputs, then the output bias is added once.
///
/// The result equals [`MultiheadAttention`] with the same (rank 0's) weights, forward and
/// backward: the replicated input's gradient is summed over ranks in backward.
///
/// ```no_run
/// use deepseek::distributed::{self as dist, ParallelMultiheadAttention};
/// use deepseek::nn::MultiheadAttention;
/// # use deepseek::{DType, Tensor};
/// dist::init_process_group("mpi")?;                         // mpirun -np 2
/// let mha = MultiheadAttention::new(64, 8, true, true)?;     // 8 heads: 4 per rank
/// let attn = ParallelMultiheadAttention::from_mha(&mha, None)?;
/// let x = Tensor::randn(&[2, 10, 64], DType::F32)?;           // same x on every rank
/// let y = attn.forward_qkv(&x, &x, &x, None, true)?;          // causal; == mha's output
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(crate::nn::Module)]
pub struct ParallelMultiheadAttention {
    /// This rank's rows of the packed in-projection: the q, k and v rows of its heads,
    /// `[3 * E / n, E]`.
    pub in_proj_weight: Tensor,
    /// The matching `[3 * E / n]` entries of the in-projection bias.
    pub in_proj_bias: Option<Tensor>,
    /// This rank's columns of `out_proj.weight`, `[E, E / n]` (named `out_proj.weight` in
    /// the state dict, as in [`MultiheadAttention`]).
    #[module(name = "out_proj.weight")]
    pub out_proj_weight: Tensor,
    /// The whole output bias (replicated), added after the all-reduce.
    #[module(name = "out_proj.bias")]
    pub out_proj_bias: Option<Tensor>,
    /// The model width `E`.
    pub embed_dim: usize,
    /// Heads of the whole layer.
    pub num_heads: usize,
    /// Heads on this rank (`num_heads / n`).
    pub local_heads: usize,
    /// Inputs are `[N, L, E]` (else `[L, N, E]`).
    pub batch_first: bool,
    #[module(skip)]
    pub(crate) group: ProcessGroup,
}

impl ParallelMultiheadAttention {
    /// A new layer initialised as [`MultiheadAttention::new`] does on rank 0, then split.
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        bias: bool,
        batch_first: bool,
        g: Option<&ProcessGroup>,
    ) -> Result<Self> {
        let g = group(g)?;
        check_heads(num_heads, g.size())?;
        Self::from_mha(
            &MultiheadAttention::new(embed_dim, num_heads, bias, batch_first)?,
            Some(&g),
        )
    }

    /// Splits an existing [`MultiheadAttention`] by heads, taking rank 0's weights so that all
    /// ranks agree. Fails (on every rank) when `num_heads` does not split over the group.
    pub fn from_mha(mha: &MultiheadAttention, g: Option<&ProcessGroup>) -> Result<Self> {
        let g = group(g)?;
        let n = g.size();
        check_heads(mha.num_heads, n)?;
        let (w, b) = broadcast_full(&mha.in_proj_weight, mha.in_proj_bias.as_ref(), &g)?;
        let (ow, ob) = broadcast_full(&mha.out_proj.weight, mha.out_proj.bias.as_ref(), &g)?;
        // The rows of this rank's heads in each of the q, k, v blocks.
        let qkv_rows = |t: &Tensor| -> Result<Tensor> {
            let parts = t
                .chunk(3, 0)?
                .iter()
                .map(|p| shard(p, 0, &g))
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&parts, 0)?
                .detach()
                .requires_grad_(t.requires_grad())
        };
        Ok(ParallelMultiheadAttention {
            in_proj_weight: qkv_rows(&w)?,
            in_proj_bias: b.as_ref().map(&qkv_rows).transpose()?,
            out_proj_weight: shard(&ow, 1, &g)?,
            out_proj_bias: ob,
            embed_dim: mha.embed_dim,
            num_heads: mha.num_heads,
            local_heads: mha.num_heads / n,
            batch_first: mha.batch_first,
            group: g,
        })
    }

    /// Attention of `query` over `key`/`value` (the same tensors on every rank), with
    /// [`MultiheadAttention::forward_qkv`]'s arguments: `attn_mask` broadcastable to
    /// `[N, H, L, S]` (bool: true = attend; float: added to the scores) and `is_causal`.
    /// A per-head mask `[N, H, L, S]` of the whole layer is cut to this rank's heads.
    pub fn forward_qkv(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        attn_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<Tensor> {
        let layout = if self.batch_first {
            "[N, L, "
        } else {
            "[L, N, "
        };
        let e = self.embed_dim;
        for (what, t) in [("query", query), ("key", key), ("value", value)] {
            if t.rank() != 3 || t.shape()[2] != e {
                return Err(Error::shape(
                    "ParallelMultiheadAttention",
                    format!("expected {what} {layout}{e}], got {:?}", t.shape()),
                ));
            }
        }
        let g = Some(&self.group);
        // Each distinct input enters the parallel region once (self-attention keeps one
        // tensor, so the q, k, v projections stay one matmul).
        let q = copy_to_parallel_region(query, g)?;
        let k = if key.id() == query.id() {
            q.clone()
        } else {
            copy_to_parallel_region(key, g)?
        };
        let v = if value.id() == query.id() {
            q.clone()
        } else if value.id() == key.id() {
            k.clone()
        } else {
            copy_to_parallel_region(value, g)?
        };
        let mask = match attn_mask {
            Some(m)
                if m.rank() == 4
                    && m.shape()[1] == self.num_heads
                    && self.local_heads < self.num_heads =>
            {
                let me = self.group.rank()?;
                Some(m.narrow(1, me * self.local_heads, self.local_heads)?)
            }
            Some(m) => Some(m.clone()),
            None => None,
        };
        let o = mha_heads(
            &q,
            &k,
            &v,
            self.batch_first,
            self.local_heads,
            &self.in_proj_weight,
            self.in_proj_bias.as_ref(),
            mask.as_ref(),
            is_causal,
        )?;
        let y = reduce_from_parallel_region(&o.linear(&self.out_proj_weight, None)?, g)?;
        match &self.out_proj_bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}

impl Forward for ParallelMultiheadAttention {
    /// Self-attention of `x`, no mask.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_qkv(x, x, x, None, false)
    }
}

fn check_heads(num_heads: usize, n: usize) -> Result<()> {
    if num_heads == 0 || !num_heads.is_multiple_of(n) {
        return Err(Error::value(
            "ParallelMultiheadAttention",
            format!(
                "num_heads {num_heads} is not divisible by the world size {n}: each of the {n} \
                 ranks must hold the same number of heads"
            ),
        ));
    }
    Ok(())
}

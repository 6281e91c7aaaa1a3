//! [`ZeroRedundancyOptimizer`]: ZeRO stage 1, the optimizer state sharded across the
//! data-parallel ranks (`torch.distributed.optim.ZeroRedundancyOptimizer`'s role).
//!
//! The parameters are laid end to end in one flat vector (padded to a multiple of the group
//! size) and rank `r` owns the `r`-th equal slice of it. A step
//! 1. reduce-scatters (averages) the flat gradient, so each rank receives the averaged
//!    gradient of its own slice only;
//! 2. runs the inner optimizer (AdamW, say) on that slice: its state (moments) exists for
//!    the slice only, `1/N` of the model per rank;
//! 3. all-gathers the updated slices and writes them back into every parameter.
//!
//! The averaging in step 1 makes it a complete data-parallel step: replicas that computed
//! gradients on their own share of the batch need no DDP (with DDP the gradients are
//! already equal, and averaging them again changes nothing). Works with element-wise
//! optimizers (SGD, Adam, AdamW, RMSprop, Adagrad): the update of an element depends only
//! on its own gradient and state, so the slices together do exactly what the unsharded
//! optimizer does.

use super::{world, ProcessGroup, ReduceOp};
use crate::optim::{OptimState, Optimizer, ParamGroup};
use crate::{DType, Error, Result, Tensor};

/// ZeRO-1: an optimizer whose state is sharded across the ranks of a group.
///
/// ```no_run
/// use deepseek::distributed::{self as dist, ZeroRedundancyOptimizer};
/// use deepseek::optim::{AdamConfig, AdamW, Optimizer};
/// use deepseek::{DType, Tensor};
/// # fn main() -> deepseek::Result<()> {
/// dist::init_process_group("mpi")?;
/// let w = Tensor::randn(&[64, 32], DType::F32)?.requires_grad_(true)?;
/// let mut opt = ZeroRedundancyOptimizer::new(
///     vec![w.clone()],
///     |shard| Ok(Box::new(AdamW::new(shard, AdamConfig::adamw_default())?) as Box<dyn Optimizer>),
///     None,
/// )?;
/// // forward/backward on this rank's data, then:
/// opt.step()?; // averages gradients, updates this rank's slice, gathers the parameters
/// # Ok(()) }
/// ```
pub struct ZeroRedundancyOptimizer {
    params: Vec<Tensor>,
    group: ProcessGroup,
    dtype: DType,
    /// Number of elements of all parameters together, and padded to `size * shard_len`.
    total: usize,
    shard_len: usize,
    /// This rank's slice of the flat parameters: the inner optimizer's only parameter.
    shard: Tensor,
    inner: Box<dyn Optimizer>,
}

impl std::fmt::Debug for ZeroRedundancyOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ZeroRedundancyOptimizer({} parameters, {} elements, {} per rank)",
            self.params.len(),
            self.total,
            self.shard_len
        )
    }
}

fn flat(ts: &[Tensor]) -> Result<Tensor> {
    let parts: Vec<Tensor> = ts
        .iter()
        .map(|t| t.reshape(&[t.numel()]))
        .collect::<Result<_>>()?;
    Tensor::cat(&parts, 0)?.contiguous_copy()
}

impl ZeroRedundancyOptimizer {
    /// Shards `params` over `group` (the world when `None`). `optimizer` builds the inner
    /// optimizer over the parameters it is given (this rank's slice, one tensor). Every
    /// rank starts from the group's first rank's parameter values (broadcast here).
    /// Parameters must share one floating dtype.
    pub fn new(
        params: Vec<Tensor>,
        optimizer: impl FnOnce(Vec<Tensor>) -> Result<Box<dyn Optimizer>>,
        group: Option<ProcessGroup>,
    ) -> Result<Self> {
        let op = "ZeroRedundancyOptimizer";
        let group = match group {
            Some(g) => g,
            None => world()?,
        };
        let me = group.rank()?;
        let dtype = match params.first() {
            Some(p) => p.dtype(),
            None => return Err(Error::value(op, "no parameters to optimize")),
        };
        if !dtype.is_float() {
            return Err(Error::dtype(
                op,
                format!("parameters must be floating point, got {dtype}"),
            ));
        }
        if let Some((i, p)) = params.iter().enumerate().find(|(_, p)| p.dtype() != dtype) {
            return Err(Error::dtype(
                op,
                format!(
                    "parameter {i} is {} but parameter 0 is {dtype}; one dtype per optimizer",
                    p.dtype()
                ),
            ));
        }
        let src = group.ranks()[0];
        for p in &params {
            let c = p.detach().contiguous_copy()?;
            group.broadcast(&c, src)?;
            crate::with_no_grad(|| p.copy_(&c))?;
        }
        let total: usize = params.iter().map(|p| p.numel()).sum();
        let n = group.size();
        let shard_len = total.div_ceil(n).max(1);
        let f = crate::with_no_grad(|| flat(&params))?;
        let shard = pad(&f, shard_len * n)?
            .narrow(0, me * shard_len, shard_len)?
            .contiguous_copy()?
            .requires_grad_(true)?;
        let inner = optimizer(vec![shard.clone()])?;
        Ok(ZeroRedundancyOptimizer {
            params,
            group,
            dtype,
            total,
            shard_len,
            shard,
            inner,
        })
    }

    /// Elements of this rank's slice (the optimizer state covers these only).
    pub fn shard_numel(&self) -> usize {
        self.shard_len
    }
    /// The wrapped parameters.
    pub fn parameters(&self) -> &[Tensor] {
        &self.params
    }
    /// Copies this rank's slice of the parameters into the slice the inner optimizer
    /// updates. Needed after the parameters were changed outside [`Optimizer::step`] (a
    /// checkpoint loaded into them, say); no communication.
    pub fn refresh_shard(&self) -> Result<()> {
        let _g = crate::autograd::no_grad();
        let (n, me) = (self.group.size(), self.group.rank()?);
        let f = pad(&flat(&self.params)?, self.shard_len * n)?;
        self.shard
            .copy_(&f.narrow(0, me * self.shard_len, self.shard_len)?)
    }
    /// The group the state is sharded over.
    pub fn process_group(&self) -> &ProcessGroup {
        &self.group
    }
    /// The inner optimizer (over this rank's slice).
    pub fn inner(&self) -> &dyn Optimizer {
        self.inner.as_ref()
    }
}

/// `t` (1-D) with zeros appended up to `len` elements.
fn pad(t: &Tensor, len: usize) -> Result<Tensor> {
    if t.numel() == len {
        return Ok(t.clone());
    }
    let z = Tensor::zeros(&[len - t.numel()], t.dtype())?;
    Tensor::cat(&[t.clone(), z], 0)
}

impl Optimizer for ZeroRedundancyOptimizer {
    /// Averages the gradients over the group (reduce-scatter), steps this rank's slice, and
    /// gathers the updated parameters on every rank. Parameters without a gradient count
    /// as a zero gradient when some others have one; when none has a gradient the step
    /// does nothing (on every rank alike, as all ranks see the same model).
    fn step(&mut self) -> Result<()> {
        let op = "ZeroRedundancyOptimizer.step";
        let _g = crate::autograd::no_grad();
        let grads: Vec<Option<Tensor>> = self.params.iter().map(|p| p.grad()).collect();
        if grads.iter().all(|g| g.is_none()) {
            return Ok(());
        }
        let gs: Vec<Tensor> = grads
            .into_iter()
            .zip(&self.params)
            .map(|(g, p)| match g {
                Some(g) => g.to_dtype(self.dtype),
                None => Tensor::zeros(p.shape(), self.dtype),
            })
            .collect::<Result<_>>()?;
        let n = self.group.size();
        let flat_g = pad(&flat(&gs)?, self.shard_len * n)?.contiguous_copy()?;
        let g_shard = Tensor::zeros(&[self.shard_len], self.dtype)?;
        self.group
            .reduce_scatter_tensor(&g_shard, &flat_g, ReduceOp::Avg)?;
        self.shard.set_grad(Some(g_shard))?;
        self.inner.step()?;
        let all = Tensor::zeros(&[self.shard_len * n], self.dtype)?;
        self.group
            .all_gather_into_tensor(&all, &self.shard.detach())
            .map_err(|e| Error::Msg(format!("{op}: {e}")))?;
        let mut off = 0;
        for p in &self.params {
            let k = p.numel();
            p.copy_(&all.narrow(0, off, k)?.reshape(p.shape())?)?;
            off += k;
        }
        Ok(())
    }
    fn zero_grad(&mut self) {
        for p in &self.params {
            p.zero_grad();
        }
        self.inner.zero_grad();
    }
    fn param_groups(&self) -> &[ParamGroup] {
        self.inner.param_groups()
    }
    fn param_groups_mut(&mut self) -> &mut [ParamGroup] {
        self.inner.param_groups_mut()
    }
    /// This rank's shard of the state (the inner optimizer's state over its slice).
    fn state_dict(&self) -> Result<OptimState> {
        self.inner.state_dict()
    }
    /// Restores this rank's shard, saved by [`Optimizer::state_dict`] on the same rank of a
    /// group of the same size.
    fn load_state_dict(&mut self, s: &OptimState) -> Result<()> {
        self.inner.load_state_dict(s)
    }
}

//! [`DistributedDataParallel`]: one model replica per rank, gradients averaged across ranks
//! during backward.
//!
//! Construction broadcasts every parameter (and buffer) from rank 0, so all replicas start
//! equal. Each parameter gets a gradient hook ([`Tensor::register_hook`]); parameters are
//! packed into buckets (about `bucket_cap_mb` each, in reverse registration order, as
//! PyTorch does), and when a bucket's gradients are all produced it is flattened and
//! all-reduced (average) asynchronously. Buckets launch in bucket order on every rank, so
//! ranks that see gradients in a different order still issue identical collectives. When
//! the last bucket launched, the reducer waits for all of them and writes the averaged
//! gradients into `.grad`.
//!
//! Gradients accumulated under [`DistributedDataParallel::no_sync`] stay local; the next
//! synchronised backward averages the accumulated sum, so `k` micro-batches with `no_sync`
//! on the first `k-1` give the same gradients as one synchronised pass over all of them.

use super::{world, ProcessGroup, ReduceOp, Work};
use crate::nn::{Visit, Visitor};
use crate::{Error, Result, Tensor};
use std::sync::{Arc, Mutex};

/// PyTorch's default bucket size.
pub const DEFAULT_BUCKET_CAP_MB: f64 = 25.0;

struct Bucket {
    /// Indices into `Reducer::params`.
    params: Vec<usize>,
}

#[derive(Default)]
struct State {
    sync: bool,
    /// Per bucket, per slot: this rank's (accumulated) gradient, once produced.
    pending: Vec<Vec<Option<Tensor>>>,
    filled: Vec<usize>,
    next_launch: usize,
    inflight: Vec<(usize, Work, Tensor)>,
}

struct Reducer {
    group: ProcessGroup,
    params: Vec<Tensor>,
    names: Vec<String>,
    buckets: Vec<Bucket>,
    /// Parameter index -> (bucket, slot).
    place: Vec<(usize, usize)>,
    state: Mutex<State>,
}

/// Data-parallel training of a model replicated on every rank of a group.
///
/// ```no_run
/// # use deepseek::{distributed as dist, nn, Tensor};
/// # fn main() -> deepseek::Result<()> {
/// dist::init_process_group("mpi")?;
/// let model = nn::Linear::new(8, 2, true)?;
/// let ddp = dist::DistributedDataParallel::new(&model, None, dist::DEFAULT_BUCKET_CAP_MB)?;
/// // forward/backward on this rank's shard of the batch: after backward, every rank's
/// // .grad() holds the average over all ranks.
/// # let _ = ddp; Ok(()) }
/// ```
#[derive(Clone)]
pub struct DistributedDataParallel {
    r: Arc<Reducer>,
}

struct Collect(Vec<(String, Tensor)>, Vec<Tensor>);
impl Visitor for Collect {
    fn param(&mut self, name: &str, t: &Tensor) {
        self.0.push((name.to_string(), t.clone()));
    }
    fn buffer(&mut self, _name: &str, t: &Tensor) {
        self.1.push(t.clone());
    }
}

impl DistributedDataParallel {
    /// Wraps the parameters of `module` (any [`Visit`]: a derived module, a `Vec` of
    /// tensors); `group` defaults to the world.
    pub fn new(
        module: &dyn Visit,
        group: Option<ProcessGroup>,
        bucket_cap_mb: f64,
    ) -> Result<Self> {
        let mut c = Collect(Vec::new(), Vec::new());
        module.visit("", &mut c);
        let (names, params): (Vec<String>, Vec<Tensor>) = c.0.into_iter().unzip();
        Self::from_params(params, names, c.1, group, bucket_cap_mb)
    }

    /// Wraps explicit parameters (with names for error messages) and buffers.
    pub fn from_params(
        params: Vec<Tensor>,
        names: Vec<String>,
        buffers: Vec<Tensor>,
        group: Option<ProcessGroup>,
        bucket_cap_mb: f64,
    ) -> Result<Self> {
        let op = "DistributedDataParallel";
        if bucket_cap_mb.is_nan() || bucket_cap_mb <= 0.0 {
            return Err(Error::value(
                op,
                format!("bucket_cap_mb must be positive, got {bucket_cap_mb}"),
            ));
        }
        if names.len() != params.len() {
            return Err(Error::value(op, "one name per parameter"));
        }
        let group = match group {
            Some(g) => g,
            None => world()?,
        };
        group.rank()?;
        // Every replica starts from the first member's values.
        let src = group.ranks()[0];
        for t in params.iter().chain(&buffers) {
            group.broadcast(t, src)?;
        }
        let cap = (bucket_cap_mb * 1024.0 * 1024.0) as usize;
        let mut buckets: Vec<Bucket> = Vec::new();
        let mut place = vec![(0, 0); params.len()];
        let (mut bytes, mut dtype) = (0usize, None);
        for i in (0..params.len()).rev() {
            let p = &params[i];
            if !p.requires_grad() {
                continue;
            }
            let sz = p.numel() * p.dtype().size_in_bytes();
            let fresh =
                buckets.is_empty() || bytes + sz > cap && bytes > 0 || dtype != Some(p.dtype());
            if fresh {
                buckets.push(Bucket { params: Vec::new() });
                bytes = 0;
                dtype = Some(p.dtype());
            }
            let b = buckets.len() - 1;
            place[i] = (b, buckets[b].params.len());
            buckets[b].params.push(i);
            bytes += sz;
        }
        let state = State {
            sync: true,
            pending: buckets.iter().map(|b| vec![None; b.params.len()]).collect(),
            filled: vec![0; buckets.len()],
            ..State::default()
        };
        let r = Arc::new(Reducer {
            group,
            params,
            names,
            buckets,
            place,
            state: Mutex::new(state),
        });
        for (i, p) in r.params.iter().enumerate() {
            if !p.requires_grad() {
                continue;
            }
            let weak = Arc::downgrade(&r);
            p.register_hook(move |g| match weak.upgrade() {
                Some(r) => r.on_grad(i, g),
                None => Ok(None),
            })?;
        }
        Ok(DistributedDataParallel { r })
    }

    /// The group gradients are averaged over.
    pub fn group(&self) -> &ProcessGroup {
        &self.r.group
    }
    /// Number of gradient buckets.
    pub fn num_buckets(&self) -> usize {
        self.r.buckets.len()
    }
    /// The wrapped parameters.
    pub fn parameters(&self) -> &[Tensor] {
        &self.r.params
    }
    /// Turns gradient synchronisation on or off (what [`DistributedDataParallel::no_sync`]
    /// does for a scope).
    pub fn set_sync(&self, on: bool) {
        self.r.state.lock().unwrap_or_else(|e| e.into_inner()).sync = on;
    }
    /// Whether backward currently averages gradients.
    pub fn is_sync(&self) -> bool {
        self.r.state.lock().unwrap_or_else(|e| e.into_inner()).sync
    }
    /// Skips gradient averaging while the guard lives: gradients accumulate locally, and
    /// the first synchronised backward after it averages the accumulated sum.
    pub fn no_sync(&self) -> NoSync {
        let prev = self.is_sync();
        self.set_sync(false);
        NoSync {
            ddp: self.clone(),
            prev,
        }
    }
    /// Checks that the last synchronised backward reduced every bucket (it fails when a
    /// parameter got no gradient: every parameter must take part in the loss).
    pub fn check_finished(&self) -> Result<()> {
        let st = self.r.state.lock().unwrap_or_else(|e| e.into_inner());
        self.r.unfinished(&st)
    }
}

/// Restores gradient synchronisation when dropped.
pub struct NoSync {
    ddp: DistributedDataParallel,
    prev: bool,
}
impl Drop for NoSync {
    fn drop(&mut self) {
        self.ddp.set_sync(self.prev);
    }
}

impl Reducer {
    fn unfinished(&self, st: &State) -> Result<()> {
        if st.filled.iter().all(|&f| f == 0) {
            return Ok(());
        }
        let missing: Vec<&str> = self
            .buckets
            .iter()
            .enumerate()
            .flat_map(|(b, bk)| {
                bk.params
                    .iter()
                    .enumerate()
                    .filter(move |(s, _)| st.pending[b][*s].is_none())
                    .map(|(_, &i)| self.names[i].as_str())
            })
            .collect();
        Err(Error::Autograd(format!(
            "DistributedDataParallel: the previous backward did not produce gradients for \
             {missing:?}, so their buckets were never all-reduced; every parameter must take \
             part in the loss on every rank"
        )))
    }

    /// The hook of parameter `i`: stash its gradient; launch full buckets in order; after
    /// the last bucket, wait and write every averaged gradient.
    fn on_grad(&self, i: usize, g: &Tensor) -> Result<Option<Tensor>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.sync {
            return Ok(None);
        }
        let (b, s) = self.place[i];
        if st.pending[b][s].is_some() {
            // A new backward while the previous one left buckets unreduced.
            let e = self.unfinished(&st);
            self.reset(&mut st);
            e?;
        }
        let p = &self.params[i];
        let total = crate::with_no_grad(|| match p.grad() {
            Some(acc) => acc.add(g),
            None => Ok(g.clone()),
        })?;
        st.pending[b][s] = Some(total);
        st.filled[b] += 1;
        while st.next_launch < self.buckets.len()
            && st.filled[st.next_launch] == self.buckets[st.next_launch].params.len()
        {
            let k = st.next_launch;
            let flat: Vec<Tensor> = st.pending[k]
                .iter()
                .map(|t| {
                    let t = t.as_ref().expect("filled");
                    t.reshape(&[t.numel()])
                })
                .collect::<Result<_>>()?;
            let flat = Tensor::cat(&flat, 0)?.contiguous_copy()?;
            let w = self.group.all_reduce_unchecked(&flat, ReduceOp::Avg)?;
            st.inflight.push((k, w, flat));
            st.next_launch += 1;
        }
        if st.next_launch < self.buckets.len() {
            // Keep the local sum for now; it is replaced once this bucket is reduced.
            return Ok(None);
        }
        // Every bucket is in flight: collect them and write the averages.
        let mut mine = None;
        let inflight = std::mem::take(&mut st.inflight);
        let mut result = Ok(());
        for (k, mut w, flat) in inflight {
            if let Err(e) = w.wait() {
                result = Err(e);
                continue;
            }
            let mut off = 0;
            for &pi in &self.buckets[k].params {
                let q = &self.params[pi];
                let n = q.numel();
                let v = flat
                    .narrow(0, off, n)?
                    .reshape(q.shape())?
                    .contiguous_copy()?;
                off += n;
                if pi == i {
                    mine = Some(v);
                } else {
                    q.set_grad(Some(v))?;
                }
            }
        }
        self.reset(&mut st);
        result?;
        // The engine adds the hook's result to `.grad` after this returns: clear it so the
        // parameter ends with exactly the average.
        p.zero_grad();
        Ok(mine)
    }

    fn reset(&self, st: &mut State) {
        for v in st.pending.iter_mut() {
            v.iter_mut().for_each(|x| *x = None);
        }
        st.filled.iter_mut().for_each(|f| *f = 0);
        st.next_launch = 0;
        st.inflight.clear();
    }
}

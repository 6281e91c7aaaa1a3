//! [`ProcessGroup`]: a set of ranks and the collectives over them, and [`Work`], the handle
//! of an asynchronous request.

use super::backend::{in_place_ok, Backend, Check, CommOp, Data, Reply};
use super::ReduceOp;
use crate::{DType, Error, Result, Tensor};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

/// Dims carried by the shape check; longer shapes are compared by their first dims and numel.
const META_DIMS: usize = 8;
const META_LEN: usize = 3 + META_DIMS;

/// A group of ranks (the world, or one made by [`super::new_group`]). Ranks passed to its
/// methods (`src`, `dst`) are world ranks, as in `torch.distributed`.
#[derive(Clone)]
pub struct ProcessGroup {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) id: usize,
    /// World ranks of the members, in group-rank order.
    pub(crate) ranks: Vec<usize>,
    /// This process's group rank, `None` when it is not a member.
    pub(crate) me: Option<usize>,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProcessGroup({}, ranks {:?})",
            self.backend.name(),
            self.ranks
        )
    }
}

/// The handle of an asynchronous collective (`async_op=True`): [`Work::wait`] blocks until
/// it finished and writes the result into the tensor(s) it was given.
pub struct Work {
    op: &'static str,
    reply: Option<Reply>,
    result: Option<Result<Data>>,
    finish: Option<Box<dyn FnOnce(Data) -> Result<()> + Send>>,
    timeout: Duration,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Work({})", self.op)
    }
}

impl Work {
    fn new(
        op: &'static str,
        reply: Reply,
        timeout: Duration,
        finish: impl FnOnce(Data) -> Result<()> + Send + 'static,
    ) -> Work {
        Work {
            op,
            reply: Some(reply),
            result: None,
            finish: Some(Box::new(finish)),
            timeout,
        }
    }
    /// True once the request finished (the result is then written by [`Work::wait`]).
    pub fn is_completed(&mut self) -> bool {
        if self.result.is_some() || self.reply.is_none() {
            return true;
        }
        if let Some(r) = &self.reply {
            if let Ok(v) = r.try_recv() {
                self.result = Some(v);
                return true;
            }
        }
        false
    }
    /// Waits for the request (at most the group's timeout) and stores its result.
    pub fn wait(&mut self) -> Result<()> {
        let res = match self.result.take() {
            Some(r) => r,
            None => match self.reply.take() {
                None => return Ok(()),
                Some(rx) => {
                    let _event = crate::profiler::comm(wait_name(self.op), None);
                    recv_reply(self.op, &rx, self.timeout)
                }
            },
        };
        self.reply = None;
        let data = res?;
        match self.finish.take() {
            Some(f) => f(data),
            None => Ok(()),
        }
    }
}

/// The profiler's name for a caller blocked on `op`.
fn wait_name(op: &'static str) -> &'static str {
    match op {
        "all_reduce" => "wait all_reduce",
        "broadcast" => "wait broadcast",
        "all_gather" => "wait all_gather",
        "reduce_scatter" => "wait reduce_scatter",
        "barrier" => "wait barrier",
        "send" => "wait send",
        "recv" => "wait recv",
        _ => "wait",
    }
}

/// `[dtype, ndim, numel, dims...]` of a tensor, for the cross-rank shape check.
fn meta(t: &Tensor) -> Vec<i64> {
    let mut m = vec![dtype_code(t.dtype()), t.rank() as i64, t.numel() as i64];
    m.extend(t.shape().iter().take(META_DIMS).map(|&d| d as i64));
    m.resize(META_LEN, -1);
    m
}
const DTYPES: [DType; 8] = [
    DType::Bool,
    DType::U8,
    DType::I32,
    DType::I64,
    DType::F16,
    DType::BF16,
    DType::F32,
    DType::F64,
];
fn dtype_code(d: DType) -> i64 {
    DTYPES.iter().position(|&x| x == d).unwrap_or(0) as i64
}
fn describe(m: &[i64]) -> String {
    let nd = m[1].max(0) as usize;
    let dims: Vec<String> = m[3..3 + nd.min(META_DIMS)]
        .iter()
        .map(|d| d.to_string())
        .collect();
    let more = if nd > META_DIMS { ", ..." } else { "" };
    let dt = DTYPES.get(m[0] as usize).copied().unwrap_or(DType::F32);
    format!("[{}{more}] {dt}", dims.join(", "))
}

/// Compares every rank's metadata (gathered in group order) and names the differences.
pub(crate) fn check_meta(op: &str, gathered: &[i64], ranks: &[usize]) -> Result<()> {
    let rows: Vec<&[i64]> = gathered.chunks(META_LEN).collect();
    if rows.iter().all(|r| *r == rows[0]) {
        return Ok(());
    }
    let parts: Vec<String> = rows
        .iter()
        .zip(ranks)
        .map(|(r, rank)| format!("rank {rank} has {}", describe(r)))
        .collect();
    Err(Error::shape(
        op,
        format!("tensors differ between ranks: {}", parts.join(", ")),
    ))
}

impl ProcessGroup {
    /// This process's rank in the group (`-1` in torch for non-members: an error here).
    pub fn rank(&self) -> Result<usize> {
        self.me.ok_or_else(|| self.not_member("get_rank"))
    }
    /// Number of ranks in the group.
    pub fn size(&self) -> usize {
        self.ranks.len()
    }
    /// World ranks of the members, in group order.
    pub fn ranks(&self) -> &[usize] {
        &self.ranks
    }
    /// The backend's name (`"mpi"`).
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }
    fn not_member(&self, op: &str) -> Error {
        Error::value(
            op,
            format!(
                "rank {} is not a member of the group {:?}",
                self.backend.world_rank(),
                self.ranks
            ),
        )
    }
    fn member(&self, op: &str) -> Result<usize> {
        self.me.ok_or_else(|| self.not_member(op))
    }
    /// The group rank of world rank `r`.
    fn group_rank(&self, op: &str, r: usize) -> Result<usize> {
        self.ranks.iter().position(|&x| x == r).ok_or_else(|| {
            Error::value(op, format!("rank {r} is not in the group {:?}", self.ranks))
        })
    }
    fn submit(&self, op: CommOp) -> Reply {
        self.backend.submit(self.id, op)
    }
    fn wait_now(&self, name: &'static str, reply: Reply) -> Result<Data> {
        let _event = crate::profiler::comm(wait_name(name), None);
        recv_reply(name, &reply, self.timeout)
    }
    /// Exchanges shapes and dtypes; every rank gets the same verdict, so none is left waiting.
    fn check_same(&self, name: &'static str, t: &Tensor) -> Result<()> {
        let g = self.wait_now(name, self.submit(CommOp::AllGather(Data::I64(meta(t)))))?;
        match g {
            Data::I64(v) => check_meta(name, &v, &self.ranks),
            _ => Err(Error::Msg(format!("{name}: internal: bad metadata reply"))),
        }
    }

    /// Reduces `t` element-wise over the group, in place on every rank.
    pub fn all_reduce(&self, t: &Tensor, op: ReduceOp) -> Result<()> {
        self.all_reduce_async(t, op)?.wait()
    }
    /// [`ProcessGroup::all_reduce`] that returns at once; the tensor holds the result after
    /// [`Work::wait`]. The shape check runs inside the request, so this never blocks.
    ///
    /// A contiguous f32/f64/i64/i32/u8 tensor is reduced in place on its own storage
    /// (`MPI_IN_PLACE`, no copies); other tensors travel through a flat copy.
    pub fn all_reduce_async(&self, t: &Tensor, op: ReduceOp) -> Result<Work> {
        self.member("all_reduce")?;
        if in_place_ok(t) {
            return self.all_reduce_in_place(t, op, Some(self.check("all_reduce", t)));
        }
        self.check_same("all_reduce", t)?;
        self.all_reduce_copy(t, op)
    }
    /// All-reduce without the shape exchange, for callers that know the shapes agree (DDP
    /// buckets).
    pub(crate) fn all_reduce_unchecked(&self, t: &Tensor, op: ReduceOp) -> Result<Work> {
        self.member("all_reduce")?;
        if in_place_ok(t) {
            return self.all_reduce_in_place(t, op, None);
        }
        self.all_reduce_copy(t, op)
    }
    fn check(&self, op: &'static str, t: &Tensor) -> Check {
        Check {
            op,
            meta: meta(t),
            ranks: self.ranks.clone(),
        }
    }
    fn all_reduce_in_place(&self, t: &Tensor, op: ReduceOp, check: Option<Check>) -> Result<Work> {
        // A deferred (lazy) value, and lazy readers of the old value, are computed here,
        // not on the MPI thread.
        drop(t.write());
        let reply = self.submit(CommOp::AllReduceInPlace(t.clone(), op, check));
        Ok(Work::new("all_reduce", reply, self.timeout, |_| Ok(())))
    }
    fn all_reduce_copy(&self, t: &Tensor, op: ReduceOp) -> Result<Work> {
        let d = Data::from_tensor("all_reduce", t)?;
        let (shape, dt, n, out) = (t.shape().to_vec(), t.dtype(), self.size(), t.clone());
        let reply = self.submit(CommOp::AllReduce(d, op));
        Ok(Work::new(
            "all_reduce",
            reply,
            self.timeout,
            move |mut d| {
                if op == ReduceOp::Avg {
                    d.div(n);
                }
                write_into(&out, d.into_tensor(&shape, dt)?)
            },
        ))
    }
    /// Copies `t` from world rank `src` to every member.
    pub fn broadcast(&self, t: &Tensor, src: usize) -> Result<()> {
        self.broadcast_async(t, src)?.wait()
    }
    /// Asynchronous [`ProcessGroup::broadcast`].
    pub fn broadcast_async(&self, t: &Tensor, src: usize) -> Result<Work> {
        self.member("broadcast")?;
        let root = self.group_rank("broadcast", src)?;
        if in_place_ok(t) {
            drop(t.write());
            let check = Some(self.check("broadcast", t));
            let reply = self.submit(CommOp::BroadcastInPlace(t.clone(), root, check));
            return Ok(Work::new("broadcast", reply, self.timeout, |_| Ok(())));
        }
        self.check_same("broadcast", t)?;
        let d = Data::from_tensor("broadcast", t)?;
        let (shape, dt, out) = (t.shape().to_vec(), t.dtype(), t.clone());
        let reply = self.submit(CommOp::Broadcast(d, root));
        Ok(Work::new("broadcast", reply, self.timeout, move |d| {
            write_into(&out, d.into_tensor(&shape, dt)?)
        }))
    }
    /// Every member's `t`, in group order (torch's `all_gather(tensor_list, tensor)`).
    pub fn all_gather(&self, t: &Tensor) -> Result<Vec<Tensor>> {
        self.member("all_gather")?;
        self.check_same("all_gather", t)?;
        let d = Data::from_tensor("all_gather", t)?;
        let g = self.wait_now("all_gather", self.submit(CommOp::AllGather(d)))?;
        let n = t.numel();
        (0..self.size())
            .map(|r| g.slice(r * n, n).into_tensor(t.shape(), t.dtype()))
            .collect()
    }
    /// Members' `t` concatenated along dim 0
    /// (torch's `all_gather_into_tensor`).
    pub fn all_gather_into_tensor(&self, out: &Tensor, t: &Tensor) -> Result<()> {
        let parts = self.all_gather(t)?;
        let cat = Tensor::cat(&parts, 0)?;
        if cat.numel() != out.numel() {
            return Err(Error::shape(
                "all_gather_into_tensor",
                format!(
                    "output of shape {:?} cannot hold {} tensors of shape {:?}",
                    out.shape(),
                    self.size(),
                    t.shape()
                ),
            ));
        }
        write_into(out, cat.reshape(out.shape())?)
    }
    /// Reduces `input` (whose dim 0 splits into `size` equal chunks) over the group and
    /// writes chunk `rank` into `out` (torch's `reduce_scatter_tensor`).
    pub fn reduce_scatter_tensor(&self, out: &Tensor, input: &Tensor, op: ReduceOp) -> Result<()> {
        self.member("reduce_scatter")?;
        let n = self.size();
        if input.numel() != out.numel() * n {
            return Err(Error::shape(
                "reduce_scatter",
                format!(
                    "input of shape {:?} does not split into {n} chunks of the output shape {:?}",
                    input.shape(),
                    out.shape()
                ),
            ));
        }
        self.check_same("reduce_scatter", input)?;
        let d = Data::from_tensor("reduce_scatter", input)?;
        let mut r = self.wait_now("reduce_scatter", self.submit(CommOp::ReduceScatter(d, op)))?;
        if op == ReduceOp::Avg {
            r.div(n);
        }
        write_into(out, r.into_tensor(out.shape(), out.dtype())?)
    }
    /// torch's `reduce_scatter(output, input_list)`: `inputs[r]` of every rank is reduced
    /// into rank r's `out`.
    pub fn reduce_scatter(&self, out: &Tensor, inputs: &[Tensor], op: ReduceOp) -> Result<()> {
        if inputs.len() != self.size() {
            return Err(Error::value(
                "reduce_scatter",
                format!(
                    "{} inputs for a group of {} ranks",
                    inputs.len(),
                    self.size()
                ),
            ));
        }
        for t in inputs {
            if t.shape() != out.shape() {
                return Err(Error::shape(
                    "reduce_scatter",
                    format!(
                        "input of shape {:?} for an output of shape {:?}",
                        t.shape(),
                        out.shape()
                    ),
                ));
            }
        }
        let flat: Vec<Tensor> = inputs
            .iter()
            .map(|t| t.reshape(&[t.numel()]))
            .collect::<Result<_>>()?;
        self.reduce_scatter_tensor(out, &Tensor::cat(&flat, 0)?.to_dtype(out.dtype())?, op)
    }
    /// Waits until every member reached the barrier.
    pub fn barrier(&self) -> Result<()> {
        self.member("barrier")?;
        self.wait_now("barrier", self.submit(CommOp::Barrier))
            .map(|_| ())
    }
    /// Sends `t` to world rank `dst` (its shape and dtype go first, so `recv` can check them).
    pub fn send(&self, t: &Tensor, dst: usize, tag: i32) -> Result<()> {
        self.isend(t, dst, tag)?.wait()
    }
    /// Asynchronous [`ProcessGroup::send`].
    pub fn isend(&self, t: &Tensor, dst: usize, tag: i32) -> Result<Work> {
        self.member("send")?;
        let to = self.group_rank("send", dst)?;
        check_tag("send", tag)?;
        let d = Data::from_tensor("send", t)?;
        let _meta = self.submit(CommOp::Send(Data::I64(meta(t)), to, 2 * tag));
        let reply = self.submit(CommOp::Send(d, to, 2 * tag + 1));
        Ok(Work::new("send", reply, self.timeout, |_| Ok(())))
    }
    /// Receives into `t` from world rank `src`; the sender's tensor must have `t`'s shape
    /// and dtype.
    pub fn recv(&self, t: &Tensor, src: usize, tag: i32) -> Result<()> {
        self.irecv(t, src, tag)?.wait()
    }
    /// Asynchronous [`ProcessGroup::recv`].
    pub fn irecv(&self, t: &Tensor, src: usize, tag: i32) -> Result<Work> {
        self.member("recv")?;
        let from = self.group_rank("recv", src)?;
        check_tag("recv", tag)?;
        let meta_rx = self.submit(CommOp::Recv(Data::I64(Vec::new()), from, 2 * tag));
        let like = Data::zeros(t.dtype(), 0);
        let reply = self.submit(CommOp::Recv(like, from, 2 * tag + 1));
        let (mine, out, timeout) = (meta(t), t.clone(), self.timeout);
        Ok(Work::new("recv", reply, self.timeout, move |d| {
            let theirs = match meta_rx.recv_timeout(timeout) {
                Ok(Ok(Data::I64(v))) => v,
                _ => return Err(Error::Msg("recv: the shape message did not arrive".into())),
            };
            if theirs != mine {
                return Err(Error::shape(
                    "recv",
                    format!(
                        "rank {src} sent {}, the receiving tensor is {}",
                        describe(&theirs),
                        describe(&mine)
                    ),
                ));
            }
            write_into(&out, d.into_tensor(out.shape(), out.dtype())?)
        }))
    }
    /// Receives a tensor of whatever shape and dtype world rank `src` sent with `tag` (at
    /// most 8 dims; f16/bf16 arrive as sent, through f32).
    pub fn recv_tensor(&self, src: usize, tag: i32) -> Result<Tensor> {
        self.member("recv")?;
        let from = self.group_rank("recv", src)?;
        check_tag("recv", tag)?;
        let m = self.wait_now(
            "recv",
            self.submit(CommOp::Recv(Data::I64(Vec::new()), from, 2 * tag)),
        )?;
        let m = match m {
            Data::I64(v) if v.len() == META_LEN => v,
            _ => return Err(Error::Msg("recv: the shape message did not arrive".into())),
        };
        let nd = m[1].max(0) as usize;
        if nd > META_DIMS {
            return Err(Error::shape(
                "recv",
                format!("rank {src} sent a tensor of {nd} dims; recv_tensor takes at most {META_DIMS} (use recv into a tensor of that shape)"),
            ));
        }
        let dt = DTYPES.get(m[0] as usize).copied().unwrap_or(DType::F32);
        let shape: Vec<usize> = m[3..3 + nd].iter().map(|&d| d as usize).collect();
        let d = self.wait_now(
            "recv",
            self.submit(CommOp::Recv(Data::zeros(dt, 0), from, 2 * tag + 1)),
        )?;
        d.into_tensor(&shape, dt)
    }
}

/// Waits for a backend reply, turning a timeout into an error that names the collective.
fn recv_reply(op: &str, rx: &Reply, timeout: Duration) -> Result<Data> {
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(RecvTimeoutError::Timeout) => Err(Error::Msg(format!(
            "{op}: timed out after {:.0} s waiting for the other ranks (a rank may have died \
             or not called {op}; set DEEPSEEK_DIST_TIMEOUT or init_process_group's timeout \
             to change the limit)",
            timeout.as_secs_f64()
        ))),
        Err(RecvTimeoutError::Disconnected) => Err(Error::Msg(format!(
            "{op}: the communication backend stopped (process group destroyed?)"
        ))),
    }
}

fn check_tag(op: &str, tag: i32) -> Result<()> {
    if !(0..=16383).contains(&tag) {
        return Err(Error::value(op, format!("tag {tag} outside 0..=16383")));
    }
    Ok(())
}

/// Writes `v` into `out` in place (outside autograd, like torch's collectives).
fn write_into(out: &Tensor, v: Tensor) -> Result<()> {
    crate::with_no_grad(|| out.copy_(&v))
}

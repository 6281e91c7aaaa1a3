//! The transport interface of `deepseek::distributed`: flat typed buffers in and out, one
//! implementation per engine (Open MPI today). Tensors, shapes and error messages live in
//! the layer above ([`super`]); a backend only moves and reduces numbers.

use super::ReduceOp;
use crate::{DType, Error, Result, Tensor};
use std::sync::mpsc::Receiver;

/// A flat buffer of one element type, as it travels between ranks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U8(Vec<u8>),
}

impl Data {
    /// Size of the buffer in bytes.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Data::F32(v) => v.len() * 4,
            Data::F64(v) => v.len() * 8,
            Data::I64(v) => v.len() * 8,
            Data::I32(v) => v.len() * 4,
            Data::U8(v) => v.len(),
        }
    }
    /// The elements of `t` (row-major); f16/bf16 travel as f32.
    pub(crate) fn from_tensor(op: &str, t: &Tensor) -> Result<Data> {
        Ok(match t.dtype() {
            DType::F32 => Data::F32(t.to_vec()?),
            DType::F64 => Data::F64(t.to_vec()?),
            DType::F16 | DType::BF16 => Data::F32(t.to_dtype(DType::F32)?.to_vec()?),
            DType::I64 => Data::I64(t.to_vec()?),
            DType::I32 => Data::I32(t.to_vec()?),
            DType::U8 => Data::U8(t.to_vec()?),
            DType::Bool => {
                return Err(Error::dtype(
                    op,
                    "bool tensors cannot be communicated; convert to uint8 first",
                ))
            }
        })
    }
    /// A zero buffer of `n` elements in the wire type of `dt`.
    pub(crate) fn zeros(dt: DType, n: usize) -> Data {
        match dt {
            DType::F64 => Data::F64(vec![0.0; n]),
            DType::I64 => Data::I64(vec![0; n]),
            DType::I32 => Data::I32(vec![0; n]),
            DType::U8 | DType::Bool => Data::U8(vec![0; n]),
            _ => Data::F32(vec![0.0; n]),
        }
    }
    /// A tensor of `shape` and dtype `dt` holding these elements.
    pub(crate) fn into_tensor(self, shape: &[usize], dt: DType) -> Result<Tensor> {
        let t = match self {
            Data::F32(v) => Tensor::from_vec(v, shape)?,
            Data::F64(v) => Tensor::from_vec(v, shape)?,
            Data::I64(v) => Tensor::from_vec(v, shape)?,
            Data::I32(v) => Tensor::from_vec(v, shape)?,
            Data::U8(v) => Tensor::from_vec(v, shape)?,
        };
        if t.dtype() == dt {
            Ok(t)
        } else {
            t.to_dtype(dt)
        }
    }
    /// Elements `[start, start + len)` as a new buffer.
    pub(crate) fn slice(&self, start: usize, len: usize) -> Data {
        let r = start..start + len;
        match self {
            Data::F32(v) => Data::F32(v[r].to_vec()),
            Data::F64(v) => Data::F64(v[r].to_vec()),
            Data::I64(v) => Data::I64(v[r].to_vec()),
            Data::I32(v) => Data::I32(v[r].to_vec()),
            Data::U8(v) => Data::U8(v[r].to_vec()),
        }
    }
    /// Divides every element by `n` (the `avg` reduction after a sum).
    pub(crate) fn div(&mut self, n: usize) {
        match self {
            Data::F32(v) => v.iter_mut().for_each(|x| *x /= n as f32),
            Data::F64(v) => v.iter_mut().for_each(|x| *x /= n as f64),
            Data::I64(v) => v.iter_mut().for_each(|x| *x = x.div_euclid(n as i64)),
            Data::I32(v) => v.iter_mut().for_each(|x| *x = x.div_euclid(n as i32)),
            Data::U8(v) => v.iter_mut().for_each(|x| *x /= n as u8),
        }
    }
}

/// One communication request, addressed to a group by its id. (Only a backend reads the
/// fields: without the `mpi` feature there is none.)
#[derive(Debug)]
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) enum CommOp {
    /// Element-wise reduction over the group; every rank gets the result. `avg` arrives here
    /// as `Sum` and is divided above.
    AllReduce(Data, ReduceOp),
    /// The root's buffer (a group rank) replaces everyone's.
    Broadcast(Data, usize),
    /// Every rank's buffer, concatenated in group-rank order.
    AllGather(Data),
    /// Reduces the concatenation of `size` equal chunks; rank r keeps chunk r.
    ReduceScatter(Data, ReduceOp),
    Barrier,
    /// To a group rank, with a tag.
    Send(Data, usize, i32),
    /// From a group rank, with a tag; the buffer says the element type and the count the
    /// receiver expects. The backend returns what actually arrived (any length).
    Recv(Data, usize, i32),
    /// All-reduce of a contiguous tensor on its own storage (no copies: `MPI_IN_PLACE`),
    /// `avg` included; after the optional cross-rank shape check. Only for tensors that
    /// pass [`in_place_ok`]. Replies with an empty buffer.
    AllReduceInPlace(Tensor, ReduceOp, Option<Check>),
    /// Broadcast from a group rank into a contiguous tensor's own storage.
    BroadcastInPlace(Tensor, usize, Option<Check>),
}

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl CommOp {
    /// The request's name and the bytes of its buffer (for the profiler's trace).
    pub(crate) fn describe(&self) -> (&'static str, usize) {
        let t = |t: &Tensor| t.numel() * t.dtype().size_in_bytes();
        match self {
            CommOp::AllReduce(d, _) => ("all_reduce", d.bytes()),
            CommOp::Broadcast(d, _) => ("broadcast", d.bytes()),
            CommOp::AllGather(d) => ("all_gather", d.bytes()),
            CommOp::ReduceScatter(d, _) => ("reduce_scatter", d.bytes()),
            CommOp::Barrier => ("barrier", 0),
            CommOp::Send(d, _, _) => ("send", d.bytes()),
            CommOp::Recv(d, _, _) => ("recv", d.bytes()),
            CommOp::AllReduceInPlace(x, _, _) => ("all_reduce", t(x)),
            CommOp::BroadcastInPlace(x, _, _) => ("broadcast", t(x)),
        }
    }
}

/// The cross-rank shape/dtype check that a user-level collective runs first, inside the
/// same request: every rank's metadata is all-gathered and compared, and every rank gets
/// the same verdict (so none is left waiting in the data exchange).
#[derive(Debug)]
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) struct Check {
    /// The collective's name, for the error.
    pub(crate) op: &'static str,
    /// This rank's `[dtype, ndim, numel, dims...]` (see `group::meta`).
    pub(crate) meta: Vec<i64>,
    /// The group's world ranks, in group order, for the error.
    pub(crate) ranks: Vec<usize>,
}

/// Whether a collective can work on `t`'s own storage: contiguous, of a dtype that
/// travels as itself (not f16/bf16, not bool).
pub(crate) fn in_place_ok(t: &Tensor) -> bool {
    t.is_contiguous()
        && matches!(
            t.dtype(),
            DType::F32 | DType::F64 | DType::I64 | DType::I32 | DType::U8
        )
}

/// What a backend hands back for a request: the result buffer (empty for barrier/send).
pub(crate) type Reply = Receiver<Result<Data>>;

/// A communication engine. Requests on one group run in submission order on every rank, and
/// `submit` never blocks on the network: the reply arrives on the returned channel.
pub(crate) trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    fn world_rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// Queues `op` on group `group` (0 is the world).
    fn submit(&self, group: usize, op: CommOp) -> Reply;
    /// Creates a group of the given world ranks (sorted, distinct); called by every world
    /// rank. Returns the new group's id and this rank's place in it, or `None` for
    /// non-members.
    fn new_group(&self, ranks: &[usize]) -> Result<Option<(usize, usize)>>;
    /// Ends the engine (MPI_Finalize); later requests fail.
    fn shutdown(&self);
}

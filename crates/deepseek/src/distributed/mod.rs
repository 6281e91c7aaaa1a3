//! Distributed training over MPI: process groups and collectives with
//! `torch.distributed`'s names, [`DistributedDataParallel`], [`DistributedSampler`] and
//! Megatron-style tensor-parallel layers, and sharded [`checkpoint`]s of them.
//!
//! Processes come from the launcher (`mpirun -np 4 my_program`); each calls
//! [`init_process_group`] once:
//!
//! ```no_run
//! use deepseek::distributed::{self as dist, ReduceOp};
//! use deepseek::Tensor;
//! dist::init_process_group("mpi")?;
//! let t = Tensor::from_vec(vec![dist::get_rank()? as f32; 4], &[4])?;
//! dist::all_reduce(&t, ReduceOp::Sum)?; // every rank now holds 0 + 1 + ... + (n-1)
//! dist::destroy_process_group();
//! # Ok::<(), deepseek::Error>(())
//! ```
//!
//! The MPI backend needs the cargo feature `mpi` (Open MPI through rsmpi); without it
//! [`init_process_group`] returns an error that says so. Collectives check that every rank
//! passes the same shape and dtype (one small all-gather first) and fail on all ranks with
//! an error naming the collective and each rank's shape, instead of hanging or corrupting
//! memory. Every wait is bounded by the group's timeout (`DEEPSEEK_DIST_TIMEOUT` seconds,
//! default 1800), after which the call fails naming the collective.

pub(crate) mod backend;
pub mod checkpoint;
mod ddp;
mod group;
#[cfg(feature = "mpi")]
mod mpi;
pub mod pipeline;
mod sampler;
pub mod tensor_parallel;
mod train;
mod zero;

pub use ddp::{DistributedDataParallel, DEFAULT_BUCKET_CAP_MB};
pub use group::{ProcessGroup, Work};
pub use pipeline::{PipelineStage, Schedule1F1B, ScheduleGPipe};
pub use sampler::DistributedSampler;
pub use tensor_parallel::{
    vocab_parallel_cross_entropy, vocab_parallel_embedding, vocab_parallel_lookup,
    ColumnParallelLinear, ParallelMultiheadAttention, RowParallelLinear, VocabParallelEmbedding,
};
pub use train::{ShardedBatches, SharedTimeBudget};
pub use zero::ZeroRedundancyOptimizer;

use crate::{Error, Result, Tensor};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// Element-wise reductions of [`all_reduce`] and [`reduce_scatter_tensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    /// Sum divided by the group size (floor division for integers).
    Avg,
    Product,
    Max,
    Min,
}

impl std::str::FromStr for ReduceOp {
    type Err = Error;
    fn from_str(s: &str) -> Result<ReduceOp> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "sum" => ReduceOp::Sum,
            "avg" | "mean" => ReduceOp::Avg,
            "product" | "prod" => ReduceOp::Product,
            "max" => ReduceOp::Max,
            "min" => ReduceOp::Min,
            _ => {
                return Err(Error::value(
                    "ReduceOp",
                    format!("unknown reduction '{s}'; expected sum, avg, product, max or min"),
                ))
            }
        })
    }
}

static WORLD: Mutex<Option<ProcessGroup>> = Mutex::new(None);
static AT_EXIT: Once = Once::new();

/// Whether this build has the MPI backend (cargo feature `mpi`).
pub fn is_mpi_available() -> bool {
    cfg!(feature = "mpi")
}

/// True between [`init_process_group`] and [`destroy_process_group`].
pub fn is_initialized() -> bool {
    WORLD.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

fn default_timeout() -> Result<Duration> {
    match std::env::var("DEEPSEEK_DIST_TIMEOUT") {
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => Ok(Duration::from_secs_f64(v)),
            _ => Err(Error::value(
                "init_process_group",
                format!("DEEPSEEK_DIST_TIMEOUT={s:?} is not a positive number of seconds"),
            )),
        },
        Err(_) => Ok(Duration::from_secs(1800)),
    }
}

/// Joins the job: ranks and world size come from the launcher (`mpirun`). `backend` is
/// `"mpi"`; `"nccl"` and `"gloo"` are refused with the reason.
pub fn init_process_group(backend: &str) -> Result<()> {
    init_process_group_with_timeout(backend, None)
}

/// [`init_process_group`] with the timeout that bounds every wait (default
/// `DEEPSEEK_DIST_TIMEOUT` seconds, or 1800).
pub fn init_process_group_with_timeout(backend: &str, timeout: Option<Duration>) -> Result<()> {
    let op = "init_process_group";
    let timeout = match timeout {
        Some(t) if t.is_zero() => return Err(Error::value(op, "timeout must be positive")),
        Some(t) => t,
        None => default_timeout()?,
    };
    let mut w = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    if w.is_some() {
        return Err(Error::Msg(
            "init_process_group: the default process group is already initialised".into(),
        ));
    }
    let b: Arc<dyn backend::Backend> = match backend.to_ascii_lowercase().as_str() {
        "mpi" => open_mpi()?,
        "nccl" => {
            return Err(Error::device(
                op,
                "backend 'nccl' needs CUDA GPUs, which this build does not support; use 'mpi'",
            ))
        }
        "gloo" => {
            return Err(Error::value(
                op,
                "backend 'gloo' is not part of deepseek; use 'mpi' (run under mpirun)",
            ))
        }
        other => {
            return Err(Error::value(
                op,
                format!("unknown backend '{other}'; expected 'mpi' (or 'nccl' on GPU builds)"),
            ))
        }
    };
    let n = b.world_size();
    *w = Some(ProcessGroup {
        me: Some(b.world_rank()),
        backend: b,
        id: 0,
        ranks: (0..n).collect(),
        timeout,
    });
    AT_EXIT.call_once(|| {
        // MPI must be finalised before the process exits, or mpirun reports a failure.
        extern "C" fn finalize() {
            destroy_process_group();
        }
        // SAFETY: registering a plain extern "C" function with the C runtime.
        unsafe {
            libc::atexit(finalize);
        }
    });
    Ok(())
}

#[cfg(feature = "mpi")]
fn open_mpi() -> Result<Arc<dyn backend::Backend>> {
    Ok(Arc::new(mpi::MpiBackend::init()?))
}
#[cfg(not(feature = "mpi"))]
fn open_mpi() -> Result<Arc<dyn backend::Backend>> {
    Err(Error::Msg(
        "init_process_group: this deepseek was built without the MPI backend; install Open \
         MPI (apt-get install libopenmpi-dev openmpi-bin libclang-dev) and rebuild with the \
         cargo feature `mpi` (the Python package enables it when mpicc is found)"
            .into(),
    ))
}

/// Leaves the job: finalises MPI. Later collectives fail; safe to call twice.
pub fn destroy_process_group() {
    let g = WORLD.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(g) = g {
        g.backend.shutdown();
    }
}

/// The default (world) group.
pub fn world() -> Result<ProcessGroup> {
    WORLD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| {
            Error::Msg(
                "distributed: the default process group is not initialised; call \
                 init_process_group(\"mpi\") first (and run under mpirun)"
                    .into(),
            )
        })
}

/// This process's rank in the world.
pub fn get_rank() -> Result<usize> {
    world()?.rank()
}

/// Number of processes in the job.
pub fn get_world_size() -> Result<usize> {
    Ok(world()?.size())
}

/// A group of the given world ranks; every world rank must call it, in the same order
/// (as in torch). Non-members get a group whose collectives fail with a clear error.
pub fn new_group(ranks: &[usize]) -> Result<ProcessGroup> {
    let w = world()?;
    let mut r = ranks.to_vec();
    r.sort_unstable();
    r.dedup();
    if r.len() != ranks.len() || r.is_empty() {
        return Err(Error::value(
            "new_group",
            format!("ranks {ranks:?} must be distinct and non-empty"),
        ));
    }
    if let Some(&bad) = r.iter().find(|&&x| x >= w.size()) {
        return Err(Error::value(
            "new_group",
            format!("rank {bad} is outside the world of {} ranks", w.size()),
        ));
    }
    let made = w.backend.new_group(&r)?;
    Ok(ProcessGroup {
        backend: w.backend.clone(),
        id: match made {
            Some((id, _)) => id,
            None => usize::MAX,
        },
        me: made.map(|(_, me)| me),
        ranks: r,
        timeout: w.timeout,
    })
}

fn group_or_world(g: Option<&ProcessGroup>) -> Result<ProcessGroup> {
    match g {
        Some(g) => Ok(g.clone()),
        None => world(),
    }
}

/// [`ProcessGroup::all_reduce`] on `group` (the world when `None`).
pub fn all_reduce(t: &Tensor, op: ReduceOp) -> Result<()> {
    world()?.all_reduce(t, op)
}
/// [`ProcessGroup::broadcast`] on the world.
pub fn broadcast(t: &Tensor, src: usize) -> Result<()> {
    world()?.broadcast(t, src)
}
/// [`ProcessGroup::all_gather`] on the world.
pub fn all_gather(t: &Tensor) -> Result<Vec<Tensor>> {
    world()?.all_gather(t)
}
/// [`ProcessGroup::reduce_scatter_tensor`] on `group` (the world when `None`).
pub fn reduce_scatter_tensor(
    out: &Tensor,
    input: &Tensor,
    op: ReduceOp,
    group: Option<&ProcessGroup>,
) -> Result<()> {
    group_or_world(group)?.reduce_scatter_tensor(out, input, op)
}
/// [`ProcessGroup::barrier`] on the world.
pub fn barrier() -> Result<()> {
    world()?.barrier()
}
/// [`ProcessGroup::send`] on the world (tag 0).
pub fn send(t: &Tensor, dst: usize) -> Result<()> {
    world()?.send(t, dst, 0)
}
/// [`ProcessGroup::recv`] on the world (tag 0).
pub fn recv(t: &Tensor, src: usize) -> Result<()> {
    world()?.recv(t, src, 0)
}

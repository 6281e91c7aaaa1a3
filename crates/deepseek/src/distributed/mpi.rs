//! The Open MPI backend (cargo feature `mpi`, through rsmpi).
//!
//! One thread owns MPI: it initialises it, runs every request in the order it was
//! submitted, and finalises it at shutdown. Callers never block on the network inside
//! `submit`; they wait on the reply channel (with a timeout, above). This gives
//! `async_op=True` real overlap with computation, and keeps MPI single-threaded, so any
//! Open MPI build works.

use super::backend::{Backend, Check, CommOp, Data, Reply};
use super::ReduceOp;
use crate::tensor::CpuStorage;
use crate::{Error, Result, Tensor};
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::{Color, SimpleCommunicator};
use mpi::traits::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

enum Msg {
    Op(usize, CommOp, Sender<Result<Data>>),
    NewGroup(Vec<usize>, Sender<Result<Option<(usize, usize)>>>),
    Stop,
}

/// Open MPI through rsmpi, driven by one communication thread.
pub(crate) struct MpiBackend {
    tx: Mutex<Option<Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Requests submitted and not yet answered.
    pending: Arc<AtomicUsize>,
    rank: usize,
    size: usize,
}

impl MpiBackend {
    /// Initialises MPI on a new communication thread (or adopts an MPI that another library
    /// of this process, e.g. mpi4py, already initialised).
    pub(crate) fn init() -> Result<MpiBackend> {
        let (tx, rx) = channel();
        let (itx, irx) = channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let p2 = pending.clone();
        let thread = std::thread::Builder::new()
            .name("deepseek-mpi".into())
            .spawn(move || run(rx, itx, p2))
            .map_err(|e| {
                Error::Msg(format!(
                    "init_process_group: cannot start the MPI thread: {e}"
                ))
            })?;
        let (rank, size) = irx.recv().map_err(|_| {
            Error::Msg(
                "init_process_group: MPI initialisation failed (the MPI thread ended)".into(),
            )
        })?;
        Ok(MpiBackend {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            pending,
            rank,
            size,
        })
    }
    fn send(&self, m: Msg) -> bool {
        match &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(tx) => tx.send(m).is_ok(),
            None => false,
        }
    }
}

fn stopped() -> Error {
    Error::Msg("distributed: the process group was destroyed (MPI is finalised)".into())
}

impl Backend for MpiBackend {
    fn name(&self) -> &'static str {
        "mpi"
    }
    fn world_rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.size
    }
    fn submit(&self, group: usize, op: CommOp) -> Reply {
        let (tx, rx) = channel();
        self.pending.fetch_add(1, Ordering::SeqCst);
        if !self.send(Msg::Op(group, op, tx.clone())) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(Err(stopped()));
        }
        rx
    }
    fn new_group(&self, ranks: &[usize]) -> Result<Option<(usize, usize)>> {
        let (tx, rx) = channel();
        if !self.send(Msg::NewGroup(ranks.to_vec(), tx)) {
            return Err(stopped());
        }
        rx.recv().map_err(|_| stopped())?
    }
    fn shutdown(&self) {
        // A request still in flight (a peer died, a wait timed out) would block the thread
        // and MPI_Finalize forever: then leave without finalising; mpirun reports the job.
        let stuck = self.pending.load(Ordering::SeqCst) > 0;
        let had = !stuck && self.send(Msg::Stop);
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if had {
                let _ = t.join();
            }
        }
    }
}

fn run(rx: Receiver<Msg>, init: Sender<(usize, usize)>, pending: Arc<AtomicUsize>) {
    // `None`: MPI was initialised by someone else in this process; use its world and leave
    // finalisation to them.
    let universe = mpi::initialize_with_threading(mpi::Threading::Serialized).map(|(u, _)| u);
    let world = SimpleCommunicator::world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    // Open MPI's MPI_IN_PLACE is `(void *) 1`; with another MPI the in-place collectives
    // go through one scratch copy instead.
    let in_place = mpi::environment::library_version()
        .map(|v| v.contains("Open MPI"))
        .unwrap_or(false);
    let mut comms: Vec<Option<SimpleCommunicator>> = vec![Some(world)];
    if init.send((rank, size)).is_err() {
        return;
    }
    // Sends run as MPI_Isend: a rank that sends and then receives (a pipeline stage) never
    // waits for its peer to post the matching receive, so two ranks sending to each other
    // cannot deadlock. Their replies go out once MPI_Test says they completed.
    let mut outgoing: Vec<Outgoing> = Vec::new();
    loop {
        let m = if outgoing.is_empty() {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(std::time::Duration::from_micros(100)) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        let Some(m) = m else {
            poll_sends(&mut outgoing, &pending);
            continue;
        };
        match m {
            Msg::Op(g, CommOp::Send(d, dst, tag), reply) => match comms.get(g) {
                Some(Some(c)) => match isend(c, d, dst, tag) {
                    Ok(o) => outgoing.push(Outgoing { reply, ..o }),
                    Err(e) => {
                        pending.fetch_sub(1, Ordering::SeqCst);
                        let _ = reply.send(Err(e));
                    }
                },
                _ => {
                    pending.fetch_sub(1, Ordering::SeqCst);
                    let _ = reply.send(Err(Error::value(
                        "distributed",
                        format!("unknown process group {g}"),
                    )));
                }
            },
            Msg::Op(g, op, reply) => {
                let r = match comms.get(g) {
                    Some(Some(c)) => exec(c, op, in_place),
                    _ => Err(Error::value(
                        "distributed",
                        format!("unknown process group {g}"),
                    )),
                };
                pending.fetch_sub(1, Ordering::SeqCst);
                let _ = reply.send(r);
            }
            Msg::NewGroup(ranks, reply) => {
                let world = comms[0].as_ref().expect("world communicator");
                let member = ranks.iter().position(|&r| r == rank);
                let color = if member.is_some() {
                    Color::with_value(0)
                } else {
                    Color::undefined()
                };
                let c = world.split_by_color(color);
                let r = match (c, member) {
                    (Some(c), Some(me)) => {
                        comms.push(Some(c));
                        Ok(Some((comms.len() - 1, me)))
                    }
                    _ => {
                        // Keep group ids equal on every rank: non-members hold a hole.
                        comms.push(None);
                        Ok(None)
                    }
                };
                let _ = reply.send(r);
            }
            Msg::Stop => break,
        }
        poll_sends(&mut outgoing, &pending);
    }
    drop(comms);
    drop(universe); // MPI_Finalize when we initialised it
}

fn sysop(op: ReduceOp) -> SystemOperation {
    match op {
        ReduceOp::Sum | ReduceOp::Avg => SystemOperation::sum(),
        ReduceOp::Product => SystemOperation::product(),
        ReduceOp::Max => SystemOperation::max(),
        ReduceOp::Min => SystemOperation::min(),
    }
}

macro_rules! each {
    ($d:expr, $v:ident => $body:expr) => {
        match $d {
            Data::F32($v) => Data::F32($body),
            Data::F64($v) => Data::F64($body),
            Data::I64($v) => Data::I64($body),
            Data::I32($v) => Data::I32($body),
            Data::U8($v) => Data::U8($body),
        }
    };
}

/// `$body` with `$v` bound to the tensor's elements as a typed `&mut [T]` (the dtypes
/// that [`super::backend::in_place_ok`] admits).
macro_rules! each_slice {
    ($s:expr, $r:expr, $v:ident => $body:expr) => {
        match $s {
            CpuStorage::F32(b) => {
                let $v = &mut b[$r];
                $body
            }
            CpuStorage::F64(b) => {
                let $v = &mut b[$r];
                $body
            }
            CpuStorage::I64(b) => {
                let $v = &mut b[$r];
                $body
            }
            CpuStorage::I32(b) => {
                let $v = &mut b[$r];
                $body
            }
            CpuStorage::U8(b) => {
                let $v = &mut b[$r];
                $body
            }
            _ => unreachable!("in_place_ok admits only f32, f64, i64, i32 and u8"),
        }
    };
}

fn exec(c: &SimpleCommunicator, op: CommOp, in_place: bool) -> Result<Data> {
    let (name, bytes) = op.describe();
    let _event = crate::profiler::comm(name, Some(bytes));
    Ok(match op {
        CommOp::AllReduceInPlace(t, op, check) => {
            run_check(c, check)?;
            on_storage(
                &t,
                |s, r| each_slice!(s, r, v => reduce_slice(c, v, op, in_place)),
            )?;
            Data::U8(Vec::new())
        }
        CommOp::BroadcastInPlace(t, root, check) => {
            run_check(c, check)?;
            on_storage(
                &t,
                |s, r| each_slice!(s, r, v => c.process_at_rank(root as i32).broadcast_into(v)),
            )?;
            Data::U8(Vec::new())
        }
        CommOp::AllReduce(d, op) => each!(d, v => all_reduce(c, v, op)),
        CommOp::Broadcast(d, root) => each!(d, v => {
            let mut v = v;
            c.process_at_rank(root as i32).broadcast_into(&mut v[..]);
            v
        }),
        CommOp::AllGather(d) => each!(d, v => all_gather(c, v)),
        CommOp::ReduceScatter(d, op) => each!(d, v => reduce_scatter(c, v, op)),
        CommOp::Barrier => {
            c.barrier();
            Data::U8(Vec::new())
        }
        CommOp::Send(..) => unreachable!("sends run as MPI_Isend in the thread's loop"),
        CommOp::Recv(d, src, tag) => each!(d, v => recv_like(c, v, src, tag)),
    })
}

/// A send in flight: its request, the buffer MPI reads from (kept alive until the request
/// completes), and where its reply goes.
struct Outgoing {
    req: mpi::ffi::MPI_Request,
    _buf: Data,
    reply: Sender<Result<Data>>,
}

/// Starts `MPI_Isend` of `d` to group rank `dst`.
fn isend(c: &SimpleCommunicator, d: Data, dst: usize, tag: i32) -> Result<Outgoing> {
    let (ptr, len, dt) = match &d {
        Data::F32(v) => (v.as_ptr().cast(), v.len(), f32::equivalent_datatype()),
        Data::F64(v) => (v.as_ptr().cast(), v.len(), f64::equivalent_datatype()),
        Data::I64(v) => (v.as_ptr().cast(), v.len(), i64::equivalent_datatype()),
        Data::I32(v) => (v.as_ptr().cast(), v.len(), i32::equivalent_datatype()),
        Data::U8(v) => (
            v.as_ptr().cast::<std::ffi::c_void>(),
            v.len(),
            u8::equivalent_datatype(),
        ),
    };
    if len >= i32::MAX as usize {
        return Err(Error::value(
            "send",
            format!("{len} elements exceed MPI's message limit of 2^31 - 1"),
        ));
    }
    // SAFETY: a plain handle value of the MPI library.
    let mut req = unsafe { mpi::ffi::RSMPI_REQUEST_NULL };
    // SAFETY: `ptr` points to `len` elements of the MPI type `dt`, owned by `d`'s vector,
    // whose heap buffer stays in place (moved into the returned `Outgoing`) until
    // `poll_sends` sees the request complete.
    unsafe {
        mpi::ffi::MPI_Isend(
            ptr,
            len as i32,
            dt.as_raw(),
            dst as i32,
            tag,
            c.as_raw(),
            &mut req,
        );
    }
    let (reply, _) = channel();
    Ok(Outgoing {
        req,
        _buf: d,
        reply,
    })
}

/// Replies to the sends that completed.
fn poll_sends(out: &mut Vec<Outgoing>, pending: &AtomicUsize) {
    out.retain_mut(|o| {
        let mut done = 0;
        // SAFETY: `o.req` is a live request from MPI_Isend (MPI_Test frees it on success).
        unsafe {
            mpi::ffi::MPI_Test(&mut o.req, &mut done, mpi::ffi::RSMPI_STATUS_IGNORE);
        }
        if done != 0 {
            pending.fetch_sub(1, Ordering::SeqCst);
            let _ = o.reply.send(Ok(Data::U8(Vec::new())));
        }
        done == 0
    });
}

/// The shape check of a user-level collective: all-gather every rank's metadata, compare.
fn run_check(c: &SimpleCommunicator, check: Option<Check>) -> Result<()> {
    match check {
        None => Ok(()),
        Some(ch) => super::group::check_meta(ch.op, &all_gather(c, ch.meta), &ch.ranks),
    }
}

/// Runs `f` on the storage and element range of a contiguous tensor.
fn on_storage(t: &Tensor, f: impl FnOnce(&mut CpuStorage, std::ops::Range<usize>)) -> Result<()> {
    t.with_contiguous_mut(f).ok_or_else(|| {
        Error::Msg("distributed: internal: in-place collective on a strided tensor".into())
    })
}

/// The `avg` division after a sum (floor division for integers, as torch).
trait DivN: Copy {
    fn div_n(self, n: usize) -> Self;
}
impl DivN for f32 {
    fn div_n(self, n: usize) -> f32 {
        self / n as f32
    }
}
impl DivN for f64 {
    fn div_n(self, n: usize) -> f64 {
        self / n as f64
    }
}
impl DivN for i64 {
    fn div_n(self, n: usize) -> i64 {
        self.div_euclid(n as i64)
    }
}
impl DivN for i32 {
    fn div_n(self, n: usize) -> i32 {
        self.div_euclid(n as i32)
    }
}
impl DivN for u8 {
    fn div_n(self, n: usize) -> u8 {
        self / n as u8
    }
}

/// Open MPI's `MPI_IN_PLACE` (`#define MPI_IN_PLACE ((void *) 1)` in its `mpi.h`).
const OMPI_IN_PLACE: *const std::ffi::c_void = std::ptr::without_provenance(1);

/// Largest element count of one MPI call (MPI counts are C ints).
const MAX_COUNT: usize = 1 << 30;

/// All-reduces `v` in place: `MPI_Allreduce(MPI_IN_PLACE, v)` under Open MPI, else through
/// one scratch copy of the send side.
fn reduce_slice<T: Equivalence + DivN>(
    c: &SimpleCommunicator,
    v: &mut [T],
    op: ReduceOp,
    in_place: bool,
) {
    for chunk in v.chunks_mut(MAX_COUNT) {
        if in_place {
            // SAFETY: Open MPI defines MPI_IN_PLACE as `(void *) 1`; `chunk` is a valid,
            // exclusively borrowed buffer of `chunk.len()` elements of the MPI type of `T`
            // (count < 2^31); the communicator and the operation are live handles.
            unsafe {
                mpi::ffi::MPI_Allreduce(
                    OMPI_IN_PLACE,
                    chunk.as_mut_ptr().cast(),
                    chunk.len() as i32,
                    T::equivalent_datatype().as_raw(),
                    sysop(op).as_raw(),
                    c.as_raw(),
                );
            }
        } else {
            let send = chunk.to_vec();
            c.all_reduce_into(&send[..], chunk, sysop(op));
        }
    }
    if op == ReduceOp::Avg {
        let n = c.size() as usize;
        v.iter_mut().for_each(|x| *x = x.div_n(n));
    }
}

fn all_reduce<T: Equivalence + Clone>(c: &SimpleCommunicator, v: Vec<T>, op: ReduceOp) -> Vec<T> {
    let mut out = v.clone();
    c.all_reduce_into(&v[..], &mut out[..], sysop(op));
    out
}

fn all_gather<T: Equivalence + Clone + Default>(c: &SimpleCommunicator, v: Vec<T>) -> Vec<T> {
    let mut out = vec![T::default(); v.len() * c.size() as usize];
    c.all_gather_into(&v[..], &mut out[..]);
    out
}

fn reduce_scatter<T: Equivalence + Clone + Default>(
    c: &SimpleCommunicator,
    v: Vec<T>,
    op: ReduceOp,
) -> Vec<T> {
    let mut out = vec![T::default(); v.len() / c.size() as usize];
    c.reduce_scatter_block_into(&v[..], &mut out[..], sysop(op));
    out
}

/// Receives whatever the peer sent with `tag` (any length) as the element type of `_like`.
fn recv_like<T: Equivalence>(
    c: &SimpleCommunicator,
    _like: Vec<T>,
    src: usize,
    tag: i32,
) -> Vec<T> {
    c.process_at_rank(src as i32)
        .matched_probe_with_tag(tag)
        .matched_receive_vec::<T>()
        .0
}

//! The Open MPI backend (cargo feature `mpi`, through rsmpi).
//!
//! One thread owns MPI: it initialises it, runs every request in the order it was
//! submitted, and finalises it at shutdown. Callers never block on the network inside
//! `submit`; they wait on the reply channel (with a timeout, above). This gives
//! `async_op=True` real overlap with computation, and keeps MPI single-threaded, so any
//! Open MPI build works.

use super::backend::{Backend, CommOp, Data, Reply};
use super::ReduceOp;
use crate::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::{Color, SimpleCommunicator};
use mpi::traits::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
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
    let mut comms: Vec<Option<SimpleCommunicator>> = vec![Some(world)];
    if init.send((rank, size)).is_err() {
        return;
    }
    while let Ok(m) = rx.recv() {
        match m {
            Msg::Op(g, op, reply) => {
                let r = match comms.get(g) {
                    Some(Some(c)) => Ok(exec(c, op)),
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

fn exec(c: &SimpleCommunicator, op: CommOp) -> Data {
    match op {
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
        CommOp::Send(d, dst, tag) => {
            let p = c.process_at_rank(dst as i32);
            match &d {
                Data::F32(v) => p.send_with_tag(&v[..], tag),
                Data::F64(v) => p.send_with_tag(&v[..], tag),
                Data::I64(v) => p.send_with_tag(&v[..], tag),
                Data::I32(v) => p.send_with_tag(&v[..], tag),
                Data::U8(v) => p.send_with_tag(&v[..], tag),
            }
            Data::U8(Vec::new())
        }
        CommOp::Recv(d, src, tag) => each!(d, v => recv_like(c, v, src, tag)),
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

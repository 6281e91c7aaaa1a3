//! Sharded checkpoints of distributed training: every rank writes its own shard, one
//! process consolidates them into a plain state dict.
//!
//! A checkpoint is a directory:
//!
//! ```text
//! ckpt/
//!   rank-00000-of-00002.safetensors   rank 0's parameter shards and optimizer-state shards
//!   rank-00001-of-00002.safetensors   rank 1's
//!   index.json                        written last, by rank 0: the checkpoint is complete
//!                                     once it exists
//! ```
//!
//! Each rank file is an ordinary safetensors file whose `__metadata__["deepseek.sharded"]`
//! (a [`RankHeader`]) lists, for every tensor in it, the full tensor it is part of (the
//! unsplit model's name, shape, dtype) and which runs of it it holds ([`Layout`]):
//! `replicated` (the whole tensor; written by the first rank of its group only), `dim`
//! (runs along one dim: tensor-parallel shards, including the gate-interleaved rows of a
//! split LSTM) or `flat` (runs of the flattened tensor: ZeroRedundancyOptimizer's slices).
//! Optimizer buffers are stored as `optimizer.<buffer>.<param>` (e.g.
//! `optimizer.exp_avg.fc1.weight`) with the layout of their parameter (or the flat slice of
//! ZeRO); steps and hyper-parameters are JSON in the header. The [`Index`] gathers every
//! full tensor's runs (`rank`, `key`, `offset`, `length`, `local_offset`), the world size,
//! each rank file's SHA-256 and the caller's metadata.
//!
//! Every file is written atomically (temporary file, fsync, rename). [`save`] first removes
//! an old index, then every rank writes its file, the ranks exchange their files' digests
//! (so all of them learn whether every write succeeded), and rank 0 writes the index: a
//! crash at any point leaves a directory without an index, which [`load`] and
//! [`consolidate`] refuse.
//!
//! [`load`] restores the parameters and the optimizer state bitwise on the same world size,
//! so training resumes exactly; a different world size is refused with an error that says
//! to consolidate first. [`consolidate`] (the CLI's `deepseek consolidate DIR OUT`) needs
//! no MPI.
//!
//! ```no_run
//! use deepseek::distributed::{self as dist, checkpoint, ColumnParallelLinear};
//! use deepseek::distributed::checkpoint::{ShardedModule, ShardedOptimizer};
//! use deepseek::optim::{AdamConfig, AdamW, Optimizer};
//! use deepseek::{DType, Tensor};
//! # fn main() -> deepseek::Result<()> {
//! dist::init_process_group("mpi")?;
//! let w = Tensor::randn(&[16, 8], DType::F32)?.requires_grad_(true)?;
//! let fc = ColumnParallelLinear::from_full(&w, None, true, None)?;
//! let params = fc.sharded_parameters("fc");
//! let mut opt = AdamW::new(vec![fc.weight.clone()], AdamConfig::adamw_default())?;
//! // ... train ...
//! checkpoint::save("ckpt", &params, Some(ShardedOptimizer::Local(&mut opt)), serde_json::json!({"step": 100}))?;
//! let meta = checkpoint::load("ckpt", &params, Some(ShardedOptimizer::Local(&mut opt)))?;
//! # Ok(()) }
//! ```

mod consolidate;
mod format;
mod modules;

pub use consolidate::{consolidate, default_optimizer_path, Consolidated};
pub use format::{
    open, rank_file_name, read_rank_header, write_index, write_rank_file, Chunk, FileEntry, Index,
    IndexChunk, Layout, Opened, Piece, RankFile, RankHeader, TensorEntry, FORMAT, HEADER_KEY,
    INDEX_FILE,
};

use super::{world, ProcessGroup, ZeroRedundancyOptimizer};
use crate::nn::Module;
use crate::optim::{OptimState, Optimizer};
use crate::{Error, Result, Tensor};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Prefix of optimizer-state tensors in rank files: `optimizer.<buffer>.<param>`.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

/// How this rank's parameter relates to the full (unsplit) parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharding {
    /// Every rank of the group holds the whole parameter.
    Replicated,
    /// Split along `dim` over the group: the full dim is `blocks` equal blocks (1 for a
    /// plain split; 4 for an LSTM's gate rows i, f, g, o), each block is cut into one equal
    /// part per rank, and this rank holds its part of every block, concatenated.
    Dim { dim: usize, blocks: usize },
}

/// A parameter of this rank with its full name and how it is sharded over `group`.
#[derive(Clone)]
pub struct ShardedParam {
    /// The unsplit model's name (`fc1.weight`).
    pub name: String,
    /// This rank's tensor (a shard, or the whole parameter).
    pub tensor: Tensor,
    pub sharding: Sharding,
    /// The group it is sharded (or replicated) over; the world when `None`.
    pub group: Option<ProcessGroup>,
}

impl ShardedParam {
    /// A parameter every rank holds whole.
    pub fn replicated(name: impl Into<String>, tensor: &Tensor) -> Self {
        ShardedParam {
            name: name.into(),
            tensor: tensor.clone(),
            sharding: Sharding::Replicated,
            group: None,
        }
    }
    /// A shard along `dim` (see [`Sharding::Dim`]) over `group` (the world when `None`).
    pub fn sharded(
        name: impl Into<String>,
        tensor: &Tensor,
        dim: usize,
        blocks: usize,
        group: Option<&ProcessGroup>,
    ) -> Self {
        ShardedParam {
            name: name.into(),
            tensor: tensor.clone(),
            sharding: Sharding::Dim { dim, blocks },
            group: group.cloned(),
        }
    }
}

/// Modules whose parameters are shards of the unsplit module's: they name each parameter
/// as the unsplit module does and say how it is split.
pub trait ShardedModule {
    /// This rank's parameters, named `prefix.weight`, ... (no dot when `prefix` is empty).
    fn sharded_parameters(&self, prefix: &str) -> Vec<ShardedParam>;
}

/// Every parameter of an ordinary (replicated) module, named as `named_parameters` does,
/// under `prefix`.
pub fn replicated_parameters<M: Module + ?Sized>(m: &M, prefix: &str) -> Vec<ShardedParam> {
    m.named_parameters()
        .into_iter()
        .map(|(n, t)| ShardedParam::replicated(crate::nn::join(prefix, &n), &t))
        .collect()
}

/// The optimizer to save or restore with the parameters.
pub enum ShardedOptimizer<'a> {
    /// An optimizer over this rank's parameters (shards or replicated ones): its state is
    /// sharded like the parameters.
    Local(&'a mut dyn Optimizer),
    /// ZeRO-1: the state of each rank's flat slice.
    Zero(&'a mut ZeroRedundancyOptimizer),
}

struct Where<'p> {
    p: &'p ShardedParam,
    /// The piece (full name, shape, layout) this rank's tensor is.
    piece: Piece,
    /// This rank writes it (a replicated tensor is written by its group's first rank).
    writes: bool,
}

fn locate<'p>(params: &'p [ShardedParam], me: usize) -> Result<Vec<Where<'p>>> {
    let op = "checkpoint";
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(params.len());
    for p in params {
        if !seen.insert(p.name.as_str()) {
            return Err(Error::value(
                op,
                format!("parameter name {:?} appears twice", p.name),
            ));
        }
        if p.name.starts_with(OPTIMIZER_PREFIX) {
            return Err(Error::value(
                op,
                format!(
                    "parameter name {:?}: the prefix {OPTIMIZER_PREFIX:?} is reserved",
                    p.name
                ),
            ));
        }
        let g = match &p.group {
            Some(g) => g.clone(),
            None => world()?,
        };
        let (gr, gn) = (g.rank()?, g.size());
        let s = p.tensor.shape().to_vec();
        let (shape, layout, writes) = match p.sharding {
            Sharding::Replicated => (s, Layout::Replicated, g.ranks()[0] == me),
            Sharding::Dim { dim, blocks } => {
                if dim >= s.len() || blocks == 0 || !s[dim].is_multiple_of(blocks) {
                    return Err(Error::shape(
                        op,
                        format!(
                            "{:?}: a shard of shape {s:?} cannot be split along dim {dim} into {blocks} blocks",
                            p.name
                        ),
                    ));
                }
                let part = s[dim] / blocks;
                let chunks = (0..blocks)
                    .map(|k| Chunk {
                        offset: k * part * gn + gr * part,
                        length: part,
                        local_offset: k * part,
                    })
                    .collect();
                let mut full = s.clone();
                full[dim] = s[dim] * gn;
                (full, Layout::Dim { dim, chunks }, true)
            }
        };
        out.push(Where {
            p,
            piece: Piece {
                key: p.name.clone(),
                name: p.name.clone(),
                dtype: p.tensor.dtype().name().into(),
                shape,
                layout,
            },
            writes,
        });
    }
    Ok(out)
}

fn opt_key(buf: &str, name: &str) -> String {
    format!("{OPTIMIZER_PREFIX}{buf}.{name}")
}

/// `state` with every buffer emptied (their values travel as tensors).
fn strip_buffers(mut s: OptimState) -> OptimState {
    for g in &mut s.param_groups {
        for p in &mut g.params {
            if let Some(st) = &mut p.state {
                for b in st.buffers.values_mut() {
                    b.clear();
                }
            }
        }
    }
    s
}

fn find<'a, 'p>(ws: &'a [Where<'p>], t: &Tensor) -> Option<&'a Where<'p>> {
    ws.iter().find(|w| w.p.tensor.id() == t.id())
}

/// The optimizer's pieces and its header JSON.
fn optimizer_pieces(ws: &[Where], opt: &ShardedOptimizer) -> Result<(Vec<(Piece, Tensor)>, Value)> {
    let op = "checkpoint.save";
    let mut pieces = Vec::new();
    let mut steps = BTreeMap::new();
    let mut scalars = BTreeMap::new();
    match opt {
        ShardedOptimizer::Local(o) => {
            let st = o.state_dict()?;
            let mut groups = Vec::new();
            for (g, gs) in o.param_groups().iter().zip(&st.param_groups) {
                let mut names = Vec::new();
                for (p, ps) in g.params.iter().zip(&gs.params) {
                    let w = find(ws, p).ok_or_else(|| {
                        Error::value(
                            op,
                            format!(
                        "an optimizer parameter of shape {:?} is not among the parameters given \
                         (for a ZeroRedundancyOptimizer pass ShardedOptimizer::Zero)",
                        p.shape()
                    ),
                        )
                    })?;
                    names.push(w.p.name.clone());
                    let Some(slot) = &ps.state else { continue };
                    steps.insert(w.p.name.clone(), slot.step);
                    if !slot.scalars.is_empty() {
                        scalars.insert(w.p.name.clone(), slot.scalars.clone());
                    }
                    if !w.writes {
                        continue;
                    }
                    for (b, v) in &slot.buffers {
                        let t = Tensor::from_vec(v.clone(), p.shape())?;
                        let mut piece = w.piece.clone();
                        piece.key = opt_key(b, &w.p.name);
                        piece.name = piece.key.clone();
                        piece.dtype = "float32".into();
                        pieces.push((piece, t));
                    }
                }
                groups.push(json!({"hyper": gs.hyper, "params": names}));
            }
            let head = json!({
                "kind": st.optimizer, "zero": false, "param_groups": groups,
                "steps": steps, "scalars": scalars, "state": strip_buffers(st),
            });
            Ok((pieces, head))
        }
        ShardedOptimizer::Zero(z) => {
            let st = z.inner().state_dict()?;
            let l = z.shard_numel();
            let me = z.process_group().rank()?;
            let (lo, hi) = (me * l, me * l + l);
            let slot = st
                .param_groups
                .first()
                .and_then(|g| g.params.first())
                .and_then(|p| p.state.clone());
            let mut names = Vec::new();
            let mut a = 0usize;
            for p in z.parameters() {
                let w = find(ws, p).ok_or_else(|| {
                    Error::value(op, format!(
                        "a ZeroRedundancyOptimizer parameter of shape {:?} is not among the parameters given",
                        p.shape()
                    ))
                })?;
                if w.p.sharding != Sharding::Replicated {
                    return Err(Error::value(
                        op,
                        format!(
                        "{:?}: ZeroRedundancyOptimizer state of a tensor-parallel shard cannot be \
                         checkpointed (ZeRO's parameters must be replicated over its group)",
                        w.p.name
                    ),
                    ));
                }
                names.push(w.p.name.clone());
                let k = p.numel();
                let (s, e) = (a.max(lo), (a + k).min(hi));
                if let (Some(slot), true) = (&slot, s < e) {
                    steps.insert(w.p.name.clone(), slot.step);
                    if !slot.scalars.is_empty() {
                        scalars.insert(w.p.name.clone(), slot.scalars.clone());
                    }
                    for (b, v) in &slot.buffers {
                        let t = Tensor::from_vec(v[s - lo..e - lo].to_vec(), &[e - s])?;
                        let key = opt_key(b, &w.p.name);
                        let piece = Piece {
                            key: key.clone(),
                            name: key,
                            dtype: "float32".into(),
                            shape: p.shape().to_vec(),
                            layout: Layout::Flat {
                                chunks: vec![Chunk {
                                    offset: s - a,
                                    length: e - s,
                                    local_offset: 0,
                                }],
                            },
                        };
                        pieces.push((piece, t));
                    }
                }
                a += k;
            }
            let groups: Vec<Value> = st
                .param_groups
                .iter()
                .map(|g| json!({"hyper": g.hyper, "params": names}))
                .collect();
            let head = json!({
                "kind": st.optimizer, "zero": true, "shard_len": l, "param_groups": groups,
                "steps": steps, "scalars": scalars, "state": strip_buffers(st),
            });
            Ok((pieces, head))
        }
    }
}

/// All ranks learn every rank's 64-byte status (a SHA-256 in hex, or zeros on failure).
fn exchange(w: &ProcessGroup, status: Option<&str>) -> Result<Vec<Option<String>>> {
    let mut b = vec![0u8; 64];
    if let Some(s) = status {
        b[..s.len().min(64)].copy_from_slice(&s.as_bytes()[..s.len().min(64)]);
    }
    let all = w.all_gather(&Tensor::from_vec(b, &[64])?)?;
    all.iter()
        .map(|t| {
            let v = t.to_vec::<u8>()?;
            Ok(if v.iter().all(|&x| x == 0) {
                None
            } else {
                Some(String::from_utf8_lossy(&v).into_owned())
            })
        })
        .collect()
}

fn others_failed(op: &str, st: &[Option<String>]) -> Result<()> {
    let bad: Vec<String> = st
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(r, _)| r.to_string())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::Msg(format!(
            "{op}: rank(s) {} failed (see their error); nothing was completed",
            bad.join(", ")
        )))
    }
}

/// Saves this rank's shards of `params` (and of the optimizer's state) into `dir`; every
/// rank of the world calls it. `metadata` (any JSON: step, epoch, ...) goes into the
/// index and comes back from [`load`]. Errors on any rank fail the save on every rank, and
/// leave the directory without an index.
pub fn save(
    dir: impl AsRef<Path>,
    params: &[ShardedParam],
    optimizer: Option<ShardedOptimizer<'_>>,
    metadata: Value,
) -> Result<()> {
    let op = "checkpoint.save";
    let dir = dir.as_ref();
    let w = world()?;
    let (me, n) = (w.rank()?, w.size());
    // Rank 0 retires an old index before anyone replaces a rank file.
    let pre = std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(dir.display().to_string(), format!("cannot create: {e}")))
        .and_then(|_| {
            if me == 0 {
                match std::fs::remove_file(dir.join(INDEX_FILE)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
                        dir.join(INDEX_FILE).display().to_string(),
                        format!("cannot remove the old index: {e}"),
                    )),
                    _ => Ok(()),
                }
            } else {
                Ok(())
            }
        });
    w.barrier()?;
    let res = pre.and_then(|_| {
        let ws = locate(params, me)?;
        let mut pieces: Vec<(Piece, Tensor)> = ws
            .iter()
            .filter(|w| w.writes)
            .map(|w| (w.piece.clone(), w.p.tensor.detach()))
            .collect();
        let opt = match &optimizer {
            Some(o) => {
                let (p, head) = optimizer_pieces(&ws, o)?;
                pieces.extend(p);
                head
            }
            None => Value::Null,
        };
        write_rank_file(dir, me, n, &pieces, json!({ "optimizer": opt }))
    });
    let st = exchange(&w, res.as_ref().ok().map(String::as_str))?;
    res?;
    others_failed(op, &st)?;
    let shas: Vec<String> = st.into_iter().map(Option::unwrap_or_default).collect();
    let idx = if me == 0 {
        write_index(dir, n, &shas, metadata).map(|_| "ok".to_string())
    } else {
        Ok("ok".into())
    };
    let st = exchange(&w, idx.as_ref().ok().map(String::as_str))?;
    idx?;
    others_failed(op, &st)
}

/// Reads a full tensor's stored piece for this rank: from this rank's file, or (a
/// replicated tensor) from the file of the rank that wrote it.
fn stored(
    o: &Opened,
    mine: &RankFile,
    others: &mut HashMap<usize, RankFile>,
    me: usize,
    name: &str,
    want: &Piece,
) -> Result<Tensor> {
    let dir = o.dir.display().to_string();
    let e = o
        .index
        .tensors
        .get(name)
        .ok_or_else(|| Error::io(&dir, format!("the checkpoint has no tensor {name:?}")))?;
    let (layout, dim, chunks) = match &want.layout {
        Layout::Replicated => ("replicated", None, vec![]),
        Layout::Dim { dim, chunks } => ("dim", Some(*dim), chunks.clone()),
        Layout::Flat { chunks } => ("flat", None, chunks.clone()),
    };
    if e.dtype != want.dtype || e.shape != want.shape || e.layout != layout || e.dim != dim {
        return Err(Error::value(
            "checkpoint.load",
            format!(
                "{name:?}: the checkpoint has {} {:?} ({}), the model {} {:?} ({}): the model \
                 or its sharding differs from the one saved",
                e.dtype, e.shape, e.layout, want.dtype, want.shape, layout
            ),
        ));
    }
    let (r, key) = if layout == "replicated" {
        let c = e.chunks.first().ok_or_else(|| {
            Error::io(
                &dir,
                format!("{name:?} is replicated but stored in no rank file"),
            )
        })?;
        (c.rank, c.key.clone())
    } else {
        let have: Vec<Chunk> = e
            .chunks
            .iter()
            .filter(|c| c.rank == me)
            .map(|c| Chunk {
                offset: c.offset,
                length: c.length,
                local_offset: c.local_offset,
            })
            .collect();
        if have != chunks {
            return Err(Error::value(
                "checkpoint.load",
                format!("{name:?}: rank {me} saved other parts of it than it holds now"),
            ));
        }
        (
            me,
            e.chunks
                .iter()
                .find(|c| c.rank == me)
                .map(|c| c.key.clone())
                .unwrap_or_default(),
        )
    };
    let f = if r == me {
        mine
    } else {
        if let std::collections::hash_map::Entry::Vacant(v) = others.entry(r) {
            v.insert(o.read_rank(r)?);
        }
        &others[&r]
    };
    f.tensors
        .get(&key)
        .cloned()
        .ok_or_else(|| Error::io(&dir, format!("rank {r}'s file has no tensor {key:?}")))
}

/// What `load` reads before any rank changes anything: (parameter, value) pairs, the
/// optimizer state, the metadata.
type Staged = (Vec<(Tensor, Tensor)>, Option<OptimState>, Value);

/// Restores `params` and the optimizer from the sharded checkpoint `dir` written by
/// [`save`] with the same world size, sharding and optimizer; every rank calls it. Returns
/// the metadata given to `save`. Nothing is changed unless every rank can load: an error
/// on one rank fails the load on all.
pub fn load(
    dir: impl AsRef<Path>,
    params: &[ShardedParam],
    optimizer: Option<ShardedOptimizer<'_>>,
) -> Result<Value> {
    let op = "checkpoint.load";
    let dir = dir.as_ref();
    let w = world()?;
    let (me, n) = (w.rank()?, w.size());
    let mut optimizer = optimizer;
    let staged = (|| -> Result<Staged> {
        let o = open(dir)?;
        if o.index.world_size != n {
            return Err(Error::value(
                op,
                format!(
                    "{} was saved by {} ranks and this job has {n}: a sharded checkpoint resumes \
                     on the same world size only; consolidate it first (`deepseek consolidate \
                     {} full.safetensors`, or checkpoint::consolidate) and load the full state dict",
                    dir.display(),
                    o.index.world_size,
                    dir.display()
                ),
            ));
        }
        let mine = o.read_rank(me)?;
        let mut others = HashMap::new();
        let ws = locate(params, me)?;
        let mut copies = Vec::new();
        for wh in &ws {
            let t = stored(&o, &mine, &mut others, me, &wh.p.name, &wh.piece)?;
            if t.shape() != wh.p.tensor.shape() {
                return Err(Error::shape(
                    op,
                    format!(
                        "{:?}: stored {:?}, the parameter is {:?}",
                        wh.p.name,
                        t.shape(),
                        wh.p.tensor.shape()
                    ),
                ));
            }
            copies.push((wh.p.tensor.clone(), t));
        }
        let head = mine
            .header
            .state
            .get("optimizer")
            .cloned()
            .unwrap_or(Value::Null);
        let state = match &optimizer {
            None => None,
            Some(opt) => {
                if head.is_null() {
                    return Err(Error::value(op, "the checkpoint holds no optimizer state"));
                }
                let zero = head.get("zero").and_then(|z| z.as_bool()) == Some(true);
                let mut st: OptimState =
                    serde_json::from_value(head["state"].clone()).map_err(|e| {
                        Error::io(
                            dir.display().to_string(),
                            format!("corrupt optimizer state: {e}"),
                        )
                    })?;
                match opt {
                    ShardedOptimizer::Local(o2) => {
                        if zero {
                            return Err(Error::value(op, "the checkpoint holds ZeroRedundancyOptimizer state; pass ShardedOptimizer::Zero"));
                        }
                        if st.param_groups.len() != o2.param_groups().len() {
                            return Err(Error::value(op, "the optimizer has another number of parameter groups than the one saved"));
                        }
                        for (g, gs) in o2.param_groups().iter().zip(st.param_groups.iter_mut()) {
                            if g.params.len() != gs.params.len() {
                                return Err(Error::value(op, "an optimizer group has another number of parameters than the one saved"));
                            }
                            for (p, ps) in g.params.iter().zip(gs.params.iter_mut()) {
                                let wh = find(&ws, p).ok_or_else(|| {
                                    Error::value(
                                        op,
                                        "an optimizer parameter is not among the parameters given",
                                    )
                                })?;
                                let Some(slot) = &mut ps.state else { continue };
                                for (b, v) in slot.buffers.iter_mut() {
                                    let key = opt_key(b, &wh.p.name);
                                    let mut piece = wh.piece.clone();
                                    piece.dtype = "float32".into();
                                    let t = stored(&o, &mine, &mut others, me, &key, &piece)?;
                                    *v = t.to_vec::<f32>()?;
                                }
                            }
                        }
                    }
                    ShardedOptimizer::Zero(z) => {
                        if !zero {
                            return Err(Error::value(
                                op,
                                "the checkpoint holds no ZeroRedundancyOptimizer state",
                            ));
                        }
                        let l = z.shard_numel();
                        if head.get("shard_len").and_then(|v| v.as_u64()) != Some(l as u64) {
                            return Err(Error::value(op, format!("the ZeroRedundancyOptimizer slice has {l} elements now, another number when saved")));
                        }
                        let lo = z.process_group().rank()? * l;
                        if let Some(slot) = st
                            .param_groups
                            .first_mut()
                            .and_then(|g| g.params.first_mut())
                            .and_then(|p| p.state.as_mut())
                        {
                            for (b, v) in slot.buffers.iter_mut() {
                                *v = vec![0.0; l];
                                let mut a = 0usize;
                                for p in z.parameters() {
                                    let k = p.numel();
                                    let (s, e) = (a.max(lo), (a + k).min(lo + l));
                                    if s < e {
                                        let wh = find(&ws, p).ok_or_else(|| Error::value(op, "a ZeroRedundancyOptimizer parameter is not among the parameters given"))?;
                                        let key = opt_key(b, &wh.p.name);
                                        let piece = Piece {
                                            key: key.clone(),
                                            name: key.clone(),
                                            dtype: "float32".into(),
                                            shape: p.shape().to_vec(),
                                            layout: Layout::Flat {
                                                chunks: vec![Chunk {
                                                    offset: s - a,
                                                    length: e - s,
                                                    local_offset: 0,
                                                }],
                                            },
                                        };
                                        let t = stored(&o, &mine, &mut others, me, &key, &piece)?;
                                        v[s - lo..e - lo].copy_from_slice(&t.to_vec::<f32>()?);
                                    }
                                    a += k;
                                }
                            }
                        }
                    }
                }
                Some(st)
            }
        };
        Ok((copies, state, o.index.metadata.clone()))
    })();
    let st = exchange(&w, staged.as_ref().ok().map(|_| "ok"))?;
    let (copies, state, meta) = staged?;
    others_failed(op, &st)?;
    if let (Some(opt), Some(s)) = (optimizer.as_mut(), &state) {
        match opt {
            ShardedOptimizer::Local(o) => o.load_state_dict(s)?,
            ShardedOptimizer::Zero(z) => z.load_state_dict(s)?,
        }
    }
    crate::with_no_grad(|| {
        for (p, t) in &copies {
            p.copy_(t)?;
        }
        Ok(())
    })?;
    if let Some(ShardedOptimizer::Zero(z)) = optimizer.as_mut() {
        // ZeRO updates its own copy of this rank's slice: take the loaded values.
        z.refresh_shard()?;
    }
    Ok(meta)
}

//! The on-disk format of a sharded checkpoint: rank files, their headers, the index.
//!
//! Everything here is single-process file I/O (no collectives), so the consolidation tool
//! and the error checks run without MPI.

use crate::nn::{parse_safetensors, write_atomic};
use crate::train::checkpoint::sha256_hex;
use crate::{DType, Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The index file a complete sharded checkpoint holds (written last, by rank 0).
pub const INDEX_FILE: &str = "index.json";
/// The `format` of [`Index`] and of every rank file's header.
pub const FORMAT: &str = "deepseek.sharded-checkpoint/1";
/// The key of a rank file's safetensors `__metadata__` that holds its [`RankHeader`].
pub const HEADER_KEY: &str = "deepseek.sharded";

/// `rank-00001-of-00002.safetensors`: the file of `rank` in a job of `world` ranks.
pub fn rank_file_name(rank: usize, world: usize) -> String {
    format!("rank-{rank:05}-of-{world:05}.safetensors")
}

/// One contiguous run of a full tensor held by a rank: elements `[offset, offset+length)`
/// of the full tensor along the layout's dim (or of the flattened tensor) are elements
/// `[local_offset, local_offset+length)` of the stored tensor along the same dim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub offset: usize,
    pub length: usize,
    pub local_offset: usize,
}

/// How a stored tensor relates to the full tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "layout", rename_all = "snake_case")]
pub enum Layout {
    /// The stored tensor is the full tensor.
    Replicated,
    /// Runs of the full tensor along `dim` (tensor-parallel shards).
    Dim { dim: usize, chunks: Vec<Chunk> },
    /// Runs of the full tensor flattened row-major; the stored tensor is 1-D (ZeRO slices).
    Flat { chunks: Vec<Chunk> },
}

/// One tensor of a rank file: its key in the file, the full tensor it is part of, how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Piece {
    /// Key in this rank's safetensors file.
    pub key: String,
    /// Name of the full tensor (the unsplit model's name, or `optimizer.<buffer>.<name>`).
    pub name: String,
    /// Dtype name of the full tensor (`float32`, ...).
    pub dtype: String,
    /// Shape of the full tensor.
    pub shape: Vec<usize>,
    #[serde(flatten)]
    pub layout: Layout,
}

/// What a rank file says about itself (JSON in its safetensors `__metadata__`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankHeader {
    pub format: String,
    pub rank: usize,
    pub world_size: usize,
    pub pieces: Vec<Piece>,
    /// Non-tensor state (optimizer steps and hyper-parameters), opaque to the format.
    #[serde(default)]
    pub state: serde_json::Value,
}

/// One rank file of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub rank: usize,
    pub file: String,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

/// A run of a full tensor in the index: [`Chunk`] plus where it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexChunk {
    pub rank: usize,
    pub key: String,
    pub offset: usize,
    pub length: usize,
    pub local_offset: usize,
}

/// How one full tensor is spread over the rank files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub dtype: String,
    pub shape: Vec<usize>,
    /// `replicated` (one stored copy: `chunks[0]`), `dim` or `flat`.
    pub layout: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    pub chunks: Vec<IndexChunk>,
}

/// `index.json`: the table of contents of a complete sharded checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub format: String,
    pub world_size: usize,
    pub files: Vec<FileEntry>,
    pub tensors: BTreeMap<String, TensorEntry>,
    /// The caller's metadata (step, epoch, ...), as given to `save`.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

fn io(p: &Path, msg: impl Into<String>) -> Error {
    Error::io(p.display().to_string(), msg)
}

/// Writes `rank`'s file atomically (temporary file, fsync, rename) and returns its SHA-256.
/// `tensors` are `(piece, stored tensor)`; the stored tensor's shape must fit the piece.
pub fn write_rank_file(
    dir: &Path,
    rank: usize,
    world: usize,
    tensors: &[(Piece, Tensor)],
    state: serde_json::Value,
) -> Result<String> {
    let path = dir.join(rank_file_name(rank, world));
    let mut seen = std::collections::HashSet::new();
    for (p, t) in tensors {
        if !seen.insert(p.key.as_str()) {
            return Err(io(&path, format!("two tensors under the key {:?}", p.key)));
        }
        check_piece(p, t.shape(), t.dtype()).map_err(|e| io(&path, e))?;
    }
    let header = RankHeader {
        format: FORMAT.into(),
        rank,
        world_size: world,
        pieces: tensors.iter().map(|(p, _)| p.clone()).collect(),
        state,
    };
    let hjson = serde_json::to_string(&header)
        .map_err(|e| io(&path, format!("cannot serialise the header: {e}")))?;
    let entries: Vec<(&str, &Tensor)> = tensors.iter().map(|(p, t)| (p.key.as_str(), t)).collect();
    write_safetensors(
        &entries,
        &path,
        HashMap::from([(HEADER_KEY.to_string(), hjson)]),
    )
}

/// Writes `tensors` with safetensors `__metadata__` `meta` atomically; returns the file's
/// SHA-256.
pub(crate) fn write_safetensors(
    tensors: &[(&str, &Tensor)],
    path: &Path,
    meta: HashMap<String, String>,
) -> Result<String> {
    let data: Vec<(&str, Vec<u8>, &Tensor)> = tensors
        .iter()
        .map(|(k, t)| Ok((*k, crate::backend::to_le_bytes(t)?, *t)))
        .collect::<Result<_>>()?;
    let views: Vec<(&str, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(k, b, t)| {
            safetensors::tensor::TensorView::new(
                crate::nn::module::st_dtype(t.dtype()),
                t.shape().to_vec(),
                b,
            )
            .map(|v| (*k, v))
            .map_err(|e| io(path, e.to_string()))
        })
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::tensor::serialize(views, Some(meta)).map_err(|e| io(path, e.to_string()))?;
    write_atomic(path, &bytes)?;
    Ok(sha256_hex(&bytes))
}

/// Checks that a stored tensor of `shape` fits `p` (dims, runs inside both tensors).
pub(crate) fn check_piece(
    p: &Piece,
    shape: &[usize],
    dtype: DType,
) -> std::result::Result<(), String> {
    let what = format!("tensor {:?} (part of {:?})", p.key, p.name);
    if DType::parse(&p.dtype) != Some(dtype) {
        return Err(format!("{what} is {dtype}, the piece says {}", p.dtype));
    }
    let numel: usize = p.shape.iter().product();
    match &p.layout {
        Layout::Replicated => {
            if shape != p.shape.as_slice() {
                return Err(format!(
                    "{what} has shape {shape:?}, the full tensor {:?}",
                    p.shape
                ));
            }
        }
        Layout::Dim { dim, chunks } => {
            let d = *dim;
            if d >= p.shape.len() || shape.len() != p.shape.len() {
                return Err(format!(
                    "{what}: dim {d} does not fit shapes {shape:?} / {:?}",
                    p.shape
                ));
            }
            for (i, (a, b)) in shape.iter().zip(&p.shape).enumerate() {
                if i != d && a != b {
                    return Err(format!(
                        "{what} has shape {shape:?}, the full tensor {:?}: only dim {d} may differ",
                        p.shape
                    ));
                }
            }
            check_runs(&what, chunks, p.shape[d], shape[d])?;
        }
        Layout::Flat { chunks } => {
            if shape.len() != 1 {
                return Err(format!("{what}: a flat piece must be 1-D, got {shape:?}"));
            }
            check_runs(&what, chunks, numel, shape[0])?;
        }
    }
    Ok(())
}

fn check_runs(
    what: &str,
    chunks: &[Chunk],
    full: usize,
    local: usize,
) -> std::result::Result<(), String> {
    for c in chunks {
        let end = c.offset.checked_add(c.length);
        let lend = c.local_offset.checked_add(c.length);
        if end.is_none_or(|e| e > full) || lend.is_none_or(|e| e > local) {
            return Err(format!(
                "{what}: run {c:?} lies outside the full extent {full} or the stored extent {local}"
            ));
        }
    }
    Ok(())
}

/// Reads the header of a rank file without reading its tensor data.
pub fn read_rank_header(path: &Path) -> Result<RankHeader> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| io(path, format!("cannot open: {e}")))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|e| io(path, format!("not a safetensors file (no header): {e}")))?;
    let n = u64::from_le_bytes(n);
    if n > 100 << 20 {
        return Err(io(
            path,
            format!("not a safetensors file (header of {n} bytes)"),
        ));
    }
    let mut h = vec![0u8; n as usize];
    f.read_exact(&mut h)
        .map_err(|e| io(path, format!("truncated safetensors header: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&h)
        .map_err(|e| io(path, format!("corrupt safetensors header: {e}")))?;
    header_of(&v, path)
}

fn header_of(v: &serde_json::Value, path: &Path) -> Result<RankHeader> {
    let s = v
        .get("__metadata__")
        .and_then(|m| m.get(HEADER_KEY))
        .and_then(|s| s.as_str())
        .ok_or_else(|| {
            io(
                path,
                "not a rank file of a sharded checkpoint (no deepseek.sharded header)",
            )
        })?;
    let h: RankHeader =
        serde_json::from_str(s).map_err(|e| io(path, format!("corrupt rank header: {e}")))?;
    if h.format != FORMAT {
        return Err(io(
            path,
            format!(
                "rank file format {:?}, this deepseek reads {FORMAT:?}",
                h.format
            ),
        ));
    }
    Ok(h)
}

/// Builds the index from the rank files on disk (their headers) and writes it atomically.
/// `sha256[r]` is rank `r`'s file digest (as [`write_rank_file`] returned it). Called by
/// rank 0 once every rank has written its file.
pub fn write_index(
    dir: &Path,
    world: usize,
    sha256: &[String],
    metadata: serde_json::Value,
) -> Result<Index> {
    let ip = dir.join(INDEX_FILE);
    if sha256.len() != world {
        return Err(io(
            &ip,
            format!("{} digests for {world} ranks", sha256.len()),
        ));
    }
    let mut files = Vec::with_capacity(world);
    let mut tensors: BTreeMap<String, TensorEntry> = BTreeMap::new();
    for (r, sha) in sha256.iter().enumerate() {
        let file = rank_file_name(r, world);
        let path = dir.join(&file);
        let h = read_rank_header(&path)?;
        if h.rank != r || h.world_size != world {
            return Err(io(
                &path,
                format!(
                    "the file says rank {} of {}, expected rank {r} of {world}",
                    h.rank, h.world_size
                ),
            ));
        }
        for p in h.pieces {
            merge_piece(&mut tensors, r, p).map_err(|e| io(&path, e))?;
        }
        files.push(FileEntry {
            rank: r,
            file,
            sha256: sha.clone(),
        });
    }
    for (name, e) in &tensors {
        check_coverage(name, e).map_err(|m| io(&ip, m))?;
    }
    let index = Index {
        format: FORMAT.into(),
        world_size: world,
        files,
        tensors,
        metadata,
    };
    let json =
        serde_json::to_vec_pretty(&index).map_err(|e| io(&ip, format!("cannot serialise: {e}")))?;
    write_atomic(&ip, &json)?;
    Ok(index)
}

fn merge_piece(
    tensors: &mut BTreeMap<String, TensorEntry>,
    rank: usize,
    p: Piece,
) -> std::result::Result<(), String> {
    let (layout, dim, chunks) = match &p.layout {
        Layout::Replicated => (
            "replicated",
            None,
            vec![Chunk {
                offset: 0,
                length: p.shape.iter().product(),
                local_offset: 0,
            }],
        ),
        Layout::Dim { dim, chunks } => ("dim", Some(*dim), chunks.clone()),
        Layout::Flat { chunks } => ("flat", None, chunks.clone()),
    };
    let e = tensors
        .entry(p.name.clone())
        .or_insert_with(|| TensorEntry {
            dtype: p.dtype.clone(),
            shape: p.shape.clone(),
            layout: layout.into(),
            dim,
            chunks: Vec::new(),
        });
    if e.dtype != p.dtype || e.shape != p.shape || e.layout != layout || e.dim != dim {
        return Err(format!(
            "{:?} is {} {:?} ({}{}) here but {} {:?} ({}{}) in an earlier rank file",
            p.name,
            p.dtype,
            p.shape,
            layout,
            dim.map(|d| format!(" dim {d}")).unwrap_or_default(),
            e.dtype,
            e.shape,
            e.layout,
            e.dim.map(|d| format!(" dim {d}")).unwrap_or_default()
        ));
    }
    if layout == "replicated" && !e.chunks.is_empty() {
        return Ok(()); // the lowest rank's copy is the one consolidated and loaded
    }
    e.chunks.extend(chunks.into_iter().map(|c| IndexChunk {
        rank,
        key: p.key.clone(),
        offset: c.offset,
        length: c.length,
        local_offset: c.local_offset,
    }));
    Ok(())
}

/// The runs of `e` must tile its extent exactly (identical runs from replicas count once).
pub(crate) fn check_coverage(name: &str, e: &TensorEntry) -> std::result::Result<(), String> {
    let extent = match (e.layout.as_str(), e.dim) {
        ("dim", Some(d)) => *e
            .shape
            .get(d)
            .ok_or_else(|| format!("{name:?}: dim {d} outside shape {:?}", e.shape))?,
        ("flat", None) | ("replicated", None) => e.shape.iter().product(),
        (l, d) => return Err(format!("{name:?}: unknown layout {l:?} (dim {d:?})")),
    };
    if DType::parse(&e.dtype).is_none() {
        return Err(format!("{name:?}: unknown dtype {:?}", e.dtype));
    }
    let mut runs: Vec<(usize, usize)> = e.chunks.iter().map(|c| (c.offset, c.length)).collect();
    runs.sort_unstable();
    runs.dedup();
    let mut at = 0usize;
    for (o, l) in runs {
        if o != at {
            return Err(format!(
                "{name:?}: {} at element {at} along its {} (the shards do not fit together)",
                if o > at { "gap" } else { "overlap" },
                if e.layout == "dim" {
                    "sharded dim"
                } else {
                    "flattened extent"
                }
            ));
        }
        at = o + l;
    }
    if at != extent {
        return Err(format!(
            "{name:?}: the shards cover {at} of {extent} elements along its {}",
            if e.layout == "dim" {
                "sharded dim"
            } else {
                "flattened extent"
            }
        ));
    }
    Ok(())
}

/// A complete checkpoint directory opened for reading: its index, validated.
#[derive(Debug, Clone)]
pub struct Opened {
    pub dir: PathBuf,
    pub index: Index,
}

/// Opens `dir`: the index must exist and parse, and every rank file it lists must exist.
pub fn open(dir: &Path) -> Result<Opened> {
    let ip = dir.join(INDEX_FILE);
    if !dir.is_dir() {
        return Err(io(dir, "no such checkpoint directory"));
    }
    let bytes = match std::fs::read(&ip) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(io(
                dir,
                format!(
                    "not a complete sharded checkpoint: {INDEX_FILE} is missing (the save did \
                     not finish, or this is not a sharded checkpoint directory)"
                ),
            ))
        }
        Err(e) => return Err(io(&ip, format!("cannot read: {e}"))),
    };
    let index: Index =
        serde_json::from_slice(&bytes).map_err(|e| io(&ip, format!("corrupt index: {e}")))?;
    if index.format != FORMAT {
        return Err(io(
            &ip,
            format!("format {:?}, this deepseek reads {FORMAT:?}", index.format),
        ));
    }
    let n = index.world_size;
    if index.files.len() != n || index.files.iter().enumerate().any(|(r, f)| f.rank != r) {
        return Err(io(
            &ip,
            format!(
                "index/world-size mismatch: world_size {n} but {} rank files listed",
                index.files.len()
            ),
        ));
    }
    for f in &index.files {
        if f.file != rank_file_name(f.rank, n) {
            return Err(io(
                &ip,
                format!(
                    "index/world-size mismatch: rank {}'s file is {:?}, expected {:?} for a world of {n}",
                    f.rank,
                    f.file,
                    rank_file_name(f.rank, n)
                ),
            ));
        }
        if !dir.join(&f.file).is_file() {
            return Err(io(
                dir,
                format!(
                    "incomplete sharded checkpoint: rank {}'s file {} is missing",
                    f.rank, f.file
                ),
            ));
        }
    }
    for (name, e) in &index.tensors {
        check_coverage(name, e).map_err(|m| io(&ip, m))?;
        if let Some(c) = e.chunks.iter().find(|c| c.rank >= n) {
            return Err(io(
                &ip,
                format!("{name:?} names rank {} in a world of {n}", c.rank),
            ));
        }
    }
    Ok(Opened {
        dir: dir.to_path_buf(),
        index,
    })
}

/// One rank file read and verified: its tensors by key and its header.
pub struct RankFile {
    pub header: RankHeader,
    pub tensors: HashMap<String, Tensor>,
}

impl Opened {
    /// Reads rank `r`'s file, checking its SHA-256 against the index and its header against
    /// the rank and world size.
    pub fn read_rank(&self, r: usize) -> Result<RankFile> {
        let f = self.index.files.get(r).ok_or_else(|| {
            io(
                &self.dir,
                format!(
                    "rank {r} is outside the checkpoint's world of {}",
                    self.index.world_size
                ),
            )
        })?;
        let path = self.dir.join(&f.file);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, format!("cannot read: {e}")))?;
        let sha = sha256_hex(&bytes);
        if sha != f.sha256 {
            return Err(io(
                &path,
                format!(
                    "corrupt rank file: its SHA-256 is {sha}, the index recorded {} (the file \
                     changed or is damaged)",
                    f.sha256
                ),
            ));
        }
        let name = path.display().to_string();
        let tensors = parse_safetensors(&bytes, &name)?;
        let st = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| io(&path, format!("not a valid safetensors file: {e}")))?;
        let meta = st.1.metadata().clone().unwrap_or_default();
        let hv = serde_json::json!({ "__metadata__": meta });
        let header = header_of(&hv, &path)?;
        if header.rank != r || header.world_size != self.index.world_size {
            return Err(io(
                &path,
                format!(
                    "the file says rank {} of {}, the index expects rank {r} of {}",
                    header.rank, header.world_size, self.index.world_size
                ),
            ));
        }
        for p in &header.pieces {
            let t = tensors
                .get(&p.key)
                .ok_or_else(|| io(&path, format!("tensor {:?} is listed but absent", p.key)))?;
            check_piece(p, t.shape(), t.dtype()).map_err(|e| io(&path, e))?;
        }
        Ok(RankFile { header, tensors })
    }
}

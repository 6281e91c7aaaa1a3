//! The file side of `deepseek.distributed.checkpoint` (`deepseek::distributed::checkpoint`):
//! rank files, the index, reading them back verified, consolidation. No collectives here:
//! the Python module runs the barriers and exchanges between ranks.

use crate::tensor::{as_tensor, PyTensor};
use crate::IntoPy;
use deepseek::distributed::checkpoint as ck;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

fn json_arg(what: &str, s: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| PyValueError::new_err(format!("{what}: bad JSON: {e}")))
}

/// Writes rank `rank`'s file of a `world`-rank checkpoint atomically: `pieces_json` lists
/// the pieces (key, name, dtype, full shape, layout), `tensors` maps each key to this
/// rank's tensor, `state_json` is stored in the header. Returns the file's SHA-256.
#[pyfunction]
fn _ckpt_write_rank(
    py: Python<'_>,
    dir: PathBuf,
    rank: usize,
    world: usize,
    pieces_json: &str,
    tensors: &Bound<'_, PyDict>,
    state_json: &str,
) -> PyResult<String> {
    let pieces: Vec<ck::Piece> = serde_json::from_value(json_arg("pieces", pieces_json)?)
        .map_err(|e| PyValueError::new_err(format!("pieces: {e}")))?;
    let state = json_arg("state", state_json)?;
    let mut items = Vec::with_capacity(pieces.len());
    for p in pieces {
        let t = tensors
            .get_item(&p.key)?
            .ok_or_else(|| PyValueError::new_err(format!("no tensor for the piece {:?}", p.key)))?;
        let t = as_tensor(&t)?.detach();
        items.push((p, t));
    }
    py.detach(|| ck::write_rank_file(&dir, rank, world, &items, state))
        .py()
}

/// Builds and writes `index.json` from the rank files (rank 0, after every rank wrote).
#[pyfunction]
fn _ckpt_write_index(
    py: Python<'_>,
    dir: PathBuf,
    world: usize,
    sha256: Vec<String>,
    metadata_json: &str,
) -> PyResult<()> {
    let meta = json_arg("metadata", metadata_json)?;
    py.detach(|| ck::write_index(&dir, world, &sha256, meta))
        .py()
        .map(|_| ())
}

/// The index of a complete checkpoint (validated: every rank file present), as JSON.
#[pyfunction]
fn _ckpt_open(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    let o = py.detach(|| ck::open(&dir)).py()?;
    serde_json::to_string(&o.index).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Rank `rank`'s file, verified against the index: `(tensors by key, header JSON)`.
#[pyfunction]
fn _ckpt_read_rank<'py>(
    py: Python<'py>,
    dir: PathBuf,
    rank: usize,
) -> PyResult<(Bound<'py, PyDict>, String)> {
    let f = py
        .detach(|| ck::open(&dir).and_then(|o| o.read_rank(rank)))
        .py()?;
    let d = PyDict::new(py);
    for (k, t) in f.tensors {
        d.set_item(k, PyTensor { t })?;
    }
    let h = serde_json::to_string(&f.header).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((d, h))
}

/// Consolidates `dir` into `out` (and the optimizer file); returns what was written.
#[pyfunction]
#[pyo3(signature = (dir, out, optimizer_out=None))]
fn _ckpt_consolidate<'py>(
    py: Python<'py>,
    dir: PathBuf,
    out: PathBuf,
    optimizer_out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let c = py
        .detach(|| ck::consolidate(&dir, &out, optimizer_out.as_deref()))
        .py()?;
    let d = PyDict::new(py);
    d.set_item("model_path", c.model_path)?;
    d.set_item("model_tensors", c.model_tensors)?;
    d.set_item("optimizer_path", c.optimizer_path)?;
    d.set_item("optimizer_tensors", c.optimizer_tensors)?;
    d.set_item("world_size", c.world_size)?;
    Ok(d)
}

pub fn register(d: &Bound<'_, PyModule>) -> PyResult<()> {
    d.add_function(wrap_pyfunction!(_ckpt_write_rank, d)?)?;
    d.add_function(wrap_pyfunction!(_ckpt_write_index, d)?)?;
    d.add_function(wrap_pyfunction!(_ckpt_open, d)?)?;
    d.add_function(wrap_pyfunction!(_ckpt_read_rank, d)?)?;
    d.add_function(wrap_pyfunction!(_ckpt_consolidate, d)?)?;
    Ok(())
}

//! Consolidation: one process reads every rank file of a sharded checkpoint and writes the
//! full tensors under the unsplit model's names (no MPI needed).

use super::format::{open, write_safetensors, IndexChunk, Opened, RankFile, TensorEntry};
use super::OPTIMIZER_PREFIX;
use crate::nn::save_safetensors;
use crate::{DType, Error, Result, Tensor};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What [`consolidate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Consolidated {
    /// The model's state dict file.
    pub model_path: PathBuf,
    /// Number of model tensors in it.
    pub model_tensors: usize,
    /// The optimizer state file, when the checkpoint holds optimizer state.
    pub optimizer_path: Option<PathBuf>,
    /// Number of tensors in the optimizer file.
    pub optimizer_tensors: usize,
    /// World size the checkpoint was saved with.
    pub world_size: usize,
}

/// The optimizer file written beside `out`: `model.safetensors` -> `model.optim.safetensors`.
pub fn default_optimizer_path(out: &Path) -> PathBuf {
    let stem = out
        .file_name()
        .and_then(|s| s.to_str())
        .map(|s| s.strip_suffix(".safetensors").unwrap_or(s).to_string())
        .unwrap_or_else(|| "model".into());
    out.with_file_name(format!("{stem}.optim.safetensors"))
}

/// Reads the sharded checkpoint `dir` and writes
/// - `out`: every model tensor, whole, under the unsplit model's name (a state dict that
///   `Module::load` / `load_state_dict`, PyTorch's `safetensors.torch.load_file`, load);
/// - when the checkpoint holds optimizer state, `optimizer_out` (default: `out` with
///   `.safetensors` replaced by `.optim.safetensors`): `state.<param>.<buffer>` (e.g.
///   `state.fc1.weight.exp_avg`, the parameter's shape), `state.<param>.step` (0-d
///   float32, as PyTorch keeps it) and per-parameter scalars (`state.<param>.mu_product`,
///   0-d float64); its safetensors metadata holds `optimizer` (the kind) and
///   `param_groups` (JSON: each group's hyper-parameters and `params`, the names).
///
/// Every rank file is verified against the index (SHA-256) and every full tensor must be
/// covered exactly by its shards. Both files are written atomically.
pub fn consolidate(
    dir: impl AsRef<Path>,
    out: impl AsRef<Path>,
    optimizer_out: Option<&Path>,
) -> Result<Consolidated> {
    let o = open(dir.as_ref())?;
    let n = o.index.world_size;
    let files: Vec<RankFile> = (0..n).map(|r| o.read_rank(r)).collect::<Result<_>>()?;
    let mut model = BTreeMap::new();
    let mut optim = BTreeMap::new();
    for (name, e) in &o.index.tensors {
        let t = assemble(&o, &files, name, e)?;
        match name.strip_prefix(OPTIMIZER_PREFIX) {
            Some(rest) => {
                let (buf, param) = rest.split_once('.').ok_or_else(|| {
                    Error::io(
                        o.dir.display().to_string(),
                        format!("optimizer tensor {name:?} is not optimizer.<buffer>.<param>"),
                    )
                })?;
                optim.insert(format!("state.{param}.{buf}"), t);
            }
            None => {
                model.insert(name.clone(), t);
            }
        }
    }
    let out = out.as_ref().to_path_buf();
    let opt_state = merged_optimizer_state(&files);
    let mut optimizer_path = None;
    let optimizer_tensors;
    if let Some((kind, groups, steps, scalars)) = opt_state {
        for (p, s) in steps {
            optim.insert(
                format!("state.{p}.step"),
                Tensor::from_vec(vec![s as f32], &[])?,
            );
        }
        for (p, m) in scalars {
            for (k, v) in m {
                optim.insert(format!("state.{p}.{k}"), Tensor::from_vec(vec![v], &[])?);
            }
        }
        let path = optimizer_out
            .map(Path::to_path_buf)
            .unwrap_or_else(|| default_optimizer_path(&out));
        let meta = HashMap::from([
            ("optimizer".to_string(), kind),
            ("param_groups".to_string(), groups.to_string()),
            (
                "format".to_string(),
                "deepseek.consolidated-optimizer/1".to_string(),
            ),
        ]);
        optimizer_tensors = optim.len();
        let entries: Vec<(&str, &Tensor)> = optim.iter().map(|(k, t)| (k.as_str(), t)).collect();
        write_safetensors(&entries, &path, meta)?;
        optimizer_path = Some(path);
    } else {
        if !optim.is_empty() {
            return Err(Error::io(
                o.dir.display().to_string(),
                "optimizer tensors without optimizer state in the rank headers (damaged checkpoint)",
            ));
        }
        optimizer_tensors = 0;
    }
    save_safetensors(&model, &out)?;
    Ok(Consolidated {
        model_path: out,
        model_tensors: model.len(),
        optimizer_path,
        optimizer_tensors,
        world_size: n,
    })
}

type OptParts = (
    String,
    Value,
    BTreeMap<String, u64>,
    BTreeMap<String, BTreeMap<String, f64>>,
);

/// The optimizer's kind, groups (by parameter name), steps and scalars, merged over ranks
/// (a parameter on several ranks takes the lowest rank's values).
fn merged_optimizer_state(files: &[RankFile]) -> Option<OptParts> {
    let mut kind = None;
    let mut groups: Option<Value> = None;
    let mut steps = BTreeMap::new();
    let mut scalars: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for f in files {
        let Some(o) = f.header.state.get("optimizer").filter(|o| !o.is_null()) else {
            continue;
        };
        if kind.is_none() {
            kind = o.get("kind").and_then(|k| k.as_str()).map(str::to_string);
        }
        if let Some(g) = o.get("param_groups").and_then(|g| g.as_array()) {
            // Union of each group's parameter names, in first-seen order.
            let merged = groups.get_or_insert_with(|| json!(g.clone()));
            if let Some(m) = merged.as_array_mut() {
                for (mg, g) in m.iter_mut().zip(g) {
                    let have: Vec<Value> = mg
                        .get("params")
                        .and_then(|p| p.as_array())
                        .cloned()
                        .unwrap_or_default();
                    let mut all = have.clone();
                    for p in g
                        .get("params")
                        .and_then(|p| p.as_array())
                        .into_iter()
                        .flatten()
                    {
                        if !all.contains(p) {
                            all.push(p.clone());
                        }
                    }
                    mg["params"] = Value::Array(all);
                }
            }
        }
        if let Some(s) = o.get("steps").and_then(|s| s.as_object()) {
            for (k, v) in s {
                if let Some(v) = v.as_u64() {
                    steps.entry(k.clone()).or_insert(v);
                }
            }
        }
        if let Some(s) = o.get("scalars").and_then(|s| s.as_object()) {
            for (k, v) in s {
                if scalars.contains_key(k) {
                    continue;
                }
                let m = v
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(a, b)| b.as_f64().map(|b| (a.clone(), b)))
                            .collect()
                    })
                    .unwrap_or_default();
                scalars.insert(k.clone(), m);
            }
        }
    }
    kind.map(|k| (k, groups.unwrap_or(json!([])), steps, scalars))
}

/// The full tensor `name` from its shards.
pub(crate) fn assemble(
    o: &Opened,
    files: &[RankFile],
    name: &str,
    e: &TensorEntry,
) -> Result<Tensor> {
    let dir = o.dir.display().to_string();
    let dtype = DType::parse(&e.dtype)
        .ok_or_else(|| Error::io(&dir, format!("{name:?}: unknown dtype {:?}", e.dtype)))?;
    let local = |c: &IndexChunk| -> Result<&Tensor> {
        files[c.rank].tensors.get(&c.key).ok_or_else(|| {
            Error::io(
                &dir,
                format!("{name:?}: rank {}'s file has no tensor {:?}", c.rank, c.key),
            )
        })
    };
    let _g = crate::no_grad();
    match e.layout.as_str() {
        "replicated" => {
            let c = e.chunks.first().ok_or_else(|| {
                Error::io(&dir, format!("{name:?}: replicated but stored nowhere"))
            })?;
            Ok(local(c)?.clone())
        }
        "dim" => {
            let d = e.dim.unwrap_or(0);
            let full = Tensor::zeros(&e.shape, dtype)?;
            for c in dedup(&e.chunks) {
                let src = local(c)?.narrow(d as isize, c.local_offset, c.length)?;
                full.narrow(d as isize, c.offset, c.length)?.copy_(&src)?;
            }
            Ok(full)
        }
        _ => {
            let numel: usize = e.shape.iter().product();
            let full = Tensor::zeros(&[numel], dtype)?;
            for c in dedup(&e.chunks) {
                let src = local(c)?.narrow(0, c.local_offset, c.length)?;
                full.narrow(0, c.offset, c.length)?.copy_(&src)?;
            }
            full.reshape(&e.shape)
        }
    }
}

/// Runs with distinct `(offset, length)` (replicas of a shard are read once).
fn dedup(chunks: &[IndexChunk]) -> Vec<&IndexChunk> {
    let mut seen = std::collections::HashSet::new();
    chunks
        .iter()
        .filter(|c| seen.insert((c.offset, c.length)))
        .collect()
}

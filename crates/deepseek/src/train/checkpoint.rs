//! Checkpoint directories: written atomically, pruned to the last k, validated on load.
//!
//! Layout of `<out>/checkpoints/`:
//!
//! ```text
//! step-200/            a complete checkpoint (renamed into place only once complete)
//!   model.safetensors  the model's state dict
//!   optimizer.json     the optimizer's OptimState
//!   scheduler.json     the LR scheduler's SchedulerState (`null` without a scheduler)
//!   trainer.json       TrainerCheckpoint: step, data position, RNG state, loss history,
//!                      the model fingerprint
//!   ...                extra files given to the trainer (tokenizer.json, config.json, ...)
//! step-400/
//! latest               "step-400": the newest complete checkpoint (written atomically)
//! ```
//!
//! Every checkpoint directory also holds `SHA256SUMS` (the format of `sha256sum`, so
//! `sha256sum -c SHA256SUMS` checks it by hand): the SHA-256 of every file written into it.
//! Loading verifies them and names the file that changed (a bit flip in tensor data that
//! leaves the safetensors header intact is caught this way); `verify = false` (the CLI's
//! `--no-verify`) skips the check for files edited on purpose.
//!
//! A checkpoint is first written into `step-<N>.tmp-<pid>/` and renamed to `step-<N>/`
//! when every file is on disk, so a crash leaves either the old set of checkpoints or the
//! new one, never a half-written `step-<N>`. Older checkpoints are deleted only after the
//! new one is complete.

use crate::nn::{load_safetensors, save_safetensors, write_atomic};
use crate::optim::{OptimState, SchedulerState};
use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Version of the `trainer.json` format.
pub const FORMAT: u32 = 1;

/// The file names inside a checkpoint directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimizer state ([`OptimState`] as JSON).
pub const OPTIMIZER_FILE: &str = "optimizer.json";
/// The scheduler state ([`SchedulerState`] as JSON, or `null`).
pub const SCHEDULER_FILE: &str = "scheduler.json";
/// The trainer state ([`TrainerCheckpoint`] as JSON).
pub const TRAINER_FILE: &str = "trainer.json";
/// The pointer file naming the newest complete checkpoint.
pub const LATEST_FILE: &str = "latest";
/// The SHA-256 of every other file of the checkpoint, in `sha256sum`'s format.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// The trainer's part of a checkpoint (`trainer.json`): where training stands and what it
/// has seen, so that a resumed run continues exactly like an uninterrupted one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerCheckpoint {
    /// Format version ([`FORMAT`]).
    pub format: u32,
    /// Optimizer steps done (skipped non-finite steps included).
    pub step: u64,
    /// The epoch in progress (0-based).
    pub epoch: u64,
    /// Micro-batches of `epoch` already consumed.
    pub batch_in_epoch: usize,
    /// Batches per epoch of the training data when the checkpoint was written (a resumed
    /// run must see the same data layout).
    pub batches_per_epoch: usize,
    /// The global random generator's state (`deepseek::get_rng_state`).
    pub rng_state: [u64; 4],
    /// Training loss of every step (`None` for a skipped non-finite step).
    pub train_losses: Vec<Option<f64>>,
    /// `(step, loss)` of every scheduled validation.
    pub val_losses: Vec<(u64, f64)>,
    /// Steps skipped because of a non-finite loss or gradient norm.
    pub skipped_steps: u64,
    /// Seconds of training so far, over all runs that led here.
    pub elapsed_s: f64,
    /// Samples (or tokens) processed so far.
    pub units_seen: u64,
    /// Micro-batches per optimizer step when the checkpoint was written.
    pub gradient_accumulation_steps: usize,
    /// The model's parameter and buffer names with their shapes, in order: a checkpoint
    /// from another model is rejected.
    pub fingerprint: Vec<(String, Vec<usize>)>,
    /// True when the checkpoint was written with a [`SUMS_FILE`] (so a missing one is an
    /// error, not an older checkpoint). Absent in checkpoints of earlier versions.
    #[serde(default)]
    pub sha256sums: bool,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks every file listed in `dir/SHA256SUMS` against its recorded SHA-256. A checkpoint
/// without the file passes only when its `trainer.json` (if any) does not say it was
/// written with one. Errors name the file that differs.
pub fn verify(dir: &Path) -> Result<()> {
    let sp = dir.join(SUMS_FILE);
    let sums = match std::fs::read(&sp) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tp = dir.join(TRAINER_FILE);
            let promised = std::fs::read(&tp)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("sha256sums").and_then(|x| x.as_bool()))
                .unwrap_or(false);
            if promised {
                return Err(Error::io(
                    sp.display().to_string(),
                    "missing, but trainer.json says the checkpoint was written with it (damaged checkpoint directory; pass --no-verify to load it anyway)",
                ));
            }
            return Ok(());
        }
        Err(e) => {
            return Err(Error::io(
                sp.display().to_string(),
                format!("cannot read: {e}"),
            ))
        }
    };
    let text = std::str::from_utf8(&sums)
        .map_err(|_| Error::io(sp.display().to_string(), "corrupt: not text"))?;
    let mut listed = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let bad = || {
            Error::io(
                sp.display().to_string(),
                format!("corrupt: line {} is not `<sha256>  <file>`", i + 1),
            )
        };
        let (hash, name) = line.split_once("  ").ok_or_else(bad)?;
        let plain = !name.is_empty()
            && !name.contains('/')
            && !name.contains('\\')
            && name != "."
            && name != "..";
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !plain {
            return Err(bad());
        }
        listed.insert(name.to_string());
        let p = dir.join(name);
        let bytes = read_file(dir, name)?;
        let found = sha256_hex(&bytes);
        if !found.eq_ignore_ascii_case(hash) {
            return Err(Error::io(
                p.display().to_string(),
                format!(
                    "checksum mismatch: the file changed after the checkpoint was written (SHA-256 {found}, {SUMS_FILE} records {hash}); it is damaged, or was edited: pass --no-verify to load it anyway"
                ),
            ));
        }
    }
    // Every file the writer put here is listed: one that is not means a damaged list.
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display().to_string(), format!("cannot list: {e}")))?;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().to_string();
        if name != SUMS_FILE
            && !name.starts_with('.')
            && ent.path().is_file()
            && !listed.contains(&name)
        {
            return Err(Error::io(
                sp.display().to_string(),
                format!("damaged: it does not list {name}, which is in the checkpoint (pass --no-verify to load it anyway)"),
            ));
        }
    }
    Ok(())
}

/// Names and shapes of a state dict, the model fingerprint stored in `trainer.json`.
pub fn fingerprint(sd: &BTreeMap<String, Tensor>) -> Vec<(String, Vec<usize>)> {
    sd.iter()
        .map(|(k, t)| (k.clone(), t.shape().to_vec()))
        .collect()
}

/// Explains how two fingerprints differ (`None` when equal).
pub fn fingerprint_mismatch(
    ours: &[(String, Vec<usize>)],
    theirs: &[(String, Vec<usize>)],
) -> Option<String> {
    let a: BTreeMap<&String, &Vec<usize>> = ours.iter().map(|(k, s)| (k, s)).collect();
    let b: BTreeMap<&String, &Vec<usize>> = theirs.iter().map(|(k, s)| (k, s)).collect();
    let mut problems = Vec::new();
    for (k, s) in &a {
        match b.get(k) {
            None => problems.push(format!("`{k}` is missing from the checkpoint")),
            Some(t) if t != s => problems.push(format!(
                "`{k}` has shape {t:?} in the checkpoint but {s:?} in this model"
            )),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            problems.push(format!("the checkpoint has `{k}`, which this model lacks"));
        }
    }
    if problems.is_empty() {
        return None;
    }
    let n = problems.len();
    problems.truncate(4);
    let more = if n > 4 {
        format!(" (and {} more differences)", n - 4)
    } else {
        String::new()
    };
    Some(format!(
        "the checkpoint was written for a different model: {}{more}",
        problems.join("; ")
    ))
}

/// Everything read back from a checkpoint directory, validated.
pub struct LoadedCheckpoint {
    /// The directory it came from.
    pub dir: PathBuf,
    /// `trainer.json`.
    pub trainer: TrainerCheckpoint,
    /// `model.safetensors`.
    pub model: HashMap<String, Tensor>,
    /// `optimizer.json`.
    pub optimizer: OptimState,
    /// `scheduler.json`.
    pub scheduler: Option<SchedulerState>,
}

fn read_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let p = dir.join(name);
    std::fs::read(&p).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "missing from the checkpoint (incomplete or damaged checkpoint directory)".to_string()
        } else {
            format!("cannot read: {e}")
        };
        Error::io(p.display().to_string(), what)
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let p = dir.join(name);
    let bytes = read_file(dir, name)?;
    if bytes.is_empty() {
        return Err(Error::io(
            p.display().to_string(),
            "the file is empty (truncated checkpoint)",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let what = if e.is_eof() {
            "truncated: the JSON ends early"
        } else {
            "corrupt: not the expected JSON"
        };
        Error::io(p.display().to_string(), format!("{what} ({e})"))
    })
}

/// Reads and validates a checkpoint directory against a model fingerprint, checksums
/// included (see [`verify`]). Nothing is changed on disk. Every error names the file and
/// the problem.
pub fn load(dir: &Path, fingerprint_now: &[(String, Vec<usize>)]) -> Result<LoadedCheckpoint> {
    load_with(dir, fingerprint_now, true)
}

/// [`load`], verifying the checksums only when `verify` is true.
pub fn load_with(
    dir: &Path,
    fingerprint_now: &[(String, Vec<usize>)],
    verify_sums: bool,
) -> Result<LoadedCheckpoint> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir.display().to_string(),
            "no such checkpoint directory",
        ));
    }
    let trainer: TrainerCheckpoint = parse_json(dir, TRAINER_FILE)?;
    let tp = dir.join(TRAINER_FILE).display().to_string();
    if trainer.format != FORMAT {
        return Err(Error::io(
            tp,
            format!(
                "checkpoint format {} is not supported (this build reads format {FORMAT})",
                trainer.format
            ),
        ));
    }
    if trainer.train_losses.len() as u64 != trainer.step {
        return Err(Error::io(
            tp,
            format!(
                "corrupt: step {} but {} recorded losses",
                trainer.step,
                trainer.train_losses.len()
            ),
        ));
    }
    if let Some(msg) = fingerprint_mismatch(fingerprint_now, &trainer.fingerprint) {
        return Err(Error::io(tp, msg));
    }
    let mp = dir.join(MODEL_FILE);
    if !mp.is_file() {
        read_file(dir, MODEL_FILE)?;
    }
    let model = load_safetensors(&mp)?;
    let in_file: Vec<(String, Vec<usize>)> = {
        let mut v: Vec<_> = model
            .iter()
            .map(|(k, t)| (k.clone(), t.shape().to_vec()))
            .collect();
        v.sort();
        v
    };
    if let Some(msg) = fingerprint_mismatch(fingerprint_now, &in_file) {
        return Err(Error::io(mp.display().to_string(), msg));
    }
    let optimizer: OptimState = parse_json(dir, OPTIMIZER_FILE)?;
    let scheduler: Option<SchedulerState> = parse_json(dir, SCHEDULER_FILE)?;
    // Last, so that a truncated or unparsable file is reported as such; the checksums then
    // catch what parses but changed (a flipped bit in the tensor data).
    if verify_sums {
        verify(dir)?;
    }
    Ok(LoadedCheckpoint {
        dir: dir.to_path_buf(),
        trainer,
        model,
        optimizer,
        scheduler,
    })
}

/// The step number of a complete checkpoint directory name (`step-<N>`).
pub fn parse_step_dir(name: &str) -> Option<u64> {
    name.strip_prefix("step-")?.parse().ok()
}

/// Complete checkpoints in `root` (`<out>/checkpoints`), oldest first.
pub fn list(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let rd = match std::fs::read_dir(root) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::io(
                root.display().to_string(),
                format!("cannot list: {e}"),
            ))
        }
    };
    let mut v = Vec::new();
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().to_string();
        if let Some(s) = parse_step_dir(&name) {
            if ent.path().is_dir() {
                v.push((s, ent.path()));
            }
        }
    }
    v.sort();
    Ok(v)
}

/// The newest complete checkpoint in `root`, if any: the highest-numbered `step-<N>`
/// directory (every such directory is complete, since it is renamed into place only once
/// written). The `latest` pointer may lag by one after a crash; it is only a convenience.
pub fn latest(root: &Path) -> Result<Option<PathBuf>> {
    Ok(list(root)?.pop().map(|(_, p)| p))
}

/// Writes a checkpoint atomically into `root/step-<step>/`, updates `root/latest` and
/// deletes all but the newest `keep_last` checkpoints (0 keeps all). `files` are written
/// in order after `model.safetensors` (put `trainer.json` last). `fail_after` is a test
/// hook: stop with an error after writing that many of `files` (a simulated crash).
pub(crate) fn save(
    root: &Path,
    step: u64,
    model: &BTreeMap<String, Tensor>,
    files: &[(String, Vec<u8>)],
    keep_last: usize,
    fail_after: Option<usize>,
) -> Result<PathBuf> {
    use std::io::Write;
    let rp = root.display().to_string();
    std::fs::create_dir_all(root)
        .map_err(|e| Error::io(&rp, format!("cannot create the checkpoint directory: {e}")))?;
    let pid = std::process::id();
    let name = format!("step-{step}");
    let tmp = root.join(format!("{name}.tmp-{pid}"));
    let fin = root.join(&name);
    let io = |p: &Path, what: &str, e: std::io::Error| {
        Error::io(p.display().to_string(), format!("{what}: {e}"))
    };
    if tmp.is_dir() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, "cannot clear", e))?;
    } else if tmp.exists() {
        std::fs::remove_file(&tmp).map_err(|e| io(&tmp, "cannot clear", e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, "cannot create", e))?;
    save_safetensors(model, tmp.join(MODEL_FILE))?;
    for (i, (fname, bytes)) in files.iter().enumerate() {
        if fail_after == Some(i) {
            return Err(Error::io(
                tmp.display().to_string(),
                "simulated failure while writing a checkpoint",
            ));
        }
        let p = tmp.join(fname);
        let mut f = std::fs::File::create(&p).map_err(|e| io(&p, "cannot create", e))?;
        f.write_all(bytes).map_err(|e| io(&p, "cannot write", e))?;
        f.sync_all().map_err(|e| io(&p, "cannot sync", e))?;
    }
    // The checksums of what is on disk now, written last.
    let mut sums = String::new();
    let mut names: Vec<&str> = vec![MODEL_FILE];
    names.extend(files.iter().map(|(n, _)| n.as_str()));
    names.sort_unstable();
    names.dedup();
    for n in names {
        let p = tmp.join(n);
        let bytes = std::fs::read(&p).map_err(|e| io(&p, "cannot read back", e))?;
        sums.push_str(&format!("{}  {n}\n", sha256_hex(&bytes)));
    }
    {
        let p = tmp.join(SUMS_FILE);
        let mut f = std::fs::File::create(&p).map_err(|e| io(&p, "cannot create", e))?;
        f.write_all(sums.as_bytes())
            .map_err(|e| io(&p, "cannot write", e))?;
        f.sync_all().map_err(|e| io(&p, "cannot sync", e))?;
    }
    if let Ok(d) = std::fs::File::open(&tmp) {
        let _ = d.sync_all();
    }
    if fin.exists() {
        // Only when a run is redone from an older checkpoint: the new one replaces it
        // after it is complete.
        let old = root.join(format!("{name}.old-{pid}"));
        std::fs::rename(&fin, &old).map_err(|e| io(&fin, "cannot move aside", e))?;
        std::fs::rename(&tmp, &fin).map_err(|e| io(&fin, "cannot rename into place", e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, &fin).map_err(|e| io(&fin, "cannot rename into place", e))?;
    }
    if let Ok(d) = std::fs::File::open(root) {
        let _ = d.sync_all();
    }
    write_atomic(&root.join(LATEST_FILE), format!("{name}\n").as_bytes())?;
    if keep_last > 0 {
        let all = list(root)?;
        if all.len() > keep_last {
            for (_, p) in &all[..all.len() - keep_last] {
                std::fs::remove_dir_all(p)
                    .map_err(|e| io(p, "cannot delete an old checkpoint", e))?;
            }
        }
    }
    // Leftovers of interrupted writes: by this process, or by one that no longer runs.
    if let Ok(rd) = std::fs::read_dir(root) {
        for ent in rd.flatten() {
            let n = ent.file_name().to_string_lossy().to_string();
            let Some(owner) = n
                .strip_prefix("step-")
                .and_then(|r| r.split_once(".tmp-").or_else(|| r.split_once(".old-")))
                .and_then(|(_, p)| p.parse::<u32>().ok())
            else {
                continue;
            };
            let gone = owner == pid
                || (Path::new("/proc/self").exists()
                    && !Path::new(&format!("/proc/{owner}")).exists());
            if gone {
                let _ = std::fs::remove_dir_all(ent.path());
            }
        }
    }
    Ok(fin)
}

/// JSON bytes of a checkpoint file: compact for `optimizer.json` (millions of numbers),
/// indented for the small human-readable ones.
pub(crate) fn json_bytes<T: Serialize>(v: &T, what: &str) -> Result<Vec<u8>> {
    let r = if what == OPTIMIZER_FILE {
        serde_json::to_vec(v)
    } else {
        serde_json::to_vec_pretty(v)
    };
    r.map_err(|e| Error::Msg(format!("checkpoint: cannot serialise {what}: {e}")))
}

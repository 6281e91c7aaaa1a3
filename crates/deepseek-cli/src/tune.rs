//! `deepseek tune`: AutoHyper on the main job. Each trial is a short `deepseek train` run
//! (a child process of this binary) whose final validation loss is the objective; running
//! trials report their periodic validation losses so the pruner can stop poor ones.

use clap::Args;
use deepseek::tune::{
    self, report, Direction, Distribution, MedianPruner, NopPruner, Outcome, Param, Pruner,
    SearchSpace, Study, SuccessiveHalvingPruner, Trial,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Flags of `deepseek tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Wall-clock budget in seconds for the whole search (the default-settings baseline run
    /// included); no trial starts that could not finish in it
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    time_budget: f64,
    /// Stop after this many trials (in total, over resumes) [default: as many as fit]
    #[arg(long)]
    trials: Option<usize>,
    /// Sampler: gp (Gaussian-process expected improvement), tpe or random
    #[arg(long, default_value = "gp")]
    sampler: String,
    /// Study file (JSON, saved after every trial; an existing one is continued). Trial runs
    /// go to <study dir>/trials/, the HTML report to <study>.html
    #[arg(long, value_name = "PATH", default_value = "runs/tune/study.json")]
    study: PathBuf,
    /// Training seconds per trial (the baseline run gets the same)
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    trial_seconds: f64,
    /// Trials run at once, each in its own process
    #[arg(long, default_value_t = 1)]
    n_jobs: usize,
    /// Pruner over the trials' periodic validation losses: median, halving or none
    #[arg(long, default_value = "median")]
    pruner: String,
    /// Seed of the sampler and of every training run
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training data directory (train.txt, val.txt) [default: the bundled corpus]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Compute threads per trial [default: all cores / --n-jobs]
    #[arg(long)]
    threads: Option<usize>,
    /// Characters per sequence of every run [default: train's default]
    #[arg(long)]
    seq: Option<usize>,
    /// Skip the default-settings baseline run
    #[arg(long)]
    no_baseline: bool,
}

/// The space searched: the main job's learning rate, batch size, hidden size, LSTM layers
/// and (with two layers) the dropout between them.
pub fn search_space() -> deepseek::Result<SearchSpace> {
    SearchSpace::new()
        .float("lr", 3e-4, 3e-2, true)?
        .int("batch", 8, 128, true)?
        .int("hidden", 32, 512, true)?
        .categorical("layers", vec![json!(1), json!(2)])?
        .with_param(
            Param::new("dropout", Distribution::float(0.0, 0.5, false))
                .when("layers", vec![json!(2)]),
        )
}

/// `deepseek train`'s defaults for the searched settings.
fn defaults() -> BTreeMap<String, Value> {
    [
        ("lr", json!(3e-3)),
        ("batch", json!(32)),
        ("hidden", json!(256)),
        ("layers", json!(1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn flags(p: &BTreeMap<String, Value>) -> Vec<String> {
    let mut v = Vec::new();
    for (k, x) in p {
        v.push(format!("--{k}"));
        v.push(match x.as_f64() {
            Some(f) if !x.is_i64() && !x.is_u64() => format!("{f:e}"),
            _ => x.to_string(),
        });
    }
    v
}

/// A training run in a child process.
struct Run {
    child: Child,
    out: PathBuf,
    trial: Option<Trial>,
    params: BTreeMap<String, Value>,
    started: Instant,
    reported: usize,
}

impl TuneArgs {
    fn spawn(&self, out: &Path, params: &BTreeMap<String, Value>) -> Result<Child, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let threads = self
            .threads
            .unwrap_or_else(|| (deepseek::get_num_threads() / self.n_jobs.max(1)).max(1));
        let mut c = Command::new(exe);
        c.arg("train")
            .arg("--out")
            .arg(out)
            .args(["--overwrite", "--sample-length", "0", "--eval-batches", "2"])
            .args(["--eval-batch", "32", "--checkpoint-every", "100000000"])
            .args(["--log-every", "100000000", "--keep-last", "1"])
            .args(["--minutes", &format!("{}", self.trial_seconds / 60.0)])
            .args([
                "--seed",
                &self.seed.to_string(),
                "--threads",
                &threads.to_string(),
            ])
            .args(flags(params));
        // Validate about every 2048 sequences of training.
        let batch = params.get("batch").and_then(Value::as_u64).unwrap_or(32);
        c.args(["--eval-every", &(2048 / batch).max(1).to_string()]);
        if let Some(d) = &self.data {
            c.arg("--data").arg(d);
        }
        if let Some(s) = self.seq {
            c.args(["--seq", &s.to_string()]);
        }
        std::fs::create_dir_all(out)
            .map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
        let log = std::fs::File::create(out.join("stderr.txt"))
            .map_err(|e| format!("{}: {e}", out.join("stderr.txt").display()))?;
        c.stdout(Stdio::null()).stderr(Stdio::from(log));
        c.spawn()
            .map_err(|e| format!("cannot start a training run: {e}"))
    }
}

/// The validation losses in a run's metrics file: (seconds, loss) of the periodic ones and
/// the final one.
fn val_losses(out: &Path) -> (Vec<(f64, f64)>, Option<f64>) {
    let lines = deepseek::train::read_metrics(&out.join("metrics.jsonl")).unwrap_or_default();
    let mut periodic = Vec::new();
    let mut fin = None;
    for m in lines {
        if let Some(v) = m.val_loss {
            if m.is_final {
                fin = Some(v);
            } else {
                periodic.push((m.time, v));
            }
        }
    }
    (periodic, fin)
}

/// The last lines a run wrote to its stderr.
fn stderr_tail(out: &Path) -> String {
    let s = std::fs::read_to_string(out.join("stderr.txt")).unwrap_or_default();
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Runs a child to the end (for the baseline); its final validation loss.
fn run_to_end(a: &TuneArgs, out: &Path, p: &BTreeMap<String, Value>) -> Result<f64, String> {
    let mut c = a.spawn(out, p)?;
    let st = c.wait().map_err(|e| e.to_string())?;
    match val_losses(out).1 {
        Some(v) if st.success() => Ok(v),
        _ => Err(format!("baseline run failed ({st}): {}", stderr_tail(out))),
    }
}

pub fn tune(a: TuneArgs) -> Result<(), String> {
    let e = |e: deepseek::Error| e.to_string();
    let start = Instant::now();
    let budget = Duration::from_secs_f64(a.time_budget.max(0.0));
    if a.trial_seconds.is_nan() || a.trial_seconds <= 0.0 {
        return Err(format!(
            "--trial-seconds must be positive, got {}",
            a.trial_seconds
        ));
    }
    if a.n_jobs == 0 {
        return Err("--n-jobs must be at least 1".into());
    }
    let sampler = tune::sampler_by_name(&a.sampler, Some(a.seed)).map_err(e)?;
    let pruner: Box<dyn Pruner> = match a.pruner.as_str() {
        "median" => Box::new(MedianPruner {
            n_startup_trials: 4,
            n_warmup_steps: 2,
            interval_steps: 1,
        }),
        "halving" => Box::new(SuccessiveHalvingPruner {
            min_resource: 2,
            reduction_factor: 3,
            min_early_stopping_rate: 0,
        }),
        "none" => Box::new(NopPruner),
        p => {
            return Err(format!(
                "--pruner must be median, halving or none, got {p:?}"
            ))
        }
    };
    let dir = a
        .study
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(dir.join("trials"))
        .map_err(|err| format!("{}: cannot create: {err}", dir.display()))?;
    let study = Study::new(Direction::Minimize, sampler, pruner, Some(&a.study)).map_err(e)?;
    let space = search_space().map_err(e)?;
    let done_before = study.trials().len();
    println!(
        "tune: {} sampler, {} pruner, {} trials so far in {} | budget {}s, {}s per trial, {} at once",
        a.sampler,
        a.pruner,
        done_before,
        a.study.display(),
        a.time_budget,
        a.trial_seconds,
        a.n_jobs
    );
    // The baseline: `deepseek train`'s defaults for the same time (kept for resumes).
    let base_file = dir.join("baseline.json");
    let mut baseline: Option<f64> = std::fs::read(&base_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(|v| v["trial_seconds"].as_f64() == Some(a.trial_seconds))
        .and_then(|v| v["val_loss"].as_f64());
    if baseline.is_none() && !a.no_baseline {
        println!(
            "baseline: the default settings ({}) for {}s",
            flags(&defaults()).join(" "),
            a.trial_seconds
        );
        let v = run_to_end(&a, &dir.join("trials").join("baseline"), &defaults())?;
        let rec = json!({"trial_seconds": a.trial_seconds, "val_loss": v, "params": defaults()});
        deepseek::nn::write_atomic(&base_file, rec.to_string().as_bytes()).map_err(e)?;
        println!("baseline: final val loss {v:.4}");
        baseline = Some(v);
    }
    // Trials: keep n_jobs children running; poll their metrics for pruning.
    let per_trial = Duration::from_secs_f64(a.trial_seconds * 1.25 + 5.0);
    let bucket = (a.trial_seconds / 10.0).max(1.0);
    let mut running: Vec<Run> = Vec::new();
    let mut started = done_before;
    loop {
        let can_start =
            a.trials.is_none_or(|n| started < n) && start.elapsed() + per_trial <= budget;
        if can_start && running.len() < a.n_jobs {
            let mut t = study.ask();
            let params = t.suggest_space(&space).map_err(e)?;
            let out = dir.join("trials").join(format!("trial-{}", t.number()));
            match a.spawn(&out, &params) {
                Ok(child) => running.push(Run {
                    child,
                    out,
                    trial: Some(t),
                    params,
                    started: Instant::now(),
                    reported: 0,
                }),
                Err(m) => {
                    study.tell(t.number(), Outcome::Fail(m)).map_err(e)?;
                }
            }
            started += 1;
            continue;
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        let mut i = 0;
        while i < running.len() {
            let r = &mut running[i];
            let (periodic, fin) = val_losses(&r.out);
            let mut prune = false;
            let t = r.trial.as_mut().unwrap();
            for &(secs, v) in &periodic[r.reported..] {
                t.report(v, (secs / bucket).floor() as u64).map_err(e)?;
                prune |= t.should_prune();
            }
            r.reported = periodic.len();
            let status = r.child.try_wait().map_err(|err| err.to_string())?;
            let outcome = if prune && status.is_none() {
                let _ = r.child.kill();
                let _ = r.child.wait();
                Some(Outcome::Pruned)
            } else {
                match status {
                    None => None,
                    Some(st) => Some(match fin {
                        Some(v) if st.success() => Outcome::Complete(v),
                        _ => Outcome::Fail(format!(
                            "training run exited with {st}: {}",
                            stderr_tail(&r.out)
                        )),
                    }),
                }
            };
            match outcome {
                None => i += 1,
                Some(o) => {
                    let r = running.swap_remove(i);
                    let n = r.trial.as_ref().unwrap().number();
                    let ft = study.tell(n, o).map_err(e)?;
                    let _ = std::fs::remove_dir_all(r.out.join("checkpoints"));
                    println!(
                        "trial {n}: {:?} {} after {:.0}s | {}",
                        ft.state,
                        ft.value.map_or(String::new(), |v| format!("{v:.4}")),
                        r.started.elapsed().as_secs_f64(),
                        flags(&r.params).join(" ")
                    );
                }
            }
        }
    }
    println!("\n{}", report::table(&study));
    let html = a.study.with_extension("html");
    report::write_html(&study, &html).map_err(e)?;
    match study.best_trial() {
        Some(b) => {
            let v = b.value.unwrap();
            println!(
                "best: trial {} val loss {v:.4} with {}",
                b.number,
                flags(&b.params_json()).join(" ")
            );
            if let Some(base) = baseline {
                println!(
                    "defaults ({}): val loss {base:.4} after the same {}s -> the best settings are {:.1}% {}",
                    flags(&defaults()).join(" "),
                    a.trial_seconds,
                    100.0 * (base - v).abs() / base,
                    if v < base { "lower (better)" } else { "higher (worse)" }
                );
            }
        }
        None => println!("no trial completed"),
    }
    println!("study: {} | report: {}", a.study.display(), html.display());
    Ok(())
}

//! The `deepseek` binary end to end, with a tiny model on the bundled corpus: train, refuse
//! to clobber a run, resume exactly, read a TOML config, generate, and report bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deepseek"))
}

/// A temporary directory, removed when dropped (kept when the test fails, to look at).
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("deepseek-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

fn run(args: &[&str]) -> (bool, String, String) {
    let o = bin().args(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

const TINY: &[&str] = &[
    "--hidden",
    "16",
    "--seq",
    "16",
    "--batch",
    "8",
    "--eval-every",
    "4",
    "--eval-batch",
    "64",
    "--checkpoint-every",
    "4",
    "--sample-length",
    "20",
    "--threads",
    "1",
];

fn losses(dir: &Path) -> Vec<(u64, Option<f64>, Option<f64>)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64(),
                v["val_loss"].as_f64(),
            )
        })
        .collect()
}

#[test]
fn train_resume_generate() {
    let d = tmpdir("run");
    let (a, b) = (d.join("a"), d.join("b"));
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let train = |out: &str, steps: &str, extra: &[&str]| {
        // The cosine schedule spans 8 steps in every run, also the one cut short at 4.
        let mut args = vec![
            "train",
            "--out",
            out,
            "--steps",
            steps,
            "--decay-steps",
            "8",
        ];
        args.extend_from_slice(TINY);
        args.extend_from_slice(extra);
        run(&args)
    };
    let (ok, out, err) = train(a_s, "8", &[]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("done (step limit): 8 steps"), "{out}");
    assert!(out.contains("--- sample"), "{out}");
    for f in [
        "settings.toml",
        "config.json",
        "tokenizer.json",
        "metrics.jsonl",
        "loss.svg",
        "checkpoints/latest",
        "checkpoints/step-8/model.safetensors",
    ] {
        assert!(a.join(f).is_file(), "{f}");
    }
    // A second run into the same directory is refused.
    let (ok, _, err) = train(a_s, "8", &[]);
    assert!(
        !ok && err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    // 4 steps, then resume to 8 in a new process: the same losses as straight through.
    assert!(train(b_s, "4", &[]).0);
    let (ok, out, err) = train(b_s, "8", &["--resume"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("resumed from"), "{out}");
    assert_eq!(losses(&a), losses(&b));
    // Generate from the run directory and from one checkpoint.
    let (ok, out, err) = run(&[
        "generate",
        "--checkpoint",
        a_s,
        "--prompt",
        "KING",
        "--length",
        "30",
        "--seed",
        "3",
        "--top-k",
        "5",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("KING") && out.trim_end().chars().count() >= 4,
        "{out}"
    );
    let step8 = a.join("checkpoints/step-8");
    let (ok, out2, _) = run(&[
        "generate",
        "--checkpoint",
        step8.to_str().unwrap(),
        "--prompt",
        "KING",
        "--length",
        "30",
        "--seed",
        "3",
        "--top-k",
        "5",
    ]);
    assert!(ok);
    assert_eq!(out, out2);
}

#[test]
fn toml_config_and_bad_input() {
    let d = tmpdir("config");
    let cfg = d.join("run.toml");
    std::fs::write(&cfg, "hidden = 12\nseq = 16\nbatch = 8\neval_every = 2\ncheckpoint-every = 2\nsample-length = 0\nsteps = 3\nthreads = 1\n").unwrap();
    let out = d.join("out");
    let (ok, stdout, err) = run(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "2",
    ]);
    assert!(ok, "{stdout}\n{err}");
    // The flag (--steps 2) wins over the file (steps = 3); the file's hidden = 12 is used.
    assert!(stdout.contains("done (step limit): 2 steps"), "{stdout}");
    let settings = std::fs::read_to_string(out.join("settings.toml")).unwrap();
    assert!(
        settings.contains("hidden = 12") && settings.contains("eval-every = 2"),
        "{settings}"
    );

    std::fs::write(&cfg, "hiden = 12\n").unwrap();
    let (ok, _, err) = run(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(
        !ok && err.contains("run.toml") && err.contains("hiden"),
        "{err}"
    );

    let empty = d.join("data");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, _, err) = run(&[
        "train",
        "--data",
        empty.to_str().unwrap(),
        "--out",
        d.join("x").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("train.txt") && err.contains("does not exist"),
        "{err}"
    );
    std::fs::write(empty.join("train.txt"), "").unwrap();
    std::fs::write(empty.join("val.txt"), "abc").unwrap();
    let (ok, _, err) = run(&[
        "train",
        "--data",
        empty.to_str().unwrap(),
        "--out",
        d.join("x").to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("train.txt") && err.contains("empty"),
        "{err}"
    );

    let (ok, _, err) = run(&["train", "--batch", "0"]);
    assert!(
        !ok && err.contains("--batch must be a positive integer"),
        "{err}"
    );
    let (ok, _, err) = run(&[
        "generate",
        "--checkpoint",
        d.join("nothing").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("nothing"), "{err}");
}

#[test]
fn viz_run_page() {
    let d = tmpdir("viz");
    let run_dir = d.join("run");
    let r = run_dir.to_str().unwrap();
    let mut args = vec!["train", "--out", r, "--steps", "6"];
    args.extend_from_slice(TINY);
    let (ok, out, err) = run(&args);
    assert!(ok, "{out}\n{err}");
    // The trainer records the gradient norm (before clipping) of every step.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<_> = lines.iter().filter(|l| l.get("final").is_none()).collect();
    assert_eq!(steps.len(), 6);
    for l in &steps {
        let g = l["grad_norm"].as_f64().unwrap();
        assert!(g.is_finite() && g > 0.0, "{l}");
    }
    let (ok, out, err) = run(&["viz", r]);
    assert!(ok, "{out}\n{err}");
    let page = std::fs::read_to_string(run_dir.join("viz.html")).unwrap();
    let tag = "id=\"viz-data\">";
    let start = page.find(tag).unwrap() + tag.len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(data["steps"], serde_json::json!([1, 2, 3, 4, 5, 6]));
    for (i, l) in steps.iter().enumerate() {
        assert_eq!(data["grad_norm"][i], l["grad_norm"]);
        assert_eq!(data["loss"][i], l["loss"]);
        assert_eq!(data["lr"][i], l["lr"]);
    }
    assert_eq!(data["val"].as_array().unwrap().len(), 1, "{}", data["val"]);
    // --out, and clear errors.
    let other = d.join("page.html");
    assert!(run(&["viz", r, "--out", other.to_str().unwrap()]).0);
    assert!(other.is_file());
    let (ok, _, err) = run(&["viz", d.join("nope").to_str().unwrap()]);
    assert!(!ok && err.contains("no such run directory"), "{err}");
    let (ok, _, err) = run(&["viz", d.to_str().unwrap()]);
    assert!(!ok && err.contains("has no metrics.jsonl"), "{err}");
    let (ok, _, err) = run(&["viz", r, "--out", d.join("x/y.html").to_str().unwrap()]);
    assert!(
        !ok && err.contains("does not exist") && !err.contains("panicked"),
        "{err}"
    );
}

//! What protects a user's work: checksummed checkpoints (a flipped bit is an error naming the
//! file), config sizes checked against the weights before anything is allocated, a mutation
//! fuzz of checkpoint directories through `generate` and `train --resume` (never an abort),
//! Ctrl-C / SIGTERM finishing the step and checkpointing, and clear errors for common
//! mistakes.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let d = std::env::temp_dir().join(format!(
        "deepseek-robust-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

/// (exit code, stdout, stderr); the code is `None` when a signal ended the process.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = bin().args(args).output().unwrap();
    (
        o.status.code(),
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
    "1000",
    "--eval-batch",
    "64",
    "--eval-batches",
    "1",
    "--sample-length",
    "0",
    "--threads",
    "1",
];

fn train(out: &Path, steps: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["train", "--out", out.to_str().unwrap(), "--steps", steps];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    run(&args)
}

fn generate(ck: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec![
        "generate",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--length",
        "10",
        "--seed",
        "1",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn checksums_config_bounds_and_clear_errors() {
    let d = tmpdir("sums");
    let run_dir = d.join("r");
    let (code, out, err) = train(&run_dir, "4", &["--checkpoint-every", "2"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let step = run_dir.join("checkpoints/step-4");
    let sums = std::fs::read_to_string(step.join("SHA256SUMS")).unwrap();
    for f in [
        "model.safetensors",
        "optimizer.json",
        "trainer.json",
        "config.json",
    ] {
        assert!(sums.contains(&format!("  {f}\n")), "{sums}");
    }
    let (code, good, err) = generate(&run_dir, &[]);
    assert_eq!(code, Some(0), "{err}");

    // One flipped bit in the tensor data (the header stays valid): refused, naming the file.
    let model = step.join("model.safetensors");
    let orig = std::fs::read(&model).unwrap();
    let mut bad = orig.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x10;
    std::fs::write(&model, &bad).unwrap();
    let (code, _, err) = generate(&run_dir, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("model.safetensors") && err.contains("checksum mismatch"),
        "{err}"
    );
    let (code, _, err) = train(&run_dir, "6", &["--checkpoint-every", "2", "--resume"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("model.safetensors") && err.contains("checksum mismatch"),
        "{err}"
    );
    // --no-verify loads a file edited on purpose.
    let (code, _, err) = generate(&run_dir, &["--no-verify"]);
    assert_eq!(code, Some(0), "{err}");
    std::fs::write(&model, &orig).unwrap();
    let (code, again, _) = generate(&run_dir, &[]);
    assert_eq!((code, again), (Some(0), good.clone()));

    // A deleted SHA256SUMS is noticed (trainer.json says there was one).
    let sums_path = step.join("SHA256SUMS");
    std::fs::rename(&sums_path, d.join("sums")).unwrap();
    let (code, _, err) = generate(&step, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("SHA256SUMS") && err.contains("missing"),
        "{err}"
    );
    std::fs::rename(d.join("sums"), &sums_path).unwrap();

    // Absurd sizes in config.json: an error naming it, before anything is allocated.
    let cfg_path = step.join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    for (key, v) in [
        ("num_layers", "4294967296"),
        ("hidden_size", "1099511627776"),
        ("embedding_dim", "18446744073709551615"),
        ("vocab_size", "1000000000000"),
        ("num_layers", "2"),
    ] {
        let v0: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        let mut v1 = v0.clone();
        v1[key] = serde_json::from_str(v).unwrap();
        std::fs::write(&cfg_path, serde_json::to_string(&v1).unwrap()).unwrap();
        let (code, _, err) = generate(&step, &["--no-verify"]);
        assert_eq!(code, Some(1), "{key}={v}: {err}");
        assert!(err.contains("config.json"), "{key}={v}: {err}");
    }
    std::fs::write(&cfg_path, &cfg).unwrap();

    // The weights file itself names its checkpoint.
    let (code, out, err) = generate(&model, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, good);
    // Other files are not checkpoints; a file as --out is not a run directory.
    let (code, _, err) = generate(&step.join("trainer.json"), &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is a file"), "{err}");
    let (code, _, err) = train(&model, "4", &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is a file"), "{err}");
    // Negative numbers reach the real check.
    let (code, _, err) = train(&d.join("neg"), "4", &["--lr", "-1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--lr must be positive, got -1"), "{err}");
    // --keep-last 0 keeps every checkpoint.
    let all = d.join("all");
    let (code, _, err) = train(&all, "4", &["--checkpoint-every", "1", "--keep-last", "0"]);
    assert_eq!(code, Some(0), "{err}");
    for s in 1..=4 {
        assert!(
            all.join(format!("checkpoints/step-{s}")).is_dir(),
            "step {s}"
        );
    }
    // --help states the real default learning rate.
    let (_, help, _) = run(&["--help"]);
    assert!(help.contains("Adam 3e-3"), "{help}");
}

/// A small deterministic generator for the fuzz (no dependency needed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// True when the directories' files differ (in content, or one is missing).
fn differs(a: &Path, b: &Path) -> bool {
    let names = |d: &Path| -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let (na, nb) = (names(a), names(b));
    na != nb
        || na
            .iter()
            .any(|n| std::fs::read(a.join(n)).ok() != std::fs::read(b.join(n)).ok())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Mutates one file of a checkpoint directory: bit flips, truncation, a deletion, garbage,
/// or (for JSON) a number replaced by an extreme one.
fn mutate(dir: &Path, rng: &mut Lcg) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let f = files[rng.below(files.len())].clone();
    let name = f.file_name().unwrap().to_string_lossy().to_string();
    let mut b = std::fs::read(&f).unwrap();
    let what = match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            "bit flips"
        }
        1 => {
            b.truncate(rng.below(b.len().max(1)));
            "truncated"
        }
        2 => {
            std::fs::remove_file(&f).unwrap();
            return format!("{name}: deleted");
        }
        3 => {
            b = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            "garbage"
        }
        4 if name.ends_with(".json") => {
            let text = String::from_utf8_lossy(&b).to_string();
            let big = [
                "4294967296",
                "1099511627776",
                "18446744073709551615",
                "-1",
                "0",
                "1e308",
                "99999999999999999999999",
            ][rng.below(7)];
            // Replace the k-th run of digits.
            let runs: Vec<(usize, usize)> = {
                let mut v = Vec::new();
                let bytes = text.as_bytes();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i].is_ascii_digit() {
                        let s = i;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                        v.push((s, i));
                    } else {
                        i += 1;
                    }
                }
                v
            };
            if runs.is_empty() {
                return format!("{name}: unchanged");
            }
            let (s, e) = runs[rng.below(runs.len())];
            b = format!("{}{big}{}", &text[..s], &text[e..]).into_bytes();
            "number replaced"
        }
        _ => {
            // The safetensors header length, or a byte of the header.
            if b.len() > 8 {
                let i = rng.below(8.min(b.len()));
                b[i] = rng.next() as u8;
            }
            "header byte"
        }
    };
    std::fs::write(&f, &b).unwrap();
    format!("{name}: {what}")
}

#[test]
fn mutated_checkpoints_never_abort() {
    let d = tmpdir("fuzz");
    let run_dir = d.join("r");
    let (code, out, err) = train(&run_dir, "2", &["--checkpoint-every", "2"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let step = run_dir.join("checkpoints/step-2");
    let mut rng = Lcg(0x5eed);
    let cases = 60;
    for i in 0..cases {
        let case = d.join(format!("case-{i}"));
        copy_dir(&step, &case);
        let what = mutate(&case, &mut rng);
        let changed = differs(&step, &case);
        // Half the cases skip the checksums, so the loaders behind them see the damage.
        let extra: &[&str] = if i % 2 == 0 { &[] } else { &["--no-verify"] };
        let (code, _, err) = generate(&case, extra);
        assert!(
            matches!(code, Some(0) | Some(1)),
            "case {i} ({what}, {extra:?}): exit {code:?}\n{err}"
        );
        if code == Some(1) {
            assert!(err.starts_with("error: "), "case {i} ({what}): {err}");
        }
        if i % 2 == 0 {
            // With checksums on, any change to a listed file is caught.
            assert!(
                code == Some(1) || !changed,
                "case {i} ({what}) was accepted"
            );
        }
        let _ = std::fs::remove_dir_all(&case);
    }
    // --resume over a mutated newest checkpoint: an error or a run, never an abort.
    for i in 0..6 {
        let r = d.join(format!("resume-{i}"));
        copy_dir(&run_dir, &r);
        copy_dir(&step, &r.join("checkpoints/step-2"));
        let what = mutate(&r.join("checkpoints/step-2"), &mut rng);
        let extra: &[&str] = if i % 2 == 0 {
            &["--resume", "--checkpoint-every", "2"]
        } else {
            &["--resume", "--checkpoint-every", "2", "--no-verify"]
        };
        let (code, _, err) = train(&r, "3", extra);
        assert!(
            matches!(code, Some(0) | Some(1)),
            "resume {i} ({what}): exit {code:?}\n{err}"
        );
        let _ = std::fs::remove_dir_all(&r);
    }
}

/// Starts a long tiny run and waits until it has done a few steps.
fn start_long_run(out: &Path) -> std::process::Child {
    let mut args = vec![
        "train",
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "1000000",
        "--decay-steps",
        "1000000",
        "--minutes",
        "5",
        "--checkpoint-every",
        "100000",
    ];
    args.extend_from_slice(TINY);
    let child = bin()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = out.join("metrics.jsonl");
    let t0 = Instant::now();
    loop {
        let n = std::fs::read_to_string(&metrics)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if n >= 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn last_step(out: &Path) -> u64 {
    let s = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let l = s.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(l).unwrap();
    v["step"].as_u64().unwrap()
}

fn signal(child: &std::process::Child, sig: &str) {
    let s = if sig == "INT" {
        libc::SIGINT
    } else {
        libc::SIGTERM
    };
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped yet.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, s) };
    assert_eq!(r, 0, "kill SIG{sig} failed");
}

#[test]
fn ctrl_c_and_sigterm_finish_the_step_and_checkpoint() {
    let d = tmpdir("signals");
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let out = d.join(sig);
        let mut child = start_long_run(&out);
        signal(&child, sig);
        let mut stdout = String::new();
        let mut stderr = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(code),
            "SIG{sig}: {status:?} (signal {:?})\n{stdout}\n{stderr}",
            status.signal()
        );
        assert!(stderr.contains("finishing the current step"), "{stderr}");
        assert!(stdout.contains("interrupted"), "{stdout}");
        // The checkpoint is of the last finished step, and complete.
        let n = last_step(&out);
        let ck = out.join(format!("checkpoints/step-{n}"));
        assert!(
            ck.join("SHA256SUMS").is_file(),
            "{}: {stdout}",
            ck.display()
        );
        assert_eq!(
            std::fs::read_to_string(out.join("checkpoints/latest")).unwrap(),
            format!("step-{n}\n")
        );
        // And the run continues from it.
        let (c, o, e) = train(
            &out,
            &(n + 2).to_string(),
            &[
                "--resume",
                "--checkpoint-every",
                "100000",
                "--decay-steps",
                "1000000",
            ],
        );
        assert_eq!(c, Some(0), "{o}\n{e}");
        assert!(o.contains(&format!("resumed from {}", ck.display())), "{o}");
        assert_eq!(last_step(&out), n + 2);
    }
}

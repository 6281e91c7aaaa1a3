//! `deepseek train --dp-epsilon E` end to end: DP-SGD on the bundled corpus reports the ε it
//! spent (equal to the RDP accountant's value for the steps taken, within the target),
//! records its plan, guards resumes, and refuses bad privacy settings clearly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_deepseek"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deepseek-dp-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn train(out: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "train",
        "--out",
        out.to_str().unwrap(),
        "--hidden",
        "16",
        "--seq",
        "16",
        "--batch",
        "8",
        "--eval-every",
        "3",
        "--eval-batch",
        "64",
        "--checkpoint-every",
        "3",
        "--sample-length",
        "10",
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn dp_training_reports_its_epsilon() {
    let d = tmpdir("run");
    let out = d.join("a");
    let (ok, so, se) = train(
        &out,
        &["--steps", "6", "--dp-epsilon", "8", "--dp-delta", "1e-6"],
    );
    assert!(ok, "{so}\n{se}");
    assert!(
        so.contains("DP-SGD: target ε = 8 at δ = 0.000001 over 6 steps"),
        "{so}"
    );
    assert!(so.contains("done (step limit): 6 steps"), "{so}");
    let line = so
        .lines()
        .find(|l| l.starts_with("privacy: ε = "))
        .expect(&so);
    let eps: f64 = line["privacy: ε = ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(eps <= 8.0 && eps > 7.9, "{line}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("privacy.json")).unwrap()).unwrap();
    assert_eq!(plan["steps"].as_u64(), Some(6));
    assert_eq!(plan["accountant"].as_str(), Some("rdp"));
    assert_eq!(plan["example_chars"].as_u64(), Some(17));
    let (sigma, q) = (
        plan["noise_multiplier"].as_f64().unwrap(),
        plan["sample_rate"].as_f64().unwrap(),
    );
    // The accountant's ε for what the run did.
    let want = deepseek::privacy::rdp::epsilon(q, sigma, 6, 1e-6).unwrap();
    assert!((plan["epsilon"].as_f64().unwrap() - want).abs() < 1e-12);
    assert!((eps - want).abs() < 1e-4);
    let n = plan["examples"].as_f64().unwrap();
    assert!((q - 8.0 / n).abs() < 1e-15);
    // Training ran on the DP step: 6 steps with a finite loss each (Poisson batches of ~8).
    let steps = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = steps
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64())
        .collect();
    assert!(
        losses.len() >= 6 && losses.iter().all(|l| l.is_finite()),
        "{steps}"
    );
    let settings = std::fs::read_to_string(out.join("settings.toml")).unwrap();
    assert!(
        settings.contains("dp-epsilon = 8.0") && settings.contains("clip = 0.0"),
        "{settings}"
    );

    // Resuming needs the same privacy plan.
    let (ok, _, se) = train(&out, &["--steps", "6", "--resume"]);
    assert!(!ok && se.contains("trained with DP-SGD"), "{se}");
    let (ok, _, se) = train(
        &out,
        &[
            "--steps",
            "6",
            "--resume",
            "--dp-epsilon",
            "4",
            "--dp-delta",
            "1e-6",
        ],
    );
    assert!(!ok && se.contains("Resume with the run's own"), "{se}");
    let (ok, so, se) = train(
        &out,
        &[
            "--steps",
            "6",
            "--resume",
            "--dp-epsilon",
            "8",
            "--dp-delta",
            "1e-6",
        ],
    );
    assert!(ok && so.contains("privacy: ε = "), "{so}\n{se}");
    // A run trained without DP cannot continue under DP.
    let b = d.join("b");
    let (ok, so, se) = train(&b, &["--steps", "2"]);
    assert!(ok, "{so}\n{se}");
    let (ok, _, se) = train(&b, &["--steps", "4", "--resume", "--dp-epsilon", "8"]);
    assert!(!ok && se.contains("trained without DP-SGD"), "{se}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn dp_bad_input() {
    let d = tmpdir("bad");
    let out = d.join("x");
    // 100 characters: 5 windows of 17, fewer than a batch of 8.
    let tiny = d.join("tiny");
    std::fs::create_dir_all(&tiny).unwrap();
    let text: String = "the quick brown fox jumps over the lazy dog. ".repeat(3)[..100].into();
    std::fs::write(tiny.join("train.txt"), &text).unwrap();
    std::fs::write(tiny.join("val.txt"), &text).unwrap();
    // 1700 characters: 100 windows, q = 0.08: even σ = 1024 leaves ε above 1e-4.
    let small = d.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let text: String = "the quick brown fox jumps over the lazy dog. ".repeat(40)[..1700].into();
    std::fs::write(small.join("train.txt"), &text).unwrap();
    std::fs::write(small.join("val.txt"), &text).unwrap();
    for (args, want) in [
        (
            vec!["--dp-epsilon", "0"],
            "--dp-epsilon must be a finite number > 0",
        ),
        (
            vec!["--dp-epsilon", "-1"],
            "--dp-epsilon must be a finite number > 0",
        ),
        (
            vec!["--dp-epsilon", "inf"],
            "--dp-epsilon must be a finite number > 0",
        ),
        (
            vec!["--dp-epsilon", "3", "--dp-delta", "1.5"],
            "--dp-delta must be in (0, 1)",
        ),
        (
            vec!["--dp-epsilon", "3", "--dp-delta", "0"],
            "--dp-delta must be in (0, 1)",
        ),
        (vec!["--dp-delta", "1e-5"], "need --dp-epsilon"),
        (vec!["--dp-max-grad-norm", "1"], "need --dp-epsilon"),
        (
            vec!["--dp-epsilon", "3", "--dp-max-grad-norm", "0"],
            "--dp-max-grad-norm must be",
        ),
        (
            vec!["--dp-epsilon", "3", "--accumulate", "2"],
            "--accumulate must be 1",
        ),
        (
            vec![
                "--dp-epsilon",
                "0.0001",
                "--steps",
                "2000",
                "--data",
                small.to_str().unwrap(),
            ],
            "cannot be reached",
        ),
        (
            vec!["--dp-epsilon", "3", "--data", tiny.to_str().unwrap()],
            "fewer than the expected batch",
        ),
    ] {
        let mut a = vec!["--minutes", "0.1"];
        a.extend(args.iter());
        let (ok, so, se) = train(&out, &a);
        assert!(!ok, "{args:?} should fail:\n{so}");
        assert!(se.contains(want), "{args:?}: expected `{want}` in:\n{se}");
        assert!(!se.contains("panicked"), "{se}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

//! `deepseek tune` end to end on a tiny corpus: trials as child training runs, the study
//! file continued by a second invocation, the baseline comparison, the report, bad input.

use std::path::PathBuf;
use std::process::Command;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deepseek-tune-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tune(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_deepseek"))
        .arg("tune")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn tune_runs_trials_resumes_and_compares_with_the_defaults() {
    let d = tmpdir("run");
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/shakespeare/train.txt"),
    )
    .unwrap();
    let chars: Vec<char> = text.chars().collect();
    std::fs::write(
        data.join("train.txt"),
        chars[..30000].iter().collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        data.join("val.txt"),
        chars[30000..33000].iter().collect::<String>(),
    )
    .unwrap();
    let study = d.join("s").join("study.json");
    let (study_s, data_s) = (study.to_str().unwrap(), data.to_str().unwrap());
    let common = [
        "--study",
        study_s,
        "--data",
        data_s,
        "--trial-seconds",
        "1.5",
        "--seq",
        "32",
        "--threads",
        "1",
        "--sampler",
        "tpe",
        "--time-budget",
        "300",
    ];
    let mut args = common.to_vec();
    args.extend(["--trials", "3", "--n-jobs", "2"]);
    let (ok, out, err) = tune(&args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("baseline: final val loss"), "{out}");
    assert!(
        out.contains("best: trial") && out.contains("defaults (--batch 32"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&study).unwrap()).unwrap();
    let trials = v["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3);
    for t in trials {
        let p = &t["params"];
        assert!(p["lr"].as_f64().unwrap() >= 3e-4 && p["hidden"].as_i64().unwrap() >= 32);
        assert_eq!(p.get("dropout").is_some(), p["layers"] == 2, "{p}");
        if t["state"] == "COMPLETE" {
            assert!(t["value"].as_f64().unwrap() > 0.0);
        }
    }
    assert!(study.with_extension("html").is_file());
    // A second invocation continues the study (and reuses the baseline).
    let mut args = common.to_vec();
    args.extend(["--trials", "4"]);
    let (ok, out, err) = tune(&args);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("3 trials so far") && !out.contains("baseline: the default"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&study).unwrap()).unwrap();
    assert_eq!(v["trials"].as_array().unwrap().len(), 4);
    // Bad input.
    let (ok, _, err) = tune(&["--study", study_s, "--sampler", "bayes"]);
    assert!(!ok && err.contains("unknown sampler"), "{err}");
    std::fs::write(&study, "{ not json").unwrap();
    let (ok, _, err) = tune(&common);
    assert!(
        !ok && err.contains(study_s) && err.contains("corrupted"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

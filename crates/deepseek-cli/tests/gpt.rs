//! `deepseek train --model gpt` end to end with a tiny GPT on the bundled corpus: it trains
//! (the loss falls), checkpoints, resumes exactly (4 + 4 steps in two processes give the
//! losses of 8 straight), generates from its checkpoint, its weights load into the same
//! model written with PyTorch modules (same loss on a batch), and bad flags are errors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deepseek"))
}

/// A temporary directory, removed when dropped (kept when the test fails, to look at).
struct TmpDir(PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("deepseek-gpt-test-{}-{name}", std::process::id()));
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

const TINY_GPT: &[&str] = &[
    "--model",
    "gpt",
    "--hidden",
    "32",
    "--heads",
    "4",
    "--layers",
    "2",
    "--seq",
    "16",
    "--batch",
    "8",
    "--lr",
    "0.003",
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

fn train(out: &Path, steps: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "train",
        "--out",
        out.to_str().unwrap(),
        "--steps",
        steps,
        "--decay-steps",
        "8",
    ];
    args.extend_from_slice(TINY_GPT);
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn gpt_trains_checkpoints_resumes_exactly_and_generates() {
    let d = tmpdir("run");
    let (a, b) = (d.0.join("a"), d.0.join("b"));
    let (ok, out, err) = train(&a, "8", &[]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("GPT: vocab"), "{out}");
    assert!(out.contains("done (step limit): 8 steps"), "{out}");
    assert!(out.contains("--- sample"), "{out}");
    for f in [
        "settings.toml",
        "config.json",
        "tokenizer.json",
        "metrics.jsonl",
        "checkpoints/step-4/model.safetensors",
        "checkpoints/step-8/model.safetensors",
        "checkpoints/step-8/optimizer.json",
    ] {
        assert!(a.join(f).is_file(), "{f}");
    }
    let cfg = std::fs::read_to_string(a.join("config.json")).unwrap();
    assert!(cfg.contains("\"model_type\": \"char_gpt\""), "{cfg}");
    // It learns: the training loss of the last step is below the first one's.
    let l = losses(&a);
    let train_losses: Vec<f64> = l.iter().filter_map(|r| r.1).collect();
    assert!(
        train_losses.last().unwrap() < train_losses.first().unwrap(),
        "{train_losses:?}"
    );
    // 4 steps, then resume to 8 in a new process: the same losses as straight through.
    assert!(train(&b, "4", &[]).0);
    let (ok, out, err) = train(&b, "8", &["--resume"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("resumed from"), "{out}");
    assert_eq!(losses(&a), losses(&b));
    let wa = std::fs::read(a.join("checkpoints/step-8/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("checkpoints/step-8/model.safetensors")).unwrap();
    assert!(wa == wb, "resumed weights differ from the straight run's");
    // Resuming as the other model is refused with the reason.
    let c = d.0.join("c");
    assert!(train(&c, "4", &[]).0);
    let mut args = vec![
        "train",
        "--out",
        c.to_str().unwrap(),
        "--steps",
        "8",
        "--resume",
        "--hidden",
        "32",
        "--seq",
        "16",
        "--batch",
        "8",
        "--threads",
        "1",
    ];
    args.push("--sample-length");
    args.push("0");
    let (ok, _, err) = run(&args);
    assert!(!ok && err.contains("cannot resume"), "{err}");
    // Generate from the run directory (the GPT is recognised by its config.json).
    let (ok, out, err) = run(&[
        "generate",
        "--checkpoint",
        a.to_str().unwrap(),
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
        out.starts_with("KING") && out.chars().count() == 4 + 30 + 1,
        "{out}"
    );
    // Same seed, same text.
    let (_, out2, _) = run(&[
        "generate",
        "--checkpoint",
        a.to_str().unwrap(),
        "--prompt",
        "KING",
        "--length",
        "30",
        "--seed",
        "3",
        "--top-k",
        "5",
    ]);
    assert_eq!(out, out2);
    // The reference: the checkpoint loaded into the same model written with PyTorch
    // modules (strict load_state_dict), greedy continuation equal to deepseek's.
    let (ok, ours, err) = run(&[
        "generate",
        "--checkpoint",
        a.to_str().unwrap(),
        "--prompt",
        "ROMEO:",
        "--length",
        "40",
        "--temperature",
        "0",
    ]);
    assert!(ok, "{err}");
    // scripts/test.sh installs PyTorch and sets DEEPSEEK_PYTHON and DEEPSEEK_REQUIRE_MODELS
    // (then a missing torch fails this test instead of skipping the comparison).
    let py = std::env::var("DEEPSEEK_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_torch = Command::new(&py)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        assert!(
            std::env::var("DEEPSEEK_REQUIRE_MODELS").is_err(),
            "{py} cannot import torch (scripts/test.sh installs it)"
        );
        eprintln!("note: {py} has no torch; skipped the PyTorch comparison (run scripts/test.sh)");
        return;
    }
    let o = Command::new(&py)
        .arg("-c")
        .arg(TORCH_GREEDY)
        .arg(a.join("checkpoints/step-8"))
        .arg(a.join("tokenizer.json"))
        .arg("ROMEO:")
        .arg("40")
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ours.trim_end_matches('\n'), theirs.trim_end_matches('\n'));
}

/// PyTorch reference: reads model.safetensors (header + raw little-endian f32, parsed with
/// numpy), builds the GPT from torch.nn modules, loads the weights strictly and continues
/// the prompt greedily with the same context window.
const TORCH_GREEDY: &str = r#"
import json, struct, sys
import numpy as np
import torch
ck, tokp, prompt, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = json.load(open(ck + "/config.json")) if __import__("os").path.exists(ck + "/config.json") else None
raw = open(ck + "/model.safetensors", "rb").read()
hl = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + hl])
sd = {}
for k, v in head.items():
    if k == "__metadata__":
        continue
    assert v["dtype"] == "F32", v
    a, b = v["data_offsets"]
    sd[k] = torch.from_numpy(np.frombuffer(raw[8 + hl + a:8 + hl + b], dtype="<f4").reshape(v["shape"]).copy())
if cfg is None:
    import pathlib
    cfg = json.load(open(pathlib.Path(tokp).parent / "config.json"))
assert cfg["model_type"] == "char_gpt"
V, E, L, H, T = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["block_size"]

class Gpt(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = torch.nn.Embedding(V, E)
        self.pos_emb = torch.nn.Embedding(T, E)
        self.blocks = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(E, H, 4 * E, 0.0, activation="gelu",
                                             batch_first=True, norm_first=True)
            for _ in range(L))
        self.norm = torch.nn.LayerNorm(E)
        self.head = torch.nn.Linear(E, V)

    def forward(self, x):
        t = x.shape[1]
        h = self.tok_emb(x) + self.pos_emb(torch.arange(t))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(t)
        for b in self.blocks:
            h = b(h, src_mask=mask, is_causal=True)
        return self.head(self.norm(h))

m = Gpt().eval()
m.load_state_dict(sd, strict=True)
chars = json.load(open(tokp))
ids = [chars.index(c) for c in prompt]
with torch.no_grad():
    for _ in range(n):
        x = torch.tensor([ids[-T:]])
        ids.append(int(m(x)[0, -1].argmax()))
sys.stdout.write(prompt + "".join(chars[i] for i in ids[len(prompt):]) + "\n")
"#;

#[test]
fn gpt_flags_are_checked() {
    let d = tmpdir("flags");
    let out = d.0.join("x");
    for (extra, want) in [
        (&["--heads", "5"][..], "divisible by --heads"),
        (
            &["--embed", "16"][..],
            "--embed applies to --model lstm only",
        ),
        (&["--heads", "0"][..], "--heads must be a positive integer"),
    ] {
        let mut args = vec!["train", "--model", "gpt", "--out", out.to_str().unwrap()];
        args.extend_from_slice(&["--hidden", "32", "--steps", "2"]);
        args.extend_from_slice(extra);
        let (ok, _, err) = run(&args);
        assert!(!ok && err.contains(want), "{extra:?}: {err}");
    }
    let (ok, _, err) = run(&["train", "--model", "rnn", "--out", out.to_str().unwrap()]);
    assert!(
        !ok && err.contains("--model must be `lstm` or `gpt`"),
        "{err}"
    );
    let (ok, _, err) = run(&["train", "--heads", "2", "--out", out.to_str().unwrap()]);
    assert!(
        !ok && err.contains("--heads applies to --model gpt only"),
        "{err}"
    );
}

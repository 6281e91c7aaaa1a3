//! The Trainer: gradient accumulation, exact resume, atomic and validated checkpoints,
//! keep_last, early stopping, non-finite losses, metrics, generation from a checkpoint and
//! bad input. Tiny models, few steps, temporary directories.

#![allow(clippy::cloned_ref_to_slice_refs)] // test tables read better with `&[x.clone()]`

use deepseek::data::{CharTokenizer, DataLoader, DataLoaderConfig, TensorDataset};
use deepseek::nn::{functional as F, Forward, Linear, Module};
use deepseek::optim::{Adam, AdamConfig, Sgd, SgdConfig, StepLR};
use deepseek::prelude::*;
use deepseek::tensor::Generator;
use deepseek::train::{
    checkpoint, load_text, read_metrics, BatchSource, Callback, Control, SampleOptions, StopReason,
    TextBatches, TextGenerator, TextGeneratorConfig, Trainer, TrainerBuilder, TrainerState,
};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The global RNG is process-wide: tests that train run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
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
    let d = std::env::temp_dir().join(format!("deepseek-train-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

const TEXT: &str = "to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and arrows";

fn corpus() -> (CharTokenizer, Vec<i64>) {
    let tok = CharTokenizer::fit(TEXT);
    let ids = tok.encode(TEXT).unwrap();
    (tok, ids)
}

/// Training data: 3 batches of 4 windows of 8 per epoch, shuffled with a per-epoch offset.
fn text_data() -> (TextBatches, TextBatches, CharTokenizer) {
    let (tok, ids) = corpus();
    let train = TextBatches::shuffled(ids.clone(), 8, 4, 7).unwrap();
    assert_eq!(train.batches_per_epoch(), 3);
    let val = TextBatches::new(ids[..60].to_vec(), 8, 4).unwrap();
    (train, val, tok)
}

/// A 2-layer TextGenerator with dropout (so training draws from the global RNG), Adam
/// with a StepLR schedule, clipping, validation every 3 steps.
fn textgen_trainer(
    dir: &Path,
    init_seed: u64,
    hidden: usize,
    configure: impl FnOnce(TrainerBuilder<TextGenerator>) -> TrainerBuilder<TextGenerator>,
) -> Trainer<TextGenerator> {
    let (tok, _) = corpus();
    deepseek::manual_seed(init_seed);
    let cfg = TextGeneratorConfig {
        vocab_size: tok.vocab_size(),
        embedding_dim: 8,
        hidden_size: hidden,
        num_layers: 2,
        dropout: 0.2,
    };
    let model = TextGenerator::new(cfg.clone()).unwrap();
    let mut opt = Adam::new(
        model.parameters(),
        AdamConfig {
            lr: 1e-2,
            ..Default::default()
        },
    )
    .unwrap();
    let sched = StepLR::new(&mut opt, 4, 0.7).unwrap();
    let b = Trainer::builder(model)
        .optimizer(Box::new(opt))
        .scheduler(Box::new(sched))
        .loss(|m: &TextGenerator, b: &[Tensor]| m.loss(b))
        .clip_grad_norm(1.0)
        .eval_every(3)
        .out_dir(dir)
        .progress(false)
        .checkpoint_file("config.json", serde_json::to_vec(&cfg).unwrap())
        .checkpoint_file("tokenizer.json", tok.to_json());
    configure(b).build().unwrap()
}

fn params_of<M: Module>(m: &M) -> Vec<Vec<f32>> {
    m.parameters()
        .iter()
        .map(|p| p.to_vec::<f32>().unwrap())
        .collect()
}

#[test]
fn gradient_accumulation_equals_the_combined_batch() {
    let _l = lock();
    #[derive(deepseek::nn::Module)]
    struct Net {
        fc: Linear,
    }
    deepseek::manual_seed(3);
    let x = Tensor::randn(&[16, 5], DType::F32).unwrap();
    let y = Tensor::randn(&[16, 2], DType::F32).unwrap();
    let run = |batch: usize, k: usize| {
        deepseek::manual_seed(11);
        let net = Net {
            fc: Linear::new(5, 2, true).unwrap(),
        };
        let opt = Sgd::new(
            net.parameters(),
            SgdConfig {
                lr: 0.5,
                ..Default::default()
            },
        )
        .unwrap();
        let dl = DataLoader::new(
            TensorDataset::new(vec![x.clone(), y.clone()]).unwrap(),
            DataLoaderConfig {
                batch_size: batch,
                ..Default::default()
            },
        )
        .unwrap();
        let mut t = Trainer::builder(net)
            .optimizer(Box::new(opt))
            .loss(|m: &Net, b: &[Tensor]| F::mse_loss(&m.fc.forward(&b[0])?, &b[1], "mean"))
            .gradient_accumulation_steps(k)
            .max_steps(1)
            .progress(false)
            .build()
            .unwrap();
        let r = t.fit(&dl, None).unwrap();
        (params_of(t.model()), r.train_losses[0].unwrap())
    };
    let (p1, l1) = run(16, 1);
    let (p2, l2) = run(8, 2);
    assert!((l1 - l2).abs() < 1e-6, "loss {l1} vs {l2}");
    let before = {
        deepseek::manual_seed(11);
        params_of(&Net {
            fc: Linear::new(5, 2, true).unwrap(),
        })
    };
    assert_ne!(p1, before, "the step changed nothing");
    for (a, b) in p1.iter().flatten().zip(p2.iter().flatten()) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn resume_reproduces_the_uninterrupted_loss_curve_exactly() {
    let _l = lock();
    let (train, val, _) = text_data();
    // 10 steps of 2 micro-batches cross several epochs; the checkpoint at 5 is mid-epoch.
    let straight_dir = tmpdir("straight");
    let mut a = textgen_trainer(&straight_dir, 0, 16, |b| {
        b.gradient_accumulation_steps(2)
            .max_steps(10)
            .checkpoint_every(5)
    });
    let ra = a.fit(&train, Some(&val)).unwrap();
    assert_eq!(ra.steps, 10);
    assert_eq!(ra.val_losses.len(), 3);

    let dir = tmpdir("resumed");
    {
        let mut b = textgen_trainer(&dir, 0, 16, |b| {
            b.gradient_accumulation_steps(2)
                .max_steps(5)
                .checkpoint_every(5)
        });
        let rb = b.fit(&train, Some(&val)).unwrap();
        assert_eq!(rb.steps, 5);
        assert_eq!(rb.train_losses[..], ra.train_losses[..5]);
    } // everything dropped: the "process" ends here
      // New objects, initialised differently, RNG elsewhere: all of it comes from the checkpoint.
    let mut c = textgen_trainer(&dir, 999, 16, |b| {
        b.gradient_accumulation_steps(2)
            .max_steps(10)
            .checkpoint_every(5)
            .resume(true)
    });
    deepseek::manual_seed(12345);
    let rc = c.fit(&train, Some(&val)).unwrap();
    assert_eq!(
        rc.resumed_from.as_deref(),
        Some(dir.join("checkpoints/step-5").as_path())
    );
    assert_eq!(rc.steps_this_run, 5);
    assert_eq!(
        rc.train_losses, ra.train_losses,
        "per-step losses differ after resume"
    );
    assert_eq!(rc.val_losses, ra.val_losses);
    assert_eq!(rc.final_val_loss, ra.final_val_loss);
    assert_eq!(params_of(c.model()), params_of(a.model()));
    assert_eq!(c.optimizer().lr(), a.optimizer().lr());
    // metrics.jsonl reads like the uninterrupted run's (times aside).
    let strip = |d: &Path| -> Vec<(u64, Option<f64>, Option<f64>, f64)> {
        read_metrics(&d.join("metrics.jsonl"))
            .unwrap()
            .into_iter()
            .map(|m| (m.step, m.loss, m.val_loss, m.lr))
            .collect()
    };
    assert_eq!(strip(&dir), strip(&straight_dir));
}

#[test]
fn a_crash_while_writing_a_checkpoint_leaves_the_previous_one_usable() {
    let _l = lock();
    let (train, val, _) = text_data();
    let straight = tmpdir("crash-straight");
    let mut a = textgen_trainer(&straight, 0, 12, |b| b.max_steps(6));
    let ra = a.fit(&train, Some(&val)).unwrap();

    let dir = tmpdir("crash");
    let root = dir.join("checkpoints");
    {
        let mut b = textgen_trainer(&dir, 0, 12, |b| {
            b.max_steps(6).checkpoint_every(2).fail_checkpoint_at(4)
        });
        let e = b.fit(&train, Some(&val)).unwrap_err().to_string();
        assert!(e.contains("step-4.tmp-"), "{e}");
    }
    let names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("step-4.tmp-")),
        "{names:?}"
    );
    assert!(!names.contains(&"step-4".to_string()));
    assert_eq!(
        std::fs::read_to_string(root.join("latest")).unwrap().trim(),
        "step-2"
    );
    assert_eq!(
        checkpoint::latest(&root).unwrap(),
        Some(root.join("step-2"))
    );
    // The half-written directory is ignored; resuming from step 2 gives the same curve.
    let mut c = textgen_trainer(&dir, 5, 12, |b| {
        b.max_steps(6).checkpoint_every(2).resume(true)
    });
    let rc = c.fit(&train, Some(&val)).unwrap();
    assert_eq!(rc.resumed_from, Some(root.join("step-2")));
    assert_eq!(rc.train_losses, ra.train_losses);
    let left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "stale temporary directories: {left:?}");
}

fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for d in std::fs::read_dir(root).unwrap() {
        let d = d.unwrap().path();
        if d.is_dir() {
            for f in std::fs::read_dir(&d).unwrap() {
                let f = f.unwrap().path();
                v.push((f.clone(), std::fs::read(&f).unwrap()));
            }
        } else {
            v.push((d.clone(), std::fs::read(&d).unwrap()));
        }
    }
    v.sort();
    v
}

#[test]
fn damaged_or_foreign_checkpoints_are_clear_errors_and_are_left_alone() {
    let _l = lock();
    let (train, val, _) = text_data();
    let dir = tmpdir("damaged");
    let root = dir.join("checkpoints");
    let mut a = textgen_trainer(&dir, 0, 12, |b| b.max_steps(4).checkpoint_every(2));
    a.fit(&train, Some(&val)).unwrap();
    let s4 = root.join("step-4");
    let good = |f: &str| std::fs::read(s4.join(f)).unwrap();
    let originals: Vec<(&str, Vec<u8>)> = [
        "model.safetensors",
        "optimizer.json",
        "scheduler.json",
        "trainer.json",
    ]
    .into_iter()
    .map(|f| (f, good(f)))
    .collect();
    let restore = || {
        for (f, b) in &originals {
            std::fs::write(s4.join(f), b).unwrap();
        }
    };
    let try_resume = |hidden: usize| -> String {
        let mut t = textgen_trainer(&dir, 0, hidden, |b| {
            b.max_steps(8).checkpoint_every(2).resume(true)
        });
        let before = snapshot(&root);
        let e = t.fit(&train, Some(&val)).unwrap_err().to_string();
        assert_eq!(
            snapshot(&root),
            before,
            "a failed resume changed the checkpoints"
        );
        e
    };
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            "truncated model",
            Box::new(|| {
                let b = good("model.safetensors");
                std::fs::write(s4.join("model.safetensors"), &b[..b.len() / 2]).unwrap();
            }),
            &["step-4/model.safetensors", "safetensors"],
        ),
        (
            "corrupt optimizer",
            Box::new(|| {
                std::fs::write(s4.join("optimizer.json"), b"{\"optimizer\": 12, \"x\"").unwrap()
            }),
            &["step-4/optimizer.json"],
        ),
        (
            "truncated trainer.json",
            Box::new(|| {
                let b = good("trainer.json");
                std::fs::write(s4.join("trainer.json"), &b[..b.len() - 40]).unwrap();
            }),
            &["step-4/trainer.json", "truncated"],
        ),
        (
            "empty scheduler",
            Box::new(|| std::fs::write(s4.join("scheduler.json"), b"").unwrap()),
            &["step-4/scheduler.json", "empty"],
        ),
        (
            "missing optimizer",
            Box::new(|| std::fs::remove_file(s4.join("optimizer.json")).unwrap()),
            &["step-4/optimizer.json", "missing"],
        ),
    ];
    for (what, damage, expect) in cases {
        damage();
        let e = try_resume(12);
        for x in expect {
            assert!(e.contains(x), "{what}: {e:?} lacks {x:?}");
        }
        assert!(
            e.contains("step-2"),
            "{what}: the error should point at the previous checkpoint: {e}"
        );
        restore();
    }
    // A checkpoint of another model (hidden 12 vs 10).
    let e = try_resume(10);
    assert!(
        e.contains("step-4/trainer.json") && e.contains("different model"),
        "{e}"
    );
    assert!(e.contains("`fc.weight` has shape"), "{e}");
    // Intact again: resuming works and continues.
    let mut t = textgen_trainer(&dir, 0, 12, |b| {
        b.max_steps(6).checkpoint_every(2).resume(true)
    });
    assert_eq!(t.fit(&train, Some(&val)).unwrap().steps, 6);
    // An explicit checkpoint directory that does not exist.
    let mut t = textgen_trainer(&dir, 0, 12, |b| {
        b.max_steps(6).resume_from(root.join("step-99"))
    });
    let e = t.fit(&train, Some(&val)).unwrap_err().to_string();
    assert!(
        e.contains("step-99") && e.contains("no such checkpoint"),
        "{e}"
    );
}

#[test]
fn keep_last_and_latest_pointer() {
    let _l = lock();
    let (train, val, _) = text_data();
    let dir = tmpdir("keep");
    let root = dir.join("checkpoints");
    let mut t = textgen_trainer(&dir, 0, 8, |b| {
        b.max_steps(5).checkpoint_every(1).keep_last(2)
    });
    let r = t.fit(&train, Some(&val)).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["latest", "step-4", "step-5"]);
    assert_eq!(
        std::fs::read_to_string(root.join("latest")).unwrap().trim(),
        "step-5"
    );
    assert_eq!(r.last_checkpoint, Some(root.join("step-5")));
    for f in [
        "model.safetensors",
        "optimizer.json",
        "scheduler.json",
        "trainer.json",
        "tokenizer.json",
        "config.json",
    ] {
        assert!(root.join("step-5").join(f).is_file(), "{f}");
    }
    // A fresh run into a directory with checkpoints is refused unless overwriting.
    let mut t = textgen_trainer(&dir, 0, 8, |b| b.max_steps(2).checkpoint_every(1));
    let e = t.fit(&train, Some(&val)).unwrap_err().to_string();
    assert!(e.contains("already has checkpoints"), "{e}");
    let mut t = textgen_trainer(&dir, 0, 8, |b| {
        b.max_steps(2).checkpoint_every(1).overwrite(true)
    });
    t.fit(&train, Some(&val)).unwrap();
    assert_eq!(
        checkpoint::latest(&root).unwrap(),
        Some(root.join("step-2"))
    );
}

#[test]
fn early_stopping_and_callbacks_stop_training() {
    let _l = lock();
    let (train, val, _) = text_data();
    // min_delta so large that no validation after the first counts as an improvement.
    let dir = tmpdir("early");
    let mut t = textgen_trainer(&dir, 0, 8, |b| {
        b.max_steps(50).eval_every(1).early_stopping(2, 100.0)
    });
    let r = t.fit(&train, Some(&val)).unwrap();
    assert_eq!(r.stop_reason, StopReason::EarlyStopping);
    assert_eq!(r.steps, 3);
    assert_eq!(r.val_losses.len(), 3);

    struct StopAt(u64, Vec<u64>, bool);
    impl Callback for StopAt {
        fn on_step_end(&mut self, s: &TrainerState) -> Control {
            self.1.push(s.step);
            if s.step >= self.0 {
                Control::Stop
            } else {
                Control::Continue
            }
        }
        fn on_train_end(&mut self, s: &TrainerState) {
            assert_eq!(s.step, self.0);
            self.2 = true;
        }
    }
    let dir = tmpdir("callback");
    let mut t = textgen_trainer(&dir, 0, 8, |b| {
        b.max_steps(50).callback(Box::new(StopAt(4, vec![], false)))
    });
    let r = t.fit(&train, Some(&val)).unwrap();
    assert_eq!(r.stop_reason, StopReason::Callback);
    assert_eq!(r.steps, 4);
}

#[test]
fn nonfinite_loss_stops_with_the_step_or_is_skipped() {
    let _l = lock();
    let (train, val, _) = text_data();
    let poisoned = |b: TrainerBuilder<TextGenerator>| {
        let calls = std::cell::Cell::new(0);
        b.loss(move |m: &TextGenerator, batch: &[Tensor]| {
            let l = m.loss(batch)?;
            if deepseek::is_grad_enabled() {
                calls.set(calls.get() + 1);
                if calls.get() == 3 {
                    return l.mul_scalar(f64::NAN);
                }
            }
            Ok(l)
        })
        .max_steps(5)
    };
    let dir = tmpdir("nan");
    let mut t = textgen_trainer(&dir, 0, 8, poisoned);
    let e = t.fit(&train, Some(&val)).unwrap_err().to_string();
    assert!(e.contains("NaN") && e.contains("step 3"), "{e}");
    assert_eq!(t.state().step, 2);

    let dir = tmpdir("nan-skip");
    let mut t = textgen_trainer(&dir, 0, 8, |b| poisoned(b).skip_nonfinite(true));
    let r = t.fit(&train, Some(&val)).unwrap();
    assert_eq!(r.steps, 5);
    assert_eq!(r.skipped_steps, 1);
    assert_eq!(r.train_losses[2], None);
    assert!(r
        .train_losses
        .iter()
        .enumerate()
        .all(|(i, l)| i == 2 || l.is_some_and(f64::is_finite)));
    let m = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    assert!(m[2].skipped && m[2].loss.is_none());
}

#[test]
fn metrics_jsonl_and_plot_are_written() {
    let _l = lock();
    let (train, val, _) = text_data();
    let dir = tmpdir("metrics");
    let mut t = textgen_trainer(&dir, 0, 8, |b| b.max_steps(7));
    let r = t.fit(&train, Some(&val)).unwrap();
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 7 steps, then the final validation (step 7 is not a multiple of eval_every = 3).
    assert_eq!(lines.len(), 8);
    for (i, l) in lines[..7].iter().enumerate() {
        assert_eq!(l["step"], (i + 1) as u64);
        for k in [
            "epoch",
            "loss",
            "val_loss",
            "lr",
            "time",
            "throughput",
            "throughput_unit",
        ] {
            assert!(l.get(k).is_some(), "line {i} lacks {k}: {l}");
        }
        assert_eq!(l["val_loss"].is_number(), (i + 1) % 3 == 0, "line {i}: {l}");
        assert!(l["loss"].as_f64().unwrap().is_finite());
    }
    assert_eq!(lines[7]["final"], true);
    assert_eq!(lines[7]["val_loss"].as_f64(), r.final_val_loss);
    let m = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    assert_eq!(m[0].lr, 1e-2);
    assert!(
        (m[4].lr - 7e-3).abs() < 1e-12,
        "StepLR(4, 0.7) should have lowered lr: {}",
        m[4].lr
    );
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("polyline"),
        "{}",
        &svg[..svg.len().min(200)]
    );
}

#[test]
fn generate_from_a_saved_checkpoint() {
    let _l = lock();
    let (train, val, tok) = text_data();
    let dir = tmpdir("generate");
    let mut t = textgen_trainer(&dir, 0, 16, |b| b.max_steps(6).checkpoint_every(3));
    t.fit(&train, Some(&val)).unwrap();
    for p in [
        dir.clone(),
        dir.join("checkpoints"),
        dir.join("checkpoints/step-6"),
    ] {
        let (mut m, tok2, used) = TextGenerator::from_checkpoint(&p).unwrap();
        assert_eq!(used, dir.join("checkpoints/step-6"));
        assert_eq!(tok2, tok);
        assert_eq!(params_of(&m), params_of(t.model()));
        m.eval();
        let opts = SampleOptions {
            length: 30,
            temperature: 0.8,
            top_k: Some(5),
        };
        let a = m
            .generate(&tok2, "to be", &opts, &mut Generator::new(1))
            .unwrap();
        let b = m
            .generate(&tok2, "to be", &opts, &mut Generator::new(1))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.chars().count(), 30);
        assert!(a.chars().all(|c| TEXT.contains(c)));
        let greedy = SampleOptions {
            temperature: 0.0,
            ..opts
        };
        let g = m
            .generate(&tok2, "", &greedy, &mut Generator::new(2))
            .unwrap();
        assert_eq!(g.chars().count(), 30);
        let e = m
            .generate(&tok2, "xyz", &opts, &mut Generator::new(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'x'") || e.contains("'y'") || e.contains("'z'"),
            "{e}"
        );
    }
    let empty = tmpdir("generate-empty");
    let e = TextGenerator::from_checkpoint(&empty)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no checkpoint"), "{e}");
}

#[test]
fn bad_data_and_settings_are_clear_errors() {
    let _l = lock();
    let dir = tmpdir("bad-data");
    let missing = dir.join("nope.txt");
    let e = load_text(&missing).unwrap_err().to_string();
    assert!(
        e.contains("nope.txt") && e.contains("does not exist"),
        "{e}"
    );
    std::fs::write(dir.join("empty.txt"), "").unwrap();
    let e = load_text(&dir.join("empty.txt")).unwrap_err().to_string();
    assert!(e.contains("empty.txt") && e.contains("empty"), "{e}");
    let (_, ids) = corpus();
    let e = TextBatches::shuffled(ids.clone(), 8, 0, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("batch_size") && e.contains('0'), "{e}");
    let e = TextBatches::shuffled(ids[..20].to_vec(), 8, 4, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("fewer than one batch"), "{e}");
    let e = DataLoader::new(
        TensorDataset::new(vec![Tensor::zeros(&[4, 2], DType::F32).unwrap()]).unwrap(),
        DataLoaderConfig {
            batch_size: 0,
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("batch_size"), "{e}");
    // Settings.
    let build = |f: fn(TrainerBuilder<TextGenerator>) -> TrainerBuilder<TextGenerator>| {
        deepseek::manual_seed(0);
        let m = TextGenerator::new(TextGeneratorConfig::new(5, 4)).unwrap();
        let opt = Adam::new(m.parameters(), AdamConfig::default()).unwrap();
        f(Trainer::builder(m)
            .optimizer(Box::new(opt))
            .loss(|m: &TextGenerator, b: &[Tensor]| m.loss(b)))
        .build()
        .err()
        .map(|e| e.to_string())
    };
    assert!(build(|b| b.gradient_accumulation_steps(0))
        .unwrap()
        .contains("gradient_accumulation_steps"));
    assert!(build(|b| b.checkpoint_every(5))
        .unwrap()
        .contains("out_dir"));
    assert!(build(|b| b.clip_grad_norm(0.0))
        .unwrap()
        .contains("clip_grad_norm"));
    assert!(build(|b| b.fp16_enabled(true).bf16(true)).is_none());
    // No stopping rule.
    deepseek::manual_seed(0);
    let m = TextGenerator::new(TextGeneratorConfig::new(corpus().0.vocab_size(), 4)).unwrap();
    let opt = Adam::new(m.parameters(), AdamConfig::default()).unwrap();
    let mut t = Trainer::builder(m)
        .optimizer(Box::new(opt))
        .loss(|m: &TextGenerator, b: &[Tensor]| m.loss(b))
        .progress(false)
        .build()
        .unwrap();
    let (train, _, _) = text_data();
    let e = t.fit(&train, None).unwrap_err().to_string();
    assert!(e.contains("max_steps"), "{e}");
}

#[test]
fn epochs_and_a_short_last_accumulation_step() {
    let _l = lock();
    let (train, val, _) = text_data();
    let dir = tmpdir("epochs");
    // 3 batches per epoch, 2 per step: 2 epochs = 6 micro-batches = 3 steps; 1 epoch = 2
    // steps, the second one short (1 micro-batch, gradients averaged over it).
    let mut t = textgen_trainer(&dir, 0, 8, |b| b.gradient_accumulation_steps(2).epochs(2));
    let r = t.fit(&train, Some(&val)).unwrap();
    assert_eq!((r.steps, r.stop_reason), (3, StopReason::Epochs));
    let dir = tmpdir("epochs1");
    let mut t = textgen_trainer(&dir, 0, 8, |b| b.gradient_accumulation_steps(2).epochs(1));
    let r = t.fit(&train, Some(&val)).unwrap();
    assert_eq!((r.steps, r.stop_reason), (2, StopReason::Epochs));
    assert_eq!(t.state().epoch, 1);
}

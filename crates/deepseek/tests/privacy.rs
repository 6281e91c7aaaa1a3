//! DP-SGD in Rust (`deepseek::privacy`) against its references: the RDP accountant against
//! Google's dp-accounting (fixture `data/rdp_dp_accounting.json`), the TextGenerator's
//! per-sample gradients against PyTorch computing each sample alone in float64 (fixture
//! `data/dp_textgen_torch.json`, both written by `data/make_dp_fixture.py`) and against our
//! own per-sample loops, plus clipping, noise, Poisson sampling and bad input.

use deepseek::nn::Module;
use deepseek::privacy::{
    clip_and_noise, per_sample_grads, rdp, DpSgdConfig, DpTextGenerator, PoissonTextBatches,
    RdpAccountant,
};
use deepseek::train::{BatchSource, TextGenerator, TextGeneratorConfig};
use deepseek::{DType, Tensor};
use std::collections::HashMap;

fn data(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn rdp_matches_dp_accounting() {
    let v: serde_json::Value = serde_json::from_str(&data("rdp_dp_accounting.json")).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 90);
    let mut worst = (0.0f64, String::new());
    for c in cases {
        let (q, s, n, d) = (
            c["q"].as_f64().unwrap(),
            c["sigma"].as_f64().unwrap(),
            c["steps"].as_u64().unwrap(),
            c["delta"].as_f64().unwrap(),
        );
        let want = c["epsilon"].as_f64().unwrap();
        let got = rdp::epsilon(q, s, n, d).unwrap();
        let rel = (got - want).abs() / want.max(1e-12);
        if rel > worst.0 {
            worst = (rel, format!("q={q} σ={s} steps={n} δ={d}: {got} vs {want}"));
        }
    }
    println!(
        "rdp: {} cases, worst relative error {:.2e} ({})",
        cases.len(),
        worst.0,
        worst.1
    );
    assert!(worst.0 < 1e-6, "{}", worst.1);
    // The known point.
    let eps = rdp::epsilon(256.0 / 60000.0, 1.1, 14062, 1e-5).unwrap();
    assert!((eps - 2.59656).abs() < 5e-6, "{eps}");
    // The accountant composes consecutive equal steps and sums different ones.
    let mut a = RdpAccountant::new();
    a.step_n(1.1, 256.0 / 60000.0, 7000).unwrap();
    a.step_n(1.1, 256.0 / 60000.0, 7062).unwrap();
    assert_eq!(a.history.len(), 1);
    assert!((a.get_epsilon(1e-5).unwrap() - eps).abs() < 1e-12);
    a.step_n(2.0, 0.01, 10).unwrap();
    assert!(a.get_epsilon(1e-5).unwrap() > eps);
    assert_eq!(a.steps(), 14072);
}

#[test]
fn noise_multiplier_for_a_target() {
    let q = 32.0 / 8000.0;
    for target in [0.5, 3.0, 8.0] {
        let s = rdp::get_noise_multiplier(target, 1e-5, q, 2000, 0.01).unwrap();
        let e = rdp::epsilon(q, s, 2000, 1e-5).unwrap();
        assert!(
            e <= target && e > target - 0.01,
            "target {target}: σ {s} gives {e}"
        );
        // Less noise would overshoot the target.
        assert!(rdp::epsilon(q, s * 0.98, 2000, 1e-5).unwrap() > e);
    }
    // Bad input: clear errors.
    let msg = |r: deepseek::Result<f64>| r.unwrap_err().to_string();
    assert!(msg(rdp::get_noise_multiplier(1.0, 0.0, q, 10, 0.01)).contains("delta"));
    assert!(msg(rdp::get_noise_multiplier(1.0, 1.0, q, 10, 0.01)).contains("(0, 1)"));
    assert!(msg(rdp::get_noise_multiplier(0.0, 1e-5, q, 10, 0.01)).contains("epsilon"));
    assert!(msg(rdp::get_noise_multiplier(f64::NAN, 1e-5, q, 10, 0.01)).contains("epsilon"));
    assert!(msg(rdp::get_noise_multiplier(1.0, 1e-5, 0.0, 10, 0.01)).contains("sample rate"));
    assert!(msg(rdp::get_noise_multiplier(1.0, 1e-5, q, 0, 0.01)).contains("steps"));
    let e = msg(rdp::get_noise_multiplier(1e-3, 1e-5, 1.0, 1000, 0.01));
    assert!(e.contains("cannot be reached"), "{e}");
    assert!(msg(rdp::compute_rdp(0.1, -1.0, 1, &[2.0]).map(|v| v[0])).contains("noise"));
    assert!(msg(rdp::epsilon(0.1, 1.0, 1, 2.0)).contains("delta"));
}

/// Tensors of the PyTorch fixture.
fn torch_fixture() -> HashMap<String, Tensor> {
    let v: HashMap<String, serde_json::Value> =
        serde_json::from_str(&data("dp_textgen_torch.json")).unwrap();
    v.into_iter()
        .map(|(k, t)| {
            let shape: Vec<usize> = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap() as usize)
                .collect();
            let d: Vec<f64> = t["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let t = if k.ends_with(".x") || k.ends_with(".y") {
                Tensor::from_vec(d.iter().map(|&x| x as i64).collect::<Vec<_>>(), &shape)
            } else {
                Tensor::from_vec(d, &shape)
            };
            (k, t.unwrap())
        })
        .collect()
}

/// A TextGenerator holding the given f64 parameters (PyTorch names).
fn model_f64(cfg: TextGeneratorConfig, get: impl Fn(&str) -> Tensor) -> TextGenerator {
    let mut m = TextGenerator::new(cfg).unwrap();
    let p = |name: &str| get(name).requires_grad_(true).unwrap();
    m.embedding.weight = p("embedding.weight");
    let names = m.lstm.weights.names.clone();
    for (n, t) in names.iter().zip(m.lstm.weights.tensors.iter_mut()) {
        *t = p(&format!("lstm.{n}"));
    }
    m.fc.weight = p("fc.weight");
    m.fc.bias = Some(p("fc.bias"));
    m
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / (1e-12 + y.abs().max(1e-3)))
        .fold(0.0, f64::max)
}

#[test]
fn per_sample_grads_equal_pytorch_per_example() {
    let f = torch_fixture();
    for layers in [1usize, 2] {
        let pre = format!("l{layers}.");
        let cfg = TextGeneratorConfig {
            vocab_size: 7,
            embedding_dim: 5,
            hidden_size: 4,
            num_layers: layers,
            dropout: 0.0,
        };
        let m = model_f64(cfg, |n| f[&format!("{pre}param.{n}")].clone());
        let (x, y) = (&f[&format!("{pre}x")], &f[&format!("{pre}y")]);
        let ps = per_sample_grads(&m, x, y).unwrap();
        let named = m.named_parameters();
        assert_eq!(named.len(), ps.grads.len());
        let mut worst = 0.0f64;
        for (((name, q), p), g) in named.iter().zip(&ps.params).zip(&ps.grads) {
            assert_eq!(p.id(), q.id(), "{name}");
            for b in 0..3 {
                let want = &f[&format!("{pre}grad{b}.{name}")];
                let got = g.select(0, b as isize).unwrap();
                let r = max_rel(&got, want);
                assert!(r < 1e-9, "{layers} layers, {name}, sample {b}: {r}");
                worst = worst.max(r);
            }
        }
        println!(
            "per-sample vs PyTorch ({layers} LSTM layers, f64): worst relative error {worst:.1e}"
        );
    }
}

#[test]
fn per_sample_grads_equal_each_sample_alone_and_the_batch_gradient() {
    deepseek::manual_seed(3);
    let cfg = TextGeneratorConfig {
        vocab_size: 9,
        embedding_dim: 6,
        hidden_size: 5,
        num_layers: 2,
        dropout: 0.0,
    };
    let m0 = TextGenerator::new(cfg.clone()).unwrap();
    let sd = m0.state_dict();
    let m = model_f64(cfg, |n| sd[n].to_dtype(DType::F64).unwrap());
    let (b, t) = (4usize, 6usize);
    let x = Tensor::randint(0, 9, &[b, t], DType::I64).unwrap();
    let y = Tensor::randint(0, 9, &[b, t], DType::I64).unwrap();
    let ps = per_sample_grads(&m, &x, &y).unwrap();
    let params = m.parameters();
    // Each sample alone, through the model's own (fused) forward.
    let mut losses = 0.0;
    for i in 0..b {
        m.zero_grad();
        let xi = x.narrow(0, i, 1).unwrap();
        let yi = y.narrow(0, i, 1).unwrap();
        let l = m.loss(&[xi, yi]).unwrap();
        losses += l.item().unwrap();
        l.backward().unwrap();
        for (p, g) in params.iter().zip(&ps.grads) {
            let r = max_rel(&g.select(0, i as isize).unwrap(), &p.grad().unwrap());
            assert!(r < 1e-10, "sample {i}: {r}");
        }
    }
    assert!((ps.loss - losses / b as f64).abs() < 1e-12);
    // The mean of the per-sample gradients is the batch gradient.
    m.zero_grad();
    m.loss(&[x.clone(), y.clone()]).unwrap().backward().unwrap();
    for (p, g) in params.iter().zip(&ps.grads) {
        let mean = g
            .sum_dim(&[0], false)
            .unwrap()
            .mul_scalar(1.0 / b as f64)
            .unwrap();
        assert!(max_rel(&mean, &p.grad().unwrap()) < 1e-10);
    }
    // An empty batch and bad input.
    let e = Tensor::zeros(&[0, t], DType::I64).unwrap();
    let ps0 = per_sample_grads(&m, &e, &e).unwrap();
    assert_eq!(ps0.grads[0].shape(), &[0, 9, 6]);
    assert!(ps0.loss.is_nan());
    let err = per_sample_grads(&m, &x, &y.narrow(1, 0, 2).unwrap())
        .err()
        .expect("an error");
    assert!(err.to_string().contains("same shape") || err.to_string().contains("one shape"));
    let bad = Tensor::full(&[1, 2], 9.0, DType::I64).unwrap();
    let err = per_sample_grads(&m, &bad, &bad)
        .err()
        .expect("an error")
        .to_string();
    assert!(
        err.contains("vocabulary") || err.contains("out of range") || err.contains("index"),
        "{err}"
    );
}

#[test]
fn clipping_and_noise() {
    let p = Tensor::zeros(&[2, 3], DType::F64)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let q = Tensor::zeros(&[3], DType::F64)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    // Three samples with norms (over both parameters) 10, 0.5 and 2.
    let g1 = Tensor::from_vec(
        vec![
            6.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, //
            0.3, 0.0, 0.0, 0.0, 0.0, 0.0, //
            0.0, 0.0, 0.0, 0.0, 0.0, 2.0,
        ],
        &[3, 2, 3],
    )
    .unwrap();
    let g2 = Tensor::from_vec(
        vec![8.0f64, 0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0],
        &[3, 3],
    )
    .unwrap();
    let cfg = DpSgdConfig {
        noise_multiplier: 1e-12,
        max_grad_norm: 1.0,
        expected_batch_size: 4.0,
    };
    let s = clip_and_noise(&[p.clone(), q.clone()], &[g1, g2], &cfg).unwrap();
    assert_eq!((s.batch_size, s.clipped), (3, 2));
    assert!((s.mean_norm - 12.5 / 3.0).abs() < 1e-12);
    let c = |n: f64| 1.0 / (n + 1e-6);
    let gp = p.grad().unwrap().to_vec::<f64>().unwrap();
    let gq = q.grad().unwrap().to_vec::<f64>().unwrap();
    assert!((gp[0] - (6.0 * c(10.0) + 0.3) / 4.0).abs() < 1e-9);
    assert!((gp[5] - (2.0 * c(2.0)) / 4.0).abs() < 1e-9);
    assert!((gq[0] - (8.0 * c(10.0) + 0.4) / 4.0).abs() < 1e-9);
    // The noise: N(0, (σC)²) per coordinate, divided by the expected batch size.
    deepseek::manual_seed(7);
    let big = Tensor::zeros(&[200, 100], DType::F64)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let zero = Tensor::zeros(&[1, 200, 100], DType::F64).unwrap();
    let cfg = DpSgdConfig {
        noise_multiplier: 1.5,
        max_grad_norm: 2.0,
        expected_batch_size: 10.0,
    };
    clip_and_noise(std::slice::from_ref(&big), &[zero], &cfg).unwrap();
    let v = big.grad().unwrap().to_vec::<f64>().unwrap();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    // Expected std 1.5 * 2 / 10 = 0.3; 20000 draws: the estimate is within 2% (> 5 sigma).
    assert!(
        (std - 0.3).abs() < 0.006 && mean.abs() < 0.01,
        "std {std} mean {mean}"
    );
    // Bad input.
    for (s, c, b) in [
        (0.0, 1.0, 1.0),
        (-1.0, 1.0, 1.0),
        (1.0, 0.0, 1.0),
        (1.0, 1.0, f64::NAN),
    ] {
        let r = DpTextGenerator::new(DpSgdConfig {
            noise_multiplier: s,
            max_grad_norm: c,
            expected_batch_size: b,
        });
        assert!(r.is_err());
    }
    let e = clip_and_noise(
        std::slice::from_ref(&p),
        &[Tensor::zeros(&[3, 3, 2], DType::F64).unwrap()],
        &DpSgdConfig {
            noise_multiplier: 1.0,
            max_grad_norm: 1.0,
            expected_batch_size: 1.0,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
}

#[test]
fn poisson_text_batches() {
    let ids: Vec<i64> = (0..10_000).map(|i| i % 50).collect();
    let b = PoissonTextBatches::new(ids.clone(), 9, 25, 1).unwrap();
    assert_eq!(b.num_examples(), 1000);
    assert!((b.sample_rate() - 0.025).abs() < 1e-15);
    assert_eq!(b.batches_per_epoch(), 40);
    let all: Vec<Vec<Tensor>> = b.epoch_from(0, 0).map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), 40);
    let sizes: Vec<usize> = all.iter().map(|v| v[0].shape()[0]).collect();
    let total: usize = sizes.iter().sum();
    // 40 steps x 1000 Bernoulli(0.025) draws: mean 1000, sd ~31.
    assert!((850..1150).contains(&total), "{total}");
    assert!(sizes.iter().collect::<std::collections::HashSet<_>>().len() > 3);
    // Each example is a disjoint window: targets are the ids shifted by one.
    let (x, y) = (
        all[0][0].to_vec::<i64>().unwrap(),
        all[0][1].to_vec::<i64>().unwrap(),
    );
    for r in 0..sizes[0] {
        assert_eq!(x[r * 9] % 10, 0, "windows start at multiples of 10");
        for k in 0..8 {
            assert_eq!(x[r * 9 + k + 1], y[r * 9 + k]);
        }
    }
    // Deterministic, resumable, different per epoch.
    let again: Vec<Vec<Tensor>> = b.epoch_from(0, 5).map(|r| r.unwrap()).collect();
    assert_eq!(again.len(), 35);
    assert_eq!(
        again[0][0].to_vec::<i64>().unwrap(),
        all[5][0].to_vec::<i64>().unwrap()
    );
    let e1: Vec<usize> = b
        .epoch_from(1, 0)
        .map(|r| r.unwrap()[0].shape()[0])
        .collect();
    assert_ne!(e1, sizes);
    assert!(PoissonTextBatches::new(ids[..50].to_vec(), 9, 25, 1).is_err());
    assert!(PoissonTextBatches::new(ids, 0, 25, 1).is_err());
}

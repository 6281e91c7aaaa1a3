//! Modules: PyTorch-style parameter names, state dicts that move between PyTorch and
//! deepseek, clear errors for bad checkpoints, train/eval.

use deepseek::nn::{self, Embedding, Forward, Linear, Lstm, Module, RnnConfig};
use deepseek::prelude::*;
use std::collections::HashMap;

#[derive(nn::Module)]
struct TextGenerator {
    embedding: Embedding,
    lstm: Lstm,
    fc: Linear,
    #[module(skip)]
    vocab: usize,
}

impl TextGenerator {
    fn new(vocab: usize, hidden: usize) -> Result<Self> {
        Ok(TextGenerator {
            embedding: Embedding::new(vocab, hidden, None)?,
            lstm: Lstm::new(
                hidden,
                hidden,
                RnnConfig {
                    batch_first: true,
                    ..Default::default()
                },
            )?,
            fc: Linear::new(hidden, vocab, true)?,
            vocab,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (out, _) = self.lstm.forward(&self.embedding.forward(x)?)?;
        self.fc.forward(&out)
    }
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn names_follow_pytorch() {
    let m = TextGenerator::new(11, 6).unwrap();
    let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "embedding.weight",
            "lstm.weight_ih_l0",
            "lstm.weight_hh_l0",
            "lstm.bias_ih_l0",
            "lstm.bias_hh_l0",
            "fc.weight",
            "fc.bias"
        ]
    );
    assert_eq!(m.vocab, 11);
    let bi = Lstm::new(
        3,
        4,
        RnnConfig {
            num_layers: 2,
            bidirectional: true,
            ..Default::default()
        },
    )
    .unwrap();
    let names: Vec<String> = bi.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"weight_ih_l1_reverse".to_string()));
    assert_eq!(bi.named_parameters()[8].1.shape(), &[16, 8]); // layer 1 input = 2 * hidden
}

#[test]
fn loads_a_pytorch_state_dict_and_computes_the_same_logits() {
    let m = TextGenerator::new(11, 6).unwrap();
    m.load(data("textgen_torch.safetensors")).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("textgen_torch.json")).unwrap())
            .unwrap();
    let x: Vec<i64> = j["input"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
        .collect();
    let want: Vec<f64> = j["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let y = m.forward(&Tensor::from_vec(x, &[2, 4]).unwrap()).unwrap();
    assert_eq!(y.shape(), &[2, 4, 11]);
    for (a, b) in y.to_vec_f64().unwrap().iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn saved_files_have_pytorchs_keys_dtypes_and_shapes() {
    let m = TextGenerator::new(11, 6).unwrap();
    let dir = std::env::temp_dir().join(format!("ds-nn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("m.safetensors");
    m.save(&p).unwrap();
    let ours = nn::load_safetensors(&p).unwrap();
    let theirs =
        nn::load_safetensors(std::path::Path::new(&data("textgen_torch.safetensors"))).unwrap();
    let mut a: Vec<_> = ours
        .iter()
        .map(|(k, v)| (k.clone(), v.shape().to_vec(), v.dtype()))
        .collect();
    let mut b: Vec<_> = theirs
        .iter()
        .map(|(k, v)| (k.clone(), v.shape().to_vec(), v.dtype()))
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // Round trip.
    let m2 = TextGenerator::new(11, 6).unwrap();
    m2.load(&p).unwrap();
    for ((_, x), (_, y)) in m
        .named_parameters()
        .iter()
        .zip(m2.named_parameters().iter())
    {
        assert_eq!(x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let m = TextGenerator::new(11, 6).unwrap();
    let dir = std::env::temp_dir().join(format!("ds-nn-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Truncated file.
    let good = std::fs::read(data("textgen_torch.safetensors")).unwrap();
    let t = dir.join("trunc.safetensors");
    std::fs::write(&t, &good[..good.len() / 2]).unwrap();
    let e = m.load(&t).unwrap_err().to_string();
    assert!(
        e.contains("trunc.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );
    // Missing file.
    let e = m
        .load(dir.join("nope.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.safetensors"), "{e}");
    // Another model: wrong shapes.
    let other = TextGenerator::new(12, 6).unwrap();
    let p = dir.join("other.safetensors");
    other.save(&p).unwrap();
    let e = m.load(&p).unwrap_err().to_string();
    assert!(
        e.contains("size mismatch for embedding.weight") && e.contains("other.safetensors"),
        "{e}"
    );
    // Missing and unexpected keys.
    let mut sd: HashMap<String, Tensor> = m.state_dict().into_iter().collect();
    sd.remove("fc.bias");
    sd.insert("extra".into(), Tensor::zeros(&[1], DType::F32).unwrap());
    let e = m.load_state_dict(&sd, true).unwrap_err().to_string();
    assert!(e.contains("fc.bias") && e.contains("extra"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_eval_switches_dropout_and_batchnorm() {
    #[derive(nn::Module)]
    struct Net {
        bn: nn::BatchNorm1d,
        drop: nn::Dropout,
    }
    let mut n = Net {
        bn: nn::BatchNorm1d::new(3, 1e-5, 0.1).unwrap(),
        drop: nn::Dropout::new(0.5),
    };
    let names: Vec<String> = n.state_dict().keys().cloned().collect();
    assert_eq!(
        names,
        [
            "bn.bias",
            "bn.num_batches_tracked",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight"
        ]
    );
    let x = Tensor::randn(&[8, 3], DType::F32)
        .unwrap()
        .add_scalar(2.0)
        .unwrap();
    n.bn.forward(&x).unwrap();
    assert!(n
        .bn
        .running_mean
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .all(|&v| v > 0.1));
    assert_eq!(n.bn.num_batches_tracked.to_vec::<i64>().unwrap(), vec![1]);
    n.eval();
    assert!(!n.drop.training.0 && !n.bn.training.0);
    let y = n.drop.forward(&x).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    n.train();
    assert!(n.drop.training.0);
}

#[test]
fn sequential_names_and_forward() {
    let s = nn::Sequential::new()
        .add(Linear::new(4, 8, true).unwrap())
        .add(nn::ReLU::default())
        .add(Linear::new(8, 2, false).unwrap());
    let names: Vec<String> = s.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight"]);
    let y = s
        .forward(&Tensor::randn(&[5, 4], DType::F32).unwrap())
        .unwrap();
    assert_eq!(y.shape(), &[5, 2]);
    assert_eq!(s.num_parameters(), 4 * 8 + 8 + 16);
}

#[test]
fn embedding_rejects_float_indices_naming_the_dtype() {
    let e = Embedding::new(10, 4, None).unwrap();
    let err = e
        .forward(&Tensor::randn(&[2, 3], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Embedding") && err.contains("float32"),
        "{err}"
    );
}

#[test]
fn lstm_forward_tokens_matches_embedding_then_lstm() {
    deepseek::manual_seed(3);
    let (vocab, e, h, b, t) = (7, 6, 5, 3, 4);
    let emb = Embedding::new(vocab, e, None).unwrap();
    for batch_first in [true, false] {
        let cfg = RnnConfig {
            num_layers: 2,
            batch_first,
            ..Default::default()
        };
        let lstm = Lstm::new(e, h, cfg).unwrap();
        let shape = if batch_first { [b, t] } else { [t, b] };
        let ids = Tensor::randint(0, vocab as i64, &shape, DType::I64).unwrap();
        let h0 = Tensor::randn(&[2, b, h], DType::F32).unwrap();
        let c0 = Tensor::randn(&[2, b, h], DType::F32).unwrap();
        let run = |fast: bool| -> Vec<Vec<f32>> {
            let (out, (hn, cn)) = if fast {
                lstm.forward_tokens(&emb, &ids, Some((&h0, &c0))).unwrap()
            } else {
                lstm.forward_with(&emb.forward(&ids).unwrap(), Some((&h0, &c0)))
                    .unwrap()
            };
            // A loss touching every output, h_n and c_n.
            let w = Tensor::arange(0.0, out.numel() as f64, 1.0, DType::F32)
                .unwrap()
                .reshape(out.shape())
                .unwrap()
                .sin()
                .unwrap();
            let loss = out
                .mul(&w)
                .unwrap()
                .sum_all()
                .unwrap()
                .add(&hn.sum_all().unwrap())
                .unwrap()
                .add(&cn.mul_scalar(0.5).unwrap().sum_all().unwrap())
                .unwrap();
            let params: Vec<Tensor> = std::iter::once(emb.weight.clone())
                .chain(lstm.parameters())
                .collect();
            for p in &params {
                p.zero_grad();
            }
            loss.backward().unwrap();
            let mut r = vec![out.to_vec::<f32>().unwrap(), hn.to_vec::<f32>().unwrap()];
            r.extend(
                params
                    .iter()
                    .map(|p| p.grad().unwrap().to_vec::<f32>().unwrap()),
            );
            r
        };
        let (fast, plain) = (run(true), run(false));
        assert_eq!(fast.len(), 2 + 1 + 8);
        for (k, (a, p)) in fast.iter().zip(&plain).enumerate() {
            for (x, y) in a.iter().zip(p) {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "batch_first {batch_first}, tensor {k}: {x} vs {y}"
                );
            }
        }
    }
}

//! ALiBi and T5 relative position bias (`deepseek::nn::position_bias`) against the
//! reference values of Hugging Face `transformers`' own functions (BLOOM's
//! `build_alibi_tensor`, T5's `_relative_position_bucket` and `compute_bias`) and PyTorch's
//! `scaled_dot_product_attention`, stored by tools/gen_position_bias_refs.py.

use deepseek::nn::functional::scaled_dot_product_attention as sdpa;
use deepseek::nn::position_bias::{
    alibi_bias, alibi_slopes, relative_position_bucket, T5RelativePositionBias,
};
use deepseek::nn::Module;
use deepseek::{DType, Tensor};
use std::collections::HashMap;
use std::path::Path;

fn refs() -> HashMap<String, Tensor> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/transformers/position_bias.safetensors");
    deepseek::nn::load_safetensors(&p).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn alibi_slopes_equal_bloom() {
    let r = refs();
    for n in 1..=40 {
        let want = r[&format!("alibi_slopes.{n}")].to_vec_f64().unwrap();
        let got = alibi_slopes(n).unwrap();
        assert_eq!(got.len(), n);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 2e-7 * w.abs(),
                "{n} heads: {got:?} vs {want:?}"
            );
        }
    }
    assert!(alibi_slopes(0).is_err());
}

#[test]
fn alibi_attention_equals_bloom_with_causal_mask() {
    let r = refs();
    let (q, k, v) = (&r["alibi.q"], &r["alibi.k"], &r["alibi.v"]);
    let bias = alibi_bias(6, 7, 7, true).unwrap();
    assert_eq!(bias.shape(), &[1, 6, 7, 7]);
    let y = sdpa(q, k, v, Some(&bias), 0.0, false, None).unwrap();
    let d = max_diff(&y, &r["alibi.causal_out"]);
    assert!(d < 1e-5, "causal ALiBi attention differs by {d}");
    // A decoding step: the last 2 queries against all 7 keys.
    let q2 = q.narrow(2, 5, 2).unwrap();
    let bias = alibi_bias(6, 2, 7, true).unwrap();
    let y2 = sdpa(&q2, k, v, Some(&bias), 0.0, false, None).unwrap();
    let d = max_diff(&y2, &r["alibi.step_out"]);
    assert!(d < 1e-5, "ALiBi decoding step differs by {d}");
    // The bias itself: -slope * distance, -inf above the diagonal when causal, symmetric
    // otherwise.
    let s = alibi_slopes(2).unwrap();
    let b = alibi_bias(2, 3, 3, false).unwrap().to_vec_f64().unwrap();
    assert_eq!(b[2], -2.0 * s[0] as f64);
    assert_eq!(b[6], -2.0 * s[0] as f64);
    assert_eq!(b[9 + 1], -(s[1] as f64));
    let c = alibi_bias(2, 3, 3, true).unwrap().to_vec_f64().unwrap();
    assert_eq!(c[1], f64::NEG_INFINITY);
    assert!(alibi_bias(2, 4, 3, true).is_err());
}

#[test]
fn t5_buckets_equal_transformers() {
    let r = refs();
    for bidir in [true, false] {
        for (nb, md) in [(32, 128), (16, 64), (8, 20), (64, 256)] {
            let want = r[&format!("t5_buckets.{}.{nb}.{md}", bidir as u8)]
                .to_vec_f64()
                .unwrap();
            for (i, w) in want.iter().enumerate() {
                let rel = i as i64 - 300;
                let got = relative_position_bucket(rel, bidir, nb, md);
                assert_eq!(
                    got as f64, *w,
                    "bidirectional {bidir}, {nb} buckets, max distance {md}, relative position {rel}"
                );
            }
        }
    }
}

#[test]
fn t5_bias_equals_compute_bias_and_trains() {
    let r = refs();
    for (tag, bidir) in [("enc", true), ("dec", false)] {
        let m = T5RelativePositionBias::new(4, bidir, 32, 128).unwrap();
        let w = r[&format!("t5.{tag}.weight")].clone();
        let sd: HashMap<String, Tensor> =
            [("relative_attention_bias.weight".to_string(), w)].into();
        m.load_state_dict(&sd, true).unwrap();
        let got = m.forward(9, 9, 0).unwrap();
        let d = max_diff(&got, &r[&format!("t5.{tag}.bias_9x9")]);
        assert_eq!(d, 0.0, "{tag}: compute_bias differs by {d}");
        let step = m.forward(3, 8, 5).unwrap();
        let d = max_diff(&step, &r[&format!("t5.{tag}.bias_step")]);
        assert_eq!(d, 0.0, "{tag}: the cached step's bias differs by {d}");
    }
    // The bias is learned: gradients reach the embedding through attention.
    let m = T5RelativePositionBias::new(2, true, 8, 20).unwrap();
    let q = Tensor::randn(&[1, 2, 4, 3], DType::F32).unwrap();
    let y = sdpa(
        &q,
        &q,
        &q,
        Some(&m.forward(4, 4, 0).unwrap()),
        0.0,
        false,
        Some(1.0),
    )
    .unwrap();
    y.sum_all().unwrap().backward().unwrap();
    let g = m.relative_attention_bias.weight.grad().expect("a gradient");
    assert_eq!(g.shape(), &[8, 2]);
    assert!(T5RelativePositionBias::new(2, true, 2, 20).is_err());
    assert!(T5RelativePositionBias::new(2, true, 32, 8).is_err());
}

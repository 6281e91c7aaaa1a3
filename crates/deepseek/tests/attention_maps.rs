//! Attention maps: `forward_with_attentions` of the attention layers, transformer blocks and
//! pretrained models (against `transformers`' `output_attentions=True`, stored by
//! tools/gen_transformer_refs.py) and `record_attention` itself.

use deepseek::models::from_pretrained;
use deepseek::nn::functional::{is_recording_attention, record_attention};
use deepseek::nn::{
    Forward, GroupedQueryAttention, KvCache, MultiheadAttention, SparseAttention,
    TransformerEncoder, TransformerEncoderLayer,
};
use deepseek::{DType, Error, Result, Tensor};
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transformers")
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    let (a, b) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn close(name: &str, a: &Tensor, b: &Tensor, tol: f64) {
    let d = max_diff(a, b);
    assert!(d <= tol, "{name}: max |diff| {d:e} > {tol:e}");
}

fn same(name: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.shape(), b.shape(), "{name}: shapes");
    assert_eq!(
        a.to_vec_f64().unwrap(),
        b.to_vec_f64().unwrap(),
        "{name}: the output changed"
    );
}

/// Every row of `p` [..., S] sums to 1.
fn rows_sum_to_one(name: &str, p: &Tensor) {
    let s = p.sum_dim(&[-1], false).unwrap();
    close(
        name,
        &s,
        &Tensor::ones(s.shape(), DType::F32).unwrap(),
        1e-5,
    );
}

#[test]
fn tiny_models_attentions_match_transformers() -> Result<()> {
    for name in ["tiny-bert", "tiny-gpt2", "tiny-llama"] {
        let dir = data().join(name);
        let r = deepseek::nn::load_safetensors(&dir.join("reference.safetensors"))?;
        let want = deepseek::nn::load_safetensors(&dir.join("attentions.safetensors"))?;
        let m = from_pretrained(&dir)?;
        let mask = Some(&r["attention_mask"]);
        let plain = m.forward(&r["input_ids"], mask)?;
        let (out, maps) = m.forward_with_attentions(&r["input_ids"], mask)?;
        assert_eq!(out.len(), plain.len());
        for (a, b) in out.iter().zip(&plain) {
            same(name, a, b);
        }
        assert_eq!(maps.len(), want.len(), "{name}: one map per layer");
        for (i, a) in maps.iter().enumerate() {
            close(
                &format!("{name} layer {i}"),
                a,
                &want[&format!("layer.{i}")],
                1e-5,
            );
        }
    }
    Ok(())
}

/// all-MiniLM-L6-v2 (see transformers.rs): every layer's attention equals `transformers`'
/// within 1e-5. Skipped when the model is absent, unless DEEPSEEK_REQUIRE_MODELS=1.
#[test]
fn minilm_attentions_match_transformers() -> Result<()> {
    let dir = std::env::var("DEEPSEEK_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/models/all-MiniLM-L6-v2")
        });
    if !dir.join("model.safetensors").is_file() {
        assert!(
            std::env::var("DEEPSEEK_REQUIRE_MODELS").is_err(),
            "all-MiniLM-L6-v2 not found in {} (run scripts/fetch_models.sh)",
            dir.display()
        );
        eprintln!("SKIPPED: all-MiniLM-L6-v2 not found in {}", dir.display());
        return Ok(());
    }
    let r = deepseek::nn::load_safetensors(&data().join("minilm_reference.safetensors"))?;
    let want = deepseek::nn::load_safetensors(&data().join("minilm_attentions.safetensors"))?;
    let model = from_pretrained(&dir)?;
    let (_, maps) = deepseek::with_no_grad(|| {
        model.forward_with_attentions(&r["input_ids"], Some(&r["attention_mask"]))
    })?;
    assert_eq!(maps.len(), 6);
    for (i, a) in maps.iter().enumerate() {
        assert_eq!(a.shape()[..2], [4, 12]);
        close(
            &format!("MiniLM layer {i}"),
            a,
            &want[&format!("layer.{i}")],
            1e-5,
        );
    }
    Ok(())
}

#[test]
fn multihead_attention_weights_are_softmax_of_scaled_scores() -> Result<()> {
    deepseek::manual_seed(3);
    let (e, h, n, l, s) = (8, 2, 3, 4, 5);
    let mha = MultiheadAttention::new(e, h, true, true)?;
    let q = Tensor::randn(&[n, l, e], DType::F32)?;
    let kv = Tensor::randn(&[n, s, e], DType::F32)?;
    let (o, w) = mha.forward_with_attentions(&q, &kv, &kv, None, false)?;
    same("MHA", &o, &mha.forward_qkv(&q, &kv, &kv, None, false)?);
    assert_eq!(w.shape(), &[n, h, l, s]);
    // The reference, written out: heads of the projections, softmax(q kᵀ / √hd).
    let wts = mha.in_proj_weight.chunk(3, 0)?;
    let b = mha.in_proj_bias.as_ref().unwrap().chunk(3, 0)?;
    let hd = e / h;
    let heads = |x: &Tensor, i: usize, len: usize| -> Result<Tensor> {
        x.linear(&wts[i], Some(&b[i]))?
            .reshape(&[n, len, h, hd])?
            .transpose(1, 2)
    };
    let scores = heads(&q, 0, l)?
        .matmul(&heads(&kv, 1, s)?.transpose(-2, -1)?)?
        .mul_scalar(1.0 / (hd as f64).sqrt())?;
    close("MHA weights", &w, &scores.softmax(-1)?, 1e-6);
    // Causal self-attention: nothing above the diagonal.
    let (_, wc) = mha.forward_with_attentions(&q, &q, &q, None, true)?;
    rows_sum_to_one("causal rows", &wc);
    let v = wc.to_vec_f64()?;
    for (idx, x) in v.iter().enumerate() {
        let (i, j) = ((idx / l) % l, idx % l);
        if j > i {
            assert_eq!(*x, 0.0, "causal weight above the diagonal");
        }
    }
    Ok(())
}

#[test]
fn encoder_stack_gives_one_map_per_layer_and_the_same_output() -> Result<()> {
    deepseek::manual_seed(4);
    let enc = TransformerEncoder::new(
        || TransformerEncoderLayer::new(16, 4, 32, 0.0, false, 1e-5, false, false),
        3,
        None,
    )?;
    let x = Tensor::randn(&[6, 2, 16], DType::F32)?; // [L, N, E]
    let kpm = Tensor::from_vec(
        vec![
            false, false, false, false, true, true, false, false, false, false, false, false,
        ],
        &[2, 6],
    )?;
    let (y, maps) = enc.forward_with_attentions(&x, None, Some(&kpm), false)?;
    same(
        "encoder",
        &y,
        &enc.forward_with(&x, None, Some(&kpm), false)?,
    );
    assert_eq!(maps.len(), 3);
    for m in &maps {
        assert_eq!(m.shape(), &[2, 4, 6, 6]);
        rows_sum_to_one("encoder rows", m);
        // The padded keys 4 and 5 of sample 0 get no weight.
        let v = m.select(0, 0)?.narrow(-1, 4, 2)?.abs()?.sum_all()?.item()?;
        assert_eq!(v, 0.0);
    }
    // Layer 0's map is its attention module's own on the input.
    let (_, w0) = enc.layers[0].forward_with_attentions(&x, None, Some(&kpm), false)?;
    same("layer 0 map", &maps[0], &w0);
    Ok(())
}

#[test]
fn gqa_and_sparse_attention_maps() -> Result<()> {
    deepseek::manual_seed(5);
    let gqa = GroupedQueryAttention::new(16, 4, 2, false, None)?;
    let x = Tensor::randn(&[2, 3, 16], DType::F32)?;
    let mut cache = KvCache::new();
    gqa.forward_cached(&x, None, true, Some(&mut cache))?;
    let x2 = Tensor::randn(&[2, 2, 16], DType::F32)?;
    let (_, w) = gqa.forward_with_attentions(&x2, None, true, Some(&mut cache))?;
    assert_eq!(w.shape(), &[2, 4, 2, 5]);
    rows_sum_to_one("gqa rows", &w);

    let mut sa = SparseAttention::new(16, 2, 3)?;
    sa.global_tokens = vec![0];
    sa.causal = true;
    let x = Tensor::randn(&[2, 9, 16], DType::F32)?;
    let (y, w) = sa.forward_with_attentions(&x)?;
    same("sparse", &y, &sa.forward(&x)?);
    assert_eq!(w.shape(), &[2, 2, 9, 9]);
    rows_sum_to_one("sparse rows", &w);
    let outside = sa.dense_mask(9)?.logical_not()?.to_dtype(DType::F32)?;
    assert_eq!(w.mul(&outside)?.abs()?.sum_all()?.item()?, 0.0);
    // Inside record_attention, the blockwise forward records the same map.
    let (_, maps) = record_attention(|| sa.forward(&x))?;
    assert_eq!(maps.len(), 1);
    same("recorded sparse map", &maps[0], &w);
    Ok(())
}

#[test]
fn record_attention_scopes_nest_and_close_on_errors() -> Result<()> {
    let q = Tensor::randn(&[1, 2, 3, 4], DType::F32)?;
    let sdpa = || {
        deepseek::nn::functional::scaled_dot_product_attention(&q, &q, &q, None, 0.0, false, None)
    };
    assert!(!is_recording_attention());
    let ((_, inner), outer) = record_attention(|| {
        sdpa()?;
        record_attention(sdpa)
    })?;
    assert_eq!((outer.len(), inner.len()), (1, 1));
    let err: Result<((), Vec<Tensor>)> =
        record_attention(|| Err(Error::Msg("the forward failed".into())));
    assert!(err.is_err());
    assert!(
        !is_recording_attention(),
        "the scope stays open after an error"
    );
    // Outside a scope nothing is recorded or kept.
    sdpa()?;
    let (_, none) = record_attention(|| Ok(()))?;
    assert!(none.is_empty());
    Ok(())
}

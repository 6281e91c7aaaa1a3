//! The GGUF reader and the block-quantised weights: decoding against a direct reading of the
//! format, the block product against float64, the packed `Linear` path and its fallbacks, and
//! malformed files (every truncation, bad versions, unknown types) as errors, never panics.
//! The real-model check (SmolLM2 against `transformers`) is in tests/transformers.rs.

use deepseek::models::gguf::{dequantize_into, GgmlType, GgufFile};
use deepseek::nn::{Forward, Linear};
use deepseek::quant::BlockQuantWeight;
use deepseek::{Result, Tensor};
use half::f16;

/// A small deterministic generator (no dependency on deepseek's RNG).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn f(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 31) as f32 * 2.0 - 1.0
    }
}

/// Random blocks of `ty` for an `[n, k]` matrix.
fn blocks(ty: GgmlType, n: usize, k: usize, r: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n * k / 32 {
        let d = f16::from_f32(0.01 + 0.05 * r.f().abs()).to_le_bytes();
        out.extend_from_slice(&d);
        match ty {
            GgmlType::Q8_0 => out.extend((0..32).map(|_| r.next() as u8)),
            GgmlType::Q4_0 => out.extend((0..16).map(|_| r.next() as u8)),
            GgmlType::Q4_1 => {
                out.extend_from_slice(&f16::from_f32(-0.2 * r.f().abs()).to_le_bytes());
                out.extend((0..16).map(|_| r.next() as u8));
            }
            _ => unreachable!(),
        }
    }
    out
}

/// The format read by hand: weight `i` of a block, from the GGML definitions.
fn by_hand(ty: GgmlType, b: &[u8], i: usize) -> f32 {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    match ty {
        GgmlType::Q8_0 => d * (b[2 + i] as i8) as f32,
        GgmlType::Q4_0 => {
            let q = if i < 16 {
                b[2 + i] & 15
            } else {
                b[2 + i - 16] >> 4
            };
            (q as f32 - 8.0) * d
        }
        GgmlType::Q4_1 => {
            let m = f16::from_le_bytes([b[2], b[3]]).to_f32();
            let q = if i < 16 {
                b[4 + i] & 15
            } else {
                b[4 + i - 16] >> 4
            };
            q as f32 * d + m
        }
        _ => unreachable!(),
    }
}

const TYPES: [(GgmlType, usize); 3] = [
    (GgmlType::Q8_0, 34),
    (GgmlType::Q4_0, 18),
    (GgmlType::Q4_1, 20),
];

#[test]
fn dequantisation_follows_the_format() -> Result<()> {
    let mut r = Lcg(1);
    for (ty, bs) in TYPES {
        let raw = blocks(ty, 3, 64, &mut r);
        let mut got = Vec::new();
        dequantize_into(ty, &raw, &mut got);
        let want: Vec<f32> = raw
            .chunks_exact(bs)
            .flat_map(|b| (0..32).map(move |i| by_hand(ty, b, i)))
            .collect();
        assert_eq!(got, want, "{ty:?}");
        let w = BlockQuantWeight::from_gguf(ty, 3, 64, &raw)?;
        assert_eq!(w.dequantize()?.to_vec::<f32>()?, want, "{ty:?} packed");
    }
    Ok(())
}

#[test]
fn block_product_equals_float64() -> Result<()> {
    let mut r = Lcg(2);
    for (ty, _) in TYPES {
        for (n, k) in [(5, 32), (70, 96), (300, 256)] {
            let raw = blocks(ty, n, k, &mut r);
            let w = BlockQuantWeight::from_gguf(ty, n, k, &raw)?;
            let wf = w.dequantize()?.to_vec::<f32>()?;
            for m in [1, 2, 3, 8] {
                let x: Vec<f32> = (0..m * k).map(|_| r.f()).collect();
                let mut out = vec![0f32; m * n];
                w.matmul_into(&x, m, &mut out)?;
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|c| x[i * k + c] as f64 * wf[j * k + c] as f64)
                            .sum();
                        let scale: f64 = (0..k)
                            .map(|c| (x[i * k + c] as f64 * wf[j * k + c] as f64).abs())
                            .sum();
                        let got = out[i * n + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + scale),
                            "{ty:?} [{n},{k}] m={m} ({i},{j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn packed_linear_is_used_only_while_it_is_valid() -> Result<()> {
    let mut r = Lcg(3);
    let (n, k) = (48, 64);
    let raw = blocks(GgmlType::Q4_1, n, k, &mut r);
    let p = BlockQuantWeight::from_gguf(GgmlType::Q4_1, n, k, &raw)?;
    let weight = p.dequantize()?;
    let bias = Tensor::from_vec((0..n).map(|i| i as f32 * 0.1).collect::<Vec<_>>(), &[n])?;
    let lin = Linear {
        weight: weight.clone(),
        bias: Some(bias.clone()),
        packed: Some(std::sync::Arc::new(p.tied_to(&weight)?)),
    };
    let x = Tensor::from_vec((0..2 * k).map(|_| r.f()).collect::<Vec<_>>(), &[1, 2, k])?;
    let want = x.linear(&weight, Some(&bias))?;
    let got = lin.forward(&x)?;
    assert_eq!(got.shape(), &[1, 2, n]);
    let close = |a: &Tensor, b: &Tensor| -> Result<f32> {
        Ok(a.to_vec::<f32>()?
            .iter()
            .zip(b.to_vec::<f32>()?)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max))
    };
    assert!(close(&got, &want)? < 1e-4);
    // The weight written in place: the stale blocks must not be used.
    weight.copy_(&Tensor::zeros(&[n, k], deepseek::DType::F32)?)?;
    let after = lin.forward(&x)?;
    let bias_only = x.linear(&weight, Some(&bias))?;
    assert!(
        close(&after, &bias_only)? == 0.0,
        "stale packed weight used"
    );
    // Gradients still flow through the float32 path.
    let w2 = BlockQuantWeight::from_gguf(GgmlType::Q4_1, n, k, &raw)?
        .dequantize()?
        .requires_grad_(true)?;
    let lin2 = Linear {
        weight: w2.clone(),
        bias: None,
        packed: Some(std::sync::Arc::new(
            BlockQuantWeight::from_gguf(GgmlType::Q4_1, n, k, &raw)?.tied_to(&w2)?,
        )),
    };
    lin2.forward(&x)?.sum_all()?.backward()?;
    assert!(w2.grad().is_some(), "no gradient through a packed Linear");
    Ok(())
}

#[test]
fn bad_blocks_are_errors() {
    assert!(BlockQuantWeight::from_gguf(GgmlType::Q8_0, 2, 32, &[0u8; 10]).is_err());
    assert!(BlockQuantWeight::from_gguf(GgmlType::Q4_1, 1, 40, &[0u8; 40]).is_err());
    assert!(BlockQuantWeight::from_gguf(GgmlType::F32, 1, 32, &[0u8; 128]).is_err());
}

/// A GGUF v3 file: three metadata values and two tensors (F32 [2, 3] and Q8_0 [2, 32]).
fn tiny_file(version: u32, q8_type: u32) -> Vec<u8> {
    let mut b = Vec::new();
    let s = |b: &mut Vec<u8>, t: &str| {
        b.extend((t.len() as u64).to_le_bytes());
        b.extend(t.as_bytes());
    };
    b.extend(b"GGUF");
    b.extend(version.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(3u64.to_le_bytes());
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "llama");
    s(&mut b, "llama.block_count");
    b.extend(4u32.to_le_bytes());
    b.extend(7u32.to_le_bytes());
    s(&mut b, "tokenizer.ggml.tokens");
    b.extend(9u32.to_le_bytes());
    b.extend(8u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    s(&mut b, "a");
    s(&mut b, "bc");
    // Tensor directory: dims innermost first.
    s(&mut b, "w");
    b.extend(2u32.to_le_bytes());
    b.extend(3u64.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    s(&mut b, "q");
    b.extend(2u32.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(q8_type.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    for i in 0..6 {
        b.extend((i as f32).to_le_bytes());
    }
    b.extend([0u8; 8]);
    for row in 0..2 {
        b.extend(f16::from_f32(0.5).to_le_bytes());
        b.extend((0..32).map(|i| (i as i8 - 16 + row) as u8));
    }
    b
}

#[test]
fn tiny_file_reads() -> Result<()> {
    let f = GgufFile::parse(tiny_file(3, 8), "tiny.gguf")?;
    assert_eq!(f.str("general.architecture")?, "llama");
    assert_eq!(f.u64("llama.block_count")?, 7);
    assert_eq!(f.strings("tokenizer.ggml.tokens")?, vec!["a", "bc"]);
    let w = f.tensor_f32("w")?;
    assert_eq!(w.shape(), &[2, 3]);
    assert_eq!(w.to_vec::<f32>()?, vec![0., 1., 2., 3., 4., 5.]);
    let q = f.tensor_f32("q")?;
    assert_eq!(q.shape(), &[2, 32]);
    assert_eq!(q.to_vec::<f32>()?[33], 0.5 * (1 - 16 + 1) as f32);
    Ok(())
}

#[test]
fn malformed_files_are_errors_naming_the_problem() {
    let good = tiny_file(3, 8);
    // Every truncation is an error (never a panic or a huge allocation).
    for cut in 0..good.len() {
        let e = GgufFile::parse(good[..cut].to_vec(), "cut.gguf");
        assert!(e.is_err(), "truncated at {cut} was accepted");
    }
    let e = GgufFile::parse(tiny_file(1, 8), "v1.gguf")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("version 1"), "{e}");
    let e = GgufFile::parse(b"GGML....".to_vec(), "x.gguf")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("magic"), "{e}");
    // An unsupported quantisation type is named when the tensor is read.
    let f = GgufFile::parse(tiny_file(3, 12), "k.gguf").unwrap();
    let e = f.tensor_f32("q").err().unwrap().to_string();
    assert!(
        e.contains("Q4_K") && e.contains("`q`") && e.contains("k.gguf"),
        "{e}"
    );
    // Huge counts and lengths are refused before allocating.
    let mut huge = good.clone();
    huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(GgufFile::parse(huge, "h.gguf").is_err());
    let mut flips = 0;
    let mut r = Lcg(9);
    for _ in 0..2000 {
        let mut m = good.clone();
        let i = r.next() as usize % m.len();
        m[i] ^= 1 << (r.next() % 8);
        if let Ok(f) = GgufFile::parse(m, "fuzz.gguf") {
            for t in f.tensors.clone() {
                let _ = f.tensor_f32(&t.name);
            }
            flips += 1;
        }
    }
    assert!(flips > 0);
}

/// Q8_0 and Q4_0 quantisation equal the `gguf` Python package's byte for byte
/// (tools/gen_gguf_quant_ref.py: random blocks at five scales, a zero block, ties, repeated and
/// negative extremes).
#[test]
fn quantisers_match_the_gguf_package_byte_for_byte() -> Result<()> {
    use deepseek::models::gguf::{quantize_q4_0, quantize_q8_0};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gguf_quant_reference.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let x: Vec<f32> = r["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let hex = |b: &[u8]| b.iter().map(|v| format!("{v:02x}")).collect::<String>();
    assert_eq!(
        hex(&quantize_q8_0(&x)?),
        r["q8_0"].as_str().unwrap(),
        "Q8_0"
    );
    assert_eq!(
        hex(&quantize_q4_0(&x)?),
        r["q4_0"].as_str().unwrap(),
        "Q4_0"
    );
    assert!(quantize_q8_0(&x[..31]).is_err());
    let mut nan = x[..32].to_vec();
    nan[7] = f32::NAN;
    assert!(quantize_q4_0(&nan)
        .unwrap_err()
        .to_string()
        .contains("value 7"));
    Ok(())
}

/// A file written by `write_gguf` reads back: metadata, F32 and quantised tensors.
#[test]
fn written_files_read_back() -> Result<()> {
    use deepseek::models::gguf::{
        quantize_q4_0, quantize_q8_0, write_gguf, GgufTensorData, GgufValue,
    };
    let mut r = Lcg(5);
    let x: Vec<f32> = (0..4 * 64).map(|_| r.f()).collect();
    let (q8, q4) = (quantize_q8_0(&x)?, quantize_q4_0(&x)?);
    let f32b: Vec<u8> = x[..6].iter().flat_map(|v| v.to_le_bytes()).collect();
    let dir = std::env::temp_dir().join(format!("deepseek-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.gguf");
    write_gguf(
        &path,
        &[
            ("general.architecture", GgufValue::String("llama".into())),
            ("n", GgufValue::U32(7)),
            (
                "names",
                GgufValue::Array(vec![
                    GgufValue::String("a".into()),
                    GgufValue::String("b".into()),
                ]),
            ),
        ],
        &[
            GgufTensorData {
                name: "f",
                ty: GgmlType::F32,
                shape: &[2, 3],
                bytes: &f32b,
            },
            GgufTensorData {
                name: "q8",
                ty: GgmlType::Q8_0,
                shape: &[4, 64],
                bytes: &q8,
            },
            GgufTensorData {
                name: "q4",
                ty: GgmlType::Q4_0,
                shape: &[4, 64],
                bytes: &q4,
            },
        ],
    )?;
    let f = GgufFile::open(&path)?;
    assert_eq!(f.u64("n")?, 7);
    assert_eq!(f.strings("names")?, vec!["a", "b"]);
    assert_eq!(f.tensor_f32("f")?.to_vec::<f32>()?, x[..6].to_vec());
    assert_eq!(f.raw(f.info("q8")?), &q8[..]);
    assert_eq!(f.raw(f.info("q4")?), &q4[..]);
    // Quantisation error within one step of each block's scale.
    let back = f.tensor_f32("q8")?.to_vec::<f32>()?;
    for (b, (xb, yb)) in x.chunks(32).zip(back.chunks(32)).enumerate() {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, c) in xb.iter().zip(yb) {
            assert!((a - c).abs() <= amax / 127.0, "block {b}: {a} vs {c}");
        }
    }
    // A tensor whose bytes do not fit its shape is refused.
    let e = write_gguf(
        dir.join("bad.gguf"),
        &[],
        &[GgufTensorData {
            name: "q",
            ty: GgmlType::Q8_0,
            shape: &[2, 64],
            bytes: &q8,
        }],
    );
    assert!(e.unwrap_err().to_string().contains("`q`"));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

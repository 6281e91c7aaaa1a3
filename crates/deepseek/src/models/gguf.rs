//! GGUF files (llama.cpp's single-file model format, versions 2 and 3): metadata, tensor
//! directory and the tensor types F32, F16, BF16, Q8_0, Q4_0 and Q4_1.
//!
//! ```no_run
//! let f = deepseek::models::gguf::GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! println!("{} tensors, architecture {}", f.tensors.len(), f.str("general.architecture")?);
//! let emb = f.tensor_f32("token_embd.weight")?; // dequantised, PyTorch's [rows, cols] order
//! # Ok::<(), deepseek::Error>(())
//! ```
//!
//! Every length, count, dimension and offset read from the file is checked against the file's
//! size before anything is allocated, so a truncated or corrupted file is an error naming the
//! file (and the tensor), never a panic or an attempt to allocate terabytes.

use crate::{Error, Result, Tensor};
use half::{bf16, f16};
use std::collections::BTreeMap;
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// Elements per block of the quantised types Q8_0, Q4_0 and Q4_1.
pub const QK: usize = 32;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v as u64),
            GgufValue::U16(v) => Some(v as u64),
            GgufValue::U32(v) => Some(v as u64),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A GGML tensor type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    /// Blocks of 32: an f16 scale `d` and 32 int8 `q`; `x = d·q`.
    Q8_0,
    /// Blocks of 32: an f16 scale `d` and 32 4-bit `q`; `x = d·(q − 8)`.
    Q4_0,
    /// Blocks of 32: f16 `d` and `m` and 32 4-bit `q`; `x = d·q + m`.
    Q4_1,
    /// A type this reader does not decode (its GGML number).
    Other(u32),
}

impl GgmlType {
    fn from_u32(v: u32) -> GgmlType {
        match v {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            30 => GgmlType::BF16,
            o => GgmlType::Other(o),
        }
    }
    /// The GGML name (`"Q4_1"`, ...).
    pub fn name(self) -> String {
        match self {
            GgmlType::F32 => "F32".into(),
            GgmlType::F16 => "F16".into(),
            GgmlType::BF16 => "BF16".into(),
            GgmlType::Q8_0 => "Q8_0".into(),
            GgmlType::Q4_0 => "Q4_0".into(),
            GgmlType::Q4_1 => "Q4_1".into(),
            GgmlType::Other(v) => {
                const NAMES: [&str; 40] = [
                    "F32",
                    "F16",
                    "Q4_0",
                    "Q4_1",
                    "Q4_2",
                    "Q4_3",
                    "Q5_0",
                    "Q5_1",
                    "Q8_0",
                    "Q8_1",
                    "Q2_K",
                    "Q3_K",
                    "Q4_K",
                    "Q5_K",
                    "Q6_K",
                    "Q8_K",
                    "IQ2_XXS",
                    "IQ2_XS",
                    "IQ3_XXS",
                    "IQ1_S",
                    "IQ4_NL",
                    "IQ3_S",
                    "IQ2_S",
                    "IQ4_XS",
                    "I8",
                    "I16",
                    "I32",
                    "I64",
                    "F64",
                    "IQ1_M",
                    "BF16",
                    "Q4_0_4_4",
                    "Q4_0_4_8",
                    "Q4_0_8_8",
                    "TQ1_0",
                    "TQ2_0",
                    "IQ4_NL_4_4",
                    "IQ4_NL_4_8",
                    "IQ4_NL_8_8",
                    "MXFP4",
                ];
                NAMES
                    .get(v as usize)
                    .map_or_else(|| format!("type {v}"), |n| format!("{n} (type {v})"))
            }
        }
    }
    /// `(elements per block, bytes per block)`, or None for a type this reader cannot decode.
    pub fn block(self) -> Option<(usize, usize)> {
        match self {
            GgmlType::F32 => Some((1, 4)),
            GgmlType::F16 | GgmlType::BF16 => Some((1, 2)),
            GgmlType::Q8_0 => Some((QK, 34)),
            GgmlType::Q4_0 => Some((QK, 18)),
            GgmlType::Q4_1 => Some((QK, 20)),
            GgmlType::Other(_) => None,
        }
    }
}

/// One entry of the tensor directory.
#[derive(Debug, Clone)]
pub struct GgufTensorInfo {
    pub name: String,
    /// PyTorch's order: outermost first (GGUF stores the innermost dimension first).
    pub shape: Vec<usize>,
    pub ty: GgmlType,
    /// Byte offset of the data from the start of the file.
    pub start: usize,
    /// Byte length of the data.
    pub len: usize,
}

impl GgufTensorInfo {
    /// Elements of the tensor.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A parsed GGUF file (the whole file is held in memory).
pub struct GgufFile {
    /// The path, for messages.
    pub path: String,
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata, by key.
    pub metadata: BTreeMap<String, GgufValue>,
    /// The tensor directory, in file order.
    pub tensors: Vec<GgufTensorInfo>,
    bytes: Vec<u8>,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::io(self.path, format!("not a valid GGUF file: {what}"))
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.b.len() - self.pos < n {
            return Err(self.err(format!(
                "truncated while reading {what} at byte {} ({} bytes needed, {} left)",
                self.pos,
                n,
                self.b.len() - self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("length checked"))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }
    /// A length that must fit in what is left of the file at `min_size` bytes per item.
    fn len(&mut self, what: &str, min_size: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.b.len() - self.pos) as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err(self.err(format!(
                "{what} {n} is larger than the {left} bytes left in the file"
            )));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.len(what, 1)?;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(self.arr::<1>(key)?[0]),
            1 => GgufValue::I8(self.arr::<1>(key)?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.arr(key)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.arr(key)?)),
            4 => GgufValue::U32(self.u32(key)?),
            5 => GgufValue::I32(i32::from_le_bytes(self.arr(key)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.arr(key)?)),
            7 => match self.arr::<1>(key)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(self.err(format!("metadata `{key}`: bool byte {b}"))),
            },
            8 => GgufValue::String(self.string(key)?),
            9 => {
                if depth > 8 {
                    return Err(self.err(format!("metadata `{key}`: arrays nested too deep")));
                }
                let et = self.u32(key)?;
                let n = self.len(&format!("metadata `{key}` array length"), 1)?;
                let mut v = Vec::new();
                v.try_reserve_exact(n)
                    .map_err(|_| Error::out_of_memory("GgufFile::open", n as u128 * 16))?;
                for _ in 0..n {
                    v.push(self.value(et, key, depth + 1)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64(key)?),
            11 => GgufValue::I64(i64::from_le_bytes(self.arr(key)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.arr(key)?)),
            other => return Err(self.err(format!("metadata `{key}`: unknown value type {other}"))),
        })
    }
}

impl GgufFile {
    /// Reads and parses a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let p = path.display().to_string();
        let mut f =
            std::fs::File::open(path).map_err(|e| Error::io(&p, format!("cannot open: {e}")))?;
        let len = f
            .metadata()
            .map_err(|e| Error::io(&p, format!("cannot stat: {e}")))?
            .len();
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len as usize)
            .map_err(|_| Error::out_of_memory(format!("reading {p}"), len as u128))?;
        use std::io::Read;
        f.read_to_end(&mut bytes)
            .map_err(|e| Error::io(&p, format!("cannot read: {e}")))?;
        GgufFile::parse(bytes, &p)
    }

    /// Parses the bytes of a GGUF file (`path` names it in messages).
    pub fn parse(bytes: Vec<u8>, path: &str) -> Result<GgufFile> {
        let mut c = Cursor {
            b: &bytes,
            pos: 0,
            path,
        };
        if c.take(4, "the magic number")? != MAGIC {
            return Err(c.err("it does not start with the magic bytes `GGUF`"));
        }
        let version = c.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::io(
                path,
                format!("GGUF version {version} is not supported (versions 2 and 3 are)"),
            ));
        }
        // Each directory entry takes at least 8 (name length) + 4 + 4 + 8 bytes.
        let n_tensors = c.len("the tensor count", 24)?;
        let n_kv = c.len("the metadata count", 12)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("a metadata key")?;
            let ty = c.u32(&key)?;
            let v = c.value(ty, &key, 0)?;
            metadata.insert(key, v);
        }
        let align = match metadata.get("general.alignment") {
            None => 32,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a as usize,
                _ => return Err(c.err(format!("general.alignment {v:?} is not a power of two"))),
            },
        };
        let mut raw = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = c.string("a tensor name")?;
            let nd = c.u32(&name)? as usize;
            if nd == 0 || nd > 4 {
                return Err(c.err(format!(
                    "tensor `{name}` has {nd} dimensions (1 to 4 allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(nd);
            for _ in 0..nd {
                dims.push(c.u64(&name)?);
            }
            let ty = GgmlType::from_u32(c.u32(&name)?);
            let off = c.u64(&name)?;
            raw.push((name, dims, ty, off));
        }
        let data_start = c.pos.div_ceil(align) * align;
        let file_len = bytes.len();
        let mut tensors = Vec::with_capacity(n_tensors);
        for (name, dims, ty, off) in raw {
            let bad = |msg: String| Error::io(path, format!("tensor `{name}`: {msg}"));
            let numel = dims
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .filter(|&n| n <= file_len as u64 * 2)
                .ok_or_else(|| bad(format!("dimensions {dims:?} are larger than the file")))?
                as usize;
            let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
            let len = match ty.block() {
                Some((per, size)) => {
                    let row = shape[shape.len() - 1];
                    if !row.is_multiple_of(per) {
                        return Err(bad(format!(
                            "rows of {row} elements are not whole {} blocks of {per}",
                            ty.name()
                        )));
                    }
                    numel / per * size
                }
                // Unknown types are only an error when the tensor is read.
                None => 0,
            };
            if off % align as u64 != 0 {
                return Err(bad(format!("data offset {off} is not aligned to {align}")));
            }
            let start = (data_start as u64).saturating_add(off);
            if start.saturating_add(len as u64) > file_len as u64 {
                return Err(bad(format!(
                    "its data ({len} bytes at {start}) lies past the end of the file ({file_len} bytes): the file is truncated"
                )));
            }
            tensors.push(GgufTensorInfo {
                name,
                shape,
                ty,
                start: start as usize,
                len,
            });
        }
        Ok(GgufFile {
            path: path.to_string(),
            version,
            metadata,
            tensors,
            bytes,
        })
    }

    /// Metadata value `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }
    fn missing(&self, key: &str, what: &str) -> Error {
        Error::io(
            &self.path,
            format!("metadata `{key}` is missing or not {what}"),
        )
    }
    /// Metadata `key` as an unsigned integer.
    pub fn u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(|v| v.as_u64())
            .ok_or_else(|| self.missing(key, "an unsigned integer"))
    }
    /// Metadata `key` as a float.
    pub fn f64(&self, key: &str) -> Result<f64> {
        self.get(key)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| self.missing(key, "a number"))
    }
    /// Metadata `key` as a string.
    pub fn str(&self, key: &str) -> Result<&str> {
        self.get(key)
            .and_then(|v| v.as_str())
            .ok_or_else(|| self.missing(key, "a string"))
    }
    /// Metadata `key` as an array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>> {
        match self.get(key) {
            Some(GgufValue::Array(v)) => v
                .iter()
                .map(|x| {
                    x.as_str()
                        .ok_or_else(|| self.missing(key, "an array of strings"))
                })
                .collect(),
            _ => Err(self.missing(key, "an array of strings")),
        }
    }
    /// The directory entry of tensor `name`.
    pub fn info(&self, name: &str) -> Result<&GgufTensorInfo> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::io(&self.path, format!("the file has no tensor `{name}`")))
    }
    /// The raw (possibly quantised) bytes of a tensor.
    pub fn raw(&self, info: &GgufTensorInfo) -> &[u8] {
        &self.bytes[info.start..info.start + info.len]
    }
    fn unsupported(&self, info: &GgufTensorInfo) -> Error {
        Error::io(
            &self.path,
            format!(
                "tensor `{}` has type {}, which deepseek cannot read (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)",
                info.name,
                info.ty.name()
            ),
        )
    }
    /// Tensor `name` dequantised to float32, in PyTorch's shape order.
    pub fn tensor_f32(&self, name: &str) -> Result<Tensor> {
        let info = self.info(name)?;
        if info.ty.block().is_none() {
            return Err(self.unsupported(info));
        }
        let mut out = crate::memory::try_alloc::<f32>("gguf dequantize", info.numel())?;
        dequantize_into(info.ty, self.raw(info), &mut out);
        Tensor::from_vec(out, &info.shape)
    }
}

/// Decodes `bytes` of type `ty` into float32 values appended to `out` (`bytes` must hold
/// whole blocks; types without [`GgmlType::block`] append nothing).
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut Vec<f32>) {
    let h = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    match ty {
        GgmlType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        GgmlType::F16 => out.extend(bytes.chunks_exact(2).map(h)),
        GgmlType::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        GgmlType::Q8_0 => {
            for b in bytes.chunks_exact(34) {
                let d = h(b);
                out.extend(b[2..].iter().map(|&q| d * (q as i8) as f32));
            }
        }
        GgmlType::Q4_0 => {
            for b in bytes.chunks_exact(18) {
                let d = h(b);
                let q = &b[2..];
                out.extend(q.iter().map(|&v| ((v & 15) as f32 - 8.0) * d));
                out.extend(q.iter().map(|&v| ((v >> 4) as f32 - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in bytes.chunks_exact(20) {
                let (d, m) = (h(b), h(&b[2..]));
                let q = &b[4..];
                out.extend(q.iter().map(|&v| (v & 15) as f32 * d + m));
                out.extend(q.iter().map(|&v| (v >> 4) as f32 * d + m));
            }
        }
        GgmlType::Other(_) => {}
    }
}

/// llama.cpp's `roundf` as the `gguf` package computes it (half away from zero), in f32.
fn roundf(v: f32) -> f32 {
    let a = v.abs();
    let fl = a.floor();
    let b = fl + (2.0 * (a - fl)).floor();
    if v < 0.0 {
        -b
    } else if v > 0.0 {
        b
    } else {
        0.0
    }
}

/// Quantises `x` (a multiple of 32 values, finite) to Q8_0 blocks, byte for byte as the
/// `gguf` Python package (and ggml's reference quantiser) does.
pub fn quantize_q8_0(x: &[f32]) -> Result<Vec<u8>> {
    check_quant_input(x, "Q8_0")?;
    let mut out = crate::memory::try_alloc::<u8>("quantize_q8_0", x.len() / QK * 34)?;
    for b in x.chunks_exact(QK) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(b.iter().map(|&v| roundf(v * id) as i8 as u8));
    }
    Ok(out)
}

/// Quantises `x` (a multiple of 32 values, finite) to Q4_0 blocks, byte for byte as the
/// `gguf` Python package does: `d = max / −8` with `max` the value of largest magnitude
/// (the first one on ties), `q = min(trunc(x/d + 8.5), 15)`.
pub fn quantize_q4_0(x: &[f32]) -> Result<Vec<u8>> {
    check_quant_input(x, "Q4_0")?;
    let mut out = crate::memory::try_alloc::<u8>("quantize_q4_0", x.len() / QK * 18)?;
    for b in x.chunks_exact(QK) {
        let mut max = b[0];
        for &v in &b[1..] {
            if v.abs() > max.abs() {
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        let q = |v: f32| ((v * id + 8.5).trunc() as u8).min(15);
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend((0..16).map(|j| q(b[j]) | (q(b[j + 16]) << 4)));
    }
    Ok(out)
}

fn check_quant_input(x: &[f32], ty: &str) -> Result<()> {
    if !x.len().is_multiple_of(QK) {
        return Err(Error::value(
            format!("quantize {ty}"),
            format!("{} values are not whole blocks of {QK}", x.len()),
        ));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::value(
            format!("quantize {ty}"),
            format!("value {i} is {} (not finite)", x[i]),
        ));
    }
    Ok(())
}

/// One tensor to write with [`write_gguf`]: name, type, PyTorch-order shape and its encoded
/// bytes (F32 little-endian values, or blocks from [`quantize_q8_0`] / [`quantize_q4_0`]).
pub struct GgufTensorData<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    pub shape: &'a [usize],
    pub bytes: &'a [u8],
}

/// Writes a GGUF version-3 file (alignment 32) atomically (a temporary file renamed into
/// place): `metadata` in the given order, then the tensor directory and the data.
pub fn write_gguf(
    path: impl AsRef<Path>,
    metadata: &[(&str, GgufValue)],
    tensors: &[GgufTensorData],
) -> Result<()> {
    let path = path.as_ref();
    let p = path.display().to_string();
    fn s(b: &mut Vec<u8>, t: &str) {
        b.extend((t.len() as u64).to_le_bytes());
        b.extend(t.as_bytes());
    }
    fn ty_of(v: &GgufValue) -> u32 {
        match v {
            GgufValue::U8(_) => 0,
            GgufValue::I8(_) => 1,
            GgufValue::U16(_) => 2,
            GgufValue::I16(_) => 3,
            GgufValue::U32(_) => 4,
            GgufValue::I32(_) => 5,
            GgufValue::F32(_) => 6,
            GgufValue::Bool(_) => 7,
            GgufValue::String(_) => 8,
            GgufValue::Array(_) => 9,
            GgufValue::U64(_) => 10,
            GgufValue::I64(_) => 11,
            GgufValue::F64(_) => 12,
        }
    }
    fn val(b: &mut Vec<u8>, v: &GgufValue) -> std::result::Result<(), String> {
        match v {
            GgufValue::U8(x) => b.push(*x),
            GgufValue::I8(x) => b.push(*x as u8),
            GgufValue::U16(x) => b.extend(x.to_le_bytes()),
            GgufValue::I16(x) => b.extend(x.to_le_bytes()),
            GgufValue::U32(x) => b.extend(x.to_le_bytes()),
            GgufValue::I32(x) => b.extend(x.to_le_bytes()),
            GgufValue::U64(x) => b.extend(x.to_le_bytes()),
            GgufValue::I64(x) => b.extend(x.to_le_bytes()),
            GgufValue::F32(x) => b.extend(x.to_le_bytes()),
            GgufValue::F64(x) => b.extend(x.to_le_bytes()),
            GgufValue::Bool(x) => b.push(*x as u8),
            GgufValue::String(x) => s(b, x),
            GgufValue::Array(items) => {
                let et = items.first().map_or(4, ty_of);
                if items.iter().any(|i| ty_of(i) != et) {
                    return Err("array elements must all have one type".into());
                }
                b.extend(et.to_le_bytes());
                b.extend((items.len() as u64).to_le_bytes());
                for i in items {
                    val(b, i)?;
                }
            }
        }
        Ok(())
    }
    let mut b = Vec::new();
    b.extend(MAGIC);
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        s(&mut b, k);
        b.extend(ty_of(v).to_le_bytes());
        val(&mut b, v).map_err(|e| Error::io(&p, format!("metadata `{k}`: {e}")))?;
    }
    let mut off = 0usize;
    let mut offsets = Vec::with_capacity(tensors.len());
    for t in tensors {
        let bad = |m: String| Error::io(&p, format!("tensor `{}`: {m}", t.name));
        let Some((per, size)) = t.ty.block() else {
            return Err(bad(format!("type {} cannot be written", t.ty.name())));
        };
        let numel: usize = t.shape.iter().product();
        if t.shape.is_empty() || t.shape.len() > 4 || !numel.is_multiple_of(per) {
            return Err(bad(format!(
                "shape {:?} does not fit {}",
                t.shape,
                t.ty.name()
            )));
        }
        if t.bytes.len() != numel / per * size {
            return Err(bad(format!(
                "{} bytes for shape {:?} of {} ({} expected)",
                t.bytes.len(),
                t.shape,
                t.ty.name(),
                numel / per * size
            )));
        }
        s(&mut b, t.name);
        b.extend((t.shape.len() as u32).to_le_bytes());
        for &d in t.shape.iter().rev() {
            b.extend((d as u64).to_le_bytes());
        }
        let code: u32 = match t.ty {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::BF16 => 30,
            GgmlType::Other(v) => v,
        };
        b.extend(code.to_le_bytes());
        b.extend((off as u64).to_le_bytes());
        offsets.push(off);
        off = (off + t.bytes.len()).div_ceil(32) * 32;
    }
    let start = b.len().div_ceil(32) * 32;
    b.resize(start, 0);
    for (t, o) in tensors.iter().zip(offsets) {
        b.resize(start + o, 0);
        b.extend_from_slice(t.bytes);
    }
    let tmp = path.with_extension("gguf.part");
    std::fs::write(&tmp, &b).map_err(|e| Error::io(&p, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(&p, format!("cannot rename: {e}")))?;
    Ok(())
}

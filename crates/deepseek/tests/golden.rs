//! Golden cases from PyTorch (see DESIGN.md, "Testing").
//!
//! Runs every case of `../shared/golden/golden.json` (or the file named by `DEEPSEEK_GOLDEN`,
//! with the `.safetensors` of the same stem beside it): builds the inputs, calls the op with
//! the parameters read from the case's `attrs`, compares the outputs, then the gradients of
//! `sum_j (out_j * cot_j).sum()` with respect to every input that has an expected gradient.
//!
//! Environment:
//! - `DEEPSEEK_GOLDEN`: another golden file (same format);
//! - `DEEPSEEK_GOLDEN_FILTER`: run only the cases whose name contains this substring;
//! - `DEEPSEEK_GOLDEN_VERBOSE=1`: print every case with its time.
//!
//! Ends with `golden: N passed, M failed`; exits with code 1 when M > 0.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use deepseek::nn::functional as F;
use deepseek::ops::{BinaryOp, UnaryOp};
use deepseek::optim::{Adam, AdamConfig, AdamW, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig};
use deepseek::{DType, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

// ------------------------------------------------------------------------------------------
// Errors of one case.

/// Why a case failed (an op error, a bad attr, a wrong value ...).
#[derive(Debug)]
struct Fail(String);

impl From<deepseek::Error> for Fail {
    fn from(e: deepseek::Error) -> Self {
        Fail(format!("error: {e}"))
    }
}
impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail(s)
    }
}
impl From<&str> for Fail {
    fn from(s: &str) -> Self {
        Fail(s.to_string())
    }
}

type R<T> = std::result::Result<T, Fail>;

macro_rules! fail {
    ($($t:tt)*) => { return Err(Fail(format!($($t)*))) };
}

// ------------------------------------------------------------------------------------------
// Attributes: typed access with PyTorch's defaults; every key must be read.

/// The `attrs` of one case. `null` and a missing key both mean "PyTorch's default"; every key
/// present must be read by the dispatch, or the case fails (no parameter is silently ignored).
struct Attrs<'a> {
    map: Option<&'a serde_json::Map<String, Value>>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Attrs<'a> {
    fn new(v: &'a Value) -> R<Self> {
        let map = match v {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => fail!("attrs is not an object: {other}"),
        };
        Ok(Attrs {
            map,
            used: RefCell::new(BTreeSet::new()),
        })
    }

    /// The value of `key`, `None` when missing or null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.used.borrow_mut().insert(key.to_string());
        match self.map.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.map
            .map(|m| m.keys().filter(|k| !used.contains(*k)).cloned().collect())
            .unwrap_or_default()
    }

    fn f64_opt(&self, key: &str) -> R<Option<f64>> {
        self.get(key)
            .map(|v| as_f64(v).map_err(|e| Fail(format!("attr {key}: {e}"))))
            .transpose()
    }
    fn f64_or(&self, key: &str, default: f64) -> R<f64> {
        Ok(self.f64_opt(key)?.unwrap_or(default))
    }
    fn i64_opt(&self, key: &str) -> R<Option<i64>> {
        self.get(key)
            .map(|v| as_i64(v).map_err(|e| Fail(format!("attr {key}: {e}"))))
            .transpose()
    }
    fn i64_or(&self, key: &str, default: i64) -> R<i64> {
        Ok(self.i64_opt(key)?.unwrap_or(default))
    }
    fn usize_or(&self, key: &str, default: usize) -> R<usize> {
        let v = self.i64_or(key, default as i64)?;
        usize::try_from(v)
            .map_err(|_| Fail(format!("attr {key}: expected a non-negative int, got {v}")))
    }
    fn isize_req(&self, key: &str) -> R<isize> {
        match self.i64_opt(key)? {
            Some(v) => Ok(v as isize),
            None => fail!("attr {key}: required"),
        }
    }
    fn isize_or(&self, key: &str, default: isize) -> R<isize> {
        Ok(self.i64_or(key, default as i64)? as isize)
    }
    fn bool_or(&self, key: &str, default: bool) -> R<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                Ok(n.as_i64() == Some(1))
            }
            Some(v) => fail!("attr {key}: expected a bool, got {v}"),
        }
    }
    fn str_or(&self, key: &str, default: &'a str) -> R<&'a str> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(v) => fail!("attr {key}: expected a string, got {v}"),
        }
    }
    /// An int or a list of ints (`None` when missing/null).
    fn ints_opt(&self, key: &str) -> R<Option<Vec<i64>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Ok(Some(
                as_ints(v).map_err(|e| Fail(format!("attr {key}: {e}")))?,
            )),
        }
    }
    fn ints_req(&self, key: &str) -> R<Vec<i64>> {
        match self.ints_opt(key)? {
            Some(v) => Ok(v),
            None => fail!("attr {key}: required"),
        }
    }
    fn isizes_req(&self, key: &str) -> R<Vec<isize>> {
        Ok(self
            .ints_req(key)?
            .into_iter()
            .map(|v| v as isize)
            .collect())
    }
    fn usizes_req(&self, key: &str) -> R<Vec<usize>> {
        self.ints_req(key)?
            .into_iter()
            .map(|v| {
                usize::try_from(v)
                    .map_err(|_| Fail(format!("attr {key}: negative value {v} not supported")))
            })
            .collect()
    }
    /// An int or a list of one or two ints, as a pair (PyTorch's `_pair`).
    fn pair_opt(&self, key: &str) -> R<Option<[usize; 2]>> {
        let Some(v) = self.ints_opt(key)? else {
            return Ok(None);
        };
        let u = |x: i64| {
            usize::try_from(x).map_err(|_| Fail(format!("attr {key}: negative value {x}")))
        };
        match v.as_slice() {
            [a] => Ok(Some([u(*a)?, u(*a)?])),
            [a, b] => Ok(Some([u(*a)?, u(*b)?])),
            _ => fail!("attr {key}: expected an int or a pair, got {v:?}"),
        }
    }
    fn pair_or(&self, key: &str, default: [usize; 2]) -> R<[usize; 2]> {
        Ok(self.pair_opt(key)?.unwrap_or(default))
    }
    /// An int or a one-element list (conv1d's stride/padding/dilation).
    fn single_or(&self, key: &str, default: usize) -> R<usize> {
        let Some(v) = self.ints_opt(key)? else {
            return Ok(default);
        };
        match v.as_slice() {
            [a] if *a >= 0 => Ok(*a as usize),
            _ => fail!("attr {key}: expected a non-negative int, got {v:?}"),
        }
    }
    /// `dim`: null/missing -> None (all dims), an int or a list.
    fn dims_opt(&self, key: &str) -> R<Option<Vec<isize>>> {
        Ok(self
            .ints_opt(key)?
            .map(|v| v.into_iter().map(|d| d as isize).collect()))
    }
    /// A pair of floats (Adam's betas).
    fn f64_pair_or(&self, key: &str, default: (f64, f64)) -> R<(f64, f64)> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Array(a)) if a.len() == 2 => Ok((
                as_f64(&a[0]).map_err(|e| Fail(format!("attr {key}: {e}")))?,
                as_f64(&a[1]).map_err(|e| Fail(format!("attr {key}: {e}")))?,
            )),
            Some(v) => fail!("attr {key}: expected a pair of floats, got {v}"),
        }
    }
}

fn as_f64(v: &Value) -> std::result::Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("bad number {n}")),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => match s.as_str() {
            "inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            "nan" | "NaN" => Ok(f64::NAN),
            _ => Err(format!("expected a number, got {s:?}")),
        },
        other => Err(format!("expected a number, got {other}")),
    }
}

fn as_i64(v: &Value) -> std::result::Result<i64, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else {
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 => Ok(f as i64),
                    _ => Err(format!("expected an int, got {n}")),
                }
            }
        }
        Value::Bool(b) => Ok(*b as i64),
        other => Err(format!("expected an int, got {other}")),
    }
}

fn as_ints(v: &Value) -> std::result::Result<Vec<i64>, String> {
    match v {
        Value::Array(a) => a.iter().map(as_i64).collect(),
        other => Ok(vec![as_i64(other)?]),
    }
}

/// Python's `json.dump` writes `Infinity`, `-Infinity` and `NaN` as bare words, which are not
/// JSON; turn them into the strings "inf", "-inf", "nan" (outside of strings only).
fn sanitize_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let (mut i, mut in_str, mut esc) = (0usize, false, false);
    let mut start = 0usize;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        let mut replaced = false;
        for (word, repl) in [
            ("-Infinity", "\"-inf\""),
            ("Infinity", "\"inf\""),
            ("NaN", "\"nan\""),
        ] {
            if b[i..].starts_with(word.as_bytes()) {
                out.push_str(&text[start..i]);
                out.push_str(repl);
                i += word.len();
                start = i;
                replaced = true;
                break;
            }
        }
        if !replaced {
            i += 1;
        }
    }
    out.push_str(&text[start..]);
    out
}

// ------------------------------------------------------------------------------------------
// Loading tensors.

fn load_tensor(st: &SafeTensors, name: &str) -> R<Tensor> {
    let v = st
        .tensor(name)
        .map_err(|e| Fail(format!("tensor {name}: {e}")))?;
    let shape = v.shape().to_vec();
    let d = v.data();
    let t = match v.dtype() {
        Dtype::F32 => Tensor::from_vec(
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>(),
            &shape,
        )?,
        Dtype::F64 => Tensor::from_vec(
            d.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect::<Vec<f32>>(),
            &shape,
        )?,
        Dtype::F16 => Tensor::from_vec(
            d.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect::<Vec<f32>>(),
            &shape,
        )?,
        Dtype::BF16 => Tensor::from_vec(
            d.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect::<Vec<f32>>(),
            &shape,
        )?,
        Dtype::I64 => Tensor::from_vec(
            d.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<i64>>(),
            &shape,
        )?,
        Dtype::I32 => Tensor::from_vec(
            d.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect::<Vec<i64>>(),
            &shape,
        )?,
        Dtype::I16 => Tensor::from_vec(
            d.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect::<Vec<i64>>(),
            &shape,
        )?,
        Dtype::I8 => Tensor::from_vec(
            d.iter().map(|&x| x as i8 as i64).collect::<Vec<i64>>(),
            &shape,
        )?,
        Dtype::U8 => Tensor::from_vec(d.iter().map(|&x| x as i64).collect::<Vec<i64>>(), &shape)?,
        Dtype::BOOL => Tensor::from_vec(d.iter().map(|&x| x != 0).collect::<Vec<bool>>(), &shape)?,
        other => fail!("tensor {name}: unsupported safetensors dtype {other:?}"),
    };
    Ok(t)
}

/// The kind of a dtype for comparisons: float, int or bool.
fn kind(dt: DType) -> &'static str {
    if dt.is_float() {
        "float"
    } else if dt == DType::Bool {
        "bool"
    } else {
        "int"
    }
}

// ------------------------------------------------------------------------------------------
// Comparison.

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        if shape[d] > 0 {
            idx[d] = i % shape[d];
            i /= shape[d];
        }
    }
    idx
}

/// Compares `got` with `want` elementwise: `|a-b| <= atol + rtol*|b|`.
fn compare(what: &str, got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> R<()> {
    if got.shape() != want.shape() {
        fail!(
            "{what}: shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        );
    }
    if kind(got.dtype()) != kind(want.dtype()) {
        fail!("{what}: dtype {}, expected {}", got.dtype(), want.dtype());
    }
    let a = got.to_vec_f64()?;
    let b = want.to_vec_f64()?;
    if a.len() != b.len() {
        fail!("{what}: {} elements, expected {}", a.len(), b.len());
    }
    let mut bad = 0usize;
    let mut worst: Option<(usize, f64)> = None; // (index, |a-b|), NaN counts as infinite
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        let ok = if y.is_nan() {
            x.is_nan()
        } else if y.is_infinite() {
            x == y
        } else {
            (x - y).abs() <= atol + rtol * y.abs()
        };
        if !ok {
            bad += 1;
            let err = if x.is_nan() || y.is_nan() {
                f64::INFINITY
            } else {
                (x - y).abs()
            };
            let err = if err.is_nan() { f64::INFINITY } else { err };
            if worst.is_none_or(|(_, w)| err > w) {
                worst = Some((i, err));
            }
        }
    }
    if let Some((i, err)) = worst {
        fail!(
            "{what}: max |a-b| = {err:.4e} at index {:?} (flat {i}): got {}, expected {}; {bad}/{} elements out of tolerance (rtol {rtol:e}, atol {atol:e})",
            unravel(i, want.shape()),
            a[i],
            b[i],
            a.len()
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The cases.

struct Case<'a> {
    op: &'a str,
    attrs: Attrs<'a>,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
    cotangents: Vec<Tensor>,
    grads: Vec<Option<Tensor>>,
    rtol: f64,
    atol: f64,
}

fn names(v: &Value, key: &str) -> R<Vec<Option<String>>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                other => fail!("{key}: expected a tensor name, got {other}"),
            })
            .collect(),
        Some(other) => fail!("{key}: expected a list, got {other}"),
    }
}

fn load_all(st: &SafeTensors, ns: &[Option<String>], key: &str) -> R<Vec<Tensor>> {
    ns.iter()
        .map(|n| match n {
            Some(n) => load_tensor(st, n),
            None => fail!("{key}: null entry"),
        })
        .collect()
}

fn build_case<'a>(v: &'a Value, st: &SafeTensors) -> R<Case<'a>> {
    let op = v
        .get("op")
        .and_then(Value::as_str)
        .ok_or("case without an op")?;
    let attrs = Attrs::new(v.get("attrs").unwrap_or(&Value::Null))?;
    let inputs = load_all(st, &names(v, "inputs")?, "inputs")?;
    let outputs = load_all(st, &names(v, "outputs")?, "outputs")?;
    let cotangents = load_all(st, &names(v, "cotangents")?, "cotangents")?;
    let grads = names(v, "grads")?
        .iter()
        .map(|n| n.as_ref().map(|n| load_tensor(st, n)).transpose())
        .collect::<R<Vec<_>>>()?;
    let rtol = v.get("rtol").and_then(Value::as_f64).unwrap_or(1e-4);
    let atol = v.get("atol").and_then(Value::as_f64).unwrap_or(1e-5);
    Ok(Case {
        op,
        attrs,
        inputs,
        outputs,
        cotangents,
        grads,
        rtol,
        atol,
    })
}

/// Input `i`, or an error naming the missing input.
fn input(x: &[Tensor], i: usize) -> R<&Tensor> {
    x.get(i)
        .ok_or_else(|| Fail(format!("input x{i} missing ({} inputs given)", x.len())))
}

/// Dims for a reduction: the given ones, or every dim of `x`.
fn all_dims(x: &Tensor) -> Vec<isize> {
    (0..x.rank() as isize).collect()
}

/// Runs the op of a case on its inputs (already marked requires_grad where needed).
fn run_op(op: &str, a: &Attrs, x: &[Tensor]) -> R<Vec<Tensor>> {
    let x0 = || input(x, 0);
    let x1 = || input(x, 1);
    let opt = |i: usize| x.get(i);
    let one = |t: Tensor| Ok(vec![t]);
    match op {
        // ---------------------------------------------------------------- unary
        // Every unary primitive, dispatched through the core's declaration table (its key and
        // attributes); gelu's `approximate` is a string and picks one of two primitives.
        "gelu" => one(x0()?.gelu(a.str_or("approximate", "none")?)?),
        _ if UnaryOp::from_key(op, &|k| a.f64_opt(k).map_err(|e| e.0)).is_some() => {
            let u = UnaryOp::from_key(op, &|k| a.f64_opt(k).map_err(|e| e.0))
                .expect("checked above")
                .map_err(Fail)?;
            one(x0()?.unary(u)?)
        }

        // ---------------------------------------------------------------- binary
        // Every binary primitive, through the core's declaration table.
        _ if BinaryOp::from_key(op).is_some() => {
            let b = BinaryOp::from_key(op).expect("checked above");
            one(x0()?.binary(x1()?, b)?)
        }

        // ---------------------------------------------------------------- reductions
        "sum" => {
            let keep = a.bool_or("keepdim", false)?;
            match a.dims_opt("dim")? {
                Some(d) => one(x0()?.sum_dim(&d, keep)?),
                None if keep => one(x0()?.sum_dim(&all_dims(x0()?), true)?),
                None => one(x0()?.sum_all()?),
            }
        }
        "mean" => {
            let keep = a.bool_or("keepdim", false)?;
            match a.dims_opt("dim")? {
                Some(d) => one(x0()?.mean_dim(&d, keep)?),
                None if keep => one(x0()?.mean_dim(&all_dims(x0()?), true)?),
                None => one(x0()?.mean_all()?),
            }
        }
        "amax" | "amin" | "logsumexp" => {
            let keep = a.bool_or("keepdim", false)?;
            let t = x0()?;
            let d = a.dims_opt("dim")?.unwrap_or_else(|| all_dims(t));
            one(match op {
                "amax" => t.amax(&d, keep)?,
                "amin" => t.amin(&d, keep)?,
                _ => t.logsumexp(&d, keep)?,
            })
        }
        "prod" => {
            let keep = a.bool_or("keepdim", false)?;
            let t = x0()?;
            match a.dims_opt("dim")? {
                Some(d) if d.len() == 1 => one(t.prod_dim(d[0], keep)?),
                Some(d) => fail!("attr dim: prod takes one dim, got {d:?}"),
                None => {
                    let p = t.reshape(&[t.numel()])?.prod_dim(0, false)?;
                    if keep {
                        one(p.reshape(&vec![1; t.rank()])?)
                    } else {
                        one(p)
                    }
                }
            }
        }
        "vector_norm" | "norm" => {
            let ord = a.f64_or("ord", 2.0)?;
            let d = a.dims_opt("dim")?;
            one(x0()?.vector_norm(ord, d.as_deref(), a.bool_or("keepdim", false)?)?)
        }
        "var" | "std" => {
            let d = a.dims_opt("dim")?;
            let correction = match a.f64_opt("correction")? {
                Some(c) => c,
                None => {
                    if a.bool_or("unbiased", true)? {
                        1.0
                    } else {
                        0.0
                    }
                }
            };
            let keep = a.bool_or("keepdim", false)?;
            one(if op == "var" {
                x0()?.var_dim(d.as_deref(), correction, keep)?
            } else {
                x0()?.std_dim(d.as_deref(), correction, keep)?
            })
        }
        "cumsum" => one(x0()?.cumsum(a.isize_req("dim")?)?),
        "argmax" => {
            let d = a.i64_opt("dim")?.map(|d| d as isize);
            one(x0()?.argmax(d, a.bool_or("keepdim", false)?)?)
        }

        // ---------------------------------------------------------------- movement
        "reshape" | "view" => one(x0()?.reshape_infer(&a.isizes_req("shape")?)?),
        "permute" => one(x0()?.permute(&a.isizes_req("dims")?)?),
        "transpose" => one(x0()?.transpose(a.isize_req("dim0")?, a.isize_req("dim1")?)?),
        "cat" | "concat" | "concatenate" => one(Tensor::cat(x, a.isize_or("dim", 0)?)?),
        "stack" => one(Tensor::stack(x, a.isize_or("dim", 0)?)?),
        "slice" => {
            let Some(Value::Array(ranges)) = a.get("ranges") else {
                fail!("attr ranges: required list")
            };
            let mut t = x0()?.clone();
            for (d, r) in ranges.iter().enumerate() {
                let r = match r {
                    Value::Array(r) => r,
                    Value::Null => continue,
                    other => fail!("attr ranges[{d}]: expected [start, end, step], got {other}"),
                };
                let get = |i: usize| -> R<Option<i64>> {
                    match r.get(i) {
                        None | Some(Value::Null) => Ok(None),
                        Some(v) => {
                            Ok(Some(as_i64(v).map_err(|e| {
                                Fail(format!("attr ranges[{d}][{i}]: {e}"))
                            })?))
                        }
                    }
                };
                let n = t.shape()[d] as i64;
                let start = get(0)?.unwrap_or(0);
                let end = get(1)?.unwrap_or(n);
                let step = get(2)?.unwrap_or(1);
                if step <= 0 {
                    fail!("attr ranges[{d}]: step {step} not supported (must be positive)");
                }
                t = t.slice(d as isize, start as isize, end as isize, step as usize)?;
            }
            one(t)
        }
        "expand" => one(x0()?.expand_infer(&a.isizes_req("shape")?)?),
        "unsqueeze" => one(x0()?.unsqueeze(a.isize_req("dim")?)?),
        "flatten" => one(x0()?.flatten(a.isize_or("start_dim", 0)?, a.isize_or("end_dim", -1)?)?),
        "split" => {
            let dim = a.isize_or("dim", 0)?;
            match a
                .get("split_size")
                .or_else(|| a.get("split_size_or_sections"))
            {
                Some(Value::Array(v)) => {
                    let sizes = v
                        .iter()
                        .map(|s| as_i64(s).map(|s| s as usize))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|e| Fail(format!("attr split_size: {e}")))?;
                    Ok(x0()?.split_sizes(&sizes, dim)?)
                }
                Some(v) => {
                    let s = as_i64(v).map_err(|e| Fail(format!("attr split_size: {e}")))?;
                    Ok(x0()?.split(s as usize, dim)?)
                }
                None => fail!("attr split_size: required"),
            }
        }
        "pad" => {
            let mode = a.str_or("mode", "constant")?;
            if mode != "constant" {
                fail!("pad mode {mode:?} not supported by the harness");
            }
            one(x0()?.pad(&a.usizes_req("pad")?, a.f64_or("value", 0.0)?)?)
        }
        "tril" => one(x0()?.tril(a.i64_or("diagonal", 0)?)?),

        // ---------------------------------------------------------------- index
        "index_select" => one(x0()?.index_select(a.isize_req("dim")?, x1()?)?),
        "scatter" => match opt(2) {
            Some(src) => one(x0()?.scatter(a.isize_req("dim")?, x1()?, src)?),
            None => match a.f64_opt("value")? {
                Some(v) => one(x0()?.scatter_value(a.isize_req("dim")?, x1()?, v)?),
                None => fail!("scatter: needs a src input or attr value"),
            },
        },
        "scatter_add" => one(x0()?.scatter_add(a.isize_req("dim")?, x1()?, input(x, 2)?)?),
        "index_add" => {
            let src = input(x, 2)?.mul_scalar(a.f64_or("alpha", 1.0)?)?;
            one(x0()?.index_add(a.isize_req("dim")?, x1()?, &src)?)
        }
        "roll" => {
            let dims = a.ints_opt("dims")?.unwrap_or_default();
            let dims: Vec<isize> = dims.into_iter().map(|d| d as isize).collect();
            one(x0()?.roll(&a.ints_req("shifts")?, &dims)?)
        }
        "diag" => one(x0()?.diag(a.i64_or("diagonal", 0)?)?),
        "repeat_interleave" => {
            let r = match (opt(1), a.i64_opt("repeats")?) {
                (Some(t), _) => deepseek::ops::select::Repeats::PerElement(t.clone()),
                (None, Some(n)) if n >= 0 => deepseek::ops::select::Repeats::Each(n as usize),
                _ => fail!("repeat_interleave: needs a repeats input or a non-negative attr"),
            };
            one(x0()?.repeat_interleave(&r, a.i64_opt("dim")?.map(|d| d as isize))?)
        }
        "nonzero" | "argwhere" => one(x0()?.nonzero()?),
        "masked_select" => one(x0()?.masked_select(x1()?)?),
        "unique" => {
            if a.i64_opt("dim")?.is_some() {
                fail!("unique: attr dim is not supported");
            }
            let _sorted = a.bool_or("sorted", true)?;
            let (inv, cnt) = (
                a.bool_or("return_inverse", false)?,
                a.bool_or("return_counts", false)?,
            );
            let u = x0()?.unique(inv, cnt)?;
            Ok(std::iter::once(u.values)
                .chain(u.inverse)
                .chain(u.counts)
                .collect())
        }
        "gather" => one(x0()?.gather(a.isize_req("dim")?, x1()?)?),
        "where" => one(Tensor::where_cond(x0()?, x1()?, input(x, 2)?)?),
        "masked_fill" => match a.f64_opt("value")? {
            Some(v) => one(x0()?.masked_fill(x1()?, v)?),
            None => fail!("attr value: required"),
        },
        "take_along_dim" => match a.i64_opt("dim")? {
            Some(d) => one(x0()?.take_along_dim(x1()?, d as isize)?),
            None => {
                let (t, i) = (x0()?, x1()?);
                one(t
                    .reshape(&[t.numel()])?
                    .take_along_dim(&i.reshape(&[i.numel()])?, 0)?)
            }
        },
        "embedding" => {
            let pi = a.i64_opt("padding_idx")?;
            // Options the op does not take: only PyTorch's defaults are accepted.
            if a.f64_opt("max_norm")?.is_some() {
                fail!("attr max_norm: not supported by the harness");
            }
            if a.bool_or("scale_grad_by_freq", false)? || a.bool_or("sparse", false)? {
                fail!("attrs scale_grad_by_freq/sparse: not supported by the harness");
            }
            one(Tensor::embedding(x0()?, x1()?, pi)?)
        }

        // ---------------------------------------------------------------- matmul
        "matmul" => one(x0()?.matmul(x1()?)?),
        "linear" => one(x0()?.linear(x1()?, opt(2))?),
        "einsum" => {
            let eq = a.str_or("equation", "")?;
            if eq.is_empty() {
                fail!("attr equation: required");
            }
            one(Tensor::einsum(eq, x)?)
        }

        // ---------------------------------------------------------------- nn.functional
        "softmax" => one(F::softmax(x0()?, a.isize_req("dim")?)?),
        "log_softmax" => one(F::log_softmax(x0()?, a.isize_req("dim")?)?),
        "layer_norm" => {
            let ns = a.usizes_req("normalized_shape")?;
            one(F::layer_norm(
                x0()?,
                &ns,
                opt(1),
                opt(2),
                a.f64_or("eps", 1e-5)?,
            )?)
        }
        "rms_norm" => {
            let ns = a.usizes_req("normalized_shape")?;
            one(F::rms_norm(x0()?, &ns, opt(1), a.f64_opt("eps")?)?)
        }
        "batch_norm" => one(F::batch_norm(
            x0()?,
            None,
            None,
            opt(1),
            opt(2),
            a.bool_or("training", false)?,
            a.f64_or("momentum", 0.1)?,
            a.f64_or("eps", 1e-5)?,
        )?),
        "group_norm" => one(F::group_norm(
            x0()?,
            a.usize_or("num_groups", 0).and_then(|g| {
                if g == 0 {
                    Err(Fail("attr num_groups: required".into()))
                } else {
                    Ok(g)
                }
            })?,
            opt(1),
            opt(2),
            a.f64_or("eps", 1e-5)?,
        )?),
        "conv1d" => {
            if let Some(Value::String(s)) = a.get("padding") {
                fail!("attr padding: string padding {s:?} not supported by the harness");
            }
            one(F::conv1d(
                x0()?,
                x1()?,
                opt(2),
                a.single_or("stride", 1)?,
                a.single_or("padding", 0)?,
                a.single_or("dilation", 1)?,
                a.usize_or("groups", 1)?,
            )?)
        }
        "conv2d" => {
            if let Some(Value::String(s)) = a.get("padding") {
                fail!("attr padding: string padding {s:?} not supported by the harness");
            }
            one(F::conv2d(
                x0()?,
                x1()?,
                opt(2),
                a.pair_or("stride", [1, 1])?,
                a.pair_or("padding", [0, 0])?,
                a.pair_or("dilation", [1, 1])?,
                a.usize_or("groups", 1)?,
            )?)
        }
        "max_pool2d" => {
            let k = a
                .pair_opt("kernel_size")?
                .ok_or("attr kernel_size: required")?;
            if a.bool_or("return_indices", false)? {
                fail!("attr return_indices: not supported by the harness");
            }
            one(F::max_pool2d(
                x0()?,
                k,
                a.pair_opt("stride")?.unwrap_or(k),
                a.pair_or("padding", [0, 0])?,
                a.pair_or("dilation", [1, 1])?,
                a.bool_or("ceil_mode", false)?,
            )?)
        }
        "avg_pool2d" => {
            let k = a
                .pair_opt("kernel_size")?
                .ok_or("attr kernel_size: required")?;
            let div = a.i64_opt("divisor_override")?.map(|d| d as usize);
            one(F::avg_pool2d(
                x0()?,
                k,
                a.pair_opt("stride")?.unwrap_or(k),
                a.pair_or("padding", [0, 0])?,
                a.bool_or("ceil_mode", false)?,
                a.bool_or("count_include_pad", true)?,
                div,
            )?)
        }
        "adaptive_avg_pool2d" => {
            let s = a
                .pair_opt("output_size")?
                .ok_or("attr output_size: required")?;
            one(F::adaptive_avg_pool2d(x0()?, s)?)
        }

        // ---------------------------------------------------------------- losses
        "cross_entropy" => one(F::cross_entropy(
            x0()?,
            x1()?,
            opt(2),
            a.i64_or("ignore_index", -100)?,
            a.str_or("reduction", "mean")?,
            a.f64_or("label_smoothing", 0.0)?,
        )?),
        "nll_loss" => one(F::nll_loss(
            x0()?,
            x1()?,
            opt(2),
            a.i64_or("ignore_index", -100)?,
            a.str_or("reduction", "mean")?,
        )?),
        "mse_loss" => one(F::mse_loss(x0()?, x1()?, a.str_or("reduction", "mean")?)?),
        "l1_loss" => one(F::l1_loss(x0()?, x1()?, a.str_or("reduction", "mean")?)?),
        "smooth_l1_loss" => one(F::smooth_l1_loss(
            x0()?,
            x1()?,
            a.str_or("reduction", "mean")?,
            a.f64_or("beta", 1.0)?,
        )?),
        "binary_cross_entropy_with_logits" => one(F::binary_cross_entropy_with_logits(
            x0()?,
            x1()?,
            opt(2),
            opt(3),
            a.str_or("reduction", "mean")?,
        )?),
        "kl_div" => one(F::kl_div(
            x0()?,
            x1()?,
            a.str_or("reduction", "mean")?,
            a.bool_or("log_target", false)?,
        )?),

        // ---------------------------------------------------------------- attention, rnn
        "scaled_dot_product_attention" => {
            if a.bool_or("enable_gqa", false)? {
                fail!("attr enable_gqa: not supported by the harness");
            }
            one(F::scaled_dot_product_attention(
                x0()?,
                x1()?,
                input(x, 2)?,
                opt(3),
                a.f64_or("dropout_p", 0.0)?,
                a.bool_or("is_causal", false)?,
                a.f64_opt("scale")?,
            )?)
        }
        "multi_head_attention" => {
            let e = a.usize_or("embed_dim", 0)?;
            let h = a.usize_or("num_heads", 0)?;
            if e == 0 || h == 0 {
                fail!("attrs embed_dim and num_heads: required");
            }
            let bf = a.bool_or("batch_first", false)?;
            let q = if bf {
                x0()?.transpose(0, 1)?
            } else {
                x0()?.clone()
            };
            let o = F::multi_head_attention_forward(
                &q,
                &q,
                &q,
                e,
                h,
                x1()?,
                opt(2),
                input(x, 3)?,
                opt(4),
            )?;
            one(if bf { o.transpose(0, 1)? } else { o })
        }
        "lstm" => {
            let layers = a.usize_or("num_layers", 1)?;
            let bf = a.bool_or("batch_first", false)?;
            check_rnn_attrs(a)?;
            if x.len() < 3 {
                fail!(
                    "lstm: expected x, h0, c0 and weights, got {} inputs",
                    x.len()
                );
            }
            let (o, h, c) = F::lstm(&x[0], &x[1], &x[2], &x[3..], layers, bf)?;
            Ok(vec![o, h, c])
        }
        "gru" => {
            let layers = a.usize_or("num_layers", 1)?;
            let bf = a.bool_or("batch_first", false)?;
            check_rnn_attrs(a)?;
            if x.len() < 2 {
                fail!("gru: expected x, h0 and weights, got {} inputs", x.len());
            }
            let (o, h) = F::gru(&x[0], &x[1], &x[2..], layers, bf)?;
            Ok(vec![o, h])
        }
        other => fail!("unsupported op {other:?}"),
    }
}

/// RNN options the functional API does not take: refuse values other than PyTorch's
/// defaults (bias=True, dropout=0, bidirectional=False).
fn check_rnn_attrs(a: &Attrs) -> R<()> {
    if !a.bool_or("bias", true)? {
        fail!("attr bias=false: not supported by the harness");
    }
    if a.f64_or("dropout", 0.0)? != 0.0 {
        fail!("attr dropout: not supported by the harness");
    }
    if a.bool_or("bidirectional", false)? {
        fail!("attr bidirectional: not supported by the harness");
    }
    let _ = a.bool_or("train", false)?;
    let _ = a.bool_or("has_biases", true)?;
    Ok(())
}

/// An op case: forward, compare, backward, compare gradients.
fn run_op_case(c: &Case) -> R<()> {
    // Leaves: float inputs with an expected gradient require grad.
    let mut xs = Vec::with_capacity(c.inputs.len());
    for (i, t) in c.inputs.iter().enumerate() {
        let wants_grad = matches!(c.grads.get(i), Some(Some(_)));
        xs.push(if wants_grad && t.dtype().is_float() {
            t.requires_grad_(true)?
        } else {
            t.clone()
        });
    }
    let outs = run_op(c.op, &c.attrs, &xs)?;
    let unused = c.attrs.unused();
    if !unused.is_empty() {
        fail!("attrs not read by the harness: {unused:?}");
    }
    if outs.len() != c.outputs.len() {
        fail!("{} outputs, expected {}", outs.len(), c.outputs.len());
    }
    let mut errs = Vec::new();
    for (j, (o, w)) in outs.iter().zip(&c.outputs).enumerate() {
        if let Err(Fail(m)) = compare(&format!("out{j}"), o, w, c.rtol, c.atol) {
            errs.push(m);
        }
    }
    if !errs.is_empty() {
        return Err(Fail(errs.join("; ")));
    }

    // Backward of sum_j (out_j * cot_j).sum() over the float outputs.
    let want_grads = c.grads.iter().any(Option::is_some);
    if c.cotangents.is_empty() || !want_grads {
        return Ok(());
    }
    let diff: Vec<&Tensor> = outs.iter().filter(|o| o.dtype().is_float()).collect();
    if diff.len() != c.cotangents.len() {
        fail!(
            "{} float outputs for {} cotangents",
            diff.len(),
            c.cotangents.len()
        );
    }
    let mut loss: Option<Tensor> = None;
    for (o, cot) in diff.iter().zip(&c.cotangents) {
        let term = o.mul(cot)?.sum_all()?;
        loss = Some(match loss {
            None => term,
            Some(l) => l.add(&term)?,
        });
    }
    let loss = loss.ok_or("no outputs to differentiate")?;
    if !loss.requires_grad() {
        fail!("backward: the outputs do not require grad (no graph recorded)");
    }
    loss.backward()?;
    for (i, w) in c.grads.iter().enumerate() {
        let Some(w) = w else { continue };
        match xs[i].grad() {
            None => errs.push(format!(
                "grad{i}: missing (None), expected shape {:?}",
                w.shape()
            )),
            Some(g) => {
                if let Err(Fail(m)) = compare(&format!("grad{i}"), &g, w, c.rtol, c.atol) {
                    errs.push(m);
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Fail(errs.join("; ")))
    }
}

/// An optimizer case: p0 and g0..gk in, p1..pk+1 expected.
fn run_optim_case(c: &Case) -> R<()> {
    let a = &c.attrs;
    let class = a.str_or("class", "")?;
    let p0 = input(&c.inputs, 0)?;
    let gs = &c.inputs[1..];
    if gs.len() != c.outputs.len() {
        fail!(
            "{} gradients for {} expected parameters",
            gs.len(),
            c.outputs.len()
        );
    }
    let p = p0.detach().contiguous_copy()?.requires_grad_(true)?;
    let params = vec![p.clone()];
    let maximize = a.bool_or("maximize", false)?;
    for k in ["foreach", "capturable", "differentiable", "fused"] {
        // Implementation switches of torch.optim with no effect on the values.
        let _ = a.get(k);
    }
    let mut opt: Box<dyn Optimizer> = match class {
        "SGD" | "Sgd" => {
            let cfg = SgdConfig {
                lr: a.f64_or("lr", 1e-3)?,
                momentum: a.f64_or("momentum", 0.0)?,
                dampening: a.f64_or("dampening", 0.0)?,
                nesterov: a.bool_or("nesterov", false)?,
                weight_decay: a.f64_or("weight_decay", 0.0)?,
                maximize,
            };
            Box::new(Sgd::new(params, cfg)?)
        }
        "Adam" | "AdamW" => {
            let default_wd = if class == "AdamW" { 1e-2 } else { 0.0 };
            let cfg = AdamConfig {
                lr: a.f64_or("lr", 1e-3)?,
                betas: a.f64_pair_or("betas", (0.9, 0.999))?,
                eps: a.f64_or("eps", 1e-8)?,
                weight_decay: a.f64_or("weight_decay", default_wd)?,
                amsgrad: a.bool_or("amsgrad", false)?,
                maximize,
            };
            if class == "AdamW" {
                Box::new(AdamW::new(params, cfg)?)
            } else {
                Box::new(Adam::new(params, cfg)?)
            }
        }
        "RMSprop" | "RmsProp" => {
            let cfg = RmsPropConfig {
                lr: a.f64_or("lr", 1e-2)?,
                alpha: a.f64_or("alpha", 0.99)?,
                eps: a.f64_or("eps", 1e-8)?,
                weight_decay: a.f64_or("weight_decay", 0.0)?,
                momentum: a.f64_or("momentum", 0.0)?,
                centered: a.bool_or("centered", false)?,
                maximize,
            };
            Box::new(RmsProp::new(params, cfg)?)
        }
        "" => fail!("attr class: required"),
        other => fail!("unsupported optimizer class {other:?}"),
    };
    let unused = a.unused();
    if !unused.is_empty() {
        fail!("attrs not read by the harness: {unused:?}");
    }
    for (i, (g, want)) in gs.iter().zip(&c.outputs).enumerate() {
        p.set_grad(Some(g.clone()))?;
        opt.step()?;
        compare(
            &format!("p{} (after step {})", i + 1, i + 1),
            &p.detach(),
            want,
            c.rtol,
            c.atol,
        )?;
    }
    opt.zero_grad();
    Ok(())
}

fn run_case(c: &Case) -> R<()> {
    if c.op == "optimizer" {
        run_optim_case(c)
    } else {
        run_op_case(c)
    }
}

// ------------------------------------------------------------------------------------------
// Main.

static PANIC_MSG: Mutex<Option<String>> = Mutex::new(None);

/// The golden file: `DEEPSEEK_GOLDEN`, or the shared set. Cargo runs tests in the package
/// directory, so a relative `DEEPSEEK_GOLDEN` that does not exist there is taken relative to
/// the workspace root.
fn golden_path() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("DEEPSEEK_GOLDEN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            let from_root = manifest.join("../..").join(&p);
            if p.is_relative() && !p.exists() && from_root.exists() {
                from_root
            } else {
                p
            }
        }
        _ => manifest.join("../../../shared/golden/golden.json"),
    }
}

fn main() {
    let path = golden_path();
    let st_path = path.with_extension("safetensors");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("golden: cannot read {}: {e}", path.display());
        println!("golden: 0 passed, 1 failed");
        std::process::exit(1);
    });
    let doc: Value = serde_json::from_str(&sanitize_json(&text)).unwrap_or_else(|e| {
        eprintln!("golden: {} is not valid JSON: {e}", path.display());
        println!("golden: 0 passed, 1 failed");
        std::process::exit(1);
    });
    let bytes = std::fs::read(&st_path).unwrap_or_else(|e| {
        eprintln!("golden: cannot read {}: {e}", st_path.display());
        println!("golden: 0 passed, 1 failed");
        std::process::exit(1);
    });
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| {
        eprintln!(
            "golden: {} is not a safetensors file: {e}",
            st_path.display()
        );
        println!("golden: 0 passed, 1 failed");
        std::process::exit(1);
    });
    let cases = match doc.get("cases") {
        Some(Value::Array(c)) => c,
        _ => {
            eprintln!("golden: {} has no `cases` list", path.display());
            println!("golden: 0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    let filter = std::env::var("DEEPSEEK_GOLDEN_FILTER").unwrap_or_default();
    let verbose = std::env::var("DEEPSEEK_GOLDEN_VERBOSE").is_ok_and(|v| v == "1");
    println!(
        "golden: {} ({} cases{})",
        path.display(),
        cases.len(),
        if filter.is_empty() {
            String::new()
        } else {
            format!(", filter {filter:?}")
        }
    );

    // Panics are caught per case; keep their message (with location) for the report.
    std::panic::set_hook(Box::new(|info| {
        let mut m = PANIC_MSG.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_none() {
            *m = Some(info.to_string());
        }
    }));

    let (mut passed, mut failed) = (0usize, 0usize);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let total = Instant::now();
    for cv in cases {
        let name = cv
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        if !filter.is_empty() && !name.contains(&filter) {
            continue;
        }
        *seen.entry(name.clone()).or_default() += 1;
        let op = cv
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("<no op>")
            .to_string();
        *PANIC_MSG.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let t0 = Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| {
            let c = build_case(cv, &st)?;
            run_case(&c)
        }));
        let dt = t0.elapsed();
        let res = match res {
            Ok(r) => r,
            Err(payload) => {
                let msg = PANIC_MSG
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .unwrap_or_else(|| {
                        payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into())
                    });
                Err(Fail(format!("panic: {msg}")))
            }
        };
        match res {
            Ok(()) => {
                passed += 1;
                if verbose {
                    println!("ok      {name} [{op}] {:.3} ms", dt.as_secs_f64() * 1e3);
                }
            }
            Err(Fail(m)) => {
                failed += 1;
                if verbose {
                    println!(
                        "FAILED  {name} [{op}] {:.3} ms: {m}",
                        dt.as_secs_f64() * 1e3
                    );
                } else {
                    println!("FAILED  {name} [{op}]: {m}");
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    if verbose {
        println!("golden: total {:.3} s", total.elapsed().as_secs_f64());
    }
    for (n, k) in &seen {
        if *k > 1 {
            println!("golden: warning: case name {n:?} occurs {k} times");
        }
    }
    println!("golden mode: {}, device: cpu", deepseek::lazy::mode_name());
    println!("golden: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

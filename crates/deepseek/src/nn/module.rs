//! The [`Module`] trait: parameters and buffers by PyTorch-style names, train/eval,
//! `state_dict` / `load_state_dict`, and safetensors files that PyTorch reads and writes.

use crate::{DType, Error, Result, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Receives every parameter and buffer of a module tree with its dotted name.
pub trait Visitor {
    fn param(&mut self, name: &str, t: &Tensor);
    fn buffer(&mut self, _name: &str, _t: &Tensor) {}
}

/// Walks a value's parameters, buffers and sub-modules. `#[derive(Module)]` implements it;
/// `Tensor` (a parameter), `Option`, `Vec` and `Box` of visitable values implement it too.
pub trait Visit {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor);
    /// Switches training mode (dropout, batch-norm statistics) recursively.
    fn set_train(&mut self, _on: bool) {}
}

/// `prefix.name`, or `name` at the root.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Visit for Tensor {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        v.param(prefix, self);
    }
}
impl<T: Visit> Visit for Option<T> {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        if let Some(t) = self {
            t.visit(prefix, v);
        }
    }
    fn set_train(&mut self, on: bool) {
        if let Some(t) = self {
            t.set_train(on);
        }
    }
}
impl<T: Visit> Visit for Vec<T> {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        for (i, t) in self.iter().enumerate() {
            t.visit(&join(prefix, &i.to_string()), v);
        }
    }
    fn set_train(&mut self, on: bool) {
        for t in self {
            t.set_train(on);
        }
    }
}
impl<T: Visit + ?Sized> Visit for Box<T> {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        (**self).visit(prefix, v);
    }
    fn set_train(&mut self, on: bool) {
        (**self).set_train(on);
    }
}

/// Whether a module is in training mode (`train()` / `eval()` flip it). Starts as training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainFlag(pub bool);

impl Default for TrainFlag {
    fn default() -> Self {
        TrainFlag(true)
    }
}
impl Visit for TrainFlag {
    fn visit(&self, _prefix: &str, _v: &mut dyn Visitor) {}
    fn set_train(&mut self, on: bool) {
        self.0 = on;
    }
}

struct Collect {
    params: Vec<(String, Tensor)>,
    buffers: Vec<(String, Tensor)>,
}
impl Visitor for Collect {
    fn param(&mut self, name: &str, t: &Tensor) {
        self.params.push((name.to_string(), t.clone()));
    }
    fn buffer(&mut self, name: &str, t: &Tensor) {
        self.buffers.push((name.to_string(), t.clone()));
    }
}

fn collect(m: &(impl Visit + ?Sized)) -> Collect {
    let mut c = Collect {
        params: Vec::new(),
        buffers: Vec::new(),
    };
    m.visit("", &mut c);
    c
}

/// A neural-network module. Derive it with `#[derive(Module)]`; every method has a default.
///
/// ```
/// use deepseek::nn::{Linear, Module};
/// #[derive(deepseek::nn::Module)]
/// struct Mlp { fc1: Linear, fc2: Linear }
/// let m = Mlp { fc1: Linear::new(4, 8, true)?, fc2: Linear::new(8, 2, true)? };
/// let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub trait Module: Visit {
    /// Parameters with their dotted names, in field order.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        collect(self).params
    }
    /// Parameters in field order (handles shared with the module: updates are visible).
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }
    /// Buffers (running statistics, ...) with their names.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        collect(self).buffers
    }
    /// Parameters and buffers by name (PyTorch's `state_dict`).
    fn state_dict(&self) -> BTreeMap<String, Tensor> {
        let c = collect(self);
        c.params
            .into_iter()
            .chain(c.buffers)
            .map(|(n, t)| (n, t.detach()))
            .collect()
    }
    /// Copies values into the module's tensors in place. With `strict`, missing and
    /// unexpected keys are errors; a shape mismatch always is.
    fn load_state_dict(&self, sd: &HashMap<String, Tensor>, strict: bool) -> Result<()> {
        let mine = self.state_dict();
        let missing: Vec<&String> = mine.keys().filter(|k| !sd.contains_key(*k)).collect();
        let unexpected: Vec<&String> = sd.keys().filter(|k| !mine.contains_key(*k)).collect();
        if strict && (!missing.is_empty() || !unexpected.is_empty()) {
            let mut unexpected = unexpected;
            unexpected.sort();
            return Err(Error::value(
                "load_state_dict",
                format!("missing keys {missing:?}, unexpected keys {unexpected:?}"),
            ));
        }
        for (k, t) in &mine {
            if let Some(src) = sd.get(k) {
                if src.shape() != t.shape() {
                    return Err(Error::shape(
                        "load_state_dict",
                        format!("size mismatch for {k}: the checkpoint has shape {:?}, the model has {:?}", src.shape(), t.shape()),
                    ));
                }
            }
        }
        let _g = crate::no_grad();
        for (k, t) in &mine {
            if let Some(src) = sd.get(k) {
                t.copy_(src)?;
            }
        }
        Ok(())
    }
    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }
    /// Training mode (dropout on, batch statistics).
    fn train(&mut self) {
        self.set_train(true);
    }
    /// Evaluation mode.
    fn eval(&mut self) {
        self.set_train(false);
    }
    /// Number of parameter elements.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }
    /// Writes the state dict to a safetensors file, atomically.
    fn save(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        save_safetensors(&self.state_dict(), path)
    }
    /// Loads a safetensors file (strict) into the module.
    fn load(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        let sd = load_safetensors(path.as_ref())?;
        self.load_state_dict(&sd, true)
            .map_err(|e| Error::io(path.as_ref().display().to_string(), e.to_string()))
    }
}

/// The safetensors dtype of a deepseek dtype.
pub(crate) fn st_dtype(d: DType) -> safetensors::Dtype {
    use safetensors::Dtype as S;
    match d {
        DType::Bool => S::BOOL,
        DType::U8 => S::U8,
        DType::I32 => S::I32,
        DType::I64 => S::I64,
        DType::F16 => S::F16,
        DType::BF16 => S::BF16,
        DType::F32 => S::F32,
        DType::F64 => S::F64,
    }
}

/// Little-endian bytes of a tensor's elements (row-major).
pub(crate) fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    crate::backend::to_le_bytes(t)
}

/// A tensor from little-endian bytes.
pub(crate) fn tensor_from_bytes(
    d: safetensors::Dtype,
    shape: &[usize],
    b: &[u8],
) -> std::result::Result<Tensor, String> {
    use safetensors::Dtype as S;
    let t = match d {
        S::BOOL => Tensor::from_vec(b.iter().map(|&x| x != 0).collect::<Vec<bool>>(), shape),
        S::U8 => Tensor::from_vec(b.to_vec(), shape),
        S::I32 => Tensor::from_vec(
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape,
        ),
        S::I64 => Tensor::from_vec(
            b.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape,
        ),
        S::F16 => Tensor::from_vec(
            b.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
            shape,
        ),
        S::BF16 => Tensor::from_vec(
            b.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
            shape,
        ),
        S::F32 => Tensor::from_vec(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape,
        ),
        S::F64 => Tensor::from_vec(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape,
        ),
        other => return Err(format!("unsupported dtype {other:?}")),
    };
    t.map_err(|e| e.to_string())
}

/// Writes named tensors as a safetensors file: to a temporary file beside it, synced, then
/// renamed over the target, so a crash never leaves a half-written file.
pub fn save_safetensors(tensors: &BTreeMap<String, Tensor>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let p = path.display().to_string();
    let data: Vec<(String, Vec<u8>, DType, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), tensor_bytes(t)?, t.dtype(), t.shape().to_vec())))
        .collect::<Result<_>>()?;
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(k, b, d, s)| {
            safetensors::tensor::TensorView::new(st_dtype(*d), s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| Error::io(&p, e.to_string()))
        })
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::tensor::serialize(views, None).map_err(|e| Error::io(&p, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically (temporary file + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let p = path.display().to_string();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(p, format!("cannot write: {e}")));
    }
    Ok(())
}

/// Reads every tensor of a safetensors file. Truncated or corrupt files are errors naming
/// the file and the problem.
pub fn load_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(&p, format!("cannot read: {e}")))?;
    parse_safetensors(&bytes, &p)
}

/// Every tensor of a safetensors file held in memory; `name` (the file's path, say) is what
/// errors name. Corrupt bytes are an error, never a panic or an unbounded allocation: every
/// tensor's bytes must lie inside `bytes`.
pub fn parse_safetensors(bytes: &[u8], name: &str) -> Result<HashMap<String, Tensor>> {
    let p = name;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::io(p, format!("not a valid safetensors file: {e}")))?;
    let mut out = HashMap::new();
    for (name, v) in st.tensors() {
        let t = tensor_from_bytes(v.dtype(), v.shape(), v.data())
            .map_err(|e| Error::io(p, format!("tensor {name}: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

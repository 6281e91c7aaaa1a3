//! The Rust modules of `deepseek::nn` from Python: `deepseek._C.NativeModule(kind, **kwargs)`.
//!
//! The Python package builds its `nn` modules in Python over tensor ops (so that they
//! subclass, hook and pickle the way PyTorch's do); the Rust crate has its own. This class
//! exposes the Rust ones with PyTorch's constructor arguments, so that a test can hold the
//! two sets together: the same parameter and buffer names, and the same outputs and
//! gradients for the same weights (`python/tests/test_module_parity.py`).

use crate::tensor::{as_tensor, PyTensor};
use crate::IntoPy;
use deepseek::nn::{
    AvgPool2d, BatchNorm, Conv1d, Conv2d, Embedding, Gru, Layer, LayerNorm, Linear, Lstm,
    MaxPool2d, Module, MultiheadAttention, RmsNorm, RnnConfig, TransformerEncoderLayer, Visit,
};
use deepseek::Tensor;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

enum Native {
    Layer(Box<dyn Layer>),
    Lstm(Lstm),
    Gru(Gru),
    Mha(MultiheadAttention),
}

/// `(name, tensor)` pairs of a module.
type Named = Vec<(String, Tensor)>;

impl Native {
    /// `(named parameters, named buffers)`.
    fn tensors(&self) -> (Named, Named) {
        fn of(m: &(impl Module + ?Sized)) -> (Named, Named) {
            (m.named_parameters(), m.named_buffers())
        }
        match self {
            Native::Layer(m) => (m.named_parameters(), m.named_buffers()),
            Native::Lstm(m) => of(m),
            Native::Gru(m) => of(m),
            Native::Mha(m) => of(m),
        }
    }
}

/// A module of the Rust crate (`deepseek::nn`), built with PyTorch's constructor arguments.
#[pyclass(name = "NativeModule", module = "deepseek._C", unsendable)]
pub struct PyNativeModule {
    kind: String,
    m: Native,
}

/// Keyword arguments with defaults; unknown names are a `TypeError`, like a Python call.
struct Args<'a, 'py> {
    kind: &'a str,
    d: Option<&'a Bound<'py, PyDict>>,
    used: Vec<String>,
}

impl<'py> Args<'_, 'py> {
    fn get<T: for<'a> FromPyObject<'a, 'py>>(&mut self, name: &str) -> PyResult<Option<T>> {
        self.used.push(name.to_string());
        match self.d.map(|d| d.get_item(name)).transpose()?.flatten() {
            Some(v) if !v.is_none() => v.extract::<T>().map(Some).map_err(|_| {
                PyTypeError::new_err(format!("{}: bad value for argument '{name}'", self.kind))
            }),
            _ => Ok(None),
        }
    }
    fn req<T: for<'a> FromPyObject<'a, 'py>>(&mut self, name: &str) -> PyResult<T> {
        self.get(name)?.ok_or_else(|| {
            PyTypeError::new_err(format!("{}: missing required argument '{name}'", self.kind))
        })
    }
    fn or<T: for<'a> FromPyObject<'a, 'py>>(&mut self, name: &str, default: T) -> PyResult<T> {
        Ok(self.get(name)?.unwrap_or(default))
    }
    /// An int or a pair of ints (`kernel_size=3` or `(3, 5)`).
    fn pair(&mut self, name: &str, default: Option<usize>) -> PyResult<[usize; 2]> {
        self.used.push(name.to_string());
        let v = self.d.map(|d| d.get_item(name)).transpose()?.flatten();
        match v {
            Some(v) if !v.is_none() => {
                if let Ok(n) = v.extract::<usize>() {
                    Ok([n, n])
                } else {
                    let p: (usize, usize) = v.extract().map_err(|_| {
                        PyTypeError::new_err(format!(
                            "{}: '{name}' must be an int or a pair of ints",
                            self.kind
                        ))
                    })?;
                    Ok([p.0, p.1])
                }
            }
            _ => default.map(|n| [n, n]).ok_or_else(|| {
                PyTypeError::new_err(format!("{}: missing required argument '{name}'", self.kind))
            }),
        }
    }
    fn finish(&self) -> PyResult<()> {
        if let Some(d) = self.d {
            for k in d.keys() {
                let k: String = k.extract()?;
                if !self.used.contains(&k) {
                    return Err(PyTypeError::new_err(format!(
                        "{}: unexpected keyword argument '{k}'",
                        self.kind
                    )));
                }
            }
        }
        Ok(())
    }
}

fn rnn_config(a: &mut Args<'_, '_>) -> PyResult<RnnConfig> {
    Ok(RnnConfig {
        num_layers: a.or("num_layers", 1)?,
        bias: a.or("bias", true)?,
        batch_first: a.or("batch_first", false)?,
        dropout: a.or("dropout", 0.0)?,
        bidirectional: a.or("bidirectional", false)?,
    })
}

fn build(a: &mut Args<'_, '_>) -> PyResult<Native> {
    let layer = |m: deepseek::Result<Box<dyn Layer>>| m.py().map(Native::Layer);
    Ok(match a.kind {
        "Linear" => {
            let (i, o) = (a.req("in_features")?, a.req("out_features")?);
            layer(Linear::new(i, o, a.or("bias", true)?).map(|m| Box::new(m) as _))?
        }
        "Embedding" => {
            let (n, d) = (a.req("num_embeddings")?, a.req("embedding_dim")?);
            layer(Embedding::new(n, d, a.get("padding_idx")?).map(|m| Box::new(m) as _))?
        }
        "Conv2d" => {
            let (i, o) = (a.req("in_channels")?, a.req("out_channels")?);
            let k = a.pair("kernel_size", None)?;
            let (s, p, d) = (
                a.pair("stride", Some(1))?,
                a.pair("padding", Some(0))?,
                a.pair("dilation", Some(1))?,
            );
            let (g, b) = (a.or("groups", 1)?, a.or("bias", true)?);
            layer(Conv2d::new(i, o, k, s, p, d, g, b).map(|m| Box::new(m) as _))?
        }
        "Conv1d" => {
            let (i, o) = (a.req("in_channels")?, a.req("out_channels")?);
            let k = a.req("kernel_size")?;
            let (s, p, d) = (
                a.or("stride", 1)?,
                a.or("padding", 0)?,
                a.or("dilation", 1)?,
            );
            let (g, b) = (a.or("groups", 1)?, a.or("bias", true)?);
            layer(Conv1d::new(i, o, k, s, p, d, g, b).map(|m| Box::new(m) as _))?
        }
        "MaxPool2d" | "AvgPool2d" => {
            let kernel = a.pair("kernel_size", None)?;
            let stride = a.pair("stride", Some(0))?;
            let stride = if stride == [0, 0] { kernel } else { stride };
            let padding = a.pair("padding", Some(0))?;
            if a.kind == "MaxPool2d" {
                Native::Layer(Box::new(MaxPool2d {
                    kernel,
                    stride,
                    padding,
                }))
            } else {
                Native::Layer(Box::new(AvgPool2d {
                    kernel,
                    stride,
                    padding,
                }))
            }
        }
        "LayerNorm" => {
            let shape = norm_shape(a)?;
            let (eps, affine) = (a.or("eps", 1e-5)?, a.or("elementwise_affine", true)?);
            layer(LayerNorm::new(&shape, eps, affine).map(|m| Box::new(m) as _))?
        }
        "RMSNorm" => {
            let shape = norm_shape(a)?;
            layer(RmsNorm::new(&shape, a.get("eps")?).map(|m| Box::new(m) as _))?
        }
        "BatchNorm1d" | "BatchNorm2d" => {
            let n = a.req("num_features")?;
            let (eps, mom) = (a.or("eps", 1e-5)?, a.or("momentum", 0.1)?);
            layer(BatchNorm::new(n, eps, mom).map(|m| Box::new(m) as _))?
        }
        "MultiheadAttention" => {
            let (e, h) = (a.req("embed_dim")?, a.req("num_heads")?);
            let (b, bf) = (a.or("bias", true)?, a.or("batch_first", false)?);
            Native::Mha(MultiheadAttention::new(e, h, b, bf).py()?)
        }
        "TransformerEncoderLayer" => {
            let (d, h) = (a.req("d_model")?, a.req("nhead")?);
            let ff = a.or("dim_feedforward", 2048)?;
            let dropout = a.or("dropout", 0.1)?;
            let act: String = a.or("activation", "relu".to_string())?;
            let gelu = match act.as_str() {
                "relu" => false,
                "gelu" => true,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "TransformerEncoderLayer: activation should be relu/gelu, not {other}"
                    )))
                }
            };
            let eps = a.or("layer_norm_eps", 1e-5)?;
            let (bf, nf) = (a.or("batch_first", false)?, a.or("norm_first", false)?);
            layer(
                TransformerEncoderLayer::new(d, h, ff, dropout, gelu, eps, bf, nf)
                    .map(|m| Box::new(m) as _),
            )?
        }
        "LSTM" | "GRU" => {
            let (i, h) = (a.req("input_size")?, a.req("hidden_size")?);
            let c = rnn_config(a)?;
            if a.kind == "LSTM" {
                Native::Lstm(Lstm::new(i, h, c).py()?)
            } else {
                Native::Gru(Gru::new(i, h, c).py()?)
            }
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "NativeModule: no Rust module named {other:?}"
            )))
        }
    })
}

fn norm_shape(a: &mut Args<'_, '_>) -> PyResult<Vec<usize>> {
    a.used.push("normalized_shape".into());
    let v =
        a.d.map(|d| d.get_item("normalized_shape"))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "{}: missing required argument 'normalized_shape'",
                    a.kind
                ))
            })?;
    if let Ok(n) = v.extract::<usize>() {
        return Ok(vec![n]);
    }
    v.extract::<Vec<usize>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{}: normalized_shape must be an int or a list of ints",
            a.kind
        ))
    })
}

fn named(py: Python<'_>, v: Named) -> PyResult<Vec<(String, Py<PyTensor>)>> {
    v.into_iter()
        .map(|(n, t)| Ok((n, Py::new(py, PyTensor { t })?)))
        .collect()
}

#[pymethods]
impl PyNativeModule {
    #[new]
    #[pyo3(signature = (kind, **kwargs))]
    fn new(kind: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut a = Args {
            kind,
            d: kwargs,
            used: Vec::new(),
        };
        let m = build(&mut a)?;
        a.finish()?;
        Ok(PyNativeModule {
            kind: kind.to_string(),
            m,
        })
    }

    /// `(name, parameter)` pairs, PyTorch's names; the tensors share the module's storage.
    fn named_parameters<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Py<PyTensor>)>> {
        named(py, self.m.tensors().0)
    }

    /// `(name, buffer)` pairs (batch-norm running statistics).
    fn named_buffers<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Py<PyTensor>)>> {
        named(py, self.m.tensors().1)
    }

    /// Training mode on or off (dropout, batch-norm statistics).
    fn train(&mut self, mode: bool) {
        match &mut self.m {
            Native::Layer(m) => m.set_train(mode),
            Native::Lstm(m) => m.set_train(mode),
            Native::Gru(m) => m.set_train(mode),
            Native::Mha(m) => m.set_train(mode),
        }
    }

    /// Runs the module; always returns a tuple (LSTM: `(out, h, c)`, GRU: `(out, h)`,
    /// MultiheadAttention takes `(query, key, value)`).
    #[pyo3(signature = (*args))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let xs = args
            .iter()
            .map(|a| as_tensor(&a))
            .collect::<PyResult<Vec<_>>>()?;
        let want = if matches!(self.m, Native::Mha(_)) {
            3
        } else {
            1
        };
        if xs.len() != want {
            return Err(PyTypeError::new_err(format!(
                "{}.forward takes {want} tensor(s), got {}",
                self.kind,
                xs.len()
            )));
        }
        let out = py
            .detach(|| -> deepseek::Result<Vec<Tensor>> {
                Ok(match &self.m {
                    Native::Layer(m) => vec![m.forward(&xs[0])?],
                    Native::Lstm(m) => {
                        let (y, (h, c)) = m.forward(&xs[0])?;
                        vec![y, h, c]
                    }
                    Native::Gru(m) => {
                        let (y, h) = m.forward(&xs[0])?;
                        vec![y, h]
                    }
                    Native::Mha(m) => vec![m.forward_qkv(&xs[0], &xs[1], &xs[2], None, false)?],
                })
            })
            .py()?;
        PyTuple::new(py, out.into_iter().map(|t| PyTensor { t }))
    }

    fn __repr__(&self) -> String {
        format!("NativeModule({})", self.kind)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyNativeModule>()?;
    Ok(())
}

//! `deepseek._C.onnx_save`: writes the graph that `deepseek.onnx.export` traced as an ONNX
//! file through `deepseek::onnx::Model`.

use crate::tensor::PyTensor;
use crate::IntoPy;
use deepseek::onnx::{Attr, Dim, ElemType, Model, Node, ValueInfo};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString};

fn value_infos(v: Vec<(String, String, Vec<Bound<'_, PyAny>>)>) -> PyResult<Vec<ValueInfo>> {
    v.into_iter()
        .map(|(name, dt, dims)| {
            let dims = dims
                .iter()
                .map(|d| {
                    if d.is_instance_of::<PyString>() {
                        Ok(Dim::Param(d.extract::<String>()?))
                    } else {
                        Ok(Dim::Fixed(d.extract::<i64>()?))
                    }
                })
                .collect::<PyResult<Vec<_>>>()?;
            Ok(ValueInfo::new(&name, ElemType::from_name(&dt).py()?, dims))
        })
        .collect()
}

fn attr(name: &str, v: &Bound<'_, PyAny>) -> PyResult<Attr> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Ok(Attr::Int(v.extract::<bool>()? as i64));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(Attr::Int(v.extract()?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(Attr::Float(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Attr::Str(v.extract::<String>()?));
    }
    if let Ok(items) = v.extract::<Vec<Bound<'_, PyAny>>>() {
        if items.iter().all(|i| i.is_instance_of::<PyInt>()) {
            return Ok(Attr::Ints(v.extract()?));
        }
        if items
            .iter()
            .all(|i| i.is_instance_of::<PyInt>() || i.is_instance_of::<PyFloat>())
        {
            return Ok(Attr::Floats(v.extract()?));
        }
        if items.iter().all(|i| i.is_instance_of::<PyString>()) {
            return Ok(Attr::Strings(v.extract()?));
        }
    }
    Err(PyTypeError::new_err(format!(
        "onnx attribute {name:?}: unsupported value {}",
        v.repr()?
    )))
}

/// Writes an ONNX model. `inputs`/`outputs`: `(name, dtype name, dims)` with dims ints or
/// strings (dynamic axes); `initializers`: `(name, tensor)`; `nodes`: `(op_type, name,
/// inputs, outputs, attributes dict)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::type_complexity)]
fn onnx_save(
    path: std::path::PathBuf,
    graph_name: String,
    opset: i64,
    inputs: Vec<(String, String, Vec<Bound<'_, PyAny>>)>,
    outputs: Vec<(String, String, Vec<Bound<'_, PyAny>>)>,
    initializers: Vec<(String, PyRef<'_, PyTensor>)>,
    nodes: Vec<(String, String, Vec<String>, Vec<String>, Bound<'_, PyDict>)>,
) -> PyResult<()> {
    let mut m = Model::new(&graph_name, opset);
    m.inputs = value_infos(inputs)?;
    m.outputs = value_infos(outputs)?;
    m.initializers = initializers
        .into_iter()
        .map(|(n, t)| (n, t.t.clone()))
        .collect();
    for (op_type, name, ins, outs, attrs) in nodes {
        let mut node = Node {
            op_type,
            name,
            inputs: ins,
            outputs: outs,
            attrs: Vec::new(),
        };
        for (k, v) in attrs.iter() {
            let k: String = k.extract()?;
            let a = attr(&k, &v)?;
            node.attrs.push((k, a));
        }
        m.nodes.push(node);
    }
    m.save(&path).py()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(onnx_save, m)?)?;
    Ok(())
}

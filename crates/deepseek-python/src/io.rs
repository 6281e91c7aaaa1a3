//! safetensors files from Python: `deepseek._C.save_file` / `load_file` (the Rust reader, so
//! the `safetensors` pip package is not needed).

use crate::tensor::{as_tensor, PyTensor};
use crate::IntoPy;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;

/// Writes a dict of name -> tensor as a safetensors file (atomically).
#[pyfunction]
fn save_file(tensors: &Bound<'_, PyDict>, path: std::path::PathBuf) -> PyResult<()> {
    let mut m = BTreeMap::new();
    for (k, v) in tensors.iter() {
        let name: String = k.extract()?;
        m.insert(name, as_tensor(&v)?.detach());
    }
    deepseek::nn::save_safetensors(&m, &path).py()
}

/// Reads every tensor of a safetensors file into a dict (sorted by name).
#[pyfunction]
fn load_file<'py>(py: Python<'py>, path: std::path::PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let m = deepseek::nn::load_safetensors(&path).py()?;
    let sorted: BTreeMap<_, _> = m.into_iter().collect();
    let d = PyDict::new(py);
    for (k, t) in sorted {
        d.set_item(k, PyTensor { t })?;
    }
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(save_file, m)?)?;
    m.add_function(wrap_pyfunction!(load_file, m)?)?;
    Ok(())
}

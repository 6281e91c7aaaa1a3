//! `deepseek.viz` from Python: the page writer of `deepseek::viz` (the graph capture is
//! Python, in python/deepseek/viz.py, and hands its data over as JSON).

use crate::err;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::PathBuf;

fn parse(data_json: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(data_json)
        .map_err(|e| PyValueError::new_err(format!("deepseek.viz: the page data is not JSON: {e}")))
}

/// The self-contained HTML page of `data_json` (a JSON object with `kind` "model" or "run").
#[pyfunction]
fn _viz_render_page(title: &str, data_json: &str) -> PyResult<String> {
    deepseek::viz::render_page(title, &parse(data_json)?).map_err(err)
}

/// Writes the page of `data_json` to `path` (OSError naming the path when it cannot).
#[pyfunction]
fn _viz_write_page(path: PathBuf, title: &str, data_json: &str) -> PyResult<()> {
    deepseek::viz::write_page(&path, title, &parse(data_json)?).map_err(err)
}

/// The data of a training run's page (from `run_dir/metrics.jsonl`), as JSON text.
#[pyfunction]
fn _viz_run_data(run_dir: PathBuf) -> PyResult<String> {
    let v = deepseek::viz::run_data(&run_dir).map_err(err)?;
    Ok(v.to_string())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_viz_render_page, m)?)?;
    m.add_function(wrap_pyfunction!(_viz_write_page, m)?)?;
    m.add_function(wrap_pyfunction!(_viz_run_data, m)?)?;
    Ok(())
}

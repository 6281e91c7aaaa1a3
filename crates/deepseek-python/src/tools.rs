//! The training tools from Python: TensorBoard event files (`deepseek.utils.tensorboard`),
//! the profiler (`deepseek.profiler`) and the Prometheus metrics server
//! (`deepseek.monitor`). The Python modules add PyTorch's signatures on top.

use crate::IntoPy;
use deepseek::monitor::MetricsServer;
use deepseek::profiler::{EventGuard, Profiler, ProfilerConfig, Schedule};
use deepseek::tensorboard::{Bins, HParam, SummaryWriter};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------------------- TensorBoard

/// The Rust event-file writer behind `deepseek.utils.tensorboard.SummaryWriter`.
#[pyclass(name = "_SummaryWriter", module = "deepseek._C")]
pub struct PySummaryWriter {
    w: Mutex<SummaryWriter>,
}

fn hparam(k: &str, v: &Bound<'_, PyAny>) -> PyResult<HParam> {
    // bool first: Python's bool is an int.
    if let Ok(b) = v.extract::<bool>() {
        if v.is_instance_of::<pyo3::types::PyBool>() {
            return Ok(HParam::Bool(b));
        }
    }
    if let Ok(s) = v.extract::<String>() {
        return Ok(HParam::Str(s));
    }
    if let Ok(x) = v.extract::<f64>() {
        return Ok(HParam::Float(x));
    }
    Err(PyValueError::new_err(format!(
        "add_hparams: value of {k:?} should be one of int, float, str, bool, or a one-element Tensor, got {}",
        v.get_type().name()?
    )))
}

#[pymethods]
impl PySummaryWriter {
    #[new]
    #[pyo3(signature = (log_dir, flush_secs=120.0, filename_suffix=""))]
    fn new(log_dir: std::path::PathBuf, flush_secs: f64, filename_suffix: &str) -> PyResult<Self> {
        Ok(PySummaryWriter {
            w: Mutex::new(SummaryWriter::with_options(log_dir, flush_secs, filename_suffix).py()?),
        })
    }
    /// The log directory.
    fn log_dir(&self) -> String {
        lock(&self.w).log_dir().display().to_string()
    }
    /// The event file.
    fn file_path(&self) -> String {
        lock(&self.w).file_path().display().to_string()
    }
    #[pyo3(signature = (tag, value, step, walltime=None))]
    fn add_scalar(&self, tag: &str, value: f64, step: i64, walltime: Option<f64>) -> PyResult<()> {
        lock(&self.w).add_scalar_at(tag, value, step, walltime).py()
    }
    fn add_scalars(&self, main_tag: &str, values: Vec<(String, f64)>, step: i64) -> PyResult<()> {
        lock(&self.w).add_scalars(main_tag, &values, step).py()
    }
    /// `bins`: `"tensorflow"`, a bucket count, or a list of edges.
    fn add_histogram(
        &self,
        tag: &str,
        values: Vec<f64>,
        step: i64,
        bins: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let b = if let Ok(s) = bins.extract::<String>() {
            match s.as_str() {
                "tensorflow" | "default" => Bins::Tensorflow,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "add_histogram: bins={other:?}: use 'tensorflow', a number of buckets or a list of edges"
                    )))
                }
            }
        } else if let Ok(n) = bins.extract::<i64>() {
            if n < 1 {
                return Err(PyValueError::new_err(format!(
                    "add_histogram: bins must be at least 1, got {n}"
                )));
            }
            Bins::Count(n as usize)
        } else if let Ok(e) = bins.extract::<Vec<f64>>() {
            Bins::Edges(e)
        } else {
            return Err(PyTypeError::new_err(
                "add_histogram: bins must be 'tensorflow', an int or a sequence of edges",
            ));
        };
        lock(&self.w).add_histogram(tag, &values, step, b).py()
    }
    fn add_text(&self, tag: &str, text: &str, step: i64) -> PyResult<()> {
        lock(&self.w).add_text(tag, text, step).py()
    }
    #[pyo3(signature = (hparams, metrics, run_name=None))]
    fn add_hparams(
        &self,
        hparams: Vec<(String, Bound<'_, PyAny>)>,
        metrics: Vec<(String, f64)>,
        run_name: Option<&str>,
    ) -> PyResult<()> {
        let hp = hparams
            .iter()
            .map(|(k, v)| Ok((k.clone(), hparam(k, v)?)))
            .collect::<PyResult<Vec<_>>>()?;
        lock(&self.w).add_hparams(&hp, &metrics, run_name).py()
    }
    fn flush(&self) -> PyResult<()> {
        lock(&self.w).flush().py()
    }
    fn close(&self) -> PyResult<()> {
        lock(&self.w).close().py()
    }
    fn is_closed(&self) -> bool {
        lock(&self.w).is_closed()
    }
}

// ---------------------------------------------------------------------------- profiler

/// The Rust profile behind `deepseek.profiler.profile`.
#[pyclass(name = "_Profiler", module = "deepseek._C")]
pub struct PyProfiler {
    p: Profiler,
}

#[pymethods]
impl PyProfiler {
    /// `schedule`: `(wait, warmup, active, repeat, skip_first)` or None.
    #[new]
    #[pyo3(signature = (record_shapes=false, profile_memory=false, with_flops=false, schedule=None))]
    fn new(
        record_shapes: bool,
        profile_memory: bool,
        with_flops: bool,
        schedule: Option<(u64, u64, u64, u64, u64)>,
    ) -> PyResult<Self> {
        let schedule = match schedule {
            Some((w, wu, a, r, s)) => Some(Schedule::new(w, wu, a, r, s).py()?),
            None => None,
        };
        Ok(PyProfiler {
            p: Profiler::new(ProfilerConfig {
                record_shapes,
                profile_memory,
                with_flops,
                schedule,
            }),
        })
    }
    fn start(&self) -> PyResult<()> {
        self.p.start().py()
    }
    fn stop(&self) -> PyResult<()> {
        self.p.stop().py()
    }
    /// Ends a step; True when a schedule cycle's trace is ready.
    fn step(&self) -> bool {
        self.p.step()
    }
    fn is_running(&self) -> bool {
        self.p.is_running()
    }
    fn clear(&self) {
        self.p.clear()
    }
    /// The events as dicts (name, category, thread, start_us, dur_us, shapes, mem_bytes, flops).
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let l = PyList::empty(py);
        for e in self.p.events() {
            let d = PyDict::new(py);
            d.set_item("name", e.name.as_ref())?;
            d.set_item("category", e.category.as_str())?;
            d.set_item("thread", e.thread)?;
            d.set_item("start_us", e.start_us)?;
            d.set_item("dur_us", e.dur_us)?;
            d.set_item("shapes", e.shapes.clone())?;
            d.set_item("mem_bytes", e.mem_bytes)?;
            d.set_item("flops", e.flops)?;
            l.append(d)?;
        }
        Ok(l)
    }
    /// `key_averages()` rows as dicts.
    fn key_averages<'py>(
        &self,
        py: Python<'py>,
        group_by_input_shape: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let l = PyList::empty(py);
        for r in self.p.key_averages(group_by_input_shape).rows {
            let d = PyDict::new(py);
            d.set_item("key", &r.key)?;
            d.set_item("input_shapes", r.input_shapes.clone())?;
            d.set_item("count", r.count)?;
            d.set_item("cpu_time_total", r.cpu_time_total)?;
            d.set_item("self_cpu_time_total", r.self_cpu_time_total)?;
            d.set_item("cpu_time", r.cpu_time())?;
            d.set_item("cpu_memory_usage", r.cpu_memory_usage)?;
            d.set_item("self_cpu_memory_usage", r.self_cpu_memory_usage)?;
            d.set_item("flops", r.flops)?;
            l.append(d)?;
        }
        Ok(l)
    }
    #[pyo3(signature = (sort_by="cpu_time_total", row_limit=100, group_by_input_shape=false))]
    fn table(&self, sort_by: &str, row_limit: i64, group_by_input_shape: bool) -> PyResult<String> {
        self.p
            .key_averages(group_by_input_shape)
            .table(sort_by, row_limit)
            .py()
    }
    fn export_chrome_trace(&self, path: std::path::PathBuf) -> PyResult<()> {
        self.p.export_chrome_trace(path).py()
    }
}

static RANGES: Mutex<Option<HashMap<u64, EventGuard>>> = Mutex::new(None);
static NEXT_RANGE: AtomicU64 = AtomicU64::new(1);

/// Opens a user range (`record_function.__enter__`); returns its token.
#[pyfunction]
fn _profiler_range_enter(name: &str) -> u64 {
    if !deepseek::profiler::enabled() {
        return 0;
    }
    let id = NEXT_RANGE.fetch_add(1, Ordering::Relaxed);
    lock(&RANGES)
        .get_or_insert_with(HashMap::new)
        .insert(id, deepseek::profiler::range(name));
    id
}

/// Closes the user range of `token` (`record_function.__exit__`).
#[pyfunction]
fn _profiler_range_exit(token: u64) {
    let g = lock(&RANGES).as_mut().and_then(|m| m.remove(&token));
    drop(g);
}

/// Whether a profile is recording.
#[pyfunction]
fn _profiler_enabled() -> bool {
    deepseek::profiler::enabled()
}

// ------------------------------------------------------------------------- Prometheus

/// The metrics server behind `deepseek.monitor.MetricsServer`.
#[pyclass(name = "_MetricsServer", module = "deepseek._C")]
pub struct PyMetricsServer {
    s: Mutex<Option<MetricsServer>>,
}

impl PyMetricsServer {
    fn with<R>(&self, f: impl FnOnce(&MetricsServer) -> R) -> PyResult<R> {
        match lock(&self.s).as_ref() {
            Some(s) => Ok(f(s)),
            None => Err(PyValueError::new_err("the metrics server is closed")),
        }
    }
}

#[pymethods]
impl PyMetricsServer {
    #[new]
    fn new(addr: &str) -> PyResult<Self> {
        Ok(PyMetricsServer {
            s: Mutex::new(Some(MetricsServer::bind(addr).py()?)),
        })
    }
    #[getter]
    fn port(&self) -> PyResult<u16> {
        self.with(|s| s.port())
    }
    #[getter]
    fn address(&self) -> PyResult<String> {
        self.with(|s| s.local_addr().to_string())
    }
    fn record_step(
        &self,
        loss: f64,
        lr: f64,
        units: u64,
        unit: &str,
        step_seconds: f64,
    ) -> PyResult<()> {
        self.with(|s| s.metrics().record_step(loss, lr, units, unit, step_seconds))
    }
    fn set_throughput(&self, per_second: f64, unit: &str) -> PyResult<()> {
        self.with(|s| s.metrics().set_throughput(per_second, unit))
    }
    fn record_val_loss(&self, loss: f64) -> PyResult<()> {
        self.with(|s| s.metrics().record_val_loss(loss))
    }
    fn record_checkpoint(&self) -> PyResult<()> {
        self.with(|s| s.metrics().record_checkpoint())
    }
    fn set_steps(&self, steps: u64) -> PyResult<()> {
        self.with(|s| s.metrics().set_steps(steps))
    }
    /// The metrics in the Prometheus text format.
    fn render(&self) -> PyResult<String> {
        self.with(|s| s.metrics().render())?.py()
    }
    /// Stops serving (also when garbage-collected).
    fn close(&self) {
        lock(&self.s).take();
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySummaryWriter>()?;
    m.add_class::<PyProfiler>()?;
    m.add_class::<PyMetricsServer>()?;
    m.add_function(wrap_pyfunction!(_profiler_range_enter, m)?)?;
    m.add_function(wrap_pyfunction!(_profiler_range_exit, m)?)?;
    m.add_function(wrap_pyfunction!(_profiler_enabled, m)?)?;
    Ok(())
}

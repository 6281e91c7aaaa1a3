//! `deepseek._C.distributed`: process groups, collectives, the DDP reducer and the
//! tensor-parallel regions of `deepseek::distributed`, for `python/deepseek/distributed`.
//! Every wait on the network releases the GIL.

use crate::{IntoPy, PyTensor};
use deepseek::distributed::{self as dist, ProcessGroup, ReduceOp, Work};
use deepseek::Tensor;
use pyo3::prelude::*;
use std::sync::Mutex;
use std::time::Duration;

/// A process group (`torch.distributed.ProcessGroup`).
#[pyclass(name = "ProcessGroup", module = "deepseek._C.distributed", frozen)]
pub struct PyGroup {
    g: ProcessGroup,
}

#[pymethods]
impl PyGroup {
    /// This process's rank in the group (error for non-members).
    fn rank(&self) -> PyResult<usize> {
        self.g.rank().py()
    }
    /// Number of ranks in the group.
    fn size(&self) -> usize {
        self.g.size()
    }
    /// World ranks of the members.
    #[getter]
    fn ranks(&self) -> Vec<usize> {
        self.g.ranks().to_vec()
    }
    /// True when this process belongs to the group.
    #[getter]
    fn is_member(&self) -> bool {
        self.g.rank().is_ok()
    }
    fn __repr__(&self) -> String {
        format!("{:?}", self.g)
    }
}

/// The handle of an `async_op=True` request.
#[pyclass(name = "Work", module = "deepseek._C.distributed", frozen)]
pub struct PyWork {
    w: Mutex<Option<Work>>,
}

impl PyWork {
    fn done() -> PyWork {
        PyWork {
            w: Mutex::new(None),
        }
    }
    fn of(w: Work) -> PyWork {
        PyWork {
            w: Mutex::new(Some(w)),
        }
    }
}

#[pymethods]
impl PyWork {
    /// Blocks until the request finished; its result is then in the tensor(s).
    fn wait(&self, py: Python<'_>) -> PyResult<bool> {
        let w = self.w.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut w) = w {
            py.detach(|| w.wait()).py()?;
        }
        Ok(true)
    }
    /// True once the request finished (call `wait()` to collect its result).
    fn is_completed(&self) -> bool {
        match &mut *self.w.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(w) => w.is_completed(),
            None => true,
        }
    }
}

fn grp(g: Option<&PyGroup>) -> PyResult<ProcessGroup> {
    match g {
        Some(g) => Ok(g.g.clone()),
        None => dist::world().py(),
    }
}

fn op(s: &str) -> PyResult<ReduceOp> {
    s.parse::<ReduceOp>().py()
}

fn finish(py: Python<'_>, w: Work, async_op: bool) -> PyResult<Option<PyWork>> {
    if async_op {
        return Ok(Some(PyWork::of(w)));
    }
    let mut w = w;
    py.detach(|| w.wait()).py()?;
    Ok(None)
}

#[pyfunction]
fn is_mpi_available() -> bool {
    dist::is_mpi_available()
}
#[pyfunction]
fn is_initialized() -> bool {
    dist::is_initialized()
}
#[pyfunction]
#[pyo3(signature = (backend, timeout=None))]
fn init_process_group(py: Python<'_>, backend: &str, timeout: Option<f64>) -> PyResult<()> {
    let t = match timeout {
        Some(s) if !(s > 0.0 && s.is_finite()) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "init_process_group: timeout must be a positive number of seconds, got {s}"
            )))
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    py.detach(|| dist::init_process_group_with_timeout(backend, t))
        .py()
}
#[pyfunction]
fn destroy_process_group(py: Python<'_>) {
    py.detach(dist::destroy_process_group)
}
#[pyfunction]
fn world() -> PyResult<PyGroup> {
    Ok(PyGroup {
        g: dist::world().py()?,
    })
}
#[pyfunction]
fn new_group(py: Python<'_>, ranks: Vec<usize>) -> PyResult<PyGroup> {
    Ok(PyGroup {
        g: py.detach(|| dist::new_group(&ranks)).py()?,
    })
}

#[pyfunction]
#[pyo3(signature = (tensor, op="sum", group=None, async_op=false))]
fn all_reduce(
    py: Python<'_>,
    tensor: PyRef<PyTensor>,
    op: &str,
    group: Option<PyRef<PyGroup>>,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, o, t) = (grp(group.as_deref())?, self::op(op)?, tensor.t.clone());
    let w = py.detach(|| g.all_reduce_async(&t, o)).py()?;
    finish(py, w, async_op)
}
#[pyfunction]
#[pyo3(signature = (tensor, src=0, group=None, async_op=false))]
fn broadcast(
    py: Python<'_>,
    tensor: PyRef<PyTensor>,
    src: usize,
    group: Option<PyRef<PyGroup>>,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, t) = (grp(group.as_deref())?, tensor.t.clone());
    let w = py.detach(|| g.broadcast_async(&t, src)).py()?;
    finish(py, w, async_op)
}
/// Fills `tensor_list` (one tensor per rank) with every rank's `tensor`. Runs to completion
/// before returning; with `async_op=True` the returned handle is already complete.
#[pyfunction]
#[pyo3(signature = (tensor_list, tensor, group=None, async_op=false))]
fn all_gather(
    py: Python<'_>,
    tensor_list: Vec<PyRef<PyTensor>>,
    tensor: PyRef<PyTensor>,
    group: Option<PyRef<PyGroup>>,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, t) = (grp(group.as_deref())?, tensor.t.clone());
    if tensor_list.len() != g.size() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "all_gather: tensor_list has {} tensors for a group of {} ranks",
            tensor_list.len(),
            g.size()
        )));
    }
    let outs: Vec<Tensor> = tensor_list.iter().map(|p| p.t.clone()).collect();
    py.detach(|| -> deepseek::Result<()> {
        let parts = g.all_gather(&t)?;
        for (o, p) in outs.iter().zip(parts) {
            deepseek::with_no_grad(|| o.copy_(&p))?;
        }
        Ok(())
    })
    .py()?;
    Ok(async_op.then(PyWork::done))
}
#[pyfunction]
#[pyo3(signature = (output_tensor, input_tensor, group=None, async_op=false))]
fn all_gather_into_tensor(
    py: Python<'_>,
    output_tensor: PyRef<PyTensor>,
    input_tensor: PyRef<PyTensor>,
    group: Option<PyRef<PyGroup>>,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, o, i) = (
        grp(group.as_deref())?,
        output_tensor.t.clone(),
        input_tensor.t.clone(),
    );
    py.detach(|| g.all_gather_into_tensor(&o, &i)).py()?;
    Ok(async_op.then(PyWork::done))
}
#[pyfunction]
#[pyo3(signature = (output, input_list, op="sum", group=None, async_op=false))]
fn reduce_scatter(
    py: Python<'_>,
    output: PyRef<PyTensor>,
    input_list: Vec<PyRef<PyTensor>>,
    op: &str,
    group: Option<PyRef<PyGroup>>,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, o, r) = (grp(group.as_deref())?, output.t.clone(), self::op(op)?);
    let ins: Vec<Tensor> = input_list.iter().map(|p| p.t.clone()).collect();
    py.detach(|| g.reduce_scatter(&o, &ins, r)).py()?;
    Ok(async_op.then(PyWork::done))
}
#[pyfunction]
#[pyo3(signature = (output, input, op="sum", group=None, async_op=false))]
fn reduce_scatter_tensor(
    py: Python<'_>,
    output: PyRef<PyTensor>,
    input: PyRef<PyTensor>,
    op: &str,
    group: Option<PyRef<PyGroup>>,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, o, i, r) = (
        grp(group.as_deref())?,
        output.t.clone(),
        input.t.clone(),
        self::op(op)?,
    );
    py.detach(|| g.reduce_scatter_tensor(&o, &i, r)).py()?;
    Ok(async_op.then(PyWork::done))
}
#[pyfunction]
#[pyo3(signature = (group=None))]
fn barrier(py: Python<'_>, group: Option<PyRef<PyGroup>>) -> PyResult<()> {
    let g = grp(group.as_deref())?;
    py.detach(|| g.barrier()).py()
}
#[pyfunction]
#[pyo3(signature = (tensor, dst, group=None, tag=0, async_op=false))]
fn send(
    py: Python<'_>,
    tensor: PyRef<PyTensor>,
    dst: usize,
    group: Option<PyRef<PyGroup>>,
    tag: i32,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, t) = (grp(group.as_deref())?, tensor.t.clone());
    let w = py.detach(|| g.isend(&t, dst, tag)).py()?;
    finish(py, w, async_op)
}
#[pyfunction]
#[pyo3(signature = (tensor, src, group=None, tag=0, async_op=false))]
fn recv(
    py: Python<'_>,
    tensor: PyRef<PyTensor>,
    src: usize,
    group: Option<PyRef<PyGroup>>,
    tag: i32,
    async_op: bool,
) -> PyResult<Option<PyWork>> {
    let (g, t) = (grp(group.as_deref())?, tensor.t.clone());
    let w = py.detach(|| g.irecv(&t, src, tag)).py()?;
    finish(py, w, async_op)
}

/// The gradient reducer of `DistributedDataParallel` (see `deepseek::distributed`).
#[pyclass(name = "Reducer", module = "deepseek._C.distributed", frozen)]
pub struct PyReducer {
    d: dist::DistributedDataParallel,
}

#[pymethods]
impl PyReducer {
    #[new]
    #[pyo3(signature = (params, names, buffers, group=None, bucket_cap_mb=25.0))]
    fn new(
        py: Python<'_>,
        params: Vec<PyRef<PyTensor>>,
        names: Vec<String>,
        buffers: Vec<PyRef<PyTensor>>,
        group: Option<PyRef<PyGroup>>,
        bucket_cap_mb: f64,
    ) -> PyResult<Self> {
        let g = grp(group.as_deref())?;
        let p: Vec<Tensor> = params.iter().map(|t| t.t.clone()).collect();
        let b: Vec<Tensor> = buffers.iter().map(|t| t.t.clone()).collect();
        let d = py
            .detach(|| {
                dist::DistributedDataParallel::from_params(p, names, b, Some(g), bucket_cap_mb)
            })
            .py()?;
        Ok(PyReducer { d })
    }
    fn set_sync(&self, on: bool) {
        self.d.set_sync(on)
    }
    fn is_sync(&self) -> bool {
        self.d.is_sync()
    }
    fn check_finished(&self) -> PyResult<()> {
        self.d.check_finished().py()
    }
    #[getter]
    fn num_buckets(&self) -> usize {
        self.d.num_buckets()
    }
}

fn wrap(py: Python<'_>, t: deepseek::Result<Tensor>) -> PyResult<Py<PyTensor>> {
    PyTensor::wrap(py, t.py()?)
}

#[pyfunction]
#[pyo3(signature = (x, group=None))]
fn copy_to_parallel_region(
    py: Python<'_>,
    x: PyRef<PyTensor>,
    group: Option<PyRef<PyGroup>>,
) -> PyResult<Py<PyTensor>> {
    let (g, t) = (grp(group.as_deref())?, x.t.clone());
    wrap(
        py,
        py.detach(|| dist::tensor_parallel::copy_to_parallel_region(&t, Some(&g))),
    )
}
#[pyfunction]
#[pyo3(signature = (x, group=None))]
fn reduce_from_parallel_region(
    py: Python<'_>,
    x: PyRef<PyTensor>,
    group: Option<PyRef<PyGroup>>,
) -> PyResult<Py<PyTensor>> {
    let (g, t) = (grp(group.as_deref())?, x.t.clone());
    wrap(
        py,
        py.detach(|| dist::tensor_parallel::reduce_from_parallel_region(&t, Some(&g))),
    )
}
#[pyfunction]
#[pyo3(signature = (x, group=None, replicated_downstream=true))]
fn gather_from_parallel_region(
    py: Python<'_>,
    x: PyRef<PyTensor>,
    group: Option<PyRef<PyGroup>>,
    replicated_downstream: bool,
) -> PyResult<Py<PyTensor>> {
    let (g, t) = (grp(group.as_deref())?, x.t.clone());
    wrap(
        py,
        py.detach(|| {
            dist::tensor_parallel::gather_from_parallel_region(&t, Some(&g), replicated_downstream)
        }),
    )
}
#[pyfunction]
#[pyo3(signature = (x, group=None))]
fn scatter_to_parallel_region(
    py: Python<'_>,
    x: PyRef<PyTensor>,
    group: Option<PyRef<PyGroup>>,
) -> PyResult<Py<PyTensor>> {
    let (g, t) = (grp(group.as_deref())?, x.t.clone());
    wrap(
        py,
        py.detach(|| dist::tensor_parallel::scatter_to_parallel_region(&t, Some(&g))),
    )
}
/// This rank's equal block of `t` along `dim`, as a new leaf.
#[pyfunction]
#[pyo3(signature = (t, dim, group=None))]
fn shard(
    py: Python<'_>,
    t: PyRef<PyTensor>,
    dim: isize,
    group: Option<PyRef<PyGroup>>,
) -> PyResult<Py<PyTensor>> {
    let (g, t) = (grp(group.as_deref())?, t.t.clone());
    wrap(py, dist::tensor_parallel::shard(&t, dim, &g))
}
/// The vocabulary-parallel lookup: `weight` is this rank's rows of the table, `ids` the whole
/// index tensor; the result (all-reduced) is the full lookup. With `reduce=False`, this
/// rank's part before the all-reduce (zeros for the other ranks' ids).
#[pyfunction]
#[pyo3(signature = (ids, weight, padding_idx=None, group=None, reduce=true))]
fn vocab_parallel_embedding(
    py: Python<'_>,
    ids: PyRef<PyTensor>,
    weight: PyRef<PyTensor>,
    padding_idx: Option<i64>,
    group: Option<PyRef<PyGroup>>,
    reduce: bool,
) -> PyResult<Py<PyTensor>> {
    let (g, i, w) = (grp(group.as_deref())?, ids.t.clone(), weight.t.clone());
    wrap(
        py,
        py.detach(|| {
            if reduce {
                dist::vocab_parallel_embedding(&i, &w, padding_idx, Some(&g))
            } else {
                dist::vocab_parallel_lookup(&i, &w, padding_idx, Some(&g))
            }
        }),
    )
}
/// Cross-entropy of vocabulary-parallel logits (this rank's last-dim slice) against the
/// whole target, without gathering the logits.
#[pyfunction]
#[pyo3(signature = (logits, target, ignore_index=-100, reduction="mean", label_smoothing=0.0, group=None))]
fn vocab_parallel_cross_entropy(
    py: Python<'_>,
    logits: PyRef<PyTensor>,
    target: PyRef<PyTensor>,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
    group: Option<PyRef<PyGroup>>,
) -> PyResult<Py<PyTensor>> {
    let (g, x, t) = (grp(group.as_deref())?, logits.t.clone(), target.t.clone());
    let r = reduction.to_string();
    wrap(
        py,
        py.detach(|| {
            dist::vocab_parallel_cross_entropy(&x, &t, ignore_index, &r, label_smoothing, Some(&g))
        }),
    )
}
/// `DistributedSampler`'s indices for one rank and epoch.
#[pyfunction]
fn sampler_indices(
    len: usize,
    num_replicas: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    epoch: u64,
    drop_last: bool,
) -> PyResult<Vec<usize>> {
    let mut s =
        dist::DistributedSampler::new(len, num_replicas, rank, shuffle, seed, drop_last).py()?;
    s.set_epoch(epoch);
    Ok(s.indices())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let d = PyModule::new(m.py(), "distributed")?;
    macro_rules! add {
        ($($n:ident),*) => { $( d.add_function(wrap_pyfunction!($n, &d)?)?; )* };
    }
    add!(
        is_mpi_available,
        is_initialized,
        init_process_group,
        destroy_process_group,
        world,
        new_group,
        all_reduce,
        broadcast,
        all_gather,
        all_gather_into_tensor,
        reduce_scatter,
        reduce_scatter_tensor,
        barrier,
        send,
        recv,
        copy_to_parallel_region,
        reduce_from_parallel_region,
        gather_from_parallel_region,
        scatter_to_parallel_region,
        shard,
        vocab_parallel_embedding,
        vocab_parallel_cross_entropy,
        sampler_indices
    );
    d.add_class::<PyGroup>()?;
    d.add_class::<PyWork>()?;
    d.add_class::<PyReducer>()?;
    crate::dist_checkpoint::register(&d)?;
    m.add_submodule(&d)?;
    Ok(())
}

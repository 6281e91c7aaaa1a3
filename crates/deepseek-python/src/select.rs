//! Bindings of the selection ops of `deepseek::ops::select` and `scatter`
//! (`_C._roll`, ...); `deepseek/_select_ops.py` gives them PyTorch's signatures as functions
//! and `Tensor` methods.

use crate::tensor::PyTensor;
use crate::IntoPy;
use deepseek::ops::select::Repeats;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

fn t(x: deepseek::Result<deepseek::Tensor>) -> PyResult<PyTensor> {
    Ok(PyTensor { t: x.py()? })
}

#[pyfunction]
fn _roll(x: &PyTensor, shifts: Vec<i64>, dims: Vec<isize>) -> PyResult<PyTensor> {
    t(x.t.roll(&shifts, &dims))
}

#[pyfunction]
fn _diag(x: &PyTensor, diagonal: i64) -> PyResult<PyTensor> {
    t(x.t.diag(diagonal))
}

#[pyfunction]
#[pyo3(signature = (x, repeats, dim=None))]
fn _repeat_interleave(
    x: &PyTensor,
    repeats: &Bound<'_, PyAny>,
    dim: Option<isize>,
) -> PyResult<PyTensor> {
    let r = if let Ok(r) = repeats.cast::<PyTensor>() {
        Repeats::PerElement(r.borrow().t.clone())
    } else if let Ok(n) = repeats.extract::<i64>() {
        if n < 0 {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "repeat_interleave: repeats can not be negative, got {n}"
            )));
        }
        Repeats::Each(n as usize)
    } else {
        return Err(PyTypeError::new_err(
            "repeat_interleave: repeats must be an int or a tensor",
        ));
    };
    t(x.t.repeat_interleave(&r, dim))
}

#[pyfunction]
fn _nonzero(x: &PyTensor) -> PyResult<PyTensor> {
    t(x.t.nonzero())
}

#[pyfunction]
fn _masked_select(x: &PyTensor, mask: &PyTensor) -> PyResult<PyTensor> {
    t(x.t.masked_select(&mask.t))
}

/// `(values, inverse or None, counts or None)`.
#[pyfunction]
fn _unique(
    x: &PyTensor,
    return_inverse: bool,
    return_counts: bool,
) -> PyResult<(PyTensor, Option<PyTensor>, Option<PyTensor>)> {
    let u = x.t.unique(return_inverse, return_counts).py()?;
    Ok((
        PyTensor { t: u.values },
        u.inverse.map(|t| PyTensor { t }),
        u.counts.map(|t| PyTensor { t }),
    ))
}

/// `scatter(dim, index, src)` with a tensor or a number as `src`.
#[pyfunction]
fn _scatter(
    x: &PyTensor,
    dim: isize,
    index: &PyTensor,
    src: &Bound<'_, PyAny>,
) -> PyResult<PyTensor> {
    if let Ok(s) = src.cast::<PyTensor>() {
        return t(x.t.scatter(dim, &index.t, &s.borrow().t));
    }
    let v: f64 = src
        .extract()
        .map_err(|_| PyTypeError::new_err("scatter: src must be a tensor or a number"))?;
    t(x.t.scatter_value(dim, &index.t, v))
}

/// Makes `x` hold `result` in place (autograd rebinds it like the core's in-place ops), for
/// the in-place variants written in Python (`scatter_`, `index_add_`).
#[pyfunction]
fn _assign_inplace<'py>(
    x: Bound<'py, PyTensor>,
    result: &PyTensor,
    op: &str,
) -> PyResult<Bound<'py, PyTensor>> {
    crate::tensor::inplace(x, result.t.clone(), op)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_roll, m)?)?;
    m.add_function(wrap_pyfunction!(_diag, m)?)?;
    m.add_function(wrap_pyfunction!(_repeat_interleave, m)?)?;
    m.add_function(wrap_pyfunction!(_nonzero, m)?)?;
    m.add_function(wrap_pyfunction!(_masked_select, m)?)?;
    m.add_function(wrap_pyfunction!(_unique, m)?)?;
    m.add_function(wrap_pyfunction!(_scatter, m)?)?;
    m.add_function(wrap_pyfunction!(_assign_inplace, m)?)?;
    Ok(())
}

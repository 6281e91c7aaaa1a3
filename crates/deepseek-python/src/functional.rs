//! `deepseek._C.functional`: the Rust side of `deepseek.nn.functional`, with PyTorch's
//! argument names and defaults. The Python module re-exports these and adds the few
//! functions that are plain Python compositions.

use crate::tensor::{as_tensor, dims_arg, opt_tensor, tensor_list, PyTensor};
use crate::IntoPy;
use deepseek::nn::functional as F;
use deepseek::Tensor;
use pyo3::exceptions::{PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

fn w(t: Tensor) -> PyTensor {
    PyTensor { t }
}

/// An int or a pair of ints (PyTorch's `_pair`).
fn pair(o: &Bound<'_, PyAny>, name: &str) -> PyResult<[usize; 2]> {
    if let Ok(v) = o.extract::<usize>() {
        return Ok([v, v]);
    }
    match o.extract::<Vec<usize>>() {
        Ok(v) if v.len() == 1 => Ok([v[0], v[0]]),
        Ok(v) if v.len() == 2 => Ok([v[0], v[1]]),
        _ => Err(PyValueError::new_err(format!(
            "{name} must be a non-negative int or a pair of them, got {}",
            o.repr()?
        ))),
    }
}

fn single(o: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    if let Ok(v) = o.extract::<usize>() {
        return Ok(v);
    }
    match o.extract::<Vec<usize>>() {
        Ok(v) if v.len() == 1 => Ok(v[0]),
        _ => Err(PyValueError::new_err(format!(
            "{name} must be a non-negative int, got {}",
            o.repr()?
        ))),
    }
}

fn reduction(size_average: Option<bool>, reduce: Option<bool>, reduction: &str) -> String {
    // PyTorch's legacy arguments, when given, override `reduction`.
    match (size_average, reduce) {
        (None, None) => reduction.to_string(),
        (sa, r) => {
            if r == Some(false) {
                "none".into()
            } else if sa == Some(false) {
                "sum".into()
            } else {
                "mean".into()
            }
        }
    }
}

#[pyfunction]
#[pyo3(signature = (input, inplace=false))]
fn relu(input: &PyTensor, inplace: bool) -> PyResult<PyTensor> {
    let _ = inplace;
    Ok(w(input.t.relu().py()?))
}

/// `gelu(input, approximate='none')`: GELU, exact (erf) or `approximate='tanh'`.
#[pyfunction]
#[pyo3(signature = (input, approximate="none"))]
fn gelu(input: &PyTensor, approximate: &str) -> PyResult<PyTensor> {
    Ok(w(input.t.gelu(approximate).py()?))
}

#[pyfunction]
#[pyo3(signature = (input, inplace=false))]
fn silu(input: &PyTensor, inplace: bool) -> PyResult<PyTensor> {
    let _ = inplace;
    Ok(w(input.t.silu().py()?))
}

/// `sigmoid(input)`: `1 / (1 + exp(-x))`.
#[pyfunction]
fn sigmoid(input: &PyTensor) -> PyResult<PyTensor> {
    Ok(w(input.t.sigmoid().py()?))
}

/// `tanh(input)`: hyperbolic tangent.
#[pyfunction]
fn tanh(input: &PyTensor) -> PyResult<PyTensor> {
    Ok(w(input.t.tanh().py()?))
}

/// `softplus(input, beta=1.0, threshold=20.0)`: `log(1 + exp(beta x)) / beta`, linear above the threshold.
#[pyfunction]
#[pyo3(signature = (input, beta=1.0, threshold=20.0))]
fn softplus(input: &PyTensor, beta: f64, threshold: f64) -> PyResult<PyTensor> {
    Ok(w(input.t.softplus(beta, threshold).py()?))
}

#[pyfunction]
#[pyo3(signature = (input, alpha=1.0, inplace=false))]
fn elu(input: &PyTensor, alpha: f64, inplace: bool) -> PyResult<PyTensor> {
    let _ = inplace;
    Ok(w(input.t.elu(alpha).py()?))
}

#[pyfunction]
#[pyo3(signature = (input, negative_slope=0.01, inplace=false))]
fn leaky_relu(input: &PyTensor, negative_slope: f64, inplace: bool) -> PyResult<PyTensor> {
    let _ = inplace;
    Ok(w(input.t.leaky_relu(negative_slope).py()?))
}

fn softmax_dim(dim: Option<isize>, x: &Tensor, name: &str) -> PyResult<isize> {
    match dim {
        Some(d) => Ok(d),
        None => {
            // PyTorch's legacy implicit dim choice (with a deprecation warning there).
            let _ = name;
            Ok(if matches!(x.rank(), 0 | 1 | 3) { 0 } else { 1 })
        }
    }
}

/// `softmax(input, dim=None, dtype=None)`: `exp(x) / sum(exp(x), dim)`, computed stably.
#[pyfunction]
#[pyo3(signature = (input, dim=None, _stacklevel=3, dtype=None))]
fn softmax(
    input: &PyTensor,
    dim: Option<isize>,
    _stacklevel: i64,
    dtype: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let x = cast(&input.t, dtype)?;
    let d = softmax_dim(dim, &x, "softmax")?;
    Ok(w(F::softmax(&x, d).py()?))
}

/// `log_softmax(input, dim=None, dtype=None)`: `log(softmax(input, dim))`, computed stably.
#[pyfunction]
#[pyo3(signature = (input, dim=None, _stacklevel=3, dtype=None))]
fn log_softmax(
    input: &PyTensor,
    dim: Option<isize>,
    _stacklevel: i64,
    dtype: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let x = cast(&input.t, dtype)?;
    let d = softmax_dim(dim, &x, "log_softmax")?;
    Ok(w(F::log_softmax(&x, d).py()?))
}

fn cast(t: &Tensor, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Tensor> {
    match dtype.filter(|d| !d.is_none()) {
        Some(d) => t.to_dtype(crate::dtype_arg(d)?).py(),
        None => Ok(t.clone()),
    }
}

/// `dropout(input, p=0.5, training=True, inplace=False)`: zero elements with probability `p` and scale the rest by 1/(1-p) while training.
#[pyfunction]
#[pyo3(signature = (input, p=0.5, training=true, inplace=false))]
fn dropout(input: &PyTensor, p: f64, training: bool, inplace: bool) -> PyResult<PyTensor> {
    let _ = inplace;
    Ok(w(F::dropout(&input.t, p, training).py()?))
}

/// `linear(input, weight, bias=None)`: `input @ weight.T + bias`.
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None))]
fn linear(
    input: &PyTensor,
    weight: &PyTensor,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let b = opt_tensor(bias)?;
    Ok(w(input.t.linear(&weight.t, b.as_ref()).py()?))
}

/// `embedding(input, weight, padding_idx=None, ...)`: `input` must hold integer indices.
#[pyfunction]
#[pyo3(signature = (input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=false, sparse=false))]
fn embedding(
    input: &PyTensor,
    weight: &PyTensor,
    padding_idx: Option<i64>,
    max_norm: Option<f64>,
    norm_type: f64,
    scale_grad_by_freq: bool,
    sparse: bool,
) -> PyResult<PyTensor> {
    let _ = norm_type;
    if max_norm.is_some() || scale_grad_by_freq || sparse {
        return Err(PyNotImplementedError::new_err(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported",
        ));
    }
    Ok(w(F::embedding(&input.t, &weight.t, padding_idx).py()?))
}

/// Constant padding: `pad` lists (left, right) pairs from the last dim backwards.
#[pyfunction]
#[pyo3(signature = (input, pad, mode="constant", value=None))]
fn pad(input: &PyTensor, pad: Vec<i64>, mode: &str, value: Option<f64>) -> PyResult<PyTensor> {
    if mode != "constant" {
        return Err(PyNotImplementedError::new_err(format!(
            "pad: mode '{mode}' is not supported (only 'constant')"
        )));
    }
    let p: Vec<usize> = pad
        .iter()
        .map(|&v| {
            usize::try_from(v)
                .map_err(|_| PyValueError::new_err("pad: negative padding is not supported"))
        })
        .collect::<PyResult<_>>()?;
    Ok(w(F::pad(&input.t, &p, value.unwrap_or(0.0)).py()?))
}

fn shape_of(o: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    if let Ok(v) = o.extract::<usize>() {
        return Ok(vec![v]);
    }
    o.extract::<Vec<usize>>()
}

/// `layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5)`: normalise over the trailing `normalized_shape` dims.
#[pyfunction]
#[pyo3(signature = (input, normalized_shape, weight=None, bias=None, eps=1e-5))]
fn layer_norm(
    input: &PyTensor,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> PyResult<PyTensor> {
    let (wt, b) = (opt_tensor(weight)?, opt_tensor(bias)?);
    Ok(w(F::layer_norm(
        &input.t,
        &shape_of(normalized_shape)?,
        wt.as_ref(),
        b.as_ref(),
        eps,
    )
    .py()?))
}

/// `rms_norm(input, normalized_shape, weight=None, eps=None)`: `x / sqrt(mean(x^2) + eps) * weight` over the trailing dims (eps defaults to the dtype's epsilon).
#[pyfunction]
#[pyo3(signature = (input, normalized_shape, weight=None, eps=None))]
fn rms_norm(
    input: &PyTensor,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    eps: Option<f64>,
) -> PyResult<PyTensor> {
    let wt = opt_tensor(weight)?;
    Ok(w(F::rms_norm(
        &input.t,
        &shape_of(normalized_shape)?,
        wt.as_ref(),
        eps,
    )
    .py()?))
}

/// Batch norm; in training mode the running statistics (if given) are updated in place.
#[pyfunction]
#[pyo3(signature = (input, running_mean, running_var, weight=None, bias=None, training=false, momentum=0.1, eps=1e-5))]
#[allow(clippy::too_many_arguments)]
fn batch_norm(
    input: &PyTensor,
    running_mean: Option<&Bound<'_, PyAny>>,
    running_var: Option<&Bound<'_, PyAny>>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    training: bool,
    momentum: Option<f64>,
    eps: f64,
) -> PyResult<PyTensor> {
    let (rm, rv) = (opt_tensor(running_mean)?, opt_tensor(running_var)?);
    let (wt, b) = (opt_tensor(weight)?, opt_tensor(bias)?);
    Ok(w(F::batch_norm(
        &input.t,
        rm.as_ref(),
        rv.as_ref(),
        wt.as_ref(),
        b.as_ref(),
        training,
        momentum.unwrap_or(0.1),
        eps,
    )
    .py()?))
}

/// `group_norm(input, num_groups, weight=None, bias=None, eps=1e-5)`: normalise over groups of channels of (N, C, *) input.
#[pyfunction]
#[pyo3(signature = (input, num_groups, weight=None, bias=None, eps=1e-5))]
fn group_norm(
    input: &PyTensor,
    num_groups: usize,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    eps: f64,
) -> PyResult<PyTensor> {
    let (wt, b) = (opt_tensor(weight)?, opt_tensor(bias)?);
    Ok(w(F::group_norm(
        &input.t,
        num_groups,
        wt.as_ref(),
        b.as_ref(),
        eps,
    )
    .py()?))
}

/// PyTorch's string paddings for convolutions: `'valid'` is no padding; `'same'` pads so the
/// output keeps the input's size (stride 1 only). Returns, per spatial dim, the symmetric
/// padding for the convolution and the one extra element to add on the right first when the
/// effective kernel size is even (PyTorch puts the odd element on the right too).
fn string_padding(
    p: &Bound<'_, PyAny>,
    weight: &Tensor,
    stride: &[usize],
    dilation: &[usize],
) -> PyResult<Option<(Vec<usize>, Vec<usize>)>> {
    let Ok(s) = p.extract::<String>() else {
        return Ok(None);
    };
    let k = &weight.shape()[2.min(weight.shape().len())..];
    match s.as_str() {
        "valid" => Ok(Some((vec![0; k.len()], vec![0; k.len()]))),
        "same" => {
            if stride.iter().any(|&s| s != 1) {
                return Err(PyValueError::new_err(
                    "padding='same' is not supported for strided convolutions",
                ));
            }
            let total: Vec<usize> = k
                .iter()
                .zip(dilation)
                .map(|(&k, &d)| d * k.saturating_sub(1))
                .collect();
            Ok(Some((
                total.iter().map(|t| t / 2).collect(),
                total.iter().map(|t| t % 2).collect(),
            )))
        }
        _ => Err(PyValueError::new_err(format!(
            "Invalid padding string '{s}', should be one of {{'valid', 'same'}}"
        ))),
    }
}

/// Runs a batched op on `x`, adding and removing a batch dim when `x` has `unbatched_ndim`
/// dims (PyTorch accepts (C, *spatial) inputs to convolutions and pooling).
fn batched(
    x: &Tensor,
    unbatched_ndim: usize,
    op: impl FnOnce(&Tensor) -> deepseek::Result<Tensor>,
) -> PyResult<PyTensor> {
    if x.shape().len() == unbatched_ndim {
        let y = op(&x.unsqueeze(0).py()?).py()?;
        return Ok(w(y.squeeze_dim(0).py()?));
    }
    Ok(w(op(x).py()?))
}

/// The input padded on the right of each spatial dim by `extra` (for asymmetric `'same'`).
fn pad_right(input: &Tensor, extra: &[usize]) -> PyResult<Tensor> {
    if extra.iter().all(|&e| e == 0) {
        return Ok(input.clone());
    }
    let pads: Vec<usize> = extra.iter().rev().flat_map(|&e| [0, e]).collect();
    F::pad(input, &pads, 0.0).py()
}

/// `conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)`: 2-D convolution of (N, C_in, H, W) or (C_in, H, W) input; `padding` may be 'same' or 'valid'.
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None, stride=None, padding=None, dilation=None, groups=1))]
#[allow(clippy::too_many_arguments)]
fn conv2d(
    input: &PyTensor,
    weight: &PyTensor,
    bias: Option<&Bound<'_, PyAny>>,
    stride: Option<&Bound<'_, PyAny>>,
    padding: Option<&Bound<'_, PyAny>>,
    dilation: Option<&Bound<'_, PyAny>>,
    groups: usize,
) -> PyResult<PyTensor> {
    let b = opt_tensor(bias)?;
    let s = stride
        .map(|s| pair(s, "stride"))
        .transpose()?
        .unwrap_or([1, 1]);
    let d = dilation
        .map(|s| pair(s, "dilation"))
        .transpose()?
        .unwrap_or([1, 1]);
    let (x, p) = match padding
        .map(|p| string_padding(p, &weight.t, &s, &d))
        .transpose()?
    {
        Some(Some((sym, extra))) => (pad_right(&input.t, &extra)?, [sym[0], sym[1]]),
        _ => (
            input.t.clone(),
            padding
                .map(|s| pair(s, "padding"))
                .transpose()?
                .unwrap_or([0, 0]),
        ),
    };
    batched(&x, 3, |x| {
        F::conv2d(x, &weight.t, b.as_ref(), s, p, d, groups)
    })
}

/// `conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)`: 1-D convolution of (N, C_in, L) or (C_in, L) input; `padding` may be 'same' or 'valid'.
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None, stride=None, padding=None, dilation=None, groups=1))]
#[allow(clippy::too_many_arguments)]
fn conv1d(
    input: &PyTensor,
    weight: &PyTensor,
    bias: Option<&Bound<'_, PyAny>>,
    stride: Option<&Bound<'_, PyAny>>,
    padding: Option<&Bound<'_, PyAny>>,
    dilation: Option<&Bound<'_, PyAny>>,
    groups: usize,
) -> PyResult<PyTensor> {
    let b = opt_tensor(bias)?;
    let s = stride
        .map(|s| single(s, "stride"))
        .transpose()?
        .unwrap_or(1);
    let d = dilation
        .map(|s| single(s, "dilation"))
        .transpose()?
        .unwrap_or(1);
    let (x, p) = match padding
        .map(|p| string_padding(p, &weight.t, &[s], &[d]))
        .transpose()?
    {
        Some(Some((sym, extra))) => (pad_right(&input.t, &extra)?, sym[0]),
        _ => (
            input.t.clone(),
            padding
                .map(|s| single(s, "padding"))
                .transpose()?
                .unwrap_or(0),
        ),
    };
    batched(&x, 2, |x| {
        F::conv1d(x, &weight.t, b.as_ref(), s, p, d, groups)
    })
}

#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride=None, padding=None, dilation=None, ceil_mode=false, return_indices=false))]
#[allow(clippy::too_many_arguments)]
fn max_pool2d(
    input: &PyTensor,
    kernel_size: &Bound<'_, PyAny>,
    stride: Option<&Bound<'_, PyAny>>,
    padding: Option<&Bound<'_, PyAny>>,
    dilation: Option<&Bound<'_, PyAny>>,
    ceil_mode: bool,
    return_indices: bool,
) -> PyResult<PyTensor> {
    if return_indices {
        return Err(PyNotImplementedError::new_err(
            "max_pool2d: return_indices=True is not supported",
        ));
    }
    let k = pair(kernel_size, "kernel_size")?;
    let s = match stride.filter(|s| !s.is_none()) {
        Some(s) => {
            if s.extract::<Vec<usize>>().is_ok_and(|v| v.is_empty()) {
                k
            } else {
                pair(s, "stride")?
            }
        }
        None => k,
    };
    let p = padding
        .map(|s| pair(s, "padding"))
        .transpose()?
        .unwrap_or([0, 0]);
    let d = dilation
        .map(|s| pair(s, "dilation"))
        .transpose()?
        .unwrap_or([1, 1]);
    Ok(w(F::max_pool2d(&input.t, k, s, p, d, ceil_mode).py()?))
}

/// `avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None)`: average pooling over (N, C, H, W).
#[pyfunction]
#[pyo3(signature = (input, kernel_size, stride=None, padding=None, ceil_mode=false, count_include_pad=true, divisor_override=None))]
#[allow(clippy::too_many_arguments)]
fn avg_pool2d(
    input: &PyTensor,
    kernel_size: &Bound<'_, PyAny>,
    stride: Option<&Bound<'_, PyAny>>,
    padding: Option<&Bound<'_, PyAny>>,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<usize>,
) -> PyResult<PyTensor> {
    let k = pair(kernel_size, "kernel_size")?;
    let s = match stride.filter(|s| !s.is_none()) {
        Some(s) => {
            if s.extract::<Vec<usize>>().is_ok_and(|v| v.is_empty()) {
                k
            } else {
                pair(s, "stride")?
            }
        }
        None => k,
    };
    let p = padding
        .map(|s| pair(s, "padding"))
        .transpose()?
        .unwrap_or([0, 0]);
    Ok(w(F::avg_pool2d(
        &input.t,
        k,
        s,
        p,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )
    .py()?))
}

/// `adaptive_avg_pool2d(input, output_size)`: average pooling of (N, C, H, W) or (C, H, W) input to `output_size` bins.
#[pyfunction]
fn adaptive_avg_pool2d(input: &PyTensor, output_size: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let s = pair(output_size, "output_size")?;
    Ok(w(F::adaptive_avg_pool2d(&input.t, s).py()?))
}

/// `adaptive_max_pool2d(input, output_size, return_indices=False)`: max pooling to `output_size` bins.
#[pyfunction]
#[pyo3(signature = (input, output_size, return_indices=false))]
fn adaptive_max_pool2d(
    input: &PyTensor,
    output_size: &Bound<'_, PyAny>,
    return_indices: bool,
) -> PyResult<PyTensor> {
    if return_indices {
        return Err(PyNotImplementedError::new_err(
            "adaptive_max_pool2d: return_indices=True is not supported",
        ));
    }
    let s = pair(output_size, "output_size")?;
    Ok(w(F::adaptive_max_pool2d(&input.t, s).py()?))
}

/// `cross_entropy(input, target, weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)`: log_softmax + NLL; `target` holds class indices (int64) or class probabilities (float, same shape as `input`).
#[pyfunction]
#[pyo3(signature = (input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", label_smoothing=0.0))]
#[allow(clippy::too_many_arguments)]
// PyO3 renders negative defaults as `...`: spell the signature out for help().
#[pyo3(
    text_signature = "(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean', label_smoothing=0.0)"
)]
fn cross_entropy(
    input: &PyTensor,
    target: &PyTensor,
    weight: Option<&Bound<'_, PyAny>>,
    size_average: Option<bool>,
    ignore_index: i64,
    reduce: Option<bool>,
    reduction: &str,
    label_smoothing: f64,
) -> PyResult<PyTensor> {
    let wt = opt_tensor(weight)?;
    let r = self::reduction(size_average, reduce, reduction);
    Ok(w(F::cross_entropy(
        &input.t,
        &target.t,
        wt.as_ref(),
        ignore_index,
        &r,
        label_smoothing,
    )
    .py()?))
}

/// `nll_loss(input, target, weight=None, ignore_index=-100, reduction='mean')`: negative log-likelihood of log-probabilities `input` at the int64 `target` classes.
#[pyfunction]
#[pyo3(signature = (input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"))]
#[allow(clippy::too_many_arguments)]
// PyO3 renders negative defaults as `...`: spell the signature out for help().
#[pyo3(
    text_signature = "(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean')"
)]
fn nll_loss(
    input: &PyTensor,
    target: &PyTensor,
    weight: Option<&Bound<'_, PyAny>>,
    size_average: Option<bool>,
    ignore_index: i64,
    reduce: Option<bool>,
    reduction: &str,
) -> PyResult<PyTensor> {
    let wt = opt_tensor(weight)?;
    let r = self::reduction(size_average, reduce, reduction);
    Ok(w(F::nll_loss(
        &input.t,
        &target.t,
        wt.as_ref(),
        ignore_index,
        &r,
    )
    .py()?))
}

macro_rules! simple_loss {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (input, target, size_average=None, reduce=None, reduction="mean"))]
        fn $name(
            input: &PyTensor,
            target: &PyTensor,
            size_average: Option<bool>,
            reduce: Option<bool>,
            reduction: &str,
        ) -> PyResult<PyTensor> {
            let r = self::reduction(size_average, reduce, reduction);
            Ok(w(F::$name(&input.t, &target.t, &r).py()?))
        }
    };
}
simple_loss!(
    mse_loss,
    "`mse_loss(input, target, reduction='mean')`: mean squared error."
);
simple_loss!(
    l1_loss,
    "`l1_loss(input, target, reduction='mean')`: mean absolute error."
);

/// `smooth_l1_loss(input, target, reduction='mean', beta=1.0)`: quadratic below `beta` (divided by it), linear above.
#[pyfunction]
#[pyo3(signature = (input, target, size_average=None, reduce=None, reduction="mean", beta=1.0))]
fn smooth_l1_loss(
    input: &PyTensor,
    target: &PyTensor,
    size_average: Option<bool>,
    reduce: Option<bool>,
    reduction: &str,
    beta: f64,
) -> PyResult<PyTensor> {
    let r = self::reduction(size_average, reduce, reduction);
    Ok(w(F::smooth_l1_loss(&input.t, &target.t, &r, beta).py()?))
}

/// `huber_loss(input, target, reduction='mean', delta=1.0)`: quadratic below `delta`, linear above.
#[pyfunction]
#[pyo3(signature = (input, target, reduction="mean", delta=1.0))]
fn huber_loss(
    input: &PyTensor,
    target: &PyTensor,
    reduction: &str,
    delta: f64,
) -> PyResult<PyTensor> {
    Ok(w(F::huber_loss(&input.t, &target.t, reduction, delta).py()?))
}

/// `binary_cross_entropy(input, target, weight=None, reduction='mean')`: BCE between probabilities `input` and `target` (log clamped at -100 like PyTorch).
#[pyfunction]
#[pyo3(signature = (input, target, weight=None, size_average=None, reduce=None, reduction="mean"))]
fn binary_cross_entropy(
    input: &PyTensor,
    target: &PyTensor,
    weight: Option<&Bound<'_, PyAny>>,
    size_average: Option<bool>,
    reduce: Option<bool>,
    reduction: &str,
) -> PyResult<PyTensor> {
    let wt = opt_tensor(weight)?;
    let r = self::reduction(size_average, reduce, reduction);
    Ok(w(F::binary_cross_entropy(
        &input.t,
        &target.t,
        wt.as_ref(),
        &r,
    )
    .py()?))
}

/// `binary_cross_entropy_with_logits(input, target, weight=None, reduction='mean', pos_weight=None)`: sigmoid + BCE in one stable step.
#[pyfunction]
#[pyo3(signature = (input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None))]
#[allow(clippy::too_many_arguments)]
fn binary_cross_entropy_with_logits(
    input: &PyTensor,
    target: &PyTensor,
    weight: Option<&Bound<'_, PyAny>>,
    size_average: Option<bool>,
    reduce: Option<bool>,
    reduction: &str,
    pos_weight: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let wt = opt_tensor(weight)?;
    let pw = opt_tensor(pos_weight)?;
    let r = self::reduction(size_average, reduce, reduction);
    Ok(w(F::binary_cross_entropy_with_logits(
        &input.t,
        &target.t,
        wt.as_ref(),
        pw.as_ref(),
        &r,
    )
    .py()?))
}

/// `kl_div(input, target, reduction='mean', log_target=False)`: KL divergence with `input` given as log-probabilities.
#[pyfunction]
#[pyo3(signature = (input, target, size_average=None, reduce=None, reduction="mean", log_target=false))]
fn kl_div(
    input: &PyTensor,
    target: &PyTensor,
    size_average: Option<bool>,
    reduce: Option<bool>,
    reduction: &str,
    log_target: bool,
) -> PyResult<PyTensor> {
    let r = self::reduction(size_average, reduce, reduction);
    Ok(w(F::kl_div(&input.t, &target.t, &r, log_target).py()?))
}

/// `scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False)`: `softmax(q k^T * scale + mask) v`.
#[pyfunction]
#[pyo3(signature = (query, key, value, attn_mask=None, dropout_p=0.0, is_causal=false, scale=None, enable_gqa=false))]
#[allow(clippy::too_many_arguments)]
fn scaled_dot_product_attention(
    query: &PyTensor,
    key: &PyTensor,
    value: &PyTensor,
    attn_mask: Option<&Bound<'_, PyAny>>,
    dropout_p: f64,
    is_causal: bool,
    scale: Option<f64>,
    enable_gqa: bool,
) -> PyResult<PyTensor> {
    if enable_gqa {
        return Err(PyNotImplementedError::new_err(
            "scaled_dot_product_attention: enable_gqa=True is not supported",
        ));
    }
    let m = opt_tensor(attn_mask)?;
    Ok(w(F::scaled_dot_product_attention(
        &query.t,
        &key.t,
        &value.t,
        m.as_ref(),
        dropout_p,
        is_causal,
        scale,
    )
    .py()?))
}

/// Multi-head attention over time-major [L, N, E] inputs (the core of
/// `F.multi_head_attention_forward`; the Python wrapper handles PyTorch's full signature).
#[pyfunction]
#[pyo3(signature = (query, key, value, embed_dim, num_heads, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, attn_mask=None, is_causal=false))]
#[allow(clippy::too_many_arguments)]
fn mha(
    query: &PyTensor,
    key: &PyTensor,
    value: &PyTensor,
    embed_dim: usize,
    num_heads: usize,
    in_proj_weight: &PyTensor,
    in_proj_bias: Option<&Bound<'_, PyAny>>,
    out_proj_weight: &PyTensor,
    out_proj_bias: Option<&Bound<'_, PyAny>>,
    attn_mask: Option<&Bound<'_, PyAny>>,
    is_causal: bool,
) -> PyResult<PyTensor> {
    let ib = opt_tensor(in_proj_bias)?;
    let ob = opt_tensor(out_proj_bias)?;
    let m = opt_tensor(attn_mask)?;
    Ok(w(F::mha(
        &query.t,
        &key.t,
        &value.t,
        embed_dim,
        num_heads,
        &in_proj_weight.t,
        ib.as_ref(),
        &out_proj_weight.t,
        ob.as_ref(),
        m.as_ref(),
        is_causal,
    )
    .py()?))
}

/// The fused multi-layer LSTM: `(output, h_n, c_n)`. `weights` per layer and direction:
/// `w_ih, w_hh[, b_ih, b_hh]`.
#[pyfunction]
#[pyo3(signature = (input, h0, c0, weights, num_layers, batch_first, bidirectional=false, dropout=0.0, training=false))]
#[allow(clippy::too_many_arguments)]
fn lstm<'py>(
    py: Python<'py>,
    input: &PyTensor,
    h0: &PyTensor,
    c0: &PyTensor,
    weights: &Bound<'py, PyAny>,
    num_layers: usize,
    batch_first: bool,
    bidirectional: bool,
    dropout: f64,
    training: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let ws = tensor_list(weights)?;
    let opt = F::RnnOptions {
        bidirectional,
        dropout,
        training,
    };
    // The sequence runs without the GIL (other Python threads keep going).
    let (x, h0, c0) = (&input.t, &h0.t, &c0.t);
    let (o, h, c) = py
        .detach(|| F::lstm_with(x, h0, c0, &ws, num_layers, batch_first, opt))
        .py()?;
    PyTuple::new(py, [w(o), w(h), w(c)])
}

/// The multi-layer GRU: `(output, h_n)`.
#[pyfunction]
#[pyo3(signature = (input, h0, weights, num_layers, batch_first, bidirectional=false, dropout=0.0, training=false))]
#[allow(clippy::too_many_arguments)]
fn gru<'py>(
    py: Python<'py>,
    input: &PyTensor,
    h0: &PyTensor,
    weights: &Bound<'py, PyAny>,
    num_layers: usize,
    batch_first: bool,
    bidirectional: bool,
    dropout: f64,
    training: bool,
) -> PyResult<Bound<'py, PyTuple>> {
    let ws = tensor_list(weights)?;
    let opt = F::RnnOptions {
        bidirectional,
        dropout,
        training,
    };
    let (x, h0) = (&input.t, &h0.t);
    let (o, h) = py
        .detach(|| F::gru_with(x, h0, &ws, num_layers, batch_first, opt))
        .py()?;
    PyTuple::new(py, [w(o), w(h)])
}

/// `vector_norm(x, ord=2, dim=None, keepdim=False)` (torch.linalg).
#[pyfunction]
#[pyo3(signature = (x, ord=2.0, dim=None, keepdim=false, dtype=None))]
fn vector_norm(
    x: &PyTensor,
    ord: f64,
    dim: Option<&Bound<'_, PyAny>>,
    keepdim: bool,
    dtype: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let t = cast(&x.t, dtype)?;
    let d = dims_arg(dim)?;
    Ok(w(t.vector_norm(ord, d.as_deref(), keepdim).py()?))
}

/// `one_hot(tensor, num_classes=-1)`: int64 one-hot encoding of an int64 tensor of class
/// indices (a trailing dim of `num_classes`, inferred as max + 1 when -1).
#[pyfunction]
#[pyo3(signature = (tensor, num_classes=-1))]
// PyO3 renders negative defaults as `...`: spell the signature out for help().
#[pyo3(text_signature = "(tensor, num_classes=-1)")]
fn one_hot(tensor: &Bound<'_, PyAny>, num_classes: i64) -> PyResult<PyTensor> {
    let t = as_tensor(tensor)?;
    if t.dtype() != deepseek::DType::I64 {
        return Err(PyTypeError::new_err(format!(
            "one_hot is only applicable to index tensors (int64), got {}",
            t.dtype()
        )));
    }
    let v = t.to_vec::<i64>().py()?;
    let n = if num_classes < 0 {
        v.iter().copied().max().map_or(0, |m| m + 1)
    } else {
        num_classes
    };
    if let Some(bad) = v.iter().find(|&&i| i < 0 || i >= n) {
        return Err(pyo3::exceptions::PyIndexError::new_err(format!(
            "one_hot: class value {bad} out of range [0, {n})"
        )));
    }
    let eye = Tensor::eye(n as usize, n as usize, deepseek::DType::I64).py()?;
    let flat = t.reshape(&[t.numel()]).py()?;
    let mut shape = t.shape().to_vec();
    shape.push(n as usize);
    Ok(w(eye.index_select(0, &flat).py()?.reshape(&shape).py()?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let f = PyModule::new(m.py(), "functional")?;
    macro_rules! add {
        ($($n:ident),*) => { $( f.add_function(wrap_pyfunction!($n, &f)?)?; )* };
    }
    add!(
        relu,
        gelu,
        silu,
        sigmoid,
        tanh,
        softplus,
        elu,
        leaky_relu,
        softmax,
        log_softmax,
        dropout,
        linear,
        embedding,
        pad,
        layer_norm,
        rms_norm,
        batch_norm,
        group_norm,
        conv1d,
        conv2d,
        max_pool2d,
        avg_pool2d,
        adaptive_avg_pool2d,
        adaptive_max_pool2d,
        cross_entropy,
        nll_loss,
        mse_loss,
        l1_loss,
        smooth_l1_loss,
        huber_loss,
        binary_cross_entropy,
        binary_cross_entropy_with_logits,
        kl_div,
        scaled_dot_product_attention,
        mha,
        lstm,
        gru,
        vector_norm,
        one_hot
    );
    m.add_submodule(&f)?;
    Ok(())
}

//! Quantization parameters (scale, zero point) and float ↔ 8-bit conversion, computed the
//! way PyTorch's `x86`/`fbgemm` engine computes them, so that deepseek's int8 layers hold the
//! same integers as PyTorch's for the same float weights and inputs.

use crate::{Error, Result};

/// PyTorch's `SMALL_SCALE_THRESHOLD`: smaller activation scales are raised to it.
const SMALL_SCALE_THRESHOLD: f32 = 6.1e-5;

/// An affine quantization: `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

/// The smallest and largest value of `x`; an error naming `what` if any value is NaN or
/// infinite (quantizing those gives meaningless integers).
pub fn finite_min_max(x: &[f32], op: &str, what: &str) -> Result<(f32, f32)> {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    let mut bad = false;
    crate::backend::cpu::threads::simd(|| {
        for &v in x {
            lo = lo.min(v);
            hi = hi.max(v);
            bad |= !v.is_finite();
        }
    });
    if bad {
        let i = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Error::value(
            op,
            format!(
                "{what} holds a non-finite value ({} at flat index {i}); cannot quantize",
                x[i]
            ),
        ));
    }
    Ok((lo, hi))
}

/// Affine parameters for values in `[min, max]` mapped onto `[qmin, qmax]`: PyTorch's
/// `ChooseQuantizationParams` (the range is widened to hold 0, `reduce_range` halves the
/// integer range as the x86/fbgemm engine does for dynamic activations, a zero range gets
/// scale 0.1, scales below 6.1e-5 are raised to it, the zero point is nudged to an integer).
pub fn choose_qparams(
    min: f32,
    max: f32,
    qmin: i32,
    qmax: i32,
    reduce_range: bool,
) -> Result<QParams> {
    if !min.is_finite() || !max.is_finite() || min > max {
        return Err(Error::value(
            "choose_qparams",
            format!("invalid range [{min}, {max}]"),
        ));
    }
    let (qmin, qmax) = if reduce_range {
        (qmin / 2, qmax / 2)
    } else {
        (qmin, qmax)
    };
    let mut min = min.min(0.0);
    let mut max = max.max(0.0);
    let mut scale = (max as f64 - min as f64) / (qmax - qmin) as f64;
    if scale as f32 == 0.0 || (1.0f32 / scale as f32).is_infinite() {
        scale = 0.1;
    }
    let mut scale = scale as f32;
    if scale < SMALL_SCALE_THRESHOLD {
        let org = scale;
        scale = SMALL_SCALE_THRESHOLD;
        if min == 0.0 {
            max = SMALL_SCALE_THRESHOLD * (qmax - qmin) as f32;
        } else if max == 0.0 {
            min = -SMALL_SCALE_THRESHOLD * (qmax - qmin) as f32;
        } else {
            let amp = SMALL_SCALE_THRESHOLD / org;
            min *= amp;
            max *= amp;
        }
    }
    let s = scale as f64;
    let zp_from_min = qmin as f64 - min as f64 / s;
    let zp_from_max = qmax as f64 - max as f64 / s;
    let err_min = (qmin as f64).abs() - (min as f64 / s).abs();
    let err_max = (qmax as f64).abs() - (max as f64 / s).abs();
    let initial = if err_min < err_max {
        zp_from_min
    } else {
        zp_from_max
    };
    let zero_point = if initial < qmin as f64 {
        qmin
    } else if initial > qmax as f64 {
        qmax
    } else {
        initial.round_ties_even() as i32
    };
    Ok(QParams { scale, zero_point })
}

/// Symmetric int8 weight scale for values of magnitude up to `amax`: PyTorch's
/// `MinMaxObserver(qscheme=per_tensor_symmetric, dtype=qint8)`, `amax / 127.5`, at least
/// `f32::EPSILON`.
pub fn symmetric_scale(amax: f32) -> f32 {
    (amax / 127.5).max(f32::EPSILON)
}

/// Quantizes `w` (`[n, k]` row-major) to symmetric int8: one scale for the whole tensor, or one
/// per output row (`per_channel`, PyTorch's `PerChannelMinMaxObserver(ch_axis=0)`). Returns the
/// integers and the scales (1 or `n` of them). `q = round_half_even(w · (1/scale))` clamped to
/// [−128, 127], as PyTorch's `quantize_per_tensor` / `quantize_per_channel`.
///
/// Errors on NaN or infinite weights, and on an all-zero tensor (a degenerate range: nothing to
/// quantize, most likely an uninitialised layer). A single all-zero row (a pruned channel) is
/// fine with `per_channel`: it gets scale `f32::EPSILON` and zeros, as in PyTorch.
pub fn quantize_weight_i8(
    w: &[f32],
    n: usize,
    k: usize,
    per_channel: bool,
    op: &str,
) -> Result<(Vec<i8>, Vec<f32>)> {
    if w.len() != n * k {
        return Err(Error::shape(
            op,
            format!("weight has {} values, expected {n}×{k}", w.len()),
        ));
    }
    let (lo, hi) = finite_min_max(w, op, "the weight")?;
    if !w.is_empty() && lo == 0.0 && hi == 0.0 {
        return Err(Error::value(
            op,
            format!("the weight [{n}, {k}] is all zeros: a degenerate range, nothing to quantize"),
        ));
    }
    let scales: Vec<f32> = if per_channel {
        (0..n)
            .map(|j| {
                let row = &w[j * k..(j + 1) * k];
                let (l, h) = row
                    .iter()
                    .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
                symmetric_scale((-l).max(h))
            })
            .collect()
    } else {
        vec![symmetric_scale((-lo.min(0.0)).max(hi.max(0.0)))]
    };
    let mut q = vec![0i8; w.len()];
    for j in 0..n {
        let inv = 1.0f32 / scales[if per_channel { j } else { 0 }];
        for (d, &v) in q[j * k..(j + 1) * k].iter_mut().zip(&w[j * k..(j + 1) * k]) {
            *d = (v * inv).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
    }
    Ok((q, scales))
}

/// Quantizes activations to u8 as fbgemm does: `round_half_even(fma(x, 1/scale, zp))` clamped
/// to [0, 255].
pub fn quantize_u8(x: &[f32], qp: QParams, out: &mut [u8]) {
    let inv = 1.0f32 / qp.scale;
    let zp = qp.zero_point as f32;
    crate::backend::cpu::threads::simd(|| {
        for (d, &v) in out.iter_mut().zip(x) {
            *d = v.mul_add(inv, zp).round_ties_even().clamp(0.0, 255.0) as u8;
        }
    });
}

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
    let (lo, hi, finite) = dispatch_min_max(x);
    if !finite {
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

/// `(min, max, all finite)` in 16 independent lanes, so the loop vectorizes: `v − v` is 0
/// for finite values and NaN for NaN or ±∞, which the lane sums carry to the end.
#[inline(always)]
#[allow(clippy::eq_op, clippy::needless_range_loop)]
fn min_max_lanes(x: &[f32]) -> (f32, f32, bool) {
    const L: usize = 16;
    let (mut lo, mut hi, mut chk) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L], [0f32; L]);
    let mut chunks = x.chunks_exact(L);
    for c in &mut chunks {
        for i in 0..L {
            let v = c[i];
            lo[i] = if v < lo[i] { v } else { lo[i] };
            hi[i] = if v > hi[i] { v } else { hi[i] };
            chk[i] += v - v;
        }
    }
    for &v in chunks.remainder() {
        lo[0] = if v < lo[0] { v } else { lo[0] };
        hi[0] = if v > hi[0] { v } else { hi[0] };
        chk[0] += v - v;
    }
    let l = lo.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    let h = hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    (l, h, chk.iter().all(|c| *c == 0.0))
}

/// `round_half_even(fma(x, inv, zp))` clamped to [0, 255], elementwise.
#[inline(always)]
fn quantize_lanes(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) {
    for (d, &v) in out.iter_mut().zip(x) {
        *d = v.mul_add(inv, zp).round_ties_even().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(target_arch = "x86_64")]
mod simd_x86 {
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")]
    pub(super) unsafe fn min_max_avx512(x: &[f32]) -> (f32, f32, bool) {
        super::min_max_lanes(x)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn min_max_avx2(x: &[f32]) -> (f32, f32, bool) {
        super::min_max_lanes(x)
    }
    /// 16 at a time: fma, clamp to [0, 255], round half to even (`vcvtps2dq` under the
    /// default rounding mode), narrow to bytes; the same values as `quantize_lanes`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,fma,avx2")]
    pub(super) unsafe fn quantize_avx512(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) {
        use std::arch::x86_64::*;
        let (vinv, vzp) = (_mm512_set1_ps(inv), _mm512_set1_ps(zp));
        let (lo, hi) = (_mm512_set1_ps(0.0), _mm512_set1_ps(255.0));
        let n16 = x.len() / 16 * 16;
        let mut i = 0;
        while i < n16 {
            let v = _mm512_loadu_ps(x.as_ptr().add(i));
            let t = _mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(v, vinv, vzp), lo), hi);
            let b = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(t));
            _mm_storeu_si128(out.as_mut_ptr().add(i) as *mut __m128i, b);
            i += 16;
        }
        super::quantize_lanes(&x[n16..], inv, zp, &mut out[n16..])
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn quantize_avx2(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) {
        super::quantize_lanes(x, inv, zp, out)
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

fn dispatch_min_max(x: &[f32]) -> (f32, f32, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { simd_x86::min_max_avx512(x) };
        }
        if has_avx2() {
            // SAFETY: as above.
            return unsafe { simd_x86::min_max_avx2(x) };
        }
    }
    min_max_lanes(x)
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

/// Quantizes `w` (`[n, k]` row-major) to symmetric int8 with given scales (1, or `n` with
/// `per_channel`): `round_half_even(w / scale)` clamped to [−128, 127]. Errors on NaN/infinite
/// weights, a wrong number of scales and non-positive or non-finite scales.
pub fn quantize_weight_with_scales(
    w: &[f32],
    n: usize,
    k: usize,
    scales: &[f32],
    per_channel: bool,
    op: &str,
) -> Result<(Vec<i8>, Vec<f32>)> {
    if w.len() != n * k {
        return Err(Error::shape(
            op,
            format!("weight has {} values, expected {n}×{k}", w.len()),
        ));
    }
    let want = if per_channel { n } else { 1 };
    if scales.len() != want {
        return Err(Error::shape(
            op,
            format!("expected {want} weight scale(s), got {}", scales.len()),
        ));
    }
    if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(Error::value(
            op,
            format!("weight scales must be positive and finite, got {s}"),
        ));
    }
    finite_min_max(w, op, "the weight")?;
    let mut q = vec![0i8; w.len()];
    for j in 0..n {
        let s = scales[if per_channel { j } else { 0 }];
        for (d, &v) in q[j * k..(j + 1) * k].iter_mut().zip(&w[j * k..(j + 1) * k]) {
            *d = (v / s).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
    }
    Ok((q, scales.to_vec()))
}

/// Quantizes activations to u8 as fbgemm does: `round_half_even(fma(x, 1/scale, zp))` clamped
/// to [0, 255].
pub fn quantize_u8(x: &[f32], qp: QParams, out: &mut [u8]) {
    let inv = 1.0f32 / qp.scale;
    let zp = qp.zero_point as f32;
    let n = x.len().min(out.len());
    let (x, out) = (&x[..n], &mut out[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { simd_x86::quantize_avx512(x, inv, zp, out) };
        }
        if has_avx2() {
            // SAFETY: as above.
            return unsafe { simd_x86::quantize_avx2(x, inv, zp, out) };
        }
    }
    quantize_lanes(x, inv, zp, out)
}

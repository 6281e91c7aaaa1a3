//! Scalar element math, the reference semantics of each op's elementwise function (declared
//! with the op in `crate::ops`), written so loops over it vectorise: branch-free exp/tanh/erf
//! for f32, std and libm for f64.

use crate::tensor::Element;

/// Float element types kernels compute in (f32 and f64; f16/bf16 compute through f32).
pub trait Float: num_traits::Float + Element + Send + Sync + std::iter::Sum {
    fn exp_(self) -> Self;
    fn tanh_(self) -> Self;
    fn erf_(self) -> Self;
    fn c(v: f64) -> Self;
}

/// exp(x) for f32, ~1 ulp, branch-free (vectorises).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let xc = x.clamp(-87.5, 88.7);
    // Round to nearest with the 1.5 * 2^23 trick: the integer lands in the low mantissa bits
    // of `t`, so both `n` and the scale 2^(n-1) come from adds and shifts that vectorise on
    // any target (`f32::round` is a libm call without SSE4.1, and `as i32` is scalarised).
    const MAGIC: f32 = 12_582_912.0;
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // exp(r) on [-ln2/2, ln2/2], minimax degree 6.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_03
                        + r * (0.008_333_44 + r * (0.001_393_95 + r * 0.000_198_4))))));
    // 2^(n-1) from the exponent bits n + 126 (n in [-126, 128]), doubled afterwards so that
    // n = 128 stays finite; results below ~2e-38 flush to zero.
    let scale = f32::from_bits(t.to_bits().wrapping_add(126) << 23);
    let p = p * 2.0;
    let y = p * scale;
    let y = if x < -87.5 { 0.0 } else { y };
    let y = if x > 88.7 { f32::INFINITY } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// tanh(x) for f32, branch-free: an odd Taylor polynomial near 0 (|x| < 0.4, where
/// `1 - 2/(e^2x + 1)` would cancel), the exp form elsewhere.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let ax = x.abs().min(9.0);
    let e = exp_f32(2.0 * ax);
    let t = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    let z = x * x;
    let p = -929_569.0 / 638_512_875.0;
    let p = p * z + 21_844.0 / 6_081_075.0;
    let p = p * z - 1_382.0 / 155_925.0;
    let p = p * z + 62.0 / 2_835.0;
    let p = p * z - 17.0 / 315.0;
    let p = p * z + 2.0 / 15.0;
    let p = p * z - 1.0 / 3.0;
    let small = x + x * z * p;
    let y = if ax < 0.4 { small } else { t };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// erf(x) for f32, within 3 ulp, branch-free (vectorises; libm's `erff` does not and costs
/// ~20 ns an element). |x| < 1: `x * P(x^2)`; 1 <= |x| < 3.92: `1 - exp(-x^2) * Q(|x|)`, with
/// P and Q least-squares fits of `erf(x)/x` and `erfc(x) e^(x^2)` (Q in `|x| - 2.46`);
/// beyond 3.92 the f32 result is +-1.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = 7.971049e-05f32;
    let p = p.mul_add(z, -8.043374e-04);
    let p = p.mul_add(z, 5.1918332e-03);
    let p = p.mul_add(z, -0.02685551);
    let p = p.mul_add(z, 0.11283622);
    let p = p.mul_add(z, -0.3761263);
    let p = p.mul_add(z, std::f32::consts::FRAC_2_SQRT_PI);
    let small = x * p;
    let ac = a.min(3.92);
    let u = ac - 2.46;
    let q = 1.6215803e-06f32;
    let q = q.mul_add(u, -6.780931e-06);
    let q = q.mul_add(u, 1.701149e-05);
    let q = q.mul_add(u, -5.977361e-05);
    let q = q.mul_add(u, 2.2826146e-04);
    let q = q.mul_add(u, -7.901953e-04);
    let q = q.mul_add(u, 2.6192772e-03);
    let q = q.mul_add(u, -8.406943e-03);
    let q = q.mul_add(u, 0.02592222);
    let q = q.mul_add(u, -0.076381564);
    let q = q.mul_add(u, 0.21382068);
    let big = 1.0 - exp_f32(-(ac * ac)) * q;
    let big: f32 = if a >= 3.92 { 1.0 } else { big };
    let y = if a < 1.0 { small } else { big.copysign(x) };
    if x.is_nan() {
        x
    } else {
        y
    }
}

impl Float for f32 {
    #[inline(always)]
    fn exp_(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn tanh_(self) -> f32 {
        tanh_f32(self)
    }
    #[inline(always)]
    fn erf_(self) -> f32 {
        erf_f32(self)
    }
    #[inline(always)]
    fn c(v: f64) -> f32 {
        v as f32
    }
}

impl Float for f64 {
    #[inline(always)]
    fn exp_(self) -> f64 {
        self.exp()
    }
    #[inline(always)]
    fn tanh_(self) -> f64 {
        self.tanh()
    }
    #[inline(always)]
    fn erf_(self) -> f64 {
        libm::erf(self)
    }
    #[inline(always)]
    fn c(v: f64) -> f64 {
        v
    }
}

/// The `ord`-norm of values given as f64 (PyTorch's `vector_norm` semantics: `inf` is the
/// max of |x|, `-inf` the min, 0 counts non-zeros, otherwise `(sum |x|^ord)^(1/ord)`).
pub fn vector_norm(vals: impl Iterator<Item = f64>, ord: f64) -> f64 {
    if ord == f64::INFINITY {
        vals.fold(0.0, |m: f64, x| {
            if x.abs() > m || x.is_nan() {
                x.abs()
            } else {
                m
            }
        })
    } else if ord == f64::NEG_INFINITY {
        vals.fold(f64::INFINITY, |m: f64, x| {
            if x.abs() < m || x.is_nan() {
                x.abs()
            } else {
                m
            }
        })
    } else if ord == 0.0 {
        vals.filter(|x| *x != 0.0).count() as f64
    } else if ord == 1.0 {
        vals.map(f64::abs).sum()
    } else if ord == 2.0 {
        vals.map(|x| x * x).sum::<f64>().sqrt()
    } else {
        vals.map(|x| x.abs().powf(ord)).sum::<f64>().powf(1.0 / ord)
    }
}

/// `x^n` for an integer `n` by repeated squaring, in the same order as the `powi` runtime
/// routine (`__powisf2`/`__powidf2`) so results are unchanged, but inline: a loop whose
/// trip count depends only on `n` vectorises, where a call per element does not.
#[inline(always)]
pub fn powi<T: num_traits::Float>(x: T, n: i32) -> T {
    let recip = n < 0;
    let mut b = n.unsigned_abs();
    let mut a = x;
    let mut r = T::one();
    loop {
        if b & 1 != 0 {
            r = r * a;
        }
        b /= 2;
        if b == 0 {
            break;
        }
        a = a * a;
    }
    if recip {
        T::one() / r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn fast_exp_and_tanh_are_accurate() {
        let mut x = -90.0f32;
        while x < 90.0 {
            let e = exp_f32(x) as f64;
            let r = (x as f64).exp();
            if r > 1e-37 && r < 1e38 {
                assert!(((e - r) / r).abs() < 4e-7, "exp({x}) = {e} vs {r}");
            }
            let t = tanh_f32(x) as f64;
            let rt = (x as f64).tanh();
            assert!(
                (t - rt).abs() <= 2e-7 * rt.abs().max(1e-3),
                "tanh({x}) = {t} vs {rt}"
            );
            x += 0.01731;
        }
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(tanh_f32(1e-6) == 1e-6);
    }

    #[test]
    fn fast_erf_is_within_3_ulp() {
        // every 61st f32 bit pattern of both signs, from denormals to +-inf
        let mut worst = 0.0f64;
        let mut i = 0u32;
        while i <= 0x7f80_0000 {
            for x in [f32::from_bits(i), -f32::from_bits(i)] {
                let r = libm::erf(x as f64);
                let rf = r as f32;
                let ulp = (rf.abs().next_up() - rf.abs()) as f64;
                let err = (erf_f32(x) as f64 - r).abs() / ulp;
                assert!(err <= 3.0, "erf({x:e}) = {} vs {r}", erf_f32(x));
                worst = worst.max(err);
            }
            i += 61;
        }
        assert!(worst > 0.0);
        assert!(erf_f32(f32::NAN).is_nan());
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    }
}

//! The Gaussian process behind [`super::GpSampler`]: a Matérn-5/2 kernel with one length
//! scale per dimension (categorical dimensions use the Hamming distance), a noise ratio,
//! the signal variance profiled out of the marginal likelihood, and log expected improvement.

use super::tpe::norm_cdf;

/// A fitted GP over points in `[0, 1]^d` (categorical dimensions hold choice indices).
pub(crate) struct Gp {
    x: Vec<Vec<f64>>,
    cat: Vec<bool>,
    /// Length scales.
    pub ls: Vec<f64>,
    /// Noise variance relative to the signal variance.
    pub noise: f64,
    chol: Vec<f64>,
    alpha: Vec<f64>,
    /// Signal variance (profiled: yᵀR⁻¹y / n).
    pub sig2: f64,
    /// The log marginal likelihood (profiled, plus the length-scale prior).
    pub lml: f64,
}

fn matern52(x: &[f64], y: &[f64], ls: &[f64], cat: &[bool]) -> f64 {
    let mut r2 = 0.0;
    for i in 0..x.len() {
        let d = if cat[i] {
            if x[i] == y[i] {
                0.0
            } else {
                1.0
            }
        } else {
            x[i] - y[i]
        };
        r2 += (d / ls[i]) * (d / ls[i]);
    }
    let r = (5.0 * r2).sqrt();
    (1.0 + r + r * r / 3.0) * (-r).exp()
}

/// In-place lower Cholesky of an n×n row-major matrix; false when not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
        for k in j + 1..n {
            a[j * n + k] = 0.0;
        }
    }
    true
}

/// Solves L z = b (forward substitution).
fn solve_lower(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves Lᵀ z = b (back substitution).
fn solve_upper_t(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

impl Gp {
    /// Fits with fixed hyper-parameters; `None` when the matrix is not positive definite.
    pub fn fit(x: &[Vec<f64>], y: &[f64], cat: &[bool], ls: &[f64], noise: f64) -> Option<Gp> {
        let n = x.len();
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = matern52(&x[i], &x[j], ls, cat);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += noise + 1e-9;
        }
        if !cholesky(&mut k, n) {
            return None;
        }
        let mut alpha = y.to_vec();
        solve_lower(&k, n, &mut alpha);
        let quad: f64 = alpha.iter().map(|a| a * a).sum();
        solve_upper_t(&k, n, &mut alpha);
        let sig2 = (quad / n as f64).max(1e-12);
        let logdet: f64 = (0..n).map(|i| k[i * n + i].ln()).sum();
        // Log-normal prior on each length scale (median 0.5, wide), a weak one on the noise.
        let prior: f64 = ls
            .iter()
            .map(|l| -0.5 * ((l / 0.5).ln() / 1.5).powi(2))
            .sum::<f64>()
            - 0.5 * ((noise / 1e-4).ln() / 4.0).powi(2);
        let lml = -0.5 * n as f64 * sig2.ln() - logdet + prior;
        Some(Gp {
            x: x.to_vec(),
            cat: cat.to_vec(),
            ls: ls.to_vec(),
            noise,
            chol: k,
            alpha,
            sig2,
            lml,
        })
    }

    /// Fits the hyper-parameters by maximising the marginal likelihood: a grid over a shared
    /// length scale and the noise ratio, then coordinate moves of each length scale.
    pub fn fit_ml(x: &[Vec<f64>], y: &[f64], cat: &[bool]) -> Option<Gp> {
        let d = cat.len();
        let mut best: Option<Gp> = None;
        let consider = |g: Option<Gp>, best: &mut Option<Gp>| {
            if let Some(g) = g {
                if best.as_ref().is_none_or(|b| g.lml > b.lml) {
                    *best = Some(g);
                }
            }
        };
        for &l in &[0.05, 0.1, 0.2, 0.35, 0.6, 1.0, 2.0, 4.0] {
            for &noise in &[1e-6, 1e-4, 1e-2, 1e-1] {
                consider(Gp::fit(x, y, cat, &vec![l; d], noise), &mut best);
            }
        }
        best.as_ref()?;
        for sweep in 0..3 {
            let f = if sweep == 0 { 2.0 } else { 1.4 };
            let mut improved = false;
            for i in 0..=d {
                for &m in &[f, 1.0 / f] {
                    let b = best.as_ref().unwrap();
                    let (mut ls, mut noise) = (b.ls.clone(), b.noise);
                    if i < d {
                        ls[i] = (ls[i] * m).clamp(0.01, 20.0);
                    } else {
                        noise = (noise * m * m).clamp(1e-8, 1.0);
                    }
                    let before = b.lml;
                    consider(Gp::fit(x, y, cat, &ls, noise), &mut best);
                    improved |= best.as_ref().unwrap().lml > before;
                }
            }
            if !improved && sweep > 0 {
                break;
            }
        }
        best
    }

    /// Posterior mean and standard deviation of the latent function at `p`.
    pub fn predict(&self, p: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let mut k: Vec<f64> = self
            .x
            .iter()
            .map(|xi| matern52(xi, p, &self.ls, &self.cat))
            .collect();
        let mean: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        solve_lower(&self.chol, n, &mut k);
        let vv: f64 = k.iter().map(|a| a * a).sum();
        let var = self.sig2 * (1.0 - vv).max(1e-10);
        (mean, var.sqrt())
    }
}

/// log(φ(z) + zΦ(z)), the log of the expected improvement of a unit normal, stable for
/// very negative z.
pub(crate) fn log_h(z: f64) -> f64 {
    let log_phi = -0.5 * z * z - 0.5 * (2.0 * std::f64::consts::PI).ln();
    if z > -6.0 {
        let h = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() + z * norm_cdf(z);
        h.max(1e-300).ln()
    } else {
        let z2 = z * z;
        log_phi - z2.ln() + (1.0 - 3.0 / z2 + 15.0 / (z2 * z2)).ln()
    }
}

/// log EI of minimisation below `best` at a point with posterior (`mean`, `sd`).
pub(crate) fn log_ei(mean: f64, sd: f64, best: f64) -> f64 {
    let z = (best - mean) / sd;
    sd.ln() + log_h(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_h_is_continuous_and_matches_direct_formula() {
        let direct = |z: f64| {
            ((-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() + z * norm_cdf(z)).ln()
        };
        for &z in &[-5.9, -3.0, 0.0, 1.5] {
            assert!((log_h(z) - direct(z)).abs() < 1e-9);
        }
        assert!((log_h(-6.0001) - log_h(-5.9999)).abs() < 1e-2);
    }

    #[test]
    fn gp_interpolates_observations() {
        let x: Vec<Vec<f64>> = (0..8).map(|i| vec![i as f64 / 7.0]).collect();
        let y: Vec<f64> = x.iter().map(|p| (6.0 * p[0]).sin()).collect();
        let g = Gp::fit_ml(&x, &y, &[false]).unwrap();
        for (p, t) in x.iter().zip(&y) {
            let (m, s) = g.predict(p);
            assert!((m - t).abs() < 0.05, "{m} vs {t}");
            assert!(s < 0.2);
        }
        let (_, s_far) = g.predict(&[0.5 / 7.0]);
        let (_, s_at) = g.predict(&x[0]);
        assert!(s_far > s_at);
    }
}

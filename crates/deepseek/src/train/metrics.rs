//! `metrics.jsonl` (one JSON object per optimizer step) and the `loss.svg` loss curve.

use crate::nn::write_atomic;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Optimizer steps done (1 for the first step).
    pub step: u64,
    /// The epoch the step's data came from (0-based).
    pub epoch: u64,
    /// The step's training loss (mean over its micro-batches); `null` for a skipped step.
    pub loss: Option<f64>,
    /// Validation loss when the step ended with a validation, else `null`.
    pub val_loss: Option<f64>,
    /// The learning rate the step used.
    pub lr: f64,
    /// Seconds since the run started (over resumes).
    pub time: f64,
    /// Samples or tokens per second of training in this process.
    pub throughput: f64,
    /// `"samples/s"` or `"tokens/s"`.
    pub throughput_unit: String,
    /// The joint 2-norm of the parameters' gradients before clipping; absent on skipped
    /// steps, final validations and in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// True for a step skipped because of a non-finite loss or gradient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// True for the validation at the end of training (not a scheduled one).
    #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub is_final: bool,
}

/// Appends lines to `<out>/metrics.jsonl`.
pub(crate) struct MetricsWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsWriter {
    /// Opens the file. A fresh run truncates it; a resumed run keeps the lines of steps up
    /// to `keep_upto` (the checkpoint's step), so the file reads like an uninterrupted run.
    pub fn open(path: &Path, keep_upto: Option<u64>) -> Result<MetricsWriter> {
        let p = path.display().to_string();
        let kept = match keep_upto {
            None => String::new(),
            Some(step) => match std::fs::read_to_string(path) {
                Ok(s) => s
                    .lines()
                    .filter(|l| match serde_json::from_str::<MetricsLine>(l) {
                        Ok(m) => m.step <= step && !m.is_final,
                        Err(_) => false,
                    })
                    .map(|l| format!("{l}\n"))
                    .collect(),
                Err(_) => String::new(),
            },
        };
        write_atomic(path, kept.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(&p, format!("cannot open for appending: {e}")))?;
        Ok(MetricsWriter {
            path: path.to_path_buf(),
            file,
        })
    }
    pub fn write(&mut self, m: &MetricsLine) -> Result<()> {
        let mut s = serde_json::to_string(m)
            .map_err(|e| Error::Msg(format!("metrics: cannot serialise: {e}")))?;
        s.push('\n');
        self.file
            .write_all(s.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| {
                Error::io(
                    self.path.display().to_string(),
                    format!("cannot write: {e}"),
                )
            })
    }
}

/// Reads a `metrics.jsonl` file.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let p = path.display().to_string();
    let s =
        std::fs::read_to_string(path).map_err(|e| Error::io(&p, format!("cannot read: {e}")))?;
    s.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::io(&p, format!("line {}: not a metrics line: {e}", i + 1)))
        })
        .collect()
}

/// Draws the loss curves as an SVG file (written atomically): the training loss of every
/// step (faint), its moving average, and the validation losses.
pub fn plot_losses(path: &Path, train: &[Option<f64>], val: &[(u64, f64)]) -> Result<()> {
    plot_losses_with_final(path, train, val, None)
}

/// Bias-corrected exponential moving average (Adam's correction): the i-th value is the
/// beta-weighted mean of the points so far, so the curve follows the raw loss from the
/// first step instead of starting from (and lagging behind) the first value.
pub fn smoothed(pts: &[(f64, f64)], beta: f64) -> Vec<(f64, f64)> {
    let mut m = 0.0;
    let mut w = 1.0;
    pts.iter()
        .map(|&(x, y)| {
            m = beta * m + (1.0 - beta) * y;
            w *= beta;
            (x, m / (1.0 - w))
        })
        .collect()
}

/// [`plot_losses`] plus the final validation over the whole validation set (`(step,
/// loss)`), drawn as a marker.
pub fn plot_losses_with_final(
    path: &Path,
    train: &[Option<f64>],
    val: &[(u64, f64)],
    final_val: Option<(u64, f64)>,
) -> Result<()> {
    use plotters::prelude::*;
    let final_pt = final_val
        .filter(|(_, v)| v.is_finite())
        .map(|(s, v)| (s as f64, v));
    let p = path.display().to_string();
    let pts: Vec<(f64, f64)> = train
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.filter(|v| v.is_finite()).map(|v| ((i + 1) as f64, v)))
        .collect();
    let vpts: Vec<(f64, f64)> = val
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|&(s, v)| (s as f64, v))
        .collect();
    // Exponential moving average with a window that suits the run's length.
    let beta = if pts.len() > 200 { 0.98 } else { 0.9 };
    let ema = smoothed(&pts, beta);
    let xmax = pts
        .iter()
        .chain(&vpts)
        .chain(final_pt.iter())
        .map(|p| p.0)
        .fold(1.0f64, f64::max);
    let ys: Vec<f64> = pts
        .iter()
        .chain(&vpts)
        .chain(final_pt.iter())
        .map(|p| p.1)
        .collect();
    let (mut ylo, mut yhi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    if !ylo.is_finite() {
        (ylo, yhi) = (0.0, 1.0);
    }
    // Clip the first steps' very high losses so the interesting part is visible.
    let tail = ema.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if tail.is_finite() && yhi > ylo + 3.0 * (tail - ylo).max(1e-9) {
        yhi = ylo + 3.0 * (tail - ylo).max(1e-9);
    }
    let pad = ((yhi - ylo) * 0.05).max(1e-3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 540)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::io(&p, format!("cannot draw the plot: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("loss", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax * 1.02, (ylo - pad)..(yhi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("loss")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .draw()
            .map_err(|e| err(&e))?;
        let faint = RGBColor(150, 170, 220);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), &faint))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(ema.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("train (moving average)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        if !vpts.is_empty() {
            chart
                .draw_series(LineSeries::new(vpts.iter().copied(), RED.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label("validation")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
        if let Some(fp) = final_pt {
            chart
                .draw_series(std::iter::once(Circle::new(fp, 5, RED.filled())))
                .map_err(|e| err(&e))?
                .label(format!("final validation (whole set): {:.4}", fp.1))
                .legend(|(x, y)| Circle::new((x + 10, y), 4, RED.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    write_atomic(path, svg.as_bytes())
}

#[cfg(test)]
mod plot_tests {
    use super::*;

    #[test]
    fn smoothed_curve_follows_the_loss_from_the_start() {
        // A loss that starts at 4 and drops to 1: the old EMA (seeded with the first
        // value) was still at 2.1 after 50 steps; the bias-corrected one is at ~1.
        let mut pts = vec![(1.0, 4.0)];
        pts.extend((2..=200).map(|i| (i as f64, 1.0)));
        let s = smoothed(&pts, 0.98);
        assert_eq!(s[0].1, 4.0);
        assert!(s[50].1 < 1.1, "{}", s[50].1);
        let flat = smoothed(&[(1.0, 2.5), (2.0, 2.5), (3.0, 2.5)], 0.9);
        assert!(flat.iter().all(|p| (p.1 - 2.5).abs() < 1e-12));
    }

    #[test]
    fn plot_has_integer_steps_and_the_final_validation() {
        let dir = std::env::temp_dir().join(format!("deepseek-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("loss.svg");
        let train: Vec<Option<f64>> = (0..1000).map(|i| Some(3.0 / (1.0 + i as f64))).collect();
        plot_losses_with_final(&p, &train, &[(500, 1.0)], Some((1000, 0.5))).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(
            svg.contains("final validation (whole set): 0.5000"),
            "no final point"
        );
        // Label text sits between the tags, on its own line or not (plotters versions differ).
        let labels: Vec<&str> = svg
            .split('>')
            .filter_map(|s| s.split('<').next())
            .map(str::trim)
            .collect();
        assert!(labels.contains(&"500"), "no integer step label");
        assert!(!svg.contains("500.0"), "step labels with decimals");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Reports of a study: a text table of the trials and a self-contained HTML page with the
//! best trial and an SVG plot of the search (objective per trial, best so far).

use super::study::Study;
use super::trial::{FrozenTrial, TrialState};
use crate::Result;
use std::fmt::Write as _;
use std::path::Path;

fn state_name(s: TrialState) -> &'static str {
    match s {
        TrialState::Running => "running",
        TrialState::Complete => "complete",
        TrialState::Pruned => "pruned",
        TrialState::Fail => "failed",
    }
}

fn params_text(t: &FrozenTrial) -> String {
    t.params_json()
        .iter()
        .map(|(k, v)| match v.as_f64() {
            Some(x) if !v.is_i64() && !v.is_u64() => format!("{k}={x:.4e}"),
            _ => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A text table of all trials: number, state, value, seconds, parameters.
pub fn table(study: &Study) -> String {
    let mut s = format!(
        "{:>5}  {:<8}  {:>12}  {:>8}  params\n",
        "trial", "state", "value", "seconds"
    );
    let best = study.best_trial().map(|t| t.number);
    for t in study.trials() {
        let v = t.value.map_or("-".into(), |v| format!("{v:.6}"));
        let _ = writeln!(
            s,
            "{:>5}  {:<8}  {:>12}  {:>8.1}  {}{}",
            t.number,
            state_name(t.state),
            v,
            t.duration.unwrap_or(0.0),
            params_text(&t),
            if Some(t.number) == best {
                "  <- best"
            } else {
                ""
            }
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG plot: complete trials as dots, pruned ones (at their last reported value) as
/// grey crosses, failed ones as red ticks on the axis, and the best-so-far line.
pub fn svg(study: &Study) -> String {
    let trials = study.trials();
    let dir = study.direction();
    let (w, h, ml, mr, mt, mb) = (720.0, 400.0, 70.0, 20.0, 30.0, 45.0);
    let pts: Vec<(u64, f64, TrialState)> = trials
        .iter()
        .filter_map(|t| match t.state {
            TrialState::Complete => t.value.map(|v| (t.number, v, t.state)),
            TrialState::Pruned => t
                .intermediate_values
                .values()
                .next_back()
                .map(|&v| (t.number, v, t.state)),
            _ => None,
        })
        .filter(|p| p.1.is_finite())
        .collect();
    let logy = !pts.is_empty()
        && pts.iter().all(|p| p.1 > 0.0)
        && pts.iter().map(|p| p.1).fold(0.0, f64::max)
            / pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min)
            > 100.0;
    let f = |v: f64| if logy { v.log10() } else { v };
    let (mut lo, mut hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
        (a.0.min(f(p.1)), a.1.max(f(p.1)))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    let n = trials.len().max(2) as f64;
    let sx = |i: f64| ml + (w - ml - mr) * i / (n - 1.0);
    let sy = |v: f64| mt + (h - mt - mb) * (1.0 - (f(v) - lo) / (hi - lo));
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r##"<rect width="{w}" height="{h}" fill="white"/><line x1="{ml}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/><line x1="{ml}" y1="{mt}" x2="{ml}" y2="{y0}" stroke="#333"/>"##,
        y0 = h - mb,
        x1 = w - mr
    );
    for k in 0..=4 {
        let yv = lo + (hi - lo) * k as f64 / 4.0;
        let y = mt + (h - mt - mb) * (1.0 - k as f64 / 4.0);
        let label = if logy {
            format!("{:.3e}", 10f64.powf(yv))
        } else {
            format!("{yv:.4}")
        };
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{label}</text><line x1="{ml}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/>"##,
            ml - 4.0,
            y + 4.0,
            w - mr
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">trial</text><text x="{}" y="18" text-anchor="middle">objective ({}{}) per trial, best so far</text>"#,
        (ml + w - mr) / 2.0,
        h - 10.0,
        (ml + w - mr) / 2.0,
        if dir == super::Direction::Minimize {
            "minimize"
        } else {
            "maximize"
        },
        if logy { ", log scale" } else { "" }
    );
    // Best so far (a step line over complete trials).
    let mut best: Option<f64> = None;
    let mut path = String::new();
    for t in &trials {
        if let (TrialState::Complete, Some(v)) = (t.state, t.value) {
            if best.is_none_or(|b| dir.better(v, b)) {
                let (x, y) = (sx(t.number as f64), sy(v));
                if let Some(b) = best {
                    let _ = write!(path, " L{x:.1},{:.1} L{x:.1},{y:.1}", sy(b));
                } else {
                    let _ = write!(path, "M{x:.1},{y:.1}");
                }
                best = Some(v);
            }
        }
    }
    if let Some(b) = best {
        let _ = write!(
            s,
            r##"<path d="{path} L{:.1},{:.1}" fill="none" stroke="#d62728" stroke-width="2"/>"##,
            sx(n - 1.0),
            sy(b)
        );
    }
    for (i, v, st) in &pts {
        let (x, y) = (sx(*i as f64), sy(*v));
        if *st == TrialState::Complete {
            let _ = write!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="#1f77b4"><title>trial {i}: {v}</title></circle>"##
            );
        } else {
            let _ = write!(
                s,
                r##"<path d="M{:.1},{:.1} l7,7 m0,-7 l-7,7" stroke="#999"><title>trial {i} (pruned): {v}</title></path>"##,
                x - 3.5,
                y - 3.5
            );
        }
    }
    for t in trials.iter().filter(|t| t.state == TrialState::Fail) {
        let x = sx(t.number as f64);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#d00" stroke-width="2"><title>trial {} failed</title></line>"##,
            h - mb,
            h - mb + 8.0,
            t.number
        );
    }
    s.push_str("</svg>");
    s
}

/// Writes a self-contained HTML report (no network): the best trial, the plot and the
/// table of all trials.
pub fn write_html(study: &Study, path: &Path) -> Result<()> {
    let best = match study.best_trial() {
        Some(t) => format!(
            "<p>Best trial <b>{}</b>: value <b>{}</b></p><pre>{}</pre>",
            t.number,
            t.value.unwrap_or(f64::NAN),
            esc(&serde_json::to_string_pretty(&t.params_json()).unwrap_or_default())
        ),
        None => "<p>No complete trial yet.</p>".into(),
    };
    let counts = |s: TrialState| study.trials().iter().filter(|t| t.state == s).count();
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>AutoHyper study</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f6f6f6;padding:.6em}}</style>\
         </head><body><h1>AutoHyper study</h1><p>sampler {}, {} trials: {} complete, {} pruned, {} failed</p>\
         {best}{}<h2>Trials</h2><pre>{}</pre></body></html>\n",
        study.sampler_name(),
        study.trials().len(),
        counts(TrialState::Complete),
        counts(TrialState::Pruned),
        counts(TrialState::Fail),
        svg(study),
        esc(&table(study))
    );
    crate::nn::write_atomic(path, html.as_bytes())
}

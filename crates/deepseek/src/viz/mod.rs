//! DeepSeek-Visualizer: self-contained HTML pages (no network access needed) of a model's
//! traced graph and of a training run.
//!
//! The page is one file: a small error hook, the vendored layout library
//! [`@dagrejs/dagre`](https://github.com/dagrejs/dagre) 1.1.4 (MIT, `viz/DAGRE-LICENSE`),
//! the data as JSON, and the page script (`viz/page.js`) that draws it with SVG and canvas.
//! Three kinds of data are drawn:
//!
//! - `"kind": "model"`: a traced graph, written by the Python tracer (`deepseek.viz`): ops with
//!   their inputs' and outputs' shapes and dtypes, modules as collapsible groups, gradient
//!   norms with vanishing/exploding ones highlighted, attention heat maps per head and
//!   activation histograms. The format is described in `python/deepseek/viz.py`.
//! - `"kind": "run"`: a training run's curves (loss, validation loss, learning rate, gradient
//!   norm) read from the `metrics.jsonl` that [`crate::train::Trainer`] writes; built by
//!   [`run_data`], drawn by `deepseek viz RUN_DIR`.
//! - `"kind": "attention"`: only the attention heat maps (`"attention"`, as in a model page),
//!   written by `deepseek.viz.attention` from `deepseek.nn.capture_attention`.
//!
//! Errors found by the page itself (a script error, a `console.error`) are listed in the
//! page's `#viz-errors` element and counted in `body[data-errors]`; a page that rendered sets
//! `body[data-rendered="1"]`, which the headless-Chromium test (`scripts/test_viz.sh`) reads.
//!
//! ```
//! let data = serde_json::json!({"kind": "run", "title": "demo", "steps": [1, 2],
//!     "loss": [2.0, 1.5], "lr": [0.1, 0.1], "grad_norm": [1.0, 0.8], "val": [],
//!     "final_val": null});
//! let html = deepseek::viz::render_page("demo", &data)?;
//! assert!(html.starts_with("<!DOCTYPE html>") && html.contains("dagre"));
//! # Ok::<(), deepseek::Error>(())
//! ```

use crate::train::read_metrics;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;

const DAGRE_JS: &str = include_str!("dagre.min.js");
const PAGE_JS: &str = include_str!("page.js");
const PAGE_CSS: &str = include_str!("page.css");

/// Installed before any other script: records script errors, unhandled rejections and
/// `console.error` calls in `#viz-errors` and `body[data-errors]`.
const ERROR_HOOK: &str = r#"(function(){
  var n = 0;
  function report(msg){
    n += 1;
    var add = function(){
      document.body.setAttribute('data-errors', String(n));
      var box = document.getElementById('viz-errors');
      if (box) { var li = document.createElement('li'); li.textContent = msg; box.appendChild(li); }
    };
    if (document.body) add(); else document.addEventListener('DOMContentLoaded', add);
  }
  window.__vizReport = report;
  window.addEventListener('error', function(e){ report('error: ' + e.message); });
  window.addEventListener('unhandledrejection', function(e){ report('unhandled rejection: ' + e.reason); });
  var ce = console.error;
  console.error = function(){
    report('console.error: ' + Array.prototype.slice.call(arguments).join(' '));
    return ce.apply(console, arguments);
  };
})();"#;

/// The kinds of data a page can draw.
const KINDS: [&str; 3] = ["model", "run", "attention"];

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Builds the page for `data` (an object whose `"kind"` is `"model"`, `"run"` or
/// `"attention"`) as one
/// self-contained HTML string titled `title`.
///
/// The JSON is embedded in a `<script type="application/json">` element with every `<`
/// written as `\u003c`, so no value can end the element early.
pub fn render_page(title: &str, data: &Value) -> Result<String> {
    let kind = data.get("kind").and_then(Value::as_str).unwrap_or("");
    if !KINDS.contains(&kind) {
        return Err(Error::value(
            "viz::render_page",
            format!("data must be a JSON object with \"kind\" one of {KINDS:?}, got {kind:?}"),
        ));
    }
    let json = serde_json::to_string(data)
        .map_err(|e| Error::Msg(format!("viz: cannot serialise the page data: {e}")))?
        .replace('<', "\\u003c");
    let title = escape_html(title);
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<script>{ERROR_HOOK}</script>\n<style>{PAGE_CSS}</style>\n\
         <!-- @dagrejs/dagre 1.1.4, MIT License, Copyright (c) 2012-2014 Chris Pettitt -->\n\
         <script>{DAGRE_JS}</script>\n</head>\n<body data-kind=\"{kind}\">\n\
         <header><h1>{title}</h1><div id=\"summary\"></div></header>\n\
         <ul id=\"viz-errors\"></ul>\n<main id=\"viz\"></main>\n\
         <script type=\"application/json\" id=\"viz-data\">{json}</script>\n\
         <script>{PAGE_JS}</script>\n</body>\n</html>\n"
    ))
}

/// Writes [`render_page`]'s page to `path` (atomically). A directory that does not exist or
/// cannot be written is an [`Error::Io`] naming the path.
pub fn write_page(path: &Path, title: &str, data: &Value) -> Result<()> {
    let html = render_page(title, data)?;
    let p = path.display().to_string();
    if path.is_dir() {
        return Err(Error::io(
            &p,
            "is a directory; give a file name for the page",
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::io(
                &p,
                format!(
                    "cannot write the page: directory {} does not exist",
                    dir.display()
                ),
            ));
        }
    }
    crate::nn::write_atomic(path, html.as_bytes())
}

/// The data of a training run's page, read from `<run_dir>/metrics.jsonl` (written by the
/// Trainer): per step the training loss (`null` for skipped steps), learning rate and
/// gradient norm (before clipping; `null` when not recorded), the scheduled validations as
/// `[step, loss]` pairs, and the final validation.
///
/// Errors name the directory: it does not exist, has no `metrics.jsonl`, or the file has no
/// steps yet.
pub fn run_data(run_dir: &Path) -> Result<Value> {
    let d = run_dir.display().to_string();
    if !run_dir.is_dir() {
        return Err(Error::io(&d, "no such run directory"));
    }
    let mpath = run_dir.join("metrics.jsonl");
    if !mpath.is_file() {
        return Err(Error::io(
            &d,
            "has no metrics.jsonl: not a `deepseek train` run directory (or the run wrote no step yet)",
        ));
    }
    let lines = read_metrics(&mpath)?;
    let steps: Vec<_> = lines.iter().filter(|l| !l.is_final).collect();
    if steps.is_empty() {
        return Err(Error::io(
            mpath.display().to_string(),
            "has no metrics (no training step recorded yet)",
        ));
    }
    let val: Vec<Value> = steps
        .iter()
        .filter_map(|l| l.val_loss.map(|v| json!([l.step, v])))
        .collect();
    let final_val = lines
        .iter()
        .rev()
        .find(|l| l.is_final)
        .and_then(|l| l.val_loss.map(|v| json!([l.step, v])));
    let title = run_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| d.clone());
    Ok(json!({
        "kind": "run",
        "title": title,
        "dir": d,
        "steps": steps.iter().map(|l| l.step).collect::<Vec<_>>(),
        "loss": steps.iter().map(|l| l.loss.filter(|v| v.is_finite())).collect::<Vec<_>>(),
        "lr": steps.iter().map(|l| l.lr).collect::<Vec<_>>(),
        "grad_norm": steps.iter().map(|l| l.grad_norm.filter(|v| v.is_finite())).collect::<Vec<_>>(),
        "time": steps.iter().map(|l| l.time).collect::<Vec<_>>(),
        "throughput_unit": steps.last().map(|l| l.throughput_unit.clone()),
        "val": val,
        "final_val": final_val,
    }))
}

/// Writes the page of the training run in `run_dir` (see [`run_data`]) to `out`.
pub fn write_run_page(run_dir: &Path, out: &Path) -> Result<()> {
    let data = run_data(run_dir)?;
    let title = format!(
        "Training run {}",
        data["title"].as_str().unwrap_or_default()
    );
    write_page(out, &title, &data)
}

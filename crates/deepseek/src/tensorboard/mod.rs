//! TensorBoard event files: [`SummaryWriter`], after PyTorch's
//! `torch.utils.tensorboard.SummaryWriter`.
//!
//! Each writer owns one `events.out.tfevents.<time>.<host>.<pid>.<n>` file in its log
//! directory: TFRecord framing (length, masked CRC-32C of the length, the record, masked
//! CRC-32C of the record) around `tensorboard.Event` protobufs (declared in [`proto`]).
//! TensorBoard (and its `EventAccumulator`) reads them as it reads PyTorch's.
//!
//! ```no_run
//! use deepseek::tensorboard::{HParam, SummaryWriter};
//! let mut w = SummaryWriter::new("runs/exp1")?;
//! for step in 0..100 {
//!     w.add_scalar("train/loss", 1.0 / (step + 1) as f64, step)?;
//! }
//! w.add_histogram("weights", &[0.1, -0.2, 0.3], 100, Default::default())?;
//! w.add_text("notes", "first try", 0)?;
//! w.add_hparams(&[("lr".into(), HParam::Float(3e-3))], &[("hparam/loss".into(), 0.5)], None)?;
//! w.close()?;
//! # Ok::<(), deepseek::Error>(())
//! ```

pub mod proto;

use crate::{Error, Result};
use prost::Message;
use proto::{Event, HistogramProto, SummaryValue, Value, What};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC-32C.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = CASTAGNOLI.checksum(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Appends one TFRecord (length, masked CRC of the length, data, masked CRC of the data).
pub fn write_record(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc32c(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let n = buf.iter().position(|&b| b == 0).unwrap_or(0);
    if ok && n > 0 {
        String::from_utf8_lossy(&buf[..n]).into_owned()
    } else {
        "localhost".into()
    }
}

static FILE_UID: AtomicU64 = AtomicU64::new(0);

/// How [`SummaryWriter::add_histogram`] buckets its values.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Bins {
    /// TensorFlow's default buckets (PyTorch's `bins='tensorflow'`): edges ±1e-12·1.1^k up
    /// to 1e20 and 0; empty buckets at both ends are dropped.
    #[default]
    Tensorflow,
    /// This many equal-width buckets between the smallest and largest value.
    Count(usize),
    /// These bucket edges (increasing, at least two); values outside go to the end buckets.
    Edges(Vec<f64>),
}

/// A hyper-parameter value for [`SummaryWriter::add_hparams`].
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    /// A number.
    Float(f64),
    /// A string.
    Str(String),
    /// A flag.
    Bool(bool),
}

/// Writes TensorBoard event files into a log directory (PyTorch's `SummaryWriter`).
///
/// Values are buffered and flushed every `flush_secs` seconds (120 by default, as in
/// PyTorch), by [`flush`](Self::flush) and by [`close`](Self::close) (also on drop).
pub struct SummaryWriter {
    log_dir: PathBuf,
    path: PathBuf,
    out: Option<BufWriter<File>>,
    flush_every: Duration,
    last_flush: Instant,
    /// Writers of `add_scalars`' sub-runs, by sub-directory.
    children: Vec<(String, SummaryWriter)>,
}

impl std::fmt::Debug for SummaryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummaryWriter")
            .field("log_dir", &self.log_dir)
            .field("file", &self.path)
            .finish()
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

fn check_tag(op: &str, tag: &str) -> Result<()> {
    if tag.is_empty() {
        return Err(Error::value(op, "the tag is empty"));
    }
    Ok(())
}

fn check_step(op: &str, step: i64) -> Result<i64> {
    if step < 0 {
        return Err(Error::value(
            op,
            format!("global_step must be >= 0, got {step}"),
        ));
    }
    Ok(step)
}

impl SummaryWriter {
    /// A writer over `log_dir` (created when missing), flushing every 120 s.
    pub fn new(log_dir: impl AsRef<Path>) -> Result<SummaryWriter> {
        Self::with_options(log_dir, 120.0, "")
    }

    /// A writer over `log_dir` that flushes at least every `flush_secs` seconds, with
    /// `filename_suffix` appended to the event file's name.
    pub fn with_options(
        log_dir: impl AsRef<Path>,
        flush_secs: f64,
        filename_suffix: &str,
    ) -> Result<SummaryWriter> {
        let log_dir = log_dir.as_ref().to_path_buf();
        if !(flush_secs.is_finite() && flush_secs >= 0.0) {
            return Err(Error::value(
                "SummaryWriter",
                format!("flush_secs must be a finite number >= 0, got {flush_secs}"),
            ));
        }
        if log_dir.exists() && !log_dir.is_dir() {
            return Err(io_err(
                &log_dir,
                "is a file; the log directory must be a directory",
            ));
        }
        std::fs::create_dir_all(&log_dir).map_err(|e| io_err(&log_dir, e))?;
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{}{}",
            now_secs() as u64,
            hostname(),
            std::process::id(),
            FILE_UID.fetch_add(1, Ordering::Relaxed),
            filename_suffix
        );
        let path = log_dir.join(name);
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut w = SummaryWriter {
            log_dir,
            path,
            out: Some(BufWriter::new(file)),
            flush_every: Duration::from_secs_f64(flush_secs),
            last_flush: Instant::now(),
            children: Vec::new(),
        };
        w.write_event(Event {
            wall_time: now_secs(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The log directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The event file being written.
    pub fn file_path(&self) -> &Path {
        &self.path
    }

    fn write_event(&mut self, e: Event) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(Error::value(
                "SummaryWriter",
                format!("the writer of {} is closed", self.log_dir.display()),
            ));
        };
        write_record(out, &e.encode_to_vec()).map_err(|err| io_err(&self.path, err))?;
        if self.last_flush.elapsed() >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    fn write_values(
        &mut self,
        step: i64,
        wall_time: Option<f64>,
        value: Vec<SummaryValue>,
    ) -> Result<()> {
        self.write_event(Event {
            wall_time: wall_time.unwrap_or_else(now_secs),
            step,
            what: Some(What::Summary(proto::Summary { value })),
        })
    }

    /// Logs a scalar (`tag` like `"train/loss"`) at `global_step`.
    pub fn add_scalar(&mut self, tag: &str, value: f64, global_step: i64) -> Result<()> {
        self.add_scalar_at(tag, value, global_step, None)
    }

    /// [`add_scalar`](Self::add_scalar) with an explicit wall time (seconds since the epoch).
    pub fn add_scalar_at(
        &mut self,
        tag: &str,
        value: f64,
        global_step: i64,
        wall_time: Option<f64>,
    ) -> Result<()> {
        check_tag("add_scalar", tag)?;
        let step = check_step("add_scalar", global_step)?;
        self.write_values(
            step,
            wall_time,
            vec![SummaryValue {
                tag: tag.into(),
                metadata: None,
                value: Some(Value::SimpleValue(value as f32)),
            }],
        )
    }

    /// Logs several scalars on one chart: like PyTorch, each `(name, value)` goes to the
    /// sub-run `<log_dir>/<main_tag>_<name>` under the tag `main_tag`.
    pub fn add_scalars(
        &mut self,
        main_tag: &str,
        values: &[(String, f64)],
        global_step: i64,
    ) -> Result<()> {
        check_tag("add_scalars", main_tag)?;
        check_step("add_scalars", global_step)?;
        let t = now_secs();
        for (name, v) in values {
            check_tag("add_scalars", name)?;
            let sub = format!("{main_tag}_{name}").replace(['/', '\\'], "_");
            let i = match self.children.iter().position(|c| c.0 == sub) {
                Some(i) => i,
                None => {
                    let w = SummaryWriter::with_options(
                        self.log_dir.join(&sub),
                        self.flush_every.as_secs_f64(),
                        "",
                    )?;
                    self.children.push((sub, w));
                    self.children.len() - 1
                }
            };
            self.children[i]
                .1
                .add_scalar_at(main_tag, *v, global_step, Some(t))?;
        }
        Ok(())
    }

    /// Logs a histogram of `values` (finite numbers, at least one).
    pub fn add_histogram(
        &mut self,
        tag: &str,
        values: &[f64],
        global_step: i64,
        bins: Bins,
    ) -> Result<()> {
        check_tag("add_histogram", tag)?;
        let step = check_step("add_histogram", global_step)?;
        let h = histogram(values, &bins)?;
        self.write_values(
            step,
            None,
            vec![SummaryValue {
                tag: tag.into(),
                metadata: None,
                value: Some(Value::Histo(h)),
            }],
        )
    }

    /// Logs a text (Markdown) under `<tag>/text_summary`, as PyTorch does.
    pub fn add_text(&mut self, tag: &str, text: &str, global_step: i64) -> Result<()> {
        check_tag("add_text", tag)?;
        let step = check_step("add_text", global_step)?;
        let meta = proto::SummaryMetadata {
            plugin_data: Some(proto::PluginData {
                plugin_name: "text".into(),
                content: Vec::new(), // TextPluginData { version: 0 }
            }),
            ..Default::default()
        };
        let tensor = proto::TensorProto {
            dtype: proto::DT_STRING,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![proto::Dim { size: 1 }],
            }),
            string_val: vec![text.as_bytes().to_vec()],
        };
        self.write_values(
            step,
            None,
            vec![SummaryValue {
                tag: format!("{tag}/text_summary"),
                metadata: Some(meta),
                value: Some(Value::Tensor(tensor)),
            }],
        )
    }

    /// Logs one run's hyper-parameters and final metrics for TensorBoard's HPARAMS tab,
    /// as PyTorch does: into the sub-run `<log_dir>/<run_name>` (default: the current time),
    /// the experiment, session-start and session-end summaries of the `hparams` plugin and
    /// each metric as a scalar at step 0.
    pub fn add_hparams(
        &mut self,
        hparams: &[(String, HParam)],
        metrics: &[(String, f64)],
        run_name: Option<&str>,
    ) -> Result<()> {
        use proto::{HParamsData, HParamsPluginData, PbKind, PbValue};
        if hparams.is_empty() {
            return Err(Error::value("add_hparams", "hparam_dict is empty"));
        }
        for (k, v) in hparams {
            check_tag("add_hparams", k)?;
            if let HParam::Float(x) = v {
                if !x.is_finite() {
                    return Err(Error::value(
                        "add_hparams",
                        format!("hyper-parameter {k:?} is {x}; give a finite number"),
                    ));
                }
            }
        }
        let run = match run_name {
            Some(r) if r.is_empty() || r.contains("..") => {
                return Err(Error::value(
                    "add_hparams",
                    format!("run_name {r:?}: give a plain sub-directory name"),
                ))
            }
            Some(r) => r.to_string(),
            None => format!("{:.6}", now_secs()),
        };
        let t = now_secs();
        let experiment = proto::Experiment {
            time_created_secs: t,
            hparam_infos: hparams
                .iter()
                .map(|(k, v)| proto::HParamInfo {
                    name: k.clone(),
                    r#type: match v {
                        HParam::Str(_) => 1,
                        HParam::Bool(_) => 2,
                        HParam::Float(_) => 3,
                    },
                })
                .collect(),
            metric_infos: metrics
                .iter()
                .map(|(k, _)| proto::MetricInfo {
                    name: Some(proto::MetricName {
                        group: String::new(),
                        tag: k.clone(),
                    }),
                })
                .collect(),
        };
        let start = proto::SessionStartInfo {
            hparams: hparams
                .iter()
                .map(|(k, v)| {
                    let kind = match v {
                        HParam::Float(x) => PbKind::NumberValue(*x),
                        HParam::Str(s) => PbKind::StringValue(s.clone()),
                        HParam::Bool(b) => PbKind::BoolValue(*b),
                    };
                    (k.clone(), PbValue { kind: Some(kind) })
                })
                .collect(),
            group_name: String::new(),
            start_time_secs: t,
        };
        let end = proto::SessionEndInfo {
            status: 1,
            end_time_secs: t,
        };
        let summary = |tag: &str, data: HParamsData| SummaryValue {
            tag: tag.into(),
            metadata: Some(proto::SummaryMetadata {
                plugin_data: Some(proto::PluginData {
                    plugin_name: "hparams".into(),
                    content: HParamsPluginData {
                        version: 0,
                        data: Some(data),
                    }
                    .encode_to_vec(),
                }),
                ..Default::default()
            }),
            value: None,
        };
        let mut w = SummaryWriter::with_options(
            self.log_dir.join(run),
            self.flush_every.as_secs_f64(),
            "",
        )?;
        w.write_values(
            0,
            Some(t),
            vec![summary(
                "_hparams_/experiment",
                HParamsData::Experiment(experiment),
            )],
        )?;
        w.write_values(
            0,
            Some(t),
            vec![summary(
                "_hparams_/session_start_info",
                HParamsData::SessionStartInfo(start),
            )],
        )?;
        w.write_values(
            0,
            Some(t),
            vec![summary(
                "_hparams_/session_end_info",
                HParamsData::SessionEndInfo(end),
            )],
        )?;
        for (k, v) in metrics {
            w.add_scalar_at(k, *v, 0, Some(t))?;
        }
        w.close()
    }

    /// Writes buffered events to disk.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|e| io_err(&self.path, e))?;
        }
        for (_, c) in &mut self.children {
            c.flush()?;
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Flushes and closes the file; later `add_*` calls are errors. Closing twice is fine.
    pub fn close(&mut self) -> Result<()> {
        self.flush()?;
        for (_, c) in &mut self.children {
            c.close()?;
        }
        if let Some(out) = self.out.take() {
            out.into_inner()
                .map_err(|e| io_err(&self.path, e.error()))?
                .sync_all()
                .map_err(|e| io_err(&self.path, e))?;
        }
        Ok(())
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.out.is_none()
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// TensorFlow's default histogram edges: ±1e-12·1.1^k up to 1e20, and 0.
fn tensorflow_edges() -> Vec<f64> {
    let mut pos = Vec::new();
    let mut v = 1e-12f64;
    while v < 1e20 {
        pos.push(v);
        v *= 1.1;
    }
    let mut e: Vec<f64> = pos.iter().rev().map(|x| -x).collect();
    e.push(0.0);
    e.extend(pos);
    e
}

/// The histogram proto of `values` bucketed by `bins`.
pub fn histogram(values: &[f64], bins: &Bins) -> Result<HistogramProto> {
    let op = "add_histogram";
    if values.is_empty() {
        return Err(Error::value(op, "no values: the histogram is empty"));
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::value(
            op,
            format!("the values contain {bad}; a histogram needs finite numbers"),
        ));
    }
    let (mut min, mut max, mut sum, mut sq) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0);
    for &v in values {
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sq += v * v;
    }
    let edges = match bins {
        Bins::Tensorflow => tensorflow_edges(),
        Bins::Count(n) => {
            if *n == 0 {
                return Err(Error::value(op, "bins must be at least 1"));
            }
            let (lo, hi) = if min == max {
                (min - 0.5, max + 0.5)
            } else {
                (min, max)
            };
            (0..=*n)
                .map(|i| lo + (hi - lo) * i as f64 / *n as f64)
                .collect()
        }
        Bins::Edges(e) => {
            if e.len() < 2 || e.windows(2).any(|w| w[0] >= w[1]) || e.iter().any(|x| !x.is_finite())
            {
                return Err(Error::value(
                    op,
                    "bin edges must be at least two finite, strictly increasing numbers",
                ));
            }
            e.clone()
        }
    };
    let nb = edges.len() - 1;
    let mut counts = vec![0f64; nb];
    for &v in values {
        // Bucket i holds [e_i, e_{i+1}); the last also holds its right edge; values
        // outside the edges go to the end buckets.
        let i = edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(nb - 1);
        counts[i] += 1.0;
    }
    let (limits, bucket) = if matches!(bins, Bins::Tensorflow) {
        // Keep the non-empty range plus one empty bucket on the left (its limit is the
        // left edge of the first non-empty one), as TensorFlow does.
        let first = counts.iter().position(|&c| c > 0.0).unwrap_or(0);
        let last = counts.iter().rposition(|&c| c > 0.0).unwrap_or(0);
        let start = first.saturating_sub(1);
        (
            edges[start + 1..=last + 1].to_vec(),
            counts[start..=last].to_vec(),
        )
    } else {
        (edges[1..].to_vec(), counts)
    };
    Ok(HistogramProto {
        min,
        max,
        num: values.len() as f64,
        sum,
        sum_squares: sq,
        bucket_limit: limits,
        bucket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_value() {
        // CRC-32C("123456789") = 0xE3069283 (the standard check value).
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn histogram_counts_every_value() {
        let v: Vec<f64> = (0..1000).map(|i| (i as f64 - 500.0) / 37.0).collect();
        for b in [
            Bins::Tensorflow,
            Bins::Count(7),
            Bins::Edges(vec![-1.0, 0.0, 1.0]),
        ] {
            let h = histogram(&v, &b).unwrap();
            assert_eq!(h.bucket.iter().sum::<f64>(), 1000.0);
            assert_eq!(h.bucket.len(), h.bucket_limit.len());
        }
        assert!(histogram(&[], &Bins::Tensorflow).is_err());
        assert!(histogram(&[f64::NAN], &Bins::Tensorflow).is_err());
        assert!(histogram(&[1.0], &Bins::Count(0)).is_err());
        assert!(histogram(&[1.0], &Bins::Edges(vec![1.0, 1.0])).is_err());
    }
}

//! Prometheus metrics of a training run: [`MetricsServer`] serves `/metrics` in the
//! Prometheus text format (version 0.0.4) from a small HTTP thread.
//!
//! ```no_run
//! use deepseek::monitor::MetricsServer;
//! let server = MetricsServer::bind("127.0.0.1:9464")?;
//! server.metrics().record_step(0.93, 3e-3, 32, "tokens", 0.05);
//! // curl http://127.0.0.1:9464/metrics
//! # Ok::<(), deepseek::Error>(())
//! ```
//!
//! The metrics (all prefixed `deepseek_`): `train_steps_total`, `train_loss`,
//! `val_loss`, `learning_rate`, `train_throughput{unit="tokens"|"samples"}` (per second,
//! over the run), `train_units_total{unit}`, `train_step_seconds`, `train_elapsed_seconds`,
//! `memory_allocated_bytes` and `memory_peak_bytes` (tensor storages, read at each
//! scrape), `checkpoints_total`, `checkpoint_age_seconds` (since the newest checkpoint, or
//! since the start when there is none yet) and `process_resident_memory_bytes` (Linux).
//! There is no GPU backend yet, so no device-utilisation gauge.

use crate::{Error, Result};
use prometheus::{CounterVec, Encoder, Gauge, GaugeVec, IntCounter, Opts, Registry, TextEncoder};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The training metrics a [`MetricsServer`] exposes; update them from the training loop.
pub struct TrainingMetrics {
    registry: Registry,
    steps: IntCounter,
    loss: Gauge,
    val_loss: Gauge,
    lr: Gauge,
    throughput: GaugeVec,
    units: CounterVec,
    step_seconds: Gauge,
    elapsed: Gauge,
    mem: Gauge,
    mem_peak: Gauge,
    rss: Gauge,
    checkpoints: IntCounter,
    ckpt_age: Gauge,
    started: Instant,
    last_ckpt: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for TrainingMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingMetrics")
            .field("steps", &self.steps.get())
            .finish()
    }
}

fn perr(e: prometheus::Error) -> Error {
    Error::Msg(format!("prometheus metrics: {e}"))
}

impl TrainingMetrics {
    /// A fresh set of metrics (all zero; the losses NaN until a step is recorded).
    pub fn new() -> Result<TrainingMetrics> {
        let r = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.map_err(perr)?;
                r.register(Box::new(m.clone())).map_err(perr)?;
                m
            }};
        }
        let g = |n: &str, h: &str| Gauge::new(format!("deepseek_{n}"), h);
        let m = TrainingMetrics {
            steps: reg!(IntCounter::new(
                "deepseek_train_steps_total",
                "Optimizer steps done (skipped steps included)"
            )),
            loss: reg!(g("train_loss", "Training loss of the latest step")),
            val_loss: reg!(g("val_loss", "Latest validation loss")),
            lr: reg!(g("learning_rate", "Learning rate of the latest step")),
            throughput: reg!(GaugeVec::new(
                Opts::new(
                    "deepseek_train_throughput",
                    "Samples or tokens per second over the run"
                ),
                &["unit"]
            )),
            units: reg!(CounterVec::new(
                Opts::new("deepseek_train_units_total", "Samples or tokens processed"),
                &["unit"]
            )),
            step_seconds: reg!(g("train_step_seconds", "Duration of the latest step")),
            elapsed: reg!(g(
                "train_elapsed_seconds",
                "Seconds since the metrics were created"
            )),
            mem: reg!(g("memory_allocated_bytes", "Bytes of live tensor storages")),
            mem_peak: reg!(g("memory_peak_bytes", "Peak bytes of live tensor storages")),
            rss: reg!(g(
                "process_resident_memory_bytes",
                "Resident memory of the process"
            )),
            checkpoints: reg!(IntCounter::new(
                "deepseek_checkpoints_total",
                "Checkpoints written"
            )),
            ckpt_age: reg!(g(
                "checkpoint_age_seconds",
                "Seconds since the newest checkpoint (since the start when none yet)"
            )),
            registry: r,
            started: Instant::now(),
            last_ckpt: Mutex::new(None),
        };
        m.loss.set(f64::NAN);
        m.val_loss.set(f64::NAN);
        Ok(m)
    }

    /// Records one optimizer step: its loss, learning rate, the samples or tokens it
    /// processed (`unit` is `"samples"` or `"tokens"`) and its duration.
    pub fn record_step(&self, loss: f64, lr: f64, units: u64, unit: &str, step_seconds: f64) {
        self.steps.inc();
        self.loss.set(loss);
        self.lr.set(lr);
        let c = self.units.with_label_values(&[unit]);
        c.inc_by(units as f64);
        self.step_seconds.set(step_seconds);
        let t = self.started.elapsed().as_secs_f64().max(1e-9);
        self.throughput.with_label_values(&[unit]).set(c.get() / t);
    }

    /// Sets the throughput gauge directly (when the caller measures it itself).
    pub fn set_throughput(&self, per_second: f64, unit: &str) {
        self.throughput.with_label_values(&[unit]).set(per_second);
    }

    /// Sets the step counter (a resumed run starts from its checkpoint's step).
    pub fn set_steps(&self, steps: u64) {
        let now = self.steps.get();
        if steps > now {
            self.steps.inc_by(steps - now);
        }
    }

    /// Records a validation loss.
    pub fn record_val_loss(&self, loss: f64) {
        self.val_loss.set(loss);
    }

    /// Records that a checkpoint was just written.
    pub fn record_checkpoint(&self) {
        self.checkpoints.inc();
        if let Ok(mut l) = self.last_ckpt.lock() {
            *l = Some(Instant::now());
        }
    }

    /// The metrics in the Prometheus text format (the gauges read at call time are
    /// refreshed first).
    pub fn render(&self) -> Result<String> {
        self.mem.set(crate::memory::memory_allocated() as f64);
        self.mem_peak
            .set(crate::memory::max_memory_allocated() as f64);
        self.elapsed.set(self.started.elapsed().as_secs_f64());
        if let Some(rss) = resident_bytes() {
            self.rss.set(rss as f64);
        }
        let since = self
            .last_ckpt
            .lock()
            .ok()
            .and_then(|l| *l)
            .unwrap_or(self.started);
        self.ckpt_age.set(since.elapsed().as_secs_f64());
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(perr)?;
        String::from_utf8(buf).map_err(|e| Error::Msg(format!("prometheus metrics: {e}")))
    }
}

/// Resident set size from `/proc/self/statm` (Linux only).
fn resident_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Serves `GET /metrics` (Prometheus text format) on a TCP address from a background
/// thread until dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    metrics: Arc<TrainingMetrics>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MetricsServer {
    /// Serves on every interface at `port` (`0.0.0.0:port`; port 0 picks a free one).
    pub fn start(port: u16) -> Result<MetricsServer> {
        Self::bind(&format!("0.0.0.0:{port}"))
    }

    /// Serves on `addr` (`"127.0.0.1:9464"`, `"[::1]:0"`, ...). A port already in use is an
    /// error that says so.
    pub fn bind(addr: &str) -> Result<MetricsServer> {
        let op = "metrics server";
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| Error::value(op, format!("{addr:?} is not a host:port address ({e})")))?
            .collect();
        let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                Error::Msg(format!(
                    "metrics server: cannot listen on {addr}: the port is already in use (another process listens there); choose another port (--metrics-port), or 0 for any free port"
                ))
            } else {
                Error::Msg(format!("metrics server: cannot listen on {addr}: {e}"))
            }
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Msg(format!("metrics server: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Msg(format!("metrics server: {e}")))?;
        let metrics = Arc::new(TrainingMetrics::new()?);
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (metrics.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("deepseek-metrics".into())
            .spawn(move || serve(listener, m, s))
            .map_err(|e| Error::Msg(format!("metrics server: cannot start its thread: {e}")))?;
        Ok(MetricsServer {
            addr: local,
            metrics,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The metrics it serves (shared with the server thread).
    pub fn metrics(&self) -> &Arc<TrainingMetrics> {
        &self.metrics
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, metrics: Arc<TrainingMetrics>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = handle(stream, &metrics);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn handle(stream: TcpStream, metrics: &TrainingMetrics) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Skip the headers (up to the blank line).
    let mut h = String::new();
    for _ in 0..100 {
        h.clear();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") | ("HEAD", "/metrics") => match metrics.render() {
            Ok(b) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", b),
            Err(e) => ("500 Internal Server Error", "text/plain", e.to_string()),
        },
        ("GET", "/") => (
            "200 OK",
            "text/html",
            "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n".to_string(),
        ),
        ("GET", _) | ("HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_metrics_and_reports_a_busy_port() {
        let s = MetricsServer::bind("127.0.0.1:0").unwrap();
        s.metrics().record_step(0.5, 1e-3, 8, "samples", 0.1);
        let mut c = TcpStream::connect(s.local_addr()).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut c, &mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains("deepseek_train_steps_total 1"), "{body}");
        let e = MetricsServer::bind(&s.local_addr().to_string()).unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
        assert!(MetricsServer::bind("no-port").is_err());
    }
}

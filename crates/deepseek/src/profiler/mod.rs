//! The profiler (after `torch.profiler`): every kernel the executor launches, with its
//! time, input shapes, memory allocated and FLOPs (matmul, conv2d, the LSTM layer), plus
//! user ranges ([`range`]), summarised by [`Profiler::key_averages`] and exported in the
//! Chrome trace format ([`Profiler::export_chrome_trace`], for `chrome://tracing`,
//! Perfetto or DevTools).
//!
//! Kernels are recorded at the one place where ops are dispatched: the executor calls
//! [`kernel`] once per launch. When no profiler runs, that is one relaxed atomic load.
//!
//! ```
//! use deepseek::profiler::{Profiler, ProfilerConfig, range};
//! use deepseek::{DType, Tensor};
//! let prof = Profiler::new(ProfilerConfig { record_shapes: true, with_flops: true, ..Default::default() });
//! prof.start()?;
//! {
//!     let _r = range("my_block");
//!     let a = Tensor::randn(&[64, 32], DType::F32)?;
//!     let _ = a.matmul(&a.t()?)?;
//! }
//! prof.stop()?;
//! let table = prof.key_averages(false).table("cpu_time_total", 10)?;
//! assert!(table.contains("matmul") && table.contains("my_block"));
//! # Ok::<(), deepseek::Error>(())
//! ```

mod report;

pub use report::{KeyAverage, KeyAverages};

use crate::{Error, Result};
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SHAPES: AtomicBool = AtomicBool::new(false);
static MEMORY: AtomicBool = AtomicBool::new(false);
static FLOPS: AtomicBool = AtomicBool::new(false);
static NEXT_TID: AtomicU64 = AtomicU64::new(1);

/// Where the kernels of the running profile go (None when no profile runs).
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

struct Sink {
    t0: Instant,
    events: Vec<ProfEvent>,
}

thread_local! {
    static TID: Cell<u64> = const { Cell::new(0) };
}

fn tid() -> u64 {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_TID.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

fn sink() -> MutexGuard<'static, Option<Sink>> {
    SINK.lock().unwrap_or_else(|p| p.into_inner())
}

/// True while a profile is recording. The executor's only cost when profiling is off.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// A kernel launched by the executor (eager or fused).
    Kernel,
    /// A user range ([`range`], Python's `record_function`).
    User,
    /// One training step (`ProfilerStep#N`), marked by [`Profiler::step`].
    Step,
    /// A collective or point-to-point transfer as the communication thread ran it, or a
    /// caller's wait for one ([`comm`]).
    Comm,
}

impl Category {
    /// The Chrome trace category.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Kernel => "kernel",
            Category::User => "user_annotation",
            Category::Step => "step",
            Category::Comm => "communication",
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfEvent {
    /// The kernel's op name (`matmul`, `add`, `fused[mul,add]`...) or the range's name.
    pub name: Cow<'static, str>,
    /// Kernel, user range or step.
    pub category: Category,
    /// The recording thread (small integers from 1).
    pub thread: u64,
    /// Start, in microseconds since the profile started.
    pub start_us: f64,
    /// Duration in microseconds.
    pub dur_us: f64,
    /// Input shapes (with `record_shapes`).
    pub shapes: Vec<Vec<usize>>,
    /// Change of allocated tensor memory over the event, in bytes (with `profile_memory`).
    pub mem_bytes: i64,
    /// Allocated tensor memory at the event's end (with `profile_memory`).
    pub mem_after: u64,
    /// Floating-point operations (with `with_flops`; matmul, conv2d and the LSTM layer).
    pub flops: u64,
}

/// Open kernel or range, recorded when dropped (also when its kernel failed).
#[must_use = "the event is recorded when the guard is dropped"]
pub struct EventGuard(Option<Open>);

struct Open {
    name: Cow<'static, str>,
    category: Category,
    start: Instant,
    shapes: Vec<Vec<usize>>,
    mem0: i64,
}

/// Marks one kernel launch named `name`; `shapes` gives its input shapes and is called
/// only while a profile records shapes or FLOPs. Keep the guard alive over the launch:
/// `let _k = profiler::kernel("matmul", || vec![a.shape().to_vec(), b.shape().to_vec()]);`
#[inline]
pub fn kernel<F: FnOnce() -> Vec<Vec<usize>>>(name: &'static str, shapes: F) -> EventGuard {
    if !enabled() {
        return EventGuard(None);
    }
    open(Cow::Borrowed(name), Category::Kernel, shapes)
}

/// Marks a communication event until the guard is dropped: `name` with the size it moves
/// (`all_reduce 2.25 MB` on the thread that runs the transfer, `wait all_reduce` on the
/// caller blocked on it), so a trace shows whether transfers overlap computation.
pub fn comm(name: &'static str, bytes: Option<usize>) -> EventGuard {
    if !enabled() {
        return EventGuard(None);
    }
    let name = match bytes {
        Some(b) => Cow::Owned(format!("{name} {:.2} MB", b as f64 / (1 << 20) as f64)),
        None => Cow::Borrowed(name),
    };
    open(name, Category::Comm, Vec::new)
}

/// Marks a user range (PyTorch's `record_function`) until the guard is dropped.
pub fn range(name: impl Into<String>) -> EventGuard {
    if !enabled() {
        return EventGuard(None);
    }
    open(Cow::Owned(name.into()), Category::User, Vec::new)
}

#[cold]
fn open(
    name: Cow<'static, str>,
    category: Category,
    shapes: impl FnOnce() -> Vec<Vec<usize>>,
) -> EventGuard {
    let want_shapes = SHAPES.load(Ordering::Relaxed) || FLOPS.load(Ordering::Relaxed);
    EventGuard(Some(Open {
        name,
        category,
        shapes: if want_shapes { shapes() } else { Vec::new() },
        mem0: crate::memory::memory_allocated() as i64,
        start: Instant::now(),
    }))
}

impl Drop for EventGuard {
    fn drop(&mut self) {
        if let Some(o) = self.0.take() {
            close(o, Instant::now());
        }
    }
}

/// Records a kernel that already ran from `start` until now (for callers that time
/// themselves, such as the fused-kernel interpreter).
pub fn record_kernel(
    name: impl Into<Cow<'static, str>>,
    start: Instant,
    shapes: impl FnOnce() -> Vec<Vec<usize>>,
) {
    if !enabled() {
        return;
    }
    let want_shapes = SHAPES.load(Ordering::Relaxed) || FLOPS.load(Ordering::Relaxed);
    let o = Open {
        name: name.into(),
        category: Category::Kernel,
        shapes: if want_shapes { shapes() } else { Vec::new() },
        mem0: crate::memory::memory_allocated() as i64,
        start,
    };
    close(o, Instant::now());
}

fn close(o: Open, end: Instant) {
    let mem = crate::memory::memory_allocated() as i64;
    let flops = if FLOPS.load(Ordering::Relaxed) && o.category == Category::Kernel {
        flops_of(&o.name, &o.shapes)
    } else {
        0
    };
    let keep_shapes = SHAPES.load(Ordering::Relaxed);
    let with_mem = MEMORY.load(Ordering::Relaxed);
    let thread = tid();
    let mut g = sink();
    if let Some(s) = g.as_mut() {
        let start_us = o.start.saturating_duration_since(s.t0).as_secs_f64() * 1e6;
        s.events.push(ProfEvent {
            name: o.name,
            category: o.category,
            thread,
            start_us,
            dur_us: end.saturating_duration_since(o.start).as_secs_f64() * 1e6,
            shapes: if keep_shapes { o.shapes } else { Vec::new() },
            mem_bytes: if with_mem { mem - o.mem0 } else { 0 },
            mem_after: if with_mem { mem.max(0) as u64 } else { 0 },
            flops,
        });
    }
}

/// FLOPs of a kernel from its name and input shapes (multiply-adds count 2).
pub fn flops_of(name: &str, shapes: &[Vec<usize>]) -> u64 {
    let p = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
    match (name, shapes) {
        // a [..., m, k] @ b [..., k, n]
        ("matmul", [a, b, ..]) if a.len() >= 2 && b.len() >= 2 => {
            let (m, k) = (a[a.len() - 2] as u64, a[a.len() - 1] as u64);
            let n = b[b.len() - 1] as u64;
            let ba = p(&a[..a.len() - 2]);
            let bb = p(&b[..b.len() - 2]);
            2 * m * k * n * ba.max(bb)
        }
        // x [n, c, h, w], w [o, c/g, kh, kw], out [n, o, ho, wo]
        ("conv2d", [_, w, out, ..]) if w.len() == 4 => 2 * p(out) * p(&w[1..]),
        ("conv2d_backward", [_, w, out, ..]) if w.len() == 4 => 4 * p(out) * p(&w[1..]),
        // x [T, B, I] (or its projection [T, B, 4H]), w_hh [4H, H], optional w_ih [4H, I]
        ("lstm_layer" | "lstm_layer_backward", [x, whh, rest @ ..])
            if x.len() == 3 && whh.len() == 2 =>
        {
            let (t, b) = (x[0] as u64, x[1] as u64);
            let mut f = 2 * t * b * p(whh);
            if let Some(wih) = rest.first() {
                f += 2 * t * b * p(wih);
            }
            if name.ends_with("backward") {
                2 * f
            } else {
                f
            }
        }
        _ => 0,
    }
}

/// `schedule(wait, warmup, active, repeat, skip_first)`, as in `torch.profiler.schedule`:
/// after `skip_first` steps, cycles of `wait` idle steps, `warmup` steps recorded and
/// discarded, and `active` recorded steps; `repeat` cycles (0: until stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Idle steps at the start of each cycle.
    pub wait: u64,
    /// Steps recorded and thrown away (caches warm up).
    pub warmup: u64,
    /// Steps recorded.
    pub active: u64,
    /// Cycles to run, 0 for no limit.
    pub repeat: u64,
    /// Steps skipped once, before the first cycle.
    pub skip_first: u64,
}

/// What the profiler does during a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not recording.
    None,
    /// Recording, to be discarded.
    Warmup,
    /// Recording.
    Record,
    /// Recording; the cycle's trace is ready after this step.
    RecordAndSave,
}

impl Schedule {
    /// Checks the counts (`active` must be at least 1).
    pub fn new(
        wait: u64,
        warmup: u64,
        active: u64,
        repeat: u64,
        skip_first: u64,
    ) -> Result<Schedule> {
        if active == 0 {
            return Err(Error::value("schedule", "active must be at least 1"));
        }
        Ok(Schedule {
            wait,
            warmup,
            active,
            repeat,
            skip_first,
        })
    }
    /// The action of step `step` (0-based).
    pub fn action(&self, step: u64) -> Action {
        if step < self.skip_first {
            return Action::None;
        }
        let s = step - self.skip_first;
        let n = self.wait + self.warmup + self.active;
        if self.repeat > 0 && s / n >= self.repeat {
            return Action::None;
        }
        let m = s % n;
        if m < self.wait {
            Action::None
        } else if m < self.wait + self.warmup {
            Action::Warmup
        } else if m < n - 1 {
            Action::Record
        } else {
            Action::RecordAndSave
        }
    }
}

/// What a profile records.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProfilerConfig {
    /// Keep each kernel's input shapes.
    pub record_shapes: bool,
    /// Track allocated tensor memory per event.
    pub profile_memory: bool,
    /// Count FLOPs of matmul, conv2d and the LSTM layer.
    pub with_flops: bool,
    /// Record only some steps ([`Profiler::step`] marks step ends); `None`: everything
    /// between `start` and `stop`.
    pub schedule: Option<Schedule>,
}

struct Inner {
    cfg: ProfilerConfig,
    running: bool,
    step: u64,
    step_start: Option<Instant>,
    t0: Option<Instant>,
    /// Events of finished recording windows (and of the last stop).
    events: Vec<ProfEvent>,
    /// Completed cycles (traces ready) so far.
    cycles: u64,
}

/// A profile: start it, run the work (calling [`step`](Self::step) after each training
/// step when it has a schedule), stop it, then read [`events`](Self::events),
/// [`key_averages`](Self::key_averages) or export a Chrome trace. Cheap to clone (the
/// clones share the profile). One profile records at a time per process.
#[derive(Clone)]
pub struct Profiler(Arc<Mutex<Inner>>);

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner();
        f.debug_struct("Profiler")
            .field("config", &g.cfg)
            .field("running", &g.running)
            .field("events", &g.events.len())
            .finish()
    }
}

fn set_recording(on: bool, cfg: &ProfilerConfig) {
    SHAPES.store(cfg.record_shapes, Ordering::Relaxed);
    MEMORY.store(cfg.profile_memory, Ordering::Relaxed);
    FLOPS.store(cfg.with_flops, Ordering::Relaxed);
    ENABLED.store(on, Ordering::SeqCst);
}

impl Profiler {
    /// A profile with these settings (not started).
    pub fn new(cfg: ProfilerConfig) -> Profiler {
        Profiler(Arc::new(Mutex::new(Inner {
            cfg,
            running: false,
            step: 0,
            step_start: None,
            t0: None,
            events: Vec::new(),
            cycles: 0,
        })))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts recording (at step 0 of the schedule, if any). Fails while another profile
    /// records in this process.
    pub fn start(&self) -> Result<()> {
        let mut g = self.inner();
        if g.running {
            return Err(Error::value("profiler", "this profile is already running"));
        }
        let mut s = sink();
        if s.is_some() {
            return Err(Error::value(
                "profiler",
                "another profile is already recording in this process; stop it first",
            ));
        }
        let now = Instant::now();
        let t0 = *g.t0.get_or_insert(now);
        *s = Some(Sink {
            t0,
            events: Vec::new(),
        });
        drop(s);
        g.running = true;
        g.step = 0;
        g.step_start = Some(now);
        let on = g.cfg.schedule.is_none_or(|sc| sc.action(0) != Action::None);
        set_recording(on, &g.cfg);
        Ok(())
    }

    /// Marks the end of a step: advances the schedule (recording, discarding the warm-up,
    /// keeping the active steps). Returns true when a cycle's trace just became ready
    /// (`on_trace_ready`'s moment).
    pub fn step(&self) -> bool {
        let mut g = self.inner();
        if !g.running {
            return false;
        }
        let now = Instant::now();
        let prev = g.step;
        let act = g.cfg.schedule.map_or(Action::Record, |s| s.action(prev));
        let mut s = sink();
        let Some(sk) = s.as_mut() else {
            return false;
        };
        if matches!(act, Action::Record | Action::RecordAndSave) {
            if let Some(st) = g.step_start {
                sk.events.push(ProfEvent {
                    name: Cow::Owned(format!("ProfilerStep#{prev}")),
                    category: Category::Step,
                    thread: tid(),
                    start_us: st.saturating_duration_since(sk.t0).as_secs_f64() * 1e6,
                    dur_us: now.saturating_duration_since(st).as_secs_f64() * 1e6,
                    shapes: Vec::new(),
                    mem_bytes: 0,
                    mem_after: 0,
                    flops: 0,
                });
            }
        }
        let mut ready = false;
        match act {
            Action::Warmup => sk.events.clear(),
            Action::RecordAndSave => {
                let ev = std::mem::take(&mut sk.events);
                g.events.extend(ev);
                g.cycles += 1;
                ready = true;
            }
            Action::None if g.cfg.schedule.is_some() => sk.events.clear(),
            _ => {}
        }
        drop(s);
        g.step = prev + 1;
        g.step_start = Some(now);
        let next = g.cfg.schedule.map_or(Action::Record, |s| s.action(g.step));
        if next == Action::Warmup || (next != Action::None && act == Action::None) {
            // A window starts: drop whatever was recorded while idle.
            if let Some(sk) = sink().as_mut() {
                sk.events.clear();
            }
        }
        set_recording(next != Action::None, &g.cfg);
        ready
    }

    /// Stops recording. Without a schedule every event since `start` is kept; with one,
    /// the events of an unfinished active window are kept too (a run that stopped or
    /// failed early still has its trace).
    pub fn stop(&self) -> Result<()> {
        let mut g = self.inner();
        if !g.running {
            return Ok(());
        }
        set_recording(false, &g.cfg);
        let taken = sink().take();
        let act = g.cfg.schedule.map_or(Action::Record, |s| s.action(g.step));
        if let Some(sk) = taken {
            if matches!(act, Action::Record | Action::RecordAndSave) {
                g.events.extend(sk.events);
            }
        }
        g.running = false;
        Ok(())
    }

    /// Whether it is recording or waiting in its schedule.
    pub fn is_running(&self) -> bool {
        self.inner().running
    }

    /// Completed schedule cycles.
    pub fn cycles(&self) -> u64 {
        self.inner().cycles
    }

    /// The recorded events, sorted by start time (call after [`stop`](Self::stop), or
    /// after a cycle's trace is ready).
    pub fn events(&self) -> Vec<ProfEvent> {
        let mut v = self.inner().events.clone();
        v.sort_by(|a, b| a.start_us.total_cmp(&b.start_us));
        v
    }

    /// Forgets the recorded events (e.g. after handling a cycle's trace).
    pub fn clear(&self) {
        self.inner().events.clear();
    }

    /// Events grouped by name (and input shapes with `group_by_input_shape`), with total
    /// and self times, memory and FLOPs.
    pub fn key_averages(&self, group_by_input_shape: bool) -> KeyAverages {
        report::key_averages(&self.events(), group_by_input_shape)
    }

    /// Writes the events as a Chrome trace (JSON object with `traceEvents`).
    pub fn export_chrome_trace(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let cfg = self.inner().cfg;
        report::export_chrome_trace(&self.events(), cfg.profile_memory, path.as_ref())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.running {
            set_recording(false, &self.cfg);
            sink().take();
        }
    }
}

/// Records a fused kernel of the lazy executor (its ops, optional final reduction and
/// iteration shape) that ran from `start` until now.
#[inline]
pub fn record_fused(ops: &[&'static str], reduce: &str, start: Instant, shape: &[usize]) {
    if !enabled() {
        return;
    }
    let name = if reduce.is_empty() {
        format!("fused[{}]", ops.join(","))
    } else {
        format!("fused[{}->{reduce}]", ops.join(","))
    };
    record_kernel(name, start, || vec![shape.to_vec()]);
}

/// The input shapes the profiler records for an LSTM layer: x `[T, B, I]`, `w_hh`
/// `[4H, H]` and, when the layer projects its input itself, `w_ih` `[4H, I]`.
pub fn lstm_shapes(t: usize, b: usize, i: usize, h: usize, with_w_ih: bool) -> Vec<Vec<usize>> {
    let mut v = vec![vec![t, b, i], vec![4 * h, h]];
    if with_w_ih {
        v.push(vec![4 * h, i]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_torch() {
        let s = Schedule::new(1, 1, 2, 1, 1).unwrap();
        let a: Vec<Action> = (0..7).map(|i| s.action(i)).collect();
        use Action::*;
        assert_eq!(a, [None, None, Warmup, Record, RecordAndSave, None, None]);
        assert!(Schedule::new(1, 1, 0, 0, 0).is_err());
    }

    #[test]
    fn flops_of_matmul_conv_lstm() {
        assert_eq!(
            flops_of("matmul", &[vec![2, 3, 4], vec![2, 4, 5]]),
            2 * 2 * 3 * 4 * 5
        );
        assert_eq!(
            flops_of(
                "conv2d",
                &[vec![1, 3, 8, 8], vec![4, 3, 3, 3], vec![1, 4, 6, 6]]
            ),
            2 * 4 * 36 * 27
        );
        assert_eq!(
            flops_of("lstm_layer", &lstm_shapes(5, 2, 3, 4, true)),
            2 * 5 * 2 * 16 * 4 + 2 * 5 * 2 * 16 * 3
        );
        assert_eq!(flops_of("add", &[vec![3], vec![3]]), 0);
    }
}

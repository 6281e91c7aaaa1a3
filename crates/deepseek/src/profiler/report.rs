//! Summaries of a profile: `key_averages().table()` and the Chrome trace.

use super::{Category, ProfEvent};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// The statistics of one key (an event name, or a name and its input shapes).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyAverage {
    /// The event name.
    pub key: String,
    /// Input shapes (when grouped by them).
    pub input_shapes: Vec<Vec<usize>>,
    /// Calls.
    pub count: u64,
    /// Total time including nested events, microseconds.
    pub cpu_time_total: f64,
    /// Time not spent in nested events, microseconds.
    pub self_cpu_time_total: f64,
    /// Memory allocated (net bytes) including nested events.
    pub cpu_memory_usage: i64,
    /// Memory allocated (net bytes) not by nested events.
    pub self_cpu_memory_usage: i64,
    /// Floating-point operations.
    pub flops: u64,
}

impl KeyAverage {
    /// Mean time per call, microseconds.
    pub fn cpu_time(&self) -> f64 {
        self.cpu_time_total / self.count.max(1) as f64
    }
}

/// The grouped statistics of a profile (`prof.key_averages()`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyAverages {
    /// One row per key, in order of first appearance.
    pub rows: Vec<KeyAverage>,
    group_by_input_shape: bool,
}

/// The sort keys `table` accepts.
pub const SORT_KEYS: [&str; 8] = [
    "cpu_time_total",
    "self_cpu_time_total",
    "cpu_time",
    "count",
    "cpu_memory_usage",
    "self_cpu_memory_usage",
    "flops",
    "key",
];

pub(super) fn key_averages(events: &[ProfEvent], by_shape: bool) -> KeyAverages {
    // Self time/memory: per thread, subtract each event's direct children.
    let mut self_time: Vec<f64> = events.iter().map(|e| e.dur_us).collect();
    let mut self_mem: Vec<i64> = events.iter().map(|e| e.mem_bytes).collect();
    let mut by_thread: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        by_thread.entry(e.thread).or_default().push(i);
    }
    for idx in by_thread.values_mut() {
        // Parents first: earlier start, then longer duration.
        idx.sort_by(|&a, &b| {
            events[a]
                .start_us
                .total_cmp(&events[b].start_us)
                .then(events[b].dur_us.total_cmp(&events[a].dur_us))
        });
        let mut stack: Vec<usize> = Vec::new();
        for &i in idx.iter() {
            let e = &events[i];
            while let Some(&top) = stack.last() {
                let t = &events[top];
                if e.start_us >= t.start_us + t.dur_us {
                    stack.pop();
                } else {
                    break;
                }
            }
            if let Some(&parent) = stack.last() {
                self_time[parent] -= e.dur_us;
                self_mem[parent] -= e.mem_bytes;
            }
            stack.push(i);
        }
    }
    let mut rows: Vec<KeyAverage> = Vec::new();
    let mut index: HashMap<(String, Vec<Vec<usize>>), usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let shapes = if by_shape {
            e.shapes.clone()
        } else {
            Vec::new()
        };
        let k = (e.name.to_string(), shapes);
        let r = *index.entry(k.clone()).or_insert_with(|| {
            rows.push(KeyAverage {
                key: k.0.clone(),
                input_shapes: k.1.clone(),
                ..Default::default()
            });
            rows.len() - 1
        });
        let row = &mut rows[r];
        row.count += 1;
        row.cpu_time_total += e.dur_us;
        row.self_cpu_time_total += self_time[i].max(0.0);
        row.cpu_memory_usage += e.mem_bytes;
        row.self_cpu_memory_usage += self_mem[i];
        row.flops += e.flops;
    }
    KeyAverages {
        rows,
        group_by_input_shape: by_shape,
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.3}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.3}ms", us / 1e3)
    } else {
        format!("{us:.3}us")
    }
}

fn fmt_bytes(b: i64) -> String {
    let a = b.unsigned_abs() as f64;
    let (v, u) = if a >= 1024.0 * 1024.0 * 1024.0 {
        (a / (1024.0 * 1024.0 * 1024.0), "Gb")
    } else if a >= 1024.0 * 1024.0 {
        (a / (1024.0 * 1024.0), "Mb")
    } else if a >= 1024.0 {
        (a / 1024.0, "Kb")
    } else {
        return format!("{b} b");
    };
    format!("{}{v:.2} {u}", if b < 0 { "-" } else { "" })
}

impl KeyAverages {
    /// Rows sorted by `sort_by` (one of [`SORT_KEYS`], descending; `key` ascending).
    pub fn sorted(&self, sort_by: &str) -> Result<Vec<KeyAverage>> {
        let mut rows = self.rows.clone();
        let f: fn(&KeyAverage) -> f64 = match sort_by {
            "cpu_time_total" => |r| r.cpu_time_total,
            "self_cpu_time_total" => |r| r.self_cpu_time_total,
            "cpu_time" => |r| r.cpu_time(),
            "count" => |r| r.count as f64,
            "cpu_memory_usage" => |r| r.cpu_memory_usage as f64,
            "self_cpu_memory_usage" => |r| r.self_cpu_memory_usage as f64,
            "flops" => |r| r.flops as f64,
            "key" => {
                rows.sort_by(|a, b| a.key.cmp(&b.key));
                return Ok(rows);
            }
            other => {
                return Err(Error::value(
                    "key_averages().table",
                    format!(
                        "unknown sort_by {other:?}; use one of {} (there is no GPU backend, so no device_time_* keys)",
                        SORT_KEYS.join(", ")
                    ),
                ))
            }
        };
        rows.sort_by(|a, b| f(b).total_cmp(&f(a)));
        Ok(rows)
    }

    /// A text table like PyTorch's `key_averages().table(sort_by=..., row_limit=...)`
    /// (`row_limit` 0 or less: all rows).
    pub fn table(&self, sort_by: &str, row_limit: i64) -> Result<String> {
        let mut rows = self.sorted(sort_by)?;
        if row_limit > 0 {
            rows.truncate(row_limit as usize);
        }
        // Percentages are of the self time of everything (the wall time covered).
        let total_self: f64 = self.rows.iter().map(|r| r.self_cpu_time_total).sum();
        let pct = |v: f64| {
            format!(
                "{:.2}%",
                if total_self > 0.0 {
                    100.0 * v / total_self
                } else {
                    0.0
                }
            )
        };
        let has_mem = self.rows.iter().any(|r| r.cpu_memory_usage != 0);
        let has_flops = self.rows.iter().any(|r| r.flops != 0);
        let mut head = vec![
            "Name",
            "Self CPU %",
            "Self CPU",
            "CPU total %",
            "CPU total",
            "CPU time avg",
        ];
        if has_mem {
            head.extend(["CPU Mem", "Self CPU Mem"]);
        }
        head.push("# of Calls");
        if self.group_by_input_shape {
            head.push("Input Shapes");
        }
        if has_flops {
            head.push("Total MFLOPs");
        }
        let mut cells: Vec<Vec<String>> = Vec::new();
        for r in &rows {
            let mut c = vec![
                r.key.clone(),
                pct(r.self_cpu_time_total),
                fmt_us(r.self_cpu_time_total),
                pct(r.cpu_time_total),
                fmt_us(r.cpu_time_total),
                fmt_us(r.cpu_time()),
            ];
            if has_mem {
                c.push(fmt_bytes(r.cpu_memory_usage));
                c.push(fmt_bytes(r.self_cpu_memory_usage));
            }
            c.push(r.count.to_string());
            if self.group_by_input_shape {
                c.push(format!("{:?}", r.input_shapes));
            }
            if has_flops {
                c.push(if r.flops > 0 {
                    format!("{:.3}", r.flops as f64 / 1e6)
                } else {
                    "--".into()
                });
            }
            cells.push(c);
        }
        let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
        for c in &cells {
            for (i, s) in c.iter().enumerate() {
                w[i] = w[i].max(s.chars().count().min(if i == 0 { 60 } else { 200 }));
            }
        }
        let line: String = w.iter().map(|&n| "-".repeat(n) + "  ").collect::<String>() + "\n";
        let row = |c: &[String]| -> String {
            c.iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = if s.chars().count() > w[i] {
                        let head: String = s.chars().take(w[i].saturating_sub(3)).collect();
                        format!("{head}...")
                    } else {
                        s.clone()
                    };
                    format!("{s:>width$}  ", width = w[i])
                })
                .collect::<String>()
                + "\n"
        };
        let mut out = line.clone();
        out += &row(&head.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        out += &line;
        for c in &cells {
            out += &row(c);
        }
        out += &line;
        out += &format!("Self CPU time total: {}\n", fmt_us(total_self));
        Ok(out)
    }
}

pub(super) fn export_chrome_trace(events: &[ProfEvent], with_mem: bool, path: &Path) -> Result<()> {
    use serde_json::{json, Value};
    let pid = std::process::id();
    let mut out: Vec<Value> = vec![json!({
        "ph": "M", "name": "process_name", "pid": pid, "tid": 0,
        "args": {"name": "deepseek"}
    })];
    let mut threads: Vec<u64> = events.iter().map(|e| e.thread).collect();
    threads.sort_unstable();
    threads.dedup();
    for t in &threads {
        out.push(json!({
            "ph": "M", "name": "thread_name", "pid": pid, "tid": t,
            "args": {"name": format!("thread {t}")}
        }));
    }
    for e in events {
        let mut args = serde_json::Map::new();
        if !e.shapes.is_empty() {
            args.insert("Input Dims".into(), json!(e.shapes));
        }
        if with_mem && e.category == Category::Kernel {
            args.insert("Memory (bytes)".into(), json!(e.mem_bytes));
        }
        if e.flops > 0 {
            args.insert("FLOPs".into(), json!(e.flops));
        }
        out.push(json!({
            "ph": "X",
            "cat": e.category.as_str(),
            "name": e.name,
            "pid": pid,
            "tid": e.thread,
            "ts": e.start_us,
            "dur": e.dur_us,
            "args": args,
        }));
        if with_mem && e.category == Category::Kernel {
            out.push(json!({
                "ph": "C", "name": "Memory", "pid": pid, "tid": e.thread,
                "ts": e.start_us + e.dur_us,
                "args": {"Allocated (bytes)": e.mem_after}
            }));
        }
    }
    let doc = json!({
        "traceEvents": out,
        "displayTimeUnit": "ms",
        "otherData": {"producer": "deepseek.profiler"},
    });
    let bytes = serde_json::to_vec(&doc).map_err(|e| Error::Msg(format!("chrome trace: {e}")))?;
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| Error::Io {
            path: d.display().to_string(),
            msg: e.to_string(),
        })?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}

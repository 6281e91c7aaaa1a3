//! What the trainer prints: an indicatif progress bar when stdout is a terminal, plain
//! log lines every N steps otherwise.

use super::callback::TrainerState;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
    plain: bool,
    log_every: u64,
    unit: &'static str,
}

/// `1h02m`, `3m07s`, `42s`.
pub(crate) fn fmt_duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `12.3k`, `1.20M`, `950`.
pub(crate) fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

impl Reporter {
    /// `enabled`: print at all. The bar is used only when stdout is a terminal.
    pub fn new(enabled: bool, log_every: u64, unit: &'static str) -> Reporter {
        let tty = std::io::stdout().is_terminal();
        let bar = (enabled && tty).then(|| {
            let b = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stdout());
            b.set_style(
                ProgressStyle::with_template("{bar:24.cyan/blue} {percent:>3}% {wide_msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            b
        });
        Reporter {
            bar,
            plain: enabled && !tty,
            log_every: log_every.max(1),
            unit,
        }
    }

    /// The fraction done and the seconds left, from the step plan and the time budget.
    fn progress(
        s: &TrainerState,
        run_steps: u64,
        run_secs: f64,
        budget: Option<f64>,
    ) -> (f64, f64) {
        let mut frac: f64 = 0.0;
        let mut eta = f64::INFINITY;
        if let Some(t) = s.total_steps {
            frac = frac.max(s.step as f64 / t.max(1) as f64);
            if run_steps > 0 {
                eta = eta.min(t.saturating_sub(s.step) as f64 * run_secs / run_steps as f64);
            }
        }
        if let Some(b) = budget {
            frac = frac.max(run_secs / b.max(1e-9));
            eta = eta.min((b - run_secs).max(0.0));
        }
        (frac.min(1.0), eta)
    }

    /// The bar's message: short, it has to fit beside the bar.
    fn short(s: &TrainerState, unit: &str, eta: f64) -> String {
        let total = s.total_steps.map(|t| format!("/{t}")).unwrap_or_default();
        let val = s
            .val_loss()
            .map(|v| format!(" val {v:.3}"))
            .unwrap_or_default();
        let unit = unit.replace("tokens", "tok").replace("samples", "smp");
        // The ETA first: a narrow terminal cuts the message from the right.
        format!(
            "ETA {} step {}{total} loss {:.3}{val} lr {:.1e} {} {unit}",
            fmt_duration(eta),
            s.step,
            s.loss,
            s.lr,
            fmt_rate(s.throughput),
        )
    }

    fn line(s: &TrainerState, unit: &str, eta: f64) -> String {
        let total = s.total_steps.map(|t| format!("/{t}")).unwrap_or_default();
        let val = s
            .val_loss()
            .map(|v| format!("  val {v:.4}"))
            .unwrap_or_default();
        let skipped = if s.skipped_steps > 0 {
            format!("  skipped {}", s.skipped_steps)
        } else {
            String::new()
        };
        format!(
            "step {}{total}  epoch {}  loss {:.4}{val}  lr {:.2e}  {} {unit}  ETA {}{skipped}",
            s.step,
            s.epoch,
            s.loss,
            s.lr,
            fmt_rate(s.throughput),
            fmt_duration(eta)
        )
    }

    /// After each step. `run_steps` / `run_secs`: steps and seconds in this process.
    /// Plain mode skips the line when the step just printed its validation line.
    pub fn step(&self, s: &TrainerState, run_steps: u64, run_secs: f64, budget: Option<f64>) {
        let (frac, eta) = Self::progress(s, run_steps, run_secs, budget);
        if let Some(b) = &self.bar {
            b.set_message(Self::short(s, self.unit, eta));
            b.set_position((frac * 1000.0) as u64);
        } else if self.plain
            && s.step.is_multiple_of(self.log_every)
            && s.val_losses.last().map(|v| v.0) != Some(s.step)
        {
            println!("{}", Self::line(s, self.unit, eta));
        }
    }

    /// A line that stays (validation results, checkpoints, notes).
    pub fn println(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.println(msg);
        } else if self.plain {
            println!("{msg}");
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

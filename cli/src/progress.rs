//! The progress bar of trace windows and sampling loops, on stderr.

use std::io::IsTerminal;
use std::time::Duration;

/// A progress bar on stderr (indicatif), drawn only when stderr is a
/// terminal; otherwise a single "<label>: tracing for N s" line says what
/// is going on (tests and fleet tools wait for that line).
pub struct Bar {
    bar: indicatif::ProgressBar,
    label: String,
    activity: String,
}

impl Bar {
    /// A bar for `label`; `activity` ("tracing", "sampling") is what the
    /// line printed without a terminal says. Nothing shows until
    /// [`Bar::start`] (a window starts it).
    pub fn new(label: &str, activity: &str) -> Bar {
        let target =
            if std::io::stderr().is_terminal() { indicatif::ProgressDrawTarget::stderr() } else { indicatif::ProgressDrawTarget::hidden() };
        let bar = indicatif::ProgressBar::with_draw_target(None, target);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed:>4}/{msg} (Ctrl-C ends early)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("#>."),
        );
        bar.set_prefix(label.to_string());
        Bar { bar, label: label.into(), activity: activity.into() }
    }

    /// A bar already started for `total`.
    pub fn started(label: &str, activity: &str, total: Duration) -> Bar {
        let bar = Bar::new(label, activity);
        sysak_kernel::trace::window::Progress::start(&bar, total);
        bar
    }
}

impl sysak_kernel::trace::window::Progress for Bar {
    fn start(&self, total: Duration) {
        if self.bar.is_hidden() {
            eprintln!("{}: {} for {} s (Ctrl-C ends early)", self.label, self.activity, total.as_secs());
        }
        self.bar.set_length(total.as_millis() as u64);
        self.bar.set_message(format!("{} s", total.as_secs()));
    }

    fn set(&self, elapsed: Duration, phase: &str) {
        self.bar.set_position(elapsed.as_millis() as u64);
        self.bar.set_message(format!("{} s {phase}", self.bar.length().unwrap_or(0) / 1000));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A bar over a number of steps (the caches of a census), on stderr: drawn
/// on a terminal; otherwise one line per step.
pub struct Steps {
    bar: indicatif::ProgressBar,
    label: String,
    total: u64,
}

impl Steps {
    /// `total` steps of `label`.
    pub fn new(label: &str, total: u64) -> Steps {
        let target =
            if std::io::stderr().is_terminal() { indicatif::ProgressDrawTarget::stderr() } else { indicatif::ProgressDrawTarget::hidden() };
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("#>."),
        );
        bar.set_prefix(label.to_string());
        Steps { bar, label: label.into(), total }
    }

    /// Step `done` (counted from 0) begins: `what` it does.
    pub fn begin(&self, done: u64, what: &str) {
        if self.bar.is_hidden() {
            eprintln!("{}: {what} ({}/{})", self.label, done + 1, self.total);
        }
        self.bar.set_position(done);
        self.bar.set_message(what.to_string());
    }

    /// All done: the bar goes away.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

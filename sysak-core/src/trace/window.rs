//! The trace window: alloc+free tracing for (100 − r) % of it, then
//! free-only for r %, so short-lived objects allocated late drop out.
//! Frees are enabled before allocations, so no allocation is seen whose
//! free could be missed. Ctrl-C ends the window early; the caller still
//! reports.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::trace::perf::EventHandle;
use crate::trace::{PerfTracer, Sample};

/// How long, and how much of it free-only.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Whole window.
    pub total: Duration,
    /// Percentage of it at the end that traces frees only.
    pub free_only_percent: u32,
}

/// How the window went.
#[derive(Debug, Clone, Copy)]
pub struct WindowOutcome {
    /// Seconds actually traced.
    pub elapsed_s: f64,
    /// Seconds of free-only tracing actually done.
    pub free_only_s: f64,
    /// Ended by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// CLOCK_MONOTONIC ns when the window ended (for ages).
    pub end_ns: u64,
}

fn progress(label: &str, elapsed: Duration, total: Duration, phase: &str) {
    let width = 30;
    let done = ((elapsed.as_secs_f64() / total.as_secs_f64().max(0.001)) * width as f64).min(width as f64) as usize;
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r{label} [{}{}] {:>3.0}/{:.0} s {phase:<9}",
        "#".repeat(done),
        ".".repeat(width - done),
        elapsed.as_secs_f64(),
        total.as_secs_f64()
    );
    let _ = err.flush();
}

/// Run a window whose tracing happens in the kernel: wait out the
/// alloc+free phase, call `stop_allocs`, wait out the free-only phase,
/// showing progress; Ctrl-C ends it early.
pub fn run_in_kernel(window: Window, label: &str, mut stop_allocs: impl FnMut()) -> WindowOutcome {
    let tty = std::io::stderr().is_terminal();
    if !tty {
        eprintln!("{label}: tracing for {} s (Ctrl-C ends early)", window.total.as_secs());
    }
    let alloc_phase = window.total.mul_f64(f64::from(100 - window.free_only_percent.min(100)) / 100.0);
    let start = Instant::now();
    let mut free_only_started = None;
    let mut interrupted = false;
    loop {
        let elapsed = start.elapsed();
        if crate::signal::interrupted() {
            interrupted = true;
            break;
        }
        if elapsed >= window.total {
            break;
        }
        if free_only_started.is_none() && elapsed >= alloc_phase {
            stop_allocs();
            free_only_started = Some(Instant::now());
        }
        if tty {
            progress(label, elapsed, window.total, if free_only_started.is_none() { "alloc+free" } else { "free only" });
        }
        let next = if free_only_started.is_none() { alloc_phase } else { window.total };
        crate::signal::sleep_interruptible(next.saturating_sub(elapsed).min(Duration::from_millis(250)));
    }
    if free_only_started.is_none() {
        stop_allocs();
    }
    if tty {
        eprintln!();
    }
    WindowOutcome {
        elapsed_s: start.elapsed().as_secs_f64(),
        free_only_s: free_only_started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0),
        interrupted,
        end_ns: crate::trace::perf::monotonic_ns(),
    }
}

/// What the window hands its consumer.
pub enum Event<'a, 'b> {
    /// One sample.
    Sample(&'a Sample<'b>),
    /// Every ring was drained; all samples taken before this CLOCK_MONOTONIC
    /// time have been delivered.
    Drained(u64),
}

/// Run the window, feeding every sample and drain mark to `on_event`.
pub fn run(
    tracer: &mut PerfTracer,
    allocs: &[EventHandle],
    frees: &[EventHandle],
    window: Window,
    label: &str,
    mut on_event: impl FnMut(Event),
) -> anyhow::Result<WindowOutcome> {
    let tty = std::io::stderr().is_terminal();
    if !tty {
        eprintln!("{label}: tracing for {} s (Ctrl-C ends early)", window.total.as_secs());
    }
    let alloc_phase = window.total.mul_f64(f64::from(100 - window.free_only_percent.min(100)) / 100.0);
    for h in frees {
        tracer.enable(*h)?;
    }
    for h in allocs {
        tracer.enable(*h)?;
    }
    let start = Instant::now();
    let mut allocs_on = true;
    let mut free_only_started = None;
    let mut last_progress = Instant::now() - Duration::from_secs(1);
    let mut interrupted = false;
    loop {
        let elapsed = start.elapsed();
        if crate::signal::interrupted() {
            interrupted = true;
            break;
        }
        if elapsed >= window.total {
            break;
        }
        if allocs_on && elapsed >= alloc_phase {
            for h in allocs {
                tracer.disable(*h)?;
            }
            allocs_on = false;
            free_only_started = Some(Instant::now());
        }
        let drained = tracer.poll(Duration::from_millis(100).min(window.total - elapsed), |s| on_event(Event::Sample(s)))?;
        on_event(Event::Drained(drained));
        if tty && last_progress.elapsed() >= Duration::from_millis(250) {
            progress(label, start.elapsed(), window.total, if allocs_on { "alloc+free" } else { "free only" });
            last_progress = Instant::now();
        }
    }
    for h in allocs.iter().chain(frees) {
        tracer.disable(*h)?;
    }
    let drained = tracer.poll(Duration::ZERO, |s| on_event(Event::Sample(s)))?;
    on_event(Event::Drained(drained));
    if tty {
        eprintln!();
    }
    Ok(WindowOutcome {
        elapsed_s: start.elapsed().as_secs_f64(),
        free_only_s: free_only_started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0),
        interrupted,
        end_ns: drained,
    })
}

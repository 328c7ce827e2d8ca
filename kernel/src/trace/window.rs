//! The trace window: alloc+free tracing for (100 − r) % of it, then
//! free-only for r %, so short-lived objects allocated late drop out.
//! Frees are enabled before allocations, so no allocation is seen whose
//! free could be missed. Ctrl-C ends the window early; the caller still
//! reports.

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

/// Where a window reports how far it is: a command line draws a bar, a
/// library user may log or ignore it ([`NoProgress`]).
pub trait Progress {
    /// The window started; it lasts `total`.
    fn start(&self, total: Duration);
    /// The window is at `elapsed`, in `phase` ("alloc+free", "free only").
    fn set(&self, elapsed: Duration, phase: &str);
    /// The window is over.
    fn finish(&self);
}

/// Progress reported nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: Duration) {}
    fn set(&self, _: Duration, _: &str) {}
    fn finish(&self) {}
}

/// The clock of a window: which phase it is in and when it ends, with the
/// progress bar and Ctrl-C. Both kinds of window below step it.
struct Clock<'p> {
    window: Window,
    alloc_phase: Duration,
    start: Instant,
    free_only_started: Option<Instant>,
    interrupted: bool,
    progress: &'p dyn Progress,
}

/// What a window does next.
enum Tick {
    /// Keep tracing for at most this long before asking again.
    Trace(Duration),
    /// The free-only phase begins: stop tracing allocations (once).
    StopAllocs,
    /// The window is over (or interrupted).
    End,
}

impl<'p> Clock<'p> {
    fn new(window: Window, progress: &'p dyn Progress) -> Clock<'p> {
        progress.start(window.total);
        Clock {
            window,
            alloc_phase: window.total.mul_f64(f64::from(100 - window.free_only_percent.min(100)) / 100.0),
            start: Instant::now(),
            free_only_started: None,
            interrupted: false,
            progress,
        }
    }

    fn tick(&mut self) -> Tick {
        let elapsed = self.start.elapsed();
        if crate::signal::interrupted() {
            self.interrupted = true;
            return Tick::End;
        }
        if elapsed >= self.window.total {
            return Tick::End;
        }
        if self.free_only_started.is_none() && elapsed >= self.alloc_phase {
            self.free_only_started = Some(Instant::now());
            return Tick::StopAllocs;
        }
        let (phase, phase_end) = match self.free_only_started {
            None => ("alloc+free", self.alloc_phase),
            Some(_) => ("free only", self.window.total),
        };
        self.progress.set(elapsed, phase);
        Tick::Trace(phase_end - elapsed)
    }

    fn finish(self, end_ns: u64) -> WindowOutcome {
        self.progress.finish();
        WindowOutcome {
            elapsed_s: self.start.elapsed().as_secs_f64(),
            free_only_s: self.free_only_started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0),
            interrupted: self.interrupted,
            end_ns,
        }
    }
}

/// Run a window whose tracing happens in the kernel: wait out the
/// alloc+free phase, call `stop_allocs`, wait out the free-only phase,
/// showing progress; Ctrl-C ends it early. `stop_allocs` runs exactly once.
pub fn run_in_kernel(window: Window, progress: &dyn Progress, mut stop_allocs: impl FnMut()) -> WindowOutcome {
    let mut clock = Clock::new(window, progress);
    loop {
        match clock.tick() {
            Tick::Trace(left) => {
                crate::signal::sleep_interruptible(left.min(Duration::from_millis(250)));
            }
            Tick::StopAllocs => stop_allocs(),
            Tick::End => break,
        }
    }
    if clock.free_only_started.is_none() {
        stop_allocs();
    }
    clock.finish(crate::trace::perf::monotonic_ns())
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
    progress: &dyn Progress,
    mut on_event: impl FnMut(Event),
) -> anyhow::Result<WindowOutcome> {
    for h in frees.iter().chain(allocs) {
        tracer.enable(*h)?;
    }
    let mut clock = Clock::new(window, progress);
    loop {
        match clock.tick() {
            Tick::Trace(left) => {
                let drained = tracer.poll(left.min(Duration::from_millis(100)), |s| on_event(Event::Sample(s)))?;
                on_event(Event::Drained(drained));
            }
            Tick::StopAllocs => {
                for h in allocs {
                    tracer.disable(*h)?;
                }
            }
            Tick::End => break,
        }
    }
    for h in allocs.iter().chain(frees) {
        tracer.disable(*h)?;
    }
    let drained = tracer.poll(Duration::ZERO, |s| on_event(Event::Sample(s)))?;
    on_event(Event::Drained(drained));
    Ok(clock.finish(drained))
}

//! A trace window whose outstanding set lives in the kernel
//! ([`super::bpf_outstanding`]), read back into an
//! [`Outstanding`] at its end. Used by `-t slab` and `-t page`.

use super::bpf_outstanding::{AllocProbe, Followed, FreeProbe, InKernelStats, OutstandingTracer, StackPolicy};

use super::outstanding::{Allocation, Outstanding, Stacks};
use super::window::{self, Window, WindowOutcome};

/// Most entries the in-kernel hash holds: preallocated, ~100 bytes each.
pub const MAX_IN_KERNEL: u32 = 262_144;

/// A window traced in the kernel, read back into `outstanding`.
pub struct InKernelRun {
    /// How the window went.
    pub outcome: WindowOutcome,
    /// What qualifies the result.
    pub stats: InKernelStats,
    /// The followed members no traced free removed, when members were
    /// followed.
    pub followed_left: Option<std::collections::HashSet<u64>>,
}

/// Load, run the window, read back. Loading happens before anything is
/// attached, so a verifier refusal leaves no trace and perf can take over.
pub fn load(
    allocs: &[AllocProbe],
    frees: &[FreeProbe],
    capacity: usize,
    policy: StackPolicy,
    followed: Option<Followed>,
) -> anyhow::Result<OutstandingTracer> {
    Ok(OutstandingTracer::load(allocs, frees, capacity.min(MAX_IN_KERNEL as usize) as u32, policy, followed)?)
}

/// Run the window on a loaded tracer and fill `outstanding` and `stacks`.
pub fn run(
    mut tracer: OutstandingTracer,
    window: Window,
    progress: &dyn window::Progress,
    outstanding: &mut Outstanding,
    stacks: &mut Stacks,
) -> anyhow::Result<InKernelRun> {
    tracer.start()?;
    let outcome = window::run_in_kernel(window, progress, || tracer.stop_allocs());
    tracer.stop();
    let stats = tracer.stats()?;
    let followed_left = tracer.followed_left()?;
    let mut entries = Vec::new();
    let frames = tracer.drain(|e| entries.push(e))?;
    // Stacks come keyed by the program's hash; intern them as ours.
    let mut ours: std::collections::HashMap<u64, Option<u32>> = std::collections::HashMap::new();
    for e in entries {
        let stack = e.stack.and_then(|h| *ours.entry(h).or_insert_with(|| frames.get(&h).and_then(|f| stacks.intern(f))));
        outstanding.alloc(e.key, Allocation { time_ns: e.time_ns, call_site: e.call_site, bytes: e.bytes, stack });
    }
    Ok(InKernelRun { outcome, stats, followed_left })
}

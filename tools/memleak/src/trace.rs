//! Running a trace window and turning the outstanding set into a report.

use std::collections::HashMap;
use std::path::Path;

use sysak_core::procfs::ProcFs;
use sysak_core::symbols::Kallsyms;
use sysak_core::trace::{TracerStats, Tracefs};

use crate::check::Kind;
use crate::options::Options;
use crate::outstanding::{Outstanding, Stacks};
use crate::report::{CallSite, Scan, TraceReport};
use crate::scan::{self, Scanner};
use crate::page::PageTracer;
use crate::slab::{self, SlabTarget, SlabTracer};
use crate::window;

/// Memory for all perf ring buffers together: bursts of samples (a page
/// sample with a 32-frame callchain is ~300 bytes) must fit between two
/// 100 ms drains, yet a 256-CPU host must not spend a gigabyte on rings.
const RING_BUDGET_BYTES: usize = 64 << 20;

/// Pages per CPU ring: the budget shared by the online CPUs, a power of two
/// between 64 pages (256 KiB) and 1024 pages (4 MiB).
fn ring_pages() -> usize {
    let cpus = sysak_core::trace::perf::online_cpus().map(|c| c.len()).unwrap_or(1).max(1);
    let page = crate::check::page_size() as usize;
    let pages = (RING_BUDGET_BYTES / cpus / page).clamp(64, 1024);
    1 << (usize::BITS - 1 - pages.leading_zeros())
}
/// Distinct stacks kept with -s.
const MAX_STACKS: usize = 65_536;


/// `-t slab`.
pub fn slab(procfs: &ProcFs, options: &Options) -> anyhow::Result<TraceReport> {
    let target = slab::choose_target(procfs, options.cache.as_deref())?;
    let tracefs = Tracefs::open()?;
    let symbols = Kallsyms::load(Path::new("/proc"))?;
    let mut traced = SlabTracer::open(&tracefs, &target, options.stacks, ring_pages())?;
    let mut outstanding = Outstanding::new(options.max_tracked);
    let mut stacks = Stacks::new(MAX_STACKS);
    let keep_stacks = options.stacks;
    let label = format!("sysak memleak: slab {}", target.name());
    let SlabTracer { tracer, events } = &mut traced;
    let outcome = window::run(
        tracer,
        &events.allocs,
        &events.frees,
        options.window,
        &label,
        |event| match event {
            window::Event::Sample(sample) => events.apply(sample, &mut outstanding, keep_stacks.then_some(&mut stacks)),
            window::Event::Drained(before) => outstanding.retire(before),
        },
    )?;
    let tracer_stats = tracer.stats();
    drop(traced); // stop tracing before reading memory
    let (cache, cache_reason) = match &target {
        SlabTarget::Cache { stats, reason } => (Some(stats.name.clone()), Some(reason.clone())),
        SlabTarget::All => (Some("all".into()), Some("given with -n all".into())),
    };
    let (scan, marks) = match &target {
        SlabTarget::Cache { stats, .. } => scan_and_mark(procfs, &stats.name, &outstanding, &symbols, options),
        SlabTarget::All => (scan::unavailable("-n all traces every cache; the scan needs one cache"), HashMap::new()),
    };
    let mut report = build_report(Kind::Slab, &outstanding, &stacks, &symbols, &outcome, tracer_stats, options, 1, &marks);
    report.scan = scan;
    report.cache = cache;
    report.cache_reason = cache_reason;
    Ok(report)
}

/// `-t page`.
pub fn page(options: &Options) -> anyhow::Result<TraceReport> {
    let tracefs = Tracefs::open()?;
    let symbols = Kallsyms::load(Path::new("/proc"))?;
    let page_size = crate::check::page_size();
    let mut traced = PageTracer::open(&tracefs, ring_pages(), page_size)?;
    let mut outstanding = Outstanding::new(options.max_tracked);
    let mut stacks = Stacks::new(MAX_STACKS);
    let keep_stacks = options.stacks;
    let PageTracer { tracer, events } = &mut traced;
    let (allocs, frees) = (events.allocs.clone(), events.frees.clone());
    let outcome = window::run(tracer, &allocs, &frees, options.window, "sysak memleak: pages", |event| match event {
        window::Event::Sample(sample) => events.apply(sample, &symbols, &mut outstanding, keep_stacks.then_some(&mut stacks)),
        window::Event::Drained(before) => outstanding.retire(before),
    })?;
    let stats = tracer.stats();
    let mut report = build_report(Kind::Page, &outstanding, &stacks, &symbols, &outcome, stats, options, page_size, &HashMap::new());
    report.scan = scan::unavailable("the similarity scan applies to slab objects, not whole pages");
    report.leak_function_note = None;
    Ok(report)
}

/// Scan the traced cache for its largest cluster of similar objects, then
/// mark the outstanding allocations that resemble it. Never fails the run:
/// when memory cannot be read, the section says why.
fn scan_and_mark(
    procfs: &ProcFs,
    cache: &str,
    outstanding: &Outstanding,
    symbols: &Kallsyms,
    options: &Options,
) -> (Scan, HashMap<u64, u64>) {
    if options.scan.backend == sysak_core::kmem::BackendChoice::None {
        return (scan::unavailable("turned off with --backend none"), HashMap::new());
    }
    let scanner = match Scanner::open(&options.scan, symbols, procfs, Path::new("/proc")) {
        Ok(s) => s,
        Err(why) => return (scan::unavailable(why), HashMap::new()),
    };
    let target = match scanner.cache(cache) {
        Ok(c) => c,
        Err(why) => return (scan::unavailable(why), HashMap::new()),
    };
    eprintln!("sysak memleak: scanning {cache} through {}", scanner.backend());
    let (cluster, stats) = scanner.largest_cluster(target, options.scan.percent);
    let (marks, unreadable) = match &cluster {
        Some(c) => scanner.mark(c, target, outstanding),
        None => (HashMap::new(), 0),
    };
    (scan::section(scanner.backend(), cluster.as_ref(), &stats, unreadable, symbols), marks)
}

/// Outstanding set -> report. `count_unit` divides bytes into the reported
/// count (page size for pages: counts are pages, not allocations).
#[allow(clippy::too_many_arguments)]
fn build_report(
    kind: Kind,
    outstanding: &Outstanding,
    stacks: &Stacks,
    symbols: &Kallsyms,
    outcome: &window::WindowOutcome,
    stats: TracerStats,
    options: &Options,
    count_unit: u64,
    marks: &HashMap<u64, u64>,
) -> TraceReport {
    let sites = outstanding.by_call_site();
    let callsites_total = sites.len();
    let marked: Vec<(String, u64)> = sites.iter().map(|s| (symbols.format(s.call_site), marks.get(&s.call_site).copied().unwrap_or(0))).collect();
    let (leak_function, leak_function_note) = scan::leak_function(&marked);
    let callsites = sites
        .into_iter()
        .take(options.top)
        .map(|s| CallSite {
            function: symbols.format(s.call_site),
            count: if count_unit > 1 { s.bytes / count_unit } else { s.count },
            marked: marks.get(&s.call_site).copied().unwrap_or(0),
            bytes: s.bytes,
            max_age_s: Some(outcome.end_ns.saturating_sub(s.oldest_ns) as f64 / 1e9),
            growth_bytes: None,
            stack: s.stack.map(|id| stacks.get(id).iter().map(|ip| symbols.format(*ip)).collect()).unwrap_or_default(),
        })
        .collect();
    TraceReport {
        kind,
        cache: None,
        cache_reason: None,
        tracer: "perf".into(),
        window_s: outcome.elapsed_s,
        free_only_s: outcome.free_only_s,
        interrupted: outcome.interrupted,
        lost_events: stats.lost,
        untracked_allocations: outstanding.overflow,
        dropped_stacks: stacks.dropped,
        callsites,
        callsites_total,
        scan: Scan::default(),
        leak_function,
        leak_function_note,
    }
}

//! The tracing modes: page allocations and frees over a window, every
//! migratetype, through the page tracepoints memleak uses too
//! ([`sysak_kernel::trace::page::events`]).
//!
//! Everything is bounded: call sites and stacks are capped and what does
//! not fit is counted; outstanding pages are capped like memleak's.

mod bpf;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use sysak_cli::progress::Bar;
use sysak_cli::tracer::{Tracer, TracerChoice};
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::outstanding::{Allocation, Outstanding, Stacks};
use sysak_kernel::trace::page::events::{PageEvent, PageFilter, PageTracer};
use sysak_kernel::trace::window::{self, Window};
use sysak_kernel::trace::Tracefs;

/// Call sites kept for "allocated" totals.
const MAX_SITES: usize = 65_536;
/// Distinct stacks kept.
const MAX_STACKS: usize = 65_536;
/// Distinct gfp values kept.
const MAX_GFP: usize = 4096;
/// Age histogram bucket upper bounds, seconds.
const AGE_BUCKETS: [f64; 5] = [1.0, 10.0, 60.0, 600.0, f64::INFINITY];

/// What to run.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// The window.
    pub window: Window,
    /// Keep and show stacks.
    pub stacks: bool,
    /// BPF: one allocation in 2^sample_shift is unwound for call sites.
    pub sample_shift: u32,
    /// Rows per table.
    pub top: usize,
    /// Most outstanding pages tracked.
    pub max_tracked: usize,
    /// `--tracer`.
    pub tracer: TracerChoice,
    /// `--outstanding`: the pages still held are what is asked (BPF traces
    /// only those; perf traces both).
    pub outstanding: bool,
}

/// By default one page allocation in 2^SAMPLE_SHIFT is unwound for call
/// sites (BPF). The unwind is the dominant cost, about 2 µs whatever the
/// depth on 6.18 (benches/pagealloc-overhead: counting alone 1.20x the
/// workload, 1 in 16 unwound 1.39x, 1 in 64 1.27x); 1 in 64 of a busy
/// window is still thousands of samples.
pub const SAMPLE_SHIFT: u32 = 6;

/// Allocations of one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRate {
    /// Order.
    pub order: u32,
    /// Allocations.
    pub allocations: u64,
    /// Pages (allocations << order).
    pub pages: u64,
    /// Allocations per second.
    pub rate_per_s: f64,
    /// Frees of this order.
    pub frees: u64,
}

/// Pages allocated by migratetype.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrateRate {
    /// Name (Unmovable, Movable, Reclaimable, HighAtomic, or "type N").
    pub migratetype: String,
    /// Pages allocated.
    pub pages: u64,
}

/// Allocations by GFP mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GfpRate {
    /// The mask, "0x…" (names differ by kernel; see the tracepoint's print fmt).
    pub gfp_flags: String,
    /// Allocations.
    pub allocations: u64,
    /// Pages.
    pub pages: u64,
}

/// One call site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    /// `func+0xoff/0xsize [module]`.
    pub function: String,
    /// Allocations (allocated table) or outstanding allocations.
    pub allocations: u64,
    /// Pages.
    pub pages: u64,
    /// Bytes.
    pub bytes: u64,
    /// Oldest outstanding allocation's age (outstanding table only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<f64>,
    /// Allocations unwound behind an estimated row (its relative error is
    /// about 1/√samples); absent when every allocation was unwound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// The commonest stack, with -s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<String>,
}

/// Outstanding pages by age at the window's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgeBucket {
    /// Upper bound in seconds (null: unbounded).
    pub le_s: Option<f64>,
    /// Pages.
    pub pages: u64,
}

/// The report of a traced window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceReport {
    /// "bpf" (counted in the kernel) or "perf" (samples).
    pub tracer: Tracer,
    /// Why BPF was not used, when perf traced instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracer_note: Option<String>,
    /// One allocation in this many had its stack unwound (1: all).
    pub stacks_sampled_every: u64,
    /// Fields that are estimates (scaled from the unwound sample); every
    /// other figure is an exact count.
    pub estimated: Vec<&'static str>,
    /// Whether pages still held were traced (`outstanding`,
    /// `age_histogram`): perf always, BPF with --outstanding only.
    pub outstanding_traced: bool,
    /// Seconds traced.
    pub window_s: f64,
    /// Seconds of it tracing frees only.
    pub free_only_s: f64,
    /// Ended by Ctrl-C.
    pub interrupted: bool,
    /// Events the kernel dropped (perf: samples; BPF: program runs skipped
    /// by recursion): counts are low by that much. Null where the kernel
    /// cannot say (BPF before 5.12).
    pub lost_events: Option<u64>,
    /// Sampled allocations whose stack could not be kept (the BPF stack
    /// table full, or the copy failed): their call site is unknown.
    pub lost_stacks: u64,
    /// Allocations seen.
    pub allocations: u64,
    /// Pages they held.
    pub pages_allocated: u64,
    /// Pages freed.
    pub pages_freed: u64,
    /// By order.
    pub by_order: Vec<OrderRate>,
    /// By migratetype.
    pub by_migratetype: Vec<MigrateRate>,
    /// By GFP mask, most allocations first.
    pub by_gfp: Vec<GfpRate>,
    /// Call sites by pages allocated in the window.
    pub top_allocators: Vec<Site>,
    /// Call sites by pages still held at the end.
    pub outstanding: Vec<Site>,
    /// Outstanding pages by age.
    pub age_histogram: Vec<AgeBucket>,
    /// Allocations whose call site (or, BPF, tally) was not kept: table full.
    pub untracked_sites: u64,
    /// Allocations not tracked as outstanding (table full).
    pub untracked_outstanding: u64,
    /// With -s: every stack (innermost first) weighted by the pages it
    /// allocated in the window, for `--format folded`.
    #[serde(skip)]
    pub allocated_stacks: Vec<(Vec<String>, u64)>,
    /// The same, weighted by the pages still held at the window's end.
    #[serde(skip)]
    pub outstanding_stacks: Vec<(Vec<String>, u64)>,
}

/// Migratetype names (include/linux/mmzone.h: the first three are fixed;
/// 3 is MIGRATE_HIGHATOMIC since 4.4; CMA and ISOLATE follow by config).
fn migratetype_name(mt: i64) -> String {
    match mt {
        0 => "Unmovable".into(),
        1 => "Movable".into(),
        2 => "Reclaimable".into(),
        3 => "HighAtomic".into(),
        n => format!("type {n}"),
    }
}

#[derive(Default)]
pub(crate) struct SiteTotal {
    allocations: u64,
    pages: u64,
    /// Allocations unwound, when the counts are scaled from a sample.
    samples: Option<u64>,
    stacks: HashMap<u32, u64>,
}

#[derive(Default)]
pub(crate) struct Totals {
    by_order: Vec<(u64, u64)>,
    frees_by_order: Vec<u64>,
    by_migratetype: HashMap<i64, u64>,
    by_gfp: HashMap<u64, (u64, u64)>,
    sites: HashMap<u64, SiteTotal>,
    untracked_sites: u64,
    pages_freed: u64,
}

/// Trace a window: in the kernel (BPF) where it can, else perf.
pub fn run(options: &TraceOptions, label: &str) -> anyhow::Result<TraceReport> {
    let why = match options.tracer.try_bpf() {
        Err(why) => why,
        Ok(()) => match bpf::run(options, label)? {
            Ok(report) => return Ok(report),
            Err(why) => why,
        },
    };
    let note = options.tracer.fall_back(&why)?;
    let mut report = run_perf(options, label)?;
    report.tracer_note = note;
    Ok(report)
}

/// The perf fallback: every page allocation sampled with its callchain.
fn run_perf(options: &TraceOptions, label: &str) -> anyhow::Result<TraceReport> {
    let tracefs = Tracefs::open()?;
    let symbols = Kallsyms::load(Path::new("/proc"))?;
    let page_size = sysak_kernel::procfs::page_size();
    let mut traced = PageTracer::open(&tracefs, sysak_kernel::trace::perf::ring_pages(), PageFilter::All)?;
    let mut totals = Totals::default();
    let mut outstanding = Outstanding::new(options.max_tracked);
    let mut stacks = Stacks::new(MAX_STACKS);
    let keep_stacks = options.stacks;
    let (tracer, allocs, frees, decoder) = traced.split();
    let outcome = window::run(tracer, allocs, frees, options.window, &Bar::new(label, "tracing"), |event| match event {
        window::Event::Sample(sample) => {
            let stack = || keep_stacks.then(|| stacks.intern_callchain(sample.callchain)).flatten();
            if let Some(event) = decoder.decode(sample, &symbols) {
                apply(event, sample.time_ns, stack, &mut totals, &mut outstanding, page_size);
            }
        }
        window::Event::Drained(before) => outstanding.retire(before),
    })?;
    let lost_events = tracer.stats().lost;
    drop(traced); // stop tracing before the report is built
    let mut report = report(&totals, &outstanding, &outstanding, &stacks, &symbols, &outcome, options, page_size);
    report.lost_events = Some(lost_events);
    Ok(report)
}

/// Count one event; `stack` interns the sample's callchain (with -s).
fn apply(
    event: PageEvent,
    time_ns: u64,
    stack: impl FnOnce() -> Option<u32>,
    totals: &mut Totals,
    outstanding: &mut Outstanding,
    page_size: u64,
) {
    match event {
        PageEvent::Alloc { pfn, order, gfp_flags, migratetype, call_site } => {
            let pages = 1u64 << order;
            let order = order as usize;
            if totals.by_order.len() <= order {
                totals.by_order.resize(order + 1, (0, 0));
            }
            totals.by_order[order].0 += 1;
            totals.by_order[order].1 += pages;
            *totals.by_migratetype.entry(migratetype).or_default() += pages;
            if totals.by_gfp.len() < MAX_GFP || totals.by_gfp.contains_key(&gfp_flags) {
                let g = totals.by_gfp.entry(gfp_flags).or_default();
                g.0 += 1;
                g.1 += pages;
            }
            let stack = stack();
            if totals.sites.len() < MAX_SITES || totals.sites.contains_key(&call_site) {
                let site = totals.sites.entry(call_site).or_default();
                site.allocations += 1;
                site.pages += pages;
                if let Some(id) = stack {
                    *site.stacks.entry(id).or_default() += pages;
                }
            } else {
                totals.untracked_sites += 1;
            }
            outstanding.alloc(pfn, Allocation { time_ns, call_site, bytes: pages * page_size, stack });
        }
        PageEvent::Free { pfn, order } => {
            let order = order as usize;
            if totals.frees_by_order.len() <= order {
                totals.frees_by_order.resize(order + 1, 0);
            }
            totals.frees_by_order[order] += 1;
            totals.pages_freed += 1 << order;
            outstanding.free(pfn, time_ns);
        }
    }
}

/// The report; `by_site` gives the outstanding call sites (all of
/// `outstanding`, or its sampled part scaled), `outstanding` the totals
/// and ages.
#[allow(clippy::too_many_arguments)]
pub(crate) fn report(
    totals: &Totals,
    outstanding: &Outstanding,
    by_site: &Outstanding,
    stacks: &Stacks,
    symbols: &Kallsyms,
    outcome: &window::WindowOutcome,
    options: &TraceOptions,
    page_size: u64,
) -> TraceReport {
    let seconds = outcome.elapsed_s.max(1e-3);
    let render_stack = |id: Option<u32>| id.map(|id| stacks.get(id).iter().map(|ip| symbols.format(*ip)).collect()).unwrap_or_default();
    let orders = totals.by_order.len().max(totals.frees_by_order.len());
    let by_order = (0..orders)
        .map(|o| {
            let (allocations, pages) = totals.by_order.get(o).copied().unwrap_or((0, 0));
            OrderRate {
                order: o as u32,
                allocations,
                pages,
                rate_per_s: allocations as f64 / seconds,
                frees: totals.frees_by_order.get(o).copied().unwrap_or(0),
            }
        })
        .collect();
    let mut by_migratetype: Vec<MigrateRate> =
        totals.by_migratetype.iter().map(|(mt, pages)| MigrateRate { migratetype: migratetype_name(*mt), pages: *pages }).collect();
    by_migratetype.sort_by_key(|m| std::cmp::Reverse(m.pages));
    let mut by_gfp: Vec<GfpRate> =
        totals.by_gfp.iter().map(|(g, (n, p))| GfpRate { gfp_flags: format!("{g:#x}"), allocations: *n, pages: *p }).collect();
    by_gfp.sort_by(|a, b| b.allocations.cmp(&a.allocations).then(a.gfp_flags.cmp(&b.gfp_flags)));
    by_gfp.truncate(options.top);
    let mut sites: Vec<(&u64, &SiteTotal)> = totals.sites.iter().collect();
    sites.sort_by(|a, b| b.1.pages.cmp(&a.1.pages).then(a.0.cmp(b.0)));
    let top_allocators = sites
        .into_iter()
        .take(options.top)
        .map(|(site, t)| Site {
            function: symbols.format(*site),
            allocations: t.allocations,
            pages: t.pages,
            bytes: t.pages * page_size,
            max_age_s: None,
            samples: t.samples,
            stack: render_stack(t.stacks.iter().max_by_key(|(_, n)| **n).map(|(id, _)| *id)),
        })
        .collect();
    let outstanding_sites = by_site
        .by_call_site()
        .into_iter()
        .take(options.top)
        .map(|s| Site {
            function: symbols.format(s.call_site),
            allocations: s.count,
            pages: s.bytes / page_size,
            bytes: s.bytes,
            max_age_s: Some(outcome.end_ns.saturating_sub(s.oldest_ns) as f64 / 1e9),
            samples: None,
            stack: render_stack(s.stack),
        })
        .collect();
    let mut age_histogram: Vec<AgeBucket> =
        AGE_BUCKETS.iter().map(|le| AgeBucket { le_s: le.is_finite().then_some(*le), pages: 0 }).collect();
    for (_, a) in outstanding.iter() {
        let age = outcome.end_ns.saturating_sub(a.time_ns) as f64 / 1e9;
        let bucket = AGE_BUCKETS.iter().position(|le| age <= *le).unwrap_or(AGE_BUCKETS.len() - 1);
        age_histogram[bucket].pages += a.bytes / page_size;
    }
    TraceReport {
        tracer: Tracer::Perf,
        tracer_note: None,
        stacks_sampled_every: 1,
        estimated: Vec::new(),
        outstanding_traced: true,
        window_s: outcome.elapsed_s,
        free_only_s: outcome.free_only_s,
        interrupted: outcome.interrupted,
        lost_events: None,
        lost_stacks: 0,
        allocations: totals.by_order.iter().map(|(n, _)| n).sum(),
        pages_allocated: totals.by_order.iter().map(|(_, p)| p).sum(),
        pages_freed: totals.pages_freed,
        by_order,
        by_migratetype,
        by_gfp,
        top_allocators,
        outstanding: outstanding_sites,
        age_histogram,
        untracked_sites: totals.untracked_sites,
        untracked_outstanding: outstanding.overflow,
        allocated_stacks: {
            let mut pages: HashMap<u32, u64> = HashMap::new();
            for (id, n) in totals.sites.values().flat_map(|t| t.stacks.iter()) {
                *pages.entry(*id).or_default() += n;
            }
            pages.into_iter().map(|(id, n)| (render_stack(Some(id)), n)).collect()
        },
        outstanding_stacks: by_site.by_stack().into_iter().map(|(id, bytes)| (render_stack(Some(id)), bytes / page_size)).collect(),
    }
}

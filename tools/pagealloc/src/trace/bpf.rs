//! pagealloc in the kernel: nothing travels to user space
//! during the window. Plain `sysak pagealloc` counts allocations — exact
//! tallies by order, migratetype and GFP mask, frees by order
//! ([`sysak_kernel::trace::bpf_tally`]); `--outstanding` keeps the pages
//! still held instead ([`sysak_kernel::trace::bpf_outstanding`]). One
//! job per mode: the outstanding set's insert and delete on every page
//! would triple the cost of counting (benches/pagealloc-overhead). Call
//! sites need an unwound stack: one allocation in 2^`sample_shift` is
//! unwound (`--sample-every`; 1 in 64 by default, every one with -s) and
//! its counts scaled (the report lists those fields as estimates).

use std::path::Path;

use sysak_cli::progress::Bar;
use sysak_cli::tracer::Tracer;
use sysak_kernel::layout::KernelTypes;
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::bpf_outstanding::{OutstandingTracer, StackPolicy};
use sysak_kernel::trace::bpf_tally::{PageTally, TallyRead};
use sysak_kernel::trace::callsite::{CallSiteFinder, PAGE_ALLOCATOR};
use sysak_kernel::trace::in_kernel;
use sysak_kernel::trace::outstanding::{Allocation, Outstanding, Stacks};
use sysak_kernel::trace::page::probes::{outstanding_probes, tally_probes};
use sysak_kernel::trace::window;

use super::{report, Totals, TraceOptions, TraceReport, MAX_GFP, MAX_STACKS};

/// What is loaded for the mode.
enum Loaded {
    Tally(PageTally),
    Outstanding(OutstandingTracer),
}

fn load(types: &KernelTypes, page_size: u64, shift: u32, options: &TraceOptions) -> Result<Loaded, String> {
    if options.outstanding {
        let (allocs, frees) = outstanding_probes(types, page_size, &[])?;
        let policy = if shift == 0 { StackPolicy::Every } else { StackPolicy::Sampled(shift) };
        return in_kernel::load(&allocs, &frees, options.max_tracked, policy, None).map(Loaded::Outstanding).map_err(|e| e.to_string());
    }
    let (args, frees) = tally_probes(types)?;
    PageTally::load(args, &frees, shift).map(Loaded::Tally).map_err(|e| e.to_string())
}

/// Trace a window in the kernel. `Ok(Err(why))`: BPF cannot be used here
/// (nothing was attached), perf should take over.
pub(super) fn run(options: &TraceOptions, label: &str) -> anyhow::Result<Result<TraceReport, String>> {
    let types = match KernelTypes::load(Path::new("/sys/kernel/btf/vmlinux")) {
        Ok(types) => types,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let page_size = sysak_kernel::procfs::page_size();
    let shift = options.sample_shift;
    let loaded = match load(&types, page_size, shift, options) {
        Ok(loaded) => loaded,
        Err(why) => return Ok(Err(why)),
    };
    let symbols = Kallsyms::load(Path::new("/proc"))?;
    let every = 1u64 << shift;
    let mut outstanding = Outstanding::new(options.max_tracked);
    let mut stacks = Stacks::new(MAX_STACKS);
    let mut finder = CallSiteFinder::new(PAGE_ALLOCATOR);
    let bar = Bar::new(label, "tracing");
    let (outcome, totals, lost_events, lost_stacks, untracked) = match loaded {
        Loaded::Tally(mut tally) => {
            tally.start()?;
            let outcome = window::run_in_kernel(options.window, &bar, || {});
            tally.stop();
            let read = tally.read()?;
            let totals = totals(&read, every, options.stacks, &mut stacks, &mut finder, &symbols);
            (outcome, totals, read.recursion_misses, read.stack_failures, read.key_overflow)
        }
        Loaded::Outstanding(tracer) => {
            let run = in_kernel::run(tracer, options.window, &bar, &mut outstanding, &mut stacks)?;
            let s = run.stats;
            (run.outcome, Totals::default(), s.recursion_misses, s.stack_failures, s.insert_failures)
        }
    };
    outstanding.set_call_sites(|a| a.stack.map(|id| finder.find(stacks.get(id), &symbols)).unwrap_or(0));
    // Outstanding call sites: every page when all were unwound; else the
    // unwound sample, scaled. Totals and ages count every page.
    let mut sampled = (every > 1).then(|| {
        let mut s = Outstanding::new(options.max_tracked);
        for (key, a) in outstanding.iter().filter(|(_, a)| a.stack.is_some()) {
            s.alloc(key, Allocation { bytes: a.bytes * every, ..*a });
        }
        s
    });
    if !options.stacks {
        // Stacks found the call sites; shown only with -s.
        outstanding.remap_stacks(|_| None);
        if let Some(s) = sampled.as_mut() {
            s.remap_stacks(|_| None);
        }
    }
    let by_site = sampled.as_ref().unwrap_or(&outstanding);
    let mut r = report(&totals, &outstanding, by_site, &stacks, &symbols, &outcome, options, page_size);
    r.tracer = Tracer::Bpf;
    r.outstanding_traced = options.outstanding;
    r.stacks_sampled_every = every;
    if every > 1 {
        r.estimated = vec![if options.outstanding { "outstanding" } else { "top_allocators" }];
        for site in &mut r.outstanding {
            site.samples = Some(site.allocations);
            site.allocations *= every;
        }
    }
    r.lost_events = lost_events;
    r.lost_stacks = lost_stacks;
    if options.outstanding {
        r.untracked_outstanding += untracked;
    } else {
        r.untracked_sites += untracked;
    }
    Ok(Ok(r))
}

/// The exact tallies, and the call sites of the unwound stacks scaled by
/// `every`.
fn totals(read: &TallyRead, every: u64, keep_stacks: bool, stacks: &mut Stacks, finder: &mut CallSiteFinder, symbols: &Kallsyms) -> Totals {
    let mut totals = Totals::default();
    for t in &read.tallies {
        let order = t.order as usize;
        let pages = t.allocations << t.order;
        if totals.by_order.len() <= order {
            totals.by_order.resize(order + 1, (0, 0));
        }
        totals.by_order[order].0 += t.allocations;
        totals.by_order[order].1 += pages;
        *totals.by_migratetype.entry(t.migratetype as i64).or_default() += pages;
        let gfp = t.gfp as u64;
        if totals.by_gfp.len() < MAX_GFP || totals.by_gfp.contains_key(&gfp) {
            let g = totals.by_gfp.entry(gfp).or_default();
            g.0 += t.allocations;
            g.1 += pages;
        }
    }
    totals.frees_by_order.clone_from(&read.frees_by_order);
    totals.pages_freed = read.frees_by_order.iter().enumerate().map(|(order, n)| n << order).sum();
    for (frames, allocations, pages) in &read.stacks {
        let site = totals.sites.entry(finder.find(frames, symbols)).or_default();
        site.allocations += allocations * every;
        site.samples = (every > 1).then(|| site.samples.unwrap_or(0) + allocations);
        site.pages += pages * every;
        if keep_stacks {
            if let Some(id) = stacks.intern(frames) {
                *site.stacks.entry(id).or_default() += pages * every;
            }
        }
    }
    totals
}

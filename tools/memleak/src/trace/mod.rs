//! Running a trace window and turning the outstanding set into a report.

pub mod counters;
pub mod page;
pub mod slab;
pub mod slab_bpf;
pub mod verdict;
pub mod vmalloc;
pub mod vmap;

use std::collections::HashMap;
use std::path::Path;

use sysak_kernel::kmem::BackendChoice;
use sysak_kernel::layout::KernelTypes;
use sysak_kernel::procfs::ProcFs;
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::bpf_outstanding::{Followed, OutstandingTracer, StackPolicy};
use sysak_kernel::trace::followed::AddressSample;
use sysak_kernel::trace::Tracefs;

use crate::check::Kind;
use crate::options::Options;
use crate::report::{CallSite, Scan, StockReport, TraceReport};
use crate::scan::explain::{self, Explainer};
use crate::scan::stock::{self, Stock};
use crate::scan::{self, Presence, Scanner};
use counters::Growth;
use slab::{SlabTarget, SlabTracer};
use sysak_cli::progress::Bar;
use sysak_cli::tracer::Tracer;
use sysak_kernel::trace::in_kernel;
use sysak_kernel::trace::outstanding::{CallSiteTotal, Outstanding, Stacks};
use sysak_kernel::trace::page::events::{PageFilter, PageTracer};
use sysak_kernel::trace::window::{self, Progress as _};
use verdict::{Evidence, ScanFacts, WindowFacts};
use vmap::VmapTracer;

/// Distinct stacks kept with -s.
const MAX_STACKS: usize = 65_536;
/// vmalloc growth below this is noise (kernel stacks and BPF programs come
/// and go in 16–64 KiB areas).
const VMALLOC_NOISE_BYTES: u64 = 1 << 20;

/// How a window was traced, and what may have made it incomplete.
struct Traced {
    outcome: window::WindowOutcome,
    tracer: Tracer,
    tracer_note: Option<String>,
    lost_events: Option<u64>,
    untracked: u64,
    dropped_stacks: u64,
}

impl Traced {
    /// A window traced in the kernel: a skipped program run (recursion) may
    /// have been a free, a failed insert an allocation.
    fn in_kernel(run: in_kernel::InKernelRun) -> Traced {
        Traced {
            outcome: run.outcome,
            tracer: Tracer::Bpf,
            tracer_note: None,
            lost_events: run.stats.recursion_misses,
            untracked: run.stats.insert_failures,
            dropped_stacks: run.stats.stack_failures,
        }
    }
}

/// `-t slab`.
pub fn slab_window(procfs: &ProcFs, options: &Options) -> anyhow::Result<TraceReport> {
    let mut target = slab::choose_target(procfs, options.cache.as_deref())?;
    if let (SlabTarget::Cache { reason, .. }, Some(why)) = (&mut target, &options.cache_reason) {
        reason.clone_from(why);
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok();
    let (symbols, data_symbols) =
        scan::with_data_symbols(Kallsyms::load(Path::new("/proc"))?, options.scan.system_map.as_deref(), release.as_deref().map(str::trim));
    // Kernel memory serves the scan and, for a named cache, gives the BPF
    // tracer the cache's address.
    let mut scanner = match options.scan.backend {
        BackendChoice::None => Err("turned off with --backend none".to_string()),
        _ => Scanner::open(&options.scan, &symbols, procfs, Path::new("/proc")),
    };
    // The stock is taken before tracing: its scan adds to the run, not to
    // the traced workload.
    let mut stock = match (&target, &mut scanner) {
        (SlabTarget::Cache { stats, .. }, Ok(scanner)) => take_stock(scanner, &stats.name, options),
        (SlabTarget::All, _) => Err("-n all traces every cache; a stock lives in one".to_string()),
        (_, Err(why)) => Err(why.clone()),
    };
    let mut outstanding = Outstanding::new(options.max_tracked);
    let mut stacks = Stacks::new(MAX_STACKS);
    let label = format!("sysak memleak: slab {}", target.name());
    let in_kernel = in_kernel_tracer(options, &target, scanner.as_ref().ok(), stock.as_ref().ok());
    let growth = counters::slab_probe(procfs, &target);
    let traced = match in_kernel {
        Ok((tracer, sample)) => {
            if let (Ok(stock), Some(sample)) = (&mut stock, sample) {
                stock.traced_by(stock::Tracing::Bpf(sample));
            }
            let run = in_kernel::run(tracer, options.window, &Bar::new(&label, "tracing"), &mut outstanding, &mut stacks)?;
            if let (Ok(stock), Some(left)) = (&mut stock, &run.followed_left) {
                stock.left_in_kernel(left);
            }
            Traced::in_kernel(run)
        }
        Err(why) => {
            let note = options.tracer.fall_back(&why)?;
            let mut stock = stock.as_mut().ok();
            if let Some(stock) = stock.as_deref_mut() {
                stock.traced_by(stock::Tracing::Perf);
            }
            let mut traced = trace_slab_with_perf(&target, options, &label, &mut outstanding, &mut stacks, stock)?;
            traced.tracer_note = note;
            traced
        }
    };
    let growth = growth.finish();
    let (cache, cache_reason, cache_note) = match &target {
        SlabTarget::Cache { stats, reason, note, .. } => (Some(stats.name.clone()), Some(reason.clone()), note.clone()),
        SlabTarget::All => (Some("all".into()), Some("given with -n all".into()), None),
    };
    let mut marked = match (&target, &mut scanner) {
        (SlabTarget::Cache { stats, .. }, Ok(scanner)) => scan_and_mark(
            scanner,
            &stats.name,
            &mut outstanding,
            &symbols,
            options,
            stock.as_mut().map_err(|why| why.clone()),
            &traced.outcome,
        ),
        (SlabTarget::All, _) => Marked::unavailable("-n all traces every cache; the scan needs one cache"),
        (_, Err(why)) => Marked::unavailable(why.clone()),
    };
    if marked.scan.backend.is_some() {
        marked.scan.data_symbols = Some(data_symbols.unwrap_or_else(|why| why));
    }
    if marked.stock.is_none() {
        marked.stock = Some(stock::unavailable(marked.scan.unavailable.clone().unwrap_or_default()));
    }
    let mut report = build_report(Kind::Slab, &outstanding, &stacks, &symbols, &traced, options, 1, marked, growth.as_ref());
    report.cache = cache;
    report.cache_reason = cache_reason;
    report.cache_note = cache_note;
    Ok(report)
}

/// Scan the cache `name` and take its stock (see [`crate::scan::stock`]).
fn take_stock(scanner: &mut Scanner, name: &str, options: &Options) -> Result<Stock, String> {
    scanner.refresh_pages(&ProcFs::default())?;
    let cache = scanner.cache(name)?.clone();
    eprintln!("sysak memleak: taking the stock of {name} through {}", scanner.backend());
    Stock::take(scanner, &cache, options.scan.percent)
}

/// The BPF tracer for `target`, loaded (verified) but not attached, with
/// the sample of the stock's members its free programs follow; or why not,
/// in which case perf takes over.
fn in_kernel_tracer(
    options: &Options,
    target: &SlabTarget,
    scanner: Option<&Scanner>,
    stock: Option<&Stock>,
) -> Result<(OutstandingTracer, Option<AddressSample>), String> {
    options.tracer.try_bpf()?;
    let loaded;
    let types = match scanner {
        Some(s) => s.types(),
        None => {
            loaded = KernelTypes::load(&options.scan.btf).map_err(|e| e.to_string())?;
            &loaded
        }
    };
    let cache_address = scanner.and_then(|s| s.cache(target.name()).ok()).map(|c| c.address);
    let (allocs, frees) = slab_bpf::probes(types, target, cache_address)?;
    let policy = if options.stacks { StackPolicy::PerCallSite(slab_bpf::STACKS_PER_CALL_SITE) } else { StackPolicy::None };
    let sample = stock.map(Stock::in_kernel_sample);
    let followed = sample.as_ref().map(|(sample, addresses)| Followed { addresses, sample: *sample });
    let tracer = in_kernel::load(&allocs, &frees, options.max_tracked, policy, followed).map_err(|e| e.to_string())?;
    Ok((tracer, sample.map(|(s, _)| s)))
}

/// The perf fallback: samples with in-kernel filters, the outstanding set
/// in user space.
fn trace_slab_with_perf(
    target: &SlabTarget,
    options: &Options,
    label: &str,
    outstanding: &mut Outstanding,
    stacks: &mut Stacks,
    mut stock: Option<&mut Stock>,
) -> anyhow::Result<Traced> {
    let tracefs = Tracefs::open()?;
    let mut traced = SlabTracer::open(&tracefs, target, options.stacks, sysak_kernel::trace::perf::ring_pages())?;
    let keep_stacks = options.stacks;
    let SlabTracer { tracer, events } = &mut traced;
    let outcome = window::run(tracer, &events.allocs, &events.frees, options.window, &Bar::new(label, "tracing"), |event| match event {
        window::Event::Sample(sample) => {
            let freed = events.apply(sample, outstanding, keep_stacks.then_some(&mut *stacks));
            if let (Some(address), Some(stock)) = (freed, stock.as_deref_mut()) {
                stock.freed(address);
            }
        }
        window::Event::Drained(before) => outstanding.retire(before),
    })?;
    let lost_events = tracer.stats().lost;
    Ok(Traced { outcome, tracer: Tracer::Perf, tracer_note: None, lost_events: Some(lost_events), untracked: 0, dropped_stacks: 0 })
}

/// `-t page`.
pub fn page_window(options: &Options) -> anyhow::Result<TraceReport> {
    let symbols = Kallsyms::load(Path::new("/proc"))?;
    let page_size = crate::check::page_size();
    let mut outstanding = Outstanding::new(options.max_tracked);
    let mut stacks = Stacks::new(MAX_STACKS);
    let label = "sysak memleak: pages";
    let in_kernel = options
        .tracer
        .try_bpf()
        .and_then(|()| KernelTypes::load(&options.scan.btf).map_err(|e| e.to_string()))
        .and_then(|types| page::bpf_probes(&types, page_size))
        .and_then(|(allocs, frees)| {
            in_kernel::load(&allocs, &frees, options.max_tracked, StackPolicy::Every, None).map_err(|e| e.to_string())
        });
    let growth = counters::page_probe();
    let traced = match in_kernel {
        Ok(tracer) => {
            let run = in_kernel::run(tracer, options.window, &Bar::new(label, "tracing"), &mut outstanding, &mut stacks)?;
            page::call_sites_from_stacks(&mut outstanding, &stacks, &symbols);
            Traced::in_kernel(run)
        }
        Err(why) => {
            let note = options.tracer.fall_back(&why)?;
            let mut traced = trace_pages_with_perf(options, label, &symbols, &mut outstanding, &mut stacks)?;
            traced.tracer_note = note;
            traced
        }
    };
    let growth = growth.finish();
    // Pages other meminfo lines account (slab, vmalloc, page tables) are
    // not in the residual the growth measures: not page leaks.
    let backing = page::drop_backing(&mut outstanding, &symbols, page_size);
    if !options.stacks {
        // Stacks found the call sites; show them only when asked.
        outstanding.remap_stacks(|_| None);
    }
    let marked = Marked::unavailable("the similarity scan applies to slab objects, not whole pages");
    let mut report = build_report(Kind::Page, &outstanding, &stacks, &symbols, &traced, options, page_size, marked, growth.as_ref());
    report.excluded_backing_pages = Some(backing);
    Ok(report)
}

fn trace_pages_with_perf(
    options: &Options,
    label: &str,
    symbols: &Kallsyms,
    outstanding: &mut Outstanding,
    stacks: &mut Stacks,
) -> anyhow::Result<Traced> {
    let tracefs = Tracefs::open()?;
    let mut traced = PageTracer::open(&tracefs, sysak_kernel::trace::perf::ring_pages(), PageFilter::Unmovable)?;
    let (keep_stacks, page_size) = (options.stacks, crate::check::page_size());
    let (tracer, allocs, frees, decoder) = traced.split();
    let outcome = window::run(tracer, allocs, frees, options.window, &Bar::new(label, "tracing"), |event| match event {
        window::Event::Sample(sample) => page::apply(decoder, sample, symbols, page_size, outstanding, keep_stacks.then_some(&mut *stacks)),
        window::Event::Drained(before) => outstanding.retire(before),
    })?;
    Ok(Traced { outcome, tracer: Tracer::Perf, tracer_note: None, lost_events: Some(tracer.stats().lost), untracked: 0, dropped_stacks: 0 })
}

/// What the scan found, and the marks it put on outstanding allocations.
struct Marked {
    scan: Scan,
    marks: HashMap<u64, u64>,
    /// Outstanding allocations like the stock, per call site (`None`
    /// without a stock).
    births: Option<HashMap<u64, u64>>,
    stock: Option<StockReport>,
    dropped_as_freed: u64,
    dropped_not_in_cache: u64,
}

impl Marked {
    fn unavailable(why: impl Into<String>) -> Marked {
        Marked {
            scan: scan::unavailable(why),
            marks: HashMap::new(),
            births: None,
            stock: None,
            dropped_as_freed: 0,
            dropped_not_in_cache: 0,
        }
    }
}

/// Scan the traced cache for its largest cluster of similar objects, drop
/// the outstanding allocations the walk finds free or outside the cache,
/// then mark those that resemble the cluster; with a stock, re-read its
/// members in the same walk and count the births into it. Never fails the
/// run: when memory cannot be read, the section says why.
fn scan_and_mark(
    scanner: &mut Scanner,
    cache: &str,
    outstanding: &mut Outstanding,
    symbols: &Kallsyms,
    options: &Options,
    mut stock: Result<&mut Stock, String>,
    window: &window::WindowOutcome,
) -> Marked {
    // Slabs allocated during the window are in the scan too.
    if let Err(why) = scanner.refresh_pages(&ProcFs::default()) {
        return Marked::unavailable(why);
    }
    let target = match scanner.cache(cache) {
        Ok(c) => c.clone(),
        Err(why) => return Marked::unavailable(why),
    };
    eprintln!("sysak memleak: scanning {cache} through {}", scanner.backend());
    let mut presence = Presence::new(outstanding);
    let (clusters, stats) = match &mut stock {
        Ok(stock) => scanner.largest_clusters(&target, options.scan.percent, &mut presence, &mut |a, b| stock.observe(a, b)),
        Err(_) => scanner.largest_clusters(&target, options.scan.percent, &mut presence, &mut |_, _| {}),
    };
    let (dropped_as_freed, dropped_not_in_cache) = scan::drop_absent(outstanding, &mut presence);
    // Marks against the largest cluster now, births against the stock taken
    // before the window: one read of each outstanding allocation for both.
    let cluster_representative = clusters.first().map(|c| &c.representative);
    let stock_representative = stock.as_ref().ok().map(|s| &s.representative);
    let (mut marked, unreadable) = scanner.mark(&[cluster_representative, stock_representative], &target, outstanding);
    let (births, marks) = (marked.pop().unwrap_or_default(), marked.pop().unwrap_or_default());
    let (births, stock) = match stock {
        Ok(stock) => {
            let report = stock.report(&mut presence, births.values().sum(), window.elapsed_s, window.free_only_s);
            (Some(births), report)
        }
        Err(why) => (None, stock::unavailable(why)),
    };
    let vmalloc = ProcFs::default().read_vmallocinfo().unwrap_or_default();
    let explainer = Explainer::new(scanner, symbols, vmalloc);
    let scan = Scan {
        type_candidates: explain::type_candidates(scanner.types(), &target.name, target.object_size as u64),
        ..scan::section(scanner.backend(), &clusters, &stats, unreadable, symbols, &explainer)
    };
    Marked { scan, marks, births, stock: Some(stock), dropped_as_freed, dropped_not_in_cache }
}

/// Outstanding allocations by call site, most first, at most `top`; and
/// how many call sites there were. `count_unit` divides bytes into the
/// reported count (pages for `-t page`).
fn callsites(
    sites: &[CallSiteTotal],
    stacks: &Stacks,
    symbols: &Kallsyms,
    end_ns: u64,
    top: usize,
    count_unit: u64,
    marked: Option<&Marked>,
) -> Vec<CallSite> {
    let count_of = |map: &HashMap<u64, u64>, site: u64| map.get(&site).copied().unwrap_or(0);
    sites
        .iter()
        .take(top)
        .map(|s| CallSite {
            function: symbols.format(s.call_site),
            count: if count_unit > 1 { s.bytes / count_unit } else { s.count },
            marked: marked.map_or(0, |m| count_of(&m.marks, s.call_site)),
            births: marked.and_then(|m| m.births.as_ref()).map(|b| count_of(b, s.call_site)),
            bytes: s.bytes,
            max_age_s: Some(end_ns.saturating_sub(s.oldest_ns) as f64 / 1e9),
            growth_bytes: None,
            stack: s.stack.map(|id| stacks.get(id).iter().map(|ip| symbols.format(*ip)).collect()).unwrap_or_default(),
        })
        .collect()
}

/// `-t vmalloc`: /proc/vmallocinfo at both ends of the window; during it,
/// the vmap tracepoints with callchains where the kernel has them.
pub fn vmalloc_window(procfs: &ProcFs, options: &Options) -> anyhow::Result<TraceReport> {
    let page_size = crate::check::page_size();
    let before = vmalloc::snapshot(procfs, page_size)?;
    let traced = match Tracefs::open() {
        Ok(tracefs) => VmapTracer::open(&tracefs, sysak_kernel::trace::perf::ring_pages())?,
        Err(_) => None,
    };
    let label = "sysak memleak: vmalloc";
    let Some(mut vmap) = traced else {
        let progress = Bar::started(label, "tracing (from /proc/vmallocinfo: no vmap tracepoints)", options.window.total);
        let start = std::time::Instant::now();
        while start.elapsed() < options.window.total && !sysak_kernel::signal::interrupted() {
            sysak_kernel::signal::sleep_interruptible((options.window.total - start.elapsed()).min(std::time::Duration::from_millis(250)));
            progress.set(start.elapsed(), "");
        }
        progress.finish();
        let (mut report, sites, growth) =
            vmalloc::report(&before, &vmalloc::snapshot(procfs, page_size)?, options.top, VMALLOC_NOISE_BYTES);
        report.window_s = start.elapsed().as_secs_f64();
        report.interrupted = sysak_kernel::signal::interrupted();
        fill_verdict(&mut report, &sites, Some(&growth));
        return Ok(report);
    };
    let symbols = Kallsyms::load(Path::new("/proc"))?;
    let mut outstanding = Outstanding::new(options.max_tracked);
    let mut stacks = Stacks::new(MAX_STACKS);
    let keep_stacks = options.stacks;
    let (tracer, allocs, frees, mut events) = vmap.split();
    let outcome = window::run(tracer, allocs, frees, options.window, &Bar::new(label, "tracing"), |event| match event {
        window::Event::Sample(sample) => events.apply(sample, &symbols, &mut outstanding, keep_stacks.then_some(&mut stacks)),
        window::Event::Drained(before) => outstanding.retire(before),
    })?;
    let lost_events = tracer.stats().lost;
    let (mut report, sites, growth) = vmalloc::report(&before, &vmalloc::snapshot(procfs, page_size)?, options.top, VMALLOC_NOISE_BYTES);
    report.tracer = Tracer::VmallocinfoPerf;
    report.window_s = outcome.elapsed_s;
    report.free_only_s = outcome.free_only_s;
    report.interrupted = outcome.interrupted;
    report.lost_events = Some(lost_events);
    report.untracked_allocations = outstanding.overflow;
    report.dropped_stacks = stacks.dropped;
    report.traced_callsites = callsites(&outstanding.by_call_site(), &stacks, &symbols, outcome.end_ns, options.top, 1, None);
    fill_verdict(&mut report, &sites, Some(&growth));
    Ok(report)
}

/// What the scan section adds to the verdict, when it read memory.
fn scan_facts(scan: &Scan) -> Option<ScanFacts> {
    scan.backend.as_ref()?;
    Some(ScanFacts {
        similar: scan.similar_objects.unwrap_or(0),
        scanned: scan.scanned_objects.unwrap_or(0),
        slabs: scan.scanned_slabs,
        changed_slabs: scan.changed_slabs,
        truncated: scan.truncated,
        unreadable_outstanding: scan.unreadable_outstanding,
    })
}

/// Fill in the verdict and the growth figures of `report`.
pub fn fill_verdict(report: &mut TraceReport, sites: &[verdict::Site], growth: Option<&Growth>) {
    let evidence = Evidence {
        kind: report.kind,
        sites,
        scan: scan_facts(&report.scan),
        no_scan_reason: report.scan.unavailable.as_deref(),
        stock: report.stock.as_ref(),
        growth,
        window: WindowFacts {
            window_s: report.window_s,
            free_only_s: report.free_only_s,
            interrupted: report.interrupted,
            lost_events: report.lost_events,
            untracked: report.untracked_allocations,
        },
    };
    let j = verdict::judge(&evidence);
    report.leak = j.leak;
    report.summary = j.summary;
    report.leak_function = j.leak_function;
    report.leak_function_note = j.note;
    report.confidence = j.confidence;
    report.growth_objects = growth.and_then(|g| g.objects);
    report.growth_bytes = growth.map(|g| g.bytes);
    report.growth_noise_bytes = growth.map(|g| g.noise_bytes);
    report.growth_steadiness = growth.and_then(|g| g.steadiness);
    report.growth_source = growth.map(|g| g.source.clone());
}

/// Outstanding set -> report. `count_unit` divides bytes into the reported
/// count (page size for pages: counts are pages, not allocations).
#[allow(clippy::too_many_arguments)]
fn build_report(
    kind: Kind,
    outstanding: &Outstanding,
    stacks: &Stacks,
    symbols: &Kallsyms,
    traced: &Traced,
    options: &Options,
    count_unit: u64,
    marked: Marked,
    growth: Option<&Growth>,
) -> TraceReport {
    let sites = outstanding.by_call_site();
    let verdict_sites: Vec<verdict::Site> = sites
        .iter()
        .map(|s| verdict::Site {
            function: symbols.format(s.call_site),
            count: if count_unit > 1 { s.bytes / count_unit } else { s.count },
            bytes: s.bytes,
            marked: marked.marks.get(&s.call_site).copied().unwrap_or(0),
            births: marked.births.as_ref().map_or(0, |b| b.get(&s.call_site).copied().unwrap_or(0)),
        })
        .collect();
    let mut report = TraceReport {
        tracer_note: traced.tracer_note.clone(),
        stacks_note: (traced.tracer == Tracer::Bpf && options.stacks).then(|| {
            format!(
                "stacks are sampled: the first {} allocations of each call site are unwound, later ones carry the newest of those stacks",
                slab_bpf::STACKS_PER_CALL_SITE
            )
        }),
        window_s: traced.outcome.elapsed_s,
        free_only_s: traced.outcome.free_only_s,
        interrupted: traced.outcome.interrupted,
        lost_events: traced.lost_events,
        untracked_allocations: outstanding.overflow + traced.untracked,
        dropped_stacks: stacks.dropped + traced.dropped_stacks,
        callsites: callsites(&sites, stacks, symbols, traced.outcome.end_ns, options.top, count_unit, Some(&marked)),
        callsites_total: sites.len(),
        weighted_stacks: outstanding
            .by_stack()
            .into_iter()
            .map(|(id, bytes)| (stacks.get(id).iter().map(|ip| symbols.format(*ip)).collect(), bytes / count_unit))
            .collect(),
        dropped_as_freed: marked.dropped_as_freed,
        dropped_not_in_cache: marked.dropped_not_in_cache,
        scan: marked.scan,
        stock: marked.stock,
        ..TraceReport::new(kind, traced.tracer)
    };
    fill_verdict(&mut report, &verdict_sites, growth);
    report
}

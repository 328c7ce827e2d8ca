//! The census: "if it is not a leak, who holds the memory?"
//!
//! The seed's analyst ran `slabtop -s -a`, then `crash kmem -S` and `rd -S`
//! on the top cache. The census does that for the largest unreclaimable
//! caches by bytes: per cache, its top clusters of similar objects with
//! their share and explained words; then the largest vmalloc callers and
//! what the page residual is made of. It judges nothing: the check and the
//! trace give verdicts, the census gives the answer to the next question.
//!
//! Bounded for a production host: a cache larger than
//! [`OBJECTS_PER_CACHE`] is read as a spread sample of its slabs (every
//! k-th), its cluster sizes extrapolated (`similar_objects_estimate`), and
//! the whole census stops scanning after [`TIME_BUDGET`].

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use sysak_cli::progress::Steps;
use sysak_kernel::kmem::BackendChoice;
use sysak_kernel::procfs::{AllocSite, ProcFs, VmallocArea};
use sysak_kernel::symbols::Kallsyms;

use crate::check::{Explained, Usage};
use crate::report::{ClusterSummary, TypeCandidate};
use crate::scan::explain::{self, Explainer};
use crate::scan::{self, Presence, ScanOptions, Scanner};

/// Caches a census scans unless told otherwise (`--census-caches`).
pub const DEFAULT_CACHES: usize = 5;
/// Objects read per cache per pass (three passes): beyond it, a sample.
const OBJECTS_PER_CACHE: u64 = 500_000;
/// The census stops scanning caches after this long; later ones are
/// listed with their bytes and the reason they were not scanned.
const TIME_BUDGET: Duration = Duration::from_secs(8);
/// vmalloc callers and /proc/allocinfo sites shown.
const TOP_SITES: usize = 5;

/// A cache the census looks at, with the kernel's own figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Cache name.
    pub name: String,
    /// Memory it holds.
    pub bytes: u64,
    /// Objects in use.
    pub objects: u64,
}

/// One cache of the census.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheCensus {
    /// Cache name.
    pub cache: String,
    /// Memory the cache holds (slabs × slab size; from the dump's objects
    /// × object size offline).
    pub bytes: u64,
    /// Objects in use.
    pub objects: u64,
    /// Objects read.
    pub scanned_objects: u64,
    /// Only every `sample_stride`-th slab was read (1: all).
    pub sample_stride: u64,
    /// Its largest clusters of similar objects, largest first, with their
    /// representatives' explained words.
    pub clusters: Vec<ClusterSummary>,
    /// Slabs that changed or vanished under the walk and were skipped.
    pub changed_slabs: u64,
    /// BTF types its objects may be (dedicated caches only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub type_candidates: Vec<TypeCandidate>,
    /// Why the cache was not scanned, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_scanned: Option<String>,
    /// Hex + ASCII of the largest cluster's representative: raw kernel
    /// memory, in JSON only with --dump.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dump: Vec<String>,
}

/// vmalloc memory of one caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmallocCaller {
    /// `func+0xoff/0xsize [module]` as /proc/vmallocinfo names it.
    pub caller: String,
    /// Areas held.
    pub areas: u64,
    /// Bytes held (guard pages excluded).
    pub bytes: u64,
}

/// What the "alloc pages" residual of the check is made of, as far as the
/// kernel says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageResidual {
    /// The residual: pages in use that no meminfo line accounts for.
    pub bytes: u64,
    /// Page users already subtracted from it (meminfo lines, per-CPU free
    /// lists, zram).
    pub explained: Vec<Explained>,
    /// The largest allocation sites of /proc/allocinfo (6.10+,
    /// CONFIG_MEM_ALLOC_PROFILING): page and slab allocations by source
    /// line since boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocinfo_top: Option<Vec<AllocSite>>,
    /// Why there is no finer breakdown, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How the census read memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CensusScan {
    /// "kcore", "bpf" or "vmcore"; null when no backend could read memory.
    pub backend: Option<String>,
    /// Why not, when `backend` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Where data symbols for the words come from, or why there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_symbols: Option<String>,
    /// Seconds the census took.
    pub elapsed_s: f64,
}

/// The census, flattened into the check or trace report's JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Census {
    /// The largest unreclaimable caches by bytes, largest first.
    pub census: Vec<CacheCensus>,
    /// The largest vmalloc callers by bytes (empty offline).
    pub vmalloc_callers: Vec<VmallocCaller>,
    /// The page residual's breakdown (live only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_residual: Option<PageResidual>,
    /// How memory was read.
    pub census_scan: CensusScan,
}

/// What to count, and how much to show.
#[derive(Debug, Clone, Copy)]
pub struct CensusOptions {
    /// Caches scanned.
    pub caches: usize,
    /// `--similarity`.
    pub percent: u32,
}

/// The census of this host.
pub fn live(procfs: &ProcFs, scan_options: &ScanOptions, options: CensusOptions, usage: &Usage) -> anyhow::Result<Census> {
    let started = Instant::now();
    let candidates = live_candidates(procfs, options.caches)?;
    let vmalloc = procfs.read_vmallocinfo()?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok();
    let (symbols, data_symbols) =
        scan::with_data_symbols(Kallsyms::load(Path::new("/proc"))?, scan_options.system_map.as_deref(), release.as_deref().map(str::trim));
    let scanner = match scan_options.backend {
        BackendChoice::None => Err("turned off with --backend none".to_string()),
        _ => Scanner::open(scan_options, &symbols, procfs, Path::new("/proc")).and_then(|mut s| s.refresh_pages(procfs).map(|()| s)),
    };
    let mut census = scan_caches(scanner.as_ref(), &symbols, &candidates, vmalloc.clone(), options, started);
    census.census_scan.data_symbols = scanner.is_ok().then(|| data_symbols.unwrap_or_else(|why| why));
    census.vmalloc_callers = vmalloc_callers(&vmalloc, TOP_SITES);
    census.page_residual = Some(page_residual(procfs, usage));
    census.census_scan.elapsed_s = started.elapsed().as_secs_f64();
    Ok(census)
}

/// The census of a memory dump: its caches ranked by the objects its
/// struct slabs count (a dump has no /proc/slabinfo).
pub fn offline(scanner: &Scanner, symbols: &Kallsyms, data_symbols: String, options: CensusOptions) -> Census {
    let started = Instant::now();
    let counts = scanner.objects_by_cache();
    let mut candidates: Vec<Candidate> = scanner
        .caches()
        .iter()
        .filter(|c| !c.reclaimable)
        .map(|c| {
            let objects = counts.get(&c.address).copied().unwrap_or(0);
            Candidate { name: c.name.clone(), bytes: objects * c.size as u64, objects }
        })
        .collect();
    candidates.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    candidates.truncate(options.caches);
    let mut census = scan_caches(Ok(scanner), symbols, &candidates, Vec::new(), options, started);
    census.census_scan.data_symbols = Some(data_symbols);
    census.census_scan.elapsed_s = started.elapsed().as_secs_f64();
    census
}

/// The `n` unreclaimable caches holding the most memory, from
/// /proc/slabinfo and each cache's `reclaim_account`.
pub fn live_candidates(procfs: &ProcFs, n: usize) -> anyhow::Result<Vec<Candidate>> {
    let page_size = sysak_kernel::procfs::page_size();
    let mut candidates: Vec<Candidate> = procfs
        .read_slabinfo()?
        .caches
        .into_iter()
        .filter(|c| procfs.slab_reclaim_account(&c.name) == Some(false))
        .map(|c| Candidate { bytes: c.cache_size_bytes(page_size), objects: c.active_objs, name: c.name })
        .collect();
    candidates.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    candidates.truncate(n);
    Ok(candidates)
}

/// Scan each candidate within the budgets.
fn scan_caches(
    scanner: Result<&Scanner, &String>,
    symbols: &Kallsyms,
    candidates: &[Candidate],
    vmalloc: Vec<VmallocArea>,
    options: CensusOptions,
    started: Instant,
) -> Census {
    let unscanned = |c: &Candidate, why: &str| CacheCensus {
        cache: c.name.clone(),
        bytes: c.bytes,
        objects: c.objects,
        scanned_objects: 0,
        sample_stride: 0,
        clusters: Vec::new(),
        changed_slabs: 0,
        type_candidates: Vec::new(),
        not_scanned: Some(why.to_string()),
        dump: Vec::new(),
    };
    let scanner = match scanner {
        Ok(s) => s,
        Err(why) => {
            return Census {
                census: candidates.iter().map(|c| unscanned(c, "kernel memory cannot be read")).collect(),
                vmalloc_callers: Vec::new(),
                page_residual: None,
                census_scan: CensusScan { unavailable: Some(why.clone()), ..CensusScan::default() },
            }
        }
    };
    let explainer = Explainer::new(scanner, symbols, vmalloc);
    let caches: Vec<_> = candidates.iter().filter_map(|c| scanner.cache(&c.name).ok()).collect();
    let slabs = scanner.slabs_of(&caches);
    let progress = Steps::new("sysak memleak: census", candidates.len() as u64);
    let mut out = Vec::new();
    for (i, candidate) in candidates.iter().enumerate() {
        if sysak_kernel::signal::interrupted() {
            out.push(unscanned(candidate, "interrupted"));
            continue;
        }
        if started.elapsed() > TIME_BUDGET {
            out.push(unscanned(candidate, &format!("the census's time budget of {} s was spent", TIME_BUDGET.as_secs())));
            continue;
        }
        let Ok(cache) = scanner.cache(&candidate.name) else {
            out.push(unscanned(candidate, "not on the kernel's slab_caches list"));
            continue;
        };
        progress.begin(i as u64, &format!("scanning {}", candidate.name));
        let all = slabs.get(&cache.address).map(Vec::as_slice).unwrap_or_default();
        let stride = candidate.objects.div_ceil(OBJECTS_PER_CACHE).max(1);
        let sample: Vec<u64> = all.iter().step_by(stride as usize).copied().collect();
        let (clusters, stats) =
            scanner.clusters_among(&sample, cache, options.percent, OBJECTS_PER_CACHE, &mut Presence::default(), &mut |_, _| {});
        // Sampled: the kernel's count is the whole; else the walk's own.
        let total = if stride > 1 { candidate.objects.max(stats.objects) } else { stats.objects + stats.unread_objects };
        out.push(CacheCensus {
            cache: candidate.name.clone(),
            bytes: candidate.bytes,
            objects: candidate.objects,
            scanned_objects: stats.objects,
            sample_stride: stride,
            clusters: scan::summaries(&clusters, stats.objects, total, Some(&explainer)),
            changed_slabs: stats.corrupt_freelists + stats.inconsistent_slabs + stats.unreadable_slabs,
            type_candidates: explain::type_candidates(scanner.types(), &cache.name, cache.object_size as u64),
            not_scanned: None,
            dump: clusters.first().map(|c| scan::dump(&c.representative.bytes, symbols)).unwrap_or_default(),
        });
    }
    progress.finish();
    Census {
        census: out,
        vmalloc_callers: Vec::new(),
        page_residual: None,
        census_scan: CensusScan { backend: Some(scanner.backend().to_string()), ..CensusScan::default() },
    }
}

/// vmalloc areas grouped by caller, the `n` holding the most bytes.
pub fn vmalloc_callers(areas: &[VmallocArea], n: usize) -> Vec<VmallocCaller> {
    let mut by_caller: std::collections::HashMap<&str, VmallocCaller> = std::collections::HashMap::new();
    for area in areas.iter().filter(|a| a.is_vmalloc()) {
        let caller = area.caller.as_deref().unwrap_or("(no caller)");
        let entry = by_caller.entry(caller).or_insert_with(|| VmallocCaller { caller: caller.to_string(), areas: 0, bytes: 0 });
        entry.areas += 1;
        entry.bytes += area.pages * sysak_kernel::procfs::page_size();
    }
    let mut callers: Vec<VmallocCaller> = by_caller.into_values().collect();
    callers.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.caller.cmp(&b.caller)));
    callers.truncate(n);
    callers
}

fn page_residual(procfs: &ProcFs, usage: &Usage) -> PageResidual {
    let (allocinfo_top, note) = match procfs.read_allocinfo() {
        Ok(Some(mut sites)) => {
            sites.sort_by_key(|s| std::cmp::Reverse(s.bytes));
            sites.truncate(TOP_SITES);
            (Some(sites), None)
        }
        Ok(None) => (
            None,
            Some(
                "no /proc/allocinfo (6.10+, CONFIG_MEM_ALLOC_PROFILING): the residual's allocators are known only by tracing (-t page)"
                    .into(),
            ),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    PageResidual { bytes: usage.alloc_pages, explained: usage.alloc_pages_explained.clone(), allocinfo_top, note }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(caller: Option<&str>, pages: u64, flags: &[&str]) -> VmallocArea {
        VmallocArea {
            start: 0,
            size_bytes: (pages + 1) * 4096,
            caller: caller.map(String::from),
            pages,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn vmalloc_callers_are_summed_and_ranked() {
        let areas = [
            area(Some("a+0x1/0x10"), 2, &["vmalloc"]),
            area(Some("b+0x1/0x10"), 5, &["vmalloc"]),
            area(Some("a+0x1/0x10"), 4, &["vmalloc"]),
            area(Some("c+0x1/0x10"), 9, &["ioremap"]),
        ];
        let callers = vmalloc_callers(&areas, 5);
        let page = sysak_kernel::procfs::page_size();
        assert_eq!(
            callers,
            vec![
                VmallocCaller { caller: "a+0x1/0x10".into(), areas: 2, bytes: 6 * page },
                VmallocCaller { caller: "b+0x1/0x10".into(), areas: 1, bytes: 5 * page },
            ],
            "ioremap is not vmalloc memory"
        );
        assert_eq!(vmalloc_callers(&areas, 1).len(), 1);
    }
}

//! The trace report (`-t slab|page|vmalloc`): outstanding allocations by
//! call site, plus what could make the answer wrong; plain data the modes
//! fill, rendered as a table ([`render`]) or by serde as JSON. JSON per docs/design.md:
//! sizes in bytes, addresses as "0x…" strings, functions as
//! "name+0xoff/0xsize" with " [module]" for module code.

pub mod render;

use serde::Serialize;
use sysak_cli::tracer::Tracer;

use crate::check::Kind;
use crate::scan::rates::Counts;

/// One call site with allocations still outstanding at the window's end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSite {
    /// `func+0xoff/0xsize [module]`, or a raw address.
    pub function: String,
    /// Outstanding allocations (pages for `-t page`, areas for vmalloc).
    pub count: u64,
    /// Of those, how many look like the largest cluster of the memory scan
    /// (0 when the scan could not run).
    pub marked: u64,
    /// Of those, how many look like the stock taken at the window's start
    /// (its births); absent without a stock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub births: Option<u64>,
    /// Outstanding bytes.
    pub bytes: u64,
    /// Age of the oldest outstanding allocation, seconds (traced kinds
    /// only: /proc/vmallocinfo carries no ages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<f64>,
    /// Growth in bytes across the window (vmalloc only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth_bytes: Option<i64>,
    /// The most common kernel stack, innermost first (with `-s`).
    pub stack: Vec<String>,
}

/// The memory scan's section: the largest cluster of similar objects in the
/// traced cache, and what may have made the scan incomplete.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scan {
    /// "bpf" or "kcore"; null when no backend read memory.
    pub backend: Option<String>,
    /// Why not, when `backend` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// The cluster's representative object, "0x…".
    pub object_address: Option<String>,
    /// Objects similar to the representative.
    pub similar_objects: Option<u64>,
    /// Allocated objects of the cache read.
    pub scanned_objects: Option<u64>,
    /// The largest distinct clusters (at most 3), largest first; the first
    /// is the one above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterSummary>,
    /// Hex + ASCII of the representative, symbols named. Raw kernel
    /// memory (it may hold keys or credentials): in JSON only with --dump.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dump: Vec<String>,
    /// Every word of the representative that means something (see
    /// [`crate::scan::explain`]); no object bytes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
    /// Slabs owned by a CPU when read: their per-CPU free objects were
    /// counted as allocated.
    pub per_cpu_slabs: u64,
    /// Slabs of the cache read.
    pub scanned_slabs: u64,
    /// Slabs that changed or vanished under the scan and were skipped.
    pub changed_slabs: u64,
    /// The scan stopped at its object limit.
    pub truncated: bool,
    /// Outstanding allocations that could not be read for marking.
    pub unreadable_outstanding: u64,
    /// Where the dump's data symbols come from ("kallsyms
    /// (CONFIG_KALLSYMS_ALL)", a System.map), or why there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_symbols: Option<String>,
    /// BTF types the cache's objects may be (dedicated caches only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub type_candidates: Vec<TypeCandidate>,
}

/// One cluster of similar objects in the scanned cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSummary {
    /// Objects similar to its representative, of those read.
    pub similar_objects: u64,
    /// When only part of the cache was read (a scan stopped at its object
    /// limit, a census sample): `similar_objects` scaled to the cache's
    /// allocated objects. An extrapolation, not a count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similar_objects_estimate: Option<u64>,
    /// Of the objects read, the share in it.
    pub share: f64,
    /// The representative, "0x…".
    pub object_address: String,
    /// The representative's explained words (census; a trace's scan has
    /// them once, in `scan.words`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

/// `sysak memleak -t …` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceReport {
    /// What was traced.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The slab cache traced (`-t slab`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// Why that cache (automatic pick) or "given with -n".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_reason: Option<String>,
    /// What else the traced cache or tracepoints hold: merged caches
    /// (aliases), other caches of the same object size that a kmalloc
    /// trace cannot tell apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_note: Option<String>,
    /// How allocations were traced: "bpf" (the outstanding set kept in the
    /// kernel), "perf" (samples with in-kernel filters) or "vmallocinfo".
    pub tracer: Tracer,
    /// Why the BPF tracer was not used, when perf traced instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracer_note: Option<String>,
    /// What the stacks shown approximate, when they are sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stacks_note: Option<String>,
    /// Seconds traced.
    pub window_s: f64,
    /// Seconds of the window that traced frees only.
    pub free_only_s: f64,
    /// Ended early by Ctrl-C.
    pub interrupted: bool,
    /// Events the kernel dropped (perf: full ring buffers; BPF: program
    /// runs skipped by recursion): counts may be low and, for lost frees,
    /// outstanding counts high. Null where the kernel cannot say (BPF before
    /// 5.12 has no `recursion_misses`).
    pub lost_events: Option<u64>,
    /// Allocations not tracked because the table was full (--max-tracked).
    pub untracked_allocations: u64,
    /// Stacks not kept because the stack table was full.
    pub dropped_stacks: u64,
    /// Call sites, most outstanding first (at most --top).
    pub callsites: Vec<CallSite>,
    /// `-t vmalloc` where the kernel has vmap tracepoints: vmap areas
    /// reserved in the window and still held at its end, by call site.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traced_callsites: Vec<CallSite>,
    /// Call sites in all, before --top.
    pub callsites_total: usize,
    /// With -s: every stack of the outstanding allocations (innermost
    /// first) with its weight — bytes (slab) or pages (page) — for
    /// `--format folded`. Not in JSON: `callsites[].stack` has the
    /// commonest stack of each call site.
    #[serde(skip)]
    pub weighted_stacks: Vec<(Vec<String>, u64)>,
    /// `-t page`: outstanding pages left out because their call site backs
    /// slab, vmalloc or page tables (accounted in other meminfo lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_backing_pages: Option<crate::trace::page::BackingPages>,
    /// Net growth over the window in objects, from the kernel's own count
    /// (one slab cache only; null otherwise or when not measured).
    pub growth_objects: Option<i64>,
    /// Net growth over the window in bytes: the cache (/proc/slabinfo),
    /// `SUnreclaim` (-n all), the alloc-pages residual (-t page) or vmalloc
    /// (-t vmalloc). Null when it could not be measured.
    pub growth_bytes: Option<i64>,
    /// Growth up to this many bytes is noise (per-CPU slabs and lists).
    pub growth_noise_bytes: Option<u64>,
    /// R² of a straight line through the 1 Hz readings: near 1 for steady
    /// growth, low for a burst (null with fewer than three readings).
    pub growth_steadiness: Option<f64>,
    /// Which counter the growth comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth_source: Option<String>,
    /// Outstanding allocations the slab walk found free at the end (frees
    /// no tracepoint shows: kfree_bulk, kmem_cache_free_bulk, kfree_rcu
    /// batches, BPF recursion misses), dropped from the call sites.
    pub dropped_as_freed: u64,
    /// Outstanding allocations not in the traced cache at all (another
    /// cache of the same object size, traced through kmalloc; or a slab
    /// given back), dropped from the call sites.
    pub dropped_not_in_cache: u64,
    /// The memory scan.
    pub scan: Scan,
    /// Births against deaths of the stock (`-t slab`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stock: Option<StockReport>,
    /// A leak was judged: outstanding allocations at one call site, borne
    /// out by the growth measured over the window. The exit status is 1
    /// exactly when this is true.
    pub leak: bool,
    /// The verdict in one sentence ("leak: …", "no leak: …").
    pub summary: String,
    /// The leaking call site (see [`crate::trace::verdict`]); null when no leak
    /// is judged.
    pub leak_function: Option<String>,
    /// Why `leak_function` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_function_note: Option<String>,
    /// How sure the leak function is (with a leak function only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
}

impl TraceReport {
    /// An empty report of `kind` by `tracer`; callers fill in what they know.
    pub fn new(kind: Kind, tracer: Tracer) -> TraceReport {
        TraceReport {
            kind,
            cache: None,
            cache_reason: None,
            cache_note: None,
            tracer,
            tracer_note: None,
            stacks_note: None,
            window_s: 0.0,
            free_only_s: 0.0,
            interrupted: false,
            lost_events: Some(0),
            untracked_allocations: 0,
            dropped_stacks: 0,
            callsites: Vec::new(),
            callsites_total: 0,
            weighted_stacks: Vec::new(),
            excluded_backing_pages: None,
            traced_callsites: Vec::new(),
            growth_objects: None,
            growth_bytes: None,
            growth_noise_bytes: None,
            growth_steadiness: None,
            growth_source: None,
            dropped_as_freed: 0,
            dropped_not_in_cache: 0,
            scan: Scan::default(),
            stock: None,
            leak: false,
            summary: String::new(),
            leak_function: None,
            leak_function_note: None,
            confidence: None,
        }
    }
}

/// The stock: the members of the largest cluster at the window's start,
/// followed to its end, and the window's allocations that joined it (see
/// [`crate::scan::stock`] and [`crate::scan::rates`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StockReport {
    /// Why there is no stock evidence; the other fields are then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// The representative member at the start.
    pub object_address: Option<String>,
    /// Members at the start (objects like the representative).
    pub members: u64,
    /// Members re-read at the end of the window.
    pub followed: u64,
    /// One member in this many was re-read (1: every one).
    pub followed_every: u64,
    /// How frees of members were traced: "bpf" (a membership test on the
    /// free path, in the kernel), "perf" (every free sample tested in user
    /// space) or "none".
    pub traced_by: String,
    /// Members whose frees were traced.
    pub traced: u64,
    /// One member in this many was traced (chosen by address hash).
    pub traced_every: u64,
    /// Traced members freed during the window, by tracepoint.
    pub deaths_traced: u64,
    /// Re-read members found freed (free in their slab, or the slab gone).
    pub deaths_reread_freed: u64,
    /// Re-read members allocated but no longer like the representative.
    pub deaths_reread_changed: u64,
    /// Re-read members the end walk could not place (a skipped slab).
    pub unknown: u64,
    /// The window's allocations like the representative, still outstanding.
    pub births: u64,
    /// Births against the deaths of the traced members (traced or found
    /// by the re-read).
    pub traced_sample: Option<Counts>,
    /// Births against the deaths the re-read found among every member
    /// re-read (it misses a member freed and replaced by an alike object).
    pub reread: Option<Counts>,
    /// Deaths of the whole stock, estimated (the larger of the two).
    pub deaths_estimate: u64,
    /// Births per second less deaths per second.
    pub net_per_s: f64,
    /// One-sided 99 % lower bound of `net_per_s`.
    pub net_per_s_lower: f64,
    /// The larger p-value of the two tests: births no faster than deaths.
    pub p_value: f64,
    /// Which test.
    pub test: String,
    /// Seconds the scan at the window's start took (before tracing).
    pub scan_s: f64,
}

/// How sure `leak_function` is, from the figures behind it (see
/// [`crate::trace::verdict`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confidence {
    /// "high", "medium" or "low".
    pub level: &'static str,
    /// Of the leak function's outstanding allocations, the share marked.
    pub marked_share: f64,
    /// Of all marked allocations, the share at the leak function.
    pub leak_function_share: f64,
    /// Of the objects scanned in the cache, the share in the largest cluster.
    pub cluster_share: f64,
    /// Of the leak function's outstanding bytes, the share the measured
    /// growth covers (at most 1).
    pub growth_share: f64,
    /// What lowered the level, one phrase each.
    pub reasons: Vec<String>,
    /// The same in one sentence.
    pub summary: String,
}

/// One explained word.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    /// Byte offset in the object.
    pub offset: usize,
    /// The word, "0x…".
    pub value: String,
    /// symbol, slab_object, vmalloc, page, poison, self or kernel.
    pub kind: &'static str,
    /// `name+0x…/0x… [mod]` (symbol).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The pointee's cache (slab_object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// The pointee object's start, "0x…" (slab_object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Offset pointed at inside the pointee (slab_object, self).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_offset: Option<u64>,
    /// vmalloc caller (vmalloc).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// Poison name, or the page frame (poison, page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The pointee's own words (slab_object, two hops at most).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub points_to: Vec<Word>,
}

impl Word {
    /// A word of `kind` at `offset`, the other fields to be filled in.
    pub fn new(offset: usize, value: u64, kind: &'static str) -> Word {
        Word {
            offset,
            value: format!("{value:#x}"),
            kind,
            symbol: None,
            cache: None,
            object: None,
            object_offset: None,
            caller: None,
            name: None,
            points_to: Vec::new(),
        }
    }

    /// One line for the table: `+0x10 slab_object kmalloc-32 0x…+0x8`.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            "symbol" => self.symbol.clone().unwrap_or_default(),
            "slab_object" => format!(
                "{} object {}+{:#x}",
                self.cache.as_deref().unwrap_or("?"),
                self.object.as_deref().unwrap_or("?"),
                self.object_offset.unwrap_or(0)
            ),
            "self" => format!("this object +{:#x}", self.object_offset.unwrap_or(0)),
            "vmalloc" => format!("vmalloc area of {}", self.caller.as_deref().unwrap_or("?")),
            "poison" | "page" => self.name.clone().unwrap_or_default(),
            _ => "kernel memory".into(),
        };
        format!("+{:#05x} {:<11} {what}", self.offset, self.kind)
    }
}

/// A BTF type the objects of a cache may be: labelled a candidate, with
/// the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeCandidate {
    /// `struct NAME`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Why it is a candidate.
    pub evidence: String,
}

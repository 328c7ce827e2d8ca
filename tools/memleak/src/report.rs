//! The trace report (`-t slab|page|vmalloc`): outstanding allocations by
//! call site, plus what could make the answer wrong. JSON per DESIGN.md:
//! sizes in bytes, addresses as "0x…" strings, functions as
//! "name+0xoff/0xsize" with " [module]" for module code.

use serde::Serialize;

use crate::check::Kind;

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
    /// Hex + ASCII of the representative, symbols named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dump: Vec<String>,
    /// Slabs owned by a CPU when read: their per-CPU free objects were
    /// counted as allocated.
    pub per_cpu_slabs: u64,
    /// Slabs that changed or vanished under the scan and were skipped.
    pub changed_slabs: u64,
    /// The scan stopped at its object limit.
    pub truncated: bool,
    /// Outstanding allocations that could not be read for marking.
    pub unreadable_outstanding: u64,
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
    /// How allocations were traced: "bpf" (the outstanding set kept in the
    /// kernel), "perf" (samples with in-kernel filters) or "vmallocinfo".
    pub tracer: String,
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
    /// Samples the kernel dropped (full ring buffers): the counts may be low
    /// and, for lost frees, outstanding counts high.
    pub lost_events: u64,
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
    /// The memory scan.
    pub scan: Scan,
    /// The call site with the most marked allocations; null when none is
    /// marked or two tie.
    pub leak_function: Option<String>,
    /// Why `leak_function` is null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_function_note: Option<String>,
}

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
    /// How sure the leak function is (with a leak function only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
}

impl TraceReport {
    /// An empty report of `kind` by `tracer`; callers fill in what they know.
    pub fn new(kind: Kind, tracer: &str) -> TraceReport {
        TraceReport {
            kind,
            cache: None,
            cache_reason: None,
            tracer: tracer.into(),
            tracer_note: None,
            stacks_note: None,
            window_s: 0.0,
            free_only_s: 0.0,
            interrupted: false,
            lost_events: 0,
            untracked_allocations: 0,
            dropped_stacks: 0,
            callsites: Vec::new(),
            callsites_total: 0,
            traced_callsites: Vec::new(),
            scan: Scan::default(),
            leak_function: None,
            leak_function_note: None,
            confidence: None,
        }
    }
}

/// How sure `leak_function` is, from the figures behind it.
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
    /// The same in one sentence.
    pub summary: String,
}

impl Confidence {
    /// high: ≥ 90 % of the function's allocations marked, ≥ 90 % of all
    /// marks at it, and nothing lost; medium: ≥ 50 % of both; else low.
    pub fn judge(marked: u64, count: u64, all_marks: u64, similar: u64, scanned: u64, lost: u64) -> Confidence {
        let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (marked_share, leak_function_share, cluster_share) = (share(marked, count), share(marked, all_marks), share(similar, scanned));
        let level = match (marked_share, leak_function_share) {
            (m, f) if m >= 0.9 && f >= 0.9 && lost == 0 => "high",
            (m, f) if m >= 0.5 && f >= 0.5 => "medium",
            _ => "low",
        };
        let lost_text = if lost == 0 { "no events lost".to_string() } else { format!("{lost} events lost") };
        let summary = format!(
            "{level}: {:.0}% of its outstanding allocations look like the largest cluster ({:.0}% of the cache's objects), it holds {:.0}% of all marks, {lost_text}",
            marked_share * 100.0,
            cluster_share * 100.0,
            leak_function_share * 100.0
        );
        Confidence { level, marked_share, leak_function_share, cluster_share, summary }
    }
}

#[cfg(test)]
mod tests {
    use super::Confidence;

    #[test]
    fn confidence_levels() {
        assert_eq!(Confidence::judge(980, 1000, 1000, 5000, 7000, 0).level, "high");
        // Lost events cap it: a skipped free may have been one of them.
        assert_eq!(Confidence::judge(980, 1000, 1000, 5000, 7000, 3).level, "medium");
        // Marks spread over call sites.
        assert_eq!(Confidence::judge(600, 1000, 1100, 5000, 7000, 0).level, "medium");
        assert_eq!(Confidence::judge(100, 1000, 150, 5000, 7000, 0).level, "low");
        let c = Confidence::judge(0, 0, 0, 0, 0, 0);
        assert_eq!((c.level, c.marked_share), ("low", 0.0));
        assert!(Confidence::judge(980, 1000, 1000, 5000, 10000, 0)
            .summary
            .starts_with("high: 98% of its outstanding allocations look like the largest cluster (50% of the cache's objects)"));
    }
}

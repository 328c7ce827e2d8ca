//! The call site of an allocation seen through a callchain: the first
//! frame outside the allocator itself and the tracing machinery, so a leak
//! shows as `pipe_write+…` rather than `__alloc_pages+…`.

use std::collections::HashMap;

use crate::symbols::Kallsyms;
use crate::trace::perf::kernel_frames;

/// Function-name fragments of the page allocator.
pub const PAGE_ALLOCATOR: &[&str] = &[
    "alloc_pages",
    "get_free_page",
    "folio_alloc",
    "vma_alloc_folio",
    "alloc_folio",
    "get_page_from_freelist",
    "post_alloc_hook",
    "prep_new_page",
    "rmqueue",
    "alloc_frozen_pages",
    "page_frag_alloc",
    "alloc_page_interleave",
    "alloc_pages_mpol",
];

/// Frames between a tracepoint and the traced function.
const TRACING: [&str; 5] = ["perf_trace", "trace_event_raw", "__traceiter", "perf_tp_event", "__do_trace"];

/// Whether `function` starts, leading underscores aside, with one of the
/// prefixes: `__alloc_pages_noprof` belongs to the page allocator, a
/// module's `leakmod_alloc_pages_one` does not (a substring test would
/// swallow it).
fn is_internal(allocator: &[&str], function: &str) -> bool {
    let name = function.trim_start_matches('_');
    allocator.iter().chain(TRACING.iter()).any(|prefix| name.starts_with(prefix.trim_start_matches('_')))
}

/// Finds call sites, remembering which addresses are allocator frames.
pub struct CallSiteFinder {
    allocator: &'static [&'static str],
    is_internal: HashMap<u64, bool>,
}

impl CallSiteFinder {
    /// Frames whose function name starts with one of the `allocator`
    /// prefixes (leading underscores ignored) are skipped.
    pub fn new(allocator: &'static [&'static str]) -> CallSiteFinder {
        CallSiteFinder { allocator, is_internal: HashMap::new() }
    }

    /// Whether a function belongs to the allocator or to tracing.
    pub fn is_internal_name(&self, function: &str) -> bool {
        is_internal(self.allocator, function)
    }

    /// The first frame of `callchain` (perf's, with context markers) outside
    /// the allocator; the innermost frame when every frame is inside.
    pub fn find(&mut self, callchain: &[u64], symbols: &Kallsyms) -> u64 {
        let allocator = self.allocator;
        let cache = &mut self.is_internal;
        kernel_frames(callchain)
            .find(|ip| !*cache.entry(*ip).or_insert_with(|| symbols.resolve(*ip).is_some_and(|r| is_internal(allocator, r.name))))
            .or_else(|| kernel_frames(callchain).next())
            .unwrap_or(0)
    }
}

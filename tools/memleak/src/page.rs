//! `-t page`: outstanding page allocations by call site. Traced in the
//! kernel where BPF can ([`bpf_probes`]), else with perf through
//! [`sysak_kernel::trace::page_events`] (the decoder pagealloc uses too),
//! movable and reclaimable migratetypes filtered out in the kernel. Pages
//! are keyed by PFN; the call site is the first frame outside the page
//! allocator.

use sysak_kernel::layout::KernelTypes;
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::bpf_outstanding::{AllocProbe, FreeProbe};
use sysak_kernel::trace::callsite::{CallSiteFinder, PAGE_ALLOCATOR};
use sysak_kernel::trace::outstanding::{Allocation, Outstanding, Stacks};
use sysak_kernel::trace::page_events::{PageDecoder, PageEvent};
use sysak_kernel::trace::Sample;

/// Apply one perf sample of the page tracepoints to the outstanding set.
pub fn apply(
    decoder: &mut PageDecoder,
    sample: &Sample,
    symbols: &Kallsyms,
    page_size: u64,
    outstanding: &mut Outstanding,
    stacks: Option<&mut Stacks>,
) {
    match decoder.decode(sample, symbols) {
        Some(PageEvent::Alloc { pfn, order, call_site, .. }) => {
            let stack = stacks.and_then(|s| s.intern_callchain(sample.callchain));
            outstanding.alloc(pfn, Allocation { time_ns: sample.time_ns, call_site, bytes: page_size << order, stack });
        }
        Some(PageEvent::Free { pfn, .. }) => outstanding.free(pfn, sample.time_ns),
        None => {}
    }
}

/// Probes for the in-kernel tracer ([`sysak_kernel::trace::in_kernel`]):
/// pages keyed by struct page, movable (1) and reclaimable (2)
/// migratetypes skipped. These tracepoints carry no call site, so every
/// traced allocation's stack is unwound and the call site is found in it
/// afterwards.
pub fn bpf_probes(types: &KernelTypes, page_size: u64) -> Result<(Vec<AllocProbe>, Vec<FreeProbe>), String> {
    sysak_kernel::trace::page_probes::outstanding_probes(types, page_size, &[1, 2])
}

/// After an in-kernel window: each allocation's call site from its stack.
pub fn call_sites_from_stacks(outstanding: &mut Outstanding, stacks: &Stacks, symbols: &Kallsyms) {
    let mut finder = CallSiteFinder::new(PAGE_ALLOCATOR);
    outstanding.set_call_sites(|a| a.stack.map(|id| finder.find(stacks.get(id), symbols)).unwrap_or(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_frames_are_recognised() {
        let finder = CallSiteFinder::new(PAGE_ALLOCATOR);
        for f in [
            "__alloc_pages_noprof",
            "alloc_pages_mpol",
            "get_page_from_freelist",
            "__folio_alloc_noprof",
            "perf_trace_mm_page_alloc",
            "vma_alloc_folio_noprof",
            "__traceiter_mm_page_alloc",
            "rmqueue_bulk",
        ] {
            assert!(finder.is_internal_name(f), "{f}");
        }
        for f in ["anon_pipe_write", "load_msg", "bond_init", "leakmod_alloc_pages_one"] {
            assert!(!finder.is_internal_name(f), "{f}");
        }
    }
}

//! `-t page`: outstanding page allocations by call site. Traced in the
//! kernel where BPF can ([`bpf_probes`]), else with perf as below.
//!
//! `kmem:mm_page_alloc` with kernel callchains, filtered in the kernel to
//! skip movable (1) and reclaimable (2) migratetypes — user and page-cache
//! memory, which is not what leaks; `kmem:mm_page_free` and, where present,
//! `kmem:mm_page_free_batched` (order-0 frees of page lists) without
//! callchains. Pages are keyed by PFN. The call site is the first frame
//! outside the page allocator, so a leak shows as `pipe_write+…` rather than
//! `__alloc_pages+…`. Field offsets (5.10's `gfp_flags` is 4 bytes, 6.x's 8)
//! come from the format files.

use std::collections::HashMap;

use sysak_cli::tool::EnvironmentError;
use sysak_kernel::layout::{ArgType, KernelTypes};
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::bpf_outstanding::{AllocProbe, Bytes, FreeProbe};
use sysak_kernel::trace::perf::EventHandle;
use sysak_kernel::trace::{Field, PerfTracer, Sample, Tracefs};

use sysak_kernel::trace::callsite::{CallSiteFinder, PAGE_ALLOCATOR};
use sysak_kernel::trace::outstanding::{Allocation, Outstanding, Stacks};

enum Role {
    Alloc { pfn: Field, order: Field },
    Free { pfn: Field },
}

/// The events of a page trace.
pub struct PageTracer {
    /// The perf events and their rings.
    pub tracer: PerfTracer,
    /// Which event is which.
    pub events: PageEvents,
}

/// Event roles plus the per-address allocator-frame cache.
pub struct PageEvents {
    /// Allocation events.
    pub allocs: Vec<EventHandle>,
    /// Free events.
    pub frees: Vec<EventHandle>,
    roles: HashMap<u64, Role>,
    call_sites: CallSiteFinder,
    page_size: u64,
}

impl PageTracer {
    /// Open the events on every CPU (disabled).
    pub fn open(tracefs: &Tracefs, ring_pages: usize, page_size: u64) -> anyhow::Result<PageTracer> {
        let mut tracer = PerfTracer::new(ring_pages)?;
        let mut events = PageEvents {
            allocs: Vec::new(),
            frees: Vec::new(),
            roles: HashMap::new(),
            call_sites: CallSiteFinder::new(PAGE_ALLOCATOR),
            page_size,
        };
        if !tracefs.has_event("kmem", "mm_page_alloc") {
            return Err(EnvironmentError("this kernel has no kmem:mm_page_alloc tracepoint".into()).into());
        }
        let alloc = tracefs.event_format("kmem", "mm_page_alloc")?;
        let filter = alloc.field("migratetype").map(|_| "migratetype != 1 && migratetype != 2");
        events.allocs.push(tracer.add(&alloc, filter, true)?);
        events.roles.insert(alloc.id, Role::Alloc { pfn: alloc.require("pfn")?.clone(), order: alloc.require("order")?.clone() });
        for name in ["mm_page_free", "mm_page_free_batched"] {
            if !tracefs.has_event("kmem", name) {
                continue;
            }
            let free = tracefs.event_format("kmem", name)?;
            events.frees.push(tracer.add(&free, None, false)?);
            events.roles.insert(free.id, Role::Free { pfn: free.require("pfn")?.clone() });
        }
        Ok(PageTracer { tracer, events })
    }
}

impl PageEvents {
    /// Apply one sample; `symbols` resolve frames to find the call site.
    pub fn apply(&mut self, sample: &Sample, symbols: &Kallsyms, outstanding: &mut Outstanding, stacks: Option<&mut Stacks>) {
        match self.roles.get(&sample.event_id) {
            Some(Role::Alloc { pfn, order }) => {
                let (Some(pfn), Some(order)) = (pfn.read_u64(sample.raw), order.read_u64(sample.raw)) else { return };
                if pfn == u64::MAX {
                    return; // failed allocation: pfn is -1
                }
                let call_site = self.call_sites.find(sample.callchain, symbols);
                let stack = stacks.and_then(|s| s.intern_callchain(sample.callchain));
                let bytes = self.page_size << order.min(20);
                outstanding.alloc(pfn, Allocation { time_ns: sample.time_ns, call_site, bytes, stack });
            }
            Some(Role::Free { pfn, .. }) => {
                if let Some(pfn) = pfn.read_u64(sample.raw) {
                    outstanding.free(pfn, sample.time_ns);
                }
            }
            None => {}
        }
    }
}

/// Probes for the in-kernel tracer ([`sysak_kernel::trace::in_kernel`]): raw
/// tracepoints `mm_page_alloc(struct page *, order, gfp, migratetype)`
/// keyed by struct page, movable (1) and reclaimable (2) migratetypes
/// skipped; `mm_page_free(page, order)` and `mm_page_free_batched(page)`.
/// These tracepoints carry no call site, so every traced allocation's stack
/// is unwound and the call site is found in it afterwards.
pub fn bpf_probes(types: &KernelTypes, page_size: u64) -> Result<(Vec<AllocProbe>, Vec<FreeProbe>), String> {
    let page = ArgType::Pointer(Some("page".into()));
    let alloc = match types.raw_tracepoint_args("mm_page_alloc") {
        Some(args) if args.len() >= 4 && args[0] == page && matches!(args[1], ArgType::Int(_)) && matches!(args[3], ArgType::Int(_)) => {
            AllocProbe {
                tracepoint: "mm_page_alloc".into(),
                key_arg: 0,
                call_site_arg: None,
                bytes: Bytes::PageOrder { page_size, order_arg: 1 },
                filter: None,
                exclude: vec![(3, 1), (3, 2)],
            }
        }
        Some(args) => return Err(format!("raw tracepoint mm_page_alloc has an unknown prototype {args:?}")),
        None => return Err("BTF describes no mm_page_alloc raw tracepoint".into()),
    };
    let frees: Vec<FreeProbe> = ["mm_page_free", "mm_page_free_batched"]
        .into_iter()
        .filter(|tp| types.raw_tracepoint_args(tp).is_some_and(|a| a.first() == Some(&page)))
        .map(|tp| FreeProbe { tracepoint: tp.into(), key_arg: 0 })
        .collect();
    if frees.is_empty() {
        return Err("BTF describes no mm_page_free raw tracepoint".into());
    }
    Ok((vec![alloc], frees))
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

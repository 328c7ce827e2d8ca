//! `-t page`: outstanding page allocations by call site. Traced in the
//! kernel where BPF can ([`bpf_probes`]), else with perf through
//! [`sysak_kernel::trace::page::events`] (the decoder pagealloc uses too),
//! movable and reclaimable migratetypes filtered out in the kernel. Pages
//! are keyed by PFN; the call site is the first frame outside the page
//! allocator.

use sysak_kernel::layout::KernelTypes;
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::bpf_outstanding::{AllocProbe, FreeProbe};
use sysak_kernel::trace::callsite::{CallSiteFinder, PAGE_ALLOCATOR};
use sysak_kernel::trace::outstanding::{Allocation, Outstanding, Stacks};
use sysak_kernel::trace::page::events::{PageDecoder, PageEvent};
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
    sysak_kernel::trace::page::probes::outstanding_probes(types, page_size, &[1, 2])
}

/// Pages whose call site puts them in another meminfo line: slab pages
/// (Slab), vmalloc's (VmallocUsed), page tables (PageTables). The check's
/// alloc-pages residual leaves them out, so `-t page` does too, and says
/// how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackingPages {
    /// Slab pages (`allocate_slab`, `new_slab`).
    pub slab: u64,
    /// vmalloc's pages (`__vmalloc_area_node`, `vm_area_alloc_pages`,
    /// `__vmalloc_node_range`).
    pub vmalloc: u64,
    /// Page tables (`pte_alloc_one`, `__pmd_alloc`, `pgd_alloc`, …).
    pub page_tables: u64,
}

/// What a call site's pages back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    Slab,
    Vmalloc,
    PageTables,
}

impl BackingPages {
    fn add(&mut self, kind: Backing, pages: u64) {
        match kind {
            Backing::Slab => self.slab += pages,
            Backing::Vmalloc => self.vmalloc += pages,
            Backing::PageTables => self.page_tables += pages,
        }
    }
}

/// What a call site's pages back, by function name (stable across 5.10 to
/// 6.18 up to the `_noprof` suffixes of 6.10+, which prefixes cover).
fn backing(function: &str) -> Option<Backing> {
    const KINDS: [(Backing, &[&str]); 3] = [
        (Backing::Slab, &["allocate_slab", "new_slab"]),
        (Backing::Vmalloc, &["__vmalloc_area_node", "vm_area_alloc_pages", "__vmalloc_node_range"]),
        (
            Backing::PageTables,
            &["pte_alloc_one", "__pte_alloc", "__pmd_alloc", "__pud_alloc", "__p4d_alloc", "pgd_alloc", "__pte_alloc_kernel"],
        ),
    ];
    KINDS.iter().find(|(_, names)| names.iter().any(|n| function == *n || function.starts_with(&format!("{n}_")))).map(|(kind, _)| *kind)
}

/// Drop the outstanding pages that back slab, vmalloc or page tables;
/// returns how many pages of each.
pub fn drop_backing(outstanding: &mut Outstanding, symbols: &Kallsyms, page_size: u64) -> BackingPages {
    let mut dropped = BackingPages::default();
    let mut kinds: std::collections::HashMap<u64, Option<Backing>> = std::collections::HashMap::new();
    outstanding.retain(|_, a| {
        let kind = *kinds.entry(a.call_site).or_insert_with(|| symbols.resolve(a.call_site).and_then(|r| backing(r.name)));
        match kind {
            Some(kind) => {
                dropped.add(kind, a.bytes / page_size);
                false
            }
            None => true,
        }
    });
    dropped
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
    fn backing_pages_are_told_by_function() {
        assert_eq!(backing("allocate_slab"), Some(Backing::Slab));
        assert_eq!(backing("__vmalloc_node_range_noprof"), Some(Backing::Vmalloc));
        assert_eq!(backing("vm_area_alloc_pages"), Some(Backing::Vmalloc));
        assert_eq!(backing("pte_alloc_one"), Some(Backing::PageTables));
        assert_eq!(backing("__pte_alloc"), Some(Backing::PageTables));
        assert_eq!(backing("anon_pipe_write"), None);
        assert_eq!(backing("leakmod_alloc_pages_one"), None);
        let mut b = BackingPages::default();
        b.add(Backing::PageTables, 3);
        assert_eq!(b.page_tables, 3);
    }

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

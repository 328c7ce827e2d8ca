//! The page tracepoints for BPF programs, their argument positions
//! checked against BTF's `btf_trace_*` prototypes: `mm_page_alloc(struct
//! page *, unsigned int order, gfp_t, int migratetype)`, `mm_page_free(struct
//! page *, unsigned int order)` and `mm_page_free_batched(struct page *)`
//! (the same from 4.x to 6.18). They carry no call site: whoever needs one
//! unwinds the stack.

use crate::layout::{ArgType, KernelTypes};
use crate::trace::bpf_outstanding::{AllocProbe, Bytes, FreeProbe};

/// A free tracepoint and its order's argument (None: order 0).
pub type FreeTracepoint = (&'static str, Option<usize>);

fn page() -> ArgType {
    ArgType::Pointer(Some("page".into()))
}

fn check_alloc(types: &KernelTypes) -> Result<(), String> {
    let args = types.raw_tracepoint_args("mm_page_alloc").ok_or("BTF describes no mm_page_alloc raw tracepoint")?;
    if args.len() >= 4 && args[0] == page() && args[1..4].iter().all(|a| matches!(a, ArgType::Int(_))) {
        Ok(())
    } else {
        Err(format!("raw tracepoint mm_page_alloc has an unknown prototype {args:?}"))
    }
}

/// The free tracepoints this kernel has, with the order's argument (None:
/// `mm_page_free_batched`, order 0).
fn frees(types: &KernelTypes) -> Result<Vec<FreeTracepoint>, String> {
    let mut frees = Vec::new();
    if types.raw_tracepoint_args("mm_page_free").is_some_and(|a| a.len() >= 2 && a[0] == page() && matches!(a[1], ArgType::Int(_))) {
        frees.push(("mm_page_free", Some(1)));
    }
    if types.raw_tracepoint_args("mm_page_free_batched").is_some_and(|a| a.first() == Some(&page())) {
        frees.push(("mm_page_free_batched", None));
    }
    if frees.is_empty() {
        return Err("BTF describes no mm_page_free raw tracepoint".into());
    }
    Ok(frees)
}

/// Where `mm_page_alloc`'s arguments are ([`tally_probes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAllocArgs {
    /// `unsigned int order`.
    pub order: usize,
    /// `gfp_t gfp_flags`.
    pub gfp: usize,
    /// `int migratetype`.
    pub migratetype: usize,
}

/// For [`crate::trace::bpf_tally::PageTally`].
pub fn tally_probes(types: &KernelTypes) -> Result<(PageAllocArgs, Vec<FreeTracepoint>), String> {
    check_alloc(types)?;
    Ok((PageAllocArgs { order: 1, gfp: 2, migratetype: 3 }, frees(types)?))
}

/// For [`crate::trace::bpf_outstanding::OutstandingTracer`]: pages keyed by
/// struct page, sized `page_size << order`; allocations of the
/// migratetypes in `skip` are not traced (memleak skips movable, 1, and
/// reclaimable, 2: they are not leaks).
pub fn outstanding_probes(types: &KernelTypes, page_size: u64, skip: &[u32]) -> Result<(Vec<AllocProbe>, Vec<FreeProbe>), String> {
    check_alloc(types)?;
    let alloc = AllocProbe {
        tracepoint: "mm_page_alloc".into(),
        key_arg: 0,
        call_site_arg: None,
        bytes: Bytes::PageOrder { page_size, order_arg: 1 },
        filter: None,
        exclude: skip.iter().map(|mt| (3, *mt)).collect(),
    };
    let frees = frees(types)?.into_iter().map(|(tp, _)| FreeProbe { tracepoint: tp.into(), key_arg: 0 }).collect();
    Ok((vec![alloc], frees))
}

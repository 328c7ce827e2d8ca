//! Page-allocator tracepoints through perf: `kmem:mm_page_alloc` with
//! kernel callchains, `kmem:mm_page_free` and, where present,
//! `kmem:mm_page_free_batched` (order-0 frees of page lists) without.
//!
//! One decoder for every tool that traces pages: each sample becomes a
//! [`PageEvent`] with its call site — the first frame outside the page
//! allocator ([`crate::trace::callsite`]), so a leak shows as
//! `pipe_write+…` rather than `__alloc_pages+…`. Field offsets come from
//! the format files: 5.10's `gfp_flags` is 4 bytes, 6.x's 8; `order` on
//! frees is absent from `mm_page_free_batched` (order 0).

use std::collections::HashMap;

use crate::symbols::Kallsyms;
use crate::trace::callsite::{CallSiteFinder, PAGE_ALLOCATOR};
use crate::trace::perf::EventHandle;
use crate::trace::{EventFormat, Field, PerfTracer, Sample, Tracefs};

crate::message_error!(
    /// The kernel lacks a page tracepoint, or its format is not understood.
    PageTraceError
);

/// Which allocations to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFilter {
    /// Every allocation.
    All,
    /// Skip movable (1) and reclaimable (2) migratetypes — user and page
    /// cache memory, which is not what leaks. Filtered in the kernel.
    Unmovable,
}

/// One page allocator event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEvent {
    /// Pages allocated.
    Alloc {
        /// Page frame number of the first page.
        pfn: u64,
        /// Order: 2^order pages (at most 20).
        order: u32,
        /// GFP mask as the tracepoint records it.
        gfp_flags: u64,
        /// Migratetype (-1 where the record lacks it).
        migratetype: i64,
        /// First frame outside the page allocator.
        call_site: u64,
    },
    /// Pages freed.
    Free {
        /// Page frame number.
        pfn: u64,
        /// Order (0 for batched frees).
        order: u32,
    },
}

struct AllocFields {
    pfn: Field,
    order: Field,
    gfp: Option<Field>,
    migratetype: Option<Field>,
}

/// The page tracepoints opened on every CPU (disabled until a window
/// enables them), and their decoder.
pub struct PageTracer {
    /// The perf events and their rings.
    pub tracer: PerfTracer,
    /// Allocation events.
    pub allocs: Vec<EventHandle>,
    /// Free events.
    pub frees: Vec<EventHandle>,
    decoder: PageDecoder,
}

/// Turns samples of the page tracepoints into [`PageEvent`]s.
pub struct PageDecoder {
    alloc_id: u64,
    alloc: AllocFields,
    frees: HashMap<u64, (Field, Option<Field>)>,
    call_sites: CallSiteFinder,
}

impl PageTracer {
    /// Open the page tracepoints with kernel callchains on allocations.
    pub fn open(tracefs: &Tracefs, ring_pages: usize, filter: PageFilter) -> anyhow::Result<PageTracer> {
        if !tracefs.has_event("kmem", "mm_page_alloc") {
            return Err(PageTraceError("this kernel has no kmem:mm_page_alloc tracepoint".into()).into());
        }
        let mut tracer = PerfTracer::new(ring_pages)?;
        let alloc: EventFormat = tracefs.event_format("kmem", "mm_page_alloc")?;
        let in_kernel = match filter {
            PageFilter::Unmovable => alloc.field("migratetype").map(|_| "migratetype != 1 && migratetype != 2"),
            PageFilter::All => None,
        };
        let allocs = vec![tracer.add(&alloc, in_kernel, true)?];
        let fields = AllocFields {
            pfn: alloc.require("pfn")?.clone(),
            order: alloc.require("order")?.clone(),
            gfp: alloc.field("gfp_flags").cloned(),
            migratetype: alloc.field("migratetype").cloned(),
        };
        let mut frees = Vec::new();
        let mut free_fields = HashMap::new();
        for name in ["mm_page_free", "mm_page_free_batched"] {
            if !tracefs.has_event("kmem", name) {
                continue;
            }
            let format = tracefs.event_format("kmem", name)?;
            frees.push(tracer.add(&format, None, false)?);
            free_fields.insert(format.id, (format.require("pfn")?.clone(), format.field("order").cloned()));
        }
        let decoder =
            PageDecoder { alloc_id: alloc.id, alloc: fields, frees: free_fields, call_sites: CallSiteFinder::new(PAGE_ALLOCATOR) };
        Ok(PageTracer { tracer, allocs, frees, decoder })
    }

    /// The tracer, the event lists and the decoder, borrowed apart (a
    /// window runs the tracer while its callback decodes).
    pub fn split(&mut self) -> (&mut PerfTracer, &[EventHandle], &[EventHandle], &mut PageDecoder) {
        (&mut self.tracer, &self.allocs, &self.frees, &mut self.decoder)
    }
}

impl PageDecoder {
    /// Decode one sample; `None` for other events, failed allocations (pfn
    /// -1) and garbled records.
    pub fn decode(&mut self, sample: &Sample, symbols: &Kallsyms) -> Option<PageEvent> {
        if sample.event_id == self.alloc_id {
            let f = &self.alloc;
            let (pfn, order) = (f.pfn.read_u64(sample.raw)?, f.order.read_u64(sample.raw)?);
            if pfn == u64::MAX || order > 20 {
                return None;
            }
            return Some(PageEvent::Alloc {
                pfn,
                order: order as u32,
                gfp_flags: f.gfp.as_ref().and_then(|g| g.read_u64(sample.raw)).unwrap_or(0),
                migratetype: f.migratetype.as_ref().and_then(|m| m.read_i64(sample.raw)).unwrap_or(-1),
                call_site: self.call_sites.find(sample.callchain, symbols),
            });
        }
        let (pfn, order) = self.frees.get(&sample.event_id)?;
        let order = order.as_ref().and_then(|o| o.read_u64(sample.raw)).unwrap_or(0).min(20) as u32;
        Some(PageEvent::Free { pfn: pfn.read_u64(sample.raw)?, order })
    }
}

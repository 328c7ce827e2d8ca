//! vmap areas traced with callchains, for `-t vmalloc` on kernels that have
//! the `vmalloc:alloc_vmap_area` and `vmalloc:free_vmap_area_noflush`
//! tracepoints (added in 6.3; 5.10 and 6.1 have none: there
//! /proc/vmallocinfo alone answers). Every vmalloc(), vmap() and ioremap()
//! reserves a vmap area; the call site is the first frame outside vmalloc
//! itself. Sizes include the guard page the kernel adds.

use std::collections::HashMap;

use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::perf::EventHandle;
use sysak_kernel::trace::{Field, PerfTracer, Sample, Tracefs};

use sysak_kernel::trace::callsite::CallSiteFinder;
use sysak_kernel::trace::outstanding::{Allocation, Outstanding, Stacks};

/// Function-name fragments of the vmalloc layer.
pub const VMALLOC_LAYER: &[&str] =
    &["vmalloc", "vzalloc", "vmap", "get_vm_area", "kvmalloc", "kvzalloc", "kvrealloc", "alloc_vmap_area", "__vmalloc"];

enum Role {
    Alloc { addr: Field, size: Field, failed: Option<Field> },
    Free { addr: Field },
}

/// The vmap events and their rings.
pub struct VmapTracer {
    /// The perf events.
    pub tracer: PerfTracer,
    /// Allocation events.
    pub allocs: Vec<EventHandle>,
    /// Free events.
    pub frees: Vec<EventHandle>,
    roles: HashMap<u64, Role>,
    call_sites: CallSiteFinder,
}

impl VmapTracer {
    /// The tracer, or None when this kernel has no vmap tracepoints.
    pub fn open(tracefs: &Tracefs, ring_pages: usize) -> anyhow::Result<Option<VmapTracer>> {
        if !tracefs.has_event("vmalloc", "alloc_vmap_area") || !tracefs.has_event("vmalloc", "free_vmap_area_noflush") {
            return Ok(None);
        }
        let mut tracer = PerfTracer::new(ring_pages)?;
        let mut roles = HashMap::new();
        let alloc = tracefs.event_format("vmalloc", "alloc_vmap_area")?;
        let allocs = vec![tracer.add(&alloc, Some("failed == 0"), true)?];
        roles.insert(
            alloc.id,
            Role::Alloc {
                addr: alloc.require("addr")?.clone(),
                size: alloc.require("size")?.clone(),
                failed: alloc.field("failed").cloned(),
            },
        );
        let free = tracefs.event_format("vmalloc", "free_vmap_area_noflush")?;
        let frees = vec![tracer.add(&free, None, false)?];
        roles.insert(free.id, Role::Free { addr: free.require("va_start")?.clone() });
        Ok(Some(VmapTracer { tracer, allocs, frees, roles, call_sites: CallSiteFinder::new(VMALLOC_LAYER) }))
    }
}

/// Applies samples to an outstanding set (split from the tracer so the
/// window can borrow the tracer while this borrows the rest).
pub struct VmapEvents<'a> {
    roles: &'a HashMap<u64, Role>,
    call_sites: &'a mut CallSiteFinder,
}

impl VmapTracer {
    /// The perf tracer and the sample decoder, borrowed apart.
    pub fn split(&mut self) -> (&mut PerfTracer, &[EventHandle], &[EventHandle], VmapEvents<'_>) {
        (&mut self.tracer, &self.allocs, &self.frees, VmapEvents { roles: &self.roles, call_sites: &mut self.call_sites })
    }
}

impl VmapEvents<'_> {
    /// Apply one sample.
    pub fn apply(&mut self, sample: &Sample, symbols: &Kallsyms, outstanding: &mut Outstanding, stacks: Option<&mut Stacks>) {
        match self.roles.get(&sample.event_id) {
            Some(Role::Alloc { addr, size, failed }) => {
                if failed.as_ref().and_then(|f| f.read_i64(sample.raw)).unwrap_or(0) != 0 {
                    return;
                }
                let (Some(addr), Some(bytes)) = (addr.read_u64(sample.raw), size.read_u64(sample.raw)) else { return };
                let call_site = self.call_sites.find(sample.callchain, symbols);
                let stack = stacks.and_then(|s| s.intern_callchain(sample.callchain));
                outstanding.alloc(addr, Allocation { time_ns: sample.time_ns, call_site, bytes, stack });
            }
            Some(Role::Free { addr }) => {
                if let Some(addr) = addr.read_u64(sample.raw) {
                    outstanding.free(addr, sample.time_ns);
                }
            }
            None => {}
        }
    }
}

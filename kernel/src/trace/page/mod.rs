//! The page allocator's tracepoints (`kmem:mm_page_alloc`, `mm_page_free`,
//! `mm_page_free_batched`), for both tracers: [`events`] decodes perf
//! samples of them, [`probes`] gives BPF programs their argument positions
//! from BTF.

pub mod events;
pub mod probes;

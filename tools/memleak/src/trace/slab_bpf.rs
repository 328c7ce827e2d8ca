//! The BPF probes for `-t slab` (see [`sysak_kernel::trace::in_kernel`]): the preferred
//! tracer where BPF and BTF are available, because frees never travel to
//! user space.
//!
//! Probes, with argument positions checked against BTF:
//! - caches fed by kmalloc ([`crate::trace::slab::Feed`]): raw tracepoint `kmalloc`
//!   (and `kmalloc_node` before 6.1), args `(call_site, ptr, bytes_req,
//!   bytes_alloc, …)`, filtered on `bytes_alloc == <object size>` as the
//!   perf tracer does;
//! - caches fed by kmem_cache_alloc: `kmem_cache_alloc`, whose 6.x
//!   prototype carries the `struct kmem_cache *`: filtered on the cache's
//!   address (found by the memory scanner). 5.10's prototype has no cache
//!   argument: perf is used;
//! - frees: `kfree` and `kmem_cache_free`, `ptr` is argument 1 on every
//!   kernel since 2.6.
//!
//! `-n all` is left to perf (6.x kmem_cache_alloc carries no size).

use sysak_kernel::layout::{ArgType, KernelTypes};
use sysak_kernel::trace::bpf_outstanding::{AllocProbe, Bytes, FreeProbe};

use crate::trace::slab::{Feed, SlabTarget};

/// With -s, stacks unwound per call site; later allocations there carry
/// the newest of them (the unwind costs ~1.8 µs; see the report's note).
pub const STACKS_PER_CALL_SITE: u32 = 8;

/// The probes for `target`, or why BPF cannot trace it.
pub fn probes(types: &KernelTypes, target: &SlabTarget, cache_address: Option<u64>) -> Result<(Vec<AllocProbe>, Vec<FreeProbe>), String> {
    let SlabTarget::Cache { stats, feed, .. } = target else {
        return Err("-n all is traced with perf".into());
    };
    let mut allocs = Vec::new();
    if feed.kmalloc() {
        for tp in ["kmalloc", "kmalloc_node"] {
            match types.raw_tracepoint_args(tp) {
                Some(args) if matches!(args.as_slice(), [ArgType::Int(8), ArgType::Pointer(_), ArgType::Int(8), ArgType::Int(8), ..]) => {
                    allocs.push(AllocProbe {
                        tracepoint: tp.into(),
                        key_arg: 1,
                        call_site_arg: Some(0),
                        bytes: Bytes::Arg(3),
                        filter: Some((3, stats.objsize_bytes)),
                        exclude: Vec::new(),
                    })
                }
                Some(args) => return Err(format!("raw tracepoint {tp} has an unknown prototype {args:?}")),
                None => {}
            }
        }
    }
    // A kmem_buckets-like cache (`msg_msg-256`) is filled through kmalloc;
    // its kmem_cache_alloc side is traced only when its address is known.
    let cache_side = match (feed, cache_address) {
        (Feed::Both, None) => None,
        (_, address) if feed.cache_alloc() => Some(address.ok_or("the cache's address is unknown (kernel memory cannot be read)")?),
        _ => None,
    };
    if let Some(address) = cache_side {
        for tp in ["kmem_cache_alloc", "kmem_cache_alloc_node"] {
            let Some(args) = types.raw_tracepoint_args(tp) else { continue };
            let cache_arg = args.iter().position(|a| *a == ArgType::Pointer(Some("kmem_cache".into())));
            match (cache_arg, args.first(), args.get(1)) {
                (Some(s), Some(ArgType::Int(8)), Some(ArgType::Pointer(_))) => allocs.push(AllocProbe {
                    tracepoint: tp.into(),
                    key_arg: 1,
                    call_site_arg: Some(0),
                    bytes: Bytes::Const(stats.objsize_bytes),
                    filter: Some((s, address)),
                    exclude: Vec::new(),
                }),
                _ => return Err(format!("raw tracepoint {tp} carries no struct kmem_cache (before 6.1); perf is used")),
            }
        }
    }
    if allocs.is_empty() {
        return Err("BTF describes no kmem allocation raw tracepoint".into());
    }
    let frees = ["kfree", "kmem_cache_free"]
        .into_iter()
        .filter(|tp| matches!(types.raw_tracepoint_args(tp).as_deref(), Some([ArgType::Int(8), ArgType::Pointer(_), ..])))
        .map(|tp| FreeProbe { tracepoint: tp.into(), key_arg: 1 })
        .collect::<Vec<_>>();
    if frees.len() != 2 {
        return Err("BTF does not describe kfree and kmem_cache_free as expected".into());
    }
    Ok((allocs, frees))
}

//! `-t slab`: outstanding slab allocations of one cache, by call site.
//!
//! Tracepoints (offsets from each `format` file):
//! - kmalloc buckets (`kmalloc-64`, `kmalloc-cg-96`, 6.11+ `msg_msg-256`):
//!   `kmem:kmalloc` (and `kmem:kmalloc_node` before 6.1) filtered in the
//!   kernel with `bytes_alloc == <object size>`; kmalloc records carry no
//!   cache name, so other buckets of the same size are traced too and tell
//!   themselves apart by call site;
//! - named caches: `kmem:kmem_cache_alloc` (and `_node` before 6.1) with
//!   `name == "<cache>"` where the record has a `name` field (6.x), else
//!   `bytes_alloc == <object size>`;
//! - frees: `kmem:kfree` and `kmem:kmem_cache_free` with `ptr != 0`
//!   (kfree(NULL) is frequent: kernel-notes measured 1 M per 1 M msgsnd).
//!
//! `-n all` traces every slab allocation, unfiltered: expensive, say so.

use std::collections::HashMap;

use sysak_cli::tool::{EnvironmentError, UsageError};
use sysak_kernel::procfs::{ProcFs, SlabCacheStats};
use sysak_kernel::trace::perf::EventHandle;
use sysak_kernel::trace::{EventFormat, Field, PerfTracer, Tracefs};

use sysak_kernel::trace::outstanding::{Allocation, Outstanding, Stacks};

/// What to trace.
#[derive(Debug, Clone)]
pub enum SlabTarget {
    /// One cache.
    Cache {
        /// slabinfo's line for it.
        stats: SlabCacheStats,
        /// Why it was chosen.
        reason: String,
    },
    /// Every slab allocation.
    All,
}

impl SlabTarget {
    /// The cache name, or "all".
    pub fn name(&self) -> &str {
        match self {
            SlabTarget::Cache { stats, .. } => &stats.name,
            SlabTarget::All => "all",
        }
    }
}

/// `kmalloc-64`, `kmalloc-cg-96`, `dma-kmalloc-8k`, `msg_msg-256`: a size
/// bucket filled through kmalloc().
pub fn is_kmalloc_bucket(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(_, size)| {
        let digits = size.strip_suffix('k').unwrap_or(size);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Resolve `-n` (or pick automatically).
pub fn choose_target(procfs: &ProcFs, requested: Option<&str>) -> anyhow::Result<SlabTarget> {
    if requested == Some("all") {
        return Ok(SlabTarget::All);
    }
    let info = procfs.read_slabinfo()?;
    if let Some(name) = requested {
        return match info.caches.iter().find(|c| c.name == name) {
            Some(stats) => Ok(SlabTarget::Cache { stats: stats.clone(), reason: "given with -n".into() }),
            None => {
                let mut names: Vec<&str> = info.caches.iter().map(|c| c.name.as_str()).collect();
                names.sort_unstable();
                Err(UsageError(format!("unknown slab cache '{name}'; valid caches: {}", names.join(", "))).into())
            }
        };
    }
    let unreclaimable: Vec<&SlabCacheStats> = info.caches.iter().filter(|c| procfs.slab_reclaim_account(&c.name) == Some(false)).collect();
    let total: u64 = unreclaimable.iter().map(|c| c.num_objs).sum();
    let best = unreclaimable
        .iter()
        .max_by_key(|c| (c.num_objs, c.num_slabs))
        .ok_or_else(|| EnvironmentError("no unreclaimable slab cache found in /sys/kernel/slab; name one with -n".into()))?;
    Ok(SlabTarget::Cache {
        stats: (*best).clone(),
        reason: format!(
            "the unreclaimable cache with the most objects: {} of {} in {} unreclaimable caches",
            best.num_objs,
            total,
            unreclaimable.len()
        ),
    })
}

#[derive(Debug, Clone)]
enum Role {
    Alloc { ptr: Field, call_site: Field, bytes: Field },
    Free { ptr: Field },
}

/// The tracepoints of one slab trace, opened and filtered.
pub struct SlabTracer {
    /// The perf events and their rings.
    pub tracer: PerfTracer,
    /// Which event is which.
    pub events: SlabEvents,
}

/// The events of a slab trace and how to read their records.
pub struct SlabEvents {
    /// Allocation events.
    pub allocs: Vec<EventHandle>,
    /// Free events.
    pub frees: Vec<EventHandle>,
    roles: HashMap<u64, Role>,
}

fn alloc_role(format: &EventFormat) -> anyhow::Result<Role> {
    Ok(Role::Alloc {
        ptr: format.require("ptr")?.clone(),
        call_site: format.require("call_site")?.clone(),
        bytes: format.require("bytes_alloc")?.clone(),
    })
}

impl SlabTracer {
    /// Open the events for `target` on every CPU (disabled).
    pub fn open(tracefs: &Tracefs, target: &SlabTarget, stacks: bool, ring_pages: usize) -> anyhow::Result<SlabTracer> {
        let mut tracer = PerfTracer::new(ring_pages)?;
        let mut t = SlabEvents { allocs: Vec::new(), frees: Vec::new(), roles: HashMap::new() };
        let (objsize, cache, kmalloc) = match target {
            SlabTarget::Cache { stats, .. } => (Some(stats.objsize_bytes), Some(stats.name.as_str()), is_kmalloc_bucket(&stats.name)),
            SlabTarget::All => (None, None, true),
        };
        let size_filter = objsize.map(|n| format!("bytes_alloc == {n}"));
        // Allocation events, newest kernels first: the *_node variants were
        // folded in by Linux commit 11e9734bcb6a ("mm/slab_common: unify
        // NUMA and UMA version of tracepoints") (v6.1).
        let alloc_events: &[&str] = if kmalloc { &["kmalloc", "kmalloc_node"] } else { &["kmem_cache_alloc", "kmem_cache_alloc_node"] };
        for name in alloc_events {
            if !tracefs.has_event("kmem", name) {
                continue;
            }
            let format = tracefs.event_format("kmem", name)?;
            let filter = match (cache, format.field("name")) {
                (Some(cache), Some(_)) if !kmalloc => Some(format!("name == \"{cache}\"")),
                _ => size_filter.clone(),
            };
            let h = tracer.add(&format, filter.as_deref(), stacks)?;
            t.roles.insert(format.id, alloc_role(&format)?);
            t.allocs.push(h);
        }
        if t.allocs.is_empty() {
            return Err(EnvironmentError("this kernel has no kmem allocation tracepoints (CONFIG_TRACEPOINTS)".into()).into());
        }
        for name in ["kfree", "kmem_cache_free"] {
            let format = tracefs.event_format("kmem", name)?;
            let h = tracer.add(&format, Some("ptr != 0"), false)?;
            t.roles.insert(format.id, Role::Free { ptr: format.require("ptr")?.clone() });
            t.frees.push(h);
        }
        Ok(SlabTracer { tracer, events: t })
    }
}

impl SlabEvents {
    /// Apply one sample to the outstanding set.
    pub fn apply(&self, sample: &sysak_kernel::trace::Sample, outstanding: &mut Outstanding, stacks: Option<&mut Stacks>) {
        match self.roles.get(&sample.event_id) {
            Some(Role::Alloc { ptr, call_site, bytes }) => {
                let (Some(p), Some(site)) = (ptr.read_u64(sample.raw), call_site.read_u64(sample.raw)) else { return };
                if p == 0 {
                    return; // failed allocation
                }
                let stack = stacks.and_then(|s| s.intern_callchain(sample.callchain));
                let bytes = bytes.read_u64(sample.raw).unwrap_or(0);
                outstanding.alloc(p, Allocation { time_ns: sample.time_ns, call_site: site, bytes, stack });
            }
            Some(Role::Free { ptr }) => {
                if let Some(p) = ptr.read_u64(sample.raw) {
                    outstanding.free(p, sample.time_ns);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmalloc_buckets_by_name() {
        for yes in ["kmalloc-64", "kmalloc-cg-96", "kmalloc-rcl-8k", "dma-kmalloc-512", "msg_msg-256"] {
            assert!(is_kmalloc_bucket(yes), "{yes}");
        }
        for no in ["dentry", "ext4_inode_cache", "TCPv6", "kmalloc-", "ip6-frags"] {
            assert!(!is_kmalloc_bucket(no), "{no}");
        }
    }
}

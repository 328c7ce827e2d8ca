//! `-t slab`: outstanding slab allocations of one cache, by call site.
//!
//! Which tracepoints feed a cache is decided from the kernel's own cache
//! list and each cache's object size, never from the shape of a name alone
//! (`bio-120`, `sgpool-64`, `biovec-16` are named caches):
//! - the kmalloc families — `kmalloc-N`, `kmalloc-cg-N`, `kmalloc-rcl-N`,
//!   `dma-kmalloc-N`, `kmalloc-rnd-NN-N` — are filled through kmalloc():
//!   `kmem:kmalloc` (and `kmem:kmalloc_node` before 6.1), filtered with
//!   `bytes_alloc == <object size>`. A kmalloc record carries no cache, so
//!   every cache of that size fed by kmalloc is traced too; the scan then
//!   drops what is not in the traced cache ([`crate::scan`]);
//! - a cache named `<name>-<size>` whose size is its object size, like the
//!   6.11+ kmem_buckets (`msg_msg-256`, `memdup_user-64`), may be fed
//!   either way: both tracepoints are traced;
//! - any other cache: `kmem:kmem_cache_alloc` (and `_node` before 6.1)
//!   with `name == "<cache>"` where the record has a `name` field (6.x), else
//!   `bytes_alloc == <object size>`;
//! - frees: `kmem:kfree` and `kmem:kmem_cache_free` with `ptr != 0`
//!   (kfree(NULL) is frequent: one per SysV msgsnd).
//!
//! SLUB merges compatible caches: a name given with `-n` that is merged
//! into another cache is traced as that cache, and the report says so.
//!
//! `-n all` traces every slab allocation, unfiltered: expensive, say so.

use std::collections::HashMap;

use sysak_cli::output::human_bytes;
use sysak_cli::tool::{EnvironmentError, UsageError};
use sysak_kernel::procfs::{ProcFs, SlabCacheStats};
use sysak_kernel::slab::names::{is_kmalloc_family, parse_cache_size};
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
        /// Which allocation tracepoints fill it.
        feed: Feed,
        /// What else its trace holds (merged caches, other caches of the
        /// same size fed by kmalloc).
        note: Option<String>,
    },
    /// Every slab allocation.
    All,
}

/// Which allocation tracepoints fill a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// kmalloc() only (`kmem:kmalloc`).
    Kmalloc,
    /// kmem_cache_alloc() only (`kmem:kmem_cache_alloc`).
    CacheAlloc,
    /// Either (kmem_buckets and the like).
    Both,
}

impl Feed {
    /// The feed of `name`, whose objects are `object_size` bytes.
    pub fn of(name: &str, object_size: u64) -> Feed {
        if is_kmalloc_family(name) {
            Feed::Kmalloc
        } else if name.rsplit_once('-').and_then(|(_, size)| parse_cache_size(size)) == Some(object_size) {
            Feed::Both
        } else {
            Feed::CacheAlloc
        }
    }

    /// kmalloc's tracepoints are traced.
    pub fn kmalloc(self) -> bool {
        self != Feed::CacheAlloc
    }

    /// kmem_cache_alloc's tracepoints are traced.
    pub fn cache_alloc(self) -> bool {
        self != Feed::Kmalloc
    }
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

/// Resolve `-n` (or pick automatically).
pub fn choose_target(procfs: &ProcFs, requested: Option<&str>) -> anyhow::Result<SlabTarget> {
    if requested == Some("all") {
        return Ok(SlabTarget::All);
    }
    let info = procfs.read_slabinfo()?;
    let page_size = sysak_kernel::procfs::page_size();
    let (stats, reason) = match requested {
        Some(name) => match info.caches.iter().find(|c| c.name == name) {
            Some(stats) => (stats, "given with -n".to_string()),
            None => {
                // A merged name has no line of its own: trace the cache it is.
                let aliases = procfs.slab_aliases(name);
                match info.caches.iter().find(|c| aliases.contains(&c.name)) {
                    Some(stats) => (stats, format!("given with -n {name}, which SLUB merged into {}", stats.name)),
                    None => {
                        let mut names: Vec<&str> = info.caches.iter().map(|c| c.name.as_str()).collect();
                        names.sort_unstable();
                        return Err(UsageError(format!("unknown slab cache '{name}'; valid caches: {}", names.join(", "))).into());
                    }
                }
            }
        },
        None => {
            let unreclaimable: Vec<&SlabCacheStats> =
                info.caches.iter().filter(|c| procfs.slab_reclaim_account(&c.name) == Some(false)).collect();
            let total: u64 = unreclaimable.iter().map(|c| c.cache_size_bytes(page_size)).sum();
            let best = unreclaimable
                .iter()
                .max_by_key(|c| (c.cache_size_bytes(page_size), c.num_objs))
                .ok_or_else(|| EnvironmentError("no unreclaimable slab cache found in /sys/kernel/slab; name one with -n".into()))?;
            let reason = format!(
                "the unreclaimable cache holding the most memory: {} of {} in {} unreclaimable caches",
                human_bytes(best.cache_size_bytes(page_size)),
                human_bytes(total),
                unreclaimable.len()
            );
            (*best, reason)
        }
    };
    let feed = Feed::of(&stats.name, stats.objsize_bytes);
    let note = trace_note(procfs, &info.caches, stats, feed);
    Ok(SlabTarget::Cache { stats: stats.clone(), reason, feed, note })
}

/// What else a trace of `stats` holds, in words.
fn trace_note(procfs: &ProcFs, caches: &[SlabCacheStats], stats: &SlabCacheStats, feed: Feed) -> Option<String> {
    let mut notes = Vec::new();
    let aliases = procfs.slab_aliases(&stats.name);
    if !aliases.is_empty() {
        notes.push(format!(
            "SLUB merged {} into {}: their objects are one cache, traced and counted together",
            aliases.join(", "),
            stats.name
        ));
    }
    if feed.kmalloc() {
        let mut same_size: Vec<&str> = caches
            .iter()
            .filter(|c| c.name != stats.name && c.objsize_bytes == stats.objsize_bytes && Feed::of(&c.name, c.objsize_bytes).kmalloc())
            .map(|c| c.name.as_str())
            .collect();
        same_size.sort_unstable();
        if !same_size.is_empty() {
            notes.push(format!(
                "kmalloc records carry no cache: {}-byte allocations of {} are traced too, and the memory scan drops those outside {}",
                stats.objsize_bytes,
                same_size.join(", "),
                stats.name
            ));
        }
    }
    (!notes.is_empty()).then(|| notes.join("; "))
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
        let (objsize, cache, feed) = match target {
            SlabTarget::Cache { stats, feed, .. } => (Some(stats.objsize_bytes), Some(stats.name.as_str()), *feed),
            SlabTarget::All => (None, None, Feed::Both),
        };
        let size_filter = objsize.map(|n| format!("bytes_alloc == {n}"));
        // Allocation events, newest kernels first: the *_node variants were
        // folded in by Linux commit 11e9734bcb6a ("mm/slab_common: unify
        // NUMA and UMA version of tracepoints") (v6.1).
        let mut alloc_events: Vec<&str> = Vec::new();
        if feed.kmalloc() {
            alloc_events.extend(["kmalloc", "kmalloc_node"]);
        }
        if feed.cache_alloc() {
            alloc_events.extend(["kmem_cache_alloc", "kmem_cache_alloc_node"]);
        }
        for name in alloc_events {
            if !tracefs.has_event("kmem", name) {
                continue;
            }
            let format = tracefs.event_format("kmem", name)?;
            let filter = match (cache, format.field("name")) {
                (Some(cache), Some(_)) if name.starts_with("kmem_cache") => Some(format!("name == \"{cache}\"")),
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
    /// Apply one sample to the outstanding set; a free returns the address
    /// it freed.
    pub fn apply(&self, sample: &sysak_kernel::trace::Sample, outstanding: &mut Outstanding, stacks: Option<&mut Stacks>) -> Option<u64> {
        match self.roles.get(&sample.event_id) {
            Some(Role::Alloc { ptr, call_site, bytes }) => {
                let (Some(p), Some(site)) = (ptr.read_u64(sample.raw), call_site.read_u64(sample.raw)) else { return None };
                if p == 0 {
                    return None; // failed allocation
                }
                let stack = stacks.and_then(|s| s.intern_callchain(sample.callchain));
                let bytes = bytes.read_u64(sample.raw).unwrap_or(0);
                outstanding.alloc(p, Allocation { time_ns: sample.time_ns, call_site: site, bytes, stack });
                None
            }
            Some(Role::Free { ptr }) => {
                let p = ptr.read_u64(sample.raw)?;
                outstanding.free(p, sample.time_ns);
                Some(p)
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the automatic pick counted objects, so a
    /// busy kmalloc-64 won over a kmalloc-4k holding 30 times the memory.
    #[test]
    fn automatic_pick_is_by_bytes() {
        let root = std::env::temp_dir().join(format!("sysak-pick-{}", std::process::id()));
        let proc_root = root.join("proc");
        std::fs::create_dir_all(&proc_root).unwrap();
        std::fs::write(
            proc_root.join("slabinfo"),
            "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
             kmalloc-64        200000 200000     64   64    1 : tunables    0    0    0 : slabdata   3125   3125      0\n\
             kmalloc-4k         96000  96000   4096    8    8 : tunables    0    0    0 : slabdata  12000  12000      0\n\
             dentry            900000 900000    192   21    1 : tunables    0    0    0 : slabdata  42858  42858      0\n",
        )
        .unwrap();
        for (cache, reclaim) in [("kmalloc-64", "0"), ("kmalloc-4k", "0"), ("dentry", "1")] {
            let dir = root.join("sys/kernel/slab").join(cache);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("reclaim_account"), reclaim).unwrap();
        }
        let target = choose_target(&ProcFs::new(&proc_root, root.join("sys")), None).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        let SlabTarget::Cache { stats, reason, feed, .. } = target else { panic!("a cache") };
        assert_eq!((stats.name.as_str(), feed), ("kmalloc-4k", Feed::Kmalloc));
        assert!(reason.starts_with("the unreclaimable cache holding the most memory: 375.0M of "), "{reason}");
    }

    /// Regression: `bio-120` (objects of 128 bytes here),
    /// `sgpool-64` and `biovec-16` are named caches, not kmalloc buckets;
    /// kmem_buckets (`msg_msg-256`) may be fed by either tracepoint.
    #[test]
    fn feeds_come_from_name_and_object_size() {
        assert_eq!(Feed::of("kmalloc-cg-256", 256), Feed::Kmalloc);
        assert_eq!(Feed::of("bio-120", 128), Feed::CacheAlloc);
        assert_eq!(Feed::of("sgpool-64", 2048), Feed::CacheAlloc);
        assert_eq!(Feed::of("biovec-16", 256), Feed::CacheAlloc);
        assert_eq!(Feed::of("msg_msg-256", 256), Feed::Both);
        assert_eq!(Feed::of("memdup_user-8k", 8192), Feed::Both);
        assert_eq!(Feed::of("dentry", 192), Feed::CacheAlloc);
    }
}

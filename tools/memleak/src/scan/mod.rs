//! The memory scan and the marking (memleak part 2).
//!
//! Scan: read every allocated object of the traced cache and find the
//! largest cluster of similar objects ([`sysak_kernel::similarity`]). Mark:
//! read each outstanding traced allocation now and compare it with the
//! cluster's representative; the call site with the most marks is the leak
//! function.

pub mod explain;
pub mod offline;
pub mod rates;
pub mod stock;

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use sysak_kernel::kmem::vmcore::Vmcore;
use sysak_kernel::kmem::{self, BackendChoice, KernelMemory};
use sysak_kernel::layout::{KernelAddresses, KernelTypes, SlabLayout};
use sysak_kernel::procfs::ProcFs;
use sysak_kernel::similarity::{distinct_largest, ClusterSketch, ExactCount, ExclusiveCount, ObjectCluster, Representative};
use sysak_kernel::slab::{caches, lookup, walk, KmemCache, WalkStats};
use sysak_kernel::symbols::Kallsyms;

use crate::report::{ClusterSummary, Scan};
use explain::{Explainer, KernelView};
use sysak_kernel::trace::outstanding::Outstanding;

/// Objects scanned at most per pass: bounds CPU time on huge caches.
const MAX_SCANNED_OBJECTS: u64 = 8_000_000;
/// Data symbols above which kallsyms is taken to have them all
/// (CONFIG_KALLSYMS_ALL lists tens of thousands; without it a handful).
const KALLSYMS_ALL_DATA_SYMBOLS: usize = 1000;
/// Distinct clusters reported per scanned cache.
pub const TOP_CLUSTERS: usize = 3;
/// Bytes of the representative shown in the dump.
const DUMP_BYTES: usize = 128;

/// Where and how to read kernel memory (`--backend`, `--btf`).
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `--backend`.
    pub backend: BackendChoice,
    /// `--btf FILE`, default /sys/kernel/btf/vmlinux.
    pub btf: PathBuf,
    /// `--similarity PCT`.
    pub percent: u32,
    /// `--system-map FILE`.
    pub system_map: Option<PathBuf>,
}

/// Kernel symbols for the dump: kallsyms, plus a System.map's data
/// symbols when kallsyms has none (CONFIG_KALLSYMS_ALL off). Returns the
/// symbols and where data symbols come from, or why there are none.
pub fn with_data_symbols(mut symbols: Kallsyms, explicit: Option<&Path>, release: Option<&str>) -> (Kallsyms, Result<String, String>) {
    if symbols.data_symbols() >= KALLSYMS_ALL_DATA_SYMBOLS {
        return (symbols, Ok("kallsyms (CONFIG_KALLSYMS_ALL)".into()));
    }
    let default = release.map(|r| PathBuf::from(format!("/boot/System.map-{r}")));
    let path = match (explicit, &default) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) if p.exists() => p.clone(),
        _ => {
            return (
                symbols,
                Err("none: kallsyms has none (CONFIG_KALLSYMS_ALL off) and there is no System.map (--system-map FILE); pointers into kernel data are shown raw".into()),
            )
        }
    };
    let source = match std::fs::read_to_string(&path) {
        Ok(text) => symbols.add_system_map(&text).map(|n| format!("{} ({n} data symbols, KASLR-shifted)", path.display())).map_err(|e| e.0),
        Err(e) => Err(format!("{}: {e}", path.display())),
    };
    (symbols, source.map_err(|e| format!("none: {e}")))
}

/// The scan knows x86_64's memory map (direct map, vmemmap, page tables);
/// elsewhere it says so instead of guessing.
fn supported_architecture() -> Result<(), String> {
    if cfg!(target_arch = "x86_64") {
        Ok(())
    } else {
        Err(format!("the memory scan supports x86_64 only, not {}", std::env::consts::ARCH))
    }
}

/// Kernel memory, opened and understood.
pub struct Scanner {
    mem: Box<dyn KernelMemory>,
    types: KernelTypes,
    layout: SlabLayout,
    addrs: KernelAddresses,
    pfns: Vec<u64>,
    caches: Vec<KmemCache>,
}

impl Scanner {
    /// Open the backend and find everything a slab walk needs. The error is
    /// the one-line reason the report shows as "unavailable".
    pub fn open(options: &ScanOptions, symbols: &Kallsyms, procfs: &ProcFs, proc_root: &Path) -> Result<Scanner, String> {
        supported_architecture()?;
        let mem = kmem::open(options.backend, proc_root)?;
        let types = KernelTypes::load(&options.btf).map_err(|e| e.to_string())?;
        let layout = SlabLayout::from_btf(&types).map_err(|e| e.to_string())?;
        let addrs = KernelAddresses::discover(mem.as_ref(), symbols, procfs, mem.direct_map_hint())?;
        // A few slab pages find the cache list; the scan takes a full
        // snapshot later (refresh_pages), after the trace window.
        let some_pfns = procfs.read_slab_pfns_up_to(64).map_err(|e| e.to_string())?;
        let any = walk::any_cache(mem.as_ref(), &layout, &addrs, &some_pfns)?;
        let image = symbols.address_of("_text").ok_or("kallsyms has no _text")?;
        let caches = match symbols.address_of("slab_caches") {
            // KALLSYMS_ALL: start from the list head itself.
            Some(head) => caches::list_caches(
                mem.as_ref(),
                &layout,
                mem.read_u64(head).map_err(|e| e.to_string())? - layout.cache.list as u64,
                image,
            )?,
            None => caches::list_caches(mem.as_ref(), &layout, any.address, image)?,
        };
        Ok(Scanner { mem, types, layout, addrs, pfns: Vec::new(), caches })
    }

    /// A memory dump, offline: kallsyms of the dumped kernel must have
    /// `page_offset_base` and `vmemmap_base` (CONFIG_KALLSYMS_ALL, as distro
    /// kernels do), or VMCOREINFO `SYMBOL(vmemmap)` with an unrandomised
    /// direct map. Slab pages are found by reading the whole memory map.
    pub fn open_offline(vmcore: &Path, btf: &Path, symbols: &Kallsyms) -> Result<Scanner, String> {
        supported_architecture()?;
        let core = Vmcore::open(vmcore)?;
        let types = KernelTypes::load(btf).map_err(|e| e.to_string())?;
        let layout = SlabLayout::from_btf(&types).map_err(|e| e.to_string())?;
        let addrs = match KernelAddresses::from_symbols(&core, symbols) {
            Some(found) => found,
            None => KernelAddresses {
                page_offset: 0xffff_8880_0000_0000,
                vmemmap: core.info.symbol("vmemmap").ok_or("kallsyms has no page_offset_base/vmemmap_base and VMCOREINFO no vmemmap")?,
                source: "VMCOREINFO SYMBOL(vmemmap) and the unrandomised direct map".into(),
            },
        };
        let pfns = walk::slab_pfns_from_memmap(&core, &layout, &addrs, &core.pfn_ranges());
        let any = walk::any_cache(&core, &layout, &addrs, &pfns)?;
        let image = symbols.address_of("_text").ok_or("kallsyms has no _text")?;
        let caches = caches::list_caches(&core, &layout, any.address, image)?;
        Ok(Scanner { mem: Box::new(core), types, layout, addrs, pfns, caches })
    }

    /// The unreclaimable cache with the most objects in use, and why.
    pub fn biggest_unreclaimable(&self) -> Result<(&KmemCache, String), String> {
        let counts = self.objects_by_cache();
        let candidates: Vec<&KmemCache> = self.caches.iter().filter(|c| !c.reclaimable).collect();
        let best =
            candidates.iter().max_by_key(|c| counts.get(&c.address).copied().unwrap_or(0)).ok_or("no unreclaimable cache in the dump")?;
        let n = counts.get(&best.address).copied().unwrap_or(0);
        Ok((
            best,
            format!("the unreclaimable cache with the most objects in the dump: {n} in use, of {} unreclaimable caches", candidates.len()),
        ))
    }

    /// The kernel's BTF.
    pub fn types(&self) -> &KernelTypes {
        &self.types
    }

    /// Take a snapshot of the slab pages; [`Scanner::largest_clusters`]
    /// walks the latest one.
    pub fn refresh_pages(&mut self, procfs: &ProcFs) -> Result<(), String> {
        self.pfns = procfs.read_slab_pfns().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        self.mem.name()
    }

    /// The cache named `name` (as in /proc/slabinfo).
    pub fn cache(&self, name: &str) -> Result<&KmemCache, String> {
        self.caches.iter().find(|c| c.name == name).ok_or_else(|| format!("cache {name} is not on the kernel's slab_caches list"))
    }

    /// The largest clusters of similar objects in `cache`, at most
    /// [`TOP_CLUSTERS`], largest first, over the latest snapshot of slab
    /// pages (see [`Scanner::clusters_among`]).
    /// `also` sees every allocated object of the counting walk.
    pub fn largest_clusters(
        &self,
        cache: &KmemCache,
        percent: u32,
        presence: &mut Presence,
        also: &mut dyn FnMut(u64, &[u8]),
    ) -> (Vec<ObjectCluster>, WalkStats) {
        self.clusters_among(&self.pfns, cache, percent, MAX_SCANNED_OBJECTS, presence, also)
    }

    /// Every allocated object of `cache` in the latest snapshot, at most
    /// as many as a scan reads, but those of slabs a CPU holds: objects
    /// freed to a CPU's lockless freelist look allocated there, with stale
    /// contents, until the CPU lets the slab go.
    pub fn each_settled_object(&self, cache: &KmemCache, each: &mut dyn FnMut(u64, &[u8])) -> WalkStats {
        let held_by_cpu = std::cell::Cell::new(false);
        walk::walk_cache_slabs(
            self.mem.as_ref(),
            &self.layout,
            &self.addrs,
            &self.pfns,
            cache,
            MAX_SCANNED_OBJECTS,
            |span| held_by_cpu.set(span.frozen),
            |address, bytes| {
                if !held_by_cpu.get() {
                    each(address, bytes)
                }
            },
        )
    }

    /// The largest clusters of similar objects among `cache`'s slabs in
    /// `pfns`: a sketch walk, an exact walk of every candidate, an exact
    /// walk of sampled members of the strongest, and a walk counting each
    /// object for one cluster only ([`sysak_kernel::similarity`]), each
    /// reading at most `max_objects`.
    /// The second walk also records, in `presence`, which outstanding
    /// addresses are allocated objects of the cache, and shows each object
    /// to `also`.
    pub fn clusters_among(
        &self,
        pfns: &[u64],
        cache: &KmemCache,
        percent: u32,
        max_objects: u64,
        presence: &mut Presence,
        also: &mut dyn FnMut(u64, &[u8]),
    ) -> (Vec<ObjectCluster>, WalkStats) {
        let mem = self.mem.as_ref();
        let walk = |each: &mut dyn FnMut(u64, &[u8])| {
            walk::walk_cache(mem, &self.layout, &self.addrs, pfns, cache, max_objects, |a, b| each(a, b))
        };
        let mut sketch = ClusterSketch::new(percent);
        walk(&mut |a, b| sketch.observe(a, b));
        let mut exact = ExactCount::new(sketch.finalists());
        let stats = walk::walk_cache_slabs(
            mem,
            &self.layout,
            &self.addrs,
            pfns,
            cache,
            max_objects,
            |span| presence.spans.push(span),
            |address, bytes| {
                exact.observe(address, bytes);
                also(address, bytes);
                if presence.outstanding.contains(&address) {
                    presence.allocated.insert(address);
                }
            },
        );
        // Without every slab placed, an address outside the known ones may
        // still be in the cache.
        presence.incomplete = stats.truncated || stats.unplaced_slabs > 0;
        let mut refined = ExactCount::new(exact.alternates(percent));
        walk(&mut |a, b| refined.observe(a, b));
        let distinct = distinct_largest([exact.clusters(), refined.clusters()].concat(), TOP_CLUSTERS);
        if distinct.len() < 2 {
            return (distinct, stats);
        }
        let mut exclusive = ExclusiveCount::new(distinct);
        walk(&mut |_, b| exclusive.observe(b));
        (exclusive.clusters(), stats)
    }

    /// The slabs (head PFNs) of each of `caches` in the latest snapshot,
    /// keyed by cache address: one pass for a census of several caches.
    pub fn slabs_of(&self, caches: &[&KmemCache]) -> HashMap<u64, Vec<u64>> {
        let wanted: Vec<u64> = caches.iter().map(|c| c.address).collect();
        walk::slabs_of_caches(self.mem.as_ref(), &self.layout, &self.addrs, &self.pfns, &wanted)
    }

    /// Caches on the kernel's list.
    pub fn caches(&self) -> &[KmemCache] {
        &self.caches
    }

    /// Objects in use per cache address, from the struct slabs of the
    /// latest snapshot (a dump has no /proc/slabinfo).
    pub fn objects_by_cache(&self) -> HashMap<u64, u64> {
        walk::objects_by_cache(self.mem.as_ref(), &self.layout, &self.addrs, &self.pfns)
    }

    /// Marks per call site, one map for each of `representatives` (empty
    /// for `None`): outstanding allocations whose current contents are
    /// similar to it. Each allocation is read once, whatever the number of
    /// representatives. Also returns how many could not be read.
    pub fn mark(
        &self,
        representatives: &[Option<&Representative>],
        cache: &KmemCache,
        outstanding: &Outstanding,
    ) -> (Vec<HashMap<u64, u64>>, u64) {
        let mut marks: Vec<HashMap<u64, u64>> = vec![HashMap::new(); representatives.len()];
        if representatives.iter().all(Option::is_none) {
            return (marks, 0);
        }
        let mut unreadable = 0;
        let mut buf = vec![0u8; cache.object_size as usize];
        for (address, allocation) in outstanding.iter() {
            if self.mem.read(address, &mut buf).is_err() {
                unreadable += 1;
                continue;
            }
            for (representative, marks) in representatives.iter().zip(&mut marks) {
                if representative.is_some_and(|r| r.matches(&buf)) {
                    *marks.entry(allocation.call_site).or_default() += 1;
                }
            }
        }
        (marks, unreadable)
    }
}

impl KernelView for Scanner {
    fn slab_object(&self, address: u64) -> Option<(&KmemCache, u64)> {
        let (cache_address, slab) = lookup::slab_of(self.mem.as_ref(), &self.layout, &self.addrs, address)?;
        let cache = self.caches.iter().find(|c| c.address == cache_address)?;
        Some((cache, lookup::object_start(cache, slab, address)?))
    }

    fn read(&self, address: u64, buf: &mut [u8]) -> bool {
        self.mem.read(address, buf).is_ok()
    }

    fn page_frame(&self, address: u64) -> Option<u64> {
        let offset = address.checked_sub(self.addrs.vmemmap)?;
        let pfn = offset / self.layout.page_struct_size as u64;
        (pfn < 1 << 34).then_some(pfn)
    }
}

/// Where the outstanding allocations are at the end of the window, as the
/// slab walk sees the cache: frees no tracepoint showed (`kfree_bulk()`,
/// `kmem_cache_free_bulk()`, `kfree_rcu()` batches, BPF recursion misses)
/// leave an address free in a slab of the cache; an address in no slab of
/// the cache was never its object (another cache of the same size, traced
/// through kmalloc) or its slab was given back. Objects on a CPU's
/// lockless freelist still look allocated: a freed object there is kept.
#[derive(Debug, Default)]
pub struct Presence {
    outstanding: std::collections::HashSet<u64>,
    allocated: std::collections::HashSet<u64>,
    spans: Vec<walk::SlabSpan>,
    sorted: bool,
    /// The walk stopped early or could not place every slab.
    incomplete: bool,
}

/// Where one outstanding address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// An allocated object of the cache.
    Allocated,
    /// Free in a slab of the cache.
    Free,
    /// In no slab of the cache.
    NotInCache,
    /// The walk cannot tell (a slab it skipped, or it stopped early).
    Unknown,
}

impl Presence {
    /// Ready to locate the addresses of `outstanding`.
    pub fn new(outstanding: &Outstanding) -> Presence {
        Presence { outstanding: outstanding.iter().map(|(k, _)| k).collect(), ..Presence::default() }
    }

    /// Where `address` is.
    pub fn place(&mut self, address: u64) -> Place {
        if self.allocated.contains(&address) {
            return Place::Allocated;
        }
        if !self.sorted {
            self.spans.sort_by_key(|s| s.start);
            self.sorted = true;
        }
        let i = self.spans.partition_point(|s| s.start <= address);
        match i.checked_sub(1).map(|i| self.spans[i]) {
            Some(span) if address < span.end && span.decoded => Place::Free,
            Some(span) if address < span.end => Place::Unknown,
            _ if self.incomplete => Place::Unknown,
            _ => Place::NotInCache,
        }
    }
}

/// Drop from `outstanding` what the walk found free or outside the cache;
/// returns (freed, not in the cache).
pub fn drop_absent(outstanding: &mut Outstanding, presence: &mut Presence) -> (u64, u64) {
    let (mut freed, mut elsewhere) = (0, 0);
    outstanding.retain(|address, _| match presence.place(address) {
        Place::Free => {
            freed += 1;
            false
        }
        Place::NotInCache => {
            elsewhere += 1;
            false
        }
        Place::Allocated | Place::Unknown => true,
    });
    (freed, elsewhere)
}

/// A hex + ASCII dump of the representative, 16 bytes a line; 8-byte words
/// that are addresses inside kernel symbols are named (a pointer to an ops
/// structure says whose objects these are).
pub fn dump(bytes: &[u8], symbols: &Kallsyms) -> Vec<String> {
    bytes
        .chunks(16)
        .take(DUMP_BYTES / 16)
        .enumerate()
        .map(|(line, chunk)| {
            let mut text = format!("+{:#05x}:", line * 16);
            for (i, b) in chunk.iter().enumerate() {
                let _ = write!(text, "{}{b:02x}", if i == 8 { "  " } else { " " });
            }
            let ascii: String = chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
            let _ = write!(text, "{:pad$} |{ascii}|", "", pad = (16 - chunk.len()) * 3);
            for word in chunk.chunks_exact(8) {
                let value = u64::from_le_bytes(word.try_into().unwrap());
                if symbols.resolve(value).is_some() {
                    let _ = write!(text, " {}", symbols.format(value));
                }
            }
            text
        })
        .collect()
}

/// The scan section when it did not run.
pub fn unavailable(why: impl Into<String>) -> Scan {
    Scan { unavailable: Some(why.into()), ..Scan::default() }
}

/// The clusters as reported: share of the objects read and, when only
/// part of the cache's `total` objects was read (a truncated walk, a
/// census sample), the count extrapolated to all of them. `words` explains
/// each representative (the census); None leaves them to the caller.
pub fn summaries(clusters: &[ObjectCluster], scanned: u64, total: u64, words: Option<&Explainer>) -> Vec<ClusterSummary> {
    let share = |n: u64| if scanned == 0 { 0.0 } else { n as f64 / scanned as f64 };
    clusters
        .iter()
        .map(|c| ClusterSummary {
            similar_objects: c.similar,
            similar_objects_estimate: (total > scanned && scanned > 0)
                .then(|| (c.similar as u128 * total as u128 / scanned as u128) as u64),
            share: share(c.similar),
            object_address: format!("{:#x}", c.representative.address),
            words: words.map(|e| e.words(&c.representative.bytes, c.representative.address, 2)).unwrap_or_default(),
        })
        .collect()
}

/// The scan section for the clusters found (largest first, maybe none) by
/// `backend`; the caller fills in `data_symbols`.
pub fn section(
    backend: &str,
    clusters: &[ObjectCluster],
    stats: &WalkStats,
    unreadable_outstanding: u64,
    symbols: &Kallsyms,
    explainer: &Explainer,
) -> Scan {
    let cluster = clusters.first();
    Scan {
        clusters: summaries(clusters, stats.objects, stats.objects + stats.unread_objects, None),
        backend: Some(backend.to_string()),
        unavailable: None,
        object_address: cluster.map(|c| format!("{:#x}", c.representative.address)),
        similar_objects: Some(cluster.map_or(0, |c| c.similar)),
        scanned_objects: Some(stats.objects),
        dump: cluster.map(|c| dump(&c.representative.bytes, symbols)).unwrap_or_default(),
        words: cluster.map(|c| explainer.words(&c.representative.bytes, c.representative.address, 2)).unwrap_or_default(),
        per_cpu_slabs: stats.frozen_slabs,
        scanned_slabs: stats.slabs,
        changed_slabs: stats.corrupt_freelists + stats.inconsistent_slabs + stats.unreadable_slabs,
        truncated: stats.truncated,
        unreadable_outstanding,
        data_symbols: None,
        type_candidates: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_tells_free_from_elsewhere() {
        use sysak_kernel::trace::outstanding::Allocation;
        let mut outstanding = Outstanding::new(100);
        for address in [0x1000, 0x1040, 0x1080, 0x9000, 0x5000] {
            outstanding.alloc(address, Allocation { time_ns: 1, call_site: 7, bytes: 64, stack: None });
        }
        let mut presence = Presence::new(&outstanding);
        presence.spans.push(walk::SlabSpan { start: 0x5000, end: 0x6000, decoded: false, frozen: false });
        presence.spans.push(walk::SlabSpan { start: 0x1000, end: 0x2000, decoded: true, frozen: false });
        presence.allocated.insert(0x1000);
        assert_eq!(presence.place(0x1000), Place::Allocated);
        assert_eq!(presence.place(0x1040), Place::Free);
        assert_eq!(presence.place(0x9000), Place::NotInCache);
        assert_eq!(presence.place(0x5000), Place::Unknown, "a skipped slab says nothing");
        assert_eq!(drop_absent(&mut outstanding, &mut presence), (2, 1));
        assert_eq!(outstanding.iter().count(), 2);
        presence.incomplete = true;
        assert_eq!(presence.place(0x9000), Place::Unknown, "a truncated walk may not have reached it");
    }

    #[test]
    fn dump_shows_hex_ascii_and_symbols() {
        let symbols =
            Kallsyms::parse("ffffffff81000000 T _text\nffffffff81000100 t inotify_fsnotify_ops\nffffffff81000200 T next\n", "").unwrap();
        let mut bytes = b"ABCDEFGH".to_vec();
        bytes.extend_from_slice(&0xffffffff81000108u64.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 4]);
        let lines = dump(&bytes, &symbols);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("+0x000: 41 42 43 44 45 46 47 48  08 01 00 81"), "{}", lines[0]);
        assert!(lines[0].contains("|ABCDEFGH........|"), "{}", lines[0]);
        assert!(lines[0].ends_with(" inotify_fsnotify_ops+0x8/0x100"), "{}", lines[0]);
        assert!(lines[1].contains("|....|"));
    }
}

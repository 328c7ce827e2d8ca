//! Walking one cache's slabs: the allocated objects and their bytes.
//!
//! Slab pages come from /proc/kpageflags (a snapshot). For each one, the
//! struct slab is read from vmemmap and must still be a slab of the target
//! cache; the slab's bytes are read in one go and its freelist decoded, and
//! every object not on it is handed to the caller.
//!
//! What "allocated" means here: not on the slab's own freelist. Objects
//! held by a CPU — on a frozen slab's per-CPU freelist, or (6.18+) in a
//! per-CPU sheaf — look allocated; they are few (bounded by CPUs × a slab),
//! and [`WalkStats::frozen_slabs`] says how many slabs were per-CPU.

use crate::kmem::{KernelMemory, PAGE};
use crate::layout::{KernelAddresses, SlabLayout};

use super::freelist::free_objects;
use super::KmemCache;

/// What the walk saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WalkStats {
    /// Slabs of the cache walked.
    pub slabs: u64,
    /// Allocated objects handed to the caller.
    pub objects: u64,
    /// Slabs owned by a CPU when read.
    pub frozen_slabs: u64,
    /// Slabs whose freelist could not be decoded (changed under the walk).
    pub corrupt_freelists: u64,
    /// Slabs that could not be read.
    pub unreadable_slabs: u64,
    /// Slabs not owned by a CPU whose free-object count disagreed with
    /// `objects - inuse` (they changed between the two reads).
    pub inconsistent_slabs: u64,
    /// The walk stopped at the object limit.
    pub truncated: bool,
    /// Allocated objects past the limit, counted from the struct slabs
    /// (`inuse`) without reading them: with `objects`, the cache's total,
    /// from which a truncated scan extrapolates.
    pub unread_objects: u64,
    /// Slab pages whose struct page could not be read, or whose slab had an
    /// impossible size: whose they are, and where their objects lie, is
    /// unknown (a caller must not conclude that an address is in no slab).
    pub unplaced_slabs: u64,
}

/// Struct pages read per vmemmap window.
const WINDOW_PAGES: u64 = 1024;

/// Reads struct pages through a window over vmemmap, so neighbouring slab
/// pages cost one read.
struct PageStructs<'a> {
    mem: &'a dyn KernelMemory,
    addrs: &'a KernelAddresses,
    size: usize,
    start: u64,
    bytes: Vec<u8>,
}

impl<'a> PageStructs<'a> {
    fn new(mem: &'a dyn KernelMemory, addrs: &'a KernelAddresses, size: usize) -> Self {
        PageStructs { mem, addrs, size, start: u64::MAX, bytes: Vec::new() }
    }

    fn get(&mut self, pfn: u64) -> Option<&[u8]> {
        if pfn < self.start || pfn >= self.start + WINDOW_PAGES {
            self.start = pfn;
            self.bytes.resize(self.size * WINDOW_PAGES as usize, 0);
            // Unreadable pages of vmemmap read as zeros: not marked slab.
            self.mem.read_pages(self.addrs.pfn_to_page(pfn, self.size), &mut self.bytes).ok()?;
        }
        let at = (pfn - self.start) as usize * self.size;
        Some(&self.bytes[at..at + self.size])
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Slab head PFNs found by reading every struct page of `ranges` (PFN
/// ranges `[start, end)`), for a dump, which has no /proc/kpageflags.
pub fn slab_pfns_from_memmap(mem: &dyn KernelMemory, layout: &SlabLayout, addrs: &KernelAddresses, ranges: &[(u64, u64)]) -> Vec<u64> {
    let mut pages = PageStructs::new(mem, addrs, layout.page_struct_size);
    let mut pfns = Vec::new();
    for &(start, end) in ranges {
        for pfn in start..end {
            let Some(page) = pages.get(pfn) else { continue };
            if layout.mark.is_slab(page) && u64_at(page, layout.compound_head) & 1 == 0 {
                pfns.push(pfn);
            }
        }
    }
    pfns
}

/// The slabs (head PFNs) of each cache in `wanted` (cache addresses), in
/// one pass over `pfns`: a census walks only its caches' slabs, or a
/// spread sample of them.
pub fn slabs_of_caches(
    mem: &dyn KernelMemory,
    layout: &SlabLayout,
    addrs: &KernelAddresses,
    pfns: &[u64],
    wanted: &[u64],
) -> std::collections::HashMap<u64, Vec<u64>> {
    let mut pages = PageStructs::new(mem, addrs, layout.page_struct_size);
    let mut slabs: std::collections::HashMap<u64, Vec<u64>> = wanted.iter().map(|&c| (c, Vec::new())).collect();
    for &pfn in pfns {
        let Some(page) = pages.get(pfn) else { continue };
        if layout.mark.is_slab(page) {
            if let Some(list) = slabs.get_mut(&u64_at(page, layout.slab_cache)) {
                list.push(pfn);
            }
        }
    }
    slabs
}

/// Objects in use per cache address (`inuse` of every slab), to rank
/// caches where /proc/slabinfo is not available (a dump).
pub fn objects_by_cache(
    mem: &dyn KernelMemory,
    layout: &SlabLayout,
    addrs: &KernelAddresses,
    pfns: &[u64],
) -> std::collections::HashMap<u64, u64> {
    let mut pages = PageStructs::new(mem, addrs, layout.page_struct_size);
    let mut counts = std::collections::HashMap::new();
    for &pfn in pfns {
        let Some(page) = pages.get(pfn) else { continue };
        if layout.mark.is_slab(page) {
            *counts.entry(u64_at(page, layout.slab_cache)).or_default() += layout.inuse.get(page);
        }
    }
    counts
}

/// The address of some cache, from the first slab page whose struct slab
/// checks out: the entry point to the cache list, and a check that
/// vmemmap and the layout are right.
pub fn any_cache(mem: &dyn KernelMemory, layout: &SlabLayout, addrs: &KernelAddresses, pfns: &[u64]) -> Result<KmemCache, String> {
    let mut pages = PageStructs::new(mem, addrs, layout.page_struct_size);
    let mut last = String::from("no slab pages in /proc/kpageflags");
    for &pfn in pfns.iter().take(64) {
        let Some(page) = pages.get(pfn) else { continue };
        if !layout.mark.is_slab(page) {
            last = format!("the struct page of slab PFN {pfn:#x} at vmemmap {:#x} is not marked slab", addrs.vmemmap);
            continue;
        }
        match KmemCache::read(mem, layout, u64_at(page, layout.slab_cache)) {
            Ok(cache) => return Ok(cache),
            Err(e) => last = e,
        }
    }
    Err(format!("cannot find a slab cache through vmemmap ({last})"))
}

/// Walk `cache`'s slabs among `pfns`, calling `each(address, bytes)` for up
/// to `max_objects` allocated objects (`bytes` is `object_size` long).
pub fn walk_cache(
    mem: &dyn KernelMemory,
    layout: &SlabLayout,
    addrs: &KernelAddresses,
    pfns: &[u64],
    cache: &KmemCache,
    max_objects: u64,
    each: impl FnMut(u64, &[u8]),
) -> WalkStats {
    walk_cache_slabs(mem, layout, addrs, pfns, cache, max_objects, |_| {}, each)
}

/// One slab of the cache, as the walk met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlabSpan {
    /// First byte of the slab's objects (after any left red zone).
    pub start: u64,
    /// One past the last object.
    pub end: u64,
    /// Its objects were read and its freelist decoded: an address in it
    /// that `each` was not called for is free. False for a slab skipped
    /// (unreadable, corrupt freelist).
    pub decoded: bool,
    /// A CPU holds it (frozen): objects freed to that CPU's lockless
    /// freelist look allocated here, with stale contents.
    pub frozen: bool,
}

/// [`walk_cache`], also calling `on_slab` for every slab of the cache
/// found, before its objects (so a caller can tell a free object of the
/// cache from an address outside it). A truncated walk stops calling both
/// and only counts what it no longer reads ([`WalkStats::unread_objects`]).
#[allow(clippy::too_many_arguments)]
pub fn walk_cache_slabs(
    mem: &dyn KernelMemory,
    layout: &SlabLayout,
    addrs: &KernelAddresses,
    pfns: &[u64],
    cache: &KmemCache,
    max_objects: u64,
    mut on_slab: impl FnMut(SlabSpan),
    mut each: impl FnMut(u64, &[u8]),
) -> WalkStats {
    let mut stats = WalkStats::default();
    let mut pages = PageStructs::new(mem, addrs, layout.page_struct_size);
    let mut slab = Vec::new();
    let size = cache.size as usize;
    let pad = cache.red_left_pad as usize;
    for &pfn in pfns {
        let Some(page) = pages.get(pfn) else {
            stats.unplaced_slabs += 1;
            continue;
        };
        if !layout.mark.is_slab(page) || u64_at(page, layout.slab_cache) != cache.address {
            continue;
        }
        if stats.truncated {
            stats.unread_objects += layout.inuse.get(page);
            continue;
        }
        let objects = layout.objects.get(page) as u32;
        let first_free = u64_at(page, layout.freelist);
        let inuse = layout.inuse.get(page) as u32;
        let frozen = layout.frozen.map(|f| f.get(page) != 0).unwrap_or(false);
        let span = pad + objects as usize * size;
        if objects == 0 || span > (PAGE as usize) << 10 {
            stats.corrupt_freelists += 1;
            stats.unplaced_slabs += 1;
            continue;
        }
        stats.slabs += 1;
        stats.frozen_slabs += frozen as u64;
        let base = addrs.pfn_to_virt(pfn);
        let whole = SlabSpan { start: base + pad as u64, end: base + span as u64, decoded: false, frozen };
        slab.resize(span, 0);
        if mem.read(base, &mut slab).is_err() {
            stats.unreadable_slabs += 1;
            on_slab(whole);
            continue;
        }
        let free = match free_objects(&slab, base, cache, first_free, objects) {
            Ok(free) => free,
            Err(_) => {
                stats.corrupt_freelists += 1;
                on_slab(whole);
                continue;
            }
        };
        on_slab(SlabSpan { decoded: true, ..whole });
        let free_count = free.iter().filter(|f| **f).count() as u32;
        if !frozen && free_count + inuse != objects {
            stats.inconsistent_slabs += 1;
        }
        for (i, _) in free.iter().enumerate().filter(|(_, f)| !**f) {
            if stats.objects >= max_objects {
                stats.truncated = true;
                stats.unread_objects += 1;
                continue;
            }
            let at = pad + i * size;
            each(base + at as u64, &slab[at..at + cache.object_size as usize]);
            stats.objects += 1;
        }
    }
    stats
}

//! The slab walk on synthetic kernel memory: a vmemmap of struct pages
//! and slabs in a direct map, laid out with 6.18's offsets (struct slab
//! overlaying struct page, PGTY_slab page type). Slabs of order 0–2, left
//! red zones, padding, hardened freelists; and slabs that change between
//! the read of their struct page and the read of their objects.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use sysak_kernel::kmem::{KernelMemory, ReadError, PAGE};
use sysak_kernel::layout::slab::{BitField, CacheLayout, SlabMark};
use sysak_kernel::layout::{KernelAddresses, SlabLayout};
use sysak_kernel::slab::walk::{walk_cache_slabs, SlabSpan};
use sysak_kernel::slab::KmemCache;

const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
const VMEMMAP: u64 = 0xffff_ea00_0000_0000;
const CACHE: u64 = 0xffff_8880_0100_0000;

/// Sparse memory: pages never written read as zeros.
#[derive(Default)]
struct Memory {
    pages: HashMap<u64, Vec<u8>>,
}

impl Memory {
    fn write(&mut self, addr: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let at = addr + i as u64;
            self.pages.entry(at & !(PAGE - 1)).or_insert_with(|| vec![0; PAGE as usize])[(at % PAGE) as usize] = *b;
        }
    }
}

impl KernelMemory for Memory {
    fn name(&self) -> &'static str {
        "synthetic"
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        for (i, b) in buf.iter_mut().enumerate() {
            let at = addr + i as u64;
            *b = self.pages.get(&(at & !(PAGE - 1))).map_or(0, |p| p[(at % PAGE) as usize]);
        }
        Ok(())
    }
}

/// 6.18's layout as BTF gives it (docs/kernel-facts.md).
fn layout() -> SlabLayout {
    SlabLayout {
        era: "struct slab",
        page_struct_size: 64,
        slab_cache: 8,
        freelist: 32,
        inuse: BitField { bit_offset: 320, bits: 16 },
        objects: BitField { bit_offset: 336, bits: 15 },
        frozen: Some(BitField { bit_offset: 351, bits: 1 }),
        mark: SlabMark::PageType { offset: 48, value: 0xf5 },
        compound_head: 8,
        cache: CacheLayout {
            size: 32,
            object_size: 36,
            offset: 48,
            name: 104,
            list: 112,
            oo: 40,
            random: Some(192),
            red_left_pad: None,
            flags: 0,
            reclaim_account: 0x2_0000,
        },
    }
}

struct Slab {
    pfn: u64,
    free: BTreeSet<usize>,
}

prop_compose! {
    fn geometry()(order in 0u32..3, object_size in 16u32..400, pad in 0u32..3, red in prop_oneof![Just(0u32), Just(64)],
                  random in prop_oneof![Just(0u64), any::<u64>()]) -> KmemCache {
        KmemCache {
            address: CACHE,
            name: "synthetic".into(),
            size: (red + object_size + pad * 8).next_multiple_of(8),
            object_size,
            free_pointer_offset: 0,
            random,
            red_left_pad: red,
            order,
            reclaimable: false,
        }
    }
}

/// Lay `slabs` of `cache` out in memory, objects filled with their index.
fn build(cache: &KmemCache, slabs: &[Slab], layout: &SlabLayout) -> Memory {
    let mut mem = Memory::default();
    let objects = (((PAGE as u32) << cache.order) - cache.red_left_pad) / cache.size;
    for slab in slabs {
        let base = PAGE_OFFSET + slab.pfn * PAGE;
        let addr = |i: usize| base + (cache.red_left_pad + i as u32 * cache.size) as u64;
        for i in 0..objects as usize {
            mem.write(addr(i), &vec![(i % 251) as u8 + 1; cache.object_size as usize]);
        }
        let free: Vec<usize> = slab.free.iter().copied().filter(|&i| i < objects as usize).collect();
        for (k, &i) in free.iter().enumerate() {
            let next = free.get(k + 1).map_or(0, |&j| addr(j));
            let word = addr(i) + cache.free_pointer_offset as u64;
            let stored = if cache.random == 0 { next } else { next ^ cache.random ^ word.swap_bytes() };
            mem.write(word, &stored.to_le_bytes());
        }
        let mut page = vec![0u8; layout.page_struct_size];
        page[layout.slab_cache..layout.slab_cache + 8].copy_from_slice(&CACHE.to_le_bytes());
        page[layout.freelist..layout.freelist + 8].copy_from_slice(&free.first().map_or(0, |&i| addr(i)).to_le_bytes());
        let counters = (objects as u64 - free.len() as u64) | (objects as u64) << 16;
        page[40..48].copy_from_slice(&counters.to_le_bytes());
        page[48..52].copy_from_slice(&0xf500_0000u32.to_le_bytes());
        mem.write(VMEMMAP + slab.pfn * 64, &page);
    }
    mem
}

fn slabs_of(frees: &[BTreeSet<usize>]) -> Vec<Slab> {
    frees.iter().enumerate().map(|(k, free)| Slab { pfn: 0x10_0000 + ((k as u64) << 3), free: free.clone() }).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Exactly the allocated objects are handed out, at their addresses,
    /// and every slab is reported with its span.
    #[test]
    fn walk_finds_exactly_the_allocated_objects(cache in geometry(),
            frees in proptest::collection::vec(proptest::collection::btree_set(0usize..600, 0..40), 1..6)) {
        let layout = layout();
        let slabs = slabs_of(&frees);
        let mem = build(&cache, &slabs, &layout);
        let addrs = KernelAddresses { page_offset: PAGE_OFFSET, vmemmap: VMEMMAP, source: "test".into() };
        let pfns: Vec<u64> = slabs.iter().map(|s| s.pfn).collect();
        let (mut seen, mut spans) = (BTreeSet::new(), Vec::<SlabSpan>::new());
        let stats = walk_cache_slabs(&mem, &layout, &addrs, &pfns, &cache, u64::MAX, |s| spans.push(s), |a, b| {
            assert_eq!(b.len(), cache.object_size as usize);
            seen.insert(a);
        });
        let objects = (((PAGE as u32) << cache.order) - cache.red_left_pad) / cache.size;
        let mut expected = BTreeSet::new();
        for slab in &slabs {
            let base = PAGE_OFFSET + slab.pfn * PAGE;
            for i in (0..objects as usize).filter(|i| !slab.free.contains(i)) {
                expected.insert(base + (cache.red_left_pad + i as u32 * cache.size) as u64);
            }
        }
        prop_assert_eq!(&seen, &expected);
        prop_assert_eq!(stats.objects, expected.len() as u64);
        prop_assert_eq!((stats.slabs, stats.inconsistent_slabs, stats.corrupt_freelists), (slabs.len() as u64, 0, 0));
        prop_assert!(spans.iter().all(|s| s.decoded && s.end - s.start == (objects * cache.size) as u64));
    }

    /// A walk cut at `limit` objects reads exactly that many and counts
    /// every allocated object it did not read, so objects + unread is the
    /// cache's total whatever the limit.
    #[test]
    fn truncated_walk_counts_what_it_did_not_read(cache in geometry(), limit in 1u64..400,
            frees in proptest::collection::vec(proptest::collection::btree_set(0usize..600, 0..40), 1..6)) {
        let layout = layout();
        let slabs = slabs_of(&frees);
        let mem = build(&cache, &slabs, &layout);
        let addrs = KernelAddresses { page_offset: PAGE_OFFSET, vmemmap: VMEMMAP, source: "test".into() };
        let pfns: Vec<u64> = slabs.iter().map(|s| s.pfn).collect();
        let whole = walk_cache_slabs(&mem, &layout, &addrs, &pfns, &cache, u64::MAX, |_| {}, |_, _| {});
        let mut read = 0;
        let cut = walk_cache_slabs(&mem, &layout, &addrs, &pfns, &cache, limit, |_| {}, |_, _| read += 1);
        prop_assert_eq!(cut.objects, read);
        prop_assert_eq!(cut.objects, whole.objects.min(limit));
        prop_assert_eq!(cut.truncated, whole.objects > limit);
        prop_assert_eq!(cut.objects + cut.unread_objects, whole.objects);
    }

    /// A slab that changed between reads (its objects rewritten with any
    /// bytes, the struct page left as it was) is skipped or walked, and
    /// counted: never a panic, never an object outside the slab.
    #[test]
    fn changing_slabs_are_counted_not_trusted(cache in geometry(), free in proptest::collection::btree_set(0usize..200, 1..30),
            noise in proptest::collection::vec(any::<u8>(), 512)) {
        let layout = layout();
        let slabs = slabs_of(std::slice::from_ref(&free));
        let mut mem = build(&cache, &slabs, &layout);
        let base = PAGE_OFFSET + slabs[0].pfn * PAGE;
        let span = (PAGE << cache.order) as usize;
        mem.write(base, &noise.iter().cycle().take(span).copied().collect::<Vec<u8>>());
        let addrs = KernelAddresses { page_offset: PAGE_OFFSET, vmemmap: VMEMMAP, source: "test".into() };
        let mut outside = 0;
        let stats = walk_cache_slabs(&mem, &layout, &addrs, &[slabs[0].pfn], &cache, u64::MAX, |_| {}, |a, _| {
            outside += (a < base || a >= base + span as u64) as u32;
        });
        prop_assert_eq!(outside, 0);
        prop_assert_eq!(stats.slabs, 1);
    }
}

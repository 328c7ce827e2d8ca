//! Which slab object an address falls in: the address's struct page
//! (vmemmap), its head page for a tail page of a multi-page slab
//! (`compound_head` with bit 0 set, every kernel since 4.6), the owning
//! `kmem_cache`, and the object's start — what crash's `kmem ADDR` says.
//!
//! Assumes the x86_64 direct map: slab memory always lives there. An
//! address whose struct page cannot be read, or is not a slab page, is in
//! no slab object.

use crate::kmem::{KernelMemory, PAGE};
use crate::layout::{KernelAddresses, SlabLayout};
use crate::slab::KmemCache;

/// Page frames beyond this (64 TiB of memory) are not looked up.
const MAX_PFN: u64 = 1 << 34;

/// The slab page holding `address`: (the `kmem_cache` address, the slab's
/// first byte in the direct map). `None` outside slab memory.
pub fn slab_of(mem: &dyn KernelMemory, layout: &SlabLayout, addrs: &KernelAddresses, address: u64) -> Option<(u64, u64)> {
    let pfn = address.checked_sub(addrs.page_offset)? / PAGE;
    if pfn >= MAX_PFN {
        return None;
    }
    let size = layout.page_struct_size;
    let mut page = vec![0u8; size];
    mem.read(addrs.pfn_to_page(pfn, size), &mut page).ok()?;
    let word = |b: &[u8], at: usize| b.get(at..at + 8).map(|w| u64::from_le_bytes(w.try_into().unwrap()));
    let head_word = word(&page, layout.compound_head)?;
    let head_pfn = if head_word & 1 == 1 {
        let head = head_word - 1;
        let pfn = head.checked_sub(addrs.vmemmap)? / size as u64;
        mem.read(head, &mut page).ok()?;
        pfn
    } else {
        pfn
    };
    if !layout.mark.is_slab(&page) {
        return None;
    }
    Some((word(&page, layout.slab_cache)?, addrs.pfn_to_virt(head_pfn)))
}

/// The object of `cache` (whose slab starts at `slab`) that holds
/// `address`: its start, or `None` in the slab's tail padding.
pub fn object_start(cache: &KmemCache, slab: u64, address: u64) -> Option<u64> {
    let first = slab + cache.red_left_pad as u64;
    let index = address.checked_sub(first)? / cache.size as u64;
    let objects = (((PAGE as u32) << cache.order).saturating_sub(cache.red_left_pad)) / cache.size.max(1);
    (index < objects as u64).then(|| first + index * cache.size as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_start_at_their_stride() {
        let cache = KmemCache {
            address: 1,
            name: "t".into(),
            size: 192,
            object_size: 184,
            free_pointer_offset: 0,
            random: 0,
            red_left_pad: 0,
            order: 0,
            reclaimable: false,
        };
        let slab = 0xffff_8881_0000_0000;
        assert_eq!(object_start(&cache, slab, slab + 200), Some(slab + 192));
        assert_eq!(object_start(&cache, slab, slab + 4095), None, "21 objects end at 4032");
        assert_eq!(object_start(&cache, slab, slab - 1), None);
    }
}

//! `struct kmem_cache` and the `slab_caches` list.

use crate::kmem::KernelMemory;
use crate::layout::SlabLayout;

/// One cache, as the walk needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmemCache {
    /// Address of the struct kmem_cache.
    pub address: u64,
    /// Name (as in /proc/slabinfo).
    pub name: String,
    /// Stride of objects in a slab.
    pub size: u32,
    /// Size callers asked for (what is compared).
    pub object_size: u32,
    /// Offset of the free pointer within a free object.
    pub free_pointer_offset: u32,
    /// CONFIG_SLAB_FREELIST_HARDENED's per-cache secret (0 without it).
    pub random: u64,
    /// Red zone before each object (debug caches only).
    pub red_left_pad: u32,
    /// Slab order (a slab is PAGE << order bytes).
    pub order: u32,
    /// SLAB_RECLAIM_ACCOUNT: objects are reclaimable (dentries, inodes).
    pub reclaimable: bool,
}

/// Longest cache name read.
const NAME_MAX: usize = 64;
/// More caches than any kernel has: the list walk stops here.
const MAX_CACHES: usize = 65_536;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

impl KmemCache {
    /// Read the cache at `address`, checking that it looks like one.
    pub fn read(mem: &dyn KernelMemory, layout: &SlabLayout, address: u64) -> Result<KmemCache, String> {
        let c = &layout.cache;
        let span = [c.size, c.object_size, c.offset, c.name, c.list, c.oo, c.flags, c.random.unwrap_or(0), c.red_left_pad.unwrap_or(0)]
            .into_iter()
            .max()
            .unwrap()
            + 8;
        let mut b = vec![0u8; span];
        mem.read(address, &mut b).map_err(|e| format!("kmem_cache at {address:#x}: {e}"))?;
        let name_ptr = u64_at(&b, c.name);
        let name = mem.read_cstr(name_ptr, NAME_MAX).map_err(|e| format!("kmem_cache at {address:#x}: name: {e}"))?;
        let cache = KmemCache {
            address,
            size: u32_at(&b, c.size),
            object_size: u32_at(&b, c.object_size),
            free_pointer_offset: u32_at(&b, c.offset),
            random: c.random.map(|r| u64_at(&b, r)).unwrap_or(0),
            red_left_pad: c.red_left_pad.map(|r| u32_at(&b, r)).unwrap_or(0),
            order: u32_at(&b, c.oo) >> 16,
            reclaimable: u64_at(&b, c.flags) & c.reclaim_account != 0,
            name,
        };
        let plausible = !cache.name.is_empty()
            && cache.name.bytes().all(|b| b.is_ascii_graphic())
            && cache.object_size > 0
            && cache.object_size <= cache.size
            && cache.free_pointer_offset < cache.size
            && cache.order <= 10;
        if !plausible {
            return Err(format!("{address:#x} does not look like a struct kmem_cache"));
        }
        Ok(cache)
    }

    /// Bytes in one slab.
    pub fn slab_bytes(&self) -> usize {
        (crate::kmem::PAGE as usize) << self.order
    }
}

/// Every cache on the `slab_caches` list, starting from any cache on it.
/// The list head is the one node that is not inside a kmem_cache: it lies
/// in the kernel image (at or above `image_start`), not in slab memory.
pub fn list_caches(mem: &dyn KernelMemory, layout: &SlabLayout, any: u64, image_start: u64) -> Result<Vec<KmemCache>, String> {
    let list = layout.cache.list as u64;
    let mut caches = Vec::new();
    let mut node = mem.read_u64(any + list).map_err(|e| format!("slab_caches list: {e}"))?;
    let start = any + list;
    let mut seen_head = false;
    for _ in 0..MAX_CACHES {
        if node == start {
            caches.push(KmemCache::read(mem, layout, any)?);
            if !seen_head {
                return Err("slab_caches walk returned to its start without passing the list head".into());
            }
            return Ok(caches);
        }
        if node >= image_start {
            seen_head = true;
        } else {
            match KmemCache::read(mem, layout, node - list) {
                Ok(c) => caches.push(c),
                Err(e) => return Err(format!("slab_caches list is broken: {e}")),
            }
        }
        node = mem.read_u64(node).map_err(|e| format!("slab_caches list: {e}"))?;
    }
    Err(format!("slab_caches list has more than {MAX_CACHES} nodes or a loop"))
}

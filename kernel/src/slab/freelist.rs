//! SLUB freelist decoding: which objects of a slab are free.
//!
//! A free object stores the next free object's address at
//! `object + kmem_cache.offset`. With CONFIG_SLAB_FREELIST_HARDENED that
//! word is `next ^ cache.random ^ swab64(address_of_the_word)` (5.7+;
//! 4.14–5.6 used the address without swab). The first free object
//! (`slab.freelist`) is stored plain. Which hardening variant a kernel uses
//! is not in BTF, so both are tried and the one whose walk stays inside the
//! slab wins.

use super::KmemCache;

/// Why a freelist could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreelistError {
    /// A pointer left the slab or was misaligned.
    OutOfSlab(u64),
    /// More free objects than the slab has: a loop.
    Loop,
}

#[derive(Clone, Copy)]
enum Hardening {
    None,
    Swab,
    Plain,
}

/// Free-object flags, one per object index, for the slab at `base` whose
/// bytes are `slab`, with `objects` objects and first free object `first`.
pub fn free_objects(slab: &[u8], base: u64, cache: &KmemCache, first: u64, objects: u32) -> Result<Vec<bool>, FreelistError> {
    let variants: &[Hardening] = if cache.random == 0 { &[Hardening::None] } else { &[Hardening::Swab, Hardening::Plain] };
    let mut last_err = FreelistError::Loop;
    for variant in variants {
        match walk(slab, base, cache, first, objects, *variant) {
            Ok(free) => return Ok(free),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

fn walk(slab: &[u8], base: u64, cache: &KmemCache, first: u64, objects: u32, hardening: Hardening) -> Result<Vec<bool>, FreelistError> {
    let mut free = vec![false; objects as usize];
    let size = cache.size as u64;
    let first_object = base + cache.red_left_pad as u64;
    let mut next = first;
    let mut seen = 0u32;
    while next != 0 {
        let index = next.checked_sub(first_object).filter(|d| d % size == 0).map(|d| d / size);
        let index = match index {
            Some(i) if i < objects as u64 => i as usize,
            _ => return Err(FreelistError::OutOfSlab(next)),
        };
        if free[index] || seen >= objects {
            return Err(FreelistError::Loop);
        }
        free[index] = true;
        seen += 1;
        let word_addr = next + cache.free_pointer_offset as u64;
        let at = (word_addr - base) as usize;
        let stored = match slab.get(at..at + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap()),
            None => return Err(FreelistError::OutOfSlab(word_addr)),
        };
        next = match hardening {
            Hardening::None => stored,
            Hardening::Swab => stored ^ cache.random ^ word_addr.swap_bytes(),
            Hardening::Plain => stored ^ cache.random ^ word_addr,
        };
    }
    Ok(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(random: u64) -> KmemCache {
        KmemCache {
            address: 0,
            name: "test-64".into(),
            size: 64,
            object_size: 64,
            free_pointer_offset: 32,
            random,
            red_left_pad: 0,
            order: 0,
            reclaimable: false,
        }
    }

    /// A 4 KiB slab at `base` whose free objects are `free` (in list order).
    fn slab(base: u64, cache: &KmemCache, free: &[usize], encode: impl Fn(u64, u64) -> u64) -> (Vec<u8>, u64) {
        let mut bytes = vec![0xabu8; 4096];
        let addr = |i: usize| base + (i as u64) * 64;
        for (k, &i) in free.iter().enumerate() {
            let next = free.get(k + 1).map(|&j| addr(j)).unwrap_or(0);
            let word = addr(i) + cache.free_pointer_offset as u64;
            let at = (word - base) as usize;
            bytes[at..at + 8].copy_from_slice(&encode(next, word).to_le_bytes());
        }
        (bytes, free.first().map(|&i| addr(i)).unwrap_or(0))
    }

    const BASE: u64 = 0xffff_8881_0000_0000;

    #[test]
    fn plain_and_hardened_freelists_decode() {
        let plain = cache(0);
        let (bytes, first) = slab(BASE, &plain, &[5, 1, 63], |next, _| next);
        let free = free_objects(&bytes, BASE, &plain, first, 64).unwrap();
        assert_eq!(free.iter().filter(|f| **f).count(), 3);
        assert!(free[5] && free[1] && free[63] && !free[0]);

        let random = 0x1234_5678_9abc_def0;
        let hardened = cache(random);
        let (bytes, first) = slab(BASE, &hardened, &[2, 7, 9, 4], |next, word| next ^ random ^ word.swap_bytes());
        let free = free_objects(&bytes, BASE, &hardened, first, 64).unwrap();
        assert_eq!(free.iter().filter(|f| **f).count(), 4);

        // 4.14-5.6 hardening: no byte swap.
        let (bytes, first) = slab(BASE, &hardened, &[3, 8], |next, word| next ^ random ^ word);
        let free = free_objects(&bytes, BASE, &hardened, first, 64).unwrap();
        assert!(free[3] && free[8]);
    }

    #[test]
    fn empty_freelist_means_all_allocated() {
        let c = cache(0);
        let free = free_objects(&[0u8; 4096], BASE, &c, 0, 64).unwrap();
        assert!(free.iter().all(|f| !f));
    }

    #[test]
    fn corrupt_freelists_are_errors_not_hangs() {
        let c = cache(0);
        // A loop: 1 -> 2 -> 1.
        let mut bytes = vec![0u8; 4096];
        bytes[64 + 32..64 + 40].copy_from_slice(&(BASE + 128).to_le_bytes());
        bytes[128 + 32..128 + 40].copy_from_slice(&(BASE + 64).to_le_bytes());
        assert_eq!(free_objects(&bytes, BASE, &c, BASE + 64, 64), Err(FreelistError::Loop));
        // Out of the slab, and misaligned.
        assert!(matches!(free_objects(&bytes, BASE, &c, BASE + 4096, 64), Err(FreelistError::OutOfSlab(_))));
        assert!(matches!(free_objects(&bytes, BASE, &c, BASE + 3, 64), Err(FreelistError::OutOfSlab(_))));
        // Garbage with hardening on: both variants fail, no panic.
        let h = cache(0xdead_beef);
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(free_objects(&garbage, BASE, &h, BASE, 64).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        prop_compose! {
            /// A slab of any geometry: order 0-3, object sizes with
            /// padding, a left red zone (debug caches), the free pointer
            /// anywhere in the object, any hardening.
            fn geometry()(order in 0u32..4, object_size in 8u32..600, pad in 0u32..64, red in prop_oneof![Just(0u32), Just(8), Just(64)],
                          random in prop_oneof![Just(0u64), any::<u64>()], swab in any::<bool>())
                         (order in Just(order), object_size in Just(object_size), pad in Just(pad), red in Just(red), random in Just(random),
                          swab in Just(swab), offset in 0..object_size.div_ceil(8)) -> (KmemCache, u32, bool) {
                let size = (red + object_size + pad).next_multiple_of(8);
                let cache = KmemCache {
                    address: 0,
                    name: "prop".into(),
                    size,
                    object_size,
                    free_pointer_offset: (offset * 8).min(size - red - 8),
                    random,
                    red_left_pad: red,
                    order,
                    reclaimable: false,
                };
                let objects = ((4096u32 << order) - red) / size;
                (cache, objects.max(1), swab)
            }
        }

        proptest! {
            /// Whatever the geometry, the objects put on the freelist (in
            /// any order) are exactly the ones decoded as free.
            #[test]
            fn decodes_any_freelist((cache, objects, swab) in geometry(), picks in proptest::collection::vec(any::<u32>(), 0..64)) {
                let span = (cache.red_left_pad + objects * cache.size) as usize;
                let mut bytes = vec![0x6bu8; span.max(8)];
                let mut order: Vec<usize> = picks.iter().map(|p| (*p % objects) as usize).collect();
                order.dedup();
                let mut seen = std::collections::HashSet::new();
                order.retain(|i| seen.insert(*i));
                let addr = |i: usize| BASE + (cache.red_left_pad + i as u32 * cache.size) as u64;
                for (k, &i) in order.iter().enumerate() {
                    let next = order.get(k + 1).map(|&j| addr(j)).unwrap_or(0);
                    let word = addr(i) + cache.free_pointer_offset as u64;
                    let stored = match (cache.random, swab) {
                        (0, _) => next,
                        (r, true) => next ^ r ^ word.swap_bytes(),
                        (r, false) => next ^ r ^ word,
                    };
                    let at = (word - BASE) as usize;
                    bytes[at..at + 8].copy_from_slice(&stored.to_le_bytes());
                }
                let first = order.first().map(|&i| addr(i)).unwrap_or(0);
                let free = free_objects(&bytes, BASE, &cache, first, objects).unwrap();
                let decoded: Vec<usize> = free.iter().enumerate().filter(|(_, f)| **f).map(|(i, _)| i).collect();
                let mut expected = order.clone();
                expected.sort_unstable();
                prop_assert_eq!(decoded, expected);
            }

            /// A slab that changed under the read (any bytes, any first
            /// pointer) is an error or a set of free objects: never a hang
            /// or a panic.
            #[test]
            fn garbage_never_hangs((cache, objects, _) in geometry(), noise in proptest::collection::vec(any::<u8>(), 64..4096), first in any::<u64>()) {
                let span = (cache.red_left_pad + objects * cache.size) as usize;
                let bytes: Vec<u8> = noise.iter().cycle().take(span).copied().collect();
                let near = BASE + first % (span as u64 + 64);
                let _ = free_objects(&bytes, BASE, &cache, near, objects);
                let _ = free_objects(&bytes, BASE, &cache, first, objects);
            }
        }
    }
}

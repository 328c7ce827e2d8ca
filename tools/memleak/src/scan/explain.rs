//! Every word of the representative explained: the seed's
//! manual crash session — `rd ADDR -S`, `x /20a`, `sym` — automated. Each
//! 8-byte word that means something gets a kind:
//!
//! - `poison`: LIST_POISON1/2 (include/linux/poison.h, x86_64's
//!   POISON_POINTER_DELTA 0xdead000000000000), slab poison and red zones;
//! - `self`: a pointer into the same object (an empty list_head);
//! - `symbol`: text, data or module symbol;
//! - `slab_object`: another slab object, with its cache, start and the
//!   offset pointed at, and (up to two hops) its own words;
//! - `vmalloc`: a vmalloc area, with its caller from /proc/vmallocinfo;
//! - `page`: a struct page in vmemmap;
//! - `kernel`: any other kernel address.
//!
//! Plain values (counters, sizes, user pointers) are left out: the words
//! carry no object bytes, so they are safe in fleet output (`--dump` adds
//! the raw bytes).

use sysak_kernel::procfs::VmallocArea;
use sysak_kernel::symbols::Kallsyms;

use sysak_kernel::slab::KmemCache;

use crate::report::{TypeCandidate, Word};

/// Slab pointers followed per object, so two hops stay bounded.
const MAX_FOLLOWED: usize = 8;
/// Kernel addresses start here on x86_64 (4- and 5-level paging).
const KERNEL_SPACE: u64 = 0xff00_0000_0000_0000;

/// Poison values of include/linux/poison.h on x86_64.
fn poison(value: u64) -> Option<&'static str> {
    Some(match value {
        0xdead_0000_0000_0100 => "LIST_POISON1",
        0xdead_0000_0000_0122 => "LIST_POISON2",
        0x6b6b_6b6b_6b6b_6b6b => "POISON_FREE (slab)",
        0x5a5a_5a5a_5a5a_5a5a => "POISON_INUSE (slab)",
        0xbbbb_bbbb_bbbb_bbbb => "SLUB_RED_INACTIVE",
        0xcccc_cccc_cccc_cccc => "SLUB_RED_ACTIVE",
        _ => return None,
    })
}

/// What the explainer reads of kernel memory (the scanner provides it).
pub trait KernelView {
    /// The slab object holding `address`: its cache and the object's start.
    fn slab_object(&self, address: u64) -> Option<(&KmemCache, u64)>;
    /// Read kernel memory; false when it cannot be read.
    fn read(&self, address: u64, buf: &mut [u8]) -> bool;
    /// The page frame whose struct page holds `address` (in vmemmap).
    fn page_frame(&self, address: u64) -> Option<u64>;
}

/// What explains words: a view of kernel memory, symbols and the vmalloc
/// areas.
pub struct Explainer<'a> {
    scanner: &'a dyn KernelView,
    symbols: &'a Kallsyms,
    vmalloc: Vec<VmallocArea>,
}

impl<'a> Explainer<'a> {
    /// `vmalloc`: /proc/vmallocinfo's areas (empty offline).
    pub fn new(scanner: &'a dyn KernelView, symbols: &'a Kallsyms, mut vmalloc: Vec<VmallocArea>) -> Explainer<'a> {
        vmalloc.sort_by_key(|a| a.start);
        Explainer { scanner, symbols, vmalloc }
    }

    /// The words of the object at `address` with contents `bytes`,
    /// following slab pointers `hops` deep.
    pub fn words(&self, bytes: &[u8], address: u64, hops: u32) -> Vec<Word> {
        let mut followed = 0;
        bytes
            .chunks_exact(8)
            .enumerate()
            .filter_map(|(i, w)| {
                let value = u64::from_le_bytes(w.try_into().unwrap());
                self.word(i * 8, value, address, bytes.len(), hops, &mut followed)
            })
            .collect()
    }

    fn word(&self, offset: usize, value: u64, address: u64, len: usize, hops: u32, followed: &mut usize) -> Option<Word> {
        if let Some(name) = poison(value) {
            return Some(Word { name: Some(name.into()), ..Word::new(offset, value, "poison") });
        }
        if value < KERNEL_SPACE {
            return None;
        }
        if (address..address + len as u64).contains(&value) {
            return Some(Word { object_offset: Some(value - address), ..Word::new(offset, value, "self") });
        }
        if let Some(r) = self.symbols.resolve(value) {
            return Some(Word { symbol: Some(r.to_string()), ..Word::new(offset, value, "symbol") });
        }
        if let Some((cache, start)) = self.scanner.slab_object(value) {
            let mut w = Word {
                cache: Some(cache.name.clone()),
                object: Some(format!("{start:#x}")),
                object_offset: Some(value - start),
                ..Word::new(offset, value, "slab_object")
            };
            if hops > 0 && *followed < MAX_FOLLOWED {
                *followed += 1;
                let mut pointee = vec![0u8; cache.object_size as usize];
                if self.scanner.read(start, &mut pointee) {
                    w.points_to = self.words(&pointee, start, hops - 1);
                }
            }
            return Some(w);
        }
        let i = self.vmalloc.partition_point(|a| a.start <= value);
        if let Some(area) = i.checked_sub(1).map(|i| &self.vmalloc[i]).filter(|a| value < a.start + a.size_bytes) {
            return Some(Word { caller: area.caller.clone(), ..Word::new(offset, value, "vmalloc") });
        }
        if let Some(pfn) = self.scanner.page_frame(value) {
            return Some(Word { name: Some(format!("struct page of pfn {pfn:#x}")), ..Word::new(offset, value, "page") });
        }
        Some(Word::new(offset, value, "kernel"))
    }
}

/// Candidates for the type of a dedicated cache's objects, from vmlinux
/// BTF: a struct named exactly like the cache (`task_struct`,
/// `vm_area_struct`) no larger than its objects (x86 appends the FPU state
/// to task_struct, so the object may be larger); or named like its stem
/// (`files_cache` → `files_struct`, `kernfs_node_cache` → `kernfs_node`)
/// whose size is the object size exactly (KMEM_CACHE() and
/// kmem_cache_create(…, sizeof(struct …)) make it so). kmalloc caches hold
/// any type: none. Absent when unsure.
pub fn type_candidates(types: &sysak_kernel::layout::KernelTypes, cache: &str, object_size: u64) -> Vec<TypeCandidate> {
    if sysak_kernel::slab::names::is_kmalloc_family(cache) {
        return Vec::new();
    }
    let name = cache.replace('-', "_");
    let stem = ["_cachep", "_cache"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(&name);
    let mut tried = vec![(name.clone(), true), (stem.to_string(), false), (format!("{stem}_struct"), false)];
    tried.dedup_by(|a, b| a.0 == b.0);
    tried
        .into_iter()
        .filter_map(|(candidate, exact_name)| {
            let size = types.struct_layout(&candidate).ok().flatten()?.size as u64;
            let evidence = match (exact_name, size == object_size) {
                (_, true) => format!("named like the cache, and sizeof is its object size ({object_size} bytes)"),
                (true, false) if size < object_size => {
                    format!("the cache's name; sizeof {size} bytes, objects {object_size} (a variable part appended)")
                }
                _ => return None,
            };
            Some(TypeCandidate { type_name: format!("struct {candidate}"), evidence })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedicated_caches_have_their_struct_as_candidate() {
        let Ok(types) = sysak_kernel::layout::KernelTypes::load(std::path::Path::new("/sys/kernel/btf/vmlinux")) else {
            panic!("these tests run on a kernel with BTF (/sys/kernel/btf/vmlinux)");
        };
        let size = |cache: &str| -> u64 {
            std::fs::read_to_string(format!("/sys/kernel/slab/{cache}/object_size")).unwrap().trim().parse().unwrap()
        };
        let names = |cache: &str, object_size| -> Vec<String> {
            type_candidates(&types, cache, object_size).into_iter().map(|c| c.type_name).collect()
        };
        assert_eq!(names("task_struct", size("task_struct")), ["struct task_struct"]);
        assert_eq!(names("files_cache", size("files_cache")), ["struct files_struct"]);
        assert_eq!(names("kernfs_node_cache", size("kernfs_node_cache")), ["struct kernfs_node"]);
        assert!(names("files_cache", size("files_cache") + 8).is_empty(), "a stem whose size does not match is no candidate");
        assert!(names("task_struct", 64).is_empty(), "objects smaller than the struct are not it");
        assert!(names("kmalloc-512", 512).is_empty(), "kmalloc holds any type");
    }

    #[test]
    fn poison_values_are_named() {
        assert_eq!(poison(0xdead000000000100), Some("LIST_POISON1"));
        assert_eq!(poison(0xdead000000000122), Some("LIST_POISON2"));
        assert_eq!(poison(0x6b6b6b6b6b6b6b6b), Some("POISON_FREE (slab)"));
        assert_eq!(poison(0xdead000000000000), None);
    }

    #[test]
    fn descriptions_read_like_crash() {
        let w = Word {
            cache: Some("kmalloc-32".into()),
            object: Some("0xffff888100001000".into()),
            object_offset: Some(8),
            ..Word::new(16, 0xffff888100001008, "slab_object")
        };
        assert_eq!(w.describe(), "+0x010 slab_object kmalloc-32 object 0xffff888100001000+0x8");
        assert_eq!(
            Word { name: Some("LIST_POISON2".into()), ..Word::new(8, 0xdead000000000122, "poison") }.describe(),
            "+0x008 poison      LIST_POISON2"
        );
    }
}

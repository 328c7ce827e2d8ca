//! Reads the same kernel addresses through the kcore and BPF backends and
//! compares the bytes: the kernel text, every struct kmem_cache on the
//! slab_caches list, and allocated objects of one cache. Prints one JSON
//! line; exit 1 on any mismatch. Used by tests/vm (a kernel with both).
//!
//! Usage: kmem-compare [CACHE]

use std::path::Path;

use sysak_kernel::kmem::bpf::BpfReader;
use sysak_kernel::kmem::elfcore::ElfCore;
use sysak_kernel::kmem::KernelMemory;
use sysak_kernel::layout::{KernelAddresses, KernelTypes, SlabLayout};
use sysak_kernel::procfs::ProcFs;
use sysak_kernel::slab::{caches, walk};
use sysak_kernel::symbols::Kallsyms;

fn main() -> Result<(), String> {
    let cache_name = std::env::args().nth(1).unwrap_or_else(|| "kmalloc-256".into());
    let kcore = ElfCore::open_kcore(Path::new("/proc/kcore"))?;
    let bpf = BpfReader::open().map_err(|e| e.to_string())?;
    let symbols = Kallsyms::load(Path::new("/proc")).map_err(|e| e.to_string())?;
    let procfs = ProcFs::default();
    let layout = SlabLayout::from_btf(&KernelTypes::load(Path::new("/sys/kernel/btf/vmlinux")).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let addrs = KernelAddresses::discover(&kcore, &symbols, &procfs, kcore.direct_map_hint())?;
    let addrs_bpf = KernelAddresses::discover(&bpf, &symbols, &procfs, bpf.direct_map_hint())?;
    let pfns = procfs.read_slab_pfns().map_err(|e| e.to_string())?;
    let any = walk::any_cache(&kcore, &layout, &addrs, &pfns)?;
    let text = symbols.address_of("_text").ok_or("no _text")?;
    let list_kcore = caches::list_caches(&kcore, &layout, any.address, text)?;
    let list_bpf = caches::list_caches(&bpf, &layout, any.address, text)?;
    let mut regions: Vec<(u64, usize)> = vec![(text, 1 << 20)];
    regions.extend(list_kcore.iter().map(|c| (c.address, layout.cache.list + 16)));
    let cache = list_kcore.iter().find(|c| c.name == cache_name).ok_or(format!("no cache {cache_name}"))?;
    let mut objects = Vec::new();
    walk::walk_cache(&kcore, &layout, &addrs, &pfns, cache, 256, |a, _| objects.push(a));
    regions.extend(objects.iter().map(|a| (*a, cache.object_size as usize)));
    let (mut bytes, mut mismatches) = (0usize, Vec::new());
    for (addr, len) in &regions {
        let (mut a, mut b) = (vec![0u8; *len], vec![0u8; *len]);
        let ra = kcore.read(*addr, &mut a);
        let rb = bpf.read(*addr, &mut b);
        if ra.is_err() || rb.is_err() || a != b {
            mismatches.push(format!("{addr:#x}+{len}: kcore {ra:?} bpf {rb:?}"));
        }
        bytes += len;
    }
    let same_bases = addrs.page_offset == addrs_bpf.page_offset && addrs.vmemmap == addrs_bpf.vmemmap;
    let same_lists = list_kcore == list_bpf;
    println!(
        "{{\"regions\": {}, \"bytes\": {bytes}, \"objects\": {}, \"caches\": {}, \"same_bases\": {same_bases}, \"same_cache_lists\": {same_lists}, \"page_offset\": \"{:#x}\", \"mismatches\": {:?}}}",
        regions.len(),
        objects.len(),
        list_kcore.len(),
        addrs.page_offset,
        mismatches
    );
    if mismatches.is_empty() && same_bases && same_lists {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

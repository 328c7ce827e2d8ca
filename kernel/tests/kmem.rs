//! Reading this kernel's memory for real: the BPF reader, the direct map
//! and vmemmap discovery, BTF layouts, and a slab walk checked against
//! objects this test allocates (SysV messages of a unique pattern).

use std::path::Path;
use std::sync::Mutex;

use sysak_kernel::kmem::bpf::BpfReader;
use sysak_kernel::kmem::{KernelMemory, ReadError};
use sysak_kernel::layout::{KernelAddresses, KernelTypes, SlabLayout};
use sysak_kernel::procfs::ProcFs;
use sysak_kernel::slab::{caches, walk, walk_cache};
use sysak_kernel::symbols::Kallsyms;

static KERNEL: Mutex<()> = Mutex::new(());

fn btf() -> KernelTypes {
    KernelTypes::load(Path::new("/sys/kernel/btf/vmlinux")).unwrap()
}

/// The test-run program runs in the calling thread: `current` is this
/// thread, and its task_struct's comm is our thread name.
#[test]
fn bpf_reader_reads_this_threads_task_struct() {
    let reader = BpfReader::open().unwrap();
    let task = reader.current_task().expect("bpf_get_current_task in a test-run program");
    let comm_offset = btf().require_struct("task_struct").unwrap().offset("comm").unwrap() as u64;
    let comm = reader.read_cstr(task + comm_offset, 16).unwrap();
    let tid = unsafe { libc::gettid() };
    let expected = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
    assert_eq!(comm, expected.trim_end());
}

#[test]
fn faults_are_per_page_errors() {
    let reader = BpfReader::open().unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(reader.read(0x1000, &mut buf), Err(ReadError::NotKernel(0x1000)));
    // The first page of the vmalloc area's guard space is never mapped.
    let hole = 0xffff_c8ff_ffff_0000;
    assert_eq!(reader.read(hole, &mut buf), Err(ReadError::Unmapped(hole)));
    // A range across the end of this thread's kernel stack (a vmalloc area,
    // CONFIG_VMAP_STACK, followed by an unmapped guard page): the stack's
    // top page reads, the guard page alone is listed as failed and zeroed.
    let task = reader.current_task().unwrap();
    let stack_offset = btf().require_struct("task_struct").unwrap().offset("stack").unwrap() as u64;
    let stack = reader.read_u64(task + stack_offset).unwrap();
    let guard = (1..=16u64)
        .map(|pages| stack + pages * 4096)
        .find(|page| reader.read(*page, &mut buf).is_err())
        .expect("no unmapped guard page within 64 KiB above the stack (CONFIG_VMAP_STACK off?)");
    let mut across = vec![0xeeu8; 8192];
    let failed = reader.read_pages(guard - 4096, &mut across).unwrap();
    assert_eq!(failed, vec![guard]);
    assert!(across[..4096].iter().any(|b| *b != 0 && *b != 0xee), "the stack's top page was not read");
    assert!(across[4096..].iter().all(|b| *b == 0), "the failed page is not zero-filled");
    assert!(reader.read(guard - 4096, &mut across).is_err(), "a whole read across the guard must fail");
}

fn slab_setup() -> (BpfReader, SlabLayout, KernelAddresses, Vec<u64>, Vec<sysak_kernel::slab::KmemCache>) {
    let reader = BpfReader::open().unwrap();
    let symbols = Kallsyms::load(Path::new("/proc")).unwrap();
    let procfs = ProcFs::default();
    let layout = SlabLayout::from_btf(&btf()).unwrap();
    let addrs = KernelAddresses::discover(&reader, &symbols, &procfs, reader.direct_map_hint()).unwrap();
    let pfns = procfs.read_slab_pfns().unwrap();
    let any = walk::any_cache(&reader, &layout, &addrs, &pfns).unwrap();
    let list = caches::list_caches(&reader, &layout, any.address, symbols.address_of("_text").unwrap()).unwrap();
    (reader, layout, addrs, pfns, list)
}

/// Walking slab_caches reproduces /proc/slabinfo's cache names and sizes.
#[test]
fn cache_list_matches_slabinfo() {
    let (_, _, _, _, list) = slab_setup();
    let info = ProcFs::default().read_slabinfo().unwrap();
    let mut walked: Vec<(String, u32)> = list.iter().map(|c| (c.name.clone(), c.size)).collect();
    let mut listed: Vec<(String, u32)> = info.caches.iter().map(|c| (c.name.clone(), c.objsize_bytes as u32)).collect();
    walked.sort();
    listed.sort();
    assert_eq!(walked, listed);
}

#[allow(dead_code)] // shared with the sysak tests, which use all of it
#[path = "../../tests/common/msgq.rs"]
mod msgq;

const TEXT: usize = 200; // 248-byte msg_msg: a 256-byte cache
const MARK: &[u8] = b"SYSAK-WALK-TEST:";

/// Objects of `cache` whose message text starts with MARK.
fn count_marked(setup: &(BpfReader, SlabLayout, KernelAddresses, Vec<u64>, Vec<sysak_kernel::slab::KmemCache>), cache: &str) -> (u64, u64) {
    let (reader, layout, addrs, pfns, list) = setup;
    let cache = list.iter().find(|c| c.name == cache).unwrap();
    let mut marked = 0;
    let at = msgq::MSG_MSG_HEADER_BYTES;
    let stats = walk_cache(reader, layout, addrs, pfns, cache, u64::MAX, |_, bytes| {
        marked += (bytes[at..at + MARK.len()] == *MARK) as u64;
    });
    (marked, stats.frozen_slabs)
}

/// Kept messages are found as allocated objects; received (freed) ones,
/// whose bytes are still in memory, are not — the freelist decoding is
/// right. Objects cached by a CPU (per-CPU slabs, 6.18 sheaves) look
/// allocated: the slack below is that, and is printed.
#[test]
fn slab_walk_finds_kept_messages_not_freed_ones() {
    let _lock = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    const KEPT: usize = 3000;
    const FREED: usize = 3000;
    let slabinfo = std::fs::read_to_string("/proc/slabinfo").unwrap();
    let cache = ["msg_msg-256", "kmalloc-cg-256", "kmalloc-256"]
        .into_iter()
        .find(|c| slabinfo.lines().any(|l| l.starts_with(&format!("{c} "))))
        .unwrap();
    let bytes = (KEPT + FREED) * (TEXT + msgq::MSG_MSG_HEADER_BYTES) * 2;
    let kept = msgq::MessageQueue::new(bytes).unwrap();
    let freed = msgq::MessageQueue::new(bytes).unwrap();
    let text = |k: usize, i: usize| if i < MARK.len() { MARK[i] } else { (k >> (8 * (i % 2))) as u8 };
    freed.send::<TEXT>(FREED, text).unwrap();
    kept.send::<TEXT>(KEPT, text).unwrap();
    assert_eq!(freed.receive::<TEXT>(FREED), FREED);

    let setup = slab_setup();
    let (found, per_cpu) = count_marked(&setup, cache);
    // Per-CPU caching holds at most a few slabs' worth of freed objects.
    let slack = 256;
    eprintln!("{cache}: {found} marked objects for {KEPT} kept ({per_cpu} per-CPU slabs)");
    assert!(found >= KEPT as u64 && found <= (KEPT + slack) as u64, "{found} objects for {KEPT} kept messages");

    drop(kept);
    let (after, _) = count_marked(&setup, cache);
    eprintln!("{cache}: {after} marked objects after removing the queue");
    assert!(after <= slack as u64, "{after} objects after freeing every message");
}

//! Page allocations counted in the kernel, for real: pipes written from
//! this process allocate order-0 unmovable pages at `pipe_write`; the
//! tallies, the frees and the unwound stacks must show them.

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::path::Path;

use sysak_kernel::layout::KernelTypes;
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::bpf_tally::PageTally;
use sysak_kernel::trace::page::probes::tally_probes;

/// Write and read back `rounds` × 64 KiB through a pipe: 16 page
/// allocations and frees a round.
fn pipe_rounds(rounds: usize) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) };
    let (mut r, mut w) = unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) };
    let buf = vec![7u8; 64 << 10];
    let mut back = vec![0u8; 64 << 10];
    for _ in 0..rounds {
        w.write_all(&buf).unwrap();
        r.read_exact(&mut back).unwrap();
    }
}

/// Pages the kernel's own event counters say were allocated
/// (`pgalloc_*` in /proc/vmstat: per-CPU events, summed exactly on read).
fn pgalloc() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("pgalloc_"))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum()
}

/// (what the tally read, pages vmstat counted from before attaching to
/// after detaching).
fn tally(sample_shift: u32, rounds: usize) -> (sysak_kernel::trace::bpf_tally::TallyRead, u64) {
    let types = KernelTypes::load(Path::new("/sys/kernel/btf/vmlinux")).unwrap();
    let (args, frees) = tally_probes(&types).unwrap();
    let mut t = PageTally::load(args, &frees, sample_shift).unwrap();
    let before = pgalloc();
    t.start().unwrap();
    pipe_rounds(rounds);
    t.stop();
    let counted = pgalloc() - before;
    (t.read().unwrap(), counted)
}

fn pages(read: &sysak_kernel::trace::bpf_tally::TallyRead) -> u64 {
    read.tallies.iter().map(|t| t.allocations << t.order).sum()
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The pipe reuses a freed page now and then (pipe->tmp_page), so how
/// many pages it allocates is the kernel's to say: the tallies must agree
/// with vmstat's event counters, which count the same allocations, and
/// every allocation unwound must be in a stack or counted as lost.
#[test]
fn tallies_agree_with_vmstat_and_every_allocation_is_unwound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const ROUNDS: usize = 2000;
    let (read, counted) = tally(0, ROUNDS);
    let tallied = pages(&read);
    // vmstat also counts the moments between its reads and the attach and
    // detach; bulk allocations (alloc_pages_bulk) may fire no tracepoint.
    assert!(tallied <= counted && tallied * 10 >= counted * 9, "tallied {tallied} pages, vmstat counted {counted}");
    assert!(tallied >= ROUNDS as u64, "the pipe allocated pages: {tallied}");
    let allocations: u64 = read.tallies.iter().map(|t| t.allocations).sum();
    let unwound: u64 = read.stacks.iter().map(|(_, n, _)| n).sum();
    assert_eq!(unwound + read.stack_failures, allocations, "every allocation unwound once");
    let symbols = Kallsyms::load(Path::new("/proc")).unwrap();
    let pipe: u64 = read
        .stacks
        .iter()
        .filter(|(frames, _, _)| frames.iter().any(|ip| symbols.format(*ip).contains("pipe_write")))
        .map(|(_, n, _)| n)
        .sum();
    assert!(pipe * 2 >= allocations, "the pipe writer made most of them: {pipe} of {allocations}");
    assert!(read.frees_by_order.first().copied().unwrap_or(0) * 2 >= allocations, "frees {:?}", read.frees_by_order);
    assert_eq!(read.key_overflow, 0);
}

#[test]
fn sampled_stacks_are_a_fraction_and_tallies_stay_exact() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const ROUNDS: usize = 4000;
    let (read, counted) = tally(4, ROUNDS);
    let tallied = pages(&read);
    assert!(tallied <= counted && tallied * 10 >= counted * 9, "tallied {tallied} pages, vmstat counted {counted}");
    let all: u64 = read.tallies.iter().map(|t| t.allocations).sum();
    let unwound: u64 = read.stacks.iter().map(|(_, n, _)| n).sum::<u64>() + read.stack_failures;
    // 1 in 16, random: well inside [1/32, 1/8] of everything allocated.
    assert!(unwound * 32 >= all && unwound * 8 <= all, "{unwound} unwound of {all}");
}

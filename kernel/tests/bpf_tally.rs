//! Page allocations counted in the kernel, for real: pipes written from
//! this process allocate order-0 unmovable pages at `pipe_write`; the
//! tallies, the frees and the unwound stacks must show them.

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::path::Path;

use sysak_kernel::layout::KernelTypes;
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::bpf_tally::PageTally;
use sysak_kernel::trace::page_probes::tally_probes;

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

fn tally(sample_shift: u32, rounds: usize) -> sysak_kernel::trace::bpf_tally::TallyRead {
    let types = KernelTypes::load(Path::new("/sys/kernel/btf/vmlinux")).unwrap();
    let (args, frees) = tally_probes(&types).unwrap();
    let mut t = PageTally::load(args, &frees, sample_shift).unwrap();
    t.start().unwrap();
    pipe_rounds(rounds);
    t.stop();
    t.read().unwrap()
}

#[test]
fn every_stack_unwound_names_the_pipe_writer() {
    const ROUNDS: usize = 2000;
    let read = tally(0, ROUNDS);
    let order0_unmovable: u64 = read.tallies.iter().filter(|t| t.order == 0 && t.migratetype == 0).map(|t| t.allocations).sum();
    let pages = (ROUNDS * 16) as u64;
    assert!(order0_unmovable >= pages, "{order0_unmovable} order-0 unmovable allocations, the pipe made {pages}: {:?}", read.tallies);
    assert!(read.frees_by_order.first().copied().unwrap_or(0) >= pages * 9 / 10, "frees {:?}", read.frees_by_order);
    let symbols = Kallsyms::load(Path::new("/proc")).unwrap();
    let pipe: u64 = read
        .stacks
        .iter()
        .filter(|(frames, _, _)| frames.iter().any(|ip| symbols.format(*ip).contains("pipe_write")))
        .map(|(_, n, _)| n)
        .sum();
    // Every allocation unwound: the pipe writer's stacks hold all its pages
    // but those whose stack was lost (a bucket taken), which are counted.
    assert!(pipe + read.stack_failures >= pages, "{pipe} pipe_write allocations + {} lost, {pages} made", read.stack_failures);
    assert_eq!(read.key_overflow, 0);
}

#[test]
fn sampled_stacks_are_a_fraction_and_tallies_stay_exact() {
    const ROUNDS: usize = 4000;
    let read = tally(4, ROUNDS);
    let pages = (ROUNDS * 16) as u64;
    let all: u64 = read.tallies.iter().map(|t| t.allocations).sum();
    assert!(all >= pages, "{all} allocations, {pages} made");
    let unwound: u64 = read.stacks.iter().map(|(_, n, _)| n).sum::<u64>() + read.stack_failures;
    // 1 in 16, random: well inside [1/32, 1/8] of everything allocated.
    assert!(unwound * 32 >= all && unwound * 8 <= all, "{unwound} unwound of {all}");
}

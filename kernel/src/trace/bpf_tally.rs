//! Page allocations counted in the kernel (pagealloc): a BPF
//! program on the raw tracepoint `mm_page_alloc` adds each allocation to
//! a hash keyed by (order, migratetype, GFP mask), and frees
//! (`mm_page_free`, `mm_page_free_batched`) to an array by order. Nothing
//! travels to user space during the window, so the tallies are exact.
//!
//! Call sites need the allocation's stack (the tracepoint has no call
//! site), and unwinding is the dominant cost (~2 µs on 6.18): one
//! allocation in `2^sample_shift` is unwound (chosen by
//! `bpf_get_prandom_u32`), its stack kept by content
//! ([`super::bpf_stacks`]) and counted per stack; user space scales the
//! counts back and calls them estimates. `sample_shift` 0 unwinds every
//! allocation: exact.
//!
//! Same rules as [`super::bpf_outstanding`]: raw tracepoints, argument
//! positions checked against BTF by the caller, everything loaded before
//! anything is attached, file descriptors only (nothing outlives the
//! process).

use std::os::fd::OwnedFd;

use crate::bpf::insn::{self, helper, Builder, Cond, Size, FP, R0, R1, R2, R6, R7, R9};
use crate::bpf::sys::{MapType, ProgramType};
use crate::bpf::{BpfError, Map, Program};

use super::bpf_stacks::{StackTable, MAX_DISTINCT_STACKS, RESULT_AT, STACK_LOST};
use super::page::probes::{FreeTracepoint, PageAllocArgs};

/// Distinct (order, migratetype, gfp) keys held.
const MAX_KEYS: u32 = 16_384;
/// Orders counted in the free array (MAX_PAGE_ORDER is 10 on x86_64).
const ORDERS: u32 = 16;
const COUNTER_KEY_OVERFLOW: u32 = 0;
const COUNTER_STACK_FAILURES: u32 = 1;
const COUNTER_STACK_OVERFLOW: u32 = 2;

/// One tally: allocations of one order, migratetype and GFP mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Order.
    pub order: u32,
    /// Migratetype.
    pub migratetype: u32,
    /// GFP mask.
    pub gfp: u32,
    /// Allocations.
    pub allocations: u64,
}

/// What the window counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyRead {
    /// Exact allocation counts.
    pub tallies: Vec<Tally>,
    /// Exact frees by order.
    pub frees_by_order: Vec<u64>,
    /// Unwound allocations per stack (frames innermost first): (frames,
    /// allocations, pages), unscaled.
    pub stacks: Vec<(Vec<u64>, u64, u64)>,
    /// Allocations not counted: key table full.
    pub key_overflow: u64,
    /// Sampled allocations whose stack was lost (the stack table full, or
    /// the copy failed).
    pub stack_failures: u64,
    /// Program runs the kernel skipped (None before 5.12).
    pub recursion_misses: Option<u64>,
}

/// The loaded programs and their maps.
pub struct PageTally {
    tallies: Map,
    frees: Map,
    stacks: StackTable,
    by_stack: Map,
    counters: Map,
    sample_shift: u32,
    programs: Vec<(&'static str, Program)>,
    links: Vec<OwnedFd>,
}

fn count(b: &mut Builder, counters: &Map, index: u32) {
    b.count(counters.fd(), index, -68);
}

/// An addend of [`add_or_insert`]: the constant 1, or a callee-saved
/// register (R6–R9 survive helper calls; R1–R5 do not).
#[derive(Clone, Copy)]
enum Addend {
    One,
    Reg(u8),
}

/// `map[key] += adds`, falling through in every case: look up and add;
/// else insert the value at `fresh` (BPF_NOEXIST) and, when another CPU
/// inserted first, look up and add again; count `overflow` when the map
/// is full. `adds` are (offset in the value, addend). Clobbers R0–R5, R9.
fn add_or_insert(b: &mut Builder, map: &Map, key: i16, fresh: i16, adds: &[(i16, Addend)], counters: &Map, overflow: u32) {
    let lookup = |b: &mut Builder| {
        b.map_lookup(map.fd(), key).push([insn::mov(R9, R0)]);
    };
    let add = |b: &mut Builder| {
        for (off, addend) in adds {
            match addend {
                Addend::One => b.push([insn::mov_imm(R1, 1), insn::atomic_add(R9, *off, R1)]),
                Addend::Reg(r) => b.push([insn::atomic_add(R9, *off, *r)]),
            };
        }
    };
    lookup(b);
    b.skip_if_imm(Cond::Eq, R9, 0, add);
    b.skip_if_imm(Cond::Ne, R9, 0, |b| {
        b.map_update(map.fd(), key, fresh, insn::NOEXIST);
        b.skip_if_imm(Cond::Eq, R0, 0, |b| {
            lookup(b);
            b.skip_if_imm(Cond::Eq, R9, 0, add);
            b.skip_if_imm(Cond::Ne, R9, 0, |b| count(b, counters, overflow));
        });
    });
}

impl PageTally {
    /// Create the maps and load (verify) the programs; nothing attached.
    pub fn load(args: PageAllocArgs, free_tracepoints: &[FreeTracepoint], sample_shift: u32) -> Result<PageTally, BpfError> {
        // Per-CPU: every page allocation and free adds to these, and a
        // shared counter's cache line would bounce between CPUs.
        let tallies = Map::create(MapType::PercpuHash, "sysak_tally", 8, 8, MAX_KEYS, 0)?;
        let frees = Map::create(MapType::PercpuArray, "sysak_frees", 4, 8, ORDERS, 0)?;
        let stacks = StackTable::create()?;
        // One count per stack the table can hold.
        let by_stack = Map::create(MapType::Hash, "sysak_bystk", 8, 16, MAX_DISTINCT_STACKS, 0)?;
        let counters = Map::create(MapType::Array, "sysak_tcnt", 4, 8, 3, 0)?;
        let mut programs = vec![(
            "mm_page_alloc",
            Program::load(
                ProgramType::RawTracepoint,
                "sysak_tally",
                &alloc_program(args, sample_shift, &tallies, &stacks, &by_stack, &counters),
                0,
            )?,
        )];
        for (tp, order_arg) in free_tracepoints {
            programs.push((tp, Program::load(ProgramType::RawTracepoint, "sysak_tfree", &free_program(*order_arg, &frees), 0)?));
        }
        Ok(PageTally { tallies, frees, stacks, by_stack, counters, sample_shift, programs, links: Vec::new() })
    }

    /// One allocation in this many is unwound.
    pub fn sample_every(&self) -> u64 {
        1 << self.sample_shift
    }

    /// Attach every program.
    pub fn start(&mut self) -> Result<(), BpfError> {
        for (tp, prog) in &self.programs {
            self.links.push(prog.attach_raw_tracepoint(tp)?);
        }
        Ok(())
    }

    /// Detach everything.
    pub fn stop(&mut self) {
        self.links.clear();
    }

    /// Read the counts (after [`PageTally::stop`]).
    pub fn read(&self) -> Result<TallyRead, BpfError> {
        let word = |v: &[u8], i: usize| u64::from_le_bytes(v[i * 8..i * 8 + 8].try_into().unwrap());
        // A per-CPU u64 reads as one word per possible CPU.
        let sum = |v: &[u8]| (0..v.len() / 8).map(|i| word(v, i)).sum::<u64>();
        let mut out = TallyRead::default();
        self.tallies.dump(4096, |k, v| {
            let key = u64::from_le_bytes(k.try_into().unwrap());
            out.tallies.push(Tally {
                order: (key & 0xff) as u32,
                migratetype: ((key >> 8) & 0xff) as u32,
                gfp: (key >> 32) as u32,
                allocations: sum(v),
            });
        })?;
        out.tallies.sort_by_key(|t| (t.order, t.migratetype, t.gfp));
        let mut v = vec![0u8; self.frees.read_value_size()];
        for order in 0..ORDERS {
            self.frees.lookup(&order.to_le_bytes(), &mut v)?;
            out.frees_by_order.push(sum(&v));
        }
        while out.frees_by_order.last() == Some(&0) {
            out.frees_by_order.pop();
        }
        let mut frames = self.stacks.frames()?;
        self.by_stack.dump(4096, |k, v| {
            if let Some(ips) = frames.remove(&u64::from_le_bytes(k.try_into().unwrap())) {
                out.stacks.push((ips, word(v, 0), word(v, 1)));
            }
        })?;
        let counter = |i: u32| -> Result<u64, BpfError> {
            let mut v = [0u8; 8];
            self.counters.lookup(&i.to_le_bytes(), &mut v)?;
            Ok(u64::from_le_bytes(v))
        };
        out.key_overflow = counter(COUNTER_KEY_OVERFLOW)?;
        out.stack_failures = counter(COUNTER_STACK_FAILURES)? + counter(COUNTER_STACK_OVERFLOW)?;
        out.recursion_misses = Some(0);
        for (_, prog) in &self.programs {
            out.recursion_misses = match (out.recursion_misses, prog.recursion_misses()?) {
                (Some(sum), Some(n)) => Some(sum + n),
                _ => None,
            };
        }
        Ok(out)
    }
}

/// The allocation program. Stack layout: fp-8 tally key, fp-16 the value
/// 1 then the stack's hash ([`RESULT_AT`]), fp-40 {1, pages} for a new
/// stack, fp-68 a counter index; the stack table's frames below fp-80. R6
/// ctx, R7 pages.
fn alloc_program(
    args: PageAllocArgs,
    sample_shift: u32,
    tallies: &Map,
    stacks: &StackTable,
    by_stack: &Map,
    counters: &Map,
) -> Vec<insn::Insn> {
    let mut b = Builder::new();
    b.push([
        insn::mov(R6, R1),
        insn::load(Size::DW, R7, R6, insn::ctx_arg(args.order)),
        insn::and_imm(R7, 0x1f),
        // key = order | (migratetype & 0xff) << 8 | gfp << 32
        insn::load(Size::DW, R1, R6, insn::ctx_arg(args.migratetype)),
        insn::and_imm(R1, 0xff),
        insn::lsh_imm(R1, 8),
        insn::or(R1, R7),
        insn::load(Size::DW, R2, R6, insn::ctx_arg(args.gfp)),
        insn::lsh_imm(R2, 32),
        insn::or(R1, R2),
        insn::store(Size::DW, FP, -8, R1),
        insn::store_imm(Size::DW, FP, -16, 1),
        // pages = 1 << order
        insn::mov_imm(R1, 1),
        insn::lsh(R1, R7),
        insn::mov(R7, R1),
    ]);
    add_or_insert(&mut b, tallies, -8, -16, &[(0, Addend::One)], counters, COUNTER_KEY_OVERFLOW);
    if sample_shift > 0 {
        b.push([insn::call(helper::GET_PRANDOM_U32), insn::and_imm(R0, (1 << sample_shift) - 1)]).exit_if_imm(Cond::Ne, R0, 0);
    }
    stacks.unwind(&mut b);
    b.push([insn::load(Size::DW, R1, FP, RESULT_AT)]);
    b.skip_if_imm(Cond::Ne, R1, STACK_LOST, |b| {
        count(b, counters, COUNTER_STACK_FAILURES);
        b.return_zero();
    });
    b.push([insn::store_imm(Size::DW, FP, -40, 1), insn::store(Size::DW, FP, -32, R7)]);
    add_or_insert(&mut b, by_stack, RESULT_AT, -40, &[(0, Addend::One), (8, Addend::Reg(R7))], counters, COUNTER_STACK_OVERFLOW);
    b.finish()
}

/// A free program: `frees[order] += 1`; `order_arg` None for
/// `mm_page_free_batched` (order 0).
fn free_program(order_arg: Option<usize>, frees: &Map) -> Vec<insn::Insn> {
    let mut b = Builder::new();
    match order_arg {
        Some(i) => b.push([insn::load(Size::DW, R1, R1, insn::ctx_arg(i)), insn::and_imm(R1, (ORDERS - 1) as i32)]),
        None => b.push([insn::mov_imm(R1, 0)]),
    };
    b.push([insn::store(Size::W, FP, -4, R1)])
        .map_lookup(frees.fd(), -4)
        .exit_if_imm(Cond::Eq, R0, 0)
        .push([insn::mov_imm(R1, 1), insn::atomic_add(R0, 0, R1)]);
    b.finish()
}

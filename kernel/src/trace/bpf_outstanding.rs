//! An outstanding-allocation set kept in the kernel: BPF programs on raw
//! tracepoints insert each traced allocation into a hash keyed by address
//! (or struct page) and delete it on free, so frees never travel to user
//! space. At the end user space reads what is left, in batches.
//!
//! Measured on 6.18 (docs/kernel-facts.md): a workload whose every allocation is
//! traced runs ~2.6× slower with stacks, and an untraced size class pays
//! ~1.1–1.2× — against 3.2× / 1.7× for perf samples with a user-space set.
//!
//! Choices, each from a measurement in docs/kernel-facts.md:
//! - raw tracepoints (BPF_RAW_TRACEPOINT_OPEN), never
//!   PERF_EVENT_IOC_SET_BPF: a raw tracepoint program does not change what
//!   other tracers of the same tracepoint see;
//! - argument positions from BTF's `btf_trace_<name>` prototypes;
//! - every program is loaded before any is attached (the verifier's own
//!   allocations would be traced), frees are attached before allocations;
//! - what can make the answer wrong is counted: hash insert failures (table
//!   full) and `recursion_misses` (a skipped free becomes a false leak);
//! - stacks are kept by content ([`super::bpf_stacks`]): no call path is
//!   lost to a stack map's bucket collision; a full table is counted.
//!
//! Everything is file descriptors: programs detach and maps vanish when the
//! process exits, even on SIGKILL.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use crate::bpf::insn::{self, helper, Builder, Cond, Size, FP, R0, R1, R2, R6, R7, R9};
use crate::bpf::sys::{MapType, ProgramType};
use crate::bpf::{BpfError, Map, Program};

use super::bpf_stacks::{StackTable, NOT_SAMPLED, RESULT_AT};
use super::followed::{self, AddressSample};

/// Where an allocation's size comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bytes {
    /// Always this many bytes (a cache's object size).
    Const(u64),
    /// The tracepoint argument at this index.
    Arg(usize),
    /// `page_size << order`, the order being the argument at this index.
    PageOrder {
        /// Bytes in a page.
        page_size: u64,
        /// Argument holding the order.
        order_arg: usize,
    },
}

/// A tracepoint whose hits are allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocProbe {
    /// Raw tracepoint name ("kmalloc").
    pub tracepoint: String,
    /// Argument that is the allocation's key (the returned pointer).
    pub key_arg: usize,
    /// Argument that is the call site, if the tracepoint has one.
    pub call_site_arg: Option<usize>,
    /// Size of the allocation.
    pub bytes: Bytes,
    /// Only hits whose argument `.0` equals `.1`.
    pub filter: Option<(usize, u64)>,
    /// Skip hits whose argument `.0` equals `.1` (any of them).
    pub exclude: Vec<(usize, u32)>,
}

/// A tracepoint whose hits free a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeProbe {
    /// Raw tracepoint name ("kfree").
    pub tracepoint: String,
    /// Argument holding the freed key.
    pub key_arg: usize,
}

/// Which allocations get their kernel stack unwound: the unwind is the
/// dominant cost (~1.8 µs an allocation on 6.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackPolicy {
    /// No stacks.
    None,
    /// Every traced allocation.
    Every,
    /// The first `n` allocations of each call site; later ones carry the
    /// stack of the newest of those (an approximation: a call site reached
    /// through many paths shows only the first `n` of them).
    PerCallSite(u32),
    /// One allocation in `2^shift`, chosen at random (`bpf_get_prandom_u32`);
    /// the others carry no stack. For tracepoints without a call site,
    /// where every stack would cost an unwind.
    Sampled(u32),
}

/// Objects allocated before the window whose frees the free programs
/// count: the members of a stock ([`super::followed`]). Each free of an
/// address the outstanding set does not hold is tested against the sample
/// rule, and only a sampled address is looked up, then deleted: what is
/// left at the end did not die by a traced free.
#[derive(Debug, Clone, Copy)]
pub struct Followed<'a> {
    /// The addresses followed (every one taken by `sample`).
    pub addresses: &'a [u64],
    /// How they were chosen.
    pub sample: AddressSample,
}

/// One outstanding allocation read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key (address).
    pub key: u64,
    /// CLOCK_MONOTONIC ns of the allocation.
    pub time_ns: u64,
    /// Call site (0 when the tracepoint has none).
    pub call_site: u64,
    /// Bytes.
    pub bytes: u64,
    /// The hash of its kernel stack, when stacks were asked for and kept
    /// (the frames come from [`OutstandingTracer::drain`]).
    pub stack: Option<u64>,
}

/// Counters that qualify the result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InKernelStats {
    /// Allocations not inserted (hash full).
    pub insert_failures: u64,
    /// Allocations whose stack could not be stored (stack table full).
    pub stack_failures: u64,
    /// Program runs the kernel skipped (recursion): frees skipped this way
    /// may show as false leaks. `None` before 5.12: the kernel cannot say.
    pub recursion_misses: Option<u64>,
}

const VALUE_SIZE: u32 = 32;
const COUNTER_INSERT_FAILURES: u32 = 0;
const COUNTER_STACK_FAILURES: u32 = 1;
/// Call sites whose stacks are sampled (StackPolicy::PerCallSite).
const MAX_SITES: u32 = 16_384;

/// The tracer: maps, programs, and (while running) attachments.
pub struct OutstandingTracer {
    hash: Map,
    followed: Option<Map>,
    stacks: Option<StackTable>,
    _sites: Option<Map>,
    counters: Map,
    allocs: Vec<(String, Program)>,
    frees: Vec<(String, Program)>,
    alloc_links: Vec<OwnedFd>,
    free_links: Vec<OwnedFd>,
}

/// Scratch slot for a counter's index.
const COUNTER_INDEX_AT: i16 = -44;

/// `counters[index] += 1` (R0–R5 clobbered).
fn count(b: &mut Builder, counters: &Map, index: u32) {
    b.count(counters.fd(), index, COUNTER_INDEX_AT);
}

/// Unwind only the first `per_site` allocations of a call site (call site
/// in *(fp-32)); later ones reuse the site's last stack id. `sites` maps
/// call site -> {stack id, unwinds}.
fn sampled_unwind(b: &mut Builder, stacks: &StackTable, sites: &Map, per_site: u32) {
    b.push([insn::load(Size::DW, R1, FP, -32), insn::store(Size::DW, FP, -56, R1)])
        .map_lookup(sites.fd(), -56)
        .push([insn::mov(R9, R0)])
        .push([insn::mov_imm(R7, 1)]);
    // Known site with enough stacks: reuse its stack id, no unwind.
    b.skip_if_imm(Cond::Eq, R9, 0, |b| {
        b.push([insn::load(Size::DW, R1, R9, 8)]);
        b.skip_if_imm(Cond::Lt, R1, per_site as i32, |b| {
            b.push([insn::load(Size::DW, R1, R9, 0), insn::store(Size::DW, FP, RESULT_AT, R1), insn::mov_imm(R7, 0)]);
        });
    });
    b.skip_if_imm(Cond::Eq, R7, 0, |b| {
        stacks.unwind(b);
        // Known site: count the unwind and keep the newest id.
        b.skip_if_imm(Cond::Eq, R9, 0, |b| {
            b.push([
                insn::mov_imm(R1, 1),
                insn::atomic_add(R9, 8, R1),
                insn::load(Size::DW, R1, FP, RESULT_AT),
                insn::store(Size::DW, R9, 0, R1),
            ]);
        });
        // New site: {id, 1}.
        b.skip_if_imm(Cond::Ne, R9, 0, |b| {
            b.push([insn::load(Size::DW, R1, FP, RESULT_AT), insn::store(Size::DW, FP, -72, R1), insn::store_imm(Size::DW, FP, -64, 1)])
                .map_update(sites.fd(), -56, -72, 0);
        });
    });
}

fn alloc_program(
    p: &AllocProbe,
    hash: &Map,
    stacks: Option<&StackTable>,
    sites: Option<(&Map, u32)>,
    sample_shift: u32,
    counters: &Map,
) -> Vec<insn::Insn> {
    let mut b = Builder::new();
    b.push([insn::mov(R6, R1)]);
    if let Some((index, value)) = p.filter {
        b.push([insn::load(Size::DW, R1, R6, insn::ctx_arg(index))]).push(insn::ld_imm64(R2, value)).exit_if(Cond::Ne, R1, R2);
    }
    for (index, value) in &p.exclude {
        b.push([insn::load(Size::DW, R1, R6, insn::ctx_arg(*index))]).exit_if_imm(Cond::Eq, R1, *value as i32);
    }
    b.push([insn::load(Size::DW, R7, R6, insn::ctx_arg(p.key_arg))]).exit_if_imm(Cond::Eq, R7, 0);
    // value at fp-40: {time, call_site, bytes, stack hash (at RESULT_AT, -16)}; key at fp-8.
    b.push([insn::store(Size::DW, FP, -8, R7), insn::call(helper::KTIME_GET_NS), insn::store(Size::DW, FP, -40, R0)]);
    match p.call_site_arg {
        Some(i) => b.push([insn::load(Size::DW, R1, R6, insn::ctx_arg(i))]),
        None => b.push([insn::mov_imm(R1, 0)]),
    };
    b.push([insn::store(Size::DW, FP, -32, R1)]);
    match p.bytes {
        Bytes::Const(n) => b.push(insn::ld_imm64(R1, n)),
        Bytes::Arg(i) => b.push([insn::load(Size::DW, R1, R6, insn::ctx_arg(i))]),
        Bytes::PageOrder { page_size, order_arg } => b.push(insn::ld_imm64(R1, page_size)).push([
            insn::load(Size::DW, R2, R6, insn::ctx_arg(order_arg)),
            insn::and_imm(R2, 31),
            insn::lsh(R1, R2),
        ]),
    };
    b.push([insn::store(Size::DW, FP, -24, R1)]);
    match (stacks, sites, sample_shift) {
        (Some(table), None, 0) => table.unwind(&mut b),
        (Some(table), None, shift) => {
            b.push([insn::mov_imm(R1, NOT_SAMPLED), insn::store(Size::DW, FP, RESULT_AT, R1)]);
            b.push([insn::call(helper::GET_PRANDOM_U32), insn::and_imm(R0, (1 << shift) - 1)]);
            b.skip_if_imm(Cond::Ne, R0, 0, |b| table.unwind(b));
        }
        (Some(table), Some((sites, per_site)), _) => sampled_unwind(&mut b, table, sites, per_site),
        _ => {
            b.push([insn::mov_imm(R1, NOT_SAMPLED), insn::store(Size::DW, FP, RESULT_AT, R1)]);
        }
    }
    b.map_update(hash.fd(), -8, -40, 0);
    b.skip_if_imm(Cond::Eq, R0, 0, |b| {
        count(b, counters, COUNTER_INSERT_FAILURES);
        b.return_zero();
    });
    if stacks.is_some() {
        // -1 is "not sampled" (StackPolicy::Sampled), not a failure; the
        // helper's errors are other negative errnos (-EEXIST, -EFAULT).
        let no_stack = if sample_shift > 0 { NOT_SAMPLED } else { 0 };
        b.push([insn::load(Size::DW, R1, FP, RESULT_AT)]).exit_if_imm(Cond::Sge, R1, no_stack);
        count(&mut b, counters, COUNTER_STACK_FAILURES);
    }
    b.finish()
}

fn free_program(p: &FreeProbe, hash: &Map, followed: Option<(&Map, AddressSample)>) -> Vec<insn::Insn> {
    // Look up before deleting: almost every free is of an untraced object,
    // and a lookup takes no lock while a delete takes the bucket's.
    let mut b = Builder::new();
    b.push([insn::load(Size::DW, R1, R1, insn::ctx_arg(p.key_arg))])
        .exit_if_imm(Cond::Eq, R1, 0)
        .push([insn::store(Size::DW, FP, -8, R1)])
        .map_lookup(hash.fd(), -8)
        .skip_if_imm(Cond::Eq, R0, 0, |b| {
            b.map_delete(hash.fd(), -8).return_zero();
        });
    if let Some((members, sample)) = followed {
        // Not allocated in the window: a followed member of the stock?
        // The sample rule first, so most frees end without a lookup.
        if sample.shift > 0 {
            b.push([insn::load(Size::DW, R1, FP, -8)])
                .push(insn::ld_imm64(R2, followed::MULTIPLIER))
                .push([insn::mul(R1, R2), insn::rsh_imm(R1, followed::HASH_SHIFT), insn::and_imm(R1, sample.mask() as i32)])
                .exit_if_imm(Cond::Ne, R1, 0);
        }
        b.map_lookup(members.fd(), -8).exit_if_imm(Cond::Eq, R0, 0).map_delete(members.fd(), -8);
    }
    b.finish()
}

impl OutstandingTracer {
    /// Create the maps and load (verify) every program; nothing is attached
    /// yet. `capacity` bounds the hash (preallocated: its memory is
    /// reserved up front, about 100 bytes an entry).
    pub fn load(
        allocs: &[AllocProbe],
        frees: &[FreeProbe],
        capacity: u32,
        policy: StackPolicy,
        followed: Option<Followed>,
    ) -> Result<OutstandingTracer, BpfError> {
        let hash = Map::create(MapType::Hash, "sysak_out", 8, VALUE_SIZE, capacity, 0)?;
        let members = match followed {
            Some(f) => {
                let map = Map::create(MapType::Hash, "sysak_stock", 8, 1, f.addresses.len().max(1) as u32, 0)?;
                for address in f.addresses {
                    map.update(&address.to_le_bytes(), &[1])?;
                }
                Some((map, f.sample))
            }
            None => None,
        };
        let counters = Map::create(MapType::Array, "sysak_cnt", 4, 8, 2, 0)?;
        let stacks = match policy {
            StackPolicy::None => None,
            _ => Some(StackTable::create()?),
        };
        let sites = match policy {
            StackPolicy::PerCallSite(n) => Some((Map::create(MapType::Hash, "sysak_sites", 8, 16, MAX_SITES, 0)?, n)),
            _ => None,
        };
        let allocs = allocs
            .iter()
            .map(|p| {
                let shift = if let StackPolicy::Sampled(shift) = policy { shift } else { 0 };
                let insns = alloc_program(p, &hash, stacks.as_ref(), sites.as_ref().map(|(m, n)| (m, *n)), shift, &counters);
                Program::load(ProgramType::RawTracepoint, &format!("sysak_{}", p.tracepoint), &insns, 0)
                    .map(|prog| (p.tracepoint.clone(), prog))
            })
            .collect::<Result<_, _>>()?;
        let frees = frees
            .iter()
            .map(|p| {
                let insns = free_program(p, &hash, members.as_ref().map(|(m, sample)| (m, *sample)));
                Program::load(ProgramType::RawTracepoint, &format!("sysak_{}", p.tracepoint), &insns, 0)
                    .map(|prog| (p.tracepoint.clone(), prog))
            })
            .collect::<Result<_, _>>()?;
        Ok(OutstandingTracer {
            hash,
            followed: members.map(|(m, _)| m),
            stacks,
            _sites: sites.map(|(m, _)| m),
            counters,
            allocs,
            frees,
            alloc_links: Vec::new(),
            free_links: Vec::new(),
        })
    }

    /// Attach: frees first, so no traced allocation's free can be missed.
    pub fn start(&mut self) -> Result<(), BpfError> {
        for (tp, prog) in &self.frees {
            self.free_links.push(prog.attach_raw_tracepoint(tp)?);
        }
        for (tp, prog) in &self.allocs {
            self.alloc_links.push(prog.attach_raw_tracepoint(tp)?);
        }
        Ok(())
    }

    /// Detach the allocation programs (the free-only phase).
    pub fn stop_allocs(&mut self) {
        self.alloc_links.clear();
    }

    /// Detach everything.
    pub fn stop(&mut self) {
        self.alloc_links.clear();
        self.free_links.clear();
    }

    /// The counters.
    pub fn stats(&self) -> Result<InKernelStats, BpfError> {
        let counter = |i: u32| -> Result<u64, BpfError> {
            let mut v = [0u8; 8];
            self.counters.lookup(&i.to_le_bytes(), &mut v)?;
            Ok(u64::from_le_bytes(v))
        };
        let mut recursion_misses = Some(0);
        for (_, prog) in self.allocs.iter().chain(&self.frees) {
            recursion_misses = match (recursion_misses, prog.recursion_misses()?) {
                (Some(sum), Some(n)) => Some(sum + n),
                _ => None,
            };
        }
        Ok(InKernelStats {
            insert_failures: counter(COUNTER_INSERT_FAILURES)?,
            stack_failures: counter(COUNTER_STACK_FAILURES)?,
            recursion_misses,
        })
    }

    /// The followed members no traced free has removed (`None` when none
    /// were followed).
    pub fn followed_left(&self) -> Result<Option<std::collections::HashSet<u64>>, BpfError> {
        let Some(map) = &self.followed else { return Ok(None) };
        let mut left = std::collections::HashSet::new();
        map.dump(4096, |k, _| {
            left.insert(u64::from_le_bytes(k.try_into().unwrap()));
        })?;
        Ok(Some(left))
    }

    /// Every outstanding entry, with its stack's hash, and the stacks by
    /// hash (frames innermost first).
    pub fn drain(&self, mut each: impl FnMut(Entry)) -> Result<HashMap<u64, Vec<u64>>, BpfError> {
        let word = |v: &[u8], i: usize| u64::from_le_bytes(v[i * 8..i * 8 + 8].try_into().unwrap());
        self.hash.dump(4096, |k, v| {
            each(Entry {
                key: u64::from_le_bytes(k.try_into().unwrap()),
                time_ns: word(v, 0),
                call_site: word(v, 1),
                bytes: word(v, 2),
                stack: (word(v, 3) as i64 >= 0).then_some(word(v, 3)),
            });
        })?;
        match &self.stacks {
            Some(table) => table.frames(),
            None => Ok(HashMap::new()),
        }
    }
}

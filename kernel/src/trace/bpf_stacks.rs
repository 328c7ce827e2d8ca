//! Kernel stacks kept by content, for the BPF tracers
//! ([`super::bpf_outstanding`], [`super::bpf_tally`]).
//!
//! `bpf_get_stack` copies the frames onto the program's stack, the program
//! hashes them (64-bit, FNV-style over the words) and inserts them into a
//! preallocated hash keyed by that hash. Not a stack map
//! (`bpf_get_stackid`): it has one bucket per hash slot and, without
//! BPF_F_REUSE_STACKID, refuses a second stack in a taken bucket — 4096
//! distinct stacks in 16 384 buckets collide about 500 times, and those
//! allocations lost their call path (call site 0x0); with the flag the
//! first stack's allocations would be silently relabelled. Here distinct
//! stacks only run out when the table is full, and the program says so
//! (`STACK_LOST`), so the caller can count it.
//!
//! The unwind is the dominant cost of a traced event: about 2 µs on 6.18
//! whatever the depth (benches/pagealloc-overhead), against ~50 ns for a
//! map update; callers sample when they can.

use std::collections::HashMap;

use crate::bpf::insn::{self, helper, Builder, Cond, Size, FP, R0, R1, R2, R3, R4, R6, R8};
use crate::bpf::sys::MapType;
use crate::bpf::{BpfError, Map};

/// Frames per stored stack.
pub const STACK_DEPTH: usize = 32;
/// Frames of the BPF trampoline at the top of a raw tracepoint stack
/// (`bpf_trace_runN`, `__bpf_trace_<tp>`), skipped.
const BPF_FRAMES: i32 = 2;
/// Distinct stacks kept, preallocated (~320 bytes each: 5 MiB). Not
/// BPF_F_NO_PREALLOC: an insert that allocates inside mm_page_alloc fails
/// (-ENOMEM) more often than not on 6.1, and 5.10 warns such maps are
/// unsafe in tracing programs.
pub const MAX_DISTINCT_STACKS: u32 = 16_384;
/// Where [`StackTable::unwind`] leaves its result on the program's stack.
pub const RESULT_AT: i16 = -16;
/// The frames and their hash on the program's stack: [-344, -80) is the
/// table's, callers keep their own slots above -80.
const FRAMES_AT: i16 = -336;
const FRAMES_KEY_AT: i16 = -344;
/// Results that are not a stack's hash (a hash is non-negative as i64):
/// the event was not sampled, or its stack could not be kept.
pub const NOT_SAMPLED: i32 = -1;
/// See [`NOT_SAMPLED`].
pub const STACK_LOST: i32 = -2;

/// The table of distinct stacks.
pub struct StackTable {
    map: Map,
}

impl StackTable {
    /// Create the (preallocated) table.
    pub fn create() -> Result<StackTable, BpfError> {
        Ok(StackTable { map: Map::create(MapType::Hash, "sysak_stk", 8, (STACK_DEPTH * 8) as u32, MAX_DISTINCT_STACKS, 0)? })
    }

    /// Emit: `*(fp + RESULT_AT) = hash of the kernel stack`, its frames
    /// stored in the table under that hash; [`STACK_LOST`] when the copy or
    /// the insert fails. R6 must hold the program's context; R7 and R9 are
    /// preserved (callers keep state there), R0–R5 and R8 clobbered.
    pub fn unwind(&self, b: &mut Builder) {
        // Before 5.11-ish the raw tracepoint bpf_get_stack takes initialised
        // memory (ARG_PTR_TO_MEM): zero the buffer (5.10's verifier refused it
        // otherwise: "invalid indirect read from stack").
        b.push([insn::mov_imm(R1, 0)]);
        for i in 0..STACK_DEPTH as i16 {
            b.push([insn::store(Size::DW, FP, FRAMES_AT + i * 8, R1)]);
        }
        b.push([
            insn::mov(R1, R6),
            insn::mov(R2, FP),
            insn::add_imm(R2, FRAMES_AT as i32),
            insn::mov_imm(R3, STACK_DEPTH as i32 * 8),
            insn::mov_imm(R4, BPF_FRAMES), // the flags' skip field; kernel stack
            insn::call(helper::GET_STACK),
            insn::store_imm(Size::DW, FP, RESULT_AT, STACK_LOST),
        ]);
        b.skip_if_imm(Cond::Slt, R0, 0, |b| {
            // h = (h ^ frame) * P over every frame (the helper zero-fills).
            b.push(insn::ld_imm64(R3, 0x0000_0100_0000_01b3)).push(insn::ld_imm64(R8, 0xcbf2_9ce4_8422_2325));
            for i in 0..STACK_DEPTH as i16 {
                b.push([insn::load(Size::DW, R1, FP, FRAMES_AT + i * 8), insn::xor(R8, R1), insn::mul(R8, R3)]);
            }
            // Non-negative as i64: the negative values are the sentinels.
            b.push([
                insn::mov(R1, R8),
                insn::rsh_imm(R1, 29),
                insn::xor(R8, R1),
                insn::lsh_imm(R8, 1),
                insn::rsh_imm(R8, 1),
                insn::store(Size::DW, FP, FRAMES_KEY_AT, R8),
            ])
            // Seen before (the common case: a lookup takes no lock), else
            // stored now; a failed insert (table full) loses the stack. Not one
            // BPF_NOEXIST update taking -EEXIST as "already there": on 6.1 and
            // 5.10 (QEMU page scenario) 3012 of 3013 repeats of one stack were
            // counted lost that way, so that return was not -EEXIST there.
            .map_lookup(self.map.fd(), FRAMES_KEY_AT);
            b.skip_if_imm(Cond::Ne, R0, 0, |b| {
                b.map_update(self.map.fd(), FRAMES_KEY_AT, FRAMES_AT, 0);
                b.skip_if_imm(Cond::Eq, R0, 0, |b| {
                    b.push([insn::mov_imm(R8, STACK_LOST)]);
                });
            });
            b.push([insn::store(Size::DW, FP, RESULT_AT, R8)]);
        });
    }

    /// Every stack by hash, frames innermost first.
    pub fn frames(&self) -> Result<HashMap<u64, Vec<u64>>, BpfError> {
        let word = |v: &[u8], i: usize| u64::from_le_bytes(v[i * 8..i * 8 + 8].try_into().unwrap());
        let mut stacks = HashMap::new();
        self.map.dump(1024, |k, v| {
            let ips: Vec<u64> = (0..STACK_DEPTH).map(|i| word(v, i)).take_while(|ip| *ip != 0).collect();
            stacks.insert(u64::from_le_bytes(k.try_into().unwrap()), ips);
        })?;
        Ok(stacks)
    }
}

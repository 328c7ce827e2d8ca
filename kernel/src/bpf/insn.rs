//! A tiny eBPF assembler: just the instructions sysak's programs use.
//!
//! Encoding per Documentation/bpf/standardization/instruction-set.rst:
//! 8 bytes `{opcode, dst:4 | src:4, off: i16, imm: i32}`; a 64-bit
//! immediate load takes two slots.

/// One instruction slot.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// dst register in the low nibble, src in the high one.
    pub regs: u8,
    /// Offset (memory access, jump).
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

/// Registers: R0 return value, R1–R5 arguments (clobbered by calls), R6–R9
/// callee-saved, R10 read-only frame pointer.
pub type Reg = u8;
#[allow(missing_docs)]
pub const R0: Reg = 0;
#[allow(missing_docs)]
pub const R1: Reg = 1;
#[allow(missing_docs)]
pub const R2: Reg = 2;
#[allow(missing_docs)]
pub const R3: Reg = 3;
#[allow(missing_docs)]
pub const R4: Reg = 4;
#[allow(missing_docs)]
pub const R5: Reg = 5;
#[allow(missing_docs)]
pub const R6: Reg = 6;
#[allow(missing_docs)]
pub const R7: Reg = 7;
#[allow(missing_docs)]
pub const R8: Reg = 8;
#[allow(missing_docs)]
pub const R9: Reg = 9;
/// Frame pointer.
pub const FP: Reg = 10;

// Instruction classes and fields.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;
const K: u8 = 0x00;
const X: u8 = 0x08;
const MOV: u8 = 0xb0;
const ADD: u8 = 0x00;
const MUL: u8 = 0x20;
const OR: u8 = 0x40;
const RSH: u8 = 0x70;
const XOR: u8 = 0xa0;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;

/// Access sizes.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    /// 1 byte.
    B = 0x10,
    /// 2 bytes.
    H = 0x08,
    /// 4 bytes.
    W = 0x00,
    /// 8 bytes.
    DW = 0x18,
}

/// Conditional jumps (64-bit compare).
#[derive(Debug, Clone, Copy)]
pub enum Cond {
    /// ==
    Eq = 0x10,
    /// > unsigned
    Gt = 0x20,
    /// !=
    Ne = 0x50,
    /// < unsigned
    Lt = 0xa0,
    /// >= signed
    Sge = 0x70,
    /// < signed
    Slt = 0xc0,
}

const fn insn(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | (dst & 0x0f), off, imm }
}

/// `dst = imm`.
pub const fn mov_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | MOV | K, dst, 0, 0, imm)
}
/// `dst = src`.
pub const fn mov(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | MOV | X, dst, src, 0, 0)
}
/// `dst += imm`.
pub const fn add_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | ADD | K, dst, 0, 0, imm)
}
/// `dst &= imm`.
pub const fn and_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | AND | K, dst, 0, 0, imm)
}
/// `dst <<= src`.
pub const fn lsh(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | LSH | X, dst, src, 0, 0)
}
/// `dst <<= imm`.
pub const fn lsh_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | LSH | K, dst, 0, 0, imm)
}
/// `dst |= src`.
pub const fn or(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | OR | X, dst, src, 0, 0)
}
/// `dst ^= src`.
pub const fn xor(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | XOR | X, dst, src, 0, 0)
}
/// `dst *= src`.
pub const fn mul(dst: Reg, src: Reg) -> Insn {
    insn(ALU64 | MUL | X, dst, src, 0, 0)
}
/// `dst >>= imm` (logical).
pub const fn rsh_imm(dst: Reg, imm: i32) -> Insn {
    insn(ALU64 | RSH | K, dst, 0, 0, imm)
}
/// `dst = *(size *)(src + off)`.
pub const fn load(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
    insn(LDX | MEM | size as u8, dst, src, off, 0)
}
/// `*(size *)(dst + off) = src`.
pub const fn store(size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
    insn(STX | MEM | size as u8, dst, src, off, 0)
}
/// `*(size *)(dst + off) = imm`.
pub const fn store_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
    insn(ST | MEM | size as u8, dst, 0, off, imm)
}
/// `lock *(u64 *)(dst + off) += src`.
pub const fn atomic_add(dst: Reg, off: i16, src: Reg) -> Insn {
    insn(STX | ATOMIC | Size::DW as u8, dst, src, off, ADD as i32)
}
/// `if dst <cond> imm goto pc + 1 + off`.
pub const fn jump_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Insn {
    insn(JMP | cond as u8 | K, dst, 0, off, imm)
}
/// `if dst <cond> src goto pc + 1 + off`.
pub const fn jump(cond: Cond, dst: Reg, src: Reg, off: i16) -> Insn {
    insn(JMP | cond as u8 | X, dst, src, off, 0)
}
/// `goto pc + 1 + off`.
pub const fn goto(off: i16) -> Insn {
    insn(JMP, 0, 0, off, 0)
}
/// Call helper number `id`; R1–R5 are its arguments and are clobbered.
pub const fn call(helper: i32) -> Insn {
    insn(JMP | CALL, 0, 0, 0, helper)
}
/// Return R0.
pub const fn exit() -> Insn {
    insn(JMP | EXIT, 0, 0, 0, 0)
}
/// `dst = map` (the map's fd, resolved by the verifier): two slots.
pub const fn load_map_fd(dst: Reg, fd: i32) -> [Insn; 2] {
    const PSEUDO_MAP_FD: Reg = 1;
    [insn(LD | IMM | Size::DW as u8, dst, PSEUDO_MAP_FD, 0, fd), insn(0, 0, 0, 0, 0)]
}

/// `dst = imm64`: two slots.
pub const fn ld_imm64(dst: Reg, imm: u64) -> [Insn; 2] {
    [insn(LD | IMM | Size::DW as u8, dst, 0, 0, imm as u32 as i32), insn(0, 0, 0, 0, (imm >> 32) as u32 as i32)]
}

/// Byte offset of argument `i` in a raw tracepoint's `u64 args[]` context.
pub const fn ctx_arg(i: usize) -> i16 {
    (i * 8) as i16
}

/// `BPF_NOEXIST`: insert only.
pub const NOEXIST: i32 = 1;

/// Builds a program whose early exits all jump to one `return 0` at the
/// end, so callers never count jump offsets by hand.
#[derive(Debug, Default)]
pub struct Builder {
    insns: Vec<Insn>,
    exits: Vec<usize>,
}

impl Builder {
    /// An empty program.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Append instructions.
    pub fn push(&mut self, insns: impl IntoIterator<Item = Insn>) -> &mut Builder {
        self.insns.extend(insns);
        self
    }

    /// `if dst <cond> imm: return 0`.
    pub fn exit_if_imm(&mut self, cond: Cond, dst: Reg, imm: i32) -> &mut Builder {
        self.exits.push(self.insns.len());
        self.insns.push(jump_imm(cond, dst, imm, 0));
        self
    }

    /// `if dst <cond> src: return 0`.
    pub fn exit_if(&mut self, cond: Cond, dst: Reg, src: Reg) -> &mut Builder {
        self.exits.push(self.insns.len());
        self.insns.push(jump(cond, dst, src, 0));
        self
    }

    /// `if !(dst <cond> imm) { body }`: jumps over what `body` emits when
    /// the condition holds.
    pub fn skip_if_imm(&mut self, cond: Cond, dst: Reg, imm: i32, body: impl FnOnce(&mut Builder)) -> &mut Builder {
        let at = self.insns.len();
        self.insns.push(jump_imm(cond, dst, imm, 0));
        body(self);
        self.insns[at].off = (self.insns.len() - at - 1) as i16;
        self
    }

    /// `R0 = bpf_map_lookup_elem(map, fp + key)`; R1–R5 clobbered.
    pub fn map_lookup(&mut self, map_fd: i32, key: i16) -> &mut Builder {
        self.push(load_map_fd(R1, map_fd)).push([mov(R2, FP), add_imm(R2, key as i32), call(helper::MAP_LOOKUP_ELEM)])
    }

    /// `R0 = bpf_map_update_elem(map, fp + key, fp + value, flags)`.
    pub fn map_update(&mut self, map_fd: i32, key: i16, value: i16, flags: i32) -> &mut Builder {
        self.push(load_map_fd(R1, map_fd)).push([
            mov(R2, FP),
            add_imm(R2, key as i32),
            mov(R3, FP),
            add_imm(R3, value as i32),
            mov_imm(R4, flags),
            call(helper::MAP_UPDATE_ELEM),
        ])
    }

    /// `R0 = bpf_map_delete_elem(map, fp + key)`.
    pub fn map_delete(&mut self, map_fd: i32, key: i16) -> &mut Builder {
        self.push(load_map_fd(R1, map_fd)).push([mov(R2, FP), add_imm(R2, key as i32), call(helper::MAP_DELETE_ELEM)])
    }

    /// `counters[index] += 1` for an array of u64 counters, the index kept
    /// at fp + scratch (4 bytes); falls through; R0–R5 clobbered.
    pub fn count(&mut self, counters_fd: i32, index: u32, scratch: i16) -> &mut Builder {
        self.push([store_imm(Size::W, FP, scratch, index as i32)]).map_lookup(counters_fd, scratch).skip_if_imm(Cond::Eq, R0, 0, |b| {
            b.push([mov_imm(R1, 1), atomic_add(R0, 0, R1)]);
        })
    }

    /// `return 0` here.
    pub fn return_zero(&mut self) -> &mut Builder {
        self.push([mov_imm(R0, 0), exit()])
    }

    /// Append `return 0` and resolve the exits to it.
    pub fn finish(mut self) -> Vec<Insn> {
        let end = self.insns.len();
        for at in self.exits {
            self.insns[at].off = (end - at - 1) as i16;
        }
        self.insns.push(mov_imm(R0, 0));
        self.insns.push(exit());
        self.insns
    }
}

/// Helper function numbers (include/uapi/linux/bpf.h, stable ABI).
pub mod helper {
    /// `void *bpf_map_lookup_elem(map, key)`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `long bpf_map_update_elem(map, key, value, flags)`.
    pub const MAP_UPDATE_ELEM: i32 = 2;
    /// `long bpf_map_delete_elem(map, key)`.
    pub const MAP_DELETE_ELEM: i32 = 3;
    /// `u64 bpf_ktime_get_ns(void)`: CLOCK_MONOTONIC.
    pub const KTIME_GET_NS: i32 = 5;
    /// `u32 bpf_get_prandom_u32(void)`.
    pub const GET_PRANDOM_U32: i32 = 7;
    /// `u64 bpf_get_current_task(void)`.
    pub const GET_CURRENT_TASK: i32 = 35;
    /// `long bpf_get_stack(ctx, buf, size, flags)` (4.18+): zero-fills
    /// what the stack does not.
    pub const GET_STACK: i32 = 67;
    /// `long bpf_probe_read_kernel(dst, size, unsafe_ptr)` (5.5+).
    pub const PROBE_READ_KERNEL: i32 = 113;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_kernel_documentation() {
        // Compared with `llvm-objdump -d` of clang -target bpf output.
        let bytes = |i: Insn| unsafe { std::mem::transmute::<Insn, u64>(i) }.to_le_bytes();
        assert_eq!(bytes(mov_imm(R0, 0)), [0xb7, 0x00, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(mov(R6, R1)), [0xbf, 0x16, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(load(Size::DW, R2, R6, 8)), [0x79, 0x62, 8, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(store(Size::W, FP, -4, R1)), [0x63, 0x1a, 0xfc, 0xff, 0, 0, 0, 0]);
        assert_eq!(bytes(jump_imm(Cond::Eq, R0, 0, 3)), [0x15, 0x00, 3, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(call(helper::PROBE_READ_KERNEL)), [0x85, 0, 0, 0, 113, 0, 0, 0]);
        assert_eq!(bytes(exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(load_map_fd(R1, 7)[0]), [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(bytes(atomic_add(R0, 8, R1)), [0xdb, 0x10, 8, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(lsh_imm(R1, 32)), [0x67, 0x01, 0, 0, 32, 0, 0, 0]);
        assert_eq!(bytes(or(R8, R1)), [0x4f, 0x18, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(xor(R8, R1)), [0xaf, 0x18, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(mul(R8, R3)), [0x2f, 0x38, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(rsh_imm(R8, 31)), [0x77, 0x08, 0, 0, 31, 0, 0, 0]);
    }
}

//! eBPF through the raw `bpf(2)` system call: maps, hand-assembled programs,
//! test runs and raw tracepoints. No clang, no libbpf, no object files: the
//! programs sysak needs are a few dozen instructions, written with [`insn`].
//!
//! Every object is an owned file descriptor: maps, programs and raw
//! tracepoint links disappear when the process exits, even on SIGKILL.
//!
//! Needs CONFIG_BPF_SYSCALL and CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN).
//! Lockdown in "confidentiality" mode forbids reading kernel memory.

pub mod insn;
pub mod sys;

pub use sys::{BpfError, Map, Program};

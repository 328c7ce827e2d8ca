//! sysak-kernel: the kernel-facing library of sysak, with no command line in it.
//!
//! One module per kernel source; each module's doc says what it owns, which
//! kernel objects or files it reads and on which kernels that was verified.
//! Nothing here knows about tools, tables, configuration or plugins: a Rust
//! plugin (or any program) can build a new diagnostic on this crate alone.
//!
//! - [`procfs`]: typed readers for `/proc` and `/sys` files.
//! - [`symbols`]: kallsyms, rendering addresses as `func+0x7c/0x200 [module]`.
//! - [`trace`]: tracepoint formats, perf sampling on every CPU, the trace
//!   window and the outstanding-allocation sets (user space and in-kernel).
//! - [`bpf`]: maps and hand-assembled programs through raw `bpf(2)`.
//! - [`kmem`]: reading kernel memory (kcore, BPF, an ELF vmcore).
//! - [`layout`]: BTF struct layouts, direct map and vmemmap bases.
//! - [`slab`]: SLUB caches, slab walks and freelists in kernel memory.
//! - [`similarity`]: object-content clustering and matching.
//! - [`signal`]: SIGINT/SIGTERM as a flag, so windows end with a report.
//!
//! A trace window ends on its own or on Ctrl-C and reports its progress
//! through [`trace::window::Progress`], which a command line draws as it
//! likes (sysak-cli draws a bar).

#![deny(missing_docs)]

/// Define an error type that is one message for a user: a `String`
/// newtype with `Display` and `Error`. Each module keeps its own type, so
/// callers can tell where an error came from; this writes the boilerplate once.
#[macro_export]
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(pub String);

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::error::Error for $name {}
    };
}

pub mod bpf;
pub mod kmem;
pub mod layout;
pub mod procfs;
pub mod signal;
pub mod similarity;
pub mod slab;
pub mod symbols;
pub mod trace;

//! sysak-core: everything sysak tools share, and no tool logic.
//!
//! One module per kernel source or concern; each module's doc says what it
//! owns. Tools (crates under `tools/`) depend on this crate; this crate never
//! knows about any tool.
//!
//! - [`tool`]: the descriptor every tool exports, exit statuses and the
//!   two error kinds the dispatcher maps to them.
//! - [`procfs`]: typed readers for `/proc` and `/sys` files.
//! - [`output`]: `--format table|json` and rendering helpers.
//! - [`plugin`]: plugin discovery, trust checks and loading (C ABI).
//! - [`config`]: the site configuration, /etc/sysak/sysak.toml.
//! - [`i18n`]: table labels in English or Chinese.
//! - [`symbols`]: kallsyms, rendering addresses as `func+0x7c/0x200 [module]`.
//! - [`trace`]: tracepoint formats and perf sampling on every CPU.
//! - [`bpf`]: maps and hand-assembled programs through raw `bpf(2)`.
//! - [`kmem`]: reading kernel memory (kcore, BPF).
//! - [`layout`]: BTF struct layouts, direct map and vmemmap bases.
//! - [`slab`]: SLUB caches, slab walks and freelists in kernel memory.
//! - [`similarity`]: object-content clustering and matching.
//! - [`signal`]: SIGINT/SIGTERM as a flag, so windows end with a report.

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
pub mod config;
pub mod i18n;
pub mod kmem;
pub mod layout;
pub mod output;
pub mod plugin;
pub mod procfs;
pub mod signal;
pub mod similarity;
pub mod slab;
pub mod symbols;
pub mod tool;
pub mod trace;

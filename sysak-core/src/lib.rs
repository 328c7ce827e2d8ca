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
//! - [`config`]: `/etc/sysak/sysak.toml`.
//! - [`symbols`]: kallsyms, rendering addresses as `func+0x7c/0x200 [module]`.
//! - [`trace`]: tracepoint formats and perf sampling on every CPU.
//! - [`signal`]: SIGINT/SIGTERM as a flag, so windows end with a report.

#![deny(missing_docs)]

pub mod config;
pub mod output;
pub mod plugin;
pub mod procfs;
pub mod signal;
pub mod symbols;
pub mod tool;
pub mod trace;

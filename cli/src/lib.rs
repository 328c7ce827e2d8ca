//! sysak-cli: what sysak's tools share on the command line, and no tool logic.
//!
//! Tools (crates under `tools/`) depend on this crate and on sysak-kernel;
//! this crate never knows about any tool.
//!
//! - [`tool`]: the descriptor every tool exports, exit statuses and the
//!   two error kinds the dispatcher maps to them.
//! - [`output`]: `--format table|json` and rendering helpers.
//! - [`flamegraph`]: stacks as folded lines or an SVG flame graph.
//! - [`progress`]: the progress bar trace windows report to.
//! - [`tracer`]: `--tracer auto|bpf|perf` and its fallback.
//! - [`config`]: the site configuration, /etc/sysak/sysak.toml.
//! - [`i18n`]: table labels in English or Chinese.

#![deny(missing_docs)]

pub mod config;
pub mod flamegraph;
pub mod i18n;
pub mod output;
pub mod progress;
pub mod prometheus;
pub mod tool;
pub mod tracer;

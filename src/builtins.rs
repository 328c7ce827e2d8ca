//! The table of built-in tools, like git's `commands[]`.
//!
//! Adding a built-in tool in three steps:
//! 1. create `tools/<name>/` as a library crate depending only on
//!    `sysak-kernel` and `sysak-cli`, exporting `pub fn tool() -> sysak_cli::tool::Tool`;
//! 2. add it to the workspace members and to this package's dependencies;
//! 3. add its `tool()` to [`table`].
//!
//! `tests/dispatcher.rs` runs `--help` for every entry, so a new tool is
//! covered by the smoke tests without further work.

use sysak_cli::tool::Tool;

/// Every built-in tool, in `sysak list` order within a category.
pub fn table() -> Vec<Tool> {
    vec![sysak_memleak::tool(), sysak_pagealloc::tool(), sysak_slabtop::tool()]
}

/// Dispatcher commands that are not tools.
pub const DISPATCHER_COMMANDS: [(&str, &str); 2] = [("list", "list tools and plugins by category"), ("help", "show help for a command")];

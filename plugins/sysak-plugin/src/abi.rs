//! `#[repr(C)]` mirror of `plugins/include/sysak_plugin.h`.
//!
//! The C header is the source of truth. `tests/abi_layout.rs` compiles it and
//! checks that every size and offset here matches, so the two cannot drift.

use std::os::raw::{c_char, c_int};

/// `SYSAK_PLUGIN_ABI_VERSION`: the only ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// `SYSAK_PLUGIN_ENTRY`: the symbol every plugin exports.
pub const ENTRY_SYMBOL: &str = "sysak_plugin_descriptor";

/// `SYSAK_PLUGIN_EXPERIMENTAL`: listed only by `sysak list --all`.
pub const FLAG_EXPERIMENTAL: u32 = 1 << 0;
/// `SYSAK_PLUGIN_NEEDS_ROOT`: sysak refuses to run it unprivileged.
pub const FLAG_NEEDS_ROOT: u32 = 1 << 1;

/// `enum sysak_format`.
pub const FORMAT_TABLE: u32 = 0;
/// `enum sysak_format`.
pub const FORMAT_JSON: u32 = 1;

/// `enum sysak_log_level`.
pub const LOG_ERROR: u32 = 0;
/// `enum sysak_log_level`.
pub const LOG_WARN: u32 = 1;
/// `enum sysak_log_level`.
pub const LOG_INFO: u32 = 2;
/// `enum sysak_log_level`.
pub const LOG_DEBUG: u32 = 3;

/// `void (*log)(const struct sysak_host *, uint32_t level, const char *msg)`.
pub type LogFn = unsafe extern "C" fn(host: *const SysakHost, level: u32, msg: *const c_char);

/// `int (*run)(const struct sysak_host *, int argc, const char *const *argv)`.
pub type RunFn = unsafe extern "C" fn(host: *const SysakHost, argc: c_int, argv: *const *const c_char) -> c_int;

/// `const struct sysak_plugin *sysak_plugin_descriptor(void)`.
pub type EntryFn = unsafe extern "C" fn() -> *const SysakPlugin;

/// `struct sysak_host`: what sysak hands a plugin.
#[repr(C)]
#[derive(Debug)]
pub struct SysakHost {
    /// Host's `SYSAK_PLUGIN_ABI_VERSION`.
    pub abi_version: u32,
    /// Host's `sizeof(struct sysak_host)`.
    pub struct_size: u32,
    /// `enum sysak_format` chosen with `--format`.
    pub format: u32,
    /// Zero.
    pub reserved: u32,
    /// sysak's version string.
    pub host_version: *const c_char,
    /// Print one diagnostic line.
    pub log: Option<LogFn>,
}

/// `struct sysak_plugin`: what a plugin hands sysak.
#[repr(C)]
#[derive(Debug)]
pub struct SysakPlugin {
    /// `SYSAK_PLUGIN_ABI_VERSION` the plugin was built with.
    pub abi_version: u32,
    /// `sizeof(struct sysak_plugin)` the plugin was built with.
    pub struct_size: u32,
    /// Command name.
    pub name: *const c_char,
    /// One line for `sysak list`.
    pub summary: *const c_char,
    /// Category for `sysak list`.
    pub category: *const c_char,
    /// `SYSAK_PLUGIN_*` flags.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
    /// Entry point.
    pub run: Option<RunFn>,
}

// SAFETY: a descriptor is immutable static data whose pointers refer to
// static strings; sharing it between threads is sound.
unsafe impl Sync for SysakPlugin {}

/// Size of the version-1 `struct sysak_plugin`: the smallest descriptor a
/// host accepts. Later versions may only be larger.
pub const PLUGIN_V1_SIZE: usize = std::mem::size_of::<SysakPlugin>();

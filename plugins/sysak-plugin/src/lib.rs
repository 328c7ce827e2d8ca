//! Write a sysak plugin in Rust.
//!
//! A plugin is a `cdylib` that declares itself with [`declare_plugin!`]:
//!
//! ```ignore
//! fn run(host: &sysak_plugin::Host, args: Vec<String>) -> i32 {
//!     host.info("hello from a plugin");
//!     0
//! }
//! sysak_plugin::declare_plugin! {
//!     name: "hello",
//!     summary: "say hello",
//!     category: "misc",
//!     flags: 0,
//!     run: run,
//! }
//! ```
//!
//! The macro exports `sysak_plugin_descriptor` with the C ABI of
//! `plugins/include/sysak_plugin.h` and wraps `run` so that a panic never
//! unwinds into sysak: it is caught, logged, and turned into exit status 3.

#![deny(missing_docs)]

pub mod abi;

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};

/// Output format the user chose with `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable table (default).
    Table,
    /// One JSON document on stdout.
    Json,
}

/// Write a plugin's output to stdout. A closed pipe (`sysak x | head`) is
/// not an error: the reader has what it wanted (`println!` would panic).
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Safe view of the `struct sysak_host` sysak passes to `run`.
pub struct Host<'a> {
    raw: &'a abi::SysakHost,
}

impl<'a> Host<'a> {
    /// The output format the user asked for.
    pub fn format(&self) -> Format {
        if self.raw.format == abi::FORMAT_JSON {
            Format::Json
        } else {
            Format::Table
        }
    }

    /// sysak's version.
    pub fn host_version(&self) -> String {
        if self.raw.host_version.is_null() {
            return String::new();
        }
        // SAFETY: the host guarantees a NUL-terminated string valid during run().
        unsafe { CStr::from_ptr(self.raw.host_version) }.to_string_lossy().into_owned()
    }

    /// Log one line at `level` (one of `abi::LOG_*`) through sysak.
    pub fn log(&self, level: u32, msg: &str) {
        let Some(log) = self.raw.log else {
            eprintln!("{msg}");
            return;
        };
        let line = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        // SAFETY: `log` comes from the host and takes our host pointer back.
        unsafe { log(self.raw, level, line.as_ptr()) };
    }

    /// Log a warning.
    pub fn warn(&self, msg: &str) {
        self.log(abi::LOG_WARN, msg)
    }

    /// Log an informational line.
    pub fn info(&self, msg: &str) {
        self.log(abi::LOG_INFO, msg)
    }
}

/// Called by the code [`declare_plugin!`] generates; not for direct use.
///
/// # Safety
/// `host` and `argv` must be what sysak passes to a plugin's `run`.
#[doc(hidden)]
pub unsafe fn __run_entry(
    run: fn(&Host, Vec<String>) -> i32,
    host: *const abi::SysakHost,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    if host.is_null() {
        return 3;
    }
    let host = Host { raw: &*host };
    let args: Vec<String> = (0..argc.max(0) as usize)
        .map(|i| *argv.add(i))
        .filter(|p| !p.is_null())
        .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned())
        .collect();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&host, args))) {
        Ok(code) => code,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            host.log(abi::LOG_ERROR, &format!("plugin panicked: {what}"));
            3
        }
    }
}

/// Declare a sysak plugin; see the crate documentation.
#[macro_export]
macro_rules! declare_plugin {
    (name: $name:literal, summary: $summary:literal, category: $category:literal,
     flags: $flags:expr, run: $run:path $(,)?) => {
        static __SYSAK_PLUGIN: $crate::abi::SysakPlugin = $crate::abi::SysakPlugin {
            abi_version: $crate::abi::ABI_VERSION,
            struct_size: ::std::mem::size_of::<$crate::abi::SysakPlugin>() as u32,
            name: concat!($name, "\0").as_ptr() as *const ::std::os::raw::c_char,
            summary: concat!($summary, "\0").as_ptr() as *const ::std::os::raw::c_char,
            category: concat!($category, "\0").as_ptr() as *const ::std::os::raw::c_char,
            flags: $flags,
            reserved: 0,
            run: Some(__sysak_plugin_run),
        };

        unsafe extern "C" fn __sysak_plugin_run(
            host: *const $crate::abi::SysakHost,
            argc: ::std::os::raw::c_int,
            argv: *const *const ::std::os::raw::c_char,
        ) -> ::std::os::raw::c_int {
            $crate::__run_entry($run, host, argc, argv)
        }

        /// The plugin's entry symbol (see sysak_plugin.h).
        #[no_mangle]
        pub extern "C" fn sysak_plugin_descriptor() -> *const $crate::abi::SysakPlugin {
            &__SYSAK_PLUGIN
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn no_log(_: *const abi::SysakHost, _: u32, _: *const c_char) {}

    fn host() -> abi::SysakHost {
        abi::SysakHost {
            abi_version: abi::ABI_VERSION,
            struct_size: std::mem::size_of::<abi::SysakHost>() as u32,
            format: abi::FORMAT_JSON,
            reserved: 0,
            host_version: c"9.9".as_ptr(),
            log: Some(no_log),
        }
    }

    fn panics(_: &Host, _: Vec<String>) -> i32 {
        panic!("boom")
    }

    fn counts(host: &Host, args: Vec<String>) -> i32 {
        assert_eq!(host.format(), Format::Json);
        assert_eq!(host.host_version(), "9.9");
        args.len() as i32 * 10 + args[1].len() as i32
    }

    #[test]
    fn a_panic_becomes_exit_status_3() {
        let h = host();
        let argv = [c"p".as_ptr(), std::ptr::null()];
        assert_eq!(unsafe { __run_entry(panics, &h, 1, argv.as_ptr()) }, 3);
    }

    #[test]
    fn arguments_and_host_reach_the_plugin() {
        let h = host();
        let argv = [c"p".as_ptr(), c"four".as_ptr(), std::ptr::null()];
        assert_eq!(unsafe { __run_entry(counts, &h, 2, argv.as_ptr()) }, 24);
        assert_eq!(unsafe { __run_entry(counts, std::ptr::null(), 2, argv.as_ptr()) }, 3);
    }
}

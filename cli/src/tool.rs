//! The tool descriptor, exit statuses, and the errors that choose them.
//!
//! Every built-in tool crate exports one function returning a [`Tool`]; the
//! dispatcher keeps them in a table. The dispatcher parses arguments with the
//! tool's [`clap::Command`], checks the tool's [`Needs`], then calls `run`, so
//! usage errors, "not root" and missing kernel files read the same everywhere.

use std::path::Path;

/// Exit status: ran and found no problem.
pub const EXIT_OK: u8 = 0;
/// Exit status: ran and found a problem (a leak, a failing verdict).
pub const EXIT_FOUND: u8 = 1;
/// Exit status: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: environment error (not root, missing kernel feature).
pub const EXIT_ENVIRONMENT: u8 = 3;

/// What a completed run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing wrong: exit 0.
    Clean,
    /// A problem was found: exit 1.
    Found,
}

impl Outcome {
    /// The process exit status for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Clean => EXIT_OK,
            Outcome::Found => EXIT_FOUND,
        }
    }
}

sysak_kernel::message_error!(
    /// A usage error found after argument parsing (an unknown cache name,
    /// say): exit status 2. Put it in an `anyhow::Error`; the dispatcher finds it.
    UsageError
);

sysak_kernel::message_error!(
    /// The environment cannot support the run (not root, missing kernel
    /// feature): exit status 3. Put it in an `anyhow::Error`; the dispatcher finds it.
    EnvironmentError
);

/// Exit status for an error returned by a tool: 2 for a [`UsageError`]
/// anywhere in the chain, 3 otherwise (every other failure is about the
/// environment the tool ran in: files, permissions, kernel features).
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_ENVIRONMENT
    }
}

/// What a tool needs before it can run; the dispatcher checks these.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Must run as root (effective uid 0).
    pub root: bool,
    /// Kernel files that must exist, with what lacks when they do not:
    /// `("/proc/slabinfo", "slab statistics (CONFIG_SLUB_DEBUG)")`.
    pub files: &'static [(&'static str, &'static str)],
    /// A flag that makes the run offline (it reads files, not this host),
    /// waiving the needs above: memleak's `vmcore`.
    pub offline_flag: Option<&'static str>,
}

impl Needs {
    /// Check the needs against this process and host, unless `matches`
    /// has the offline flag. The error is one line.
    pub fn check_for(&self, tool: &str, matches: &clap::ArgMatches) -> Result<(), EnvironmentError> {
        let offline = self.offline_flag.is_some_and(|flag| matches.try_get_one::<String>(flag).ok().flatten().is_some());
        if offline {
            return Ok(());
        }
        self.check(tool)
    }

    /// Check the needs against this process and host. The error is one line.
    pub fn check(&self, tool: &str) -> Result<(), EnvironmentError> {
        if self.root && !is_root() {
            return Err(EnvironmentError(format!("{tool} needs root: run it as root (sudo sysak {tool} ...)")));
        }
        for (path, what) in self.files {
            if !Path::new(path).exists() {
                return Err(EnvironmentError(format!("{tool} needs {path} ({what}), which this kernel does not provide")));
            }
        }
        Ok(())
    }
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A built-in tool: one entry in the dispatcher's table.
pub struct Tool {
    /// Command name: `sysak <name>`.
    pub name: &'static str,
    /// Category for `sysak list` ("memory", "misc", ...).
    pub category: &'static str,
    /// One line for `sysak list`.
    pub summary: &'static str,
    /// Listed only by `sysak list --all`.
    pub experimental: bool,
    /// Checked after parsing, before `run`.
    pub needs: Needs,
    /// The tool's argument definitions; also the source of its help, man
    /// page and completions.
    pub command: fn() -> clap::Command,
    /// Run with parsed arguments.
    pub run: fn(&clap::ArgMatches, &Context) -> anyhow::Result<Outcome>,
}

/// What the dispatcher hands every tool besides its arguments.
pub struct Context<'a> {
    /// The loaded configuration (`/etc/sysak/sysak.toml` or `--config`).
    pub config: &'a crate::config::Config,
}

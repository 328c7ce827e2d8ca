//! Typed readers for `/proc` and `/sys` files.
//!
//! Every reader hangs off [`ProcFs`], whose roots default to `/proc` and
//! `/sys` and can point at a captured tree (tests, offline analysis). Sizes
//! are converted to bytes at parse time; fields a kernel may lack are
//! `Option`; lines a reader does not know are skipped, not errors.

mod allocinfo;
mod buddyinfo;
mod cpus;
mod iomem;
mod kpageflags;
mod meminfo;
mod pagetypeinfo;
mod slabinfo;
mod sys_slab;
mod vmallocinfo;
mod zoneinfo;
mod zram;

pub use allocinfo::{parse_allocinfo, AllocSite};
pub use buddyinfo::{parse_buddyinfo, ZoneFreeBlocks};
pub use cpus::{online_cpus, parse_cpu_list, possible_cpus};
pub use iomem::PhysicalLayout;
pub use meminfo::MemInfo;
pub use pagetypeinfo::{parse_pagetypeinfo, MigrateFreeBlocks, PageTypeInfo};
pub use slabinfo::{SlabCacheStats, SlabInfo};
pub use vmallocinfo::{parse_vmallocinfo, VmallocArea};
pub use zoneinfo::parse_per_cpu_free_pages;
pub use zram::parse_mm_stat;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The system page size in bytes (sysconf; 4096 if it cannot say).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// Where `/proc` and `/sys` are.
#[derive(Debug, Clone)]
pub struct ProcFs {
    proc_root: PathBuf,
    sys_root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs::new("/proc", "/sys")
    }
}

impl ProcFs {
    /// Readers rooted at `proc_root` and `sys_root` instead of `/proc`, `/sys`.
    pub fn new(proc_root: impl Into<PathBuf>, sys_root: impl Into<PathBuf>) -> Self {
        ProcFs { proc_root: proc_root.into(), sys_root: sys_root.into() }
    }

    /// `rel` under the proc root (tests point it at fixtures).
    pub fn proc_path(&self, rel: &str) -> PathBuf {
        self.proc_root.join(rel)
    }

    fn sys_path(&self, rel: &str) -> PathBuf {
        self.sys_root.join(rel)
    }
}

/// A `/proc` or `/sys` file could not be read or parsed.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file's contents are not what this reader understands.
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Error::Io { path: path.to_owned(), source }
    }

    pub(crate) fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Error::Parse { path: path.to_owned(), line, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } if source.kind() == io::ErrorKind::PermissionDenied => {
                write!(f, "cannot read {}: permission denied (run as root)", path.display())
            }
            Error::Io { path, source } if source.kind() == io::ErrorKind::NotFound => {
                write!(f, "{} does not exist on this kernel", path.display())
            }
            Error::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Parse { path, line, message } => {
                write!(f, "{}:{line}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Read a whole `/proc` or `/sys` file (they report size 0: read, not stat).
pub(crate) fn read_to_string(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

//! Trust checks for shared-object plugins.
//!
//! A plugin runs inside sysak, and sysak usually runs as root. When the
//! effective user is root, a plugin file is refused unless it and the
//! directory holding it are owned by root and writable by nobody else:
//! otherwise any user who can write there could run code as root. Non-root
//! runs skip the check (they can only hurt themselves), as git and perf do
//! for their own plugin paths.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a plugin file or its directory is not trusted.
#[derive(Debug)]
pub struct TrustError {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for TrustError {}

/// Check `file` and its parent directory when running as root.
pub fn check(file: &Path) -> Result<(), TrustError> {
    if !sysak_cli::tool::is_root() {
        return Ok(());
    }
    check_owner_and_mode(file, "file")?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    check_owner_and_mode(dir, "directory")
}

fn check_owner_and_mode(path: &Path, what: &str) -> Result<(), TrustError> {
    let fail = |reason: String| TrustError { path: path.to_owned(), reason };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot stat {what}: {e}")))?;
    if meta.uid() != 0 {
        return Err(fail(format!("{what} is owned by uid {}, not root", meta.uid())));
    }
    let mode = meta.mode();
    // A sticky world-writable directory (/tmp) still lets anyone add files.
    if mode & 0o020 != 0 {
        return Err(fail(format!("{what} is group-writable (mode {:o})", mode & 0o7777)));
    }
    if mode & 0o002 != 0 {
        return Err(fail(format!("{what} is world-writable (mode {:o})", mode & 0o7777)));
    }
    Ok(())
}

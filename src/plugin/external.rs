//! External `sysak-<name>` programs, git-style.
//!
//! Searched in the configured libexec directory, then on `$PATH`. They run as
//! separate processes, so there is no ABI to check; as with git, what is on
//! `$PATH` is the caller's choice and gets no ownership check.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Prefix of external command programs.
pub const PREFIX: &str = "sysak-";

/// One external command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalCommand {
    /// Command name (program name without the prefix).
    pub name: String,
    /// The program.
    pub path: PathBuf,
}

fn search_dirs(libexec_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![libexec_dir.to_owned()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program for `sysak <name>`, if one exists.
pub fn find(libexec_dir: &Path, name: &str) -> Option<ExternalCommand> {
    if !super::loader::valid_command_name(name) {
        return None;
    }
    search_dirs(libexec_dir).into_iter().find_map(|dir| {
        let path = dir.join(format!("{PREFIX}{name}"));
        is_executable_file(&path).then(|| ExternalCommand { name: name.to_owned(), path })
    })
}

/// Every external command, first of each name in search order.
pub fn discover(libexec_dir: &Path) -> Vec<ExternalCommand> {
    let mut found: Vec<ExternalCommand> = Vec::new();
    for dir in search_dirs(libexec_dir) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut here: Vec<ExternalCommand> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                let name = file.strip_prefix(PREFIX)?;
                let path = e.path();
                (super::loader::valid_command_name(name) && is_executable_file(&path))
                    .then(|| ExternalCommand { name: name.to_owned(), path })
            })
            .filter(|c| !found.iter().any(|f| f.name == c.name))
            .collect();
        here.sort_by(|a, b| a.name.cmp(&b.name));
        found.extend(here);
    }
    found
}

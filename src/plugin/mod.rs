//! Plugins: third-party diagnostics added without rebuilding sysak.
//!
//! Two kinds, as in git and perf:
//! - shared objects speaking the C ABI of `plugins/include/sysak_plugin.h`
//!   ([`loader`]), found in `$SYSAK_PLUGIN_PATH` (colon-separated) and then
//!   in the configured plugin directories (`/usr/lib64/sysak/plugins`);
//! - external programs named `sysak-<name>` ([`external`]), found in the
//!   libexec directory and then on `$PATH`, so a plugin can be written in
//!   any language.
//!
//! Shared objects run inside sysak, often as root, so [`trust`] refuses any
//! that a non-root user could have written. Nothing here decides precedence
//! against built-in tools: the dispatcher looks built-ins up first.

pub mod external;
pub mod loader;
pub mod trust;

use std::path::{Path, PathBuf};

use sysak_cli::config::PluginConfig;

pub use loader::{LoadError, LoadedPlugin};

/// One shared-object plugin file found on the search path.
#[derive(Debug)]
pub struct FoundPlugin {
    /// The `.so` file.
    pub path: PathBuf,
    /// The loaded plugin, or why it could not be loaded.
    pub loaded: Result<LoadedPlugin, LoadError>,
}

impl FoundPlugin {
    /// The command name: the descriptor's, or the file stem for a broken one.
    pub fn name(&self) -> String {
        match &self.loaded {
            Ok(plugin) => plugin.name().to_owned(),
            Err(_) => file_stem_name(&self.path),
        }
    }
}

/// `libfoo.so` / `foo.so` -> `foo`.
fn file_stem_name(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    stem.strip_prefix("lib").unwrap_or(stem).to_owned()
}

/// Directories searched for shared-object plugins, in order:
/// `$SYSAK_PLUGIN_PATH` entries, then the configured directories.
pub fn search_dirs(config: &PluginConfig) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("SYSAK_PLUGIN_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    dirs.extend(config.dirs.iter().cloned());
    dirs
}

/// Every `*.so` in the search directories, loaded (trust-checked first) in
/// search order. A directory that does not exist is skipped quietly; one
/// that cannot be read is reported as a broken entry.
pub fn discover(config: &PluginConfig) -> Vec<FoundPlugin> {
    let mut found = Vec::new();
    for dir in search_dirs(config) {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                found.push(FoundPlugin { path: dir.clone(), loaded: Err(LoadError::Io(dir, e)) });
                continue;
            }
        };
        let mut files: Vec<PathBuf> =
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "so")).collect();
        files.sort();
        for path in files {
            let loaded = LoadedPlugin::open(&path);
            found.push(FoundPlugin { path, loaded });
        }
    }
    found
}

/// The plugin to run for `name`, if any: the first working plugin with that
/// name in search order. A broken file whose stem is `name` is returned as
/// its error, so `sysak foo` explains why `foo.so` was refused.
pub fn find(config: &PluginConfig, name: &str) -> Option<Result<LoadedPlugin, LoadError>> {
    let mut broken = None;
    for plugin in discover(config) {
        match plugin.loaded {
            Ok(loaded) if loaded.name() == name => return Some(Ok(loaded)),
            Err(e) if broken.is_none() && file_stem_name(&plugin.path) == name => broken = Some(Err(e)),
            _ => {}
        }
    }
    broken
}

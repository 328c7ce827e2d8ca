//! Loading shared-object plugins and running them through the C ABI.
//!
//! Order of checks, each with its own error: trust ([`super::trust`]), the
//! file is an ELF shared object, `dlopen(RTLD_NOW | RTLD_LOCAL)` (so a
//! missing symbol fails here, not halfway through a run), the entry symbol
//! exists, and the descriptor it returns speaks an ABI version and struct
//! size this host understands. Libraries are never unloaded: Rust plugins
//! may leave thread-locals and destructors behind that `dlclose` would pull
//! out from under them.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io::Read;
use std::mem::ManuallyDrop;
use std::os::raw::{c_char, c_int};
use std::path::{Path, PathBuf};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use sysak_plugin::abi::{self, SysakHost, SysakPlugin};

use super::trust::{self, TrustError};
use sysak_cli::output::Format;

/// Why a plugin could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file or directory could not be read.
    Io(PathBuf, std::io::Error),
    /// Refused by the trust checks.
    Untrusted(TrustError),
    /// Not an ELF shared object.
    NotSharedObject(PathBuf, String),
    /// `dlopen` failed (missing dependency or undefined symbol).
    Dlopen(PathBuf, String),
    /// The entry symbol is missing.
    NoEntry(PathBuf),
    /// The descriptor is unusable (null, wrong ABI, wrong size, bad strings).
    BadDescriptor(PathBuf, String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            LoadError::Untrusted(e) => e.fmt(f),
            LoadError::NotSharedObject(p, why) => {
                write!(f, "{} is not a shared object ({why})", p.display())
            }
            LoadError::Dlopen(p, why) => write!(f, "cannot load {}: {why}", p.display()),
            LoadError::NoEntry(p) => write!(f, "{} does not export {}(): not a sysak plugin", p.display(), abi::ENTRY_SYMBOL),
            LoadError::BadDescriptor(p, why) => write!(f, "{}: {why}", p.display()),
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded, validated plugin.
pub struct LoadedPlugin {
    path: PathBuf,
    name: String,
    summary: String,
    category: String,
    flags: u32,
    run: abi::RunFn,
    // Keeps the code mapped; never unloaded (see the module doc).
    _library: ManuallyDrop<Library>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin").field("path", &self.path).field("name", &self.name).finish()
    }
}

impl LoadedPlugin {
    /// Check, load and validate the plugin at `path`.
    pub fn open(path: &Path) -> Result<LoadedPlugin, LoadError> {
        trust::check(path).map_err(LoadError::Untrusted)?;
        check_elf_shared_object(path)?;
        // SAFETY: loading a trusted shared object runs its constructors;
        // that is what a plugin is.
        let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| LoadError::Dlopen(path.to_owned(), dl_message(e, path)))?;
        let library = ManuallyDrop::new(library);
        let entry =
            unsafe { library.get::<abi::EntryFn>(abi::ENTRY_SYMBOL.as_bytes()) }.map_err(|_| LoadError::NoEntry(path.to_owned()))?;
        let bad = |why: String| LoadError::BadDescriptor(path.to_owned(), why);
        // SAFETY: the entry takes no arguments and returns a static descriptor.
        let desc = unsafe { entry() };
        if desc.is_null() {
            return Err(bad(format!("{}() returned NULL", abi::ENTRY_SYMBOL)));
        }
        // Read the two header words first: a descriptor from a future ABI
        // may be laid out differently past them.
        let (version, size) = unsafe { ((*desc).abi_version, (*desc).struct_size) };
        if version != abi::ABI_VERSION {
            return Err(bad(format!("plugin ABI version {version} is not supported (this sysak speaks version {})", abi::ABI_VERSION)));
        }
        if (size as usize) < abi::PLUGIN_V1_SIZE {
            return Err(bad(format!(
                "descriptor struct_size {size} is smaller than ABI version {version}'s {} bytes",
                abi::PLUGIN_V1_SIZE
            )));
        }
        // SAFETY: version and size say the plugin wrote a full v1 struct.
        let desc: &SysakPlugin = unsafe { &*desc };
        let text = |p: *const c_char, field: &str| -> Result<String, LoadError> {
            if p.is_null() {
                return Err(bad(format!("descriptor field `{field}` is NULL")));
            }
            // SAFETY: non-null, and the ABI says NUL-terminated static text.
            let s = unsafe { CStr::from_ptr(p) };
            s.to_str().map(str::to_owned).map_err(|_| bad(format!("`{field}` is not UTF-8")))
        };
        let name = text(desc.name, "name")?;
        if !valid_command_name(&name) {
            return Err(bad(format!("plugin name {name:?} is not a valid command name")));
        }
        let summary = text(desc.summary, "summary")?;
        let category = text(desc.category, "category")?;
        let run = desc.run.ok_or_else(|| bad("descriptor field `run` is NULL".into()))?;
        Ok(LoadedPlugin { path: path.to_owned(), name, summary, category, flags: desc.flags, run, _library: library })
    }

    /// Command name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// One-line summary.
    pub fn summary(&self) -> &str {
        &self.summary
    }
    /// Category for `sysak list`.
    pub fn category(&self) -> &str {
        &self.category
    }
    /// Listed only by `sysak list --all`.
    pub fn experimental(&self) -> bool {
        self.flags & abi::FLAG_EXPERIMENTAL != 0
    }
    /// Refused unprivileged.
    pub fn needs_root(&self) -> bool {
        self.flags & abi::FLAG_NEEDS_ROOT != 0
    }

    /// Call the plugin's `run` with `args` (argv[0] is the plugin name) and
    /// return its exit status.
    pub fn run(&self, format: Format, args: &[String]) -> i32 {
        let version = CString::new(env!("CARGO_PKG_VERSION")).unwrap_or_default();
        let host = HostBlock {
            raw: SysakHost {
                abi_version: abi::ABI_VERSION,
                struct_size: std::mem::size_of::<SysakHost>() as u32,
                format: match format {
                    Format::Table => abi::FORMAT_TABLE,
                    Format::Json => abi::FORMAT_JSON,
                },
                reserved: 0,
                host_version: version.as_ptr(),
                log: Some(host_log),
            },
            plugin_name: self.name.clone(),
        };
        let argv_owned: Vec<CString> = std::iter::once(self.name.as_str())
            .chain(args.iter().map(String::as_str))
            .map(|a| CString::new(a.replace('\0', "")).unwrap_or_default())
            .collect();
        let mut argv: Vec<*const c_char> = argv_owned.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: host and argv outlive the call; the plugin was validated.
        unsafe { (self.run)(&host.raw, (argv.len() - 1) as c_int, argv.as_ptr()) }
    }
}

/// `struct sysak_host` plus what the host's callbacks need. `raw` is first,
/// so the pointer handed to the plugin is also a pointer to the block.
#[repr(C)]
struct HostBlock {
    raw: SysakHost,
    plugin_name: String,
}

unsafe extern "C" fn host_log(host: *const SysakHost, level: u32, msg: *const c_char) {
    if host.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: the only SysakHost we hand out is the head of a HostBlock.
    let block = unsafe { &*(host as *const HostBlock) };
    let msg = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    let label = match level {
        abi::LOG_ERROR => "error",
        abi::LOG_WARN => "warning",
        abi::LOG_INFO => "info",
        _ if std::env::var_os("SYSAK_DEBUG").is_some() => "debug",
        _ => return,
    };
    eprintln!("sysak {}: {label}: {msg}", block.plugin_name);
}

/// `[a-z0-9][a-z0-9_-]*`, at most 64 bytes.
pub fn valid_command_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The ELF header says "shared object" (e_type ET_DYN): refuse anything else
/// before handing it to the dynamic loader.
fn check_elf_shared_object(path: &Path) -> Result<(), LoadError> {
    let mut header = [0u8; 18];
    let mut file = std::fs::File::open(path).map_err(|e| LoadError::Io(path.to_owned(), e))?;
    let n = file.read(&mut header).map_err(|e| LoadError::Io(path.to_owned(), e))?;
    let not_so = |why: &str| Err(LoadError::NotSharedObject(path.to_owned(), why.to_owned()));
    if n < header.len() || &header[..4] != b"\x7fELF" {
        return not_so("no ELF header");
    }
    let e_type = match header[5] {
        1 => u16::from_le_bytes([header[16], header[17]]),
        2 => u16::from_be_bytes([header[16], header[17]]),
        _ => return not_so("bad ELF data encoding"),
    };
    const ET_DYN: u16 = 3;
    if e_type != ET_DYN {
        return not_so(&format!("ELF type {e_type}, not ET_DYN"));
    }
    Ok(())
}

/// The dynamic loader's own words (dlerror), without the file name it
/// starts with: the caller names the file already.
fn dl_message(err: libloading::Error, path: &Path) -> String {
    use std::error::Error as _;
    let text = err.source().map(|s| s.to_string()).unwrap_or_else(|| err.to_string());
    let prefix = format!("{}: ", path.display());
    text.strip_prefix(&prefix).map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names() {
        for ok in ["oomkill", "cg-memtop", "a1_b"] {
            assert!(valid_command_name(ok), "{ok}");
        }
        for bad in ["", "-x", "Upper", "a b", "../x", "名"] {
            assert!(!valid_command_name(bad), "{bad}");
        }
    }
}

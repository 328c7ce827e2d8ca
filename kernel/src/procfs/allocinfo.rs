//! `/proc/allocinfo` (6.10+, CONFIG_MEM_ALLOC_PROFILING): bytes and calls
//! outstanding per allocation site, counted by the kernel itself — the
//! precise source where it exists.
//!
//! ```text
//! allocinfo - version: 1.0
//! #     <size>  <calls> <tag info>
//!      2097152      512 mm/percpu-vm.c:95 func:pcpu_alloc_pages
//!         4096        1 lib/test_module.c:20 [test_leak] func:leak_pages
//! ```

use super::{read_to_string, Error, ProcFs};
use serde::Serialize;
use std::path::Path;

/// One allocation site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllocSite {
    /// Bytes currently allocated from this site.
    pub bytes: u64,
    /// Allocations currently outstanding.
    pub calls: u64,
    /// `file:line`.
    pub location: String,
    /// Module, for module code.
    pub module: Option<String>,
    /// Allocating function.
    pub function: String,
}

impl ProcFs {
    /// Read `/proc/allocinfo`; `Ok(None)` when the kernel does not have it.
    pub fn read_allocinfo(&self) -> Result<Option<Vec<AllocSite>>, Error> {
        let path = self.proc_path("allocinfo");
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        parse_allocinfo(&read_to_string(&path)?, &path).map(Some)
    }
}

/// Parse allocinfo text; `path` names it in errors.
pub fn parse_allocinfo(text: &str, path: &Path) -> Result<Vec<AllocSite>, Error> {
    let mut sites = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("allocinfo") || line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let bad = || Error::parse(path, index + 1, format!("malformed allocinfo line: {line:?}"));
        let mut words = line.split_whitespace();
        let bytes = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        let calls = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
        let location = words.next().ok_or_else(bad)?.to_string();
        let mut module = None;
        let mut function = None;
        for word in words {
            if let Some(f) = word.strip_prefix("func:") {
                function = Some(f.to_string());
            } else if word.starts_with('[') && word.ends_with(']') {
                module = Some(word.trim_matches(['[', ']']).to_string());
            }
        }
        sites.push(AllocSite { bytes, calls, location, module, function: function.ok_or_else(bad)? });
    }
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_with_modules() {
        let path = format!("{}/tests/data/6.18/allocinfo", env!("CARGO_MANIFEST_DIR"));
        let sites = parse_allocinfo(&std::fs::read_to_string(&path).unwrap(), Path::new(&path)).unwrap();
        assert_eq!(sites.len(), 5);
        assert_eq!(sites[2].function, "alloc_msg");
        assert_eq!((sites[2].bytes, sites[2].calls), (31457280, 7680));
        assert_eq!(sites[3].module.as_deref(), Some("test_leak"));
        assert!(parse_allocinfo("12 x y\n", Path::new("a")).is_err());
    }
}

//! `/proc/vmallocinfo`: one line per vmap area (root only since 2.6.28).
//!
//! ```text
//! 0xffffc90000029000-0xffffc9000002e000   20480 _do_fork+0x79/0x360 pages=4 vmalloc N0=4
//! 0xffffc90001ab0000-0xffffc90001ad1000  135168 kvm_init+0x1a1/0x2c0 [kvm] pages=32 vmalloc N0=32
//! 0xffffb5e780c00000-0xffffb5e780c05000   20480 unpurged vm_area        (5.x+, lazily freed)
//! ```
//! `size` includes the guard page on kernels before 5.2; `pages=` is the
//! memory actually allocated, so that is what sysak counts. Percpu chunks
//! are flagged `vmalloc` but carry no `pages=` and count as 0. Addresses
//! may be hashed (kptr_restrict); nothing here relies on them.

use super::{read_to_string, Error, ProcFs};
use serde::Serialize;
use std::path::Path;

/// One vmap area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmallocArea {
    /// First address, as printed (real for root; hashed or 0 otherwise).
    pub start: u64,
    /// Virtual size in bytes, as printed (guard page included before 5.2).
    pub size_bytes: u64,
    /// The allocating function as the kernel printed it (`func+0x79/0x360`),
    /// with ` [module]` appended for module code.
    pub caller: Option<String>,
    /// `pages=N`: pages allocated for the area.
    pub pages: u64,
    /// Flag words: `vmalloc`, `ioremap`, `vmap`, `user`, `vpages`, `vm_map_ram`, ...
    pub flags: Vec<String>,
}

impl VmallocArea {
    /// Whether vmalloc() memory backs this area (it has pages and the flag).
    pub fn is_vmalloc(&self) -> bool {
        self.pages > 0 && self.flags.iter().any(|f| f == "vmalloc")
    }
}

impl ProcFs {
    /// Read `/proc/vmallocinfo`.
    pub fn read_vmallocinfo(&self) -> Result<Vec<VmallocArea>, Error> {
        let path = self.proc_path("vmallocinfo");
        parse_vmallocinfo(&read_to_string(&path)?, &path)
    }
}

/// Parse vmallocinfo text; `path` names it in errors.
pub fn parse_vmallocinfo(text: &str, path: &Path) -> Result<Vec<VmallocArea>, Error> {
    let mut areas = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let range = words.next().unwrap_or_default();
        let size = words.next().and_then(|w| w.parse::<u64>().ok());
        let (true, Some(size_bytes)) = (range.starts_with("0x") && range.contains('-'), size) else {
            return Err(Error::parse(path, index + 1, format!("malformed vmallocinfo line: {line:?}")));
        };
        let start = range.split('-').next().and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok()).unwrap_or(0);
        let mut area = VmallocArea { start, size_bytes, caller: None, pages: 0, flags: Vec::new() };
        for word in words {
            if let Some(n) = word.strip_prefix("pages=") {
                area.pages = n.parse().unwrap_or(0);
            } else if word.contains('=') {
                // phys=..., N0=...: per-node counts and physical addresses.
            } else if word.starts_with('[') && word.ends_with(']') {
                if let Some(caller) = area.caller.as_mut() {
                    caller.push(' ');
                    caller.push_str(word);
                }
            } else if area.caller.is_none() && area.flags.is_empty() && word.contains('+') {
                area.caller = Some(word.to_string());
            } else {
                area.flags.push(word.to_string());
            }
        }
        areas.push(area);
    }
    Ok(areas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kernel: &str) -> Vec<VmallocArea> {
        let path = format!("{}/tests/data/{kernel}/vmallocinfo", env!("CARGO_MANIFEST_DIR"));
        parse_vmallocinfo(&std::fs::read_to_string(&path).unwrap(), Path::new(&path)).unwrap()
    }

    #[test]
    fn callers_pages_and_flags_on_every_generation() {
        let a = parse("3.10");
        assert_eq!(a[4].caller.as_deref(), Some("kvm_init+0x1a1/0x2c0 [kvm]"));
        assert_eq!((a[4].pages, a[4].is_vmalloc()), (32, true));
        assert!(!a[0].is_vmalloc(), "ioremap");
        let a = parse("5.10");
        let unpurged = a.iter().find(|x| x.flags == ["unpurged", "vm_area"]).unwrap();
        assert_eq!(unpurged.caller, None);
        let percpu = a.iter().find(|x| x.caller.as_deref() == Some("pcpu_get_vm_areas+0x0/0x10d0")).unwrap();
        assert!(!percpu.is_vmalloc(), "percpu chunk has no pages=");
        let vmalloc_pages: u64 = a.iter().filter(|x| x.is_vmalloc()).map(|x| x.pages).sum();
        assert_eq!(vmalloc_pages, 1 + 4 + 4 + 512 + 8);
        let a = parse("4.19");
        assert_eq!(a[4].caller.as_deref(), Some("xfs_buf_map_from_irec+0x0/0x20 [xfs]"));
        assert!(!a.iter().any(|x| x.flags.iter().any(|f| f == "unpurged")));
        let a = parse("6.1");
        let vmalloc_pages: u64 = a.iter().filter(|x| x.is_vmalloc()).map(|x| x.pages).sum();
        assert_eq!(vmalloc_pages, 1 + 4 + 512 + 8 + 16);
        let a = parse("6.18");
        assert!(a.iter().any(|x| x.is_vmalloc()));
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let err = parse_vmallocinfo("0x1-0x2 4096 f+0x1/0x2 pages=1 vmalloc\ngarbage\n", Path::new("v")).unwrap_err();
        assert_eq!(err.to_string(), "v:2: malformed vmallocinfo line: \"garbage\"");
    }
}

//! `/proc/slabinfo`, format version 2.x.
//!
//! Header (kernels 2.6 through 6.18, SLUB and SLAB alike):
//! ```text
//! slabinfo - version: 2.1
//! # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
//! ```
//! The "(statistics)" variant (CONFIG_DEBUG_SLAB) appends `: globalstat` and
//! `: cpustat` sections, which are ignored. Reading needs root on every kernel
//! since 2.6.36 (mode 0400).

use super::{read_to_string, Error, ProcFs};
use serde::Serialize;
use std::path::Path;

/// One line of `/proc/slabinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlabCacheStats {
    /// Cache name (`kmalloc-64`, `dentry`).
    pub name: String,
    /// `<active_objs>`: objects in use. SLUB counts objects on per-CPU slabs
    /// as active, so this over-counts by up to a few slabs per CPU.
    pub active_objs: u64,
    /// `<num_objs>`: object slots in all slabs.
    pub num_objs: u64,
    /// `<objsize>`: bytes per object, including metadata SLUB keeps inline.
    pub objsize_bytes: u64,
    /// `<objperslab>`.
    pub objs_per_slab: u64,
    /// `<pagesperslab>`.
    pub pages_per_slab: u64,
    /// `<active_slabs>` (equals `num_slabs` on SLUB).
    pub active_slabs: u64,
    /// `<num_slabs>`.
    pub num_slabs: u64,
}

impl SlabCacheStats {
    /// Upper bound of the memory the cache holds: slabs × pages per slab ×
    /// page size (the same figure procps calls CACHE SIZE; under memory
    /// pressure SLUB falls back to smaller slabs, so it can over-count).
    pub fn cache_size_bytes(&self, page_size: u64) -> u64 {
        self.num_slabs * self.pages_per_slab * page_size
    }
}

/// The whole of `/proc/slabinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlabInfo {
    /// Format version, `(2, 1)` on every kernel since 2.6.
    pub version: (u32, u32),
    /// Caches in file order.
    pub caches: Vec<SlabCacheStats>,
}

impl ProcFs {
    /// Read and parse `/proc/slabinfo`.
    pub fn read_slabinfo(&self) -> Result<SlabInfo, Error> {
        let path = self.proc_path("slabinfo");
        SlabInfo::parse(&read_to_string(&path)?, &path)
    }
}

impl SlabInfo {
    /// Parse the text of a slabinfo file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<SlabInfo, Error> {
        let mut lines = text.lines().enumerate();
        let (_, first) = lines.next().ok_or_else(|| Error::parse(path, 1, "empty file"))?;
        let version = first
            .strip_prefix("slabinfo - version: ")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.split_once('.'))
            .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
            .ok_or_else(|| Error::parse(path, 1, format!("not a slabinfo header: {first:?}")))?;
        if version.0 != 2 {
            return Err(Error::parse(path, 1, format!("slabinfo version {}.{} is not supported (2.x is)", version.0, version.1)));
        }
        let mut caches = Vec::new();
        for (index, line) in lines {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            caches.push(parse_cache_line(line).ok_or_else(|| Error::parse(path, index + 1, format!("malformed cache line: {line:?}")))?);
        }
        Ok(SlabInfo { version, caches })
    }
}

/// `name active num objsize objperslab pagesperslab : tunables a b c : slabdata as ns sa`
fn parse_cache_line(line: &str) -> Option<SlabCacheStats> {
    let mut sections = line.split(':');
    let mut head = sections.next()?.split_whitespace();
    let name = head.next()?.to_string();
    let mut num = || head.next()?.parse::<u64>().ok();
    let (active_objs, num_objs, objsize_bytes, objs_per_slab, pages_per_slab) = (num()?, num()?, num()?, num()?, num()?);
    let slabdata = sections.find(|s| s.trim_start().starts_with("slabdata"))?;
    let mut data = slabdata.split_whitespace().skip(1);
    let mut num = || data.next()?.parse::<u64>().ok();
    let (active_slabs, num_slabs) = (num()?, num()?);
    Some(SlabCacheStats { name, active_objs, num_objs, objsize_bytes, objs_per_slab, pages_per_slab, active_slabs, num_slabs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(kernel: &str) -> String {
        let path = format!("{}/tests/data/{kernel}/slabinfo", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn parses_every_kernel_generation() {
        for (kernel, caches, probe) in [
            ("3.10", 6, ("kmalloc-64", 11584, 64)),
            ("4.19", 6, ("ext4_inode_cache", 98670, 1080)),
            ("6.1", 6, ("kmalloc-cg-96", 504, 96)),
            ("5.10", 6, ("kmalloc-96", 2100, 96)),
            ("6.18", 6, ("dentry", 10080, 192)),
        ] {
            let info = SlabInfo::parse(&fixture(kernel), Path::new(kernel)).unwrap();
            assert_eq!(info.version, (2, 1), "{kernel}");
            assert_eq!(info.caches.len(), caches, "{kernel}");
            let c = info.caches.iter().find(|c| c.name == probe.0).unwrap();
            assert_eq!((c.num_objs, c.objsize_bytes), (probe.1, probe.2), "{kernel}");
        }
    }

    #[test]
    fn statistics_variant_is_accepted() {
        let text = "slabinfo - version: 2.1 (statistics)\n\
            # name ...\n\
            dentry 100 120 192 21 1 : tunables 120 60 8 : slabdata 6 6 0 : globalstat 1 2 3 4 5 6 7 8 9 10 : cpustat 1 2 3 4\n";
        let info = SlabInfo::parse(text, Path::new("x")).unwrap();
        assert_eq!(info.caches[0].active_slabs, 6);
        assert_eq!(info.caches[0].cache_size_bytes(4096), 6 * 4096);
    }

    #[test]
    fn bad_input_names_file_and_line() {
        let err = SlabInfo::parse("", Path::new("/p/slabinfo")).unwrap_err();
        assert_eq!(err.to_string(), "/p/slabinfo:1: empty file");
        let err = SlabInfo::parse("slabinfo - version: 1.1\n", Path::new("s")).unwrap_err();
        assert!(err.to_string().contains("version 1.1 is not supported"), "{err}");
        let text = "slabinfo - version: 2.1\n# h\ndentry 1 2 three 4 5 : tunables 0 0 0 : slabdata 1 1 0\n";
        let err = SlabInfo::parse(text, Path::new("s")).unwrap_err();
        assert!(err.to_string().starts_with("s:3: malformed cache line"), "{err}");
        let truncated = "slabinfo - version: 2.1\n# h\ndentry 1 2 3 4 5 : tunables 0 0 0 : slab";
        assert!(SlabInfo::parse(truncated, Path::new("s")).is_err());
    }
}

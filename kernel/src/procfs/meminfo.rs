//! `/proc/meminfo`, through the procfs crate, reduced to what sysak uses.
//!
//! Caveats by kernel: `VmallocUsed` read 0 from 4.0 (Linux commit
//! a5ad88ce8c7f ("mm: get rid of 'vmalloc_info' from /proc/meminfo")) until
//! 5.3 (97105f0ab7b8 ("mm: vmalloc: show number of vmalloc pages in
//! /proc/meminfo")), so vmalloc memory is taken from /proc/vmallocinfo
//! instead. `Hugetlb:` (all huge page sizes) is missing on older kernels;
//! there `HugePages_Total × Hugepagesize` (default size only) stands in.

use super::{read_to_string, Error, ProcFs};
use procfs::FromBufRead;
use serde::Serialize;
use std::path::Path;

/// The `/proc/meminfo` figures sysak uses, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemInfo {
    /// `MemTotal`.
    pub mem_total: u64,
    /// `MemFree`.
    pub mem_free: u64,
    /// `Active` (anon + file LRU).
    pub active: u64,
    /// `Inactive` (anon + file LRU).
    pub inactive: u64,
    /// `Mlocked` (0 where absent).
    pub mlocked: u64,
    /// `Slab`.
    pub slab: u64,
    /// `SUnreclaim` (`Slab` where absent: pre-2.6.19 kernels).
    pub slab_unreclaimable: u64,
    /// `Hugetlb`, or `HugePages_Total × Hugepagesize`.
    pub hugetlb: u64,
    /// `VmallocUsed` (0 on 4.0–5.2, see the module doc).
    pub vmalloc_used: u64,
    /// `Unevictable` (2.6.28+; it includes `Mlocked`).
    pub unevictable: Option<u64>,
    /// `KernelStack` (2.6.32+).
    pub kernel_stack: Option<u64>,
    /// `PageTables`.
    pub page_tables: Option<u64>,
    /// `SecPageTables`: KVM's and IOMMU's page tables (6.1+).
    pub secondary_page_tables: Option<u64>,
    /// `Percpu`: pages backing per-CPU areas (4.16+).
    pub percpu: Option<u64>,
    /// `KReclaimable`: `SReclaimable` plus other reclaimable kernel memory
    /// (4.20+).
    pub k_reclaimable: Option<u64>,
    /// `SReclaimable`.
    pub s_reclaimable: Option<u64>,
    /// `Zswap`: the compressed pool of zswap (5.19+).
    pub zswap: Option<u64>,
    /// `HardwareCorrupted`: pages taken out of use by memory failure.
    pub hardware_corrupted: Option<u64>,
    /// `Unaccepted`: memory a confidential guest has not accepted yet
    /// (6.5+).
    pub unaccepted: Option<u64>,
}

impl ProcFs {
    /// Read `/proc/meminfo`.
    pub fn read_meminfo(&self) -> Result<MemInfo, Error> {
        let path = self.proc_path("meminfo");
        MemInfo::parse(&read_to_string(&path)?, &path)
    }
}

impl MemInfo {
    /// Parse meminfo text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<MemInfo, Error> {
        let m = procfs::Meminfo::from_buf_read(text.as_bytes())
            .map_err(|_| Error::parse(path, 1, "not a complete meminfo file (a required field is missing or malformed)"))?;
        let hugetlb = m.hugetlb.unwrap_or_else(|| m.hugepages_total.unwrap_or(0) * m.hugepagesize.unwrap_or(0));
        Ok(MemInfo {
            mem_total: m.mem_total,
            mem_free: m.mem_free,
            active: m.active,
            inactive: m.inactive,
            mlocked: m.mlocked.unwrap_or(0),
            slab: m.slab,
            slab_unreclaimable: m.s_unreclaim.unwrap_or(m.slab),
            hugetlb,
            vmalloc_used: m.vmalloc_used,
            unevictable: m.unevictable,
            kernel_stack: m.kernel_stack,
            page_tables: m.page_tables,
            secondary_page_tables: m.secondary_page_tables,
            percpu: m.per_cpu,
            k_reclaimable: m.k_reclaimable,
            s_reclaimable: m.s_reclaimable,
            zswap: m.z_swap,
            hardware_corrupted: m.hardware_corrupted,
            // Newer than the procfs crate knows.
            unaccepted: kilobytes_line(text, "Unaccepted:"),
        })
    }
}

/// `<label> <N> kB` anywhere in `text`, in bytes.
fn kilobytes_line(text: &str, label: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(label))?;
    let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kernel: &str) -> MemInfo {
        let path = format!("{}/tests/data/{kernel}/meminfo", env!("CARGO_MANIFEST_DIR"));
        MemInfo::parse(&std::fs::read_to_string(&path).unwrap(), Path::new(&path)).unwrap()
    }

    #[test]
    fn kilobytes_become_bytes_on_every_generation() {
        let m = parse("6.18");
        assert_eq!(m.mem_total, 24683656 * 1024);
        assert_eq!(m.slab_unreclaimable, 22444 * 1024);
        assert_eq!(m.mlocked, 8872 * 1024);
        let m = parse("5.10");
        assert_eq!(m.hugetlb, 131072 * 1024);
        assert_eq!(m.vmalloc_used, 40960 * 1024);
        // 4.19: VmallocUsed reads 0 (4.0-5.2), no KReclaimable (4.20+).
        let m = parse("4.19");
        assert_eq!((m.vmalloc_used, m.slab_unreclaimable, m.hugetlb), (0, 211008 * 1024, 0));
        assert_eq!((m.kernel_stack, m.page_tables, m.percpu, m.zswap), (Some(12480 * 1024), Some(23988 * 1024), Some(11392 * 1024), None));
        let m = parse("6.1");
        assert_eq!((m.mem_total, m.slab_unreclaimable, m.vmalloc_used), (2014740 * 1024, 39752 * 1024, 12264 * 1024));
        let m = parse("3.10");
        assert_eq!(m.slab_unreclaimable, 8388608 * 1024);
        // No Hugetlb line before 4.x: HugePages_Total × Hugepagesize.
        assert_eq!(m.hugetlb, 4 * 2048 * 1024);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(MemInfo::parse("", Path::new("m")).is_err());
        assert!(MemInfo::parse("MemTotal: lots\n", Path::new("m")).is_err());
    }
}

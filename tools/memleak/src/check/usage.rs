//! What each kind of kernel memory holds now: the categories of the check
//! (see the parent module for the rule behind each), measured from
//! /proc/meminfo, /proc/vmallocinfo, /proc/zoneinfo and zram.

use serde::Serialize;
use sysak_kernel::procfs::{page_size, MemInfo, ProcFs, VmallocArea};

/// A kind of kernel memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Unreclaimable slab.
    Slab,
    /// Raw page allocations.
    Page,
    /// vmalloc areas.
    Vmalloc,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 3] = [Kind::Slab, Kind::Vmalloc, Kind::Page];

    /// The kind's name as the CLI and JSON spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Slab => "slab",
            Kind::Page => "page",
            Kind::Vmalloc => "vmalloc",
        }
    }
}

/// The category sizes at one moment, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// `MemTotal`.
    pub mem_total: u64,
    /// `SUnreclaim`.
    pub slab_unreclaimable: u64,
    /// vmalloc pages × page size.
    pub vmalloc: u64,
    /// Pages no other counter explains (see the module doc).
    pub alloc_pages: u64,
    /// The kernel page users subtracted from alloc pages beyond the
    /// original's rule, each line the kernel has (0-byte lines included).
    pub alloc_pages_explained: Vec<Explained>,
}

/// One kernel page user subtracted from the alloc-pages residual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explained {
    /// The meminfo line, or the file for figures from elsewhere.
    pub line: &'static str,
    /// Bytes subtracted.
    pub bytes: u64,
}

/// Free or used pages no meminfo line shows (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherPages {
    /// Free pages on per-CPU lists, bytes.
    pub per_cpu_free: u64,
    /// Memory of zram devices, bytes.
    pub zram: u64,
}

impl OtherPages {
    /// Read them; a host without zoneinfo or zram has 0 of them.
    pub fn measure(procfs: &ProcFs, page_size: u64) -> OtherPages {
        OtherPages {
            per_cpu_free: procfs.read_per_cpu_free_pages().unwrap_or(0) * page_size,
            zram: procfs.read_zram_used_bytes().unwrap_or(0),
        }
    }
}

impl Usage {
    /// Bytes held by `kind`.
    pub fn bytes(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Slab => self.slab_unreclaimable,
            Kind::Page => self.alloc_pages,
            Kind::Vmalloc => self.vmalloc,
        }
    }

    /// Combine a meminfo and a vmallocinfo read with the pages they miss.
    pub fn from_files(mem: &MemInfo, vmalloc_areas: &[VmallocArea], page_size: u64, other: OtherPages) -> Usage {
        let vmalloc_of = |prefixes: &[&str]| -> u64 {
            vmalloc_areas
                .iter()
                .filter(|a| a.is_vmalloc() && a.caller.as_deref().is_some_and(|c| prefixes.iter().any(|p| c.starts_with(p))))
                .map(|a| a.pages * page_size)
                .sum()
        };
        let vmalloc: u64 = vmalloc_areas.iter().filter(|a| a.is_vmalloc()).map(|a| a.pages * page_size).sum();
        let original = [mem.mem_free, mem.active, mem.inactive, mem.mlocked, mem.slab, mem.hugetlb, vmalloc];
        let beyond = |line: Option<u64>, part: u64| line.map(|n| n.saturating_sub(part));
        let explained: Vec<Explained> = [
            ("PageTables", mem.page_tables),
            ("SecPageTables", mem.secondary_page_tables),
            ("KernelStack outside vmalloc", beyond(mem.kernel_stack, vmalloc_of(&["alloc_thread_stack_node", "dup_task_struct"]))),
            ("Percpu outside vmalloc", beyond(mem.percpu, vmalloc_of(&["pcpu_"]))),
            ("Unevictable beyond Mlocked", beyond(mem.unevictable, mem.mlocked)),
            ("KReclaimable beyond SReclaimable", mem.k_reclaimable.map(|k| k.saturating_sub(mem.s_reclaimable.unwrap_or(0)))),
            ("Zswap", mem.zswap),
            ("HardwareCorrupted", mem.hardware_corrupted),
            ("Unaccepted", mem.unaccepted),
            ("per-CPU free pages (/proc/zoneinfo)", Some(other.per_cpu_free)),
            ("zram (/sys/block/zram*/mm_stat)", (other.zram > 0).then_some(other.zram)),
        ]
        .into_iter()
        .filter_map(|(line, bytes)| bytes.map(|bytes| Explained { line, bytes }))
        .collect();
        let alloc_pages = original.iter().chain(explained.iter().map(|e| &e.bytes)).fold(mem.mem_total, |left, x| left.saturating_sub(*x));
        Usage {
            mem_total: mem.mem_total,
            slab_unreclaimable: mem.slab_unreclaimable,
            vmalloc,
            alloc_pages,
            alloc_pages_explained: explained,
        }
    }

    /// Read the live files.
    pub fn measure(procfs: &ProcFs) -> anyhow::Result<Usage> {
        let page_size = page_size();
        Ok(Usage::from_files(&procfs.read_meminfo()?, &procfs.read_vmallocinfo()?, page_size, OtherPages::measure(procfs, page_size)))
    }
}

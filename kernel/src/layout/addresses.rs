//! Where the kernel maps memory (x86_64): the direct map of physical memory
//! (`page_offset_base`) and the array of struct pages (`vmemmap`). With
//! CONFIG_RANDOMIZE_MEMORY (KASLR) both move every boot.
//!
//! Sources, in order:
//! 1. /proc/kallsyms `page_offset_base` / `vmemmap_base` (kernels with
//!    CONFIG_KALLSYMS_ALL: most distro kernels, Debian 5.10 and 6.1), read
//!    through the memory backend;
//! 2. without data symbols (this project's 6.18 CI kernel): the direct map
//!    is the candidate base under which the bytes at `_text` appear at the
//!    physical "Kernel code" address of /proc/iomem. Candidates are the
//!    unrandomised bases for 4- and 5-level paging and every 1 GiB step
//!    below a known direct-map pointer (the current task). vmemmap then
//!    comes from the VMCOREINFO note (`SYMBOL(vmemmap)`), read through the
//!    direct map at the physical address /sys/kernel/vmcoreinfo gives.

use std::collections::HashMap;

use crate::kmem::KernelMemory;
use crate::procfs::ProcFs;
use crate::symbols::Kallsyms;

/// Unrandomised direct map bases: 4-level, 5-level paging.
const DEFAULT_PAGE_OFFSETS: [u64; 2] = [0xffff_8880_0000_0000, 0xff11_0000_0000_0000];
/// Unrandomised vmemmap bases: 4-level, 5-level paging.
const DEFAULT_VMEMMAPS: [u64; 2] = [0xffff_ea00_0000_0000, 0xffd4_0000_0000_0000];
/// KASLR aligns the direct map to a PUD (1 GiB).
const PUD: u64 = 1 << 30;
/// Bytes compared at `_text`.
const PROBE_BYTES: usize = 256;

/// The memory map bases and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelAddresses {
    /// Virtual address of physical address 0.
    pub page_offset: u64,
    /// Virtual address of the struct page of PFN 0.
    pub vmemmap: u64,
    /// Where the two came from, for reports.
    pub source: String,
}

impl KernelAddresses {
    /// Virtual address of a page frame in the direct map.
    pub fn pfn_to_virt(&self, pfn: u64) -> u64 {
        self.page_offset + pfn * crate::kmem::PAGE
    }

    /// Address of a page frame's struct page.
    pub fn pfn_to_page(&self, pfn: u64, page_struct_size: usize) -> u64 {
        self.vmemmap + pfn * page_struct_size as u64
    }

    /// Both bases from kallsyms data symbols (CONFIG_KALLSYMS_ALL and
    /// CONFIG_RANDOMIZE_MEMORY: most distro kernels), read through `mem`.
    pub fn from_symbols(mem: &dyn KernelMemory, symbols: &Kallsyms) -> Option<KernelAddresses> {
        let by_symbol = |name: &str| symbols.address_of(name).and_then(|a| mem.read_u64(a).ok());
        let (page_offset, vmemmap) = (by_symbol("page_offset_base")?, by_symbol("vmemmap_base")?);
        Some(KernelAddresses { page_offset, vmemmap, source: "kallsyms page_offset_base, vmemmap_base".into() })
    }

    /// Find both bases; `hint` is any direct-map address (e.g. the current
    /// task_struct), used when kallsyms has no data symbols.
    pub fn discover(mem: &dyn KernelMemory, symbols: &Kallsyms, procfs: &ProcFs, hint: Option<u64>) -> Result<KernelAddresses, String> {
        if let Some(found) = KernelAddresses::from_symbols(mem, symbols) {
            return Ok(found);
        }
        let page_offset = probe_direct_map(mem, symbols, procfs, hint)?;
        let (vmemmap, how) = match read_vmcoreinfo(mem, procfs, page_offset) {
            Ok(info) => match info.symbol("vmemmap") {
                Some(v) => (v, "VMCOREINFO SYMBOL(vmemmap)"),
                None => (default_vmemmap(page_offset), "the unrandomised vmemmap base (VMCOREINFO has no SYMBOL(vmemmap))"),
            },
            Err(_) => (default_vmemmap(page_offset), "the unrandomised vmemmap base (no VMCOREINFO)"),
        };
        Ok(KernelAddresses {
            page_offset,
            vmemmap,
            source: format!("direct map found by matching _text with its physical copy; vmemmap from {how}"),
        })
    }
}

fn default_vmemmap(page_offset: u64) -> u64 {
    if page_offset >= DEFAULT_PAGE_OFFSETS[0] {
        DEFAULT_VMEMMAPS[0]
    } else {
        DEFAULT_VMEMMAPS[1]
    }
}

fn probe_direct_map(mem: &dyn KernelMemory, symbols: &Kallsyms, procfs: &ProcFs, hint: Option<u64>) -> Result<u64, String> {
    let text = symbols.address_of("_text").ok_or("kallsyms has no _text")?;
    let phys = procfs.read_physical_layout().map_err(|e| e.to_string())?;
    let mut reference = [0u8; PROBE_BYTES];
    mem.read(text, &mut reference).map_err(|e| format!("reading _text: {e}"))?;
    let mut candidates: Vec<u64> = DEFAULT_PAGE_OFFSETS.to_vec();
    if let Some(hint) = hint {
        // hint = base + phys with phys < ram_end.
        let highest = hint & !(PUD - 1);
        let lowest = hint.saturating_sub(phys.ram_end) & !(PUD - 1);
        candidates.extend((0..=(highest - lowest) / PUD).map(|i| highest - i * PUD));
    }
    let mut probe = [0u8; PROBE_BYTES];
    candidates.into_iter().find(|base| mem.read(base.wrapping_add(phys.kernel_code), &mut probe).is_ok() && probe == reference).ok_or_else(
        || {
            format!(
                "could not find the direct map: no candidate base shows _text's bytes at physical {:#x}{}",
                phys.kernel_code,
                if hint.is_none() { " (and no direct-map pointer to start from)" } else { "" }
            )
        },
    )
}

/// The VMCOREINFO note's `KEY=value` lines.
#[derive(Debug, Clone, Default)]
pub struct VmcoreInfo {
    entries: HashMap<String, String>,
}

impl VmcoreInfo {
    /// Parse the note's text (the descriptor after the ELF note header).
    pub fn parse(text: &str) -> VmcoreInfo {
        let entries = text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
        VmcoreInfo { entries }
    }

    /// `SYMBOL(name)=hex`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.hex(&format!("SYMBOL({name})"))
    }

    /// `NUMBER(name)=decimal or 0xhex`.
    pub fn number(&self, name: &str) -> Option<i64> {
        let v = self.entries.get(&format!("NUMBER({name})"))?;
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok().map(|v| v as i64),
            None => v.parse().ok(),
        }
    }

    /// A raw entry (`OSRELEASE`, `KERNELOFFSET`, `SIZE(page)`, …).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    fn hex(&self, key: &str) -> Option<u64> {
        u64::from_str_radix(self.entries.get(key)?.trim_start_matches("0x"), 16).ok()
    }
}

/// Read the live VMCOREINFO note through the direct map.
pub fn read_vmcoreinfo(mem: &dyn KernelMemory, procfs: &ProcFs, page_offset: u64) -> Result<VmcoreInfo, String> {
    let (phys, size) = procfs.read_vmcoreinfo_location().map_err(|e| e.to_string())?;
    let mut note = vec![0u8; size];
    mem.read(page_offset + phys, &mut note).map_err(|e| format!("reading VMCOREINFO: {e}"))?;
    // Elf64_Nhdr: namesz, descsz, type; name "VMCOREINFO\0" padded to 4.
    let word = |i: usize| u32::from_le_bytes(note[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
    let (namesz, descsz) = (word(0), word(1));
    let start = 12 + namesz.next_multiple_of(4);
    let desc = note.get(start..start + descsz).ok_or("VMCOREINFO note is truncated")?;
    Ok(VmcoreInfo::parse(&String::from_utf8_lossy(desc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmcoreinfo_entries() {
        let info = VmcoreInfo::parse("OSRELEASE=6.18.44\nSYMBOL(vmemmap)=ffffea0000000000\nNUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376\nNUMBER(VMALLOC_START)=0xffffc90000000000\nSIZE(page)=64\n");
        assert_eq!(info.symbol("vmemmap"), Some(0xffff_ea00_0000_0000));
        assert_eq!(info.number("PAGE_SLAB_MAPCOUNT_VALUE"), Some(-184549376));
        assert_eq!(info.number("VMALLOC_START"), Some(0xffffc90000000000u64 as i64));
        assert_eq!(info.get("SIZE(page)"), Some("64"));
        assert_eq!(info.symbol("missing"), None);
    }
}

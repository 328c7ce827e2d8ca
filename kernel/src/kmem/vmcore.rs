//! An ELF dump of a whole machine's memory, for offline analysis: QEMU's
//! `dump-guest-memory` (with `-device vmcoreinfo`), or a kdump
//! /proc/vmcore saved as ELF. Physical memory is in the PT_LOAD segments
//! (by `p_paddr`); the VMCOREINFO note says where the kernel keeps its page
//! tables (`SYMBOL(init_top_pgt)`, `NUMBER(phys_base)`), so kernel virtual
//! addresses are translated by walking them, as the CPU would.
//!
//! x86_64 only: 4-level paging, or 5-level when VMCOREINFO says
//! `NUMBER(pgtable_l5_enabled)=1`; 1 GiB and 2 MiB pages; the SME mask is
//! cleared from entries.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use object::elf::{FileHeader64, PT_LOAD, PT_NOTE};
use object::read::elf::{FileHeader, ProgramHeader};
use object::read::ReadCache;
use object::Endianness;

use super::{KernelMemory, ReadError, PAGE};
use crate::layout::VmcoreInfo;

/// `__START_KERNEL_map`: where x86_64 maps the kernel image.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// Physical address bits of a page-table entry.
const ENTRY_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
const HUGE: u64 = 1 << 7;

#[derive(Debug, Clone, Copy)]
struct PhysSegment {
    paddr: u64,
    offset: u64,
    size: u64,
}

/// An open dump.
pub struct Vmcore {
    file: File,
    path: PathBuf,
    segments: Vec<PhysSegment>,
    /// The VMCOREINFO note.
    pub info: VmcoreInfo,
    top_table: u64,
    five_level: bool,
    sme_mask: u64,
}

impl Vmcore {
    /// Open and index a dump; fails with one line when the file is not an
    /// ELF dump, is truncated, or has no VMCOREINFO.
    pub fn open(path: &Path) -> Result<Vmcore, String> {
        let name = path.display();
        let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
        let cache = ReadCache::new(file.try_clone().map_err(|e| e.to_string())?);
        let header = FileHeader64::<Endianness>::parse(&cache).map_err(|e| format!("{name}: not a 64-bit ELF dump: {e}"))?;
        let endian = header.endian().map_err(|e| format!("{name}: {e}"))?;
        if header.e_type(endian) != object::elf::ET_CORE {
            return Err(format!("{name}: an ELF file but not a memory dump"));
        }
        let phdrs = header.program_headers(endian, &cache).map_err(|e| format!("{name}: truncated program headers: {e}"))?;
        let length = file.metadata().map_err(|e| e.to_string())?.len();
        let mut segments = Vec::new();
        let mut info = None;
        for p in phdrs {
            let (offset, size) = (p.p_offset(endian), p.p_filesz(endian));
            if offset.checked_add(size).map_or(true, |end| end > length) {
                return Err(format!("{name}: truncated: a segment ends at {} of {length} bytes", offset.saturating_add(size)));
            }
            match p.p_type(endian) {
                PT_LOAD if size > 0 => segments.push(PhysSegment { paddr: p.p_paddr(endian), offset, size }),
                PT_NOTE if info.is_none() && size < (16 << 20) => {
                    let mut notes = vec![0u8; size as usize];
                    file.read_exact_at(&mut notes, offset).map_err(|e| format!("{name}: {e}"))?;
                    info = find_vmcoreinfo(&notes);
                }
                _ => {}
            }
        }
        segments.sort_by_key(|s| s.paddr);
        let info = info.ok_or_else(|| format!("{name}: no VMCOREINFO note (QEMU needs -device vmcoreinfo)"))?;
        let top = info
            .symbol("init_top_pgt")
            .or_else(|| info.symbol("swapper_pg_dir"))
            .ok_or(format!("{name}: VMCOREINFO has no init_top_pgt"))?;
        let phys_base = info.number("phys_base").unwrap_or(0) as u64;
        Ok(Vmcore {
            file,
            path: path.to_path_buf(),
            segments,
            top_table: top.wrapping_sub(START_KERNEL_MAP).wrapping_add(phys_base),
            five_level: info.number("pgtable_l5_enabled") == Some(1),
            sme_mask: info.number("sme_mask").unwrap_or(0) as u64,
            info,
        })
    }

    /// Page frame ranges `[start, end)` the dump holds.
    pub fn pfn_ranges(&self) -> Vec<(u64, u64)> {
        self.segments.iter().map(|s| (s.paddr / PAGE, (s.paddr + s.size) / PAGE)).collect()
    }

    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let i = self.segments.partition_point(|s| s.paddr <= paddr).checked_sub(1).ok_or(ReadError::Unmapped(paddr))?;
        let s = self.segments[i];
        let within = paddr - s.paddr;
        if within + buf.len() as u64 > s.size {
            return Err(ReadError::Unmapped(paddr));
        }
        self.file.read_exact_at(buf, s.offset + within).map_err(|e| ReadError::Backend(format!("{}: {e}", self.path.display())))
    }

    fn entry(&self, table: u64, index: u64) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.read_phys(table + index * 8, &mut b)?;
        Ok(u64::from_le_bytes(b) & !self.sme_mask)
    }

    /// The physical address of a kernel virtual address.
    pub fn translate(&self, vaddr: u64) -> Result<u64, ReadError> {
        let bits = if self.five_level { 57 } else { 48 };
        let canonical = ((vaddr as i64) << (64 - bits) >> (64 - bits)) as u64 == vaddr;
        if !canonical || vaddr >> 63 == 0 {
            return Err(ReadError::NotKernel(vaddr));
        }
        let shifts: &[u32] = if self.five_level { &[48, 39, 30, 21, 12] } else { &[39, 30, 21, 12] };
        let mut table = self.top_table;
        for &shift in shifts {
            let entry = self.entry(table, (vaddr >> shift) & 0x1ff)?;
            if entry & PRESENT == 0 {
                return Err(ReadError::Unmapped(vaddr));
            }
            let size = 1u64 << shift;
            if shift == 12 || ((shift == 21 || shift == 30) && entry & HUGE != 0) {
                return Ok((entry & ENTRY_ADDRESS & !(size - 1)) | (vaddr & (size - 1)));
            }
            table = entry & ENTRY_ADDRESS;
        }
        unreachable!("the last level returns")
    }
}

/// The descriptor of the "VMCOREINFO" note among ELF notes.
fn find_vmcoreinfo(notes: &[u8]) -> Option<VmcoreInfo> {
    let word = |at: usize| notes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (namesz, descsz) = (word(at)?, word(at + 4)?);
        let name_end = at.checked_add(12)?.checked_add(namesz)?;
        let desc = at + 12 + namesz.next_multiple_of(4);
        let desc_end = desc.checked_add(descsz)?;
        if desc_end > notes.len() || name_end > notes.len() {
            return None;
        }
        if notes[at + 12..name_end].starts_with(b"VMCOREINFO") {
            return Some(VmcoreInfo::parse(&String::from_utf8_lossy(&notes[desc..desc_end])));
        }
        at = desc + descsz.next_multiple_of(4);
    }
    None
}

impl KernelMemory for Vmcore {
    fn name(&self) -> &'static str {
        "vmcore"
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.wrapping_add(done as u64);
            let len = ((PAGE - at % PAGE) as usize).min(buf.len() - done);
            let phys = self.translate(at)?;
            self.read_phys(phys, &mut buf[done..done + len])?;
            done += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_searched_not_assumed() {
        let mut notes = Vec::new();
        let mut note = |name: &[u8], desc: &[u8]| {
            notes.extend((name.len() as u32).to_le_bytes());
            notes.extend((desc.len() as u32).to_le_bytes());
            notes.extend(0u32.to_le_bytes());
            notes.extend(name);
            notes.resize(notes.len().next_multiple_of(4), 0);
            notes.extend(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        };
        note(b"CORE\0", &[1, 2, 3]);
        note(b"VMCOREINFO\0", b"SYMBOL(init_top_pgt)=ffffffff82a0a000\nNUMBER(phys_base)=0\n");
        let info = find_vmcoreinfo(&notes).unwrap();
        assert_eq!(info.symbol("init_top_pgt"), Some(0xffff_ffff_82a0_a000));
        // Truncated or garbage notes: None, never a panic.
        assert!(find_vmcoreinfo(&notes[..20]).is_none());
        assert!(find_vmcoreinfo(&[0xff; 64]).is_none());
    }

    #[test]
    fn a_non_dump_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("sysak-vmcore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-dump");
        std::fs::write(&path, b"hello").unwrap();
        let err = Vmcore::open(&path).err().unwrap();
        assert!(err.contains("not-a-dump") && err.contains("not a 64-bit ELF dump"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Kernel memory from an ELF core whose PT_LOAD segments carry kernel
//! virtual addresses: /proc/kcore (most distro kernels: CONFIG_PROC_KCORE),
//! or a kdump-style vmcore that records virtual addresses.
//!
//! The headers are parsed with the `object` crate through a read cache, so
//! a 128 TiB /proc/kcore is never read as a whole; data comes with pread.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use object::elf::{FileHeader64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::read::ReadCache;
use object::Endianness;

use super::{KernelMemory, ReadError};

/// One PT_LOAD: `[vaddr, vaddr + size)` lives at `offset` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Kernel virtual start.
    pub vaddr: u64,
    /// Physical start (0 where the core does not say).
    pub paddr: u64,
    /// File offset of the first byte.
    pub offset: u64,
    /// Bytes present in the file.
    pub size: u64,
}

/// An open ELF core.
pub struct ElfCore {
    file: File,
    path: PathBuf,
    /// PT_LOAD segments sorted by virtual address.
    pub segments: Vec<Segment>,
}

impl ElfCore {
    /// Open an ELF core file and index its PT_LOAD segments.
    pub fn open(path: &Path) -> Result<ElfCore, String> {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cache = ReadCache::new(file.try_clone().map_err(|e| e.to_string())?);
        let header = FileHeader64::<Endianness>::parse(&cache).map_err(|e| format!("{}: not a 64-bit ELF core: {e}", path.display()))?;
        let endian = header.endian().map_err(|e| format!("{}: {e}", path.display()))?;
        if header.e_type(endian) != object::elf::ET_CORE {
            return Err(format!("{}: an ELF file but not a core dump", path.display()));
        }
        let phdrs =
            header.program_headers(endian, &cache).map_err(|e| format!("{}: truncated or corrupt program headers: {e}", path.display()))?;
        let mut segments: Vec<Segment> = phdrs
            .iter()
            .filter(|p| p.p_type(endian) == PT_LOAD && p.p_filesz(endian) > 0)
            .map(|p| Segment { vaddr: p.p_vaddr(endian), paddr: p.p_paddr(endian), offset: p.p_offset(endian), size: p.p_filesz(endian) })
            .collect();
        segments.sort_by_key(|s| s.vaddr);
        if segments.is_empty() {
            return Err(format!("{}: an ELF core without memory segments", path.display()));
        }
        Ok(ElfCore { file, path: path.to_path_buf(), segments })
    }

    /// /proc/kcore, with the reasons it is commonly missing spelled out.
    pub fn open_kcore(path: &Path) -> Result<ElfCore, String> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("{} does not exist (kernel built without CONFIG_PROC_KCORE)", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(format!("{}: permission denied (needs root, and no lockdown)", path.display()))
            }
            _ => ElfCore::open(path),
        }
    }

    fn segment(&self, addr: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.vaddr <= addr).checked_sub(1)?;
        let s = &self.segments[i];
        (addr - s.vaddr < s.size).then_some(s)
    }
}

/// Lowest address of the x86_64 vmalloc area with 4-level paging: direct
/// map addresses lie below it (and 5-level ones far below).
const VMALLOC_START_4LEVEL: u64 = 0xffff_c900_0000_0000;

impl KernelMemory for ElfCore {
    fn name(&self) -> &'static str {
        "kcore"
    }

    /// /proc/kcore's RAM segments (KCORE_RAM) carry both the direct-map
    /// virtual address and the physical one: any of them is in the direct
    /// map.
    fn direct_map_hint(&self) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| s.paddr != 0 && s.vaddr < VMALLOC_START_4LEVEL && s.vaddr.wrapping_sub(s.paddr) % (1 << 30) == 0)
            .map(|s| s.vaddr)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.wrapping_add(done as u64);
            let seg = self.segment(at).ok_or(ReadError::Unmapped(at))?;
            let within = at - seg.vaddr;
            let len = ((seg.size - within) as usize).min(buf.len() - done);
            self.file.read_exact_at(&mut buf[done..done + len], seg.offset + within).map_err(|e| {
                match e.raw_os_error() {
                    // kcore returns EFAULT/EIO for pages that vanished.
                    Some(libc::EFAULT | libc::EIO) => ReadError::Unmapped(at),
                    _ if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        ReadError::Backend(format!("{}: truncated at offset {}", self.path.display(), seg.offset + within))
                    }
                    _ => ReadError::Backend(format!("{}: {e}", self.path.display())),
                }
            })?;
            done += len;
        }
        Ok(())
    }
}

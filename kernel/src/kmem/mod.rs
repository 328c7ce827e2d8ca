//! Reading kernel memory: the [`KernelMemory`] trait and its backends.
//!
//! - [`bpf::BpfReader`]: a 12-instruction BPF program calling
//!   `bpf_probe_read_kernel`, run on demand with BPF_PROG_TEST_RUN; the data
//!   comes back through an mmap()ed array map, so one read is one syscall.
//!   Works without /proc/kcore (this project's CI kernel has none).
//! - [`elfcore::ElfCore`]: /proc/kcore, an ELF core whose PT_LOAD segments
//!   carry kernel virtual addresses.
//! - [`vmcore::Vmcore`]: an ELF dump of physical memory (QEMU, kdump), read
//!   offline by walking the kernel's page tables.
//!
//! Reads fail per page: a hole or an unmapped page fails alone, and the
//! caller decides what a missing page means.

pub mod bpf;
pub mod elfcore;
pub mod vmcore;

use std::fmt;

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Nothing is mapped there (a hole, a freed vmalloc area, a bad pointer).
    Unmapped(u64),
    /// The address is not a kernel address.
    NotKernel(u64),
    /// The backend itself failed (syscall, file I/O).
    Backend(String),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Unmapped(a) => write!(f, "nothing mapped at {a:#x}"),
            ReadError::NotKernel(a) => write!(f, "{a:#x} is not a kernel address"),
            ReadError::Backend(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ReadError {}

/// Kernel page size for per-page failure accounting (x86_64, arm64 4K).
pub const PAGE: u64 = 4096;

/// Read access to kernel virtual memory.
pub trait KernelMemory {
    /// Backend name for reports: "bpf", "kcore".
    fn name(&self) -> &'static str;

    /// Fill `buf` from kernel address `addr`; all or nothing.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError>;

    /// Fill `buf` from `addr` page by page: pages that cannot be read are
    /// zero-filled and reported in the returned list of failed page
    /// addresses. One bulk read first; per-page reads only when it fails.
    fn read_pages(&self, addr: u64, buf: &mut [u8]) -> Result<Vec<u64>, ReadError> {
        match self.read(addr, buf) {
            Ok(()) => return Ok(Vec::new()),
            Err(ReadError::Backend(why)) => return Err(ReadError::Backend(why)),
            Err(_) => {}
        }
        let mut failed = Vec::new();
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr + done as u64;
            let len = ((PAGE - at % PAGE) as usize).min(buf.len() - done);
            let chunk = &mut buf[done..done + len];
            match self.read(at, chunk) {
                Ok(()) => {}
                Err(ReadError::Backend(why)) => return Err(ReadError::Backend(why)),
                Err(_) => {
                    chunk.fill(0);
                    failed.push(at & !(PAGE - 1));
                }
            }
            done += len;
        }
        Ok(failed)
    }

    /// Any address in the direct map the backend knows without symbols (the
    /// BPF reader: the current task_struct), to find the direct map from.
    fn direct_map_hint(&self) -> Option<u64> {
        None
    }

    /// A little-endian u64 at `addr`.
    fn read_u64(&self, addr: u64) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A NUL-terminated string of at most `max` bytes at `addr`.
    fn read_cstr(&self, addr: u64, max: usize) -> Result<String, ReadError> {
        let mut b = vec![0u8; max];
        // A string near the end of a page may not have `max` readable bytes.
        let failed = self.read_pages(addr, &mut b)?;
        if failed.first() == Some(&(addr & !(PAGE - 1))) {
            return Err(ReadError::Unmapped(addr));
        }
        let end = b.iter().position(|c| *c == 0).unwrap_or(max);
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// Which backend `--backend` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// kcore, then bpf.
    Auto,
    /// /proc/kcore only.
    Kcore,
    /// The BPF reader only.
    Bpf,
    /// Do not read kernel memory.
    None,
}

/// Open the backend `choice` names. On failure the error says why each
/// candidate could not be used (for the report's "unavailable" line).
pub fn open(choice: BackendChoice, proc_root: &std::path::Path) -> Result<Box<dyn KernelMemory>, String> {
    let kcore = || elfcore::ElfCore::open_kcore(&proc_root.join("kcore")).map(|k| Box::new(k) as Box<dyn KernelMemory>);
    let bpf = || bpf::BpfReader::open().map(|b| Box::new(b) as Box<dyn KernelMemory>).map_err(|e| e.to_string());
    match choice {
        BackendChoice::None => Err("reading kernel memory was turned off with --backend none".into()),
        BackendChoice::Kcore => kcore(),
        BackendChoice::Bpf => bpf(),
        BackendChoice::Auto => kcore().or_else(|kerr| bpf().map_err(|berr| format!("kcore: {kerr}; bpf: {berr}"))),
    }
}

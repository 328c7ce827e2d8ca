//! `/proc/iomem` (through the procfs crate) and `/sys/kernel/vmcoreinfo`:
//! the physical facts used to find the direct map. Addresses in iomem read
//! as 0 for non-root users.

use super::{read_to_string, Error, ProcFs};
use procfs::FromBufRead;

/// Physical memory facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysicalLayout {
    /// Start of "Kernel code" (the physical address of `_text`).
    pub kernel_code: u64,
    /// One past the last byte of "System RAM".
    pub ram_end: u64,
}

impl ProcFs {
    /// Read `/proc/iomem`.
    pub fn read_physical_layout(&self) -> Result<PhysicalLayout, Error> {
        let path = self.proc_path("iomem");
        let text = read_to_string(&path)?;
        let map = procfs::Iomem::from_buf_read(text.as_bytes()).map_err(|e| Error::parse(&path, 0, e.to_string()))?;
        let kernel_code = map.0.iter().find(|(_, m)| m.name == "Kernel code").map(|(_, m)| m.address.0);
        let ram_end = map.0.iter().filter(|(indent, m)| *indent == 0 && m.name == "System RAM").map(|(_, m)| m.address.1 + 1).max();
        match (kernel_code, ram_end) {
            (Some(kc), Some(end)) if kc != 0 => Ok(PhysicalLayout { kernel_code: kc, ram_end: end }),
            (Some(0), _) => Err(Error::parse(&path, 0, "addresses read as 0 (run as root)")),
            _ => Err(Error::parse(&path, 0, "no \"Kernel code\" or \"System RAM\" range")),
        }
    }

    /// `/sys/kernel/vmcoreinfo`: physical address and size of the
    /// VMCOREINFO ELF note (CONFIG_CRASH_CORE; 4.x+).
    pub fn read_vmcoreinfo_location(&self) -> Result<(u64, usize), Error> {
        let path = self.sys_path("kernel/vmcoreinfo");
        let text = read_to_string(&path)?;
        let mut words = text.split_whitespace();
        let hex = |w: Option<&str>| w.and_then(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok());
        match (hex(words.next()), hex(words.next())) {
            (Some(addr), Some(size)) if size > 0 && size < (1 << 20) => Ok((addr, size as usize)),
            _ => Err(Error::parse(&path, 1, format!("expected \"<hex address> <hex size>\", found {:?}", text.trim()))),
        }
    }
}

//! `/proc/kpageflags`: one u64 of KPF_* bits per page frame (root only;
//! CONFIG_PROC_PAGE_MONITOR). Read in large multiples of 8 bytes.

use std::io::Read;

use super::{Error, ProcFs};

/// KPF_SLAB (include/uapi/linux/kernel-page-flags.h).
const KPF_SLAB: u64 = 1 << 7;
/// KPF_COMPOUND_TAIL.
const KPF_COMPOUND_TAIL: u64 = 1 << 16;

impl ProcFs {
    /// Page frame numbers of slab pages that are not compound tails: each
    /// is the first page of a slab. The list is a snapshot; pages change
    /// under a live kernel, so callers validate each struct slab they read.
    pub fn read_slab_pfns(&self) -> Result<Vec<u64>, Error> {
        self.read_slab_pfns_up_to(usize::MAX)
    }

    /// The first `limit` of [`ProcFs::read_slab_pfns`]: enough to find a
    /// cache without reading the whole file (48 MiB for 24 GiB of RAM).
    pub fn read_slab_pfns_up_to(&self, limit: usize) -> Result<Vec<u64>, Error> {
        let path = self.proc_path("kpageflags");
        let mut file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut pfns = Vec::new();
        let mut pfn = 0u64;
        let mut carry = 0usize;
        while pfns.len() < limit {
            let n = file.read(&mut buf[carry..]).map_err(|e| Error::io(&path, e))?;
            if n == 0 {
                break;
            }
            let filled = carry + n;
            let whole = filled / 8 * 8;
            for word in buf[..whole].chunks_exact(8) {
                let flags = u64::from_le_bytes(word.try_into().unwrap());
                if flags & KPF_SLAB != 0 && flags & KPF_COMPOUND_TAIL == 0 {
                    pfns.push(pfn);
                }
                pfn += 1;
            }
            buf.copy_within(whole..filled, 0);
            carry = filled - whole;
        }
        Ok(pfns)
    }
}

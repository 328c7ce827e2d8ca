//! `/proc/zoneinfo`, reduced to the free pages held on per-CPU lists.
//!
//! Pages on a CPU's pageset (`count:` under `pagesets`, every zone, every
//! CPU) are free, yet `MemFree` does not count them: the page allocator
//! takes them out of the zone's free count when it moves them to the list.
//! Up to `high:` pages a CPU and zone sit there (tens of MiB on a big host),
//! so an "unexplained pages" figure that does not subtract them moves by
//! that much without any leak. Layout unchanged from 2.6 to 6.18:
//!
//! ```text
//!   pagesets
//!     cpu: 0
//!               count: 26
//!               high:  378
//! ```

use super::{read_to_string, Error, ProcFs};

impl ProcFs {
    /// Free pages on per-CPU lists, in pages (`/proc/zoneinfo`).
    pub fn read_per_cpu_free_pages(&self) -> Result<u64, Error> {
        Ok(parse_per_cpu_free_pages(&read_to_string(&self.proc_path("zoneinfo"))?))
    }
}

/// Σ `count:` of every pageset in zoneinfo text; lines it does not know
/// are skipped.
pub fn parse_per_cpu_free_pages(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("count:"))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_cpu_of_every_zone() {
        let text = "Node 0, zone   Normal\n  pages free     3\n  pagesets\n    cpu: 0\n              count: 26\n              high:  378\n    cpu: 1\n              count:    4\n              high:  378\nNode 0, zone  Movable\n  pagesets\n    cpu: 0\n              count: 10\n";
        assert_eq!(parse_per_cpu_free_pages(text), 40);
        assert_eq!(parse_per_cpu_free_pages("count: lots\n"), 0);
    }
}

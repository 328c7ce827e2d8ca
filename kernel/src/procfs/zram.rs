//! zram devices: compressed RAM whose memory no /proc/meminfo line shows.
//!
//! zsmalloc takes its pages straight from the page allocator, unmovable
//! and off the LRU, so they land in the "alloc pages" residual; a host that
//! swaps to zram would look like a page leak. `/sys/block/zram<N>/mm_stat`
//! (4.1+, Linux commit 8f7d282c717a ("zram: remove obsolete sysfs attrs"
//! era)) gives, third field, `mem_used_total`: bytes of memory the device
//! uses, compression overhead included.

use super::{read_to_string, Error, ProcFs};

impl ProcFs {
    /// Bytes used by every zram device (0 without any).
    pub fn read_zram_used_bytes(&self) -> Result<u64, Error> {
        let Ok(entries) = std::fs::read_dir(self.sys_path("block")) else { return Ok(0) };
        let mut total = 0u64;
        for entry in entries.filter_map(|e| e.ok()) {
            if !entry.file_name().to_string_lossy().starts_with("zram") {
                continue;
            }
            let path = entry.path().join("mm_stat");
            if !path.exists() {
                continue;
            }
            total = total.saturating_add(parse_mm_stat(&read_to_string(&path)?, &path)?);
        }
        Ok(total)
    }
}

/// `mem_used_total` from an `mm_stat` line.
pub fn parse_mm_stat(text: &str, path: &std::path::Path) -> Result<u64, Error> {
    text.split_whitespace()
        .nth(2)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| Error::parse(path, 1, "expected at least three numbers (orig_data_size compr_data_size mem_used_total ...)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn third_field_is_memory_used() {
        let line = "4294967296 1073741824 1140850688        0 1140850688      120        0    12345        0\n";
        assert_eq!(parse_mm_stat(line, Path::new("mm_stat")).unwrap(), 1140850688);
        assert!(parse_mm_stat("1 2\n", Path::new("mm_stat")).is_err());
    }

    #[test]
    fn devices_are_summed_from_sysfs() {
        let dir = std::env::temp_dir().join(format!("sysak-zram-{}", std::process::id()));
        for (dev, used) in [("zram0", 4096), ("zram1", 8192)] {
            std::fs::create_dir_all(dir.join("block").join(dev)).unwrap();
            std::fs::write(dir.join("block").join(dev).join("mm_stat"), format!("100 50 {used} 0 {used} 0 0 0 0\n")).unwrap();
        }
        std::fs::create_dir_all(dir.join("block/vda")).unwrap();
        assert_eq!(ProcFs::new("/nonexistent", &dir).read_zram_used_bytes().unwrap(), 12288);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

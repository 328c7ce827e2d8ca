//! `/sys/kernel/slab/<cache>/`: SLUB's per-cache attributes.
//!
//! Present with CONFIG_SLUB and CONFIG_SYSFS (every SLUB kernel, which since
//! 6.8 means every kernel: SLAB was removed in Linux commit 16a1d968358a
//! ("mm/slab: remove mm/slab.c and slab_def.h") (v6.8)). Merged caches appear
//! as symlinks to a shared `:t-0000064`-style directory, so their attributes
//! are the merged cache's.

use super::ProcFs;

impl ProcFs {
    /// `/sys/kernel/slab/<cache>/reclaim_account`: whether the cache was
    /// created with SLAB_RECLAIM_ACCOUNT, i.e. its memory counts as
    /// SReclaimable in /proc/meminfo. `None` where the attribute does not
    /// exist (SLAB kernels, caches without a sysfs entry).
    pub fn slab_reclaim_account(&self, cache: &str) -> Option<bool> {
        if cache.contains('/') || cache.starts_with('.') {
            return None;
        }
        let path = self.sys_path("kernel/slab").join(cache).join("reclaim_account");
        let text = std::fs::read_to_string(path).ok()?;
        match text.trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flag_and_rejects_path_tricks() {
        let dir = std::env::temp_dir().join(format!("sysak-sys-slab-{}", std::process::id()));
        for (cache, value) in [("dentry", "1\n"), ("kmalloc-64", "0\n")] {
            let d = dir.join("kernel/slab").join(cache);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("reclaim_account"), value).unwrap();
        }
        let fs = ProcFs::new("/nonexistent", &dir);
        assert_eq!(fs.slab_reclaim_account("dentry"), Some(true));
        assert_eq!(fs.slab_reclaim_account("kmalloc-64"), Some(false));
        assert_eq!(fs.slab_reclaim_account("missing"), None);
        assert_eq!(fs.slab_reclaim_account("../slab/dentry"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

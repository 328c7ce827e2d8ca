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
        let path = self.slab_dir(cache)?.join("reclaim_account");
        let text = std::fs::read_to_string(path).ok()?;
        match text.trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        }
    }

    /// A numeric attribute of `/sys/kernel/slab/<cache>/`, such as
    /// `cpu_partial` (objects each CPU may keep on partial slabs of its
    /// own, counted as in use by /proc/slabinfo) or `sheaf_capacity`
    /// (6.18+: objects in each per-CPU sheaf). `None` without it; a value
    /// followed by per-CPU detail (`objects`: `1200 N0=1200`) gives its
    /// first number.
    pub fn slab_attribute_u64(&self, cache: &str, attribute: &str) -> Option<u64> {
        let dir = self.slab_dir(cache)?;
        std::fs::read_to_string(dir.join(attribute)).ok()?.split_whitespace().next()?.parse().ok()
    }

    /// Objects of `cache` held by its CPUs right now, as SLUB reports them:
    /// the CPU slabs (`cpu_slabs`, slabs, times `objs_per_slab`) and the
    /// per-CPU partial slabs (`slabs_cpu_partial`, `objects(slabs)` then
    /// per-CPU detail; an estimate of slabs × objects per slab since 5.16).
    /// /proc/slabinfo counts their free objects as active, so the active
    /// count moves by up to this many without any allocation being made.
    /// `None` without the attributes.
    pub fn slab_per_cpu_objects(&self, cache: &str) -> Option<u64> {
        let cpu_slabs = self.slab_attribute_u64(cache, "cpu_slabs")?;
        let per_slab = self.slab_attribute_u64(cache, "objs_per_slab")?;
        let partial = std::fs::read_to_string(self.slab_dir(cache)?.join("slabs_cpu_partial")).ok().and_then(|text| {
            let first = text.split_whitespace().next()?;
            first.split('(').next()?.parse::<u64>().ok()
        });
        Some(cpu_slabs * per_slab + partial.unwrap_or(0))
    }

    /// The other names of `cache`: SLUB merges compatible caches into one
    /// and keeps each name as a symlink in /sys/kernel/slab to a
    /// `:<flags>-<size>` directory; names whose link resolves to the same
    /// directory share one cache (and one line of /proc/slabinfo). Sorted;
    /// empty for an unmerged cache or without sysfs.
    pub fn slab_aliases(&self, cache: &str) -> Vec<String> {
        let Some(target) = self.slab_dir(cache).and_then(|d| std::fs::canonicalize(d).ok()) else { return Vec::new() };
        let Ok(entries) = std::fs::read_dir(self.sys_path("kernel/slab")) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
            .filter(|e| std::fs::canonicalize(e.path()).is_ok_and(|p| p == target))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != cache)
            .collect();
        names.sort();
        names
    }

    fn slab_dir(&self, cache: &str) -> Option<std::path::PathBuf> {
        if cache.contains('/') || cache.starts_with('.') || cache.is_empty() {
            return None;
        }
        Some(self.sys_path("kernel/slab").join(cache))
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
        // Merged caches: names are links to one directory.
        std::os::unix::fs::symlink(dir.join("kernel/slab/kmalloc-64"), dir.join("kernel/slab/ext4_io_end")).unwrap();
        std::os::unix::fs::symlink(dir.join("kernel/slab/kmalloc-64"), dir.join("kernel/slab/bio_crypt")).unwrap();
        assert_eq!(fs.slab_aliases("ext4_io_end"), ["bio_crypt"]);
        assert_eq!(fs.slab_aliases("dentry"), Vec::<String>::new());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

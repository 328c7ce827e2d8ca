//! The typed slabtop report: procps' numbers, plus what procps lacks.
//!
//! Every figure is computed the way procps-ng's libproc2 (`slabinfo.c`)
//! computes it, so `sysak slabtop -o` and `slabtop -o` agree on the same
//! /proc/slabinfo; the procps quirks kept on purpose are noted where they
//! occur. Sums are 64-bit where procps' are 32-bit, so on a host with more
//! than 4 G objects procps wraps and we do not.

use std::collections::HashMap;

use serde::Serialize;
use sysak_kernel::procfs::{page_size, ProcFs, SlabCacheStats, SlabInfo};

/// procps' sort keys (`-s` and the live keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SortKey {
    /// `a`: active objects.
    ActiveObjs,
    /// `b`: objects per slab.
    ObjsPerSlab,
    /// `c`: cache size.
    CacheSize,
    /// `l`: number of slabs.
    Slabs,
    /// `v`: active slabs (not displayed).
    ActiveSlabs,
    /// `n`: name, ascending.
    Name,
    /// `o`: number of objects (the default).
    Objs,
    /// `p`: pages per slab (not displayed).
    PagesPerSlab,
    /// `s`: object size.
    ObjSize,
    /// `u`: utilization.
    Use,
}

/// Every key with its letter and meaning, in procps' order.
pub const SORT_KEYS: [(char, SortKey, &str); 10] = [
    ('a', SortKey::ActiveObjs, "number of active objects"),
    ('b', SortKey::ObjsPerSlab, "objects per slab"),
    ('c', SortKey::CacheSize, "cache size"),
    ('l', SortKey::Slabs, "number of slabs"),
    ('v', SortKey::ActiveSlabs, "(non display) number of active slabs"),
    ('n', SortKey::Name, "name"),
    ('o', SortKey::Objs, "number of objects (the default)"),
    ('p', SortKey::PagesPerSlab, "(non display) pages per slab"),
    ('s', SortKey::ObjSize, "object size"),
    ('u', SortKey::Use, "cache utilization"),
];

impl SortKey {
    /// The key for a letter, case-insensitive as in procps.
    pub fn from_letter(letter: char) -> Option<SortKey> {
        let letter = letter.to_ascii_lowercase();
        SORT_KEYS.iter().find(|(l, _, _)| *l == letter).map(|(_, k, _)| *k)
    }

    /// The key's letter.
    pub fn letter(self) -> char {
        SORT_KEYS.iter().find(|(_, k, _)| *k == self).map(|(l, _, _)| *l).unwrap_or('o')
    }
}

/// The summary block above the table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Σ active objects.
    pub active_objs: u64,
    /// Σ objects.
    pub objs: u64,
    /// Σ active slabs.
    pub active_slabs: u64,
    /// Σ slabs.
    pub slabs: u64,
    /// Caches holding at least one object.
    pub active_caches: u64,
    /// All caches.
    pub caches: u64,
    /// Σ active objects × object size.
    pub active_size_bytes: u64,
    /// Σ objects × object size.
    pub total_size_bytes: u64,
    /// Smallest object size over all caches, empty ones included (procps).
    pub min_obj_size_bytes: u64,
    /// total_size_bytes / objs, truncated (procps).
    pub avg_obj_size_bytes: u64,
    /// Largest object size over all caches.
    pub max_obj_size_bytes: u64,
}

/// One cache row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheRow {
    /// Cache name.
    pub name: String,
    /// OBJS.
    pub objs: u64,
    /// ACTIVE.
    pub active_objs: u64,
    /// USE: `(unsigned)(100 * ((float)active / objs))`, 0 for an empty cache.
    pub use_percent: u32,
    /// OBJ SIZE.
    pub obj_size_bytes: u64,
    /// SLABS.
    pub slabs: u64,
    /// Active slabs (not displayed).
    pub active_slabs: u64,
    /// OBJ/SLAB.
    pub objs_per_slab: u64,
    /// Pages per slab (not displayed).
    pub pages_per_slab: u64,
    /// CACHE SIZE: slabs × pages per slab × page size.
    pub cache_size_bytes: u64,
    /// Not SLAB_RECLAIM_ACCOUNT: its memory is SUnreclaim in /proc/meminfo
    /// (`null` where /sys/kernel/slab does not say).
    pub unreclaimable: Option<bool>,
    /// Change in OBJS since the previous refresh (`null` on the first).
    pub growth_objs: Option<i64>,
}

/// What `sysak slabtop` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlabtopReport {
    /// Sort key letter.
    pub sort: char,
    /// Seconds between the previous sample and this one, when growth is shown.
    pub interval_s: Option<u64>,
    /// The summary block.
    pub summary: Summary,
    /// Cache rows, sorted.
    pub caches: Vec<CacheRow>,
}

/// procps' USE column: computed in single precision, then truncated.
fn use_percent(active: u64, total: u64) -> u32 {
    if total == 0 {
        0
    } else {
        (100.0f32 * (active as f32 / total as f32)) as u32
    }
}

/// procps' summary over all caches.
pub fn summarize(caches: &[SlabCacheStats]) -> Summary {
    let mut s = Summary { min_obj_size_bytes: u64::MAX, ..Summary::default() };
    for c in caches {
        s.min_obj_size_bytes = s.min_obj_size_bytes.min(c.objsize_bytes);
        s.max_obj_size_bytes = s.max_obj_size_bytes.max(c.objsize_bytes);
        if c.num_objs > 0 {
            s.active_caches += 1;
        }
        s.objs += c.num_objs;
        s.active_objs += c.active_objs;
        s.total_size_bytes += c.num_objs * c.objsize_bytes;
        s.active_size_bytes += c.active_objs * c.objsize_bytes;
        s.slabs += c.num_slabs;
        s.active_slabs += c.active_slabs;
        s.caches += 1;
    }
    if caches.is_empty() {
        s.min_obj_size_bytes = 0;
    }
    s.avg_obj_size_bytes = s.total_size_bytes.checked_div(s.objs).unwrap_or(0);
    s
}

/// Build the report from a sample and, for growth, the previous one.
pub fn build(info: &SlabInfo, previous: Option<(&SlabInfo, u64)>, sort: SortKey, procfs: &ProcFs) -> SlabtopReport {
    let page = page_size();
    let before: Option<HashMap<&str, u64>> = previous.map(|(prev, _)| prev.caches.iter().map(|c| (c.name.as_str(), c.num_objs)).collect());
    let mut caches: Vec<CacheRow> = info
        .caches
        .iter()
        .map(|c| CacheRow {
            name: c.name.clone(),
            objs: c.num_objs,
            active_objs: c.active_objs,
            use_percent: use_percent(c.active_objs, c.num_objs),
            obj_size_bytes: c.objsize_bytes,
            slabs: c.num_slabs,
            active_slabs: c.active_slabs,
            objs_per_slab: c.objs_per_slab,
            pages_per_slab: c.pages_per_slab,
            cache_size_bytes: c.cache_size_bytes(page),
            unreclaimable: procfs.slab_reclaim_account(&c.name).map(|reclaim| !reclaim),
            growth_objs: before.as_ref().map(|b| c.num_objs as i64 - b.get(c.name.as_str()).copied().unwrap_or(0) as i64),
        })
        .collect();
    sort_rows(&mut caches, sort);
    SlabtopReport { sort: sort.letter(), interval_s: previous.map(|(_, secs)| secs), summary: summarize(&info.caches), caches }
}

/// Sort as procps does: numbers descending, names ascending. Ties keep file
/// order (procps' qsort leaves them in an unspecified order).
pub fn sort_rows(rows: &mut [CacheRow], key: SortKey) {
    let number = |r: &CacheRow| -> u64 {
        match key {
            SortKey::ActiveObjs => r.active_objs,
            SortKey::ObjsPerSlab => r.objs_per_slab,
            SortKey::CacheSize => r.cache_size_bytes,
            SortKey::Slabs => r.slabs,
            SortKey::ActiveSlabs => r.active_slabs,
            SortKey::Objs => r.objs,
            SortKey::PagesPerSlab => r.pages_per_slab,
            SortKey::ObjSize => r.obj_size_bytes,
            SortKey::Use => r.use_percent as u64,
            SortKey::Name => 0,
        }
    };
    if key == SortKey::Name {
        rows.sort_by(|a, b| a.name.cmp(&b.name));
    } else {
        rows.sort_by_key(|r| std::cmp::Reverse(number(r)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SAMPLE: &str = "slabinfo - version: 2.1\n# name ...\n\
        a 10 20 64 64 1 : tunables 0 0 0 : slabdata 1 1 0\n\
        b 3 3 4096 8 8 : tunables 0 0 0 : slabdata 1 1 0\n\
        c 0 0 8 512 1 : tunables 0 0 0 : slabdata 0 0 0\n";

    fn sample() -> SlabInfo {
        SlabInfo::parse(SAMPLE, Path::new("sample")).unwrap()
    }

    #[test]
    fn summary_matches_procps_rules() {
        let s = summarize(&sample().caches);
        assert_eq!((s.objs, s.active_objs, s.caches, s.active_caches), (23, 13, 3, 2));
        assert_eq!(s.total_size_bytes, 20 * 64 + 3 * 4096);
        assert_eq!(s.active_size_bytes, 10 * 64 + 3 * 4096);
        // Empty caches count for the minimum, as in procps.
        assert_eq!((s.min_obj_size_bytes, s.max_obj_size_bytes), (8, 4096));
        assert_eq!(s.avg_obj_size_bytes, (20 * 64 + 3 * 4096) / 23);
    }

    #[test]
    fn use_percent_truncates_like_procps() {
        assert_eq!(use_percent(10, 20), 50);
        assert_eq!(use_percent(2, 3), 66);
        assert_eq!(use_percent(0, 0), 0);
        assert_eq!(use_percent(7, 7), 100);
    }

    #[test]
    fn growth_is_against_previous_sample() {
        let prev = sample();
        let mut now = sample();
        now.caches[0].num_objs = 84;
        now.caches.push(SlabCacheStats { name: "new".into(), num_objs: 5, ..now.caches[2].clone() });
        let fs = ProcFs::new("/nonexistent", "/nonexistent");
        let r = build(&now, Some((&prev, 3)), SortKey::Objs, &fs);
        let growth: Vec<_> = r.caches.iter().map(|c| (c.name.as_str(), c.growth_objs)).collect();
        assert_eq!(growth, [("a", Some(64)), ("new", Some(5)), ("b", Some(0)), ("c", Some(0))]);
        assert_eq!(r.interval_s, Some(3));
        assert!(build(&now, None, SortKey::Objs, &fs).caches.iter().all(|c| c.growth_objs.is_none()));
    }

    #[test]
    fn sort_keys_follow_procps() {
        let fs = ProcFs::new("/nonexistent", "/nonexistent");
        let names = |k| -> Vec<String> { build(&sample(), None, k, &fs).caches.into_iter().map(|c| c.name).collect() };
        assert_eq!(names(SortKey::Objs), ["a", "b", "c"]);
        assert_eq!(names(SortKey::ObjSize), ["b", "a", "c"]);
        assert_eq!(names(SortKey::Name), ["a", "b", "c"]);
        assert_eq!(names(SortKey::Use), ["b", "a", "c"]);
        assert_eq!(names(SortKey::PagesPerSlab), ["b", "a", "c"]);
        assert_eq!(SortKey::from_letter('U'), Some(SortKey::Use));
        assert_eq!(SortKey::from_letter('x'), None);
    }
}

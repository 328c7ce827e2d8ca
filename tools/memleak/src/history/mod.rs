//! Recorded history: slow leaks over long uptimes show only
//! across samples taken hours or days apart. `--record` appends one
//! sample ([`file`]); `--check --history` fits each series of this boot
//! ([`growth`]).

pub mod file;
pub mod growth;
pub mod metrics;
pub mod plot;

use std::path::Path;

use sysak_kernel::procfs::ProcFs;

use crate::check::usage::Usage;
pub use file::{Sample, DEFAULT_PATH};
pub use growth::HistoryReport;

/// Caches smaller than this are left out of a sample: it keeps a sample
/// to a few KiB. A leaking cache passes it within hours at the seed's
/// 2.5 MB a day, and from then on its series is recorded.
const MIN_CACHE_BYTES: u64 = 256 << 10;

/// This boot's id.
pub fn boot_id(procfs: &ProcFs) -> anyhow::Result<String> {
    let path = procfs.proc_path("sys/kernel/random/boot_id");
    Ok(std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.trim().to_string())
}

fn uptime_s(procfs: &ProcFs) -> anyhow::Result<f64> {
    let path = procfs.proc_path("uptime");
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    text.split_whitespace().next().and_then(|w| w.parse().ok()).ok_or_else(|| anyhow::anyhow!("{}: no uptime in {text:?}", path.display()))
}

/// A sample of this host now.
pub fn sample(procfs: &ProcFs, usage: &Usage) -> anyhow::Result<Sample> {
    let page_size = sysak_kernel::procfs::page_size();
    let mut categories: std::collections::BTreeMap<String, u64> =
        [("slab_unreclaimable", usage.slab_unreclaimable), ("vmalloc", usage.vmalloc), ("alloc_pages", usage.alloc_pages)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    for e in &usage.alloc_pages_explained {
        categories.insert(e.line.to_string(), e.bytes);
    }
    let caches = procfs
        .read_slabinfo()?
        .caches
        .into_iter()
        .map(|c| (c.cache_size_bytes(page_size), c))
        .filter(|(bytes, _)| *bytes >= MIN_CACHE_BYTES)
        .map(|(bytes, c)| (c.name, [bytes, c.active_objs]))
        .collect();
    Ok(Sample {
        time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        boot_id: boot_id(procfs)?,
        uptime_s: uptime_s(procfs)?,
        categories,
        caches,
    })
}

/// Record a sample into `path`; returns the samples the file holds.
pub fn record(procfs: &ProcFs, path: &Path) -> anyhow::Result<usize> {
    let usage = Usage::measure(procfs)?;
    Ok(file::append(path, &sample(procfs, &usage)?)?)
}

/// Read and judge `path` for this boot.
pub fn analyse(procfs: &ProcFs, path: &Path, min_rate_per_s: f64) -> anyhow::Result<HistoryReport> {
    let history = file::load(path)?;
    Ok(growth::analyse(&history, &path.display().to_string(), &boot_id(procfs)?, min_rate_per_s))
}

//! The check as Prometheus metrics (`--format prometheus`, `--textfile`):
//! what a fleet alerts on (packaging/prometheus/sysak.rules.yml).

use sysak_cli::prometheus::{Exposition, MetricType, Sample};

use crate::census::Candidate;
use crate::check::{category_name, CheckReport, Kind};

/// Caches exported by bytes.
pub const TOP_CACHES: usize = 10;

/// The exposition of `report`; `caches` are the largest unreclaimable
/// caches; `now` the run's Unix time.
pub fn exposition(report: &CheckReport, caches: &[Candidate], now: u64) -> String {
    let mut e = Exposition::new();
    let judged = report.verdict.kind();
    e.gauge("sysak_memleak_leak", "1 when sysak memleak --check judges a kernel memory leak, else 0.", judged.is_some() as u8 as f64);
    let verdict: Vec<Sample> = Kind::ALL
        .into_iter()
        .map(|k| {
            let reason = if judged == Some(k) { report.reason.unwrap_or("") } else { "" };
            (vec![("kind", k.name().to_string()), ("reason", reason.to_string())], (judged == Some(k)) as u8 as f64)
        })
        .collect();
    e.family(
        "sysak_memleak_verdict",
        MetricType::Gauge,
        "1 for the kind of kernel memory judged leaking (reason: threshold, trend or history).",
        &verdict,
    );
    e.gauge("sysak_memleak_mem_total_bytes", "MemTotal.", report.mem_total as f64);
    let bytes: Vec<Sample> = [(Kind::Slab, report.slab_unreclaimable), (Kind::Vmalloc, report.vmalloc), (Kind::Page, report.alloc_pages)]
        .into_iter()
        .map(|(k, b)| (vec![("category", category_name(k).to_string())], b as f64))
        .collect();
    e.family("sysak_memleak_category_bytes", MetricType::Gauge, "Kernel memory by the check's categories.", &bytes);
    let cache_bytes: Vec<Sample> = caches.iter().take(TOP_CACHES).map(|c| (vec![("cache", c.name.clone())], c.bytes as f64)).collect();
    e.family("sysak_memleak_cache_bytes", MetricType::Gauge, "The largest unreclaimable slab caches.", &cache_bytes);
    if let Some(h) = &report.history {
        let per_second = |per_day: f64| per_day / 86_400.0;
        let rates: Vec<Sample> =
            h.categories.iter().map(|c| (vec![("category", c.name.clone())], per_second(c.slope_bytes_per_day))).collect();
        e.family(
            "sysak_memleak_category_growth_bytes_per_second",
            MetricType::Gauge,
            "Least-squares growth of each category over this boot's recorded samples.",
            &rates,
        );
        let growing: Vec<Sample> = h.categories.iter().map(|c| (vec![("category", c.name.clone())], c.growing as u8 as f64)).collect();
        e.family("sysak_memleak_category_growing", MetricType::Gauge, "1 when the category grows steadily at the minimum rate.", &growing);
        let caches: Vec<Sample> =
            h.growing_caches.iter().map(|c| (vec![("cache", c.name.clone())], per_second(c.slope_bytes_per_day))).collect();
        e.family(
            "sysak_memleak_cache_growth_bytes_per_second",
            MetricType::Gauge,
            "Slab caches growing steadily over this boot's recorded samples.",
            &caches,
        );
        e.gauge("sysak_memleak_history_samples", "Recorded samples of this boot.", h.samples as f64);
        e.gauge("sysak_memleak_history_span_seconds", "Seconds this boot's recorded samples span.", h.span_s);
    }
    e.gauge("sysak_memleak_last_run_timestamp_seconds", "When sysak memleak wrote these metrics.", now as f64);
    e.finish()
}

//! Growth over the recorded history: per category and per cache, a line
//! fitted through the current boot's samples (seconds since boot, bytes).
//! A series grows when its slope is at least the minimum rate, the fit is
//! good (R² ≥ 0.8: steady, not a step), it grew from first to last, and
//! it has enough samples to say so.

use serde::Serialize;

use super::file::{History, Sample};
use crate::fit::fit;

/// Samples a series needs before it can be called growing.
pub const MIN_SAMPLES: usize = 4;
/// Fit quality a steady growth has.
const MIN_R2: f64 = 0.8;
/// Growing caches reported, fastest first.
const TOP_CACHES: usize = 10;
/// Points of a sparkline.
const SPARK_POINTS: usize = 24;
const SECONDS_PER_DAY: f64 = 86_400.0;

/// The growth of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesGrowth {
    /// Category (`slab_unreclaimable`, `vmalloc`, `alloc_pages`) or cache.
    pub name: String,
    /// Bytes at the first and the last sample of this boot.
    pub first_bytes: u64,
    pub last_bytes: u64,
    /// last − first.
    pub growth_bytes: i64,
    /// Least-squares slope.
    pub slope_bytes_per_day: f64,
    /// Fit quality (1: a straight line).
    pub r2: f64,
    /// Steady growth at the minimum rate or more.
    pub growing: bool,
    /// The series at a glance (▁▂▃▄▅▆▇█), oldest left.
    pub sparkline: String,
}

/// The `history` section of the check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryReport {
    /// The file read.
    pub file: String,
    /// Samples of this boot (the series judged) and in the file.
    pub samples: usize,
    pub samples_in_file: usize,
    /// Boots the file holds samples of.
    pub boots: usize,
    /// Seconds from this boot's first sample to its last.
    pub span_s: f64,
    /// The minimum slope that counts as growing.
    pub min_rate_bytes_per_day: f64,
    /// The check's categories.
    pub categories: Vec<SeriesGrowth>,
    /// Caches that grow, fastest first (at most 10).
    pub growing_caches: Vec<SeriesGrowth>,
    /// What limits the answer (too few samples, a torn last line).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl HistoryReport {
    /// The category's growth, if recorded.
    pub fn category(&self, name: &str) -> Option<&SeriesGrowth> {
        self.categories.iter().find(|c| c.name == name)
    }
}

/// Category names as recorded, in the check's order.
pub const CATEGORIES: [&str; 3] = ["slab_unreclaimable", "vmalloc", "alloc_pages"];

fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let step = values.len().div_ceil(SPARK_POINTS).max(1);
    let points: Vec<u64> = values.chunks(step).map(|c| *c.last().unwrap()).collect();
    let (lo, hi) = (points.iter().copied().min().unwrap_or(0), points.iter().copied().max().unwrap_or(0));
    points.iter().map(|&v| if hi == lo { BARS[0] } else { BARS[((v - lo) as f64 / (hi - lo) as f64 * 7.0).round() as usize] }).collect()
}

fn series(name: &str, samples: &[&Sample], value: impl Fn(&Sample) -> Option<u64>, min_rate_per_s: f64) -> Option<SeriesGrowth> {
    let points: Vec<(f64, u64)> = samples.iter().filter_map(|s| value(s).map(|v| (s.uptime_s, v))).collect();
    let (first, last) = (points.first()?.1, points.last()?.1);
    let (slope, r2) = fit(&points.iter().map(|&(t, v)| (t, v as f64)).collect::<Vec<_>>());
    let growth = last as i64 - first as i64;
    Some(SeriesGrowth {
        name: name.to_string(),
        first_bytes: first,
        last_bytes: last,
        growth_bytes: growth,
        slope_bytes_per_day: slope * SECONDS_PER_DAY,
        r2,
        growing: points.len() >= MIN_SAMPLES && slope >= min_rate_per_s && r2 >= MIN_R2 && growth > 0,
        sparkline: sparkline(&points.iter().map(|p| p.1).collect::<Vec<_>>()),
    })
}

/// Judge the series of `boot_id` (this boot) in `history`.
pub fn analyse(history: &History, file: &str, boot_id: &str, min_rate_per_s: f64) -> HistoryReport {
    // Time is seconds since boot: the wall clock may jump (NTP, a manual
    // date), uptime does not. Two recorders at once may append in the
    // other order than they sampled: sort.
    let mut current: Vec<&Sample> = history.samples.iter().filter(|s| s.boot_id == boot_id).collect();
    current.sort_by(|a, b| a.uptime_s.total_cmp(&b.uptime_s));
    let mut boots: Vec<&str> = history.samples.iter().map(|s| s.boot_id.as_str()).collect();
    boots.sort_unstable();
    boots.dedup();
    let categories =
        CATEGORIES.iter().filter_map(|&name| series(name, &current, |s| s.categories.get(name).copied(), min_rate_per_s)).collect();
    let mut names: Vec<&String> = current.iter().flat_map(|s| s.caches.keys()).collect();
    names.sort_unstable();
    names.dedup();
    let mut growing_caches: Vec<SeriesGrowth> = names
        .into_iter()
        // A cache missing from a sample held nothing worth recording then.
        .filter_map(|name| series(name, &current, |s| Some(s.caches.get(name).map_or(0, |c| c[0])), min_rate_per_s))
        .filter(|g| g.growing)
        .collect();
    growing_caches.sort_by(|a, b| b.slope_bytes_per_day.total_cmp(&a.slope_bytes_per_day));
    growing_caches.truncate(TOP_CACHES);
    let mut notes = Vec::new();
    if current.len() < MIN_SAMPLES {
        notes.push(format!(
            "{} samples of this boot: growth needs {MIN_SAMPLES} (record more with --record; a reboot starts a new series)",
            current.len()
        ));
    }
    if history.torn_tail {
        notes.push("the last line was torn (a recorder killed mid-write) and is ignored".into());
    }
    HistoryReport {
        file: file.to_string(),
        samples: current.len(),
        samples_in_file: history.samples.len(),
        boots: boots.len(),
        span_s: match (current.first(), current.last()) {
            (Some(a), Some(b)) => b.uptime_s - a.uptime_s,
            _ => 0.0,
        },
        min_rate_bytes_per_day: min_rate_per_s * SECONDS_PER_DAY,
        categories,
        growing_caches,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(boot: &str, uptime: f64, slab: u64, cache: u64) -> Sample {
        Sample {
            time: 1_800_000_000 + uptime as u64,
            boot_id: boot.into(),
            uptime_s: uptime,
            categories: [("slab_unreclaimable".to_string(), slab), ("vmalloc".to_string(), 5 << 20)].into(),
            caches: [("leaky".to_string(), [cache, cache / 64]), ("flat".to_string(), [1 << 20, 100])].into(),
        }
    }

    #[test]
    fn steady_growth_is_found_and_flat_series_are_not() {
        // 2.5 MB a day, the seed's rate, sampled hourly for four days.
        let samples: Vec<Sample> = (0..96).map(|h| sample("b", h as f64 * 3600.0, (100 << 20) + h * 104_166, h * 104_166)).collect();
        let report = analyse(&History { samples, torn_tail: false }, "f", "b", 1e6 / 86_400.0);
        let slab = report.category("slab_unreclaimable").unwrap();
        assert!(slab.growing && (slab.slope_bytes_per_day - 2.5e6).abs() < 1e4, "{slab:?}");
        assert!(!report.category("vmalloc").unwrap().growing);
        let names: Vec<&str> = report.growing_caches.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["leaky"]);
        assert_eq!(report.span_s, 95.0 * 3600.0);
        assert_eq!(slab.sparkline.chars().next(), Some('▁'));
        assert_eq!(slab.sparkline.chars().last(), Some('█'));
    }

    #[test]
    fn a_reboot_starts_a_new_series_and_clock_jumps_do_not_grow() {
        let mut samples: Vec<Sample> = (0..10).map(|h| sample("old", h as f64 * 3600.0, 900 << 20, 900 << 20)).collect();
        // After the reboot memory is back low: not a drop of this boot.
        samples.extend((0..3).map(|h| sample("new", 60.0 + h as f64, 100 << 20, 0)));
        let report = analyse(&History { samples: samples.clone(), torn_tail: false }, "f", "new", 1.0);
        assert_eq!((report.samples, report.boots), (3, 2));
        assert!(report.categories.iter().all(|c| !c.growing && c.growth_bytes == 0));
        assert!(report.notes[0].contains("3 samples of this boot"), "{:?}", report.notes);
        // The wall clock jumps back a day; uptime goes on: no growth made.
        let mut jumped = sample("new", 63.0, 100 << 20, 0);
        jumped.time -= 86_400;
        samples.push(jumped);
        let report = analyse(&History { samples: samples.clone(), torn_tail: false }, "f", "new", 1.0);
        assert_eq!(report.samples, 4);
        assert!(report.categories.iter().all(|c| !c.growing && c.growth_bytes == 0));
        // Appended out of order (two recorders at once): the series is sorted.
        samples.push(sample("new", 61.5, 100 << 20, 0));
        let report = analyse(&History { samples, torn_tail: false }, "f", "new", 1.0);
        assert_eq!((report.samples, report.span_s), (5, 3.0));
    }

    #[test]
    fn a_step_is_not_steady_growth() {
        let samples: Vec<Sample> = (0..20).map(|i| sample("b", i as f64 * 60.0, if i < 10 { 100 << 20 } else { 200 << 20 }, 0)).collect();
        let report = analyse(&History { samples, torn_tail: false }, "f", "b", 1.0);
        let slab = report.category("slab_unreclaimable").unwrap();
        assert!(slab.growth_bytes > 0 && slab.r2 < 0.8 && !slab.growing, "{slab:?}");
    }
}

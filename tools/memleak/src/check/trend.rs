//! The check's trend: every category sampled over a short window, and its
//! least-squares growth rate ([`crate::fit`]); a steady rate at or above
//! the minimum with a good fit (R² ≥ 0.8) flags a category below the
//! thresholds.

use std::time::{Duration, Instant};

use serde::Serialize;
use sysak_kernel::procfs::ProcFs;
use sysak_kernel::trace::window::Progress as _;

use super::usage::{Kind, Usage};
use crate::fit::fit;

/// Growth of one category over the trend window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryTrend {
    /// The category.
    pub kind: Kind,
    /// Least-squares slope, bytes per second.
    pub rate_bytes_per_s: f64,
    /// Coefficient of determination of the fit (1 = a straight line).
    pub r2: f64,
    /// Last sample minus first.
    pub growth_bytes: i64,
    /// Rate ≥ the minimum, R² ≥ 0.8 and positive growth.
    pub growing: bool,
}

/// The trend measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Seconds between first and last sample.
    pub window_s: f64,
    /// Samples taken.
    pub samples: usize,
    /// How the rate was measured.
    pub method: String,
    /// Minimum rate that counts as growth.
    pub min_rate_bytes_per_s: u64,
    /// Per category.
    pub categories: Vec<CategoryTrend>,
}

/// Trend over timed samples.
pub fn trend_of(samples: &[(f64, Usage)], min_rate: u64) -> Trend {
    let categories = Kind::ALL
        .into_iter()
        .map(|kind| {
            let points: Vec<(f64, f64)> = samples.iter().map(|(t, u)| (*t, u.bytes(kind) as f64)).collect();
            let (rate, r2) = fit(&points);
            let growth = match (samples.first(), samples.last()) {
                (Some(a), Some(b)) => b.1.bytes(kind) as i64 - a.1.bytes(kind) as i64,
                _ => 0,
            };
            CategoryTrend {
                kind,
                rate_bytes_per_s: rate,
                r2,
                growth_bytes: growth,
                growing: rate >= min_rate as f64 && r2 >= 0.8 && growth > 0,
            }
        })
        .collect();
    Trend {
        window_s: samples.last().map(|s| s.0).unwrap_or(0.0),
        samples: samples.len(),
        method: format!("least-squares slope of {} samples of /proc/meminfo and /proc/vmallocinfo", samples.len()),
        min_rate_bytes_per_s: min_rate,
        categories,
    }
}

/// Sample every `interval` for `window`, or until interrupted.
pub fn sample_trend(procfs: &ProcFs, window: Duration, interval: Duration, min_rate: u64) -> anyhow::Result<Trend> {
    let progress = sysak_cli::progress::Bar::started("sysak memleak: trend", "sampling memory", window);
    let start = Instant::now();
    let mut samples = vec![(0.0, Usage::measure(procfs)?)];
    while start.elapsed() < window && !sysak_kernel::signal::interrupted() {
        let next = (interval * samples.len() as u32).min(window);
        while start.elapsed() < next && !sysak_kernel::signal::interrupted() {
            sysak_kernel::signal::sleep_interruptible(next.saturating_sub(start.elapsed()).min(Duration::from_millis(250)));
            progress.set(start.elapsed(), "sampling");
        }
        samples.push((start.elapsed().as_secs_f64(), Usage::measure(procfs)?));
    }
    progress.finish();
    Ok(trend_of(&samples, min_rate))
}

//! Net growth of what a window traces, from the kernel's own counters.
//!
//! Outstanding is not leaked: long-lived objects replaced at the same rate
//! (queues, caches, conntrack-like tables) stay outstanding past any window
//! while their cache stays flat. A leak is memory that keeps growing, so
//! every verdict is anchored on growth measured by the kernel itself —
//! which, unlike the tracepoints, also sees the frees of `kfree_bulk()`,
//! `kmem_cache_free_bulk()` and the `kfree_rcu()` batches, and the frees of
//! objects allocated before the window.
//!
//! - one slab cache: `/proc/slabinfo` active objects (SLUB counts the free
//!   objects of per-CPU and per-CPU partial slabs as active: the noise
//!   allowance covers them);
//! - every cache (`-n all`): `SUnreclaim`;
//! - pages: the check's "alloc pages" residual (pages no other counter
//!   explains), so page tables, kernel stacks and the like do not count.
//!
//! Sampled once a second on a thread of its own, so the window's loop is
//! not delayed by a read of /proc/slabinfo.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sysak_kernel::procfs::ProcFs;

use crate::check::Usage;
use crate::trace::slab::SlabTarget;

/// One reading of the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Objects, where the counter has them (one slab cache).
    pub objects: Option<u64>,
    /// Bytes.
    pub bytes: u64,
}

/// What was measured over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Growth {
    /// The counter, in words ("/proc/slabinfo active objects of kmalloc-64").
    pub source: String,
    /// Readings taken.
    pub samples: usize,
    /// Last reading minus first, objects (one cache only).
    pub objects: Option<i64>,
    /// Last reading minus first, bytes.
    pub bytes: i64,
    /// Growth up to this many bytes is what the counter moves by without a
    /// leak (per-CPU slabs and page lists filling and draining).
    pub noise_bytes: u64,
    /// R² of a straight line through the readings (1: steady growth, as a
    /// leak grows; a burst or a step fits worse). `None` with fewer than
    /// three readings.
    pub steadiness: Option<f64>,
}

impl Growth {
    /// Growth beyond the noise.
    pub fn grew(&self) -> bool {
        self.bytes > self.noise_bytes as i64
    }

    /// From the readings of a window, each with its time in seconds;
    /// `None` with fewer than two.
    pub fn from_readings(source: String, readings: &[(f64, Reading)], noise_bytes: u64) -> Option<Growth> {
        let (first, last) = (&readings.first()?.1, &readings.last()?.1);
        if readings.len() < 2 {
            return None;
        }
        let objects = match (first.objects, last.objects) {
            (Some(a), Some(b)) => Some(b as i64 - a as i64),
            _ => None,
        };
        let points: Vec<(f64, f64)> = readings.iter().map(|(t, r)| (*t, r.bytes as f64)).collect();
        let steadiness = (readings.len() >= 3).then(|| crate::fit::fit(&points).1);
        Some(Growth { source, samples: readings.len(), objects, bytes: last.bytes as i64 - first.bytes as i64, noise_bytes, steadiness })
    }
}

/// Reads a counter now and then until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<(f64, Reading)>>>,
    read: Arc<dyn Fn() -> Option<Reading> + Send + Sync>,
    first: Option<Reading>,
    start: std::time::Instant,
}

impl Sampler {
    /// Take the first reading now, then one every `period` until
    /// [`Sampler::finish`].
    pub fn start(read: impl Fn() -> Option<Reading> + Send + Sync + 'static, period: Duration) -> Sampler {
        let read: Arc<dyn Fn() -> Option<Reading> + Send + Sync> = Arc::new(read);
        let start = std::time::Instant::now();
        let first = read();
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, reader) = (stop.clone(), read.clone());
        let thread = std::thread::Builder::new()
            .name("sysak-growth".into())
            .spawn(move || {
                let mut readings = Vec::new();
                let step = Duration::from_millis(50);
                let mut waited = Duration::ZERO;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited >= period {
                        waited = Duration::ZERO;
                        readings.extend(reader().map(|r| (start.elapsed().as_secs_f64(), r)));
                    }
                }
                readings
            })
            .ok();
        Sampler { stop, thread, read, first, start }
    }

    /// Stop, take the last reading now, and return them all in order with
    /// their times (seconds since the first).
    pub fn finish(mut self) -> Vec<(f64, Reading)> {
        self.stop.store(true, Ordering::Relaxed);
        let middle = self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default();
        let last = (self.read)().map(|r| (self.start.elapsed().as_secs_f64(), r));
        self.first.map(|r| (0.0, r)).into_iter().chain(middle).chain(last).collect()
    }
}

/// How often the counter is read.
const PERIOD: Duration = Duration::from_secs(1);
/// Growth of unexplained pages or SUnreclaim below this is noise.
const PAGE_NOISE_BYTES: u64 = 4 << 20;

/// The kernel's count of what `target` holds, read across the window.
pub struct GrowthProbe {
    sampler: Sampler,
    source: String,
    /// The noise allowance at the start, and how to read it again at the end.
    noise_at_start: u64,
    noise: Box<dyn Fn() -> u64>,
}

impl GrowthProbe {
    /// Stop and measure; the noise is the larger of its two readings.
    pub fn finish(self) -> Option<Growth> {
        let noise = self.noise_at_start.max((self.noise)());
        Growth::from_readings(self.source, &self.sampler.finish(), noise)
    }
}

/// One cache: its active objects in /proc/slabinfo. The noise allowance is
/// what the cache's CPUs hold as SLUB reports it at either end of the
/// window ([`ProcFs::slab_per_cpu_objects`]), never a formula in the CPU
/// count: on a 96-CPU host such a formula allowed megabytes that no window
/// moves. Sheaves (6.18+) report their capacity only: two per CPU are
/// allowed where a cache has them. `-n all`: SUnreclaim.
pub fn slab_probe(procfs: &ProcFs, target: &SlabTarget) -> GrowthProbe {
    match target {
        SlabTarget::Cache { stats, .. } => {
            let sheaves = match procfs.slab_attribute_u64(&stats.name, "sheaf_capacity").unwrap_or(0) {
                0 => 0,
                capacity => 2 * capacity * sysak_kernel::procfs::online_cpus().map(|c| c.len() as u64).unwrap_or(1).max(1),
            };
            let (name, size) = (stats.name.clone(), stats.objsize_bytes);
            let (reader, sysfs) = (ProcFs::default(), procfs.clone());
            let read = move || {
                let line = reader.read_slabinfo().ok()?.caches.into_iter().find(|c| c.name == name)?;
                Some(Reading { objects: Some(line.active_objs), bytes: line.active_objs * size })
            };
            let name = stats.name.clone();
            let noise = move || (sysfs.slab_per_cpu_objects(&name).unwrap_or(0) + sheaves) * size;
            GrowthProbe {
                noise_at_start: noise(),
                sampler: Sampler::start(read, PERIOD),
                source: format!("/proc/slabinfo active objects of {}", stats.name),
                noise: Box::new(noise),
            }
        }
        SlabTarget::All => {
            let reader = ProcFs::default();
            let read = move || reader.read_meminfo().ok().map(|m| Reading { objects: None, bytes: m.slab_unreclaimable });
            GrowthProbe {
                sampler: Sampler::start(read, PERIOD),
                source: "SUnreclaim".into(),
                noise_at_start: PAGE_NOISE_BYTES,
                noise: Box::new(|| PAGE_NOISE_BYTES),
            }
        }
    }
}

/// `-t page`: the alloc-pages residual of the check.
pub fn page_probe() -> GrowthProbe {
    let reader = ProcFs::default();
    let read = move || Usage::measure(&reader).ok().map(|u| Reading { objects: None, bytes: u.alloc_pages });
    GrowthProbe {
        sampler: Sampler::start(read, PERIOD),
        source: "alloc pages: the pages no /proc/meminfo line explains (see --check)".into(),
        noise_at_start: PAGE_NOISE_BYTES,
        noise: Box::new(|| PAGE_NOISE_BYTES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_last_minus_first_with_noise() {
        let r = |t, objects, bytes| (t, Reading { objects: Some(objects), bytes });
        let g = Growth::from_readings("x".into(), &[r(0.0, 100, 6400), r(1.0, 90, 5760), r(2.0, 140, 8960)], 1000).unwrap();
        assert_eq!((g.objects, g.bytes, g.samples), (Some(40), 2560, 3));
        assert!(g.grew());
        let flat = Growth::from_readings("x".into(), &[r(0.0, 100, 6400), r(1.0, 104, 6656)], 1000).unwrap();
        assert!(!flat.grew() && flat.steadiness.is_none());
        assert!(Growth::from_readings("x".into(), &[r(0.0, 1, 1)], 0).is_none());
        // A leak grows in a line; a burst is a step.
        let line: Vec<_> = (0..10).map(|i| r(i as f64, 100 + 50 * i, 6400 + 3200 * i)).collect();
        assert!(Growth::from_readings("x".into(), &line, 0).unwrap().steadiness.unwrap() > 0.99);
        let step: Vec<_> = (0..10).map(|i| r(i as f64, if i < 9 { 100 } else { 600 }, if i < 9 { 6400 } else { 38400 })).collect();
        assert!(Growth::from_readings("x".into(), &step, 0).unwrap().steadiness.unwrap() < 0.5);
    }

    #[test]
    fn sampler_reads_at_both_ends() {
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = count.clone();
        let sampler =
            Sampler::start(move || Some(Reading { objects: None, bytes: c.fetch_add(1, Ordering::Relaxed) }), Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(350));
        let readings = sampler.finish();
        assert!(readings.len() >= 4, "{readings:?}");
        assert!(readings.windows(2).all(|w| w[0].1.bytes < w[1].1.bytes && w[0].0 <= w[1].0), "in order: {readings:?}");
    }
}

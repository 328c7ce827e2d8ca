//! The stock: a leak is a stock of alike objects that are born and never
//! die; turnover is a stock that dies as fast as it is born. The cache's
//! other users add and free objects at will, the stock's members do not, so
//! the verdict is drawn on the stock rather than on the whole cache.
//!
//! 1. Before tracing, the traced cache is scanned and the members of its
//!    largest cluster of alike objects are taken: their addresses (every
//!    one up to [`MAX_FOLLOWED`], an address-hash sample beyond).
//! 2. During the window their frees are counted: by the BPF free programs
//!    for a sample that fits [`MAX_FOLLOWED_IN_KERNEL`]
//!    ([`sysak_kernel::trace::followed`]), or by perf, exactly, in user
//!    space.
//! 3. After it, the end-of-window walk re-reads the members: free in their
//!    slab, their slab gone, no longer like the representative, or with a
//!    different [`fingerprint`] counts as a death too. That catches
//!    `kfree_bulk()`, `kmem_cache_free_bulk()` and `kfree_rcu()` batches,
//!    which fire no per-object free tracepoint, even when SLUB hands the
//!    freed slot (its per-CPU freelist is last in, first out) to a new alike
//!    object: that one carries other serials, counters or times than the
//!    member it replaced.
//!
//! Births are the window's outstanding allocations like the stock's
//! representative; [`crate::scan::rates`] weighs them against the deaths.

use std::collections::HashSet;
use std::time::Instant;

use sysak_kernel::similarity::Representative;
use sysak_kernel::slab::KmemCache;
use sysak_kernel::trace::followed::AddressSample;

use crate::report::StockReport;
use crate::scan::rates::{Counts, ALPHA};
use crate::scan::{Place, Presence, Scanner};

/// Members re-read at the end at most: 8 bytes each in memory, and one
/// sorted search per object the end walk reads.
pub const MAX_FOLLOWED: u64 = 2_000_000;
/// Members followed on the BPF free path at most: a preallocated kernel
/// hash of about 80 bytes an entry (~20 MiB at most, for the window only).
pub const MAX_FOLLOWED_IN_KERNEL: u64 = 262_144;

/// How member frees are traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracing {
    /// Not at all (the window was not traced with member tests).
    None,
    /// In the kernel, for the members `sample` takes.
    Bpf(AddressSample),
    /// In user space, every followed member.
    Perf,
}

/// The stock at the window's start, followed.
pub struct Stock {
    /// The representative member.
    pub representative: Representative,
    members: u64,
    /// Sorted addresses of the members re-read at the end.
    followed: Vec<u64>,
    /// Their fingerprints at the start, in the same order.
    fingerprints: Vec<u64>,
    reread: AddressSample,
    tracing: Tracing,
    freed: Vec<bool>,
    /// At the end: seen allocated, and still the same alike object.
    seen: Vec<bool>,
    same: Vec<bool>,
    scan_s: f64,
    /// When the members were taken, and when the re-read began: deaths are
    /// counted between the two.
    taken: Instant,
    reread_at: Option<Instant>,
}

/// What the end-of-window walk found of the followed members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fates {
    freed: u64,
    changed: u64,
    unknown: u64,
}

impl Stock {
    /// Scan `cache` (the latest page snapshot of `scanner`) and take the
    /// members of its largest cluster. The error says why there is no stock.
    pub fn take(scanner: &Scanner, cache: &KmemCache, percent: u32) -> Result<Stock, String> {
        let start = Instant::now();
        let (clusters, _) = scanner.largest_clusters(cache, percent, &mut Presence::default(), &mut |_, _| {});
        let cluster = clusters
            .into_iter()
            .find(|c| c.similar >= 2)
            .ok_or_else(|| format!("no two objects of {} are alike at the window's start", cache.name))?;
        let reread = AddressSample::to_fit(cluster.similar, MAX_FOLLOWED);
        let (mut members, mut followed) = (0u64, Vec::new());
        // Members are taken from settled slabs only: a CPU's slab may show
        // freed objects as allocated, and their slots, taken again in the
        // window, would pass for deaths.
        scanner.each_settled_object(cache, &mut |address, bytes| {
            if cluster.representative.matches(bytes) {
                members += 1;
                if reread.takes(address) {
                    followed.push((address, fingerprint(bytes)));
                }
            }
        });
        followed.sort_unstable();
        followed.dedup_by_key(|(address, _)| *address);
        let n = followed.len();
        let (followed, fingerprints) = followed.into_iter().unzip();
        Ok(Stock {
            representative: cluster.representative,
            members,
            followed,
            fingerprints,
            reread,
            tracing: Tracing::None,
            freed: vec![false; n],
            seen: vec![false; n],
            same: vec![false; n],
            scan_s: start.elapsed().as_secs_f64(),
            taken: Instant::now(),
            reread_at: None,
        })
    }

    /// The members a BPF free program should follow, and how they were
    /// chosen: a sample nested in the re-read one, small enough for the
    /// kernel.
    pub fn in_kernel_sample(&self) -> (AddressSample, Vec<u64>) {
        let fit = AddressSample::to_fit(self.members, MAX_FOLLOWED_IN_KERNEL);
        let sample = AddressSample { shift: fit.shift.max(self.reread.shift) };
        (sample, self.followed.iter().copied().filter(|a| sample.takes(*a)).collect())
    }

    /// Say how the window traces member frees.
    pub fn traced_by(&mut self, tracing: Tracing) {
        self.tracing = tracing;
    }

    /// A free the perf tracer saw of an address allocated before the window.
    pub fn freed(&mut self, address: u64) {
        if let Ok(i) = self.followed.binary_search(&address) {
            self.freed[i] = true;
        }
    }

    /// After a BPF window: the followed members its programs did not see
    /// freed.
    pub fn left_in_kernel(&mut self, left: &HashSet<u64>) {
        let Tracing::Bpf(sample) = self.tracing else { return };
        for (address, freed) in self.followed.iter().zip(&mut self.freed) {
            *freed = sample.takes(*address) && !left.contains(address);
        }
    }

    /// The end walk's view of one allocated object of the cache.
    pub fn observe(&mut self, address: u64, bytes: &[u8]) {
        self.reread_at.get_or_insert_with(Instant::now);
        if let Ok(i) = self.followed.binary_search(&address) {
            self.seen[i] = true;
            self.same[i] = self.representative.matches(bytes) && fingerprint(bytes) == self.fingerprints[i];
        }
    }

    /// Where the members the end walk did not see allocated are.
    fn fates(&self, presence: &mut Presence) -> (Fates, Vec<bool>) {
        let mut fates = Fates::default();
        let mut dead = vec![false; self.followed.len()];
        for (i, address) in self.followed.iter().enumerate() {
            if self.seen[i] {
                if !self.same[i] {
                    fates.changed += 1;
                    dead[i] = true;
                }
                continue;
            }
            match presence.place(*address) {
                Place::Free | Place::NotInCache => {
                    fates.freed += 1;
                    dead[i] = true;
                }
                Place::Unknown | Place::Allocated => fates.unknown += 1,
            }
        }
        (fates, dead)
    }

    /// The stock's section: births (`births`, the window's outstanding
    /// allocations like the representative) against deaths, over a window
    /// of `window_s` seconds whose last `free_only_s` traced frees only.
    /// Deaths count from the taking of the members to their re-read, which
    /// holds the window and the set-up before it.
    pub fn report(&self, presence: &mut Presence, births: u64, window_s: f64, free_only_s: f64) -> StockReport {
        let (fates, dead) = self.fates(presence);
        let alloc_s = (window_s - free_only_s).max(0.0);
        let deaths_s = self.reread_at.unwrap_or_else(Instant::now).duration_since(self.taken).as_secs_f64().max(window_s);
        let counts = |deaths: u64, every: u64| Counts { births, alloc_s, deaths, deaths_s, every };
        let reread = counts(fates.freed + fates.changed, self.reread.every());
        let (traced_by, traced, traced_sample) = match self.tracing {
            Tracing::None => ("none", 0, None),
            tracing => {
                let sample = sample_of(tracing, self.reread);
                let members = self.followed.iter().enumerate().filter(|(_, a)| sample.takes(**a));
                let (mut n, mut deaths) = (0, 0);
                for (i, _) in members {
                    n += 1;
                    deaths += u64::from(self.freed[i] || dead[i]);
                }
                (self.tracing_name(), n, Some(counts(deaths, sample.every())))
            }
        };
        // The stronger evidence of deaths decides: both tests must find
        // births beyond deaths.
        let tests: Vec<&Counts> = traced_sample.iter().chain([&reread]).collect();
        let p_value = tests.iter().map(|c| c.p_value()).fold(0.0, f64::max);
        let worst = tests.iter().min_by(|a, b| a.net_per_s_lower().total_cmp(&b.net_per_s_lower())).copied().copied().unwrap_or(reread);
        StockReport {
            unavailable: None,
            object_address: Some(format!("{:#x}", self.representative.address)),
            members: self.members,
            followed: self.followed.len() as u64,
            followed_every: self.reread.every(),
            traced_by: traced_by.into(),
            traced,
            traced_every: traced_sample.map_or(0, |c| c.every),
            deaths_traced: self.freed.iter().filter(|f| **f).count() as u64,
            deaths_reread_freed: fates.freed,
            deaths_reread_changed: fates.changed,
            unknown: fates.unknown,
            births,
            traced_sample,
            reread: Some(reread),
            deaths_estimate: tests.iter().map(|c| c.deaths_estimate()).max().unwrap_or(0),
            net_per_s: worst.net_per_s(),
            net_per_s_lower: worst.net_per_s_lower(),
            p_value,
            test: format!(
                "conditional binomial test of two Poisson rates: births in the {alloc_s:.1} s allocation phase against deaths in the {deaths_s:.1} s the members were followed, leak below p = {ALPHA}"
            ),
            scan_s: self.scan_s,
        }
    }

    fn tracing_name(&self) -> &'static str {
        match self.tracing {
            Tracing::None => "none",
            Tracing::Bpf(_) => "bpf",
            Tracing::Perf => "perf",
        }
    }
}

/// What identifies one object among alike ones: a hash of its 8-byte words
/// that are not kernel pointers (and of which words are). Pointers are left
/// out because a live member's list links change as neighbours come and go
/// (a queue's tail gains a `next`); serials, counters, times and contents
/// stay while the object lives, and differ in an alike object that took its
/// slot. Kernel pointers have their top byte 0xff on x86_64 with 4- and
/// 5-level paging alike (ffff88…, ff11…).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    // FNV-1a, 64-bit.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |value: u64| {
        for b in value.to_le_bytes() {
            hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    let words = bytes.chunks(8);
    for (i, word) in words.enumerate() {
        let mut padded = [0u8; 8];
        padded[..word.len()].copy_from_slice(word);
        let value = u64::from_le_bytes(padded);
        if value >> 56 == 0xff {
            mix(i as u64 | 1 << 63);
        } else {
            mix(value);
        }
    }
    hash
}

/// The members a tracing follows: the BPF sample, or every re-read member.
fn sample_of(tracing: Tracing, reread: AddressSample) -> AddressSample {
    match tracing {
        Tracing::Bpf(sample) => sample,
        Tracing::Perf | Tracing::None => reread,
    }
}

/// The section when there is no stock to follow.
pub fn unavailable(why: impl Into<String>) -> StockReport {
    StockReport { unavailable: Some(why.into()), ..StockReport::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_links_and_see_serials() {
        let object = |serial: u64, next: u64| {
            let mut bytes = Vec::new();
            for word in [0xffff_ffff_c0a0_1000u64, serial, next, next + 8, 0x6b61_656c_6b61_7973] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bytes.extend_from_slice(b"tail");
            bytes
        };
        let member = object(7, 0xffff_8880_0123_4000);
        assert_eq!(fingerprint(&member), fingerprint(&object(7, 0xff11_0000_0456_7000)), "links moved: the same object");
        assert_ne!(fingerprint(&member), fingerprint(&object(8, 0xffff_8880_0123_4000)), "another serial: another object");
        assert_ne!(fingerprint(&member), fingerprint(&object(7, 0)), "a link cut to NULL is a change");
    }
}

//! The set of allocations still outstanding during a trace window.
//!
//! Samples reach user space per CPU, so a free can be read before the
//! allocation it undoes (allocated on one CPU, freed on another). Every
//! event therefore carries its timestamp and the set applies them in time
//! order per key: a free removes only an allocation older than itself, and
//! a free that finds nothing leaves a short-lived tombstone that cancels a
//! late-read, older allocation of the same address. Tombstones are retired
//! once every CPU's ring has been drained past them. Both tables are
//! bounded; what does not fit is counted, never silently dropped.

use std::collections::HashMap;

/// One outstanding allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// CLOCK_MONOTONIC ns.
    pub time_ns: u64,
    /// The allocating call site (return address or first frame outside
    /// the allocator).
    pub call_site: u64,
    /// Bytes allocated.
    pub bytes: u64,
    /// Index into the stack table, when stacks are kept.
    pub stack: Option<u32>,
}

/// Interned kernel stacks, bounded.
#[derive(Debug, Default)]
pub struct Stacks {
    index: HashMap<Vec<u64>, u32>,
    stacks: Vec<Vec<u64>>,
    cap: usize,
    /// Reused for each callchain, so interning a sample allocates nothing
    /// unless its stack is new.
    scratch: Vec<u64>,
    /// Stacks not kept because the table was full.
    pub dropped: u64,
}

impl Stacks {
    /// A table of at most `cap` distinct stacks.
    pub fn new(cap: usize) -> Stacks {
        Stacks { cap, ..Stacks::default() }
    }

    /// The id of `frames`, interning it if there is room.
    pub fn intern(&mut self, frames: &[u64]) -> Option<u32> {
        if let Some(id) = self.index.get(frames) {
            return Some(*id);
        }
        if self.stacks.len() >= self.cap {
            self.dropped += 1;
            return None;
        }
        let id = self.stacks.len() as u32;
        self.stacks.push(frames.to_vec());
        self.index.insert(frames.to_vec(), id);
        Some(id)
    }

    /// The id of a perf sample's callchain (context markers dropped).
    pub fn intern_callchain(&mut self, callchain: &[u64]) -> Option<u32> {
        let mut frames = std::mem::take(&mut self.scratch);
        frames.clear();
        frames.extend(crate::trace::perf::kernel_frames(callchain));
        let id = self.intern(&frames);
        self.scratch = frames;
        id
    }

    /// The frames of stack `id`.
    pub fn get(&self, id: u32) -> &[u64] {
        &self.stacks[id as usize]
    }
}

/// Outstanding allocations keyed by address (or PFN).
#[derive(Debug)]
pub struct Outstanding {
    live: HashMap<u64, Allocation>,
    tombstones: HashMap<u64, u64>,
    cap: usize,
    /// Allocations not tracked because the table was full.
    pub overflow: u64,
}

/// Outstanding allocations of one call site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSiteTotal {
    /// The call site.
    pub call_site: u64,
    /// Allocations outstanding.
    pub count: u64,
    /// Bytes outstanding.
    pub bytes: u64,
    /// Oldest outstanding allocation's time.
    pub oldest_ns: u64,
    /// The most common stack among them.
    pub stack: Option<u32>,
}

impl Outstanding {
    /// A set of at most `cap` allocations.
    pub fn new(cap: usize) -> Outstanding {
        Outstanding { live: HashMap::new(), tombstones: HashMap::new(), cap, overflow: 0 }
    }

    /// An allocation at `key`.
    pub fn alloc(&mut self, key: u64, allocation: Allocation) {
        if let Some(freed_at) = self.tombstones.remove(&key) {
            if freed_at >= allocation.time_ns {
                return; // already freed: its free was read first
            }
        }
        if self.live.len() >= self.cap && !self.live.contains_key(&key) {
            self.overflow += 1;
            return;
        }
        match self.live.get(&key) {
            Some(existing) if existing.time_ns > allocation.time_ns => {} // a newer one holds the key
            _ => {
                self.live.insert(key, allocation);
            }
        }
    }

    /// A free of `key` at `time_ns`.
    pub fn free(&mut self, key: u64, time_ns: u64) {
        match self.live.get(&key) {
            Some(a) if a.time_ns <= time_ns => {
                self.live.remove(&key);
            }
            Some(_) => {} // frees an older object; the newer one stays
            None => {
                if self.tombstones.len() < self.cap {
                    self.tombstones.insert(key, time_ns);
                }
            }
        }
    }

    /// Forget tombstones older than `before_ns`: every allocation older
    /// than that has been read by now.
    pub fn retire(&mut self, before_ns: u64) {
        self.tombstones.retain(|_, t| *t >= before_ns);
    }

    /// Number of outstanding allocations.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is outstanding.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Replace every stack id with `map(id)` (ids read from elsewhere, such
    /// as a BPF stack table, become ids of a [`Stacks`]).
    pub fn remap_stacks(&mut self, mut map: impl FnMut(u32) -> Option<u32>) {
        for a in self.live.values_mut() {
            a.stack = a.stack.and_then(&mut map);
        }
    }

    /// Set every allocation's call site to `site(allocation)`.
    pub fn set_call_sites(&mut self, mut site: impl FnMut(&Allocation) -> u64) {
        for a in self.live.values_mut() {
            a.call_site = site(a);
        }
    }

    /// Keep only the allocations for which `keep(key, allocation)` holds
    /// (those found freed, or in another cache, after the window).
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &Allocation) -> bool) {
        self.live.retain(|k, a| keep(*k, a));
    }

    /// Every outstanding allocation with its key (address or PFN).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Allocation)> {
        self.live.iter().map(|(k, a)| (*k, a))
    }

    /// Outstanding bytes per stack id, most first (allocations without a
    /// stack are left out): the weights of a flame graph.
    pub fn by_stack(&self) -> Vec<(u32, u64)> {
        let mut by: HashMap<u32, u64> = HashMap::new();
        for a in self.live.values() {
            if let Some(s) = a.stack {
                *by.entry(s).or_default() += a.bytes;
            }
        }
        let mut out: Vec<(u32, u64)> = by.into_iter().collect();
        out.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Outstanding allocations by call site, most first, each with its
    /// commonest stack.
    pub fn by_call_site(&self) -> Vec<CallSiteTotal> {
        let mut sites: HashMap<u64, (CallSiteTotal, HashMap<u32, u64>)> = HashMap::new();
        for a in self.live.values() {
            let (total, stacks) = sites.entry(a.call_site).or_insert_with(|| {
                (CallSiteTotal { call_site: a.call_site, count: 0, bytes: 0, oldest_ns: u64::MAX, stack: None }, HashMap::new())
            });
            total.count += 1;
            total.bytes += a.bytes;
            total.oldest_ns = total.oldest_ns.min(a.time_ns);
            if let Some(s) = a.stack {
                *stacks.entry(s).or_default() += 1;
            }
        }
        let mut out: Vec<CallSiteTotal> = sites
            .into_values()
            .map(|(mut t, stacks)| {
                t.stack = stacks.into_iter().max_by_key(|(id, n)| (*n, std::cmp::Reverse(*id))).map(|(id, _)| id);
                t
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(b.bytes.cmp(&a.bytes)).then(a.call_site.cmp(&b.call_site)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(time_ns: u64, call_site: u64) -> Allocation {
        Allocation { time_ns, call_site, bytes: 64, stack: None }
    }

    #[test]
    fn alloc_then_free_leaves_nothing() {
        let mut o = Outstanding::new(10);
        o.alloc(1, a(10, 0xa));
        o.free(1, 20);
        assert!(o.is_empty());
    }

    #[test]
    fn a_free_read_before_its_allocation_still_cancels_it() {
        let mut o = Outstanding::new(10);
        o.free(1, 20); // CPU 1's ring drained first
        o.alloc(1, a(10, 0xa)); // CPU 0's ring: the older allocation
        assert!(o.is_empty());
        // A later allocation of the same address is a new object.
        o.free(2, 20);
        o.alloc(2, a(30, 0xb));
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn reused_addresses_keep_the_newest_object() {
        let mut o = Outstanding::new(10);
        o.alloc(1, a(10, 0xa));
        o.alloc(1, a(30, 0xb)); // reuse after an unseen free
        o.free(1, 20); // the old object's free, read late
        assert_eq!(o.by_call_site()[0].call_site, 0xb);
    }

    #[test]
    fn full_table_counts_overflow_and_tombstones_retire() {
        let mut o = Outstanding::new(2);
        for k in 0..5 {
            o.alloc(k, a(10 + k, 0xa));
        }
        assert_eq!((o.len(), o.overflow), (2, 3));
        let mut o = Outstanding::new(10);
        o.free(7, 5);
        o.retire(6);
        o.alloc(7, a(4, 0xa)); // tombstone gone: counted as outstanding
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn call_sites_sorted_with_their_commonest_stack() {
        let mut stacks = Stacks::new(1);
        let s1 = stacks.intern(&[1, 2]);
        assert_eq!(stacks.intern(&[3]), None);
        assert_eq!(stacks.dropped, 1);
        let mut o = Outstanding::new(10);
        o.alloc(1, Allocation { stack: s1, ..a(5, 0xa) });
        o.alloc(2, a(3, 0xa));
        o.alloc(3, a(4, 0xb));
        let sites = o.by_call_site();
        assert_eq!((sites[0].call_site, sites[0].count, sites[0].oldest_ns, sites[0].stack), (0xa, 2, 3, s1));
        assert_eq!(sites[1].bytes, 64);
    }
}

//! Object-content similarity: leaked objects are many, alike, and never
//! change, so the largest cluster of similar objects in a cache points at
//! them.
//!
//! The rule is the original sysak's: a byte is *useful* unless it is one of
//! 0x00 0xff 0xbb 0xcc 0x5a 0x6a (zeroes, all-ones, and the slab debug
//! poison and red-zone bytes); object B is similar to A when B equals A on
//! at least `percent` % (65 by default) of A's useful byte positions; A
//! needs at least 4 useful bytes.
//!
//! Finding the largest cluster is not quadratic: a first pass keeps at most
//! [`SKETCH_SIZE`] candidate representatives with Space-Saving counts (an
//! object matching no candidate replaces the weakest one and inherits its
//! count, so any cluster holding more than 1/[`SKETCH_SIZE`] of the objects
//! survives), then a second pass counts every candidate exactly, and a
//! third counts sampled members of the strongest as alternative
//! representatives (a member may take in more of its cluster than the
//! object the sketch met first).
//! Time is O(objects × candidates × object size); memory is
//! O(candidates × object size), whatever the cache's size.

/// Candidates kept by the first pass.
pub const SKETCH_SIZE: usize = 32;
/// Candidates counted exactly in the second pass: all of them. Counting
/// only the four strongest missed the largest cluster when chained types
/// split its first-pass count across candidates (found by the brute-force
/// property test, tests/similarity_vs_brute_force.rs).
pub const FINALISTS: usize = SKETCH_SIZE;
/// Default similarity threshold, in percent.
pub const DEFAULT_PERCENT: u32 = 65;
/// A representative needs this many useful bytes.
const MIN_USEFUL: usize = 4;

/// Whether a byte says something about an object.
pub fn is_useful(b: u8) -> bool {
    !matches!(b, 0x00 | 0xff | 0xbb | 0xcc | 0x5a | 0x6a)
}

/// An object others are compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representative {
    /// Where it was read.
    pub address: u64,
    /// Its bytes.
    pub bytes: Vec<u8>,
    useful: Vec<u32>,
    needed: usize,
}

impl Representative {
    /// `None` when the object has fewer than 4 useful bytes.
    pub fn new(address: u64, bytes: &[u8], percent: u32) -> Option<Representative> {
        let useful: Vec<u32> = bytes.iter().enumerate().filter(|(_, b)| is_useful(**b)).map(|(i, _)| i as u32).collect();
        if useful.len() < MIN_USEFUL {
            return None;
        }
        let needed = (useful.len() * percent as usize).div_ceil(100);
        Some(Representative { address, bytes: bytes.to_vec(), useful, needed })
    }

    /// Whether `other` is similar to this representative.
    pub fn matches(&self, other: &[u8]) -> bool {
        let mut equal = 0usize;
        let mut left = self.useful.len();
        for &i in &self.useful {
            left -= 1;
            if other.get(i as usize) == Some(&self.bytes[i as usize]) {
                equal += 1;
                if equal >= self.needed {
                    return true;
                }
            }
            if equal + left < self.needed {
                return false;
            }
        }
        equal >= self.needed
    }
}

/// First pass: candidate clusters with Space-Saving counts.
#[derive(Debug)]
pub struct ClusterSketch {
    percent: u32,
    candidates: Vec<(Representative, u64)>,
    /// Objects seen.
    pub scanned: u64,
    /// Objects with too few useful bytes to say anything (all zero, say).
    pub featureless: u64,
}

impl ClusterSketch {
    /// A sketch with threshold `percent`.
    pub fn new(percent: u32) -> ClusterSketch {
        ClusterSketch { percent, candidates: Vec::with_capacity(SKETCH_SIZE), scanned: 0, featureless: 0 }
    }

    /// Account one object.
    pub fn observe(&mut self, address: u64, bytes: &[u8]) {
        self.scanned += 1;
        if let Some(c) = self.candidates.iter_mut().find(|(rep, _)| rep.matches(bytes)) {
            c.1 += 1;
            // A member with fewer useful bytes that still matches the
            // representative back is a looser representative of the same
            // cluster: it also takes in the members whose varying bytes
            // (counters, self pointers) the first one held against them.
            if bytes.iter().filter(|b| is_useful(**b)).count() < c.0.useful.len() {
                if let Some(looser) = Representative::new(address, bytes, self.percent).filter(|r| r.matches(&c.0.bytes)) {
                    c.0 = looser;
                }
            }
            return;
        }
        let Some(rep) = Representative::new(address, bytes, self.percent) else {
            self.featureless += 1;
            return;
        };
        if self.candidates.len() < SKETCH_SIZE {
            self.candidates.push((rep, 1));
        } else {
            let weakest = self.candidates.iter_mut().min_by_key(|(_, n)| *n).unwrap();
            *weakest = (rep, weakest.1 + 1);
        }
    }

    /// The strongest candidates, for exact counting.
    pub fn finalists(&self) -> Vec<Representative> {
        let mut c = self.candidates.clone();
        c.sort_by_key(|c| std::cmp::Reverse(c.1));
        c.into_iter().take(FINALISTS).map(|(rep, _)| rep).collect()
    }
}

/// Second pass: exact counts for the finalists, and a sample of each
/// one's members: the representative that takes in the most members is not
/// always the first one the sketch met (chained types, per-object counters
/// and self pointers), so [`ExactCount::alternates`] offers members of the
/// strongest finalists for a third, exact pass.
#[derive(Debug)]
pub struct ExactCount {
    finalists: Vec<(Representative, u64)>,
    members: Vec<Vec<(u64, Vec<u8>)>>,
    scanned: u64,
}

/// Members of a finalist kept as alternative representatives.
const ALTERNATES: usize = 8;
/// Finalists whose members are offered as alternates.
const REFINED: usize = 4;

/// The largest cluster found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCluster {
    /// The representative object.
    pub representative: Representative,
    /// Objects similar to it (itself included).
    pub similar: u64,
    /// Objects compared in the counting pass.
    pub scanned: u64,
}

impl ExactCount {
    /// Count for `finalists`.
    pub fn new(finalists: Vec<Representative>) -> ExactCount {
        let members = vec![Vec::new(); finalists.len()];
        ExactCount { finalists: finalists.into_iter().map(|r| (r, 0)).collect(), members, scanned: 0 }
    }

    /// Account one object at `address` (it may match several finalists).
    pub fn observe(&mut self, address: u64, bytes: &[u8]) {
        self.scanned += 1;
        for ((rep, n), members) in self.finalists.iter_mut().zip(&mut self.members) {
            if rep.matches(bytes) {
                *n += 1;
                // Members 1, 2, 4, 8, …: spread over the cache, bounded.
                if n.is_power_of_two() && members.len() < ALTERNATES {
                    members.push((address, bytes.to_vec()));
                }
            }
        }
    }

    /// Sampled members of the strongest finalists, as representatives for
    /// another exact pass.
    pub fn alternates(&self, percent: u32) -> Vec<Representative> {
        let mut order: Vec<usize> = (0..self.finalists.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.finalists[i].1));
        order.into_iter().take(REFINED).flat_map(|i| &self.members[i]).filter_map(|(a, b)| Representative::new(*a, b, percent)).collect()
    }

    /// Every finalist with similar objects, most first.
    pub fn clusters(self) -> Vec<ObjectCluster> {
        let scanned = self.scanned;
        let mut all: Vec<ObjectCluster> = self
            .finalists
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(representative, similar)| ObjectCluster { representative, similar, scanned })
            .collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.similar));
        all
    }
}

/// The `n` largest distinct clusters among `candidates` (from any number
/// of exact passes): a cluster whose representative resembles one already
/// kept, either way round, is the same cluster seen from another member.
pub fn distinct_largest(mut candidates: Vec<ObjectCluster>, n: usize) -> Vec<ObjectCluster> {
    candidates.sort_by_key(|c| std::cmp::Reverse(c.similar));
    let mut kept: Vec<ObjectCluster> = Vec::new();
    for c in candidates {
        if kept.len() == n {
            break;
        }
        let same =
            kept.iter().any(|k| k.representative.matches(&c.representative.bytes) || c.representative.matches(&k.representative.bytes));
        if !same {
            kept.push(c);
        }
    }
    kept
}

/// A last pass over the distinct clusters: each object counts for the
/// first (largest) cluster it matches only. Similarity is not transitive,
/// so two representatives unlike each other can still share most of their
/// members; counted this way the shares add up to at most 1, and a cluster
/// that is mostly another's members is that cluster seen again.
#[derive(Debug)]
pub struct ExclusiveCount {
    clusters: Vec<ObjectCluster>,
    own: Vec<u64>,
}

impl ExclusiveCount {
    /// Count for `clusters`, largest first (as [`distinct_largest`] gives).
    pub fn new(clusters: Vec<ObjectCluster>) -> ExclusiveCount {
        let own = vec![0; clusters.len()];
        ExclusiveCount { clusters, own }
    }

    /// Account one object.
    pub fn observe(&mut self, bytes: &[u8]) {
        if let Some(i) = self.clusters.iter().position(|c| c.representative.matches(bytes)) {
            self.own[i] += 1;
        }
    }

    /// The largest cluster as counted before; each later one with its own
    /// members only, dropped when fewer than half of its members were its
    /// own.
    pub fn clusters(self) -> Vec<ObjectCluster> {
        self.clusters
            .into_iter()
            .zip(self.own)
            .enumerate()
            .filter_map(|(i, (c, own))| match i {
                0 => Some(c),
                _ if own * 2 < c.similar => None,
                _ => Some(ObjectCluster { similar: own, ..c }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_counts_add_up_and_drop_overlaps() {
        let rep = |address: u64, bytes: &[u8], similar| ObjectCluster {
            representative: Representative::new(address, bytes, 50).unwrap(),
            similar,
            scanned: 10,
        };
        // Objects like "mid" match x's representative as well as their
        // own, so they count for x, the larger.
        let x = b"AAAAAAAAAAAAAAAAAAAA";
        let mid = b"AAAAAAAAAAAAAAAZZZZZ";
        let other = b"QRSTUVWXYZQRSTUVWXYZ";
        let mut count = ExclusiveCount::new(vec![rep(1, x, 6), rep(2, mid, 5), rep(3, other, 2)]);
        for object in [&x[..], mid, mid, mid, x, x, other, other] {
            count.observe(object);
        }
        let view: Vec<(u64, u64)> = count.clusters().iter().map(|c| (c.representative.address, c.similar)).collect();
        // mid's five members were all x's: it is x seen again.
        assert_eq!(view, [(1, 6), (3, 2)]);
    }

    #[test]
    fn distinct_clusters_drop_members_of_a_kept_one() {
        let cluster = |address: u64, bytes: &[u8], similar| ObjectCluster {
            representative: Representative::new(address, bytes, DEFAULT_PERCENT).unwrap(),
            similar,
            scanned: 100,
        };
        let a = b"AAAAAAAAAAAAAAAAAAAA";
        let a2 = b"AAAAAAAAAAAAAAAAAAAB"; // a member of a's cluster
        let b = b"BCDEFGHIJKLMNOPQRSTU";
        let top = distinct_largest(vec![cluster(1, a2, 40), cluster(2, b, 30), cluster(3, a, 50)], 3);
        let view: Vec<(u64, u64)> = top.iter().map(|c| (c.representative.address, c.similar)).collect();
        assert_eq!(view, [(3, 50), (2, 30)]);
        assert_eq!(distinct_largest(vec![cluster(2, b, 30), cluster(3, a, 50)], 1).len(), 1);
    }

    fn object(seed: u64, len: usize) -> Vec<u8> {
        // xorshift noise: distinct objects share ~1/256 of their bytes.
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn the_reference_rule() {
        assert!(!is_useful(0) && !is_useful(0xff) && !is_useful(0x5a) && !is_useful(0x6a));
        assert!(!is_useful(0xbb) && !is_useful(0xcc) && is_useful(0x41) && is_useful(0x88));
        // Fewer than 4 useful bytes: no representative.
        assert!(Representative::new(0, &[0, 0, 1, 2, 3, 0xff], 65).is_none());
        // 20 useful bytes; 13 equal = 65 % -> similar, 12 -> not.
        let a: Vec<u8> = (1..=20).collect();
        let rep = Representative::new(0, &a, 65).unwrap();
        let mut b = a.clone();
        for x in b.iter_mut().take(7) {
            *x = 0x77;
        }
        assert!(rep.matches(&b));
        b[7] = 0x77;
        assert!(!rep.matches(&b));
        // Only A's useful positions count: B's extra bytes do not matter.
        let mut a2 = a.clone();
        a2.extend([0u8; 20]);
        let rep2 = Representative::new(0, &a2, 65).unwrap();
        let mut b2 = a2.clone();
        b2[20..].fill(0x99);
        assert!(rep2.matches(&b2));
    }

    #[test]
    fn finds_a_minority_cluster_among_noise() {
        // 30 % leaked objects (same text, differing pointers), 70 % noise.
        let leaked = |k: u64| {
            let mut o = b"sysak-leak-pattern-0123456789abcdef-sysak-leak".to_vec();
            o.extend_from_slice(&(0xffff_8881_0000_0000u64 + k * 64).to_le_bytes());
            o.extend_from_slice(&object(k, 10));
            o
        };
        let objects: Vec<(u64, Vec<u8>)> =
            (0..10_000u64).map(|k| (k * 64, if k % 10 < 3 { leaked(k) } else { object(k + 1_000_000, 64) })).collect();
        let mut sketch = ClusterSketch::new(DEFAULT_PERCENT);
        for (a, o) in &objects {
            sketch.observe(*a, o);
        }
        let mut exact = ExactCount::new(sketch.finalists());
        for (a, o) in &objects {
            exact.observe(*a, o);
        }
        assert!(!exact.alternates(DEFAULT_PERCENT).is_empty());
        let cluster = exact.clusters().remove(0);
        assert_eq!(cluster.similar, 3000);
        assert_eq!(cluster.scanned, 10_000);
        assert!(cluster.representative.bytes.starts_with(b"sysak-leak-pattern"));
    }

    #[test]
    fn pure_noise_gives_a_small_cluster() {
        let mut sketch = ClusterSketch::new(DEFAULT_PERCENT);
        let objects: Vec<Vec<u8>> = (0..2000u64).map(|k| object(k, 64)).collect();
        for (k, o) in objects.iter().enumerate() {
            sketch.observe(k as u64, o);
        }
        let mut exact = ExactCount::new(sketch.finalists());
        objects.iter().enumerate().for_each(|(k, o)| exact.observe(k as u64, o));
        assert!(exact.clusters().first().map(|c| c.similar).unwrap_or(0) <= 2);
    }
}

//! The two-pass similarity search ([`sysak_kernel::similarity`]) against
//! brute force (every object as a representative, every other compared
//! with it) on generated caches shaped like real ones: pointer-heavy
//! objects (list heads pointing at themselves, back pointers to a parent),
//! chained clusters (each type a mutation of the one before), more than 32
//! recurring types, many medium clusters, objects in any order.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use sysak_kernel::similarity::{distinct_largest, ClusterSketch, ExactCount, Representative, DEFAULT_PERCENT};

/// One generated cache: objects and their addresses.
#[derive(Debug, Clone)]
struct Cache {
    objects: Vec<(u64, Vec<u8>)>,
}

const BASE: u64 = 0xffff_8880_1000_0000;

/// A type: a template plus which 8-byte words are per-object (self
/// pointers, like an empty list_head) and which point at a parent.
#[derive(Debug, Clone)]
struct Type {
    template: Vec<u8>,
    self_words: Vec<usize>,
    parent: Option<u64>,
}

fn make_type(size: usize, seed: &[u8], self_words: usize, parent: bool, from: Option<&Type>, mutate: &[usize]) -> Type {
    let mut template: Vec<u8> = match from {
        Some(t) => t.template.clone(),
        None => seed.iter().cycle().take(size).copied().collect(),
    };
    for &i in mutate {
        template[i % size] = template[i % size].wrapping_add(0x3d) | 1;
    }
    let words = size / 8;
    Type {
        template,
        self_words: (0..self_words.min(words)).map(|k| (k * 3 + 1) % words).collect(),
        parent: parent.then_some(BASE + 0x40_0000 + seed.len() as u64 * 64),
    }
}

fn instantiate(t: &Type, address: u64, serial: u32) -> Vec<u8> {
    let mut b = t.template.clone();
    b[..4].copy_from_slice(&serial.to_le_bytes());
    for &w in &t.self_words {
        b[w * 8..w * 8 + 8].copy_from_slice(&(address + w as u64 * 8).to_le_bytes());
    }
    if let (Some(parent), true) = (t.parent, b.len() >= 16) {
        let at = b.len() - 16;
        b[at..at + 8].copy_from_slice(&parent.to_le_bytes());
    }
    b
}

prop_compose! {
    fn cache(chains: bool)(
        size in prop_oneof![Just(64usize), Just(96), Just(192), Just(256)],
        types in 1usize..48,
        seeds in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 5..40), 48),
        weights in proptest::collection::vec(1u32..14, 48),
        self_words in proptest::collection::vec(0usize..6, 48),
        parents in proptest::collection::vec(any::<bool>(), 48),
        chained in proptest::collection::vec(any::<bool>(), 48),
        mutations in proptest::collection::vec(proptest::collection::vec(0usize..256, 1..40), 48),
        order in any::<u64>(),
    ) -> Cache {
        let mut kinds: Vec<Type> = Vec::new();
        for k in 0..types {
            let from = if chained[k] && chains { kinds.last() } else { None };
            let t = make_type(size, &seeds[k], self_words[k], parents[k], from, &mutations[k]);
            kinds.push(t);
        }
        let mut objects = Vec::new();
        for (k, weight) in weights.iter().enumerate().take(kinds.len()) {
            for n in 0..weight * 3 {
                objects.push((k, n));
            }
        }
        // A deterministic shuffle: allocation order mixes the types.
        let mut state = order | 1;
        for i in (1..objects.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            objects.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let objects = objects
            .into_iter()
            .enumerate()
            .map(|(slot, (k, n))| {
                let address = BASE + (slot * size) as u64;
                (address, instantiate(&kinds[k], address, n))
            })
            .collect();
        Cache { objects }
    }
}

fn brute_force(cache: &Cache) -> u64 {
    cache
        .objects
        .iter()
        .filter_map(|(a, b)| Representative::new(*a, b, DEFAULT_PERCENT))
        .map(|rep| cache.objects.iter().filter(|(_, o)| rep.matches(o)).count() as u64)
        .max()
        .unwrap_or(0)
}

fn three_pass(cache: &Cache) -> u64 {
    let mut sketch = ClusterSketch::new(DEFAULT_PERCENT);
    for (a, b) in &cache.objects {
        sketch.observe(*a, b);
    }
    let mut exact = ExactCount::new(sketch.finalists());
    for (a, b) in &cache.objects {
        exact.observe(*a, b);
    }
    let mut refined = ExactCount::new(exact.alternates(DEFAULT_PERCENT));
    for (a, b) in &cache.objects {
        refined.observe(*a, b);
    }
    let all = [exact.clusters(), refined.clusters()].concat();
    distinct_largest(all, 1).first().map_or(0, |c| c.similar)
}

proptest! {
    // A fixed seed: the same 24 caches every run, so CI judges the
    // algorithm, not the luck of the draw; `ratio_survey` samples afresh.
    #![proptest_config(ProptestConfig {
        cases: 24,
        max_shrink_iters: 64,
        rng_seed: RngSeed::Fixed(0x5ca1ab1e),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Pointer-heavy objects, more than 32 recurring types, many medium
    /// clusters, any order: the three passes find the largest cluster brute
    /// force finds in nearly every cache (a survey of 1000 random caches:
    /// 2 below the optimum, worst 0.907), and never less than 85 % of it.
    #[test]
    fn finds_the_largest_cluster(cache in cache(false)) {
        let (found, best) = (three_pass(&cache), brute_force(&cache));
        prop_assert!(found * 100 >= best * 85, "found {} of {} in {} objects", found, best, cache.objects.len());
    }

    /// Chained clusters (each type a mutation of the one before): the
    /// largest cluster can belong to a "bridge" object that matches several
    /// types, which only trying every object as representative finds
    /// (quadratic). The passes find at least two thirds of it: a survey of
    /// 1000 random caches missed the optimum in 63 (worst 0.698); the
    /// earlier two passes of 4 finalists missed it in 56 of 200 (worst 0.57).
    #[test]
    fn chained_clusters_are_found_nearly_whole(cache in cache(true)) {
        let (found, best) = (three_pass(&cache), brute_force(&cache));
        prop_assert!(found * 3 >= best * 2, "found {} of {} in {} objects", found, best, cache.objects.len());
    }
}

/// How often, and by how much, the passes miss the brute-force optimum on
/// random caches (`cargo test --release --test similarity_vs_brute_force
/// -- --ignored --nocapture`); the numbers in the properties come from it.
#[test]
#[ignore]
fn ratio_survey() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    for chains in [false, true] {
        let mut runner = TestRunner::new(ProptestConfig::default());
        let (mut worst, mut misses, n) = (1.0f64, 0, 1000);
        for _ in 0..n {
            let c = cache(chains).new_tree(&mut runner).unwrap().current();
            let (f, b) = (three_pass(&c), brute_force(&c));
            misses += (f != b) as u32;
            worst = worst.min(f as f64 / b.max(1) as f64);
        }
        eprintln!("chains {chains}: misses {misses}/{n}, worst ratio {worst:.3}");
    }
}

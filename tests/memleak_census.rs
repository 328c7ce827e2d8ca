//! The census: below the thresholds, plain `sysak memleak` says
//! who holds the unreclaimable memory. A generator fills one cache with
//! SysV messages of one pattern; the census must name that cache first,
//! find the messages as its largest cluster, explain their list pointers,
//! and keep its answer while messages come and go under the walk.

mod common;

use common::msgq::{message_cache_of, MessageQueue};
use common::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// 16-byte messages are 64-byte `msg_msg`s: this many fill the cache
/// past the census's per-cache read limit (500 000), so it samples.
const MESSAGES: usize = 640_000;
const TEXT: usize = 16;

fn census_of<'a>(report: &'a Value, cache: &str) -> &'a Value {
    report["census"]
        .as_array()
        .expect("census array")
        .iter()
        .find(|c| c["cache"] == cache)
        .unwrap_or_else(|| panic!("{cache} not in the census: {:#}", report["census"]))
}

#[test]
fn census_names_the_filled_cache_while_it_changes() {
    assert!(is_root(), "needs root");
    let _serial = kernel_lock();
    let cache = message_cache_of("64");
    let kept = MessageQueue::new(MESSAGES * TEXT).expect("msgget");
    kept.send::<TEXT>(MESSAGES, |_, i| b"census-generator"[i]).expect("fill the queue");

    // Messages of the same cache sent and received during the census:
    // slabs change under the walk.
    let churning = Arc::new(AtomicBool::new(true));
    let churn = {
        let churning = churning.clone();
        std::thread::spawn(move || {
            let queue = MessageQueue::new(4096 * TEXT).expect("msgget");
            let mut rounds = 0u64;
            while churning.load(Ordering::Relaxed) {
                queue.send::<TEXT>(4096, |k, i| (k * 31 + i) as u8).expect("churn send");
                assert_eq!(queue.receive::<TEXT>(4096), 4096);
                rounds += 1;
            }
            rounds
        })
    };

    let scratch = Scratch::new("census");
    let out = sysak(&scratch, &[]).args(["memleak", "--format", "json"]).output().unwrap();
    churning.store(false, Ordering::Relaxed);
    let rounds = churn.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "no leak judged below the thresholds: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["verdict"], "none");
    assert!(rounds > 0, "the churn never ran");
    assert!(stderr(&out).contains(&format!("census: scanning {cache}")), "progress: {}", stderr(&out));

    // Ordered by bytes, the generator's cache (≥ 40 MB) comes first.
    assert_eq!(report["census"][0]["cache"], cache.as_str(), "{:#}", report["census"]);
    let c = census_of(&report, &cache);
    assert!(c["bytes"].as_u64().unwrap() >= (MESSAGES * 64) as u64, "{c:#}");
    assert!(c["sample_stride"].as_u64().unwrap() >= 2, "more objects than the read limit are sampled: {c:#}");
    let top = &c["clusters"][0];
    let share = top["share"].as_f64().unwrap();
    assert!(share >= 0.9, "the messages are the cache's cluster: {top:#}");
    let estimate = top["similar_objects_estimate"].as_u64().expect("a sampled cache has an estimate") as f64;
    assert!((0.85..=1.2).contains(&(estimate / MESSAGES as f64)), "estimate {estimate} of {MESSAGES}: {top:#}");
    let shares: f64 = c["clusters"].as_array().unwrap().iter().map(|c| c["share"].as_f64().unwrap()).sum();
    assert!(shares <= 1.0 + 1e-9, "each object counts for one cluster: {c:#}");

    // struct msg_msg starts with its list_head: both words point at
    // other slab objects (the next message, or the queue).
    let words = top["words"].as_array().expect("words");
    for offset in [0, 8] {
        let w = words.iter().find(|w| w["offset"] == offset).unwrap_or_else(|| panic!("no word at {offset}: {words:#?}"));
        assert_eq!(w["kind"], "slab_object", "{w:#}");
    }
    assert!(c.get("dump").is_none(), "no raw kernel memory without --dump");
    assert!(report["census_scan"]["backend"].is_string(), "{:#}", report["census_scan"]);
    assert!(report["vmalloc_callers"].as_array().is_some_and(|v| !v.is_empty()), "this host has vmalloc callers");
    assert!(report["page_residual"]["bytes"].is_u64());
    eprintln!(
        "census: {cache} share {share:.3}, estimate {estimate} of {MESSAGES}, stride {}, {} churn rounds, {:.1} s",
        c["sample_stride"], rounds, report["census_scan"]["elapsed_s"]
    );
    drop(kept);
}

#[test]
fn census_with_dump_and_check() {
    assert!(is_root(), "needs root");
    let _serial = kernel_lock();
    let scratch = Scratch::new("census-dump");
    // --check alone takes no census; --check --census does.
    let plain = sysak(&scratch, &[]).args(["memleak", "--check", "--format", "json"]).output().unwrap();
    assert!(json(&plain).get("census").is_none(), "--check alone is the verdict only");
    let out = sysak(&scratch, &[])
        .args(["memleak", "--check", "--census", "--census-caches", "2", "--dump", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    let census = report["census"].as_array().unwrap();
    assert_eq!(census.len(), 2, "--census-caches 2");
    assert!(census[0]["bytes"].as_u64() >= census[1]["bytes"].as_u64(), "largest first");
    assert!(census[0]["dump"].as_array().is_some_and(|d| !d.is_empty()), "--dump adds the bytes: {:#}", census[0]);
    let bad = sysak(&scratch, &[]).args(["memleak", "--census-caches", "0"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(stderr(&bad).lines().count(), 1, "{}", stderr(&bad));
}

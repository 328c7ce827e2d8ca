//! `sysak slabtop` against procps `slabtop` on the same, live, data.
//!
//! /proc/slabinfo changes between two reads, so each comparison is bracketed
//! by two reads of it: caches whose line did not change in between must
//! render identically (on at least one of several attempts, as a line can
//! change and change back), and the summary must match exactly when nothing at
//! all changed (retried a few times), else within 1 %.

mod common;

use common::msgq::{MessageQueue, MSG_MSG_HEADER_BYTES};
use common::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;

fn slabinfo_lines() -> HashMap<String, String> {
    std::fs::read_to_string("/proc/slabinfo")
        .expect("reading /proc/slabinfo (root?)")
        .lines()
        .skip(2)
        .map(|l| (l.split_whitespace().next().unwrap().to_string(), l.to_string()))
        .collect()
}

/// Cache rows of slabtop text, keyed by name; `extra` trailing columns
/// (sysak's UNRECL and GROWTH) are cut off.
fn rows(text: &str, extra: usize) -> Vec<(String, String)> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("OBJS"))
        .skip(1)
        .map(|l| {
            let mut line = l.trim_end();
            for _ in 0..extra {
                line = line.rsplit_once(' ').map(|(head, _)| head.trim_end()).unwrap();
            }
            let name = line.split_whitespace().last().unwrap().to_string();
            (name, line.to_string())
        })
        .collect()
}

fn summary(text: &str) -> Vec<String> {
    text.lines().take(5).map(String::from).collect()
}

fn procps(args: &[&str]) -> String {
    let out = Command::new("slabtop").args(args).env("LC_ALL", "C").output().expect("procps slabtop");
    assert!(out.status.success());
    stdout(&out)
}

fn ours(args: &[&str]) -> String {
    let scratch = Scratch::new("slabtop");
    let out = sysak(&scratch, &[]).arg("slabtop").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

/// Numbers of the summary lines, for the tolerance comparison.
fn numbers(line: &str) -> Vec<f64> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.')).filter_map(|w| w.parse().ok()).collect()
}

#[test]
fn numbers_equal_procps_on_the_same_data() {
    // Not while the growth test fills a cache in this binary.
    let _lock = kernel_lock();
    assert!(is_root(), "needs root to read /proc/slabinfo");
    let mut exact_summary = false;
    // A cache can change and change back between the bracketing reads
    // (task_struct does, as tests running in parallel spawn processes), so
    // a row that differs once is compared again on the next attempt: it
    // fails only if it never matched.
    let mut matched: BTreeSet<String> = BTreeSet::new();
    let mut differed: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for attempt in 0..10 {
        let before = slabinfo_lines();
        let theirs = procps(&["-o"]);
        let mine = ours(&["-o"]);
        let after = slabinfo_lines();
        assert!(mine.contains("  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME"), "{mine}");

        let their_rows: BTreeMap<_, _> = rows(&theirs, 0).into_iter().collect();
        let my_rows: BTreeMap<_, _> = rows(&mine, 2).into_iter().collect();
        assert_eq!(their_rows.len(), my_rows.len(), "same caches");
        let stable: Vec<&String> = before.keys().filter(|n| after.get(*n) == before.get(*n)).collect();
        assert!(stable.len() * 10 >= before.len() * 8, "too few stable caches: {}", stable.len());
        for name in stable {
            if my_rows.get(name) == their_rows.get(name) {
                matched.insert(name.clone());
            } else {
                differed.insert(name.clone(), (my_rows.get(name).cloned(), their_rows.get(name).cloned()));
            }
        }
        differed.retain(|name, _| !matched.contains(name));
        if before == after {
            assert_eq!(summary(&mine), summary(&theirs), "attempt {attempt}");
            exact_summary = true;
            if differed.is_empty() {
                break;
            }
        }
        for (m, t) in summary(&mine).iter().zip(summary(&theirs).iter()) {
            for (a, b) in numbers(m).iter().zip(numbers(t).iter()) {
                assert!((a - b).abs() <= b.abs() * 0.01 + 0.011, "{m} vs {t}");
            }
        }
    }
    assert!(differed.is_empty(), "rows that never matched procps (ours, theirs): {differed:#?}");
    assert!(matched.len() > 100, "compared only {} caches", matched.len());
    eprintln!("exact summary comparison: {exact_summary}");
}

/// Each sort key orders caches as procps does: by the key's value taken
/// from slabinfo (ties may come in any order in both).
#[test]
fn sort_keys_order_like_procps() {
    let page = 4096u64;
    for key in ["a", "b", "c", "l", "v", "n", "o", "p", "s", "u"] {
        let before = slabinfo_lines();
        let theirs = procps(&["-o", "-s", key]);
        let mine = ours(&["-o", "-s", key]);
        let after = slabinfo_lines();
        let value = |name: &str| -> Option<(u64, String)> {
            let line = before.get(name)?;
            if after.get(name) != Some(line) {
                return None; // changed between reads: no claim about it
            }
            let f: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            // active num objsize objperslab pagesperslab l b s active_slabs num_slabs avail
            let v = match key {
                "a" => f[0],
                "o" => f[1],
                "s" => f[2],
                "b" => f[3],
                "p" => f[4],
                "v" => f[8],
                "l" => f[9],
                "c" => f[9] * f[4] * page,
                "u" => {
                    if f[1] == 0 {
                        0
                    } else {
                        (100.0f32 * (f[0] as f32 / f[1] as f32)) as u64
                    }
                }
                _ => 0,
            };
            Some((v, name.to_string()))
        };
        for (who, text, extra) in [("procps", &theirs, 0), ("sysak", &mine, 2)] {
            let seq: Vec<(u64, String)> = rows(text, extra).iter().filter_map(|(n, _)| value(n)).collect();
            for pair in seq.windows(2) {
                let ok = if key == "n" { pair[0].1 <= pair[1].1 } else { pair[0].0 >= pair[1].0 };
                assert!(ok, "{who} -s {key}: {:?} before {:?}", pair[0], pair[1]);
            }
        }
    }
}

#[test]
fn json_agrees_with_kernel_files() {
    let doc: serde_json::Value = serde_json::from_str(&ours(&["-o", "--format", "json"])).unwrap();
    let caches = doc["caches"].as_array().unwrap();
    let objs: u64 = caches.iter().map(|c| c["objs"].as_u64().unwrap()).sum();
    assert_eq!(doc["summary"]["objs"].as_u64().unwrap(), objs);
    assert_eq!(doc["sort"], "o");
    assert!(doc["interval_s"].is_null());
    let mut checked = 0;
    for cache in caches.iter().take(40) {
        let name = cache["name"].as_str().unwrap();
        let file = format!("/sys/kernel/slab/{name}/reclaim_account");
        if let Ok(text) = std::fs::read_to_string(&file) {
            assert_eq!(cache["unreclaimable"].as_bool().unwrap(), text.trim() == "0", "{name}");
            checked += 1;
        }
        assert!(cache["growth_objs"].is_null());
    }
    assert!(checked > 10, "only {checked} caches had reclaim_account");
}

/// GROWTH over a window in which a real generator adds N slab objects.
#[test]
fn growth_counts_objects_added_during_the_window() {
    let _lock = kernel_lock();
    const TEXT: usize = 200; // msg_msg of 248 bytes: a 256-byte cache
    const N: usize = 20_000;
    let candidates = ["msg_msg-256", "kmalloc-cg-256", "kmalloc-256"];
    let cache = candidates.iter().find(|c| slabinfo_lines().contains_key(**c)).expect("a 256-byte cache for SysV messages");
    let free_before = {
        let line = &slabinfo_lines()[*cache];
        let f: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        f[1] - f[0]
    };
    let scratch = Scratch::new("growth");
    let child =
        sysak(&scratch, &[]).args(["slabtop", "-o", "-d", "3", "--format", "json"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let queue = MessageQueue::new(N * (TEXT + MSG_MSG_HEADER_BYTES) * 2).unwrap();
    queue.send::<TEXT>(N, |k, i| (k + i) as u8).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(queue);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["interval_s"], 3);
    let row = doc["caches"].as_array().unwrap().iter().find(|c| c["name"] == *cache).unwrap().clone();
    let growth = row["growth_objs"].as_i64().unwrap();
    let low = N as i64 - free_before as i64 - 256;
    assert!(growth >= low && growth <= N as i64 + 2_000, "{cache}: growth {growth}, expected ~{N} (free before {free_before})");
}

#[test]
fn usage_errors_exit_2() {
    let scratch = Scratch::new("usage");
    let out = sysak(&scratch, &[]).args(["slabtop", "-s", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown sort key \"x\": use one of abclvnopsu"), "{}", stderr(&out));
    let out = sysak(&scratch, &[]).args(["slabtop", "-d", "0", "-o"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Not a terminal, --delay without --once: say what to do instead.
    let out = sysak(&scratch, &[]).args(["slabtop", "-d", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("use --once --delay SECS"), "{}", stderr(&out));
}

#[test]
fn unprivileged_run_says_it_needs_root() {
    let scratch = Scratch::new("nonroot");
    let out = run_as_nobody(&sysak(&scratch, &[]), &["slabtop", "-o"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out), "sysak slabtop: slabtop needs root: run it as root (sudo sysak slabtop ...)\n");
}

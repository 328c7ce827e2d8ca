//! History, growth verdicts and fleet metrics on this kernel
//! and with the real Prometheus tools: a cache grown between records is
//! judged a slab leak below the thresholds and named; the metrics pass
//! `promtool check metrics` and are served by a real node_exporter; the
//! alert rules pass `promtool test rules`; bad history files are refused.

mod common;

use common::msgq::{message_cache_of, MessageQueue};
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// 900-byte texts: 948-byte msg_msg objects, the 1k bucket.
const TEXT: usize = 900;
const PER_STEP: usize = 4000;
const STEPS: usize = 5;
const RATE: &str = "256K/s";

fn record(scratch: &Scratch, history: &Path) {
    let out = sysak(scratch, &[]).args(["memleak", "--record", "--history"]).arg(history).args(["--format", "json"]).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert!(stderr(&out).contains("recorded sample"), "{}", stderr(&out));
}

/// A history in which the message cache grows by ~4 MB a second.
fn grown_history(scratch: &Scratch, queue: &MessageQueue) -> std::path::PathBuf {
    let history = scratch.path().join("history.jsonl");
    for step in 0..STEPS {
        queue.send::<TEXT>(PER_STEP, |k, i| ((k + i) % 7) as u8 + b'a').expect("grow the queue");
        record(scratch, &history);
        if step + 1 < STEPS {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    history
}

fn check(scratch: &Scratch, history: &Path, extra: &[&str]) -> std::process::Output {
    sysak(scratch, &[])
        .args(["memleak", "--check", "--history"])
        .arg(history)
        .args(["--history-min-rate", RATE])
        .args(extra)
        .output()
        .unwrap()
}

/// GET http://addr/metrics.
fn scrape(addr: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

struct Exporter(std::process::Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn growth_between_records_is_a_slab_leak_and_reaches_prometheus() {
    assert!(is_root(), "needs root");
    let _serial = kernel_lock();
    let scratch = Scratch::new("history");
    let cache = message_cache_of("1k");
    let queue = MessageQueue::new(STEPS * PER_STEP * TEXT).expect("msgget");
    let history = grown_history(&scratch, &queue);

    let out = check(&scratch, &history, &["--format", "json"]);
    let report = json(&out);
    assert_eq!((report["verdict"].as_str(), report["reason"].as_str()), (Some("slab"), Some("history")), "{:#}", report["history"]);
    assert_eq!(out.status.code(), Some(1), "a judged leak exits 1");
    let h = &report["history"];
    assert_eq!(h["samples"], STEPS);
    let slab = h["categories"].as_array().unwrap().iter().find(|c| c["name"] == "slab_unreclaimable").unwrap();
    assert!(slab["growing"].as_bool().unwrap() && slab["r2"].as_f64().unwrap() >= 0.8, "{slab:#}");
    assert_eq!(h["growing_caches"][0]["name"], cache.as_str(), "{:#}", h["growing_caches"]);
    let grown = h["growing_caches"][0]["growth_bytes"].as_i64().unwrap();
    assert!(grown >= ((STEPS - 1) * PER_STEP * 1024 * 9 / 10) as i64, "grown {grown}");

    // The table names the cache beside its sparkline.
    let table = stdout(&check(&scratch, &history, &[]));
    assert!(table.lines().any(|l| l.contains(&cache) && l.contains("growing") && l.contains('█')), "{table}");

    // Prometheus: valid for promtool, with the verdict and the cache.
    let prom = check(&scratch, &history, &["--format", "prometheus"]);
    assert_eq!(prom.status.code(), Some(1));
    let text = stdout(&prom);
    assert!(text.contains("sysak_memleak_leak 1\n"), "{text}");
    assert!(text.contains("sysak_memleak_verdict{kind=\"slab\",reason=\"history\"} 1\n"), "{text}");
    assert!(text.contains(&format!("sysak_memleak_cache_growth_bytes_per_second{{cache=\"{cache}\"}} ")), "{text}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let verdict = promtool.wait_with_output().unwrap();
    assert!(
        verdict.status.success() && verdict.stdout.is_empty() && verdict.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&verdict.stdout),
        String::from_utf8_lossy(&verdict.stderr)
    );

    // node_exporter's textfile collector serves what --textfile wrote.
    let dir = scratch.dir("textfile");
    let prom_file = dir.join("sysak.prom");
    let out = check(&scratch, &history, &["--textfile", prom_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(std::fs::read_dir(&dir).unwrap().count() == 1, "only sysak.prom is left (no temporary file)");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let _exporter = Exporter(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address={addr}"))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter (Debian package)"),
    );
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(text) = scrape(&addr) {
            body = text;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(body.contains("\nsysak_memleak_leak 1\n"), "node_exporter did not serve the metrics: {body}");
    assert!(body.contains(&format!("sysak_memleak_cache_growth_bytes_per_second{{cache=\"{cache}\"}}")), "{body}");
    assert!(body.contains("\nnode_textfile_scrape_error 0\n"), "{body}");

    // The picture.
    let svg = scratch.path().join("growth.svg");
    let out = check(&scratch, &history, &["--plot", svg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains(&cache) && drawn.contains("slab_unreclaimable"), "{}", &drawn[..200]);
    let png = check(&scratch, &history, &["--plot", "/tmp/x.png"]);
    assert_eq!((png.status.code(), stderr(&png).lines().count()), (Some(2), 1), "{}", stderr(&png));

    // Plain `sysak memleak` traces the cache the history names.
    let traced = sysak(&scratch, &[])
        .args(["memleak", "--history"])
        .arg(&history)
        .args(["--history-min-rate", RATE, "-i", "2", "--format", "json"])
        .output()
        .unwrap();
    let t = json(&traced);
    assert_eq!(t["cache"], cache.as_str(), "{}", stderr(&traced));
    assert!(t["cache_reason"].as_str().unwrap().contains("history's fastest-growing cache"), "{}", t["cache_reason"]);
    drop(queue);
}

#[test]
fn concurrent_recorders_lose_no_sample() {
    assert!(is_root(), "needs root");
    let scratch = Scratch::new("history-race");
    let history = scratch.path().join("h.jsonl");
    let children: Vec<_> = (0..6)
        .map(|_| {
            sysak(&scratch, &[])
                .args(["memleak", "--record", "--history"])
                .arg(&history)
                .args(["--format", "json"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(matches!(c.wait().unwrap().code(), Some(0 | 1)));
    }
    let text = std::fs::read_to_string(&history).unwrap();
    assert_eq!(text.lines().count(), 1 + 6, "a header and six samples: {text}");
    let out = sysak(&scratch, &[]).args(["memleak", "--check", "--history"]).arg(&history).args(["--format", "json"]).output().unwrap();
    assert_eq!(json(&out)["history"]["samples"], 6);
}

#[test]
fn bad_history_files_are_refused_by_name() {
    assert!(is_root(), "needs root");
    let scratch = Scratch::new("history-bad");
    let history = scratch.path().join("h.jsonl");
    record(&scratch, &history);
    let good = std::fs::read_to_string(&history).unwrap();
    let refuse = |text: &str, expected: &str| {
        std::fs::write(&history, text).unwrap();
        for args in [&["--check"][..], &["--record"][..]] {
            let out = sysak(&scratch, &[]).arg("memleak").args(args).arg("--history").arg(&history).output().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.lines().count() == 1 && err.contains(history.to_str().unwrap()) && err.contains(expected), "{args:?}: {err}");
            assert_eq!(std::fs::read_to_string(&history).unwrap(), text, "{args:?}: a refused file is left as it was");
        }
    };
    let header = good.lines().next().unwrap();
    refuse(&format!("{header}\nnot json\n{}", good.lines().nth(1).unwrap()), "corrupt sample");
    refuse(&good.replacen(&host_of(header), "some-other-host", 1), "a history of host some-other-host");
    refuse(&good.replacen("\"sysak_history\":1", "\"sysak_history\":99", 1), "newer than this sysak's");
    refuse("PK\u{3}\u{4} a zip file\n", "not a sysak history");
    let missing = sysak(&scratch, &[]).args(["memleak", "--check", "--history", "/nonexistent/h.jsonl"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("/nonexistent/h.jsonl"));
    let bad_rate = sysak(&scratch, &[]).args(["memleak", "--check", "--history-min-rate", "5M/week"]).output().unwrap();
    assert_eq!(bad_rate.status.code(), Some(2));
    assert!(stderr(&bad_rate).contains("s, h or day"), "{}", stderr(&bad_rate));
    let prom_trace = sysak(&scratch, &[]).args(["memleak", "-t", "slab", "--format", "prometheus"]).output().unwrap();
    assert_eq!(prom_trace.status.code(), Some(2), "{}", stderr(&prom_trace));
}

fn host_of(header: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(header).unwrap();
    v["host"].as_str().unwrap().to_string()
}

#[test]
fn alert_rules_pass_promtool() {
    let root = repo_root();
    let check = Command::new("promtool").args(["check", "rules"]).arg(root.join("packaging/prometheus/sysak.rules.yml")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let test = Command::new("promtool")
        .args(["test", "rules", "sysak.rules.test.yml"])
        .current_dir(root.join("tests/prometheus"))
        .output()
        .unwrap();
    assert!(test.status.success(), "{}{}", String::from_utf8_lossy(&test.stdout), String::from_utf8_lossy(&test.stderr));
}

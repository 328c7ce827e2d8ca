//! The history file: JSON Lines, one header then one sample per line.
//!
//! Crash-safe by construction: a sample is appended with one `write(2)` of
//! a whole line under an exclusive lock (`FILE.lock`, so two recorders at
//! once never interleave or lose a sample); a writer killed mid-line
//! leaves a torn last line without its newline, which readers ignore and
//! the next writer cuts off before appending. Thinning rewrites the file
//! into `FILE.tmp` and renames it over the old one, so a reader sees the
//! old or the new file, never half of one. A file that is not a sysak
//! history, is of another host or of a newer format, or has a bad line
//! in the middle is an error naming it, and is never replaced.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Format of the lines this sysak writes.
pub const FORMAT_VERSION: u32 = 1;
/// The file is kept under this size whatever the uptime.
pub const MAX_BYTES: usize = 1 << 20;
/// Where `--record` writes unless told otherwise.
pub const DEFAULT_PATH: &str = "/var/lib/sysak/memleak-history.jsonl";

/// The first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    /// Format version; its presence says "this is a sysak history".
    sysak_history: u32,
    /// The host it belongs to (/etc/machine-id, else the hostname).
    host: String,
}

/// One recorded sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Wall-clock time, Unix seconds (shown; growth uses `uptime_s`).
    pub time: u64,
    /// /proc/sys/kernel/random/boot_id: a new one starts a new series.
    pub boot_id: String,
    /// Seconds since boot (/proc/uptime): monotonic within a boot, so a
    /// clock jump cannot make growth.
    pub uptime_s: f64,
    /// The check's categories and the residual's lines, bytes.
    pub categories: BTreeMap<String, u64>,
    /// Slab caches: name → [bytes, objects in use].
    pub caches: BTreeMap<String, [u64; 2]>,
}

/// What was read from a history file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Samples, oldest first.
    pub samples: Vec<Sample>,
    /// A torn last line (a writer killed mid-write) was ignored.
    pub torn_tail: bool,
}

/// A history that cannot be used, with the file's name in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError(pub String);

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HistoryError {}

/// This host's identity for the header.
pub fn host_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// Parse a history file's text for `host`. Returns the samples and the
/// byte length of the valid part (everything before a torn last line).
pub fn parse(text: &str, path: &Path, host: &str) -> Result<(History, usize), HistoryError> {
    let name = path.display();
    let mut history = History::default();
    let mut valid = 0;
    let mut lines = text.split_inclusive('\n').enumerate().peekable();
    let Some((_, first)) = lines.next() else {
        return Err(HistoryError(format!("{name}: empty, not a sysak history (remove it, or give another --history)")));
    };
    let header: Header = serde_json::from_str(first.trim_end())
        .map_err(|_| HistoryError(format!("{name}: not a sysak history (its first line is no sysak_history header)")))?;
    if header.sysak_history > FORMAT_VERSION {
        return Err(HistoryError(format!(
            "{name}: history format {} is newer than this sysak's ({FORMAT_VERSION}): upgrade sysak to read it",
            header.sysak_history
        )));
    }
    if header.host != host {
        return Err(HistoryError(format!("{name}: a history of host {}, not of this host ({host})", header.host)));
    }
    if !first.ends_with('\n') {
        return Err(HistoryError(format!("{name}: the header line is torn (a writer was killed while creating it)")));
    }
    valid += first.len();
    while let Some((i, line)) = lines.next() {
        let last = lines.peek().is_none();
        if last && !line.ends_with('\n') {
            history.torn_tail = true;
            break;
        }
        let sample: Sample = serde_json::from_str(line.trim_end())
            .map_err(|e| HistoryError(format!("{name}:{}: corrupt sample ({e}); the file was not changed", i + 1)))?;
        history.samples.push(sample);
        valid += line.len();
    }
    Ok((history, valid))
}

/// Read `path` for this host.
pub fn load(path: &Path) -> Result<History, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| HistoryError(format!("{}: {e}", path.display())))?;
    Ok(parse(&text, path, &host_id())?.0)
}

/// An exclusive lock on `FILE.lock`, held until dropped.
struct Lock(#[allow(dead_code)] File);

fn lock(path: &Path) -> Result<Lock, HistoryError> {
    let lock_path = with_suffix(path, ".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| HistoryError(format!("{}: {e}", lock_path.display())))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(HistoryError(format!("{}: {}", lock_path.display(), std::io::Error::last_os_error())));
    }
    Ok(Lock(file))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn line_of<T: Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).expect("history lines serialize");
    line.push('\n');
    line
}

/// Write `samples` (with the header) to `path` atomically: a temporary
/// file in the same directory, synced, renamed over the old one.
fn rewrite(path: &Path, host: &str, samples: &[Sample]) -> Result<(), HistoryError> {
    let tmp = with_suffix(path, ".tmp");
    let io = |e: std::io::Error| HistoryError(format!("{}: {e}", tmp.display()));
    let mut text = line_of(&Header { sysak_history: FORMAT_VERSION, host: host.to_string() });
    for s in samples {
        text.push_str(&line_of(s));
    }
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| HistoryError(format!("{}: {e}", path.display())))
}

/// Drop samples until the file fits in `budget` bytes: older boots first,
/// then every other sample of the older half of the current boot (so
/// repeated thinning keeps recent samples dense and old ones sparse; the
/// first sample of the boot is kept, for the span).
pub fn thin(samples: &mut Vec<Sample>, budget: usize) {
    let mut kept: Vec<(Sample, usize)> = samples
        .drain(..)
        .map(|s| {
            let bytes = line_of(&s).len();
            (s, bytes)
        })
        .collect();
    let mut size: usize = kept.iter().map(|k| k.1).sum();
    while size > budget && kept.len() > 2 {
        let current = kept.last().map(|k| k.0.boot_id.clone()).unwrap_or_default();
        let first_boot = kept[0].0.boot_id.clone();
        let half = kept.len() / 2;
        let mut i = 0;
        kept.retain(|(s, n)| {
            i += 1;
            // Older boots go first; then, in this boot, every other sample
            // of the older half (the first kept).
            let keep = if first_boot != current { s.boot_id != first_boot } else { i == 1 || i > half || i % 2 == 1 };
            if !keep {
                size -= n;
            }
            keep
        });
    }
    samples.extend(kept.into_iter().map(|k| k.0));
}

/// Append `sample` to `path` (created with its directory when missing),
/// thinning the file when it would exceed [`MAX_BYTES`]. Returns how many
/// samples the file holds now.
pub fn append(path: &Path, sample: &Sample) -> Result<usize, HistoryError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| HistoryError(format!("{}: {e}", dir.display())))?;
    }
    let _lock = lock(path)?;
    let host = host_id();
    let line = line_of(sample);
    let mut file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            rewrite(path, &host, std::slice::from_ref(sample))?;
            return Ok(1);
        }
        Err(e) => return Err(HistoryError(format!("{}: {e}", path.display()))),
    };
    let io = |e: std::io::Error| HistoryError(format!("{}: {e}", path.display()));
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|_| HistoryError(format!("{}: not a sysak history (not text)", path.display())))?;
    let (mut history, valid) = parse(&text, path, &host)?;
    if valid + line.len() > MAX_BYTES {
        history.samples.push(sample.clone());
        thin(&mut history.samples, MAX_BYTES * 3 / 4);
        rewrite(path, &host, &history.samples)?;
        return Ok(history.samples.len());
    }
    if history.torn_tail {
        // A killed writer's half line: cut it off, then append.
        file.set_len(valid as u64).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
    }
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)?;
    Ok(history.samples.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(boot: &str, uptime: f64, slab: u64) -> Sample {
        Sample {
            time: 1_700_000_000 + uptime as u64,
            boot_id: boot.into(),
            uptime_s: uptime,
            categories: [("slab_unreclaimable".to_string(), slab)].into(),
            caches: [("kmalloc-64".to_string(), [slab, slab / 64])].into(),
        }
    }

    fn text(host: &str, samples: &[Sample]) -> String {
        let mut t = line_of(&Header { sysak_history: FORMAT_VERSION, host: host.into() });
        for s in samples {
            t.push_str(&line_of(s));
        }
        t
    }

    #[test]
    fn torn_last_line_is_ignored_and_cut() {
        let dir = std::env::temp_dir().join(format!("sysak-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("h.jsonl");
        append(&path, &sample("a", 10.0, 100)).unwrap();
        append(&path, &sample("a", 20.0, 200)).unwrap();
        // A writer killed mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"time":17000,"boot_id":"a","upt"#).unwrap();
        let h = load(&path).unwrap();
        assert_eq!((h.samples.len(), h.torn_tail), (2, true));
        assert_eq!(append(&path, &sample("a", 30.0, 300)).unwrap(), 3);
        let h = load(&path).unwrap();
        assert_eq!((h.samples.len(), h.torn_tail), (3, false));
        assert_eq!(h.samples[2].uptime_s, 30.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn foreign_newer_and_corrupt_files_are_refused_by_name() {
        let p = Path::new("/x/h.jsonl");
        let err = |t: &str| parse(t, p, "me").unwrap_err().0;
        assert!(err("").contains("/x/h.jsonl: empty"));
        assert!(err("hello\n").contains("not a sysak history"));
        assert!(err(&text("other", &[])).contains("a history of host other, not of this host (me)"));
        assert!(err("{\"sysak_history\":9,\"host\":\"me\"}\n").contains("format 9 is newer"));
        let mut t = text("me", &[sample("a", 1.0, 1), sample("a", 2.0, 2)]);
        t = t.replacen("\"boot_id\":\"a\",\"uptime_s\":2.0", "\"boot_id\":7", 1);
        assert!(err(&t).starts_with("/x/h.jsonl:3: corrupt sample"), "{}", err(&t));
    }

    #[test]
    fn thinning_keeps_the_file_bounded_recent_dense_and_the_boot_start() {
        let mut samples: Vec<Sample> = (0..50).map(|i| sample("old", i as f64, i)).collect();
        samples.extend((0..5000).map(|i| sample("now", i as f64 * 3600.0, 1000 + i)));
        let budget = 64 << 10;
        thin(&mut samples, budget);
        let size: usize = samples.iter().map(|s| line_of(s).len()).sum();
        assert!(size <= budget, "{size} > {budget}");
        assert!(samples.iter().all(|s| s.boot_id == "now"), "older boots go first");
        assert_eq!(samples[0].uptime_s, 0.0, "the boot's first sample is kept");
        assert_eq!(samples.last().unwrap().uptime_s, 4999.0 * 3600.0, "the newest is kept");
        let gaps: Vec<f64> = samples.windows(2).map(|w| w[1].uptime_s - w[0].uptime_s).collect();
        assert!(gaps.last().unwrap() < &gaps[1], "recent samples are denser than old ones: {gaps:?}");
    }

    #[test]
    fn append_keeps_the_file_under_the_bound() {
        let dir = std::env::temp_dir().join(format!("sysak-history-bound-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("h.jsonl");
        let mut big = sample("a", 0.0, 0);
        big.caches = (0..300).map(|i| (format!("cache-{i}"), [i * 4096, i])).collect();
        for i in 0..250 {
            append(&path, &Sample { uptime_s: i as f64, ..big.clone() }).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() as usize <= MAX_BYTES);
        }
        let h = load(&path).unwrap();
        assert_eq!(h.samples.last().unwrap().uptime_s, 249.0);
        assert!(h.samples.len() > 50, "thinning keeps a useful series: {}", h.samples.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

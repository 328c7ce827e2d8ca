//! Options from the command line, then `[memleak]` in the configuration,
//! then built-in defaults — in that order of precedence.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgMatches;
use serde::Deserialize;
use sysak_cli::config::Config;
use sysak_cli::output::parse_bytes;
use sysak_cli::tool::UsageError;
use sysak_cli::tracer::TracerChoice;
use sysak_kernel::procfs::ProcFs;

use crate::check::{self, CheckReport, Thresholds, Usage};
use crate::scan::ScanOptions;
use sysak_kernel::kmem::BackendChoice;
use sysak_kernel::trace::window::Window;

/// `[memleak]` in /etc/sysak/sysak.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemleakConfig {
    /// `abs_threshold = "6G"`.
    pub abs_threshold: Option<String>,
    /// `pct_threshold = 10.0`.
    pub pct_threshold: Option<f64>,
    /// `min_threshold = "1.5G"`.
    pub min_threshold: Option<String>,
    /// `trend_min_rate = "256K"` (per second; or "20G/day").
    pub trend_min_rate: Option<String>,
    /// `interval = 60`: trace window, seconds.
    pub interval: Option<u64>,
    /// `free_only_percent = 20`.
    pub free_only_percent: Option<u32>,
    /// `max_tracked = 1000000`.
    pub max_tracked: Option<usize>,
    /// `census_caches = 5`: caches a census scans.
    pub census_caches: Option<usize>,
    /// `history = "/var/lib/sysak/memleak-history.jsonl"`.
    pub history: Option<String>,
    /// `history_min_rate = "1M/day"`: history growth that counts.
    pub history_min_rate: Option<String>,
}

/// Resolved options.
#[derive(Debug)]
pub struct Options {
    pub check_only: bool,
    pub thresholds: Thresholds,
    pub trend_window: Option<Duration>,
    pub trend_min_rate: u64,
    /// `-t` other than auto.
    pub trace_type: Option<crate::check::Kind>,
    pub cache: Option<String>,
    pub window: Window,
    pub stacks: bool,
    pub top: usize,
    pub max_tracked: usize,
    pub scan: ScanOptions,
    pub tracer: TracerChoice,
    /// `--census` (plain `sysak memleak` takes one when nothing leaks).
    pub census: bool,
    pub census_caches: usize,
    /// `--dump`: raw object bytes in JSON too.
    pub dump: bool,
    /// `--record`: append a sample to the history first.
    pub record: bool,
    /// The history file: `--history`, the configuration, or the default.
    pub history: PathBuf,
    /// Whether `--history` named it (then it must exist).
    pub history_named: bool,
    /// Growth over the history that counts, bytes per second.
    pub history_min_rate: f64,
    /// `--textfile FILE`: the metrics, written atomically.
    pub textfile: Option<PathBuf>,
    /// `--plot FILE.svg`.
    pub plot: Option<PathBuf>,
    /// Why the traced cache is the one in `cache`, when not given with -n
    /// (the history names it).
    pub cache_reason: Option<String>,
}

/// A rate: `SIZE` or `SIZE/s` per second, `SIZE/h`, `SIZE/day` (or `/d`).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (size, per) = match text.split_once('/') {
        Some((size, unit)) => (
            size,
            match unit {
                "s" => 1.0,
                "h" => 3600.0,
                "d" | "day" => 86_400.0,
                _ => return Err(format!("'{text}': the unit after / is s, h or day")),
            },
        ),
        None => (text, 1.0),
    };
    parse_bytes(size).map(|b| b as f64 / per).map_err(|e| format!("'{text}': {e}"))
}

fn size(flag: &str, cli: Option<&String>, config: Option<&String>, default: u64) -> anyhow::Result<u64> {
    match cli.or(config) {
        Some(text) => parse_bytes(text).map_err(|e| UsageError(format!("{flag}: {e}")).into()),
        None => Ok(default),
    }
}

impl Options {
    pub fn resolve(m: &ArgMatches, config: &Config) -> anyhow::Result<Options> {
        let file: MemleakConfig = config.tool_section("memleak").map_err(|e| UsageError(e.0))?;
        let defaults = Thresholds::default();
        let percent = m.get_one::<f64>("pct-threshold").copied().or(file.pct_threshold).unwrap_or(defaults.percent);
        if !(0.0..=100.0).contains(&percent) {
            return Err(UsageError(format!("--pct-threshold {percent}: use a percentage from 0 to 100")).into());
        }
        let interval = m.get_one::<u64>("interval").copied().or(file.interval).unwrap_or(60);
        let free_only_percent = m.get_one::<u32>("free-only").copied().or(file.free_only_percent).unwrap_or(20);
        if free_only_percent > 90 {
            return Err(UsageError(format!("free_only_percent {free_only_percent}: use 0 to 90")).into());
        }
        let census_caches = m.get_one::<usize>("census-caches").copied().or(file.census_caches).unwrap_or(crate::census::DEFAULT_CACHES);
        if !(1..=50).contains(&census_caches) {
            return Err(UsageError(format!("census_caches {census_caches}: use 1 to 50")).into());
        }
        // Named on the command line, the history must exist; from the
        // configuration it is only where the default lives.
        let history_flag = m.get_one::<String>("history");
        let history_min_rate = match m.get_one::<String>("history-min-rate").or(file.history_min_rate.as_ref()) {
            Some(text) => parse_rate(text).map_err(|e| UsageError(format!("--history-min-rate {e}")))?,
            None => 1e6 / 86_400.0,
        };
        Ok(Options {
            record: m.get_flag("record"),
            history: history_flag.or(file.history.as_ref()).map(PathBuf::from).unwrap_or_else(|| crate::history::DEFAULT_PATH.into()),
            history_named: history_flag.is_some(),
            history_min_rate,
            textfile: m.get_one::<String>("textfile").map(PathBuf::from),
            plot: m.get_one::<String>("plot").map(PathBuf::from),
            cache_reason: None,
            census: m.get_flag("census"),
            census_caches,
            dump: m.get_flag("dump"),
            check_only: m.get_flag("check"),
            trace_type: match m.get_one::<String>("type").map(String::as_str) {
                Some("slab") => Some(crate::check::Kind::Slab),
                Some("page") => Some(crate::check::Kind::Page),
                Some("vmalloc") => Some(crate::check::Kind::Vmalloc),
                _ => None, // auto: the check decides
            },
            cache: m.get_one::<String>("cache").cloned(),
            window: Window { total: Duration::from_secs(interval.max(1)), free_only_percent },
            stacks: m.get_flag("stacks"),
            top: m.get_one::<usize>("top").copied().unwrap_or(20),
            max_tracked: m.get_one::<u64>("max-tracked").map(|n| *n as usize).or(file.max_tracked).unwrap_or(1_000_000),
            thresholds: Thresholds {
                absolute_bytes: size("--abs-threshold", m.get_one("abs-threshold"), file.abs_threshold.as_ref(), defaults.absolute_bytes)?,
                percent,
                min_bytes: size("--min-threshold", m.get_one("min-threshold"), file.min_threshold.as_ref(), defaults.min_bytes)?,
            },
            tracer: TracerChoice::from_matches(m),
            scan: ScanOptions {
                backend: match m.get_one::<String>("backend").map(String::as_str) {
                    Some("kcore") => BackendChoice::Kcore,
                    Some("bpf") => BackendChoice::Bpf,
                    Some("none") => BackendChoice::None,
                    _ => BackendChoice::Auto,
                },
                btf: m.get_one::<String>("btf").map(Into::into).unwrap_or_else(|| "/sys/kernel/btf/vmlinux".into()),
                system_map: m.get_one::<String>("system-map").map(Into::into),
                percent: m.get_one::<u32>("similarity").copied().unwrap_or(sysak_kernel::similarity::DEFAULT_PERCENT),
            },
            trend_window: m.get_one::<u64>("trend").map(|s| Duration::from_secs(*s)),
            trend_min_rate: match m.get_one::<String>("trend-min-rate").or(file.trend_min_rate.as_ref()) {
                Some(text) => parse_rate(text).map_err(|e| UsageError(format!("--trend-min-rate {e}")))?.ceil() as u64,
                None => 256 << 10,
            },
        })
    }

    /// What a census counts.
    pub fn census_options(&self) -> crate::census::CensusOptions {
        crate::census::CensusOptions { caches: self.census_caches, percent: self.scan.percent }
    }

    /// The check, with the trend when asked for, and the history when
    /// one was named or the default one exists.
    pub fn run_check(&self, procfs: &ProcFs) -> anyhow::Result<CheckReport> {
        let trend = match self.trend_window {
            Some(window) => {
                let interval = Duration::from_secs((window.as_secs() / 30).max(1));
                Some(check::sample_trend(procfs, window, interval, self.trend_min_rate)?)
            }
            None => None,
        };
        let report = check::assess(&Usage::measure(procfs)?, self.thresholds, trend);
        if !self.history_named && !self.history.exists() {
            return Ok(report);
        }
        let history = crate::history::analyse(procfs, &self.history, self.history_min_rate).map_err(|e| UsageError(e.to_string()))?;
        Ok(check::with_history(report, history))
    }
}

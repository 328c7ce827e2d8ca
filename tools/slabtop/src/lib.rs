//! `sysak slabtop`: kernel slab caches, procps-compatible, with more.
//!
//! Same data, columns, sort keys and summary as procps-ng `slabtop`, plus:
//! an UNRECL column (caches whose memory is SUnreclaim, the ones a slab leak
//! grows), a GROWTH column (objects gained since the previous refresh), and
//! `--format json`. Reads `/proc/slabinfo` (root only) and
//! `/sys/kernel/slab/<cache>/reclaim_account`.

#![deny(missing_docs)]

pub mod render;
pub mod report;
mod terminal;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use sysak_cli::output::{self, Format};
use sysak_cli::tool::{self, Needs, Outcome, Tool, UsageError};
use sysak_kernel::procfs::ProcFs;

use report::{SortKey, SORT_KEYS};

/// procps' default refresh delay.
const DEFAULT_DELAY_S: u64 = 3;

/// The tool's entry in sysak's table.
pub fn tool() -> Tool {
    Tool {
        name: "slabtop",
        category: "memory",
        summary: "kernel slab caches, live (procps slabtop, plus unreclaimable and growth)",
        experimental: false,
        needs: Needs { root: true, files: &[("/proc/slabinfo", "slab statistics (CONFIG_SLUB_DEBUG or CONFIG_SLAB)")], offline_flag: None },
        command,
        run,
    }
}

/// Argument definitions.
pub fn command() -> Command {
    let keys: String = SORT_KEYS.iter().map(|(letter, _, what)| format!("  {letter}: sort by {what}\n")).collect();
    Command::new("slabtop")
        .about("Display kernel slab cache information, like procps slabtop")
        .long_about(
            "Display kernel slab cache information in real time, with procps slabtop's \
             columns and sort keys, plus UNRECL (the cache's memory is unreclaimable: \
             SUnreclaim in /proc/meminfo) and GROWTH (objects gained since the previous \
             refresh).\n\nIn a terminal the display refreshes every DELAY seconds; keys: \
             q quits, a sort letter re-sorts. When stdout is not a terminal, or with \
             --format json, it prints once. With --once and --delay it samples twice, \
             DELAY seconds apart, and prints once with GROWTH filled in.",
        )
        .arg(Arg::new("once").short('o').long("once").action(ArgAction::SetTrue).help("Display once, then exit"))
        .arg(
            Arg::new("sort")
                .short('s')
                .long("sort")
                .value_name("CHAR")
                .value_parser(parse_sort_key)
                .help("Sort criteria, one of the letters below (default o)"),
        )
        .arg(
            Arg::new("delay")
                .short('d')
                .long("delay")
                .value_name("SECS")
                .value_parser(value_parser!(u64).range(1..))
                .help("Seconds between refreshes (default 3)"),
        )
        .arg(output::format_arg())
        .after_help(format!(
            "Sort criteria:\n{keys}\nExamples:\n  sysak slabtop -o -s c          \
             caches by memory held, once\n  sysak slabtop -o -d 10 --format json   \
             growth over 10 s, as JSON"
        ))
}

fn parse_sort_key(word: &str) -> Result<SortKey, String> {
    let mut chars = word.chars();
    match (chars.next().and_then(SortKey::from_letter), chars.next()) {
        (Some(key), None) => Ok(key),
        _ => {
            let letters: String = SORT_KEYS.iter().map(|(l, _, _)| *l).collect();
            Err(format!("unknown sort key {word:?}: use one of {letters}"))
        }
    }
}

fn run(matches: &ArgMatches, _: &tool::Context) -> anyhow::Result<Outcome> {
    let format = Format::from_matches(matches);
    let sort = matches.get_one::<SortKey>("sort").copied().unwrap_or(SortKey::Objs);
    let delay = matches.get_one::<u64>("delay").copied();
    let once = matches.get_flag("once");
    let procfs = ProcFs::default();
    // SAFETY: isatty has no preconditions.
    let interactive =
        !once && format == Format::Table && unsafe { libc::isatty(libc::STDOUT_FILENO) == 1 && libc::isatty(libc::STDIN_FILENO) == 1 };
    if interactive {
        interactive_loop(&procfs, sort, delay.unwrap_or(DEFAULT_DELAY_S))?;
        return Ok(Outcome::Clean);
    }
    if !once && delay.is_some() && format == Format::Table {
        return Err(UsageError("--delay without --once needs a terminal; use --once --delay SECS to print growth".into()).into());
    }
    let report = sample_once(&procfs, sort, delay)?;
    match format {
        Format::Json => output::print_json(&report)?,
        Format::Table => output::print_text(&render::once(&report))?,
    }
    Ok(Outcome::Clean)
}

/// One report; with `delay`, two samples that far apart so GROWTH is known.
fn sample_once(procfs: &ProcFs, sort: SortKey, delay: Option<u64>) -> anyhow::Result<report::SlabtopReport> {
    let read = || procfs.read_slabinfo().context("reading slab statistics");
    let Some(secs) = delay else {
        return Ok(report::build(&read()?, None, sort, procfs));
    };
    let first = read()?;
    sysak_kernel::signal::install();
    let start = Instant::now();
    sysak_kernel::signal::sleep_interruptible(Duration::from_secs(secs));
    let elapsed = start.elapsed().as_secs_f64().round() as u64;
    Ok(report::build(&read()?, Some((&first, elapsed)), sort, procfs))
}

fn interactive_loop(procfs: &ProcFs, mut sort: SortKey, delay_s: u64) -> anyhow::Result<()> {
    sysak_kernel::signal::install();
    let _raw = terminal::RawMode::enter(libc::STDIN_FILENO);
    let screen = terminal::ScreenGuard::enter();
    let mut previous = None;
    let mut previous_at = Instant::now();
    loop {
        let info = procfs.read_slabinfo().context("reading slab statistics")?;
        let now = Instant::now();
        let interval = now.duration_since(previous_at).as_secs_f64().round() as u64;
        let report = report::build(&info, previous.as_ref().map(|p| (p, interval)), sort, procfs);
        let mut lines: Vec<String> = render::summary(&report.summary).lines().map(String::from).collect();
        let heading_at = lines.len();
        lines.push(render::HEADING.to_string());
        let room = terminal::rows().saturating_sub(8);
        lines.extend(report.caches.iter().take(room).map(render::row));
        screen.draw(&lines, heading_at)?;
        previous = Some(info);
        previous_at = now;
        let deadline = Instant::now() + Duration::from_secs(delay_s);
        loop {
            if sysak_kernel::signal::interrupted() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match terminal::read_key(libc::STDIN_FILENO, left.min(Duration::from_millis(200))) {
                Some(b'q' | b'Q') => return Ok(()),
                Some(key) => {
                    if let Some(key) = SortKey::from_letter(key as char) {
                        sort = key;
                        break;
                    }
                }
                None => {}
            }
        }
    }
}

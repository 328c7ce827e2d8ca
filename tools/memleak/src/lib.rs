//! `sysak memleak`: is kernel memory leaking, of which kind, and who leaks.
//!
//! Modes:
//! - `--check`: the verdict slab / page / vmalloc / none (see [`check`]),
//!   optionally with a growth trend (`--trend SECS`);
//! - `-t slab|page|vmalloc`: trace a window and report outstanding
//!   allocations by call site; for slab, scan the cache for the largest
//!   cluster of similar objects and mark the allocations that match it;
//! - `-t auto` (default): the check, then the trace of the kind it found;
//!   when nothing leaks, the census of who holds the memory (see
//!   [`census`]; `--census` adds it to any mode).

#![deny(missing_docs)]

mod census;
pub mod check;
mod fit;
mod history;
mod options;
pub mod report;
mod scan;
mod trace;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use sysak_cli::flamegraph::{Labels, StackFormat};
use sysak_cli::output::{self, Format};
use sysak_cli::tool::{self, Needs, Outcome, Tool, UsageError};
use sysak_cli::tracer::TracerChoice;
use sysak_kernel::procfs::ProcFs;

use check::{Kind, Verdict};
use history::{metrics, plot};
use options::Options;
use report::render;
use scan::offline;

/// The tool's entry in sysak's table.
pub fn tool() -> Tool {
    Tool {
        name: "memleak",
        category: "memory",
        summary: "is kernel memory leaking (slab, page, vmalloc), and which function leaks",
        experimental: false,
        needs: Needs {
            root: true,
            files: &[("/proc/meminfo", "memory statistics"), ("/proc/vmallocinfo", "vmalloc statistics (CONFIG_PROC_FS, CONFIG_MMU)")],
            // A dump is read from a file: no root, no /proc of this host.
            offline_flag: Some("vmcore"),
        },
        command,
        run,
    }
}

/// Argument definitions.
pub fn command() -> Command {
    Command::new("memleak")
        .about("Find kernel memory leaks: check, classify, trace the leaking call site")
        .long_about(
            "Find kernel memory leaks: check, classify, trace the leaking call site.\n\n\
             How a slab leak is judged: a leak is a stock of alike objects that are born and never die; \
             turnover is a stock that dies as fast as it is born. Before tracing, the cache is scanned and the \
             members of its largest cluster of alike objects are taken; during the window their frees are \
             counted (BPF: an in-kernel member set, every member up to 262144, an address-hash sample beyond; \
             perf: every free, in user space); after it they are re-read (freed or changed counts as dead). \
             Births, the window's outstanding allocations like the stock, are weighed against deaths by a \
             conditional binomial test of two Poisson rates (leak below p = 0.01); the call site with the most \
             births is the leak function. The cache's growth is shown, and decides only when there is no stock \
             (no memory reader, -n all, --backend none) and for -t page and -t vmalloc.",
        )
        .arg(Arg::new("check").long("check").action(ArgAction::SetTrue).help("Print the verdict only (slab, page, vmalloc or none)"))
        .arg(
            Arg::new("trend")
                .long("trend")
                .value_name("SECS")
                .value_parser(value_parser!(u64).range(2..=86400))
                .help("Also sample for SECS seconds and flag steady growth below the thresholds"),
        )
        .arg(
            Arg::new("type")
                .short('t')
                .long("type")
                .value_name("TYPE")
                .value_parser(["auto", "slab", "page", "vmalloc"])
                .default_value("auto")
                .help("What to trace: auto runs the check and traces the kind it finds"),
        )
        .arg(
            Arg::new("cache")
                .short('n')
                .long("cache")
                .value_name("CACHE")
                .help("Slab cache to trace, or 'all' [default: the unreclaimable cache with the most objects]"),
        )
        .arg(
            Arg::new("interval")
                .short('i')
                .long("interval")
                .value_name("SECS")
                .value_parser(value_parser!(u64).range(1..=86400))
                .help("Trace window in seconds [default: 60]"),
        )
        .arg(
            Arg::new("free-only")
                .short('r')
                .long("free-only")
                .value_name("PCT")
                .value_parser(value_parser!(u32).range(0..=90))
                .help("Percentage of the window at its end that traces frees only [default: 20]"),
        )
        .arg(
            Arg::new("dump")
                .long("dump")
                .action(ArgAction::SetTrue)
                .help("Put the representative object's raw bytes in JSON too (they may hold keys or credentials)"),
        )
        .arg(
            Arg::new("record")
                .long("record")
                .action(ArgAction::SetTrue)
                .conflicts_with_all(["type", "vmcore"])
                .help("Append a sample of this host to the history, then print the check with it (for a timer)"),
        )
        .arg(
            Arg::new("history").long("history").value_name("FILE").help(
                "History file to record into and judge growth from [default: /var/lib/sysak/memleak-history.jsonl, read when it exists]",
            ),
        )
        .arg(
            Arg::new("history-min-rate")
                .long("history-min-rate")
                .value_name("RATE")
                .help("Growth over the history that counts as a leak: SIZE per second, or SIZE/h, SIZE/day [default: 1M/day]"),
        )
        .arg(
            Arg::new("textfile")
                .long("textfile")
                .value_name("FILE")
                .help("Also write the check as Prometheus metrics to FILE, atomically (node_exporter's textfile collector)"),
        )
        .arg(
            Arg::new("plot")
                .long("plot")
                .value_name("FILE.svg")
                .help("Draw the history's series of this boot (categories and growing caches) as SVG"),
        )
        .arg(
            Arg::new("census")
                .long("census")
                .action(ArgAction::SetTrue)
                .help("Also scan the largest unreclaimable caches and name who holds the memory (plain runs do when nothing leaks)"),
        )
        .arg(
            Arg::new("census-caches")
                .long("census-caches")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .help("Caches the census scans, largest first [default: 5]"),
        )
        .arg(
            Arg::new("stacks")
                .short('s')
                .long("stacks")
                .action(ArgAction::SetTrue)
                .help("Record and show the whole kernel stack of each call site"),
        )
        .arg(Arg::new("top").long("top").value_name("N").value_parser(value_parser!(usize)).help("Call sites to report [default: 20]"))
        .arg(
            Arg::new("max-tracked")
                .long("max-tracked")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1000..))
                .help("Most outstanding allocations held in memory; more are counted, not tracked [default: 1000000]"),
        )
        .arg(
            Arg::new("similarity")
                .long("similarity")
                .value_name("PCT")
                .value_parser(value_parser!(u32).range(1..=100))
                .help("Objects are similar when they share this % of the representative's useful bytes [default: 65]"),
        )
        .arg(
            Arg::new("backend")
                .long("backend")
                .value_name("HOW")
                .value_parser(["auto", "kcore", "bpf", "none"])
                .default_value("auto")
                .help("How to read kernel memory for the scan: auto tries /proc/kcore, then a BPF reader"),
        )
        .arg(
            TracerChoice::arg("Slab and page tracing: bpf keeps the outstanding set in the kernel; perf samples tracepoints; auto: bpf where it loads"),
        )
        .arg(
            Arg::new("vmcore")
                .long("vmcore")
                .value_name("FILE")
                .requires("kallsyms")
                .help("Analyse an ELF memory dump offline (QEMU dump-guest-memory, kdump ELF): the scan only"),
        )
        .arg(
            Arg::new("kallsyms")
                .long("kallsyms")
                .value_name("FILE")
                .requires("vmcore")
                .help("The dumped kernel's /proc/kallsyms (with --vmcore)"),
        )
        .arg(Arg::new("btf").long("btf").value_name("FILE").help("Kernel BTF for struct layouts [default: /sys/kernel/btf/vmlinux]"))
        .arg(
            Arg::new("system-map")
                .long("system-map")
                .value_name("FILE")
                .help("The kernel's System.map, for data symbols kallsyms lacks [default: /boot/System.map-$(uname -r) when it exists]"),
        )
        .arg(
            Arg::new("abs-threshold")
                .long("abs-threshold")
                .value_name("SIZE")
                .help("A category leaks at this size whatever MemTotal is [default: 6G]"),
        )
        .arg(
            Arg::new("pct-threshold")
                .long("pct-threshold")
                .value_name("PCT")
                .value_parser(value_parser!(f64))
                .help("... or above this % of MemTotal [default: 10]"),
        )
        .arg(Arg::new("min-threshold").long("min-threshold").value_name("SIZE").help("... when also above this size [default: 1.5G]"))
        .arg(
            Arg::new("trend-min-rate")
                .long("trend-min-rate")
                .value_name("SIZE")
                .help("Growth that counts as a trend: SIZE per second, or SIZE/h, SIZE/day [default: 256K]"),
        )
        .arg(
            output::format_arg()
                .value_parser(["table", "json", "prometheus", "folded", "flamegraph"])
                .help("Output format: a table, one JSON document, Prometheus metrics (--check, --record), or (-t slab|page -s) folded stacks or an SVG flame graph"),
        )
        .arg(sysak_cli::i18n::lang_arg())
        .after_help(
            "Examples:\n  sysak memleak --check                 verdict from /proc/meminfo and /proc/vmallocinfo\n  \
             sysak memleak --check --trend 60      ... and flag steady growth over a minute\n  \
             sysak memleak --check --format json   for fleets: one JSON document per host\n  \
             sysak memleak --check --census        ... and who holds the unreclaimable memory\n  \
             sysak memleak --record --textfile /var/lib/prometheus/node-exporter/sysak.prom\n  \
             \x20                                     record a sample (hourly timer) and refresh the metrics\n  \
             sysak memleak --check --history FILE --plot growth.svg   growth over the recorded history\n  \
             sysak memleak -t slab -n kmalloc-256 -i 30 -s   who holds kmalloc-256 objects\n\n\
             Exit status: 0 no leak, 1 leak found, 2 usage error, 3 environment error.",
        )
}

/// How the result is printed.
struct Printing {
    format: Format,
    /// `--format folded|flamegraph` (a traced window with stacks).
    stacks: Option<StackFormat>,
    /// `--format prometheus` (the check).
    prometheus: bool,
    lang: sysak_cli::i18n::Lang,
    /// `--dump`: raw object bytes in the output.
    dump: bool,
}

fn run(matches: &ArgMatches, context: &tool::Context) -> anyhow::Result<Outcome> {
    let mut options = Options::resolve(matches, context.config)?;
    sysak_kernel::signal::install();
    let procfs = ProcFs::default();
    let printing = Printing {
        format: Format::from_matches(matches),
        stacks: StackFormat::from_matches(matches),
        prometheus: matches.get_one::<String>("format").is_some_and(|f| f == "prometheus"),
        lang: sysak_cli::i18n::Lang::resolve(matches, context.config.output.lang),
        dump: options.dump,
    };
    let check_mode = options.check_only || options.record;
    if (printing.prometheus || options.textfile.is_some()) && !check_mode {
        return Err(UsageError("--format prometheus and --textfile go with --check or --record".into()).into());
    }
    if printing.stacks.is_some() && !(options.stacks && matches!(options.trace_type, Some(Kind::Slab | Kind::Page))) {
        return Err(UsageError("--format folded and flamegraph need a traced window with stacks: -t slab -s or -t page -s".into()).into());
    }
    if let (Some(vmcore), Some(kallsyms)) = (matches.get_one::<String>("vmcore"), matches.get_one::<String>("kallsyms")) {
        let (mut report, census) = offline::run(&options, std::path::Path::new(vmcore), std::path::Path::new(kallsyms))?;
        print_trace(&mut report, census, &printing)?;
        // One dump shows no growth: the cluster is evidence, not a verdict.
        return Ok(Outcome::Clean);
    }
    if options.record {
        let samples = history::record(&procfs, &options.history).map_err(|e| UsageError(e.to_string()))?;
        eprintln!("sysak memleak: recorded sample {samples} in {}", options.history.display());
    }
    let kind = match options.trace_type {
        Some(kind) => kind,
        None => match check_first(&procfs, &mut options, &printing)? {
            Ok(kind) => kind,
            Err(outcome) => return Ok(outcome),
        },
    };
    trace_window(&procfs, &options, kind, &printing)
}

/// The check, and what follows it: `Ok(kind)` to trace that kind (plain
/// `sysak memleak` when the check names one), or `Err(outcome)` when the
/// check, its metrics or its census were the answer.
fn check_first(procfs: &ProcFs, options: &mut Options, printing: &Printing) -> anyhow::Result<Result<Kind, Outcome>> {
    let check_mode = options.check_only || options.record;
    let report = options.run_check(procfs)?;
    if let Some(path) = &options.plot {
        plot::draw(&options.history, path, &report).map_err(|e| UsageError(e.to_string()))?;
    }
    if check_mode && (printing.prometheus || options.textfile.is_some()) {
        let text = metrics::exposition(&report, &census::live_candidates(procfs, metrics::TOP_CACHES)?, unix_now());
        if let Some(path) = &options.textfile {
            sysak_cli::prometheus::write_textfile(path, &text).map_err(|e| UsageError(format!("--textfile {}: {e}", path.display())))?;
        }
        if printing.prometheus {
            output::print_text(&text)?;
            return Ok(Err(check_outcome(&report)));
        }
    }
    match (check_mode, report.verdict.kind()) {
        (false, Some(kind)) => {
            // The history names the cache that grows: trace it.
            if let (Kind::Slab, None, Some(h)) = (kind, &options.cache, &report.history) {
                if let Some(top) = h.growing_caches.first() {
                    options.cache = Some(top.name.clone());
                    options.cache_reason =
                        Some(format!("the history's fastest-growing cache: {:+.0} bytes a day", top.slope_bytes_per_day));
                }
            }
            Ok(Ok(kind))
        }
        (check_mode, _) => {
            // Nothing to trace: say who holds the memory instead.
            let census = (options.census || !check_mode).then(|| take_census(procfs, options)).transpose()?;
            print_check(&report, census, printing).map(Err)
        }
    }
}

/// A traced window of `kind`, printed.
fn trace_window(procfs: &ProcFs, options: &Options, kind: Kind, printing: &Printing) -> anyhow::Result<Outcome> {
    let mut report = match kind {
        Kind::Slab => trace::slab_window(procfs, options)?,
        Kind::Page => trace::page_window(options)?,
        Kind::Vmalloc => trace::vmalloc_window(procfs, options)?,
    };
    // 1 only when a leak is judged: outstanding turnover is not a leak.
    let outcome = if report.leak { Outcome::Found } else { Outcome::Clean };
    if let Some(stack_format) = printing.stacks {
        // Weighted by outstanding bytes (slab) or pages (page).
        let (title, unit) = match kind {
            Kind::Page => ("sysak memleak -t page: pages outstanding by kernel stack", "pages"),
            _ => ("sysak memleak -t slab: bytes outstanding by kernel stack", "bytes"),
        };
        output::print_text(&stack_format.render(&report.weighted_stacks, &Labels { title, unit }))?;
        return Ok(outcome);
    }
    let census = options.census.then(|| take_census(procfs, options)).transpose()?;
    print_trace(&mut report, census, printing)?;
    Ok(outcome)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn check_outcome(report: &check::CheckReport) -> Outcome {
    if report.verdict == Verdict::None {
        Outcome::Clean
    } else {
        Outcome::Found
    }
}

fn take_census(procfs: &ProcFs, options: &Options) -> anyhow::Result<census::Census> {
    let usage = check::Usage::measure(procfs)?;
    census::live(procfs, &options.scan, options.census_options(), &usage)
}

/// A report with the census, if any, flattened into its JSON.
#[derive(serde::Serialize)]
struct WithCensus<'a, R: serde::Serialize> {
    #[serde(flatten)]
    report: &'a R,
    #[serde(flatten)]
    census: Option<&'a census::Census>,
}

/// No kernel memory in fleet output unless asked for (`--dump`).
fn strip_dumps(report: Option<&mut report::TraceReport>, census: Option<&mut census::Census>) {
    if let Some(report) = report {
        report.scan.dump.clear();
    }
    for cache in census.map(|c| c.census.iter_mut()).into_iter().flatten() {
        cache.dump.clear();
    }
}

fn print_trace(report: &mut report::TraceReport, mut census: Option<census::Census>, printing: &Printing) -> anyhow::Result<()> {
    let (lang, dump) = (printing.lang, printing.dump);
    match printing.format {
        Format::Json => {
            if !dump {
                strip_dumps(Some(report), census.as_mut());
            }
            output::print_json(&WithCensus { report: &*report, census: census.as_ref() })
        }
        Format::Table => output::print_text(&(render::trace(report, lang) + &render::census(census.as_ref(), lang, dump))),
    }
}

fn print_check(report: &check::CheckReport, mut census: Option<census::Census>, printing: &Printing) -> anyhow::Result<Outcome> {
    let (lang, dump) = (printing.lang, printing.dump);
    match printing.format {
        Format::Json => {
            if !dump {
                strip_dumps(None, census.as_mut());
            }
            output::print_json(&WithCensus { report, census: census.as_ref() })?
        }
        Format::Table => output::print_text(&(render::check(report, lang) + &render::census(census.as_ref(), lang, dump)))?,
    }
    Ok(check_outcome(report))
}

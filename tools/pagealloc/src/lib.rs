//! `sysak pagealloc`: what the page allocator is doing, and whether free
//! memory is too fragmented for high-order allocations.
//!
//! Modes:
//! - default: a traced window of page allocations and frees: rates by
//!   order, migratetype and GFP mask; call sites (and stacks with `-s`) by
//!   pages allocated and by pages still held at the end ([`trace`]);
//! - `--outstanding`: the pages still held, by call site, with an age
//!   histogram (the window ends with a free-only phase, `-r`);
//! - `--frag`: free blocks per zone, order and migratetype, the kernel's
//!   unusable free space index, and a verdict ([`frag`]).
//!
//! Where the kernel has /proc/allocinfo (6.10+, memory allocation
//! profiling), its per-site totals are shown as the precise source.

#![deny(missing_docs)]

pub mod frag;
mod render;
pub mod trace;

use std::time::Duration;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use serde::Serialize;
use sysak_cli::flamegraph::{Labels, StackFormat};
use sysak_cli::output::{self, Format};
use sysak_cli::tool::{self, Needs, Outcome, Tool, UsageError};
use sysak_cli::tracer::TracerChoice;
use sysak_kernel::procfs::{AllocSite, ProcFs};
use sysak_kernel::trace::window::Window;

/// The tool's entry in sysak's table.
pub fn tool() -> Tool {
    Tool {
        name: "pagealloc",
        category: "memory",
        summary: "page allocations by order, type and call site; outstanding pages; fragmentation",
        experimental: false,
        needs: Needs { root: true, files: &[("/proc/buddyinfo", "free blocks per zone and order")], offline_flag: None },
        command,
        run,
    }
}

/// Argument definitions.
pub fn command() -> Command {
    Command::new("pagealloc")
        .about("Page-allocator tracing and fragmentation")
        .arg(
            Arg::new("frag")
                .long("frag")
                .action(ArgAction::SetTrue)
                .help("Fragmentation from /proc/buddyinfo and /proc/pagetypeinfo, with a verdict"),
        )
        .arg(
            Arg::new("outstanding")
                .long("outstanding")
                .action(ArgAction::SetTrue)
                .help("Only the pages still held at the window's end, with their ages"),
        )
        .arg(
            Arg::new("interval")
                .short('i')
                .long("interval")
                .value_name("SECS")
                .value_parser(value_parser!(u64).range(1..=86400))
                .default_value("10")
                .help("Trace window in seconds"),
        )
        .arg(
            Arg::new("free-only")
                .short('r')
                .long("free-only")
                .value_name("PCT")
                .value_parser(value_parser!(u32).range(0..=90))
                .help("Percentage of the window at its end that traces frees only [default: 0, with --outstanding 20]"),
        )
        .arg(
            Arg::new("stacks")
                .short('s')
                .long("stacks")
                .action(ArgAction::SetTrue)
                .help("Show the commonest kernel stack of each call site"),
        )
        .arg(
            Arg::new("sample-every")
                .long("sample-every")
                .value_name("N")
                .value_parser(parse_sample_every)
                .help("BPF: unwind one allocation in N (a power of two) for call sites and scale the counts [default: 64, with -s 1]"),
        )
        .arg(
            TracerChoice::arg("bpf counts in the kernel (call sites from sampled stacks, all with -s); perf samples every allocation; auto: bpf where it loads"),
        )
        .arg(Arg::new("top").long("top").value_name("N").value_parser(value_parser!(usize)).default_value("15").help("Rows per table"))
        .arg(
            Arg::new("max-tracked")
                .long("max-tracked")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1000..))
                .default_value("1000000")
                .help("Most outstanding allocations held in memory; more are counted"),
        )
        .arg(
            output::format_arg()
                .value_parser(["table", "json", "folded", "flamegraph"])
                .help("Output format: a table, one JSON document, or (with -s) folded stacks or an SVG flame graph of the pages allocated, or held with --outstanding"),
        )
        .after_help(
            "Examples:\n  sysak pagealloc -i 10            who allocates pages, by order, type and call site\n  \
             sysak pagealloc --outstanding -s  pages still held at the end, with stacks and ages\n  \
             sysak pagealloc --frag            will high-order allocations fail?\n\n\
             Exit status: 0 nothing found, 1 pages outstanding (--outstanding) or fragmented (--frag), 2 usage, 3 environment.",
        )
}

/// `--sample-every`: a power of two up to 4096 (the BPF program masks a
/// random number with N - 1).
fn parse_sample_every(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && n <= 4096 => Ok(n),
        _ => Err(format!("'{s}' is not a power of two from 1 to 4096")),
    }
}

/// `--frag` with /proc/allocinfo when present.
#[derive(Debug, Serialize)]
struct FragOutput<'a> {
    #[serde(flatten)]
    frag: &'a frag::FragReport,
}

/// A traced window, with /proc/allocinfo's top sites when the kernel has it.
#[derive(Debug, Serialize)]
struct TraceOutput {
    #[serde(flatten)]
    trace: trace::TraceReport,
    /// /proc/allocinfo's largest sites (the precise source, since boot).
    #[serde(skip_serializing_if = "Option::is_none")]
    allocinfo: Option<Vec<AllocSite>>,
}

fn run(matches: &ArgMatches, _context: &tool::Context) -> anyhow::Result<Outcome> {
    let procfs = ProcFs::default();
    let format = Format::from_matches(matches);
    if matches.get_flag("frag") {
        let buddy = procfs.read_buddyinfo()?;
        // pagetypeinfo is root-only since 5.7 and optional: the verdict
        // stands on buddyinfo alone.
        let (by_type, block_order) = match procfs.read_pagetypeinfo() {
            Ok(p) => (p.free, Some(p.page_block_order)),
            Err(_) => (Vec::new(), None),
        };
        let report = frag::analyse(&buddy, &by_type, block_order);
        match format {
            Format::Json => output::print_json(&FragOutput { frag: &report })?,
            Format::Table => output::print_text(&render::frag(&report))?,
        }
        return Ok(if report.fragmented { Outcome::Found } else { Outcome::Clean });
    }
    sysak_kernel::signal::install();
    let only_outstanding = matches.get_flag("outstanding");
    let stack_format = StackFormat::from_matches(matches);
    if stack_format.is_some() && !matches.get_flag("stacks") {
        return Err(UsageError("--format folded and flamegraph need stacks: add -s".into()).into());
    }
    let free_only_percent = matches.get_one::<u32>("free-only").copied().unwrap_or(if only_outstanding { 20 } else { 0 });
    let options = trace::TraceOptions {
        window: Window { total: Duration::from_secs(*matches.get_one::<u64>("interval").unwrap()), free_only_percent },
        stacks: matches.get_flag("stacks"),
        sample_shift: match matches.get_one::<u32>("sample-every") {
            Some(n) => n.trailing_zeros(),
            None if matches.get_flag("stacks") => 0,
            None => trace::SAMPLE_SHIFT,
        },
        top: *matches.get_one::<usize>("top").unwrap(),
        max_tracked: *matches.get_one::<u64>("max-tracked").unwrap() as usize,
        outstanding: only_outstanding,
        tracer: TracerChoice::from_matches(matches),
    };
    let report = trace::run(&options, "sysak pagealloc")?;
    let allocinfo = procfs.read_allocinfo().ok().flatten().map(|mut sites| {
        sites.sort_by_key(|s| std::cmp::Reverse(s.bytes));
        sites.truncate(options.top);
        sites
    });
    let found = !report.outstanding.is_empty();
    if let Some(stack_format) = stack_format {
        let (stacks, title) = if only_outstanding {
            (&report.outstanding_stacks, "sysak pagealloc --outstanding: pages held by kernel stack")
        } else {
            (&report.allocated_stacks, "sysak pagealloc: pages allocated by kernel stack")
        };
        output::print_text(&stack_format.render(stacks, &Labels { title, unit: "pages" }))?;
        return Ok(if only_outstanding && found { Outcome::Found } else { Outcome::Clean });
    }
    let out = TraceOutput { trace: report, allocinfo };
    match format {
        Format::Json => output::print_json(&out)?,
        Format::Table => output::print_text(&render::trace(&out.trace, out.allocinfo.as_deref(), only_outstanding))?,
    }
    Ok(if only_outstanding && found { Outcome::Found } else { Outcome::Clean })
}

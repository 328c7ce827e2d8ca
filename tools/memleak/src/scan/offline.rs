//! `--vmcore FILE`: the scan of a memory dump, offline. A dump has no
//! allocation trace, so nothing is marked and no call site is counted: the
//! largest cluster of similar objects, its size and its representative
//! (with symbols from the dumped kernel's kallsyms) are the evidence.

use std::path::Path;

use sysak_cli::tool::UsageError;
use sysak_kernel::symbols::Kallsyms;

use crate::census::{self, Census};
use crate::check::Kind;
use crate::options::Options;
use crate::report::{Scan, TraceReport};
use crate::scan::explain::{self, Explainer};
use crate::scan::{self, Scanner};

/// Analyse `vmcore` with the dumped kernel's `kallsyms` and BTF; with
/// `--census`, the dump's census too.
pub fn run(options: &Options, vmcore: &Path, kallsyms: &Path) -> anyhow::Result<(TraceReport, Option<Census>)> {
    let text = std::fs::read_to_string(kallsyms).map_err(|e| UsageError(format!("--kallsyms {}: {e}", kallsyms.display())))?;
    let symbols = Kallsyms::parse(&text, "").map_err(|e| UsageError(format!("--kallsyms {}: {e}", kallsyms.display())))?;
    // The dumped kernel's System.map only when given: /boot is this host's.
    let (symbols, data_symbols) = scan::with_data_symbols(symbols, options.scan.system_map.as_deref(), None);
    let scanner = Scanner::open_offline(vmcore, &options.scan.btf, &symbols).map_err(sysak_cli::tool::EnvironmentError)?;
    let (cache, reason) = match options.cache.as_deref() {
        Some(name) => (scanner.cache(name).map_err(UsageError)?, "given with -n".to_string()),
        None => scanner.biggest_unreclaimable().map_err(sysak_cli::tool::EnvironmentError)?,
    };
    eprintln!("sysak memleak: scanning {} in {}", cache.name, vmcore.display());
    let (clusters, stats) = scanner.largest_clusters(cache, options.scan.percent, &mut scan::Presence::default(), &mut |_, _| {});
    let data_symbols = data_symbols.unwrap_or_else(|why| why);
    let census = options.census.then(|| census::offline(&scanner, &symbols, data_symbols.clone(), options.census_options()));
    let report = TraceReport {
        cache: Some(cache.name.clone()),
        cache_reason: Some(reason),
        tracer_note: Some("offline: a memory dump has no allocation trace".into()),
        scan: Scan {
            data_symbols: Some(data_symbols),
            type_candidates: explain::type_candidates(scanner.types(), &cache.name, cache.object_size as u64),
            ..scan::section("vmcore", &clusters, &stats, 0, &symbols, &Explainer::new(&scanner, &symbols, Vec::new()))
        },
        leak_function_note: Some(
            "offline: nothing is traced, so nothing is marked; the cluster and its representative are the evidence".into(),
        ),
        lost_events: None,
        summary: "no leak judged: one memory dump shows no growth; the largest cluster below is evidence to read, not a verdict".into(),
        ..TraceReport::new(Kind::Slab, sysak_cli::tracer::Tracer::NotTraced)
    };
    Ok((report, census))
}

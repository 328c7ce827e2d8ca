//! Tables for people; the JSON is the serde rendering of the same reports.

use std::fmt::Write;

use sysak_cli::output::human_bytes;

use sysak_cli::i18n::{pad, Lang};

use crate::census::Census;
use crate::check::{CheckReport, Kind, Verdict};
use crate::report::{StockReport, TraceReport};

/// Words of a pointee shown per hop in the table.
const POINTEE_WORDS_SHOWN: usize = 6;

/// The check report as text.
pub fn check(r: &CheckReport, lang: Lang) -> String {
    let l = |en| lang.label(en);
    let mut out = String::new();
    let pct = |b: u64| if r.mem_total == 0 { 0.0 } else { 100.0 * b as f64 / r.mem_total as f64 };
    let _ = writeln!(out, "{} {:>10}", pad("MemTotal", 22), human_bytes(r.mem_total));
    for (label, kind, bytes) in [
        (l("slab (unreclaimable)"), Kind::Slab, r.slab_unreclaimable),
        ("vmalloc", Kind::Vmalloc, r.vmalloc),
        (l("alloc pages"), Kind::Page, r.alloc_pages),
    ] {
        let flag = if r.over_threshold.contains(&kind) { format!("  {}", l("over threshold")) } else { String::new() };
        let _ = writeln!(out, "{} {:>10} {:>6.1}%{flag}", pad(label, 22), human_bytes(bytes), pct(bytes));
    }
    if !r.alloc_pages_explained.is_empty() {
        let _ = writeln!(out, "  {}:", l("not counted as alloc pages"));
        for e in &r.alloc_pages_explained {
            let _ = writeln!(out, "    {} {:>10}", pad(e.line, 36), human_bytes(e.bytes));
        }
    }
    if let Some(trend) = &r.trend {
        let _ = writeln!(out, "\ntrend over {:.0} s ({} samples, least squares):", trend.window_s, trend.samples);
        for c in &trend.categories {
            let flag = if c.growing { "  growing" } else { "" };
            let _ = writeln!(out, "  {:<8} {:>+12.0} B/s  R²={:.2}  {:+} B{flag}", c.kind.name(), c.rate_bytes_per_s, c.r2, c.growth_bytes);
        }
    }
    if let Some(h) = &r.history {
        let _ = writeln!(
            out,
            "\n{} {} ({} samples of this boot over {:.1} h, {} in the file; growing means >= {}/day, R² >= 0.8):",
            l("history"),
            h.file,
            h.samples,
            h.span_s / 3600.0,
            h.samples_in_file,
            human_bytes(h.min_rate_bytes_per_day as u64)
        );
        for g in h.categories.iter().chain(&h.growing_caches) {
            let flag = if g.growing { "  growing" } else { "" };
            let sign = if g.slope_bytes_per_day < 0.0 { "-" } else { "+" };
            let _ = writeln!(
                out,
                "  {} {:>10} {sign}{:>9}/day  R²={:.2}  {}{flag}",
                pad(&g.name, 24),
                human_bytes(g.last_bytes),
                human_bytes(g.slope_bytes_per_day.abs() as u64),
                g.r2,
                g.sparkline
            );
        }
        for note in &h.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    let t = &r.thresholds;
    let rule = format!(
        "a category leaks at >= {}, or > {}% of MemTotal and > {}",
        human_bytes(t.absolute_bytes),
        t.percent,
        human_bytes(t.min_bytes)
    );
    let _ = match (r.verdict, r.reason) {
        (Verdict::None, _) => writeln!(out, "\n{}: none ({rule})", l("verdict")),
        (v, Some("trend")) => writeln!(out, "\n{}: {} (steady growth; {rule})", l("verdict"), v.name()),
        (v, Some("history")) => writeln!(out, "\n{}: {} (steady growth over the recorded history; {rule})", l("verdict"), v.name()),
        (v, _) => writeln!(out, "\n{}: {} ({rule})", l("verdict"), v.name()),
    };
    out
}

/// The trace report as text, in the original sysak's layout: the call
/// sites with counts and marks, then the cache summary.
pub fn trace(r: &TraceReport, lang: Lang) -> String {
    let l = |en| lang.label(en);
    let mut out = String::new();
    let what = match (&r.cache, r.kind) {
        (Some(cache), _) => format!("slab cache {cache}"),
        (None, kind) => kind.name().to_string(),
    };
    let _ = writeln!(out, "{} ({what}, {:.1} s window, last {:.1} s free-only):", l("outstanding allocations"), r.window_s, r.free_only_s);
    let (unit, age) = match r.kind {
        Kind::Page => (l("pages"), l("max age")),
        Kind::Slab => (l("count"), l("max age")),
        Kind::Vmalloc => (l("areas"), l("growth")),
    };
    let mut table = sysak_cli::output::plain_table([unit, l("marked"), l("bytes"), age, l("function")]);
    for site in &r.callsites {
        let last = match (site.max_age_s, site.growth_bytes) {
            (Some(age), _) => format!("{age:.1}s"),
            (None, Some(g)) if g >= 0 => format!("+{}", human_bytes(g as u64)),
            (None, Some(g)) => format!("-{}", human_bytes(g.unsigned_abs())),
            (None, None) => "-".into(),
        };
        table.add_row(vec![site.count.to_string(), site.marked.to_string(), human_bytes(site.bytes), last, site.function.clone()]);
    }
    if r.callsites.is_empty() {
        let _ = writeln!(out, "  none: every allocation traced in the window was freed");
    } else {
        let _ = writeln!(out, "{table}");
    }
    if r.callsites_total > r.callsites.len() {
        let _ = writeln!(out, "  ({} more call sites; --top N shows more)", r.callsites_total - r.callsites.len());
    }
    if let Some(note) = &r.stacks_note {
        let _ = writeln!(out, "\nnote: {note}");
    }
    if !r.traced_callsites.is_empty() {
        let _ = writeln!(out, "\nvmap areas reserved in the window and still held (vmalloc tracepoints):");
        let mut traced = sysak_cli::output::plain_table(["areas", "bytes", "max age", "function"]);
        for site in &r.traced_callsites {
            let age = site.max_age_s.map(|a| format!("{a:.1}s")).unwrap_or_default();
            traced.add_row(vec![site.count.to_string(), human_bytes(site.bytes), age, site.function.clone()]);
        }
        let _ = writeln!(out, "{traced}");
    }
    for site in r.callsites.iter().chain(&r.traced_callsites).filter(|s| !s.stack.is_empty()) {
        let _ = writeln!(out, "\n{} {}:", l("stack of"), site.function);
        for frame in &site.stack {
            let _ = writeln!(out, "    {frame}");
        }
    }
    if let Some(reason) = &r.cache_reason {
        let _ = writeln!(out, "\n{}: {} ({reason})", l("cache"), r.cache.as_deref().unwrap_or("-"));
    }
    if let Some(note) = &r.cache_note {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = match &r.tracer_note {
        Some(note) => writeln!(out, "{}: {} ({note})", l("tracer"), r.tracer),
        None => writeln!(out, "{}: {}", l("tracer"), r.tracer),
    };
    if let (Some(bytes), Some(source)) = (r.growth_bytes, &r.growth_source) {
        let objects = r.growth_objects.map(|n| format!("{n:+} objects, ")).unwrap_or_default();
        let sign = if bytes < 0 { "-" } else { "+" };
        let noise = r.growth_noise_bytes.map(|n| format!(", noise up to {}", human_bytes(n))).unwrap_or_default();
        let _ = writeln!(out, "{}: {objects}{sign}{} ({source}{noise})", l("growth"), human_bytes(bytes.unsigned_abs()));
    }
    if let Some(stock) = &r.stock {
        let _ = writeln!(out, "{}: {}", l("stock"), stock_line(stock));
    }
    if let Some(b) = r.excluded_backing_pages.filter(|b| b.slab + b.vmalloc + b.page_tables > 0) {
        let _ = writeln!(
            out,
            "note: left out, accounted in other meminfo lines: {} slab pages, {} vmalloc pages, {} page-table pages",
            b.slab, b.vmalloc, b.page_tables
        );
    }
    if r.dropped_as_freed + r.dropped_not_in_cache > 0 {
        let _ = writeln!(
            out,
            "note: dropped after the window: {} found free by the slab walk (frees no tracepoint shows), {} not in the cache",
            r.dropped_as_freed, r.dropped_not_in_cache
        );
    }
    render_scan(&mut out, r, lang);
    let _ = match (&r.leak_function, &r.leak_function_note) {
        (Some(f), _) => writeln!(out, "{}: {f}", l("leak function")),
        (None, Some(why)) => writeln!(out, "{}: {} ({why})", l("leak function"), l("none")),
        (None, None) => writeln!(out, "{}: {}", l("leak function"), l("none")),
    };
    if let Some(c) = &r.confidence {
        let _ = writeln!(out, "{}: {}", l("confidence"), c.summary);
    }
    let _ = writeln!(out, "{}: {}", l("verdict"), r.summary);
    let mut warnings = Vec::new();
    match r.lost_events {
        Some(0) => {}
        Some(n) => warnings.push(format!("{n} events lost: counts may be off, and a lost free shows as outstanding")),
        None => warnings.push("the kernel cannot count skipped BPF program runs (before 5.12): lost frees are unknown".into()),
    }
    if r.untracked_allocations > 0 {
        warnings.push(format!("{} allocations not tracked (table full; raise --max-tracked)", r.untracked_allocations));
    }
    if r.dropped_stacks > 0 {
        warnings.push(format!("{} stacks not kept (stack table full)", r.dropped_stacks));
    }
    if r.interrupted {
        warnings.push("interrupted: the window was cut short".to_string());
    }
    for w in warnings {
        let _ = writeln!(out, "{}: {w}", l("warning"));
    }
    out
}

/// The stock in one line: what was followed, births, deaths, the test.
fn stock_line(s: &StockReport) -> String {
    if let Some(why) = &s.unavailable {
        return format!("none ({why})");
    }
    let followed = match s.followed_every {
        1 => "every one re-read".to_string(),
        n => format!("1 in {n} re-read"),
    };
    let traced = match (s.traced_by.as_str(), s.traced_every) {
        ("none", _) => "frees not traced".to_string(),
        (by, 1) => format!("every free traced ({by})"),
        (by, n) => format!("1 in {n} traced ({by})"),
    };
    format!(
        "{} alike objects at the start ({}, {followed}, {traced}); {} born, about {} died (traced {}; re-read: {} freed, {} changed{}): net {:+.2}/s, at least {:+.2}/s (p = {:.2e}; scan {:.1} s)",
        s.members,
        s.object_address.as_deref().unwrap_or("?"),
        s.births,
        s.deaths_estimate,
        s.deaths_traced,
        s.deaths_reread_freed,
        s.deaths_reread_changed,
        if s.unknown > 0 { format!(", {} unplaced", s.unknown) } else { String::new() },
        s.net_per_s,
        s.net_per_s_lower,
        s.p_value,
        s.scan_s
    )
}

/// The scan summary: the largest cluster and its representative.
fn render_scan(out: &mut String, r: &TraceReport, lang: Lang) {
    let l = |en| lang.label(en);
    let scan = &r.scan;
    let Some(backend) = &scan.backend else {
        if let Some(why) = &scan.unavailable {
            let _ = writeln!(out, "{}: {}: {why}", l("scan"), l("unavailable"));
        }
        return;
    };
    let (similar, scanned) = (scan.similar_objects.unwrap_or(0), scan.scanned_objects.unwrap_or(0));
    let _ = writeln!(out, "{} ({backend}): {}: {similar}, {}: {scanned}", l("scan"), l("similar objects"), l("scanned objects"));
    if let Some(address) = &scan.object_address {
        let _ = writeln!(out, "{}: {address}", l("representative object"));
        for line in &scan.dump {
            let _ = writeln!(out, "    {line}");
        }
        if !scan.words.is_empty() {
            let _ = writeln!(out, "{}:", l("words"));
            for w in &scan.words {
                let _ = writeln!(out, "    {}", w.describe());
                // The table keeps hops short; JSON has them all.
                for p in w.points_to.iter().take(POINTEE_WORDS_SHOWN) {
                    let _ = writeln!(out, "        -> {}", p.describe());
                    for q in p.points_to.iter().take(POINTEE_WORDS_SHOWN) {
                        let _ = writeln!(out, "            -> {}", q.describe());
                    }
                }
            }
        }
    }
    for (i, c) in scan.clusters.iter().enumerate().skip(1) {
        let _ = writeln!(out, "  {} #{}: {} ({:.0}%) at {}", l("cluster"), i + 1, c.similar_objects, c.share * 100.0, c.object_address);
    }
    for t in &scan.type_candidates {
        let _ = writeln!(out, "{}: {} ({})", l("type candidate"), t.type_name, t.evidence);
    }
    if let Some(source) = &scan.data_symbols {
        let _ = writeln!(out, "{}: {source}", l("data symbols"));
    }
    if scan.per_cpu_slabs > 0 {
        let _ = writeln!(out, "note: {} per-CPU slabs: their free objects were scanned as allocated", scan.per_cpu_slabs);
    }
    if scan.changed_slabs > 0 {
        let _ = writeln!(out, "note: {} slabs changed under the scan and were skipped", scan.changed_slabs);
    }
    if scan.truncated {
        let _ = writeln!(out, "note: the scan stopped at its object limit");
    }
}

/// The census as text (empty without one): per cache its clusters and the
/// largest one's words, then vmalloc callers and the page residual.
pub fn census(census: Option<&Census>, lang: Lang, dump: bool) -> String {
    let l = |en| lang.label(en);
    let mut out = String::new();
    let Some(c) = census else { return out };
    let scan = &c.census_scan;
    let how = match (&scan.backend, &scan.unavailable) {
        (Some(backend), _) => format!("{backend}, {:.1} s", scan.elapsed_s),
        (None, Some(why)) => format!("{}: {why}", l("scan unavailable")),
        (None, None) => l("scan unavailable").to_string(),
    };
    let _ = writeln!(out, "\n{} ({how}):", l("census: the largest unreclaimable slab caches"));
    for cache in &c.census {
        let sample = if cache.sample_stride > 1 { format!(", every {}th slab read", cache.sample_stride) } else { String::new() };
        let _ =
            writeln!(out, "  {} {:>10} {:>10} {}{sample}", pad(&cache.cache, 24), human_bytes(cache.bytes), cache.objects, l("objects"));
        for t in &cache.type_candidates {
            let _ = writeln!(out, "      {}: {} ({})", l("type candidate"), t.type_name, t.evidence);
        }
        if let Some(why) = &cache.not_scanned {
            let _ = writeln!(out, "      {}: {why}", l("not scanned"));
        }
        for (i, cluster) in cache.clusters.iter().enumerate() {
            let estimate = cluster.similar_objects_estimate.map(|n| format!(", ~{n} in the whole cache")).unwrap_or_default();
            let _ = writeln!(
                out,
                "      {} #{}: {} {} ({:.0}%{estimate}) at {}",
                l("cluster"),
                i + 1,
                cluster.similar_objects,
                l("similar"),
                cluster.share * 100.0,
                cluster.object_address
            );
            // The largest cluster's words, each pointee expanded once; the
            // others' headers only (JSON has every cluster's words).
            if i > 0 {
                continue;
            }
            let mut expanded = std::collections::HashSet::new();
            for w in &cluster.words {
                let _ = writeln!(out, "          {}", w.describe());
                if w.points_to.is_empty() {
                    continue;
                }
                if !expanded.insert(w.object.clone()) {
                    let _ = writeln!(out, "              -> (the object above)");
                    continue;
                }
                for p in w.points_to.iter().take(POINTEE_WORDS_SHOWN) {
                    let _ = writeln!(out, "              -> {}", p.describe());
                }
            }
            if dump {
                for line in &cache.dump {
                    let _ = writeln!(out, "          {line}");
                }
            }
        }
        if cache.changed_slabs > 0 {
            let _ = writeln!(out, "      note: {} slabs changed under the scan and were skipped", cache.changed_slabs);
        }
    }
    if let Some(source) = &scan.data_symbols {
        let _ = writeln!(out, "  {}: {source}", l("data symbols"));
    }
    if !c.vmalloc_callers.is_empty() {
        let _ = writeln!(out, "\n{}:", l("largest vmalloc callers"));
        let mut table = sysak_cli::output::plain_table([l("areas"), l("bytes"), l("caller")]);
        for v in &c.vmalloc_callers {
            table.add_row(vec![v.areas.to_string(), human_bytes(v.bytes), v.caller.clone()]);
        }
        let _ = writeln!(out, "{table}");
    }
    if let Some(pages) = &c.page_residual {
        let _ = writeln!(out, "\n{}: {}", l("alloc pages residual"), human_bytes(pages.bytes));
        for site in pages.allocinfo_top.iter().flatten() {
            let _ = writeln!(out, "  {:>10} {:>8} {} {}", human_bytes(site.bytes), site.calls, site.function, site.location);
        }
        if let Some(note) = &pages.note {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    out
}

//! Tables for people; the JSON is the serde rendering of the same reports.

use std::fmt::Write;

use sysak_core::output::human_bytes;

use crate::check::{CheckReport, Kind, Verdict};

/// The check report as text.
pub fn check(r: &CheckReport) -> String {
    let mut out = String::new();
    let pct = |b: u64| if r.mem_total == 0 { 0.0 } else { 100.0 * b as f64 / r.mem_total as f64 };
    let _ = writeln!(out, "{:<22} {:>10}", "MemTotal", human_bytes(r.mem_total));
    for (label, kind, bytes) in [
        ("slab (unreclaimable)", Kind::Slab, r.slab_unreclaimable),
        ("vmalloc", Kind::Vmalloc, r.vmalloc),
        ("alloc pages", Kind::Page, r.alloc_pages),
    ] {
        let flag = if r.over_threshold.contains(&kind) { "  over threshold" } else { "" };
        let _ = writeln!(out, "{label:<22} {:>10} {:>6.1}%{flag}", human_bytes(bytes), pct(bytes));
    }
    if let Some(trend) = &r.trend {
        let _ = writeln!(out, "\ntrend over {:.0} s ({} samples, least squares):", trend.window_s, trend.samples);
        for c in &trend.categories {
            let flag = if c.growing { "  growing" } else { "" };
            let _ = writeln!(
                out,
                "  {:<8} {:>+12.0} B/s  R²={:.2}  {:+} B{flag}",
                c.kind.name(),
                c.rate_bytes_per_s,
                c.r2,
                c.growth_bytes
            );
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
        (Verdict::None, _) => writeln!(out, "\nverdict: none ({rule})"),
        (v, Some("trend")) => writeln!(out, "\nverdict: {} (steady growth; {rule})", verdict_name(v)),
        (v, _) => writeln!(out, "\nverdict: {} ({rule})", verdict_name(v)),
    };
    out
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Slab => "slab",
        Verdict::Page => "page",
        Verdict::Vmalloc => "vmalloc",
        Verdict::None => "none",
    }
}

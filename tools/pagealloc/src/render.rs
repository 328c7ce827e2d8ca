//! Tables for people; JSON is the serde rendering of the same reports.

use std::fmt::Write;

use sysak_cli::output::{human_bytes, plain_table};
use sysak_kernel::procfs::AllocSite;

use crate::frag::FragReport;
use crate::trace::{Site, TraceReport};

/// `--frag` as text.
pub fn frag(r: &FragReport) -> String {
    let mut out = String::new();
    let orders = r.zones.iter().map(|z| z.free_blocks.len()).max().unwrap_or(0);
    let mut header = vec!["node".to_string(), "zone".to_string(), "free".to_string()];
    header.extend((0..orders).map(|o| o.to_string()));
    let mut blocks = plain_table(header.clone());
    let mut index = plain_table(header);
    for z in &r.zones {
        let mut row = vec![z.node.to_string(), z.zone.clone(), human_bytes(z.free_pages * 4096)];
        row.extend(z.free_blocks.iter().map(|n| n.to_string()));
        blocks.add_row(row);
        let mut row = vec![z.node.to_string(), z.zone.clone(), human_bytes(z.free_pages * 4096)];
        row.extend(z.unusable_index.iter().map(|i| format!("{i:.3}")));
        index.add_row(row);
    }
    let _ = writeln!(out, "free blocks per order:\n{blocks}\n");
    let _ = writeln!(out, "unusable free space index per order (share of free memory in smaller blocks):\n{index}\n");
    for z in r.zones.iter().filter(|z| !z.by_migratetype.is_empty()) {
        let mut t = plain_table(std::iter::once(format!("{} {}", z.node, z.zone)).chain((0..orders).map(|o| o.to_string())));
        for (mt, counts) in &z.by_migratetype {
            t.add_row(std::iter::once(mt.clone()).chain(counts.iter().map(|n| n.to_string())).collect::<Vec<_>>());
        }
        let _ = writeln!(out, "{t}\n");
    }
    let _ = writeln!(out, "verdict: {}", r.verdict);
    out
}

fn sites(out: &mut String, title: &str, sites: &[Site], with_age: bool) {
    let _ = writeln!(out, "\n{title}:");
    if sites.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    // Estimated rows say how many allocations were unwound behind them.
    let sampled = sites.iter().any(|s| s.samples.is_some());
    let mut header = vec!["pages", "allocs", if with_age { "max age" } else { "bytes" }];
    if sampled {
        header.push("unwound");
    }
    header.push("function");
    let mut t = plain_table(header);
    for s in sites {
        let third = if with_age { s.max_age_s.map(|a| format!("{a:.1}s")).unwrap_or_default() } else { human_bytes(s.bytes) };
        let mut row = vec![s.pages.to_string(), s.allocations.to_string(), third];
        if sampled {
            row.push(s.samples.map(|n| n.to_string()).unwrap_or_default());
        }
        row.push(s.function.clone());
        t.add_row(row);
    }
    let _ = writeln!(out, "{t}");
    for s in sites.iter().filter(|s| !s.stack.is_empty()) {
        let _ = writeln!(out, "  stack of {}:", s.function);
        for f in &s.stack {
            let _ = writeln!(out, "      {f}");
        }
    }
}

/// A traced window as text.
pub fn trace(r: &TraceReport, allocinfo: Option<&[AllocSite]>, only_outstanding: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:.1} s traced ({:.1} s free-only): {} allocations, {} pages allocated, {} pages freed",
        r.window_s, r.free_only_s, r.allocations, r.pages_allocated, r.pages_freed
    );
    if !only_outstanding {
        let mut t = plain_table(["order", "allocs", "allocs/s", "pages", "frees"]);
        for o in &r.by_order {
            t.add_row(vec![
                o.order.to_string(),
                o.allocations.to_string(),
                format!("{:.1}", o.rate_per_s),
                o.pages.to_string(),
                o.frees.to_string(),
            ]);
        }
        let _ = writeln!(out, "\nby order:\n{t}");
        let mut t = plain_table(["migratetype", "pages"]);
        for m in &r.by_migratetype {
            t.add_row(vec![m.migratetype.clone(), m.pages.to_string()]);
        }
        let _ = writeln!(out, "\nby migratetype:\n{t}");
        let mut t = plain_table(["gfp_flags", "allocs", "pages"]);
        for g in &r.by_gfp {
            t.add_row(vec![g.gfp_flags.clone(), g.allocations.to_string(), g.pages.to_string()]);
        }
        let _ = writeln!(out, "\nby GFP mask:\n{t}");
        sites(&mut out, "call sites by pages allocated", &r.top_allocators, false);
    }
    if r.outstanding_traced {
        sites(&mut out, "call sites by pages still held at the end", &r.outstanding, true);
        let mut t = plain_table(["age", "pages"]);
        for b in &r.age_histogram {
            t.add_row(vec![b.le_s.map(|s| format!("<= {s}s")).unwrap_or("older".into()), b.pages.to_string()]);
        }
        let _ = writeln!(out, "\noutstanding pages by age:\n{t}");
    } else {
        let _ = writeln!(out, "\npages still held at the end: not traced (--outstanding traces them)");
    }
    if let Some(sites) = allocinfo {
        let mut t = plain_table(["bytes", "calls", "function", "location"]);
        for s in sites {
            let function = match &s.module {
                Some(m) => format!("{} [{m}]", s.function),
                None => s.function.clone(),
            };
            t.add_row(vec![human_bytes(s.bytes), s.calls.to_string(), function, s.location.clone()]);
        }
        let _ = writeln!(out, "\n/proc/allocinfo (precise, since boot):\n{t}");
    }
    match (r.tracer, r.tracer_note.as_deref()) {
        (tracer, Some(note)) => writeln!(out, "\ntracer: {tracer} ({note})"),
        (tracer, None) => writeln!(out, "\ntracer: {tracer}"),
    }
    .ok();
    if !r.estimated.is_empty() {
        let _ = writeln!(
            out,
            "note: call sites are estimates from 1 in {} allocations unwound (a row is off by about 1/√unwound; --sample-every 1 unwinds all); every other figure is an exact count",
            r.stacks_sampled_every
        );
    }
    let lost = match (r.lost_events, r.tracer) {
        (None, _) => {
            let _ = writeln!(out, "warning: the kernel cannot count skipped BPF program runs (before 5.12): lost events are unknown");
            0
        }
        (Some(n), _) => n,
    };
    for (n, what) in [
        (lost, "events lost (ring buffers full, or BPF runs skipped): counts are low"),
        (r.lost_stacks, "sampled stacks lost (stack table full): those call sites are unknown"),
        (r.untracked_sites, "allocations beyond the call-site or tally table"),
        (r.untracked_outstanding, "allocations not tracked as outstanding (table full)"),
    ] {
        if n > 0 {
            let _ = writeln!(out, "warning: {n} {what}");
        }
    }
    if r.interrupted {
        let _ = writeln!(out, "warning: interrupted: the window was cut short");
    }
    out
}

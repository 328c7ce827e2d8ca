//! Text rendering in procps' layout.
//!
//! The summary and the first eight columns are byte-for-byte procps-ng's
//! `slabtop` (the same printf formats), so scripts and eyes trained on it
//! keep working; sysak's extra columns come after NAME.

use std::fmt::Write;

use crate::report::{CacheRow, SlabtopReport, Summary};

/// procps' heading, padded to 78 columns, then sysak's extra columns.
pub const HEADING: &str = "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME                    UNRECL GROWTH";

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// The five summary lines and the blank line after them.
pub fn summary(s: &Summary) -> String {
    let mut out = String::new();
    let mut line = |label: &str, a: u64, b: u64| {
        let _ = writeln!(out, " {label:<35}: {a} / {b} ({:.1}%)", percent(a, b));
    };
    line("Active / Total Objects (% used)", s.active_objs, s.objs);
    line("Active / Total Slabs (% used)", s.active_slabs, s.slabs);
    line("Active / Total Caches (% used)", s.active_caches, s.caches);
    let _ = writeln!(
        out,
        " {:<35}: {:.2}K / {:.2}K ({:.1}%)",
        "Active / Total Size (% used)",
        kib(s.active_size_bytes),
        kib(s.total_size_bytes),
        percent(s.active_size_bytes, s.total_size_bytes)
    );
    let _ = writeln!(
        out,
        " {:<35}: {:.2}K / {:.2}K / {:.2}K\n",
        "Minimum / Average / Maximum Object",
        kib(s.min_obj_size_bytes),
        kib(s.avg_obj_size_bytes),
        kib(s.max_obj_size_bytes)
    );
    out
}

/// One cache row: procps' eight columns, then UNRECL and GROWTH.
pub fn row(r: &CacheRow) -> String {
    let unreclaimable = match r.unreclaimable {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let growth = match r.growth_objs {
        Some(g) => format!("{g:+}"),
        None => "-".to_string(),
    };
    format!(
        "{:6} {:6} {:3}% {:7.2}K {:6} {:8} {:9}K {:<23} {:>6} {:>6}",
        r.objs,
        r.active_objs,
        r.use_percent,
        kib(r.obj_size_bytes),
        r.slabs,
        r.objs_per_slab,
        r.cache_size_bytes / 1024,
        r.name,
        unreclaimable,
        growth
    )
}

/// The whole `-o` output.
pub fn once(report: &SlabtopReport) -> String {
    let mut out = summary(&report.summary);
    out.push_str(HEADING);
    out.push('\n');
    for r in &report.caches {
        out.push_str(&row(r));
        out.push('\n');
    }
    out
}

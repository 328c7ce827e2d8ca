//! `-t vmalloc`: vmalloc memory by allocating function, and its growth
//! across the window, from /proc/vmallocinfo (every kernel; the caller is
//! printed by the kernel itself, `[module]` included). Only areas backed by
//! vmalloc pages count (`pages=` with the `vmalloc` flag): ioremap, vmap
//! and percpu chunks are not memory vmalloc() allocated. Where the kernel
//! has vmap tracepoints, [`crate::trace::vmap`] adds call sites with stacks.

use std::collections::HashMap;

use sysak_kernel::procfs::{ProcFs, VmallocArea};

use crate::check::Kind;
use crate::report::{CallSite, Scan, TraceReport};
use crate::trace::counters::{Growth, Reading};
use crate::trace::verdict::Site;

/// vmalloc areas and bytes of one caller.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallerTotal {
    areas: u64,
    bytes: u64,
}

fn by_caller(areas: &[VmallocArea], page_size: u64) -> HashMap<String, CallerTotal> {
    let mut totals: HashMap<String, CallerTotal> = HashMap::new();
    for area in areas.iter().filter(|a| a.is_vmalloc()) {
        let caller = area.caller.clone().unwrap_or_else(|| "unknown".into());
        let t = totals.entry(caller).or_default();
        t.areas += 1;
        t.bytes += area.pages * page_size;
    }
    totals
}

/// Callers ranked by growth over the window, then by size.
fn diff(before: &HashMap<String, CallerTotal>, after: &HashMap<String, CallerTotal>) -> Vec<CallSite> {
    let mut sites: Vec<CallSite> = after
        .iter()
        .map(|(caller, now)| {
            let was = before.get(caller).copied().unwrap_or_default();
            CallSite {
                function: caller.clone(),
                count: now.areas,
                marked: 0,
                births: None,
                bytes: now.bytes,
                max_age_s: None,
                growth_bytes: Some(now.bytes as i64 - was.bytes as i64),
                stack: Vec::new(),
            }
        })
        .collect();
    sites.sort_by(|a, b| b.growth_bytes.cmp(&a.growth_bytes).then(b.bytes.cmp(&a.bytes)).then(a.function.cmp(&b.function)));
    sites
}

/// vmalloc memory by caller now.
pub fn snapshot(procfs: &ProcFs, page_size: u64) -> anyhow::Result<HashMap<String, CallerTotal>> {
    Ok(by_caller(&procfs.read_vmallocinfo()?, page_size))
}

/// The report for a window between two snapshots: callers by growth. The
/// caller fills in the window's figures, then [`crate::trace::fill_verdict`] judges it
/// with the sites and growth returned here.
pub fn report(
    before: &HashMap<String, CallerTotal>,
    after: &HashMap<String, CallerTotal>,
    top: usize,
    noise_bytes: u64,
) -> (TraceReport, Vec<Site>, Growth) {
    let sites = diff(before, after);
    let verdict_sites = sites
        .iter()
        .map(|s| Site {
            function: s.function.clone(),
            count: s.count,
            bytes: s.growth_bytes.unwrap_or(0).max(0) as u64,
            marked: 0,
            births: 0,
        })
        .collect();
    let total = |m: &HashMap<String, CallerTotal>| m.values().map(|t| t.bytes).sum::<u64>();
    let readings = [(0.0, total(before)), (1.0, total(after))].map(|(t, bytes)| (t, Reading { objects: None, bytes }));
    let growth = Growth::from_readings("/proc/vmallocinfo pages of vmalloc areas".into(), &readings, noise_bytes)
        .expect("two readings make a growth");
    let report = TraceReport {
        callsites_total: sites.len(),
        callsites: sites.into_iter().take(top).collect(),
        scan: Scan { unavailable: Some("the similarity scan applies to slab objects, not vmalloc areas".into()), ..Scan::default() },
        ..TraceReport::new(Kind::Vmalloc, sysak_cli::tracer::Tracer::Vmallocinfo)
    };
    (report, verdict_sites, growth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use sysak_kernel::procfs::parse_vmallocinfo;

    #[test]
    fn growth_ranks_callers() {
        let before = parse_vmallocinfo(
            "0x1-0x2 8192 a+0x1/0x10 pages=1 vmalloc\n0x3-0x4 8192 b+0x1/0x10 pages=1 vmalloc\n0x5-0x6 8192 c+0x1/0x10 phys=0x1 ioremap\n",
            Path::new("v"),
        )
        .unwrap();
        let after = parse_vmallocinfo(
            "0x1-0x2 8192 a+0x1/0x10 pages=1 vmalloc\n0x3-0x4 8192 b+0x1/0x10 pages=1 vmalloc\n0x7-0x8 20480 b+0x1/0x10 pages=4 vmalloc\n0x9-0xa 8192 m+0x1/0x10 [mod] pages=2 vmalloc\n",
            Path::new("v"),
        )
        .unwrap();
        let sites = diff(&by_caller(&before, 4096), &by_caller(&after, 4096));
        let view: Vec<_> = sites.iter().map(|s| (s.function.as_str(), s.count, s.growth_bytes.unwrap())).collect();
        assert_eq!(view, [("b+0x1/0x10", 2, 16384), ("m+0x1/0x10 [mod]", 1, 8192), ("a+0x1/0x10", 1, 0)]);
    }
}

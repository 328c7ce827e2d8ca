//! `--plot FILE.svg`: this boot's recorded series — the check's
//! categories on top, the growing caches (or, when none grows, the
//! largest) below — against hours (minutes for a short history) since
//! the first sample. SVG only:
//! plotters' bitmap encoders pull in image crates; a browser or
//! `rsvg-convert` turns the SVG into a PNG.

use std::path::Path;

use plotters::prelude::*;

use crate::check::CheckReport;
use crate::history::{self, growth::CATEGORIES, Sample};

/// Caches drawn.
const CACHES_DRAWN: usize = 5;
const MIB: f64 = 1024.0 * 1024.0;

type Series = (String, Vec<(f64, f64)>);

/// Draw the history behind `report` into `out`.
pub fn draw(history_path: &Path, out: &Path, report: &CheckReport) -> anyhow::Result<()> {
    if out.extension().and_then(|e| e.to_str()) != Some("svg") {
        anyhow::bail!("--plot {}: give a .svg file (PNG encoding is not built in; convert the SVG)", out.display());
    }
    let Some(summary) = &report.history else {
        anyhow::bail!("--plot: no history at {} (record samples with --record)", history_path.display());
    };
    let history = history::file::load(history_path)?;
    let boot = history::boot_id(&sysak_kernel::procfs::ProcFs::default())?;
    let samples: Vec<&Sample> = history.samples.iter().filter(|s| s.boot_id == boot).collect();
    let Some(start) = samples.first().map(|s| s.uptime_s) else {
        anyhow::bail!("--plot: {} has no sample of this boot yet", history_path.display());
    };
    // Hours for a long history, minutes for a short one.
    let span = samples.last().map_or(0.0, |s| s.uptime_s - start);
    let (unit_s, unit) = if span >= 2.0 * 3600.0 { (3600.0, "hours") } else { (60.0, "minutes") };
    let hours = |s: &Sample| (s.uptime_s - start) / unit_s;
    let categories: Vec<Series> = CATEGORIES
        .iter()
        .map(|&name| (name.to_string(), samples.iter().filter_map(|s| Some((hours(s), *s.categories.get(name)? as f64 / MIB))).collect()))
        .collect();
    let mut cache_names: Vec<String> = summary.growing_caches.iter().take(CACHES_DRAWN).map(|c| c.name.clone()).collect();
    let title = if cache_names.is_empty() {
        // Nothing grows: show the largest caches of the last sample.
        let mut last: Vec<(&String, &[u64; 2])> = samples.last().map(|s| s.caches.iter().collect()).unwrap_or_default();
        last.sort_by_key(|(_, v)| std::cmp::Reverse(v[0]));
        cache_names = last.into_iter().take(CACHES_DRAWN).map(|(n, _)| n.clone()).collect();
        "largest slab caches (none grows), MiB"
    } else {
        "growing slab caches, MiB"
    };
    let caches: Vec<Series> = cache_names
        .iter()
        .map(|name| (name.clone(), samples.iter().map(|s| (hours(s), s.caches.get(name).map_or(0, |c| c[0]) as f64 / MIB)).collect()))
        .collect();
    let root = SVGBackend::new(out, (1000, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(360);
    let x_desc = format!("{unit} since this boot's first sample");
    chart(
        &top,
        &format!("kernel memory by category, MiB ({} samples, verdict {})", samples.len(), report.verdict.name()),
        &x_desc,
        &categories,
    )?;
    chart(&bottom, title, &x_desc, &caches)?;
    root.present()?;
    Ok(())
}

fn chart(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, title: &str, x_desc: &str, series: &[Series]) -> anyhow::Result<()> {
    let x_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.0)).fold(0.0f64, f64::max).max(1e-3);
    let y_max = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(0.0f64, f64::max).max(1e-3) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc(x_desc).y_desc("MiB").draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).position(SeriesLabelPosition::UpperLeft).draw()?;
    Ok(())
}

//! The verdict of a trace: is there a leak, at which call site, how sure.
//!
//! Outstanding is not leaked. With a stock ([`crate::scan::stock`]: the members
//! of the cache's largest cluster of alike objects at the window's start,
//! followed to its end), the verdict is drawn on it: births (the window's
//! outstanding allocations like the stock) against its deaths, by the test
//! of [`crate::scan::rates`]. Births beyond deaths are a leak, named at the call
//! site with the most births; deaths keeping pace are turnover. The cache's
//! growth is shown but decides nothing then: its other users add and free
//! objects at will.
//!
//! Without a stock (no memory reader, `-n all`, pages, vmalloc, or no
//! allocation of the window like the stock), a call site is named only
//! where measured growth bears its outstanding allocations out:
//!
//! 1. the candidate: the call site with the most marked allocations (the
//!    scan's largest cluster) or, without marks, the most outstanding bytes
//!    (for vmalloc: the caller that grew most);
//! 2. growth: what the kernel's own counter grew by over the window (see
//!    [`crate::trace::counters`]). At or below its noise there is no leak, however
//!    much is outstanding: long-lived objects replaced at the same rate
//!    stay outstanding past any window while the cache stays flat —
//!    turnover. Above it, the growth must cover at least a quarter of the
//!    candidate's outstanding bytes ([`MIN_GROWTH_SHARE`]);
//! 3. confidence: from the marks, then lowered by everything that can make
//!    the answer wrong, each with its reason (sample size, growth share,
//!    interruption, no free-only phase, lost or uncountable events,
//!    untracked allocations, a truncated or changing scan).
//!
//! Pure: it sees figures, never the kernel, so every rule is unit-tested.

use serde::Serialize;
use sysak_cli::output::human_bytes;

use crate::check::Kind;
use crate::report::{Confidence, StockReport};
use crate::scan::rates::{ALPHA, STRONG};
use crate::trace::counters::Growth;

/// Growth must cover at least this share of the candidate's outstanding
/// bytes for a leak to be judged.
pub const MIN_GROWTH_SHARE: f64 = 0.25;

/// One call site as the verdict sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// `func+0x…/0x…`.
    pub function: String,
    /// Outstanding allocations (pages for `-t page`, areas for vmalloc).
    pub count: u64,
    /// Outstanding bytes (for vmalloc: the caller's growth).
    pub bytes: u64,
    /// Marked allocations.
    pub marked: u64,
    /// Outstanding allocations like the stock (0 without one).
    pub births: u64,
}

/// What the scan adds, when it ran.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScanFacts {
    /// Objects in the largest cluster.
    pub similar: u64,
    /// Objects read.
    pub scanned: u64,
    /// Slabs read.
    pub slabs: u64,
    /// Slabs skipped because they changed under the scan.
    pub changed_slabs: u64,
    /// The scan stopped at its object limit.
    pub truncated: bool,
    /// Outstanding allocations that could not be read for marking.
    pub unreadable_outstanding: u64,
}

/// What qualifies the window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowFacts {
    /// Seconds traced.
    pub window_s: f64,
    /// Seconds of free-only tracing.
    pub free_only_s: f64,
    /// Cut short by Ctrl-C.
    pub interrupted: bool,
    /// Events lost; `None` where the kernel cannot say.
    pub lost_events: Option<u64>,
    /// Allocations not tracked (table full).
    pub untracked: u64,
}

/// Everything the verdict is drawn from.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    /// What was traced.
    pub kind: Kind,
    /// Every call site, not only the --top shown.
    pub sites: &'a [Site],
    /// The scan, when it read memory and found a cluster.
    pub scan: Option<ScanFacts>,
    /// Why there is no scan (for the confidence's reasons).
    pub no_scan_reason: Option<&'a str>,
    /// The stock's births and deaths, or why there is none (`-t slab`).
    pub stock: Option<&'a StockReport>,
    /// Growth over the window; `None` when it could not be measured.
    pub growth: Option<&'a Growth>,
    /// The window.
    pub window: WindowFacts,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// A leak was judged.
    pub leak: bool,
    /// The leaking call site (only with `leak`).
    pub leak_function: Option<String>,
    /// Why there is no leak function, when there is none.
    pub note: Option<String>,
    /// How sure (only with `leak`).
    pub confidence: Option<Confidence>,
    /// The verdict in one sentence, "leak: …" or "no leak: …".
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    /// The confidence in one sentence: the level, what it rests on, and
    /// what lowered it.
    fn sentence(self, lead: &str, reasons: &[String]) -> String {
        if reasons.is_empty() {
            format!("{}: {lead}", self.name())
        } else {
            format!("{}: {lead}; {}", self.name(), reasons.join("; "))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// What the growth is of, in words.
fn subject(kind: Kind) -> &'static str {
    match kind {
        Kind::Slab => "the cache",
        Kind::Page => "unexplained page memory (alloc pages)",
        Kind::Vmalloc => "vmalloc memory",
    }
}

fn signed_bytes(n: i64) -> String {
    if n < 0 {
        format!("-{}", human_bytes(n.unsigned_abs()))
    } else {
        format!("+{}", human_bytes(n as u64))
    }
}

fn growth_text(g: &Growth) -> String {
    match g.objects {
        Some(objects) => format!("{objects:+} objects, {}", signed_bytes(g.bytes)),
        None => signed_bytes(g.bytes),
    }
}

fn share(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The candidate and, when marks chose it, why a tie left none.
fn candidate<'s>(e: &'s Evidence) -> (Option<&'s Site>, Option<String>, bool) {
    let marked_any = e.scan.is_some() && e.sites.iter().any(|s| s.marked > 0);
    if marked_any {
        let mut by_marks: Vec<&Site> = e.sites.iter().filter(|s| s.marked > 0).collect();
        by_marks.sort_by(|a, b| b.marked.cmp(&a.marked).then_with(|| a.function.cmp(&b.function)));
        if let [first, second, ..] = by_marks.as_slice() {
            if first.marked == second.marked {
                let why = format!("tie: {} and {} have {} marked allocations each", first.function, second.function, first.marked);
                return (None, Some(why), true);
            }
        }
        return (by_marks.first().copied(), None, true);
    }
    let best = e.sites.iter().filter(|s| s.bytes > 0).max_by(|a, b| a.bytes.cmp(&b.bytes).then_with(|| b.function.cmp(&a.function)));
    (best, None, false)
}

/// Judge `e`.
pub fn judge(e: &Evidence) -> Judgement {
    if let Some(stock) = e.stock.filter(|s| s.unavailable.is_none() && s.births > 0) {
        return judge_stock(e, stock);
    }
    let outstanding: u64 = e.sites.iter().map(|s| s.count).sum();
    let none = |note: String, summary: String| Judgement { leak: false, leak_function: None, note: Some(note), confidence: None, summary };
    let (site, tie, by_marks) = candidate(e);
    let Some(growth) = e.growth else {
        let why = "growth could not be measured, and outstanding allocations alone are not a leak".to_string();
        return none(why.clone(), format!("no leak judged: {why}"));
    };
    let Some(site) = site else {
        let nothing = match e.kind {
            Kind::Vmalloc => "no caller's vmalloc memory grew",
            _ => "nothing traced in the window is still outstanding",
        };
        let note = tie.unwrap_or_else(|| nothing.into());
        let summary = if growth.grew() {
            format!("no leak judged: {} grew ({}) but {note}", subject(e.kind), growth_text(growth))
        } else {
            format!("no leak: {} did not grow ({}) and {note}", subject(e.kind), growth_text(growth))
        };
        return none(note, summary);
    };
    if !growth.grew() {
        let note = format!(
            "{} allocations still outstanding, but {} did not grow ({}, within the noise of {}): turnover of long-lived objects, not a leak",
            outstanding,
            subject(e.kind),
            growth_text(growth),
            human_bytes(growth.noise_bytes)
        );
        let note = if e.kind == Kind::Vmalloc {
            format!("{} did not grow beyond {}", subject(e.kind), human_bytes(growth.noise_bytes))
        } else {
            note
        };
        return none(note.clone(), format!("no leak: {note}"));
    }
    let growth_share = (growth.bytes as f64 / site.bytes.max(1) as f64).min(1.0);
    if growth_share < MIN_GROWTH_SHARE {
        let note = format!(
            "{} grew by {} only, while {} holds {} outstanding: mostly turnover, too little growth to bear out a leak there",
            subject(e.kind),
            human_bytes(growth.bytes as u64),
            site.function,
            human_bytes(site.bytes)
        );
        return none(note.clone(), format!("no leak judged: {note}"));
    }
    let confidence = confidence(e, site, by_marks, growth_share);
    let summary = match e.kind {
        Kind::Vmalloc => format!(
            "leak: {} grew by {} in {:.0} s ({} of vmalloc's {})",
            site.function,
            human_bytes(site.bytes),
            e.window.window_s,
            human_bytes(site.bytes),
            signed_bytes(growth.bytes)
        ),
        _ => format!(
            "leak: {} holds {} outstanding allocations ({}) and {} grew by {} in {:.0} s",
            site.function,
            site.count,
            human_bytes(site.bytes),
            subject(e.kind),
            growth_text(growth),
            e.window.window_s
        ),
    };
    Judgement { leak: true, leak_function: Some(site.function.clone()), note: None, confidence: Some(confidence), summary }
}

/// Why a slab verdict fell back to the growth rule.
fn no_stock_reason(e: &Evidence) -> Option<String> {
    let stock = e.stock?;
    Some(match &stock.unavailable {
        Some(why) => format!("judged on the cache's growth, without a stock to follow ({why})"),
        None => {
            format!("judged on the cache's growth: no allocation of the window looks like the stock of {} alike objects", stock.members)
        }
    })
}

/// How the stock's deaths were counted, in words.
fn followed_text(stock: &StockReport) -> String {
    let reread = match stock.followed_every {
        1 => "every member re-read".to_string(),
        n => format!("1 in {n} members re-read"),
    };
    match (stock.traced_by.as_str(), stock.traced_every) {
        ("none", _) => format!("{reread}, frees not traced"),
        (by, 1) => format!("{reread}, every member's free traced ({by})"),
        (by, n) => format!("{reread}, 1 in {n} members' frees traced ({by})"),
    }
}

/// Seconds the stock's members were followed (the window, and the set-up
/// between the scan that took them and its start).
fn followed_s(stock: &StockReport, e: &Evidence) -> f64 {
    stock.reread.map_or(e.window.window_s, |c| c.deaths_s)
}

/// The verdict on the stock: births against deaths.
fn judge_stock(e: &Evidence, stock: &StockReport) -> Judgement {
    let none = |note: String, summary: String| Judgement { leak: false, leak_function: None, note: Some(note), confidence: None, summary };
    let evidence = format!(
        "{} allocations of the window joined a stock of {} alike objects, which lost about {} in {:.0} s ({}; p = {:.2e})",
        stock.births,
        stock.members,
        stock.deaths_estimate,
        followed_s(stock, e),
        followed_text(stock),
        stock.p_value
    );
    if stock.p_value >= ALPHA {
        return if stock.deaths_estimate > 0 {
            let note = format!("{evidence}: it dies as fast as it is born — turnover of long-lived objects, not a leak");
            none(note.clone(), format!("no leak: {note}"))
        } else {
            let note = format!("{evidence}: too few births to tell from deaths the sample could have missed");
            none(note.clone(), format!("no leak judged: {note}"))
        };
    }
    let mut by_births: Vec<&Site> = e.sites.iter().filter(|s| s.births > 0).collect();
    by_births.sort_by(|a, b| b.births.cmp(&a.births).then_with(|| a.function.cmp(&b.function)));
    let site = match by_births.as_slice() {
        [first, second, ..] if first.births == second.births => {
            let note = format!("tie: {} and {} have {} births into the stock each", first.function, second.function, first.births);
            return none(note.clone(), format!("no leak judged: {evidence}, but {note}"));
        }
        [first, ..] => *first,
        [] => return none(evidence.clone(), format!("no leak judged: {evidence}")),
    };
    let confidence = stock_confidence(e, stock, site);
    let growth = e.growth.map(|g| format!("; the cache changed by {}", growth_text(g))).unwrap_or_default();
    let summary = format!(
        "leak: {} added {} objects to a stock of {} alike objects that lost about {} in {:.0} s: born faster than it dies (p = {:.2e}){growth}",
        site.function,
        site.births,
        stock.members,
        stock.deaths_estimate,
        followed_s(stock, e),
        stock.p_value
    );
    Judgement { leak: true, leak_function: Some(site.function.clone()), note: None, confidence: Some(confidence), summary }
}

/// Confidence in a stock verdict: the test's strength, the leak function's
/// share of the births, and what can make the figures wrong.
fn stock_confidence(e: &Evidence, stock: &StockReport, site: &Site) -> Confidence {
    let scan = e.scan.unwrap_or_default();
    let births_share = share(site.births, stock.births);
    let mut reasons = Vec::new();
    let mut level = if stock.p_value < STRONG { Level::High } else { Level::Medium };
    if level == Level::Medium {
        reasons.push(format!("births beyond deaths at p = {:.2e} only", stock.p_value));
    }
    let mut cap = |to: Level, why: String| {
        level = level.min(to);
        reasons.push(why);
    };
    if births_share < 0.5 {
        cap(Level::Low, format!("it made only {:.0}% of the births into the stock", births_share * 100.0));
    } else if births_share < 0.9 {
        cap(Level::Medium, format!("it made {:.0}% of the births into the stock", births_share * 100.0));
    }
    if site.births < 10 {
        cap(Level::Low, format!("only {} births behind it", site.births));
    }
    if stock.unknown * 20 > stock.followed.max(1) {
        cap(Level::Medium, format!("the end walk could not place {} of {} members", stock.unknown, stock.followed));
    }
    window_caps(e, &scan, site, &mut cap);
    let lead = format!(
        "{} of its {} outstanding allocations joined a stock of {} alike objects ({:.0}% of the cache's objects); {} deaths estimated ({}); net {:+.2}/s, at least {:+.2}/s",
        site.births,
        site.count,
        stock.members,
        share(scan.similar, scan.scanned) * 100.0,
        stock.deaths_estimate,
        followed_text(stock),
        stock.net_per_s,
        stock.net_per_s_lower
    );
    let summary = level.sentence(&lead, &reasons);
    let growth_share = e.growth.map_or(0.0, |g| (g.bytes.max(0) as f64 / site.bytes.max(1) as f64).min(1.0));
    Confidence {
        level: level.name(),
        marked_share: share(site.births, site.count),
        leak_function_share: births_share,
        cluster_share: share(scan.similar, scan.scanned),
        growth_share,
        reasons,
        summary,
    }
}

/// Caps every verdict shares: what the window and the scan may have missed.
fn window_caps(e: &Evidence, scan: &ScanFacts, site: &Site, cap: &mut impl FnMut(Level, String)) {
    if e.kind != Kind::Vmalloc && e.window.free_only_s <= 0.0 {
        cap(Level::Medium, "no free-only phase (-r 0): short-lived allocations count as outstanding".into());
    }
    if e.window.interrupted {
        cap(Level::Medium, "the window was cut short".into());
    }
    match e.window.lost_events {
        Some(0) => {}
        Some(n) => cap(Level::Medium, format!("{n} events lost (a lost free shows as outstanding)")),
        None => cap(Level::Medium, "the kernel cannot count skipped BPF runs (before 5.12): lost frees are unknown".into()),
    }
    if e.window.untracked > 0 {
        cap(Level::Medium, format!("{} allocations not tracked (table full)", e.window.untracked));
    }
    if scan.truncated {
        cap(Level::Medium, "the scan stopped at its object limit".into());
    }
    if scan.changed_slabs * 100 > scan.slabs.max(1) {
        cap(Level::Medium, format!("{} of {} slabs changed under the scan", scan.changed_slabs, scan.slabs));
    }
    if scan.unreadable_outstanding * 100 > site.count.max(1) {
        cap(Level::Medium, format!("{} outstanding allocations could not be read", scan.unreadable_outstanding));
    }
}

fn confidence(e: &Evidence, site: &Site, by_marks: bool, growth_share: f64) -> Confidence {
    let all_marks: u64 = e.sites.iter().map(|s| s.marked).sum();
    let scan = e.scan.unwrap_or_default();
    let (marked_share, leak_function_share, cluster_share) =
        (share(site.marked, site.count), share(site.marked, all_marks), share(scan.similar, scan.scanned));
    let mut reasons = Vec::new();
    let mut level = match (e.kind, by_marks) {
        (Kind::Vmalloc, _) => Level::High,
        (_, true) if marked_share >= 0.9 && leak_function_share >= 0.9 => Level::High,
        (_, true) if marked_share >= 0.5 && leak_function_share >= 0.5 => Level::Medium,
        (_, true) => {
            reasons.push(format!(
                "{:.0}% of its allocations are marked and it holds {:.0}% of all marks",
                marked_share * 100.0,
                leak_function_share * 100.0
            ));
            Level::Low
        }
        (Kind::Page, false) => {
            reasons.push("pages are not compared by content: outstanding pages and growth only".into());
            Level::Medium
        }
        (_, false) if e.scan.is_some() => {
            reasons.push("no outstanding allocation resembles the largest cluster: chosen by outstanding bytes".into());
            Level::Low
        }
        (_, false) => {
            reasons.push(format!("not confirmed by content ({})", e.no_scan_reason.unwrap_or("no memory scan")));
            Level::Medium
        }
    };
    let mut cap = |to: Level, why: String| {
        level = level.min(to);
        reasons.push(why);
    };
    if growth_share < 0.5 {
        cap(Level::Low, format!("growth covers only {:.0}% of its outstanding bytes", growth_share * 100.0));
    } else if growth_share < 0.8 {
        cap(Level::Medium, format!("growth covers {:.0}% of its outstanding bytes", growth_share * 100.0));
    }
    if e.kind != Kind::Vmalloc {
        let n = if by_marks { site.marked } else { site.count };
        if n < 20 {
            cap(Level::Low, format!("only {n} allocations behind it"));
        } else if n < 100 {
            cap(Level::Medium, format!("only {n} allocations behind it"));
        }
    }
    if let Some(r2) = e.growth.and_then(|g| g.steadiness).filter(|r2| *r2 < 0.8) {
        cap(Level::Medium, format!("growth was not steady over the window (R² {r2:.2}): a burst grows too"));
    }
    window_caps(e, &scan, site, &mut cap);
    if let Some(why) = no_stock_reason(e) {
        reasons.push(why);
    }
    let lead = if by_marks {
        format!(
            "{:.0}% of its outstanding allocations look like the largest cluster ({:.0}% of the cache's objects), it holds {:.0}% of all marks, growth covers {:.0}%",
            marked_share * 100.0,
            cluster_share * 100.0,
            leak_function_share * 100.0,
            growth_share * 100.0
        )
    } else {
        format!("growth covers {:.0}% of its outstanding bytes", growth_share * 100.0)
    };
    let summary = level.sentence(&lead, &reasons);
    Confidence { level: level.name(), marked_share, leak_function_share, cluster_share, growth_share, reasons, summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(function: &str, count: u64, marked: u64) -> Site {
        Site { function: function.into(), count, bytes: count * 256, marked, births: 0 }
    }

    fn growth(objects: i64) -> Growth {
        Growth {
            source: "test".into(),
            samples: 10,
            objects: Some(objects),
            bytes: objects * 256,
            noise_bytes: 200 * 256,
            steadiness: Some(0.99),
        }
    }

    fn clean() -> WindowFacts {
        WindowFacts { window_s: 20.0, free_only_s: 4.0, interrupted: false, lost_events: Some(0), untracked: 0 }
    }

    fn scan() -> Option<ScanFacts> {
        Some(ScanFacts { similar: 15_000, scanned: 16_000, slabs: 1000, ..ScanFacts::default() })
    }

    fn evidence<'a>(sites: &'a [Site], growth: Option<&'a Growth>) -> Evidence<'a> {
        Evidence { kind: Kind::Slab, sites, scan: scan(), no_scan_reason: None, stock: None, growth, window: clean() }
    }

    /// Regression: a steady backlog — 15 005 of 15 252
    /// outstanding allocations marked, the cache flat — is turnover.
    #[test]
    fn turnover_is_no_leak() {
        let sites = [site("queue_add+0x1c/0x80", 15_252, 15_005)];
        let flat = growth(30);
        let j = judge(&evidence(&sites, Some(&flat)));
        assert!(!j.leak && j.leak_function.is_none() && j.confidence.is_none(), "{j:?}");
        assert!(j.summary.starts_with("no leak: 15252 allocations still outstanding, but the cache did not grow"), "{}", j.summary);
        assert!(j.summary.contains("turnover of long-lived objects, not a leak"), "{}", j.summary);
    }

    #[test]
    fn growth_bears_out_a_leak() {
        let sites = [site("load_msg+0x4f/0x140", 10_000, 9_900), site("other+0x1/0x10", 300, 10)];
        let grown = growth(10_100);
        let j = judge(&evidence(&sites, Some(&grown)));
        assert!(j.leak, "{j:?}");
        assert_eq!(j.leak_function.as_deref(), Some("load_msg+0x4f/0x140"));
        let c = j.confidence.unwrap();
        assert_eq!(c.level, "high", "{}", c.summary);
        assert!(c.reasons.is_empty(), "{:?}", c.reasons);
        assert!(j.summary.starts_with("leak: load_msg+0x4f/0x140 holds 10000 outstanding allocations"), "{}", j.summary);
    }

    #[test]
    fn small_growth_under_a_big_backlog_is_not_a_leak() {
        let sites = [site("queue_add+0x1c/0x80", 15_000, 14_000)];
        let little = growth(1_000);
        let j = judge(&evidence(&sites, Some(&little)));
        assert!(!j.leak && j.summary.starts_with("no leak judged: the cache grew by"), "{}", j.summary);
        // Half of it borne out: a leak, but not a sure one.
        let half = growth(7_500);
        let c = judge(&evidence(&sites, Some(&half))).confidence.unwrap();
        assert_eq!(c.level, "medium", "{}", c.summary);
        let third = growth(5_000);
        assert_eq!(judge(&evidence(&sites, Some(&third))).confidence.unwrap().level, "low");
    }

    /// One allocation, one mark used to be "high".
    #[test]
    fn sample_size_counts() {
        let sites = [site("f+0x1/0x2", 1, 1)];
        let g = Growth { noise_bytes: 0, ..growth(1) };
        let c = judge(&evidence(&sites, Some(&g))).confidence.unwrap();
        assert_eq!(c.level, "low");
        assert!(c.reasons.iter().any(|r| r == "only 1 allocations behind it"), "{:?}", c.reasons);
        let sites = [site("f+0x1/0x2", 50, 50)];
        let g = Growth { noise_bytes: 0, ..growth(50) };
        assert_eq!(judge(&evidence(&sites, Some(&g))).confidence.unwrap().level, "medium");
    }

    #[test]
    fn everything_that_can_make_it_wrong_lowers_it() {
        let sites = [site("f+0x1/0x2", 5_000, 5_000)];
        let g = growth(5_000);
        type Change = Box<dyn Fn(&mut Evidence)>;
        let cases: [(&str, Change); 7] = [
            ("cut short", Box::new(|e| e.window.interrupted = true)),
            ("no free-only phase", Box::new(|e| e.window.free_only_s = 0.0)),
            ("events lost", Box::new(|e| e.window.lost_events = Some(3))),
            ("cannot count skipped BPF runs", Box::new(|e| e.window.lost_events = None)),
            ("not tracked", Box::new(|e| e.window.untracked = 7)),
            ("object limit", Box::new(|e| e.scan = Some(ScanFacts { truncated: true, ..scan().unwrap() }))),
            ("changed under the scan", Box::new(|e| e.scan = Some(ScanFacts { changed_slabs: 50, ..scan().unwrap() }))),
        ];
        for (why, change) in cases {
            let mut e = evidence(&sites, Some(&g));
            change(&mut e);
            let c = judge(&e).confidence.unwrap();
            assert_eq!(c.level, "medium", "{why}: {}", c.summary);
            assert!(c.reasons.iter().any(|r| r.contains(why)), "{why}: {:?}", c.reasons);
        }
        // A step (a burst) grows too, but not as a leak does.
        let burst = Growth { steadiness: Some(0.4), ..growth(5_000) };
        let c = judge(&evidence(&sites, Some(&burst))).confidence.unwrap();
        assert_eq!(c.level, "medium", "{}", c.summary);
        assert!(c.reasons.iter().any(|r| r.contains("not steady")), "{:?}", c.reasons);
    }

    #[test]
    fn ties_and_nothing_outstanding_name_no_one() {
        let sites = [site("a+0x1/0x2", 500, 400), site("b+0x1/0x2", 500, 400)];
        let g = growth(1_000);
        let j = judge(&evidence(&sites, Some(&g)));
        assert!(!j.leak && j.note.unwrap().starts_with("tie: a+0x1/0x2 and b+0x1/0x2"));
        let j = judge(&evidence(&[], Some(&g)));
        assert!(!j.leak && j.summary.contains("nothing traced in the window is still outstanding"), "{}", j.summary);
        let j = judge(&evidence(&sites[..1], None));
        assert!(!j.leak && j.summary.contains("growth could not be measured"), "{}", j.summary);
    }

    #[test]
    fn without_marks_the_outstanding_bytes_choose() {
        let sites = [site("small+0x1/0x2", 200, 0), site("big+0x1/0x2", 5_000, 0)];
        let g = growth(5_000);
        let e = Evidence { scan: None, no_scan_reason: Some("turned off with --backend none"), ..evidence(&sites, Some(&g)) };
        let j = judge(&e);
        assert_eq!(j.leak_function.as_deref(), Some("big+0x1/0x2"));
        let c = j.confidence.unwrap();
        assert_eq!(c.level, "medium");
        assert!(c.reasons[0].contains("--backend none"), "{:?}", c.reasons);
        // A scan that marks nothing: low.
        assert_eq!(judge(&evidence(&sites, Some(&g))).confidence.unwrap().level, "low");
    }

    /// A stock of `members` followed every one, with `deaths` among them
    /// (1 in `every` traced), over a 60 s window with 48 s of allocations.
    fn stock(members: u64, births: u64, deaths: u64, every: u64) -> StockReport {
        let counts = crate::scan::rates::Counts { births, alloc_s: 48.0, deaths, deaths_s: 60.0, every };
        let reread = crate::scan::rates::Counts { every: 1, deaths: 0, ..counts };
        StockReport {
            members,
            followed: members,
            followed_every: 1,
            traced_by: "bpf".into(),
            traced: members / every,
            traced_every: every,
            births,
            traced_sample: Some(counts),
            reread: Some(reread),
            deaths_estimate: counts.deaths_estimate(),
            net_per_s: counts.net_per_s(),
            net_per_s_lower: counts.net_per_s_lower(),
            p_value: counts.p_value().max(reread.p_value()),
            ..StockReport::default()
        }
    }

    fn born(function: &str, count: u64, births: u64) -> Site {
        Site { births, ..site(function, count, births) }
    }

    /// The seed's case: 20 births in a minute into a stock of 600 000 that
    /// loses none, while the cache shrinks. The growth rule said "no leak".
    #[test]
    fn a_slow_leak_into_a_stock_is_named_whatever_the_cache_does() {
        let sites = [born("inotify_handle_inode_event+0x6c/0x1e0", 20, 20), site("other+0x1/0x10", 300, 0)];
        let shrank = growth(-7_678);
        for every in [1, 4] {
            let stock = stock(600_000, 20, 0, every);
            let e = Evidence { stock: Some(&stock), ..evidence(&sites, Some(&shrank)) };
            let j = judge(&e);
            assert!(j.leak, "1 in {every}: {j:?}");
            assert_eq!(j.leak_function.as_deref(), Some("inotify_handle_inode_event+0x6c/0x1e0"));
            let c = j.confidence.unwrap();
            assert!(c.level == "high" || c.level == "medium", "1 in {every}: {}", c.summary);
            assert!(j.summary.contains("born faster than it dies") && j.summary.contains("-7678 objects"), "{}", j.summary);
        }
        // Every member followed: strong; 1 in 4: the test is weaker.
        let strong = stock(600_000, 20, 0, 1);
        assert_eq!(judge(&Evidence { stock: Some(&strong), ..evidence(&sites, Some(&shrank)) }).confidence.unwrap().level, "high");
        let sampled = stock(600_000, 20, 0, 4);
        let c = judge(&Evidence { stock: Some(&sampled), ..evidence(&sites, Some(&shrank)) }).confidence.unwrap();
        assert_eq!(c.level, "medium", "{}", c.summary);
        assert!(c.reasons[0].starts_with("births beyond deaths at p = "), "{:?}", c.reasons);
    }

    #[test]
    fn a_stock_dying_as_fast_as_it_is_born_is_turnover() {
        let sites = [born("queue_add+0x1c/0x80", 4_800, 4_800)];
        let grew = growth(5_000);
        let stock = stock(12_000, 4_800, 6_000, 1);
        let j = judge(&Evidence { stock: Some(&stock), ..evidence(&sites, Some(&grew)) });
        assert!(!j.leak && j.confidence.is_none(), "{j:?}");
        assert!(j.summary.starts_with("no leak: 4800 allocations of the window joined a stock of 12000"), "{}", j.summary);
        assert!(j.summary.contains("turnover of long-lived objects, not a leak"), "{}", j.summary);
    }

    /// A sample too thin to see the deaths is not taken for a leak.
    #[test]
    fn a_thin_sample_says_it_cannot_tell() {
        let sites = [born("f+0x1/0x2", 20, 20)];
        let stock = stock(4_000_000, 20, 0, 16);
        let j = judge(&Evidence { stock: Some(&stock), ..evidence(&sites, Some(&growth(20))) });
        assert!(!j.leak, "{j:?}");
        assert!(j.summary.starts_with("no leak judged: ") && j.summary.contains("too few births"), "{}", j.summary);
        assert!(j.summary.contains("1 in 16 members' frees traced (bpf)"), "{}", j.summary);
    }

    #[test]
    fn births_name_the_site_and_share_it() {
        let two_sites = stock(50_000, 200, 0, 1);
        let g = growth(0);
        let tie = [born("a+0x1/0x2", 100, 100), born("b+0x1/0x2", 100, 100)];
        let j = judge(&Evidence { stock: Some(&two_sites), ..evidence(&tie, Some(&g)) });
        assert!(!j.leak && j.note.unwrap().starts_with("tie: a+0x1/0x2 and b+0x1/0x2"));
        let split = [born("a+0x1/0x2", 120, 120), born("b+0x1/0x2", 80, 80)];
        let c = judge(&Evidence { stock: Some(&two_sites), ..evidence(&split, Some(&g)) }).confidence.unwrap();
        assert_eq!(c.level, "medium", "{}", c.summary);
        assert!(c.reasons.iter().any(|r| r.contains("60% of the births")), "{:?}", c.reasons);
        let few = stock(50_000, 8, 0, 1);
        let sites = [born("a+0x1/0x2", 8, 8)];
        let c = judge(&Evidence { stock: Some(&few), ..evidence(&sites, Some(&g)) }).confidence.unwrap();
        assert_eq!(c.level, "low", "{}", c.summary);
    }

    /// No birth into the stock, or no stock: the growth rule, saying why.
    #[test]
    fn without_stock_evidence_growth_decides_and_says_so() {
        let sites = [site("load_msg+0x4f/0x140", 10_000, 9_900)];
        let grown = growth(10_100);
        let unborn = stock(3_000, 0, 0, 1);
        let j = judge(&Evidence { stock: Some(&unborn), ..evidence(&sites, Some(&grown)) });
        assert!(j.leak, "{j:?}");
        let c = j.confidence.unwrap();
        assert!(c.reasons.iter().any(|r| r.contains("no allocation of the window looks like the stock of 3000")), "{:?}", c.reasons);
        let none = StockReport { unavailable: Some("turned off with --backend none".into()), ..StockReport::default() };
        let c = judge(&Evidence { stock: Some(&none), ..evidence(&sites, Some(&grown)) }).confidence.unwrap();
        assert!(c.reasons.iter().any(|r| r.contains("without a stock to follow (turned off with --backend none)")), "{:?}", c.reasons);
    }
}

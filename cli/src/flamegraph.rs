//! Stacks for flame graphs: `--format folded` (Brendan Gregg's folded
//! stacks, for flamegraph.pl or inferno) and `--format flamegraph` (an SVG
//! drawn here: the same layout, no script, a tooltip per frame).
//!
//! Input everywhere: (frames innermost first, as the kernel unwinds them;
//! weight). Frames lose their `+0xoff/0xsize` (a flame graph merges by
//! function) and keep ` [module]`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Stacks outermost frame first, offsets dropped, identical ones merged,
/// heaviest first (then by name); empty stacks and zero weights dropped.
pub fn fold(stacks: &[(Vec<String>, u64)]) -> Vec<(Vec<String>, u64)> {
    let mut merged: HashMap<Vec<String>, u64> = HashMap::new();
    for (frames, weight) in stacks.iter().filter(|(f, w)| !f.is_empty() && *w > 0) {
        let line: Vec<String> = frames
            .iter()
            .rev()
            .map(|f| {
                let (name, module) = match f.split_once(" [") {
                    Some((name, module)) => (name, format!(" [{module}")),
                    None => (f.as_str(), String::new()),
                };
                let name = name.split_once('+').map_or(name, |(n, _)| n);
                format!("{}{module}", name.replace(';', ":"))
            })
            .collect();
        *merged.entry(line).or_default() += weight;
    }
    let mut lines: Vec<(Vec<String>, u64)> = merged.into_iter().collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    lines
}

/// Folded stacks: one line per stack, frames joined by `;`, then a space
/// and the weight.
pub fn folded(stacks: &[(Vec<String>, u64)]) -> String {
    fold(stacks).into_iter().map(|(frames, weight)| format!("{} {weight}\n", frames.join(";"))).collect()
}

/// `--format folded` or `--format flamegraph`: the tools that carry
/// stacks take both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackFormat {
    /// Folded lines.
    Folded,
    /// An SVG flame graph.
    Svg,
}

impl StackFormat {
    /// From a tool's `--format` (None: another format).
    pub fn from_matches(matches: &clap::ArgMatches) -> Option<StackFormat> {
        match matches.get_one::<String>("format").map(String::as_str) {
            Some("folded") => Some(StackFormat::Folded),
            Some("flamegraph") => Some(StackFormat::Svg),
            _ => None,
        }
    }

    /// The stacks in this format.
    pub fn render(self, stacks: &[(Vec<String>, u64)], labels: &Labels) -> String {
        match self {
            StackFormat::Folded => folded(stacks),
            StackFormat::Svg => svg(stacks, labels),
        }
    }
}

/// What the graph is of.
pub struct Labels<'a> {
    /// The heading ("sysak pagealloc: pages allocated by kernel stack").
    pub title: &'a str,
    /// The weight's unit ("pages", "bytes").
    pub unit: &'a str,
}

/// One frame of the merged tree: its weight and its callees by name.
#[derive(Default)]
struct Node {
    weight: u64,
    children: BTreeMap<String, Node>,
}

const WIDTH: f64 = 1200.0;
const MARGIN: f64 = 10.0;
const ROW: f64 = 16.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 26.0;
/// Frames narrower than this are not drawn (nor, being narrower still,
/// their callees): it bounds the SVG to about WIDTH / MIN_PX frames a row.
const MIN_PX: f64 = 0.5;
/// Verdana at 12 px averages about 7 px a character.
const CHAR_PX: f64 = 7.0;

/// A flame graph as an SVG document: the root at the bottom, each frame as
/// wide as its weight, its callees above it in name order, so the same path
/// lines up wherever it is called from. Module frames are drawn in blue,
/// the core kernel in warm colours.
pub fn svg(stacks: &[(Vec<String>, u64)], labels: &Labels) -> String {
    let mut root = Node::default();
    let mut depth = 0;
    for (frames, weight) in fold(stacks) {
        depth = depth.max(frames.len());
        root.weight += weight;
        let mut node = &mut root;
        for frame in frames {
            node = node.children.entry(frame).or_default();
            node.weight += weight;
        }
    }
    let height = TOP + (depth + 1) as f64 * ROW + BOTTOM;
    let mut out = String::new();
    let _ = write!(
        out,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="Verdana, sans-serif" font-size="12">"#,
            "\n",
            r##"<rect width="100%" height="100%" fill="#f4f4ee"/>"##,
            "\n",
            r#"<text x="{mid}" y="24" text-anchor="middle" font-size="17">{title}</text>"#,
            "\n",
            r##"<text x="{m}" y="{foot}" fill="#555">{total} {unit} in all; hover a frame for its share</text>"##,
            "\n"
        ),
        w = WIDTH,
        h = height,
        mid = WIDTH / 2.0,
        m = MARGIN,
        foot = height - 8.0,
        title = escape(labels.title),
        total = root.weight,
        unit = escape(labels.unit),
    );
    if root.weight > 0 {
        let bottom = height - BOTTOM - ROW;
        let mut canvas = Canvas { out, scale: (WIDTH - 2.0 * MARGIN) / root.weight as f64, total: root.weight, unit: labels.unit };
        canvas.frame("all", &root, MARGIN, bottom);
        canvas.callees(&root, MARGIN, bottom - ROW);
        out = canvas.out;
    }
    out.push_str("</svg>\n");
    out
}

/// Where frames are drawn: `scale` pixels per unit of weight, shares of
/// `total`.
struct Canvas<'a> {
    out: String,
    scale: f64,
    total: u64,
    unit: &'a str,
}

impl Canvas<'_> {
    /// `node`'s callees side by side from `x`, on the row at `y`, and theirs
    /// above.
    fn callees(&mut self, node: &Node, mut x: f64, y: f64) {
        for (name, child) in &node.children {
            let width = child.weight as f64 * self.scale;
            if width >= MIN_PX {
                self.frame(name, child, x, y);
                self.callees(child, x, y - ROW);
            }
            x += width;
        }
    }

    fn frame(&mut self, name: &str, node: &Node, x: f64, y: f64) {
        let width = node.weight as f64 * self.scale;
        let share = 100.0 * node.weight as f64 / self.total as f64;
        let (r, g, b) = colour(name);
        let _ = write!(
            self.out,
            r#"<g><title>{} ({} {}, {share:.2}%)</title><rect x="{x:.2}" y="{y:.1}" width="{width:.2}" height="{h:.1}" rx="2" fill="rgb({r},{g},{b})"/>"#,
            escape(name),
            node.weight,
            escape(self.unit),
            h = ROW - 1.0,
        );
        // The whole name, or at least three of its characters and "..": "a.."
        // tells nothing.
        let fits = ((width - 6.0) / CHAR_PX).floor().max(0.0) as usize;
        let text: Option<String> = match name.chars().count() {
            n if n <= fits => Some(name.to_string()),
            _ if fits >= 5 => Some(name.chars().take(fits - 2).chain("..".chars()).collect()),
            _ => None,
        };
        if let Some(text) = text {
            let _ = write!(self.out, r#"<text x="{:.2}" y="{:.1}">{}</text>"#, x + 3.0, y + ROW - 4.5, escape(&text));
        }
        self.out.push_str("</g>\n");
    }
}

/// A stable colour per function (the same name, the same colour in every
/// graph): flamegraph.pl's warm palette, blues for module frames.
fn colour(name: &str) -> (u8, u8, u8) {
    // FNV-1a: stable across runs and Rust versions, unlike DefaultHasher.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let v = |shift: u32| ((h >> shift) & 0xff) as f64 / 255.0;
    if name.ends_with(']') {
        ((80.0 + 60.0 * v(0)) as u8, (150.0 + 60.0 * v(8)) as u8, (200.0 + 55.0 * v(16)) as u8)
    } else {
        ((205.0 + 50.0 * v(0)) as u8, (230.0 * v(8)) as u8, (55.0 * v(16)) as u8)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(frames: &[&str], weight: u64) -> (Vec<String>, u64) {
        (frames.iter().map(|f| f.to_string()).collect(), weight)
    }

    #[test]
    fn outermost_first_offsets_dropped_same_stacks_merged() {
        let stacks = vec![
            stack(&["kmalloc_trace+0x1a/0x40", "load_msg+0x2f/0x120", "do_syscall_64+0x5d/0x90"], 100),
            stack(&["leakmod_kmalloc_one+0x9/0x50 [leakmod]", "tick+0x33/0x90 [leakmod]"], 7),
            stack(&["kmalloc_trace+0x1b/0x40", "load_msg+0x2f/0x120", "do_syscall_64+0x5d/0x90"], 20),
            (Vec::new(), 5),
        ];
        assert_eq!(folded(&stacks), "do_syscall_64;load_msg;kmalloc_trace 120\ntick [leakmod];leakmod_kmalloc_one [leakmod] 7\n");
    }

    /// (title text, width) of every drawn frame.
    fn frames(svg: &str) -> Vec<(String, f64)> {
        svg.lines()
            .filter_map(|l| {
                let title = l.split_once("<title>")?.1.split_once("</title>")?.0;
                let width = l.split_once(" width=\"")?.1.split_once('"')?.0.parse().ok()?;
                Some((title.to_string(), width))
            })
            .collect()
    }

    #[test]
    fn frames_are_as_wide_as_their_weight() {
        let stacks = vec![stack(&["pipe_write", "vfs_write"], 300), stack(&["do_wp_page", "exc_page_fault"], 100)];
        let svg = svg(&stacks, &Labels { title: "t", unit: "pages" });
        let drawn = frames(&svg);
        let width = |name: &str| drawn.iter().find(|(t, _)| t.starts_with(name)).unwrap_or_else(|| panic!("{name}: {svg}")).1;
        assert_eq!(drawn.len(), 5, "all, two callers, two callees: {drawn:?}");
        assert!((width("all") - (WIDTH - 2.0 * MARGIN)).abs() < 0.01);
        assert!((width("vfs_write") / width("exc_page_fault") - 3.0).abs() < 0.01);
        assert_eq!(width("vfs_write"), width("pipe_write"));
        assert!(drawn.iter().any(|(t, _)| t == "pipe_write (300 pages, 75.00%)"), "{drawn:?}");
        assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count());
    }

    #[test]
    fn names_are_escaped_and_hair_thin_frames_skipped() {
        let stacks = vec![stack(&["f<T>&\"x\""], 1_000_000), stack(&["tiny"], 1)];
        let svg = svg(&stacks, &Labels { title: "a < b", unit: "bytes" });
        assert!(svg.contains("f&lt;T&gt;&amp;&quot;x&quot;") && svg.contains("a &lt; b"), "{svg}");
        assert!(!svg.contains("tiny"), "a frame of a millionth of the width is drawn: {svg}");
        assert!(!svg.contains("<T>"));
    }

    #[test]
    fn nothing_to_draw_is_still_a_document() {
        let svg = svg(&[], &Labels { title: "none", unit: "pages" });
        assert!(svg.contains("0 pages in all") && svg.ends_with("</svg>\n") && !svg.contains("<g>"), "{svg}");
    }
}

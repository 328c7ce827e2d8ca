//! Output: the `--format table|json` flag every tool takes, and helpers to
//! render typed reports. JSON goes to stdout as one document; progress and
//! diagnostics go to stderr. Tools build a serde report first; tables and
//! JSON are two renderings of it.

use std::io::{self, Write};

use clap::{Arg, ArgMatches};
use serde::Serialize;

/// How a report is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Human-readable table (default).
    #[default]
    Table,
    /// One JSON document on stdout.
    Json,
}

impl Format {
    /// Parse the user's word.
    pub fn parse(word: &str) -> Option<Format> {
        match word {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The word for it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
        }
    }

    /// The format chosen with [`format_arg`] in `matches`.
    pub fn from_matches(matches: &ArgMatches) -> Format {
        matches.get_one::<String>("format").and_then(|w| Format::parse(w)).unwrap_or_default()
    }
}

/// The `--format table|json` argument, identical for every tool.
pub fn format_arg() -> Arg {
    Arg::new("format")
        .long("format")
        .value_name("FORMAT")
        .value_parser(["table", "json"])
        .default_value("table")
        .help("Output format: a table for people, or one JSON document on stdout")
}

/// Write `report` as one pretty JSON document and a newline to stdout.
pub fn print_json<T: Serialize>(report: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    print_text(&text)
}

/// Write `text` to stdout. A closed pipe (`sysak ... | head`) is not an
/// error: the reader has what it wanted.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A table with sysak's look: no borders, left-aligned header row.
pub fn plain_table<I, S>(header: I) -> comfy_table::Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING).set_content_arrangement(comfy_table::ContentArrangement::Disabled).set_header(header);
    table
}

/// `1536` -> `"1.5K"`: a size in bytes for people, powers of 1024.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// `"6G"`, `"1.5G"`, `"512M"`, `"4096"` -> bytes (powers of 1024; a
/// trailing `B`/`iB` is allowed: `"1.5GiB"`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (number, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("{text:?} is not a size (e.g. 1.5G, 512M, 4096)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} is not a size"));
    }
    Ok((value * (1u64 << shift) as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("6G"), Ok(6 << 30));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1G").is_err());
    }

    use super::*;

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(6 << 30), "6.0G");
    }

    #[test]
    fn format_words() {
        assert_eq!(Format::parse("json"), Some(Format::Json));
        assert_eq!(Format::parse("table"), Some(Format::Table));
        assert_eq!(Format::parse("xml"), None);
    }
}

//! The Prometheus text exposition format (version 0.0.4), for fleets that
//! scrape hosts: node_exporter's textfile collector reads what
//! [`write_textfile`] writes.
//!
//! Each metric family is written whole — `# HELP`, `# TYPE`, then all its
//! samples — as the format requires; label values are escaped.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
}

impl MetricType {
    fn name(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
        }
    }
}

/// One sample: label pairs and a value.
pub type Sample<'a> = (Vec<(&'a str, String)>, f64);

/// An exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// A family `name` (units in the name: `_bytes`, `_seconds`) with its
    /// samples. A family without samples is left out.
    pub fn family(&mut self, name: &str, kind: MetricType, help: &str, samples: &[Sample<'_>]) {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.name());
        for (labels, value) in samples {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
            let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
            let _ = writeln!(self.text, "{name}{labels} {}", number(*value));
        }
    }

    /// A family with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, MetricType::Gauge, help, &[(Vec::new(), value)]);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.text
    }
}

/// Values as the format spells them: integers without a fraction.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Write `text` to `path` atomically (a temporary file in the same
/// directory, renamed over it), so a collector never reads half a file.
/// The temporary name does not end in `.prom`: the textfile collector
/// ignores it.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_whole_and_labels_escaped() {
        let mut e = Exposition::new();
        e.gauge("sysak_x_bytes", "Bytes of x.", 1024.0);
        e.family(
            "sysak_y_ratio",
            MetricType::Gauge,
            "A ratio\nof y.",
            &[(vec![("cache", "a\"b\\c".to_string())], 0.5), (vec![("cache", "d".to_string())], 2.0)],
        );
        e.family("sysak_empty", MetricType::Gauge, "none", &[]);
        assert_eq!(
            e.finish(),
            "# HELP sysak_x_bytes Bytes of x.\n# TYPE sysak_x_bytes gauge\nsysak_x_bytes 1024\n\
             # HELP sysak_y_ratio A ratio\\nof y.\n# TYPE sysak_y_ratio gauge\n\
             sysak_y_ratio{cache=\"a\\\"b\\\\c\"} 0.5\nsysak_y_ratio{cache=\"d\"} 2\n"
        );
    }
}

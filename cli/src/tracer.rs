//! `--tracer auto|bpf|perf`, the same for every tool that traces: BPF
//! (programs and maps in the kernel) where it loads, perf samples as the
//! fallback, and what the report says when the fallback was taken.

use clap::{Arg, ArgMatches};
use serde::Serialize;

use crate::tool::EnvironmentError;

/// `--tracer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracerChoice {
    /// BPF where it loads, else perf (and the report says why).
    Auto,
    /// BPF or fail.
    Bpf,
    /// perf samples.
    Perf,
}

impl TracerChoice {
    /// The argument; `help` says what BPF and perf do for this tool.
    pub fn arg(help: &'static str) -> Arg {
        Arg::new("tracer").long("tracer").value_name("HOW").value_parser(["auto", "bpf", "perf"]).default_value("auto").help(help)
    }

    /// From the matches of a command with [`TracerChoice::arg`].
    pub fn from_matches(matches: &ArgMatches) -> TracerChoice {
        match matches.get_one::<String>("tracer").map(String::as_str) {
            Some("bpf") => TracerChoice::Bpf,
            Some("perf") => TracerChoice::Perf,
            _ => TracerChoice::Auto,
        }
    }

    /// Whether BPF is to be tried: why not, if it is not.
    pub fn try_bpf(self) -> Result<(), String> {
        match self {
            TracerChoice::Perf => Err("--tracer perf".into()),
            _ => Ok(()),
        }
    }

    /// BPF could not be used (`why`): perf takes over, and the report's
    /// note says why (None when perf was asked for); with `--tracer bpf` it
    /// is an environment error (exit 3).
    pub fn fall_back(self, why: &str) -> Result<Option<String>, EnvironmentError> {
        match self {
            TracerChoice::Bpf => Err(EnvironmentError(format!("--tracer bpf: {why}"))),
            TracerChoice::Auto => Ok(Some(format!("BPF not used: {why}"))),
            TracerChoice::Perf => Ok(None),
        }
    }
}

/// What traced a window, as reports (and their JSON) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Tracer {
    /// BPF programs on raw tracepoints, their maps read at the end.
    #[serde(rename = "bpf")]
    Bpf,
    /// perf samples with in-kernel filters.
    #[serde(rename = "perf")]
    Perf,
    /// /proc/vmallocinfo read at both ends (no vmap tracepoints).
    #[serde(rename = "vmallocinfo")]
    Vmallocinfo,
    /// /proc/vmallocinfo, and perf samples of the vmap tracepoints.
    #[serde(rename = "vmallocinfo+perf")]
    VmallocinfoPerf,
    /// Nothing was traced (a memory dump read offline).
    #[serde(rename = "none")]
    NotTraced,
}

impl Tracer {
    /// The name reports give it.
    pub fn name(self) -> &'static str {
        match self {
            Tracer::Bpf => "bpf",
            Tracer::Perf => "perf",
            Tracer::Vmallocinfo => "vmallocinfo",
            Tracer::VmallocinfoPerf => "vmallocinfo+perf",
            Tracer::NotTraced => "none",
        }
    }
}

impl std::fmt::Display for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_and_fallen_back_to() {
        let command = clap::Command::new("t").arg(TracerChoice::arg("h"));
        let choice = |args: &[&str]| TracerChoice::from_matches(&command.clone().get_matches_from(args));
        assert_eq!(choice(&["t"]), TracerChoice::Auto);
        assert_eq!(choice(&["t", "--tracer", "perf"]), TracerChoice::Perf);
        assert_eq!(TracerChoice::Auto.fall_back("no BTF").unwrap().as_deref(), Some("BPF not used: no BTF"));
        assert_eq!(TracerChoice::Perf.fall_back("--tracer perf").unwrap(), None);
        assert_eq!(TracerChoice::Bpf.fall_back("no BTF").unwrap_err().0, "--tracer bpf: no BTF");
        assert!(TracerChoice::Perf.try_bpf().is_err() && TracerChoice::Bpf.try_bpf().is_ok());
    }
}

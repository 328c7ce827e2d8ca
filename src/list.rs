//! `sysak list`: built-in tools, plugins and external commands by category.
//! A broken plugin never takes the listing down: it is listed with the
//! reason it was refused. Names that lose to an earlier one (built-ins win,
//! then plugins in search order, then externals) are listed as shadowed.

use std::collections::BTreeMap;

use crate::plugin::{self, external};
use clap::{Arg, ArgAction, Command};
use serde::Serialize;
use sysak_cli::config::Config;
use sysak_cli::output::{self, Format};
use sysak_cli::tool::{EXIT_OK, EXIT_USAGE};

use crate::builtins;

/// One line of `sysak list`.
#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    category: String,
    summary: String,
    /// "builtin", "plugin" or "external".
    kind: &'static str,
    path: Option<String>,
    experimental: bool,
    /// "ok", "broken" or "shadowed".
    status: &'static str,
    reason: Option<String>,
}

#[derive(Serialize)]
struct Listing {
    commands: Vec<Entry>,
}

fn entries(config: &Config) -> Vec<Entry> {
    let mut list: Vec<Entry> = builtins::table()
        .into_iter()
        .map(|t| Entry {
            name: t.name.into(),
            category: t.category.into(),
            summary: t.summary.into(),
            kind: "builtin",
            path: None,
            experimental: t.experimental,
            status: "ok",
            reason: None,
        })
        .collect();
    for found in plugin::discover(&config.plugins) {
        let path = Some(found.path.display().to_string());
        let entry = match &found.loaded {
            Ok(p) => Entry {
                name: p.name().into(),
                category: p.category().into(),
                summary: p.summary().into(),
                kind: "plugin",
                path,
                experimental: p.experimental(),
                status: "ok",
                reason: None,
            },
            Err(e) => Entry {
                name: found.name(),
                category: "broken".into(),
                summary: String::new(),
                kind: "plugin",
                path,
                experimental: false,
                status: "broken",
                reason: Some(e.to_string()),
            },
        };
        push_unshadowed(&mut list, entry);
    }
    for program in external::discover(&config.plugins.libexec_dir) {
        let entry = Entry {
            name: program.name.clone(),
            category: "external".into(),
            summary: format!("external command {}", program.path.display()),
            kind: "external",
            path: Some(program.path.display().to_string()),
            experimental: false,
            status: "ok",
            reason: None,
        };
        push_unshadowed(&mut list, entry);
    }
    list
}

/// Append `entry`, marking it shadowed when a working command of the same
/// name is already listed.
fn push_unshadowed(list: &mut Vec<Entry>, mut entry: Entry) {
    if entry.status == "ok" {
        if let Some(winner) = list.iter().find(|e| e.status == "ok" && e.name == entry.name) {
            entry.status = "shadowed";
            entry.reason = Some(match &winner.path {
                None => format!("shadowed by the built-in '{}'", winner.name),
                Some(path) => format!("shadowed by {path}"),
            });
        }
    }
    list.push(entry);
}

/// Names a user can run, for "did you mean".
pub fn all_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = builtins::DISPATCHER_COMMANDS.iter().map(|(n, _)| n.to_string()).collect();
    names.extend(entries(config).into_iter().filter(|e| e.status == "ok").map(|e| e.name));
    names
}

/// Built-in tools by category, for `sysak --help` (loads no plugin).
pub fn overview() -> String {
    let mut text = String::from("Built-in tools:\n");
    for tool in builtins::table().iter().filter(|t| !t.experimental) {
        text.push_str(&format!("  {:<12} {}\n", tool.name, tool.summary));
    }
    text.push_str("\n'sysak list' also shows plugins; 'sysak help <command>' shows a command's options.\n");
    text
}

fn command() -> Command {
    Command::new("list")
        .bin_name("sysak list")
        .about("List tools and plugins by category")
        .arg(Arg::new("all").long("all").action(ArgAction::SetTrue).help("Also list experimental ones"))
        .arg(output::format_arg())
}

/// `sysak list [--all] [--format json]`.
pub fn run(config: &Config, args: &[String]) -> u8 {
    let matches = match command().try_get_matches_from(std::iter::once("list").chain(args.iter().map(String::as_str))) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let all = matches.get_flag("all");
    let commands: Vec<Entry> = entries(config).into_iter().filter(|e| all || !e.experimental).collect();
    let result = match Format::from_matches(&matches) {
        Format::Json => output::print_json(&Listing { commands }),
        Format::Table => output::print_text(&render(&commands)),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("sysak list: {e:#}");
            EXIT_OK
        }
    }
}

fn render(commands: &[Entry]) -> String {
    let mut by_category: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for entry in commands.iter().filter(|e| e.status == "ok") {
        by_category.entry(entry.category.as_str()).or_default().push(entry);
    }
    let mut text = String::new();
    for (category, entries) in by_category {
        text.push_str(&format!("{category}:\n"));
        for e in entries {
            let source = match (e.kind, &e.path) {
                ("plugin", Some(path)) => format!("  [plugin {path}]"),
                _ => String::new(),
            };
            let flag = if e.experimental { " (experimental)" } else { "" };
            text.push_str(&format!("  {:<12} {}{flag}{source}\n", e.name, e.summary));
        }
    }
    let problems: Vec<&Entry> = commands.iter().filter(|e| e.status != "ok").collect();
    if !problems.is_empty() {
        text.push_str("\nnot available:\n");
        for e in problems {
            text.push_str(&format!("  {:<12} {}: {}\n", e.name, e.status, e.reason.as_deref().unwrap_or("")));
        }
    }
    text
}

//! `sysak-gen OUT_DIR`: man pages (sysak(8), sysak-<tool>(8)) and bash, zsh
//! and fish completions, generated from the same clap definitions the
//! tools parse with, so they cannot drift. Run by packaging/sysak.spec.

#[path = "../../../src/builtins.rs"]
mod builtins;

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};
use clap_complete::Shell;

/// The whole command line: global options, dispatcher commands, tools.
fn sysak() -> Command {
    let mut root = Command::new("sysak")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Linux kernel diagnostics: memory leaks, slab and page allocator, plugins")
        .long_about(
            "sysak dispatches to built-in tools, to plugins (shared libraries with the C ABI of \
             /usr/include/sysak/sysak_plugin.h in /usr/lib64/sysak/plugins or $SYSAK_PLUGIN_PATH) and to \
             external programs named sysak-<name>. Every tool takes --format table|json. Exit status: \
             0 nothing found, 1 found, 2 usage error, 3 environment error.",
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("Configuration file [default: /etc/sysak/sysak.toml, or $SYSAK_CONFIG]"),
        )
        .subcommand_required(true)
        .disable_help_subcommand(true)
        .subcommand(
            Command::new("list")
                .about(builtins::DISPATCHER_COMMANDS[0].1.to_string())
                .arg(Arg::new("all").long("all").action(ArgAction::SetTrue).help("Also list experimental tools"))
                .arg(sysak_cli::output::format_arg()),
        )
        .subcommand(Command::new("help").about(builtins::DISPATCHER_COMMANDS[1].1.to_string()).arg(Arg::new("command")))
        .after_help("FILES\n  /etc/sysak/sysak.toml   configuration\n  /usr/lib64/sysak/plugins   plugins");
    for tool in builtins::table() {
        root = root.subcommand((tool.command)().about(tool.summary));
    }
    root
}

fn write_man(command: Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let command = command.name(name.to_string()).bin_name(name.replace('-', " "));
    let mut page = Vec::new();
    clap_mangen::Man::new(command).section("8").render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.8")), page)
}

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/generated".into()));
    let (man, completions) = (out.join("man"), out.join("completions"));
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut root = sysak();
    write_man(root.clone(), "sysak", &man)?;
    for sub in root.get_subcommands().filter(|s| !matches!(s.get_name(), "list" | "help")) {
        write_man(sub.clone(), &format!("sysak-{}", sub.get_name()), &man)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut root, "sysak", &completions)?;
    }
    println!("{}", out.display());
    Ok(())
}

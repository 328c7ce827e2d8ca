//! `sysak`: the dispatcher. Glue only: it parses the global options, looks
//! the command up (built-ins first, then shared-object plugins, then
//! external `sysak-<name>` programs), checks what the tool needs, runs it,
//! and turns its result into an exit status (0 clean, 1 found, 2 usage,
//! 3 environment). Everything else lives in `sysak-kernel` (the kernel), `sysak-cli` (what tools share) and the tools.

mod builtins;
mod dispatch;
mod list;
mod plugin;

use std::path::PathBuf;
use std::process::ExitCode;

use sysak_cli::tool::{EXIT_OK, EXIT_USAGE};

const USAGE: &str = "usage: sysak [--config FILE] <command> [<args>]
       sysak list [--all] [--format json]
       sysak help <command>
       sysak --version";

/// Global options that come before the command name.
struct Global {
    config: Option<PathBuf>,
    rest: Vec<String>,
}

enum Parsed {
    Run(Global),
    Exit(u8),
}

fn parse_global(mut args: std::vec::IntoIter<String>) -> Result<Parsed, String> {
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-V" | "--version" => {
                println!("sysak {}", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Exit(EXIT_OK));
            }
            "-h" | "--help" => {
                println!("{USAGE}\n");
                print!("{}", list::overview());
                return Ok(Parsed::Exit(EXIT_OK));
            }
            "--config" => {
                config = Some(PathBuf::from(args.next().ok_or("--config needs a FILE")?));
            }
            _ if arg.starts_with("--config=") => {
                config = Some(PathBuf::from(&arg["--config=".len()..]));
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ => {
                let rest = std::iter::once(arg).chain(args).collect();
                return Ok(Parsed::Run(Global { config, rest }));
            }
        }
    }
    Err("no command given".into())
}

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!("sysak: argument {bad:?} is not valid UTF-8");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let global = match parse_global(args.into_iter()) {
        Ok(Parsed::Run(global)) => global,
        Ok(Parsed::Exit(code)) => return ExitCode::from(code),
        Err(message) => {
            eprintln!("sysak: {message}\n{USAGE}\nSee 'sysak list' for the commands.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    ExitCode::from(dispatch::run(global.config.as_deref(), global.rest))
}

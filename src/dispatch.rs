//! Command lookup and execution: built-ins, then shared-object plugins, then
//! external `sysak-<name>` programs, then "did you mean".

use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::plugin::{self, external, LoadedPlugin};
use sysak_cli::config::Config;
use sysak_cli::output::Format;
use sysak_cli::tool::{self, Context, Tool, EXIT_ENVIRONMENT, EXIT_OK, EXIT_USAGE};

use crate::{builtins, list};

/// Run `args[0]` with the rest of `args`; returns the exit status.
pub fn run(config_path: Option<&Path>, args: Vec<String>) -> u8 {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("sysak: {message}");
            return EXIT_USAGE;
        }
    };
    let (name, rest) = args.split_first().expect("the caller checked for a command");
    match name.as_str() {
        "list" => list::run(&config, &with_default_format(rest, &config)),
        "help" => help(&config, rest),
        _ => run_command(&config, name, rest),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let tools = builtins::table();
    if let Some(unknown) = config.tool_sections().find(|s| !tools.iter().any(|t| t.name == *s)) {
        let file = config.path.as_deref().unwrap_or(Path::new("config")).display().to_string();
        let known: Vec<&str> = ["plugins", "output"].into_iter().chain(tools.iter().map(|t| t.name)).collect();
        return Err(format!("{file}: unknown section [{unknown}] (known: {})", known.join(", ")));
    }
    Ok(config)
}

fn run_command(config: &Config, name: &str, args: &[String]) -> u8 {
    if let Some(tool) = builtins::table().into_iter().find(|t| t.name == name) {
        return run_builtin(&tool, args, config);
    }
    match plugin::find(&config.plugins, name) {
        Some(Ok(plugin)) => return run_plugin(&plugin, &with_default_format(args, config)),
        Some(Err(e)) => {
            eprintln!("sysak: {e}");
            return EXIT_ENVIRONMENT;
        }
        None => {}
    }
    if let Some(program) = external::find(&config.plugins.libexec_dir, name) {
        return exec_external(&program, args);
    }
    unknown_command(config, name)
}

/// `args` with `--format <[output] format>` appended when the user gave no
/// `--format` (every built-in tool takes it).
fn with_default_format(args: &[String], config: &Config) -> Vec<String> {
    let mut args = args.to_vec();
    let given = args.iter().any(|a| a == "--format" || a.starts_with("--format="));
    if let (Some(format), false) = (config.output.format, given) {
        args.extend(["--format".to_string(), format.name().to_string()]);
    }
    args
}

fn run_builtin(tool: &Tool, args: &[String], config: &Config) -> u8 {
    let argv = std::iter::once(tool.name.to_string()).chain(with_default_format(args, config));
    let matches = match command_of(tool).try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(e) if e.use_stderr() => {
            eprintln!("sysak {}: {} (see 'sysak {} --help')", tool.name, usage_error_line(&e), tool.name);
            return EXIT_USAGE;
        }
        // --help, --version.
        Err(e) => {
            let _ = e.print();
            return EXIT_OK;
        }
    };
    if let Err(e) = tool.needs.check_for(tool.name, &matches) {
        eprintln!("sysak {}: {e}", tool.name);
        return EXIT_ENVIRONMENT;
    }
    match (tool.run)(&matches, &Context { config }) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            eprintln!("sysak {}: {e:#}", tool.name);
            tool::exit_code_for(&e)
        }
    }
}

/// The first line of clap's usage error without its `error: ` prefix:
/// clap adds a blank line, tips and the usage, and a bad argument deserves
/// one line ("invalid value '3' for '--sample-every <N>': ...").
fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // An invalid choice lists the valid ones on a line of its own.
    if let Some(values) = text.lines().map(str::trim).find(|l| l.starts_with("[possible values:")) {
        line = format!("{line} {values}");
    }
    line
}

/// A tool's clap command, named as the user typed it.
pub fn command_of(tool: &Tool) -> clap::Command {
    (tool.command)().name(tool.name).bin_name(format!("sysak {}", tool.name))
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Take `--format X` / `--format=X` out of a plugin's arguments: the host
/// owns that flag and passes the choice in `struct sysak_host`.
fn split_format(args: &[String]) -> Result<(Format, Vec<String>), String> {
    let mut format = Format::Table;
    let mut rest = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let word = if arg == "--format" {
            iter.next().ok_or("--format needs table or json")?.as_str()
        } else if let Some(word) = arg.strip_prefix("--format=") {
            word
        } else {
            rest.push(arg.clone());
            continue;
        };
        format = Format::parse(word).ok_or(format!("unknown format {word:?}: use table or json"))?;
    }
    Ok((format, rest))
}

fn run_plugin(plugin: &LoadedPlugin, args: &[String]) -> u8 {
    let (format, args) = match split_format(args) {
        Ok(split) => split,
        Err(message) => {
            eprintln!("sysak {}: {message}", plugin.name());
            return EXIT_USAGE;
        }
    };
    if plugin.needs_root() && !tool::is_root() {
        eprintln!("sysak {}: needs root: run it as root (sudo sysak {} ...)", plugin.name(), plugin.name());
        return EXIT_ENVIRONMENT;
    }
    plugin.run(format, &args).clamp(0, 255) as u8
}

fn exec_external(program: &external::ExternalCommand, args: &[String]) -> u8 {
    let err = std::process::Command::new(&program.path).args(args).env("SYSAK_VERSION", env!("CARGO_PKG_VERSION")).exec();
    eprintln!("sysak: cannot run {}: {err}", program.path.display());
    EXIT_ENVIRONMENT
}

fn help(config: &Config, args: &[String]) -> u8 {
    let Some(name) = args.first() else {
        println!("{}\n", crate::USAGE);
        print!("{}", list::overview());
        return EXIT_OK;
    };
    if let Some(tool) = builtins::table().into_iter().find(|t| t.name == name.as_str()) {
        let _ = command_of(&tool).print_long_help();
        println!();
        return EXIT_OK;
    }
    if builtins::DISPATCHER_COMMANDS.iter().any(|(n, _)| n == name) {
        println!("{}", crate::USAGE);
        return EXIT_OK;
    }
    run_command(config, name, &["--help".to_string()])
}

fn unknown_command(config: &Config, name: &str) -> u8 {
    let known = list::all_names(config);
    let mut close: Vec<(usize, &String)> =
        known.iter().map(|k| (strsim::damerau_levenshtein(name, k), k)).filter(|(d, k)| *d <= 2 || k.starts_with(name)).collect();
    close.sort();
    let hint = match close.first() {
        Some((_, k)) => format!("; did you mean '{k}'?"),
        None => String::new(),
    };
    eprintln!("sysak: '{name}' is not a sysak command{hint} (see 'sysak list')");
    EXIT_USAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_taken_out_of_plugin_args() {
        let args: Vec<String> = ["-n", "5", "--format", "json", "x"].map(String::from).to_vec();
        assert_eq!(split_format(&args).unwrap(), (Format::Json, vec!["-n".into(), "5".into(), "x".into()]));
        let args: Vec<String> = ["--format=table"].map(String::from).to_vec();
        assert_eq!(split_format(&args).unwrap(), (Format::Table, vec![]));
        assert!(split_format(&["--format=xml".to_string()]).is_err());
        assert!(split_format(&["--format".to_string()]).is_err());
    }
}

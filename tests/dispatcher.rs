//! The `sysak` dispatcher: list, help, version, unknown commands, global
//! options, configuration errors, and `--help` for every built-in.

mod common;

use common::*;
use std::process::Command;

fn builtin_names(scratch: &Scratch) -> Vec<String> {
    let out = sysak(scratch, &[]).args(["list", "--all", "--format", "json"]).output().unwrap();
    json(&out)["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "builtin")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_groups_builtins_by_category() {
    let scratch = Scratch::new("list");
    let out = sysak(&scratch, &[]).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("memory:\n  memleak ") && text.contains("\n  slabtop "), "{text}");
    let out = sysak(&scratch, &[]).args(["list", "--format", "json"]).output().unwrap();
    let doc = json(&out);
    let slabtop = doc["commands"].as_array().unwrap().iter().find(|c| c["name"] == "slabtop").unwrap().clone();
    assert_eq!(slabtop["kind"], "builtin");
    assert_eq!(slabtop["category"], "memory");
    assert_eq!(slabtop["status"], "ok");
    let out = sysak(&scratch, &[]).args(["list", "--format", "yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_builtin_has_help_without_root() {
    let scratch = Scratch::new("help");
    let names = builtin_names(&scratch);
    assert!(!names.is_empty());
    for name in names {
        for args in [vec![name.as_str(), "--help"], vec!["help", name.as_str()]] {
            let out = run_as_nobody(&sysak(&scratch, &[]), &args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            let text = stdout(&out);
            assert!(text.contains(&format!("sysak {name}")), "{args:?}: {text}");
            assert!(text.contains("--format"), "{args:?} lacks --format: {text}");
        }
    }
}

#[test]
fn unknown_command_suggests_and_exits_2() {
    let scratch = Scratch::new("unknown");
    let out = sysak(&scratch, &[]).arg("slabtp").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "sysak: 'slabtp' is not a sysak command; did you mean 'slabtop'? (see 'sysak list')\n");
    let out = sysak(&scratch, &[]).arg("qqqqqqqq").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "sysak: 'qqqqqqqq' is not a sysak command (see 'sysak list')\n");
    let out = sysak(&scratch, &[]).args(["help", "slabtp"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A tool's bad argument is one line naming the tool and the argument.
#[test]
fn bad_tool_arguments_are_one_line() {
    let scratch = Scratch::new("badargs");
    for (args, says) in [
        (&["pagealloc", "--sample-every", "3"][..], "invalid value '3' for '--sample-every <N>': '3' is not a power of two from 1 to 4096"),
        (&["slabtop", "--bogus"][..], "unexpected argument '--bogus' found"),
        (&["memleak", "-i"][..], "a value is required for '--interval <SECS>' but none was supplied"),
        (&["memleak", "--tracer", "x"][..], "invalid value 'x' for '--tracer <HOW>' [possible values: auto, bpf, perf]"),
    ] {
        let out = sysak(&scratch, &[]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err, format!("sysak {}: {says} (see 'sysak {} --help')\n", args[0], args[0]), "{args:?}");
    }
}

#[test]
fn version_help_and_no_command() {
    let scratch = Scratch::new("version");
    let out = sysak(&scratch, &[]).arg("--version").output().unwrap();
    assert_eq!(stdout(&out), format!("sysak {}\n", env!("CARGO_PKG_VERSION")));
    let out = sysak(&scratch, &[]).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("usage: sysak") && stdout(&out).contains("slabtop"));
    let out = sysak(&scratch, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("sysak: no command given\nusage: sysak"), "{}", stderr(&out));
    let out = sysak(&scratch, &[]).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_configuration_names_file_line_and_key() {
    let scratch = Scratch::new("config");
    let config = scratch.path().join("bad.toml");
    std::fs::write(&config, "# site config\n[plugins]\ndirz = [\"/x\"]\n").unwrap();
    let out = Command::new(sysak_bin()).args(["--config"]).arg(&config).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("sysak: {}:3: unknown field `dirz`", config.display())), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    std::fs::write(&config, "[slabtopp]\nx = 1\n").unwrap();
    let out = Command::new(sysak_bin()).env("SYSAK_CONFIG", &config).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown section [slabtopp]"), "{}", stderr(&out));

    let out = Command::new(sysak_bin()).args(["--config", "/nonexistent/sysak.toml", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read config /nonexistent/sysak.toml"), "{}", stderr(&out));
}

#[test]
fn closed_stdout_is_not_an_error() {
    let scratch = Scratch::new("pipe");
    let cmd = sysak(&scratch, &[]);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{:?} slabtop -o | head -1 >/dev/null; echo ${{PIPESTATUS:-}}", cmd.get_program()))
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// `[output]` in the configuration sets the default format and language;
/// a flag still wins; the JSON is the same document in every language.
#[test]
fn output_section_sets_format_and_language() {
    let scratch = Scratch::new("output");
    let config = scratch.path().join("output.toml");
    std::fs::write(&config, "[output]\nformat = \"json\"\nlang = \"zh\"\n").unwrap();
    let run = |args: &[&str], lang_env: &str| {
        Command::new(sysak_bin()).env("LANG", lang_env).env_remove("LC_ALL").env_remove("LC_MESSAGES").args(args).output().unwrap()
    };
    let cfg = config.to_str().unwrap();
    let json_out = run(&["--config", cfg, "memleak", "--check"], "C");
    let doc: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("[output] format = json");
    assert!(doc["verdict"].is_string());
    let table = run(&["--config", cfg, "memleak", "--check", "--format", "table"], "C");
    assert!(stdout(&table).contains("结论"), "[output] lang = zh: {}", stdout(&table));
    let english = run(&["--config", cfg, "memleak", "--check", "--format", "table", "--lang", "en"], "C");
    assert!(stdout(&english).contains("verdict:"), "{}", stdout(&english));
    // Without configuration the locale decides, and JSON keys do not change.
    let plain = scratch.path().join("empty.toml");
    std::fs::write(&plain, "").unwrap();
    let zh = run(&["--config", plain.to_str().unwrap(), "memleak", "--check"], "zh_CN.UTF-8");
    assert!(stdout(&zh).contains("结论"), "{}", stdout(&zh));
    let keys = |lang: &str| -> Vec<String> {
        let out = run(&["--config", plain.to_str().unwrap(), "memleak", "--check", "--format", "json"], lang);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc.as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys("zh_CN.UTF-8"), keys("C"));
    let bad = scratch.path().join("bad.toml");
    std::fs::write(&bad, "[output]\nlang = \"fr\"\n").unwrap();
    let out = run(&["--config", bad.to_str().unwrap(), "list"], "C");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml:2"), "{}", stderr(&out));
}

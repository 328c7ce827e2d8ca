//! Plugins through `sysak`: both example plugins loaded and run, every
//! trust refusal, ABI checks, external `sysak-<name>` programs, shadowing.
//! Runs as root (trust checks only apply to root).

mod common;

use common::*;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

fn source(name: &str) -> PathBuf {
    repo_root().join("tests/plugins").join(name)
}

fn oomkill_source() -> PathBuf {
    repo_root().join("plugins/examples/oomkill/oomkill.c")
}

/// `sysak list --format json` entry for `name`.
fn listed(scratch: &Scratch, dirs: &[&Path], name: &str) -> serde_json::Value {
    let out = sysak(scratch, dirs).args(["list", "--all", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "list failed: {}", stderr(&out));
    let doc = json(&out);
    doc["commands"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {doc}")).clone()
}

/// A refused plugin: listed as broken with `reason`, and running it exits 3
/// with the same one-line reason.
fn assert_refused(scratch: &Scratch, dir: &Path, name: &str, reason: &str) {
    let entry = listed(scratch, &[dir], name);
    assert_eq!(entry["status"], "broken", "{entry}");
    let why = entry["reason"].as_str().unwrap();
    assert!(why.contains(reason), "reason {why:?} lacks {reason:?}");
    let out = sysak(scratch, &[dir]).arg(name).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(reason), "{err}");
}

#[test]
fn rust_plugin_runs_and_reads_real_cgroups() {
    let _lock = kernel_lock();
    let scratch = Scratch::new("rust");
    let dir = scratch.dir("plugins");
    install(&rust_plugin(), &dir, "libcgmemtop.so");
    let entry = listed(&scratch, &[&dir], "cgmemtop");
    assert_eq!((entry["status"].as_str(), entry["category"].as_str()), (Some("ok"), Some("memory")));

    // A real cgroup holding a known amount of anonymous memory.
    let cg = TestCgroup::create("cgmemtop");
    let mut hog = cg.spawn_memory_hog(48 << 20);
    let out = sysak(&scratch, &[&dir]).args(["cgmemtop", "-n", "0", "--format", "json"]).output().unwrap();
    hog.kill().ok();
    hog.wait().ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let row = doc["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cgroup"].as_str() == Some(cg.rel.as_str()))
        .unwrap_or_else(|| panic!("{} missing from {doc}", cg.rel))
        .clone();
    let usage = row["usage_bytes"].as_u64().unwrap();
    let anon = row["anon_bytes"].as_u64().unwrap();
    assert!(usage >= 48 << 20, "usage {usage} < 48 MiB");
    assert!((46 << 20..=64 << 20).contains(&anon), "anon {anon} not ~48 MiB");

    // Table format comes from the host's --format.
    let out = sysak(&scratch, &[&dir]).args(["cgmemtop", "-n", "3"]).output().unwrap();
    assert!(stdout(&out).contains("USAGE(M)"), "{}", stdout(&out));
    // Bad arguments are the plugin's usage errors.
    let out = sysak(&scratch, &[&dir]).args(["cgmemtop", "-n", "many"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("sysak cgmemtop: error: -n needs a number"), "{}", stderr(&out));
}

#[test]
fn c_plugin_reports_a_real_oom_kill() {
    let _lock = kernel_lock();
    let scratch = Scratch::new("c");
    let dir = scratch.dir("plugins");
    build_c_plugin(&oomkill_source(), &dir, "oomkill.so");
    assert_eq!(listed(&scratch, &[&dir], "oomkill")["status"], "ok");

    // Cause a real OOM kill inside a small memory cgroup.
    let cg = TestCgroup::create("oom");
    cg.set_limit(16 << 20);
    let mut hog = cg.spawn_memory_hog(64 << 20);
    let status = hog.wait().unwrap();
    assert!(!status.success(), "the hog should have been OOM-killed");
    let pid = hog.id() as i64;

    let out = sysak(&scratch, &[&dir]).args(["oomkill", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a kill is a finding: {}", stderr(&out));
    let doc = json(&out);
    let kill = doc["kills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["pid"].as_i64() == Some(pid))
        .unwrap_or_else(|| panic!("pid {pid} not in {doc}"))
        .clone();
    assert_eq!(kill["scope"], "memcg", "{kill}");
    assert_eq!(kill["comm"], "sysak-memhog", "{kill}");
    assert!(kill["memcg"].as_str().unwrap().ends_with(&cg.rel), "{kill}");
    assert!(kill["anon_rss_bytes"].as_u64().unwrap() > 8 << 20, "{kill}");

    let out = sysak(&scratch, &[&dir]).args(["oomkill"]).output().unwrap();
    assert!(stdout(&out).contains(&format!(" {pid} sysak-memhog")), "{}", stdout(&out));
}

#[test]
fn host_passes_args_format_and_log() {
    let scratch = Scratch::new("echo");
    let dir = scratch.dir("plugins");
    build_c_plugin(&source("echo_args.c"), &dir, "echoargs.so");
    let out = sysak(&scratch, &[&dir]).args(["echoargs", "a b", "--format", "json", "c"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), format!("format=1 abi=1 size=32 version={} argc=3 [echoargs] [a b] [c]\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(stderr(&out), "sysak echoargs: warning: logged through the host\n");
    // Experimental plugins are listed only with --all.
    let out = sysak(&scratch, &[&dir]).args(["list", "--format", "json"]).output().unwrap();
    assert!(!stdout(&out).contains("echoargs"));
    assert_eq!(listed(&scratch, &[&dir], "echoargs")["experimental"], true);
    // SYSAK_PLUGIN_PATH is searched too.
    let out = sysak(&scratch, &[]).env("SYSAK_PLUGIN_PATH", &dir).arg("echoargs").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn trust_refuses_plugins_others_could_write() {
    assert!(is_root(), "the trust tests need root");
    let scratch = Scratch::new("trust");
    let echo = source("echo_args.c");

    let dir = scratch.dir("owner");
    let file = build_c_plugin(&echo, &dir, "echoargs.so");
    chown(&file, Some(65534), None).unwrap();
    assert_refused(&scratch, &dir, "echoargs", "file is owned by uid 65534, not root");

    let dir = scratch.dir("gwfile");
    let file = build_c_plugin(&echo, &dir, "echoargs.so");
    set_mode(&file, 0o775);
    assert_refused(&scratch, &dir, "echoargs", "file is group-writable (mode 775)");

    let dir = scratch.dir("wwfile");
    let file = build_c_plugin(&echo, &dir, "echoargs.so");
    set_mode(&file, 0o757);
    assert_refused(&scratch, &dir, "echoargs", "file is world-writable (mode 757)");

    let dir = scratch.dir("gwdir");
    build_c_plugin(&echo, &dir, "echoargs.so");
    set_mode(&dir, 0o775);
    assert_refused(&scratch, &dir, "echoargs", "directory is group-writable (mode 775)");

    let dir = scratch.dir("wwdir");
    build_c_plugin(&echo, &dir, "echoargs.so");
    set_mode(&dir, 0o1757);
    assert_refused(&scratch, &dir, "echoargs", "directory is world-writable (mode 1757)");

    let dir = scratch.dir("dirowner");
    build_c_plugin(&echo, &dir, "echoargs.so");
    chown(&dir, Some(65534), None).unwrap();
    assert_refused(&scratch, &dir, "echoargs", "directory is owned by uid 65534, not root");
}

#[test]
fn abi_and_format_checks_refuse_bad_plugins() {
    let scratch = Scratch::new("abi");
    let dir = scratch.dir("plugins");
    build_c_plugin(&source("bad_abi_version.c"), &dir, "futureabi.so");
    build_c_plugin(&source("short_struct.c"), &dir, "shorty.so");
    build_c_plugin(&source("no_entry.c"), &dir, "noentry.so");
    build_c_plugin(&source("undefined_symbol.c"), &dir, "unresolved.so");
    let text = dir.join("notelf.so");
    std::fs::write(&text, "#!/bin/sh\necho not a library\n").unwrap();
    set_mode(&text, 0o755);
    let exe = dir.join("anexe.so");
    std::fs::copy("/bin/true", &exe).unwrap();

    assert_refused(&scratch, &dir, "futureabi", "plugin ABI version 99 is not supported (this sysak speaks version 1)");
    assert_refused(&scratch, &dir, "shorty", "descriptor struct_size 16 is smaller than ABI version 1's 48 bytes");
    assert_refused(&scratch, &dir, "noentry", "does not export sysak_plugin_descriptor(): not a sysak plugin");
    assert_refused(&scratch, &dir, "unresolved", "undefined symbol: sysak_symbol_that_does_not_exist");
    assert_refused(&scratch, &dir, "notelf", "is not a shared object (no ELF header)");
    // /bin/true is a PIE (ET_DYN): the dynamic loader is the one to refuse.
    assert_refused(&scratch, &dir, "anexe", "cannot load");

    // None of them takes `sysak list` down: the built-ins are still there.
    let out = sysak(&scratch, &[&dir]).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("slabtop"), "{text}");
    assert!(text.contains("not available:"), "{text}");
}

#[test]
fn builtins_win_over_plugins_and_externals() {
    let scratch = Scratch::new("shadow");
    let dir = scratch.dir("plugins");
    build_c_plugin(&source("shadow_slabtop.c"), &dir, "impostor.so");
    let libexec = scratch.dir("libexec");
    std::fs::write(libexec.join("sysak-slabtop"), "#!/bin/sh\necho EXTERNAL\n").unwrap();
    set_mode(&libexec.join("sysak-slabtop"), 0o755);

    let out = sysak(&scratch, &[&dir]).args(["list", "--format", "json"]).output().unwrap();
    let doc = json(&out);
    let slabtops: Vec<_> = doc["commands"].as_array().unwrap().iter().filter(|c| c["name"] == "slabtop").collect();
    assert_eq!(slabtops.len(), 3, "{doc}");
    assert_eq!(slabtops[0]["kind"], "builtin");
    for shadowed in &slabtops[1..] {
        assert_eq!(shadowed["status"], "shadowed");
        assert_eq!(shadowed["reason"], "shadowed by the built-in 'slabtop'");
    }
    let out = sysak(&scratch, &[&dir]).args(["slabtop", "--help"]).output().unwrap();
    assert!(!stdout(&out).contains("IMPOSTOR") && !stdout(&out).contains("EXTERNAL"));
    assert!(stdout(&out).contains("Sort criteria"));
}

#[test]
fn external_commands_run_git_style() {
    let scratch = Scratch::new("ext");
    let libexec = scratch.dir("libexec");
    let script = libexec.join("sysak-hello");
    std::fs::write(&script, "#!/bin/sh\necho \"hello $# [$1] [$2] $SYSAK_VERSION\"\nexit 5\n").unwrap();
    set_mode(&script, 0o755);
    let out = sysak(&scratch, &[]).args(["hello", "x y", "z"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(stdout(&out), format!("hello 2 [x y] [z] {}\n", env!("CARGO_PKG_VERSION")));
    let listed = listed(&scratch, &[], "hello");
    assert_eq!(listed["kind"], "external");

    // On PATH as well, after the libexec directory.
    let bin = scratch.dir("bin");
    std::fs::write(bin.join("sysak-onpath"), "#!/bin/sh\necho on path\n").unwrap();
    set_mode(&bin.join("sysak-onpath"), 0o755);
    let out = sysak(&scratch, &[]).env("PATH", format!("{}:/usr/bin:/bin", bin.display())).arg("onpath").output().unwrap();
    assert_eq!(stdout(&out), "on path\n");
}

/// The memory hog, compiled once per test binary.
fn memhog() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sysak-memhog");
            let ok = std::process::Command::new("cc").arg("-O1").arg("-o").arg(&out).arg(source("memhog.c")).status().unwrap().success();
            assert!(ok, "building memhog.c");
            out
        })
        .clone()
}

/// A memory cgroup made for one test and removed after it, on whichever
/// hierarchy the host has (v2 unified, or v1's memory controller).
struct TestCgroup {
    dir: PathBuf,
    /// Path as the kernel prints it (relative to the hierarchy root).
    rel: String,
    v2: bool,
}

impl TestCgroup {
    fn create(tag: &str) -> TestCgroup {
        let name = format!("sysak-test-{tag}-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let root = if v2 { PathBuf::from("/sys/fs/cgroup") } else { PathBuf::from("/sys/fs/cgroup/memory") };
        if v2 {
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+memory");
        }
        let dir = root.join(&name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TestCgroup { dir, rel: format!("/{name}"), v2 }
    }

    fn set_limit(&self, bytes: u64) {
        let file = if self.v2 { "memory.max" } else { "memory.limit_in_bytes" };
        std::fs::write(self.dir.join(file), bytes.to_string()).unwrap();
        if !self.v2 {
            let _ = std::fs::write(self.dir.join("memory.swappiness"), "0");
        } else {
            let _ = std::fs::write(self.dir.join("memory.swap.max"), "0");
        }
    }

    /// A process in this cgroup that touches `bytes` of anonymous
    /// memory and then sleeps.
    fn spawn_memory_hog(&self, bytes: u64) -> std::process::Child {
        let procs = self.dir.join("cgroup.procs");
        let hog = memhog();
        let script = format!("echo $$ > {} && exec {} {bytes}", procs.display(), hog.display());
        let mut child = std::process::Command::new("sh").args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().unwrap();
        // Wait until the memory is touched (or the process died trying).
        use std::io::Read;
        let mut buf = [0u8; 6];
        let _ = child.stdout.as_mut().unwrap().read(&mut buf);
        child
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Kill whatever is left, then remove the group (retry: rmdir fails
        // while the kernel is still tearing the last task down).
        if let Ok(pids) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

//! cgmemtop: a sysak plugin in Rust: memory cgroups ranked by memory charged.
//!
//! Works on both cgroup hierarchies:
//! - v2 (unified, `cgroup.controllers` at the mount root): `memory.current`,
//!   and `anon`, `file`, `kernel` (5.18+), `slab` (5.9+) from `memory.stat`;
//! - v1 (`/sys/fs/cgroup/memory`): `memory.usage_in_bytes`, `rss` and
//!   `cache` from `memory.stat` (per-cgroup, not `total_*`), and
//!   `memory.kmem.usage_in_bytes` as kernel memory where the kernel still
//!   has it (removed in 6.x builds without kmem accounting for v1).
//!
//! The walk is bounded (at most 100 000 cgroups, depth 32), so a runaway
//! container host cannot make the tool itself a memory problem.

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use sysak_plugin::{Format, Host};

const MAX_CGROUPS: usize = 100_000;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Default)]
struct CgroupMemory {
    path: String,
    usage_bytes: u64,
    anon_bytes: Option<u64>,
    file_bytes: Option<u64>,
    kernel_bytes: Option<u64>,
    slab_bytes: Option<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Hierarchy {
    V1,
    V2,
}

struct Options {
    top: usize,
    root: PathBuf,
}

fn usage() -> &'static str {
    "usage: sysak cgmemtop [-n N] [--root DIR] [--format table|json]\n\n\
     Memory cgroups ranked by memory charged to them (cgroup v1 and v2).\n\
     -n N        show the N largest (default 20, 0 for all)\n\
     --root DIR  cgroup mount to walk (default: /sys/fs/cgroup, or its memory/ on v1)\n"
}

fn parse_args(host: &Host, args: &[String]) -> Result<Option<Options>, i32> {
    let mut opts = Options { top: 20, root: PathBuf::new() };
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{}", usage());
                return Ok(None);
            }
            "-n" => match iter.next().and_then(|v| v.parse().ok()) {
                Some(n) => opts.top = n,
                None => {
                    host.log(sysak_plugin::abi::LOG_ERROR, "-n needs a number");
                    return Err(2);
                }
            },
            "--root" => match iter.next() {
                Some(dir) => opts.root = PathBuf::from(dir),
                None => {
                    host.log(sysak_plugin::abi::LOG_ERROR, "--root needs a directory");
                    return Err(2);
                }
            },
            other => {
                host.log(sysak_plugin::abi::LOG_ERROR, &format!("unknown argument '{other}' (see --help)"));
                return Err(2);
            }
        }
    }
    Ok(Some(opts))
}

/// Find the memory hierarchy: v2 if the root has `cgroup.controllers`
/// listing memory, else v1's `memory/` directory.
fn locate(root: &Path) -> Option<(PathBuf, Hierarchy)> {
    let base = if root.as_os_str().is_empty() { Path::new("/sys/fs/cgroup") } else { root };
    if let Ok(controllers) = fs::read_to_string(base.join("cgroup.controllers")) {
        if controllers.split_whitespace().any(|c| c == "memory") {
            return Some((base.to_owned(), Hierarchy::V2));
        }
    }
    if base.join("memory.usage_in_bytes").exists() {
        return Some((base.to_owned(), Hierarchy::V1));
    }
    let v1 = base.join("memory");
    v1.join("memory.usage_in_bytes").exists().then_some((v1, Hierarchy::V1))
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read_cgroup(dir: &Path, rel: String, hierarchy: Hierarchy) -> Option<CgroupMemory> {
    let stat = fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    Some(match hierarchy {
        Hierarchy::V2 => CgroupMemory {
            path: rel,
            // The v2 root has no memory.current: sum of children is not the
            // same thing, so the root is reported only where the file exists.
            usage_bytes: read_u64(&dir.join("memory.current"))?,
            anon_bytes: stat_value(&stat, "anon"),
            file_bytes: stat_value(&stat, "file"),
            kernel_bytes: stat_value(&stat, "kernel"),
            slab_bytes: stat_value(&stat, "slab"),
        },
        Hierarchy::V1 => CgroupMemory {
            path: rel,
            usage_bytes: read_u64(&dir.join("memory.usage_in_bytes"))?,
            anon_bytes: stat_value(&stat, "rss"),
            file_bytes: stat_value(&stat, "cache"),
            kernel_bytes: read_u64(&dir.join("memory.kmem.usage_in_bytes")),
            slab_bytes: None,
        },
    })
}

fn walk(root: &Path, hierarchy: Hierarchy) -> (Vec<CgroupMemory>, bool) {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_owned(), 0usize)];
    let mut truncated = false;
    while let Some((dir, depth)) = stack.pop() {
        if out.len() >= MAX_CGROUPS {
            truncated = true;
            break;
        }
        let rel = match dir.strip_prefix(root) {
            Ok(r) if r.as_os_str().is_empty() => "/".to_string(),
            Ok(r) => format!("/{}", r.display()),
            Err(_) => continue,
        };
        if let Some(cg) = read_cgroup(&dir, rel, hierarchy) {
            out.push(cg);
        }
        if depth >= MAX_DEPTH {
            truncated = true;
            continue;
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push((entry.path(), depth + 1));
                }
            }
        }
    }
    (out, truncated)
}

fn opt_json(v: Option<u64>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn mib(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}", v as f64 / (1 << 20) as f64))
}

fn run(host: &Host, args: Vec<String>) -> i32 {
    let opts = match parse_args(host, &args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return 0,
        Err(code) => return code,
    };
    let Some((root, hierarchy)) = locate(&opts.root) else {
        host.log(sysak_plugin::abi::LOG_ERROR, "no memory cgroup hierarchy found (is the memory controller mounted?)");
        return 3;
    };
    let (mut groups, truncated) = walk(&root, hierarchy);
    if truncated {
        host.warn(&format!("walk stopped at {MAX_CGROUPS} cgroups or depth {MAX_DEPTH}"));
    }
    groups.sort_by(|a, b| b.usage_bytes.cmp(&a.usage_bytes).then(a.path.cmp(&b.path)));
    let total = groups.len();
    if opts.top > 0 {
        groups.truncate(opts.top);
    }
    let version = if hierarchy == Hierarchy::V2 { "v2" } else { "v1" };
    let mut out = String::new();
    match host.format() {
        Format::Json => {
            let rows: Vec<String> = groups
                .iter()
                .map(|g| {
                    format!(
                        "{{\"cgroup\": {}, \"usage_bytes\": {}, \"anon_bytes\": {}, \"file_bytes\": {}, \"kernel_bytes\": {}, \"slab_bytes\": {}}}",
                        json_string(&g.path), g.usage_bytes, opt_json(g.anon_bytes),
                        opt_json(g.file_bytes), opt_json(g.kernel_bytes), opt_json(g.slab_bytes)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "{{\"hierarchy\": \"{version}\", \"root\": {}, \"cgroups_seen\": {total}, \"truncated\": {truncated}, \"cgroups\": [\n  {}\n]}}",
                json_string(&root.display().to_string()),
                rows.join(",\n  ")
            );
        }
        Format::Table => {
            let _ = writeln!(out, "memory cgroups ({version}, {}): {total}", root.display());
            let _ = writeln!(out, "{:>10} {:>10} {:>10} {:>10} {:>10}  CGROUP", "USAGE(M)", "ANON(M)", "FILE(M)", "KERNEL(M)", "SLAB(M)");
            for g in &groups {
                let _ = writeln!(
                    out,
                    "{:>10} {:>10} {:>10} {:>10} {:>10}  {}",
                    mib(Some(g.usage_bytes)),
                    mib(g.anon_bytes),
                    mib(g.file_bytes),
                    mib(g.kernel_bytes),
                    mib(g.slab_bytes),
                    g.path
                );
            }
        }
    }
    match sysak_plugin::print(&out) {
        Ok(()) => 0,
        Err(e) => {
            host.warn(&format!("writing the report: {e}"));
            3
        }
    }
}

sysak_plugin::declare_plugin! {
    name: "cgmemtop",
    summary: "memory cgroups ranked by memory charged (anon, file, kernel, slab)",
    category: "memory",
    flags: 0,
    run: run,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_keys_are_exact() {
        let stat = "cache 4096\nrss 8192\nrss_huge 0\ntotal_rss 99\n";
        assert_eq!(stat_value(stat, "rss"), Some(8192));
        assert_eq!(stat_value(stat, "cache"), Some(4096));
        assert_eq!(stat_value(stat, "slab"), None);
    }
}

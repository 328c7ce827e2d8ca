//! Helpers shared by the integration tests: the built `sysak` binary run
//! with an isolated configuration, scratch directories, and plugin builds.
#![allow(dead_code)]

pub mod bpfmap;
pub mod msgq;
pub mod pipes;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// Serializes tests that touch global kernel state within one test binary.
pub fn kernel_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn sysak_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sysak"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory removed on drop, mode 0755, owned by root.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("sysak-test-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A subdirectory, mode 0755.
    pub fn dir(&self, name: &str) -> PathBuf {
        let d = self.0.join(name);
        std::fs::create_dir_all(&d).unwrap();
        set_mode(&d, 0o755);
        d
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `sysak` with a config that names only `plugin_dirs` and `libexec`, so
/// the host's /etc/sysak and PATH do not leak into the test.
pub fn sysak(scratch: &Scratch, plugin_dirs: &[&Path]) -> Command {
    let config = scratch.0.join("sysak.toml");
    let dirs: Vec<String> = plugin_dirs.iter().map(|d| format!("{:?}", d.display().to_string())).collect();
    let libexec = scratch.0.join("libexec");
    std::fs::write(&config, format!("[plugins]\ndirs = [{}]\nlibexec_dir = {:?}\n", dirs.join(", "), libexec.display().to_string()))
        .unwrap();
    let mut cmd = Command::new(sysak_bin());
    cmd.env("SYSAK_CONFIG", &config).env_remove("SYSAK_PLUGIN_PATH").env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin").env("LC_ALL", "C");
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(out), stderr(out)))
}

/// Compile a C plugin source into `dir/<out_name>`, mode 0755.
pub fn build_c_plugin(source: &Path, dir: &Path, out_name: &str) -> PathBuf {
    let out = dir.join(out_name);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-I"])
        .arg(repo_root().join("plugins/include"))
        .arg("-o")
        .arg(&out)
        .arg(source)
        .status()
        .expect("cc is needed to build the C plugins");
    assert!(status.success(), "building {}", source.display());
    set_mode(&out, 0o755);
    out
}

/// The Rust example plugin, built by `cargo test --workspace`.
pub fn rust_plugin() -> PathBuf {
    let lib = sysak_bin().parent().unwrap().join("libcgmemtop.so");
    assert!(lib.exists(), "{} is missing: run the tests with `cargo test --workspace`", lib.display());
    lib
}

/// Copy a file into `dir`, mode 0755.
pub fn install(file: &Path, dir: &Path, name: &str) -> PathBuf {
    let dest = dir.join(name);
    std::fs::copy(file, &dest).unwrap();
    set_mode(&dest, 0o755);
    dest
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Run `cmd`'s program with `args` as user nobody (setpriv), keeping its
/// environment: for checking what unprivileged users see.
pub fn run_as_nobody(cmd: &Command, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(cmd.get_program())
        .args(args)
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .expect("setpriv (util-linux)")
}

/// The host's tracefs state (enabled events, kmem filters, instances),
/// read in a private mount namespace so reading it changes nothing.
pub fn host_tracefs_state() -> String {
    let script = "T=/sys/kernel/tracing; grep -q ' tracefs ' /proc/mounts || mount -t tracefs nodev $T; \
                  echo set_event:; cat $T/set_event; echo filters:; grep -v '^none$' $T/events/kmem/*/filter; \
                  echo instances:; ls $T/instances; true";
    let out = std::process::Command::new("unshare").args(["-m", "sh", "-c", script]).output().unwrap();
    stdout(&out)
}

/// Whether the host namespace has tracefs mounted.
pub fn host_mounts_tracefs() -> bool {
    std::fs::read_to_string("/proc/self/mounts").unwrap().lines().any(|l| l.split_whitespace().nth(2) == Some("tracefs"))
}

/// A sysak run whose trace window has begun.
pub struct Running {
    child: std::process::Child,
    stderr: std::sync::Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

/// Spawn `command` with piped output and return once it says on stderr
/// that its window started ("tracing for"), so a generator started next
/// falls inside the window however long the set-up took.
pub fn start_window(mut command: Command) -> Running {
    use std::io::BufRead;
    let mut child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let pipe = child.stderr.take().unwrap();
    let stderr = std::sync::Arc::new(Mutex::new(Vec::new()));
    let (started, wait) = std::sync::mpsc::channel();
    let sink = stderr.clone();
    let reader = std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(pipe);
        let mut line = Vec::new();
        while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if String::from_utf8_lossy(&line).contains("tracing for") {
                let _ = started.send(());
            }
            sink.lock().unwrap().extend_from_slice(&line);
            line.clear();
        }
    });
    if wait.recv_timeout(std::time::Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        panic!("the window never started: {}", String::from_utf8_lossy(&stderr.lock().unwrap()));
    }
    Running { child, stderr, reader }
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the end; stderr is what it printed from the start.
    pub fn finish(self) -> Output {
        let mut out = self.child.wait_with_output().unwrap();
        self.reader.join().unwrap();
        out.stderr = std::mem::take(&mut *self.stderr.lock().unwrap());
        out
    }
}

/// Parse folded stacks: (frames outermost first, weight).
pub fn parse_folded(text: &str) -> Vec<(Vec<String>, u64)> {
    text.lines()
        .map(|l| {
            let (stack, weight) = l.rsplit_once(' ').unwrap_or_else(|| panic!("no weight: {l}"));
            (stack.split(';').map(String::from).collect(), weight.parse().unwrap_or_else(|_| panic!("weight of {l}")))
        })
        .collect()
}

/// A test that cannot apply to this kernel returns after this: the reason
/// goes to stderr and, under tests/run-all, to the list of skipped tests it
/// prints at the end (cargo counts such a test as passed).
pub fn skip(test: &str, reason: &str) {
    eprintln!("skipped: {reason}");
    if let Some(path) = std::env::var_os("SYSAK_TEST_SKIPS") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{test}: {reason}");
        }
    }
}

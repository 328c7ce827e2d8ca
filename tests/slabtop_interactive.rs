//! The interactive screen, driven through a real terminal (tmux): it draws
//! procps' layout, re-sorts on a key, and q or Ctrl-C leave cleanly.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux(String);

impl Tmux {
    fn start(command: &str) -> Tmux {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("sysak-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "140", "-y", "40"])
            .arg(format!("{command}; echo EXITED $?; sleep 30"))
            .status()
            .expect("tmux is needed for the interactive test");
        assert!(status.success());
        Tmux(name)
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux").args(["send-keys", "-t", &self.0, keys]).status().unwrap();
    }

    fn wait_for(&self, what: impl Fn(&str) -> bool, label: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if what(&screen) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {label}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

fn names(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("OBJS"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(7).map(String::from))
        .collect()
}

fn run_interactive(quit: &str) {
    let scratch = Scratch::new("tty");
    let cmd = sysak(&scratch, &[]);
    let env: String = cmd.get_envs().filter_map(|(k, v)| Some(format!("{}={:?} ", k.to_str()?, v?.to_str()?))).collect();
    let tmux = Tmux::start(&format!("env {env} {:?} slabtop -d 1", cmd.get_program()));
    let screen = tmux.wait_for(|s| s.contains("OBJ/SLAB"), "the first screen");
    assert!(screen.starts_with(" Active / Total Objects (% used)    : "), "{screen}");
    assert!(screen.contains("UNRECL GROWTH"), "{screen}");
    // 40 rows: five summary lines, a blank, the heading, and rows - 8 caches.
    assert_eq!(names(&screen).len(), 32, "{screen}");

    tmux.keys("n");
    let screen = tmux.wait_for(
        |s| {
            let n = names(s);
            n.len() > 5 && n.windows(2).all(|w| w[0] <= w[1])
        },
        "sorting by name",
    );
    // GROWTH is known from the second refresh on.
    assert!(screen.lines().filter(|l| l.ends_with(" -")).count() == 0, "growth unknown after a refresh:\n{screen}");

    tmux.keys(quit);
    let screen = tmux.wait_for(|s| s.contains("EXITED"), "exit");
    assert!(screen.contains("EXITED 0"), "{screen}");
    assert!(!screen.contains("OBJ/SLAB"), "the alternate screen was not left:\n{screen}");
}

#[test]
fn q_quits_and_sort_keys_work_live() {
    run_interactive("q");
}

#[test]
fn ctrl_c_leaves_the_terminal_clean() {
    run_interactive("C-c");
}

//! SIGINT and SIGTERM as a flag.
//!
//! Tools that watch for a while (a tracing window, slabtop's refresh) poll
//! [`interrupted`] and end early with what they have. A second signal exits
//! at once with status 130, as a user pressing Ctrl-C twice expects. Kernel
//! state must therefore be owned by types whose `Drop` releases it *and*
//! be of a kind that dies with the process (perf and BPF fds).

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Route SIGINT and SIGTERM to the flag. Idempotent.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing a handler that only touches an atomic and calls _exit.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

/// Sleep for `duration`, waking early when SIGINT or SIGTERM arrives.
/// Returns whether it was interrupted.
pub fn sleep_interruptible(duration: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + duration;
    while !interrupted() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
    }
    true
}

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

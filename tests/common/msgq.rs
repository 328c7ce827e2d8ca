//! A real slab "leak" from user space: SysV messages kept in a queue.
//!
//! Each `msgsnd` of `size` bytes allocates one `struct msg_msg` of
//! `48 + size` bytes (for sizes up to a page minus the header) in
//! `msg_msg-N` (6.11+, CONFIG_SLAB_BUCKETS), `kmalloc-cg-N` (5.14+) or
//! `kmalloc-N`; the allocation happens in `load_msg` (`alloc_msg` is
//! inlined). The queue is removed and msgmnb restored on drop, so a failing
//! test leaves nothing behind.

use std::io;

const MSGMNB: &str = "/proc/sys/kernel/msgmnb";

/// `sizeof(struct msg_msg)` on 64-bit kernels since 2.6.
pub const MSG_MSG_HEADER_BYTES: usize = 48;

/// The cache of `bucket`-byte SysV messages on this kernel (a message of
/// `t` text bytes is a `48 + t`-byte `msg_msg`): `msg_msg-N` (6.11+),
/// `kmalloc-cg-N` (5.14+) or `kmalloc-N`.
pub fn message_cache_of(bucket: &str) -> String {
    let slabinfo = std::fs::read_to_string("/proc/slabinfo").unwrap();
    ["msg_msg-", "kmalloc-cg-", "kmalloc-"]
        .into_iter()
        .map(|prefix| format!("{prefix}{bucket}"))
        .find(|c| slabinfo.lines().any(|l| l.starts_with(&format!("{c} "))))
        .unwrap_or_else(|| panic!("no {bucket}-byte cache for SysV messages"))
}

/// The 256-byte cache SysV messages of 200 bytes land in.
pub fn message_cache() -> &'static str {
    static CACHE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| message_cache_of("256"))
}

pub struct MessageQueue {
    id: i32,
}

/// msgmnb as found before the first live queue raised it, and how many
/// queues are live: the last one dropped restores it, whatever order
/// queues are dropped in (a test holding two used to leave the first's
/// value behind).
static MSGMNB_SAVED: std::sync::Mutex<(usize, String)> = std::sync::Mutex::new((0, String::new()));

#[repr(C)]
struct Message<const N: usize> {
    mtype: libc::c_long,
    mtext: [u8; N],
}

impl MessageQueue {
    /// A private queue allowed to hold `capacity_bytes`.
    pub fn new(capacity_bytes: usize) -> io::Result<MessageQueue> {
        let mut saved = MSGMNB_SAVED.lock().unwrap_or_else(|e| e.into_inner());
        if saved.0 == 0 {
            saved.1 = std::fs::read_to_string(MSGMNB)?.trim().to_string();
        }
        let current: usize = std::fs::read_to_string(MSGMNB)?.trim().parse().unwrap_or(0);
        std::fs::write(MSGMNB, capacity_bytes.max(current).to_string())?;
        // SAFETY: plain syscall.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            let err = io::Error::last_os_error();
            if saved.0 == 0 {
                let _ = std::fs::write(MSGMNB, &saved.1);
            }
            return Err(err);
        }
        saved.0 += 1;
        Ok(MessageQueue { id })
    }

    /// Send `count` messages of `N` bytes; byte i of message k is
    /// `pattern(k, i)`.
    pub fn send<const N: usize>(&self, count: usize, mut pattern: impl FnMut(usize, usize) -> u8) -> io::Result<()> {
        let mut msg = Message::<N> { mtype: 1, mtext: [0; N] };
        for k in 0..count {
            for (i, b) in msg.mtext.iter_mut().enumerate() {
                *b = pattern(k, i);
            }
            // SAFETY: msg is a valid msgbuf of N text bytes.
            let rc = unsafe { libc::msgsnd(self.id, (&msg as *const Message<N>).cast(), N, libc::IPC_NOWAIT) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Receive (free) up to `count` messages of at most `N` bytes.
    pub fn receive<const N: usize>(&self, count: usize) -> usize {
        let mut msg = Message::<N> { mtype: 0, mtext: [0; N] };
        let mut got = 0;
        while got < count {
            // SAFETY: msg has room for N text bytes.
            let rc = unsafe { libc::msgrcv(self.id, (&mut msg as *mut Message<N>).cast(), N, 0, libc::IPC_NOWAIT) };
            if rc < 0 {
                break;
            }
            got += 1;
        }
        got
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // SAFETY: removing the queue we created.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        let mut saved = MSGMNB_SAVED.lock().unwrap_or_else(|e| e.into_inner());
        saved.0 -= 1;
        if saved.0 == 0 {
            let _ = std::fs::write(MSGMNB, &saved.1);
        }
    }
}

//! The interactive screen: raw keyboard input and ANSI drawing, no curses.
//!
//! The terminal is put in non-canonical, no-echo mode by [`RawMode`], whose
//! `Drop` restores it, so every exit path (q, Ctrl-C, an error) leaves the
//! user's terminal as it was.

use std::io::{self, Write};
use std::os::fd::RawFd;
use std::time::Duration;

/// Non-canonical, no-echo input on a terminal; restored on drop.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Enter raw mode on `fd`, or `None` when it is not a terminal.
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios calls on a descriptor we own for the process' life.
        unsafe {
            if libc::isatty(fd) != 1 {
                return None;
            }
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            // Keep ISIG: Ctrl-C reaches our SIGINT flag and ends the loop.
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            raw.c_cc[libc::VMIN] = 0;
            raw.c_cc[libc::VTIME] = 0;
            libc::tcsetattr(fd, libc::TCSANOW, &raw);
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes we read in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved) };
    }
}

/// Wait up to `timeout` for one key on `fd`. `None` on timeout or signal.
pub fn read_key(fd: RawFd, timeout: Duration) -> Option<u8> {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
    if ready <= 0 {
        return None;
    }
    let mut byte = 0u8;
    // SAFETY: reading one byte into a local.
    let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
    (n == 1).then_some(byte)
}

/// Rows of the terminal on stdout (24 when unknown, as procps assumes).
pub fn rows() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 10 {
            ws.ws_row as usize
        } else {
            24
        }
    }
}

/// Alternate screen on, cursor hidden; [`ScreenGuard`] undoes it.
pub struct ScreenGuard;

impl ScreenGuard {
    /// Switch to the alternate screen.
    pub fn enter() -> ScreenGuard {
        let _ = io::stdout().write_all(b"\x1b[?1049h\x1b[?25l");
        ScreenGuard
    }

    /// Replace the screen with `lines`; `highlight` is shown in reverse video.
    pub fn draw(&self, lines: &[String], highlight: usize) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(b"\x1b[H\x1b[2J")?;
        for (i, line) in lines.iter().enumerate() {
            if i == highlight {
                write!(out, "\x1b[7m{line}\x1b[0m\r\n")?;
            } else {
                write!(out, "{line}\r\n")?;
            }
        }
        out.flush()
    }
}

impl Drop for ScreenGuard {
    fn drop(&mut self) {
        let _ = io::stdout().write_all(b"\x1b[?25h\x1b[?1049l");
        let _ = io::stdout().flush();
    }
}

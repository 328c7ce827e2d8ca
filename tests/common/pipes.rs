//! A real page "leak" from user space: pipes written and never read.
//!
//! Each 4 KiB written to an empty pipe slot allocates one order-0 page
//! (GFP_HIGHUSER | __GFP_ACCOUNT: unmovable) that stays until the pipe is
//! read or closed. Dropping the holder closes every pipe.

use std::os::fd::{FromRawFd, OwnedFd};

pub struct PipePages {
    pipes: Vec<(OwnedFd, OwnedFd)>,
}

impl PipePages {
    /// `pipes` pipes of `pages_each` pages, one every 10 ms: a leak
    /// grows over time, not in one burst.
    pub fn fill_steadily(pipes: usize, pages_each: usize) -> Vec<PipePages> {
        (0..pipes)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                PipePages::fill(1, pages_each).unwrap()
            })
            .collect()
    }

    /// `pipes` pipes, each filled with `pages_each` pages (the pipe is
    /// resized with F_SETPIPE_SZ when that is more than the default 16;
    /// /proc/sys/fs/pipe-max-size, 1 MiB by default, is the limit).
    pub fn fill(pipes: usize, pages_each: usize) -> std::io::Result<PipePages> {
        let mut held = Vec::with_capacity(pipes);
        let page = vec![0xa5u8; 4096];
        for _ in 0..pipes {
            let mut fds = [0; 2];
            // SAFETY: plain syscalls on descriptors we own.
            unsafe {
                if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                held.push((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])));
                if pages_each > 16 && libc::fcntl(fds[1], libc::F_SETPIPE_SZ, (pages_each * 4096) as libc::c_int) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for _ in 0..pages_each {
                    if libc::write(fds[1], page.as_ptr().cast(), page.len()) != page.len() as isize {
                        return Err(std::io::Error::last_os_error());
                    }
                }
            }
        }
        Ok(PipePages { pipes: held })
    }

    pub fn len(&self) -> usize {
        self.pipes.len()
    }
}

//! A real vmalloc "leak" from user space: a BPF array map. Its values are
//! allocated with vmalloc (bpf_map_area_alloc) when the map is created and
//! freed when the last descriptor closes.

use std::os::fd::{FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// An array map of `entries` values of `value_size` bytes.
pub fn array_map(value_size: u32, entries: u32) -> std::io::Result<OwnedFd> {
    // union bpf_attr's map-create prefix; the rest must be zero.
    let mut attr = [0u32; 32];
    attr[0] = BPF_MAP_TYPE_ARRAY;
    attr[1] = 4; // key_size
    attr[2] = value_size;
    attr[3] = entries;
    // SAFETY: bpf(2) reads a zero-padded union bpf_attr.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_CREATE, attr.as_ptr(), std::mem::size_of_val(&attr)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

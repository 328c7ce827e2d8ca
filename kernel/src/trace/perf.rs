//! perf_event_open on tracepoints, on every online CPU, with one mmap ring
//! buffer per CPU and kind of sample, drained continuously through epoll.
//!
//! Each tracepoint gets one perf event per CPU; events of the same sample
//! layout on a CPU share a ring (PERF_EVENT_IOC_SET_OUTPUT). Samples carry
//! TID, TIME (CLOCK_MONOTONIC, so ages compare with `Instant`), CPU,
//! optionally the kernel CALLCHAIN, and RAW (the tracepoint record, whose
//! first field `common_type` names the event). Filters are per perf event
//! (PERF_EVENT_IOC_SET_FILTER) and vanish with the descriptors.
//! PERF_RECORD_LOST records are counted: a full ring loses samples and the
//! caller must say so.
//!
//! Needs CAP_PERFMON or CAP_SYS_ADMIN (root), and perf events in the kernel
//! (CONFIG_PERF_EVENTS, CONFIG_EVENT_TRACING). Verified on 6.18.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use perf_event_open_sys as sys;
use sys::bindings::{perf_event_attr, perf_event_header, perf_event_mmap_page};

use super::EventFormat;

crate::message_error!(
    /// Tracing could not be set up.
    PerfError
);

fn os_error(what: &str) -> PerfError {
    let err = std::io::Error::last_os_error();
    let hint = match err.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => " (needs root or CAP_PERFMON; see /proc/sys/kernel/perf_event_paranoid)",
        Some(libc::ENOENT | libc::ENODEV) => " (this kernel lacks the event)",
        Some(libc::EMFILE) => " (too many open files: raise the limit with ulimit -n)",
        _ => "",
    };
    PerfError(format!("{what}: {err}{hint}"))
}

/// Memory for all ring buffers of a tracer together: bursts of samples (a
/// page sample with a 32-frame callchain is ~300 bytes) must fit between two
/// 100 ms drains, yet a 256-CPU host must not spend a gigabyte on rings.
pub const RING_BUDGET_BYTES: usize = 64 << 20;

/// Pages per CPU ring: [`RING_BUDGET_BYTES`] shared by the online CPUs, a
/// power of two between 64 pages (256 KiB) and 1024 pages (4 MiB).
pub fn ring_pages() -> usize {
    let cpus = online_cpus().map(|c| c.len()).unwrap_or(1).max(1);
    let pages = (RING_BUDGET_BYTES / cpus / crate::procfs::page_size() as usize).clamp(64, 1024);
    1 << (usize::BITS - 1 - pages.leading_zeros())
}

/// One sample, borrowed from the ring (or a scratch copy when it wrapped).
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The tracepoint id (`common_type` of the record).
    pub event_id: u64,
    /// CPU it was taken on.
    pub cpu: u32,
    /// Thread id.
    pub tid: u32,
    /// CLOCK_MONOTONIC nanoseconds.
    pub time_ns: u64,
    /// Kernel return addresses, innermost first (empty without callchains).
    pub callchain: &'a [u64],
    /// The tracepoint record; read fields with [`super::Field`].
    pub raw: &'a [u8],
}

/// Counters a report must show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TracerStats {
    /// Samples delivered.
    pub samples: u64,
    /// Samples the kernel dropped because a ring was full.
    pub lost: u64,
}

/// Handle to an added tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHandle(usize);

struct Ring {
    fd: RawFd,
    with_callchain: bool,
    base: *mut u8,
    mmap_len: usize,
    data_offset: usize,
    data_size: usize,
}

struct TracedEvent {
    fds: Vec<OwnedFd>,
}

/// A set of tracepoints sampled on every online CPU.
pub struct PerfTracer {
    cpus: Vec<u32>,
    ring_pages: usize,
    rings: Vec<Ring>,
    events: Vec<TracedEvent>,
    epoll: OwnedFd,
    stats: TracerStats,
    scratch: Vec<u8>,
}

// SAFETY: the ring pointers are owned by the tracer and only used through
// &mut self.
unsafe impl Send for PerfTracer {}

/// Online CPUs (see [`crate::procfs::online_cpus`]).
pub fn online_cpus() -> Result<Vec<u32>, PerfError> {
    crate::procfs::online_cpus().map_err(PerfError)
}

/// Deepest kernel callchain asked for.
pub const MAX_STACK_DEPTH: u16 = 32;

const SAMPLE_TYPE: u64 =
    (sys::bindings::PERF_SAMPLE_TID | sys::bindings::PERF_SAMPLE_TIME | sys::bindings::PERF_SAMPLE_CPU | sys::bindings::PERF_SAMPLE_RAW)
        as u64;

impl PerfTracer {
    /// A tracer with rings of `ring_pages` pages (a power of two) per CPU.
    pub fn new(ring_pages: usize) -> Result<PerfTracer, PerfError> {
        if !ring_pages.is_power_of_two() {
            return Err(PerfError(format!("ring size {ring_pages} pages is not a power of two")));
        }
        // SAFETY: plain syscall.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(os_error("epoll_create1"));
        }
        Ok(PerfTracer {
            cpus: online_cpus()?,
            ring_pages,
            rings: Vec::new(),
            events: Vec::new(),
            // SAFETY: a fresh descriptor we own.
            epoll: unsafe { OwnedFd::from_raw_fd(epoll) },
            stats: TracerStats::default(),
            scratch: Vec::new(),
        })
    }

    /// Open `format` on every CPU, disabled, with `filter` applied in the
    /// kernel and kernel callchains when `callchain`.
    pub fn add(&mut self, format: &EventFormat, filter: Option<&str>, callchain: bool) -> Result<EventHandle, PerfError> {
        let mut attr = perf_event_attr {
            type_: sys::bindings::PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<perf_event_attr>() as u32,
            config: format.id,
            sample_type: SAMPLE_TYPE | if callchain { sys::bindings::PERF_SAMPLE_CALLCHAIN as u64 } else { 0 },
            ..Default::default()
        };
        attr.sample_period = 1;
        attr.set_disabled(1);
        attr.set_exclude_callchain_user(1);
        // Bounded unwinds: the unwind is most of the cost (~1.8 µs each on 6.18).
        attr.sample_max_stack = MAX_STACK_DEPTH;
        attr.set_use_clockid(1);
        attr.clockid = libc::CLOCK_MONOTONIC;
        attr.set_watermark(1);
        attr.wakeup_watermark = (self.ring_pages * page_size() / 4) as u32;
        let mut fds = Vec::with_capacity(self.cpus.len());
        let cpus = self.cpus.clone();
        for cpu in cpus {
            // SAFETY: attr is a valid perf_event_attr.
            let fd = unsafe { sys::perf_event_open(&mut attr, -1, cpu as i32, -1, sys::bindings::PERF_FLAG_FD_CLOEXEC as _) };
            if fd < 0 {
                return Err(os_error(&format!("perf_event_open({}) on CPU {cpu}", format.name)));
            }
            // SAFETY: a fresh descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if let Some(filter) = filter {
                let c = std::ffi::CString::new(filter).map_err(|_| PerfError("filter contains NUL".into()))?;
                // SAFETY: valid fd and C string.
                if unsafe { sys::ioctls::SET_FILTER(fd.as_raw_fd(), c.as_ptr() as *mut _) } != 0 {
                    return Err(os_error(&format!("filter {filter:?} on {}", format.name)));
                }
            }
            self.attach_to_ring(fd.as_raw_fd(), cpu, callchain)?;
            fds.push(fd);
        }
        self.events.push(TracedEvent { fds });
        Ok(EventHandle(self.events.len() - 1))
    }

    fn attach_to_ring(&mut self, fd: RawFd, cpu: u32, callchain: bool) -> Result<(), PerfError> {
        let cpu_index = self.cpus.iter().position(|c| *c == cpu).unwrap_or(0);
        if let Some(ring) = self.rings.iter().filter(|r| r.with_callchain == callchain).nth(cpu_index) {
            // SAFETY: both are perf fds on the same CPU.
            if unsafe { sys::ioctls::SET_OUTPUT(fd, ring.fd) } != 0 {
                return Err(os_error("PERF_EVENT_IOC_SET_OUTPUT"));
            }
            return Ok(());
        }
        let page = page_size();
        let mmap_len = (self.ring_pages + 1) * page;
        // SAFETY: mapping a perf ring buffer of the documented layout.
        let base = unsafe { libc::mmap(std::ptr::null_mut(), mmap_len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) };
        if base == libc::MAP_FAILED {
            return Err(os_error("mmap of the perf ring buffer"));
        }
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
        // SAFETY: valid epoll and perf fds.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            unsafe { libc::munmap(base, mmap_len) };
            return Err(os_error("epoll_ctl"));
        }
        self.rings.push(Ring {
            fd,
            with_callchain: callchain,
            base: base as *mut u8,
            mmap_len,
            data_offset: page,
            data_size: self.ring_pages * page,
        });
        Ok(())
    }

    fn ioctl_all(&self, handle: EventHandle, enable: bool) -> Result<(), PerfError> {
        for fd in &self.events[handle.0].fds {
            // SAFETY: valid perf fd.
            let rc = unsafe {
                if enable {
                    sys::ioctls::ENABLE(fd.as_raw_fd(), 0)
                } else {
                    sys::ioctls::DISABLE(fd.as_raw_fd(), 0)
                }
            };
            if rc != 0 {
                return Err(os_error(if enable { "PERF_EVENT_IOC_ENABLE" } else { "PERF_EVENT_IOC_DISABLE" }));
            }
        }
        Ok(())
    }

    /// Start sampling an event on every CPU.
    pub fn enable(&self, handle: EventHandle) -> Result<(), PerfError> {
        self.ioctl_all(handle, true)
    }

    /// Stop sampling an event (samples already in the rings stay there).
    pub fn disable(&self, handle: EventHandle) -> Result<(), PerfError> {
        self.ioctl_all(handle, false)
    }

    /// Samples delivered and lost so far.
    pub fn stats(&self) -> TracerStats {
        self.stats
    }

    /// Wait up to `timeout` for data, then drain every ring once, calling
    /// `on_sample` for each sample. Returns the CLOCK_MONOTONIC time at
    /// which the drain began: every sample taken before it has now been
    /// delivered, on every CPU.
    pub fn poll(&mut self, timeout: Duration, mut on_sample: impl FnMut(&Sample)) -> Result<u64, PerfError> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: valid epoll fd and buffer.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(os_error("epoll_wait"));
        }
        let started = monotonic_ns();
        for i in 0..self.rings.len() {
            self.drain_ring(i, &mut on_sample);
        }
        Ok(started)
    }

    fn drain_ring(&mut self, index: usize, on_sample: &mut impl FnMut(&Sample)) {
        let ring = &self.rings[index];
        let meta = ring.base as *mut perf_event_mmap_page;
        // SAFETY: meta points at the ring's control page; data_head is
        // written by the kernel, so read it volatile and order later reads.
        let head = unsafe { std::ptr::read_volatile(&(*meta).data_head) };
        fence(Ordering::Acquire);
        let mut tail = unsafe { std::ptr::read_volatile(&(*meta).data_tail) };
        let data = unsafe { ring.base.add(ring.data_offset) };
        let size = ring.data_size as u64;
        let with_callchain = ring.with_callchain;
        while tail < head {
            let offset = (tail % size) as usize;
            let mut header = perf_event_header { type_: 0, misc: 0, size: 0 };
            copy_wrapped(data, ring.data_size, offset, unsafe {
                std::slice::from_raw_parts_mut(&mut header as *mut _ as *mut u8, std::mem::size_of::<perf_event_header>())
            });
            let len = header.size as usize;
            if len < std::mem::size_of::<perf_event_header>() {
                break; // corrupt ring: stop rather than spin
            }
            let record: &[u8] = if offset + len <= ring.data_size {
                // SAFETY: within the data area.
                unsafe { std::slice::from_raw_parts(data.add(offset), len) }
            } else {
                self.scratch.resize(len, 0);
                copy_wrapped(data, ring.data_size, offset, &mut self.scratch);
                &self.scratch
            };
            match header.type_ {
                sys::bindings::PERF_RECORD_SAMPLE => {
                    if let Some(sample) = parse_sample(record, with_callchain) {
                        self.stats.samples += 1;
                        on_sample(&sample);
                    }
                }
                sys::bindings::PERF_RECORD_LOST => {
                    if let Some(lost) = record.get(16..24) {
                        self.stats.lost += u64::from_ne_bytes(lost.try_into().unwrap_or_default());
                    }
                }
                _ => {}
            }
            tail += len as u64;
        }
        fence(Ordering::Release);
        // SAFETY: handing consumed space back to the kernel.
        unsafe { std::ptr::write_volatile(&mut (*meta).data_tail, tail) };
    }
}

impl Drop for PerfTracer {
    fn drop(&mut self) {
        for ring in &self.rings {
            // SAFETY: unmapping what attach_to_ring mapped.
            unsafe { libc::munmap(ring.base as *mut libc::c_void, ring.mmap_len) };
        }
        // The perf fds close with `events`, which disables them.
    }
}

fn copy_wrapped(data: *const u8, size: usize, offset: usize, out: &mut [u8]) {
    let first = out.len().min(size - offset);
    // SAFETY: both ranges lie inside the ring's data area.
    unsafe {
        std::ptr::copy_nonoverlapping(data.add(offset), out.as_mut_ptr(), first);
        std::ptr::copy_nonoverlapping(data, out.as_mut_ptr().add(first), out.len() - first);
    }
}

/// header | pid tid | time | cpu res | [nr ips[nr]] | size raw[size]
fn parse_sample(record: &[u8], with_callchain: bool) -> Option<Sample<'_>> {
    let u32_at = |o: usize| Some(u32::from_ne_bytes(record.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_ne_bytes(record.get(o..o + 8)?.try_into().ok()?));
    let mut o = 8;
    let tid = u32_at(o + 4)?;
    o += 8;
    let time_ns = u64_at(o)?;
    o += 8;
    let cpu = u32_at(o)?;
    o += 8;
    let mut callchain: &[u64] = &[];
    if with_callchain {
        let nr = u64_at(o)? as usize;
        o += 8;
        let bytes = record.get(o..o.checked_add(nr.checked_mul(8)?)?)?;
        // The kernel 8-byte-aligns records and the ring is page aligned;
        // the scratch copy is a Vec<u8>, so check rather than assume.
        if bytes.as_ptr() as usize % 8 != 0 {
            return None;
        }
        // SAFETY: in bounds and aligned, checked above.
        callchain = unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const u64, nr) };
        o += nr * 8;
    }
    let raw_len = u32_at(o)? as usize;
    let raw = record.get(o + 4..o + 4 + raw_len)?;
    let event_id = u16::from_ne_bytes(raw.get(0..2)?.try_into().ok()?) as u64;
    Some(Sample { event_id, cpu, tid, time_ns, callchain, raw })
}

/// Strip perf's context markers (PERF_CONTEXT_KERNEL, ...) from a callchain.
pub fn kernel_frames(callchain: &[u64]) -> impl Iterator<Item = u64> + '_ {
    callchain.iter().copied().filter(|ip| *ip < sys::bindings::PERF_CONTEXT_MAX)
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock samples are stamped with).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn page_size() -> usize {
    crate::procfs::page_size() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_records_parse_and_truncated_ones_do_not() {
        let mut rec = vec![0u8; 8];
        rec.extend_from_slice(&7u32.to_ne_bytes()); // pid
        rec.extend_from_slice(&9u32.to_ne_bytes()); // tid
        rec.extend_from_slice(&123u64.to_ne_bytes()); // time
        rec.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        rec.extend_from_slice(&0u32.to_ne_bytes());
        rec.extend_from_slice(&2u64.to_ne_bytes()); // nr
        rec.extend_from_slice(&sys::bindings::PERF_CONTEXT_KERNEL.to_ne_bytes());
        rec.extend_from_slice(&0xffffffff81000100u64.to_ne_bytes());
        rec.extend_from_slice(&4u32.to_ne_bytes()); // raw size
        rec.extend_from_slice(&[0x93, 0x02, 0, 0]); // common_type 659
        let aligned: Vec<u64> = rec
            .chunks(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                u64::from_ne_bytes(b)
            })
            .collect();
        let bytes = unsafe { std::slice::from_raw_parts(aligned.as_ptr() as *const u8, rec.len()) };
        let s = parse_sample(bytes, true).unwrap();
        assert_eq!((s.event_id, s.cpu, s.tid, s.time_ns), (659, 1, 9, 123));
        assert_eq!(kernel_frames(s.callchain).collect::<Vec<_>>(), [0xffffffff81000100]);
        assert!(parse_sample(&bytes[..bytes.len() - 3], true).is_none());
    }
}

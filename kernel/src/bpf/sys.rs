//! The `bpf(2)` commands sysak uses, with `union bpf_attr` laid out per
//! command (include/uapi/linux/bpf.h; fields are only ever appended, and
//! the kernel accepts a shorter attr than its own). Every struct is padded
//! by hand: the kernel rejects an attr whose unused tail is not zero.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::insn::Insn;

crate::message_error!(
    /// A BPF object could not be created or used.
    BpfError
);

impl BpfError {
    fn os(what: &str) -> BpfError {
        let err = std::io::Error::last_os_error();
        let hint = match err.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => {
                " (needs root with CAP_BPF and CAP_PERFMON, and before 5.11 a high enough RLIMIT_MEMLOCK; kernel lockdown may forbid it)"
            }
            Some(libc::ENOSYS) => " (this kernel was built without CONFIG_BPF_SYSCALL)",
            Some(libc::EINVAL) => " (this kernel does not support it)",
            _ => "",
        };
        BpfError(format!("{what}: {err}{hint}"))
    }
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `bpf(cmd, attr, sizeof attr)`; attr is one of the `#[repr(C)]` structs below.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: attr is a valid, initialised repr(C) prefix of union bpf_attr.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) }
}

fn fd_from(ret: libc::c_long, what: &str) -> Result<OwnedFd, BpfError> {
    if ret < 0 {
        return Err(BpfError::os(what));
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Before 5.11 the kernel charges BPF maps and programs to RLIMIT_MEMLOCK
/// (64 KiB by default): creating them fails with EPERM even as root.
/// Lift the limit once, as libbpf does; from 5.11 memory cgroups account
/// BPF memory and this changes nothing.
fn raise_memlock_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: plain syscall on a valid struct; failure leaves the limit as it was.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    });
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().filter(|b| b.is_ascii_alphanumeric() || *b == b'_').take(15)) {
        *o = b;
    }
    out
}

/// Map types sysak creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// BPF_MAP_TYPE_HASH.
    Hash = 1,
    /// BPF_MAP_TYPE_ARRAY.
    Array = 2,
    /// BPF_MAP_TYPE_PERCPU_HASH: a value per possible CPU, so programs on
    /// different CPUs never share a cache line.
    PercpuHash = 5,
    /// BPF_MAP_TYPE_PERCPU_ARRAY.
    PercpuArray = 6,
}

/// Map flag: the array's values can be mmap()ed (5.5+).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct MapBatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// A BPF map, freed when dropped (and when the process dies).
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// Per-CPU maps: the possible CPUs, each with its own value in what
    /// user space reads; 0 otherwise.
    pub per_cpu: usize,
}

/// Possible CPUs (/sys/devices/system/cpu/possible): how many values a
/// per-CPU map hands user space per key.
fn possible_cpus() -> Result<usize, BpfError> {
    crate::procfs::possible_cpus().map(|c| c.len()).map_err(BpfError)
}

impl Map {
    /// BPF_MAP_CREATE.
    pub fn create(map_type: MapType, name: &str, key_size: u32, value_size: u32, max_entries: u32, flags: u32) -> Result<Map, BpfError> {
        raise_memlock_limit();
        let mut attr = MapCreateAttr {
            map_type: map_type as u32,
            key_size,
            value_size,
            max_entries,
            map_flags: flags,
            map_name: name16(name),
            ..Default::default()
        };
        let per_cpu = match map_type {
            MapType::PercpuHash | MapType::PercpuArray => possible_cpus()?,
            _ => 0,
        };
        let fd = fd_from(bpf(BPF_MAP_CREATE, &mut attr), &format!("creating BPF map {name}"))?;
        Ok(Map { fd, key_size, value_size, max_entries, per_cpu })
    }

    /// Bytes of a value as user space reads it: per-CPU maps give one
    /// 8-byte-aligned value per possible CPU.
    pub fn read_value_size(&self) -> usize {
        match self.per_cpu {
            0 => self.value_size as usize,
            cpus => (self.value_size as usize).div_ceil(8) * 8 * cpus,
        }
    }

    /// The descriptor, for `insn::load_map_fd`.
    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// BPF_MAP_LOOKUP_ELEM into `value` (value_size bytes). `Ok(false)`
    /// when the key is absent.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<bool, BpfError> {
        assert!(key.len() == self.key_size as usize && value.len() >= self.read_value_size());
        let mut attr =
            MapElemAttr { map_fd: self.fd() as u32, key: key.as_ptr() as u64, value: value.as_mut_ptr() as u64, ..Default::default() };
        if bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
                return Ok(false);
            }
            return Err(BpfError::os("reading a BPF map element"));
        }
        Ok(true)
    }

    /// BPF_MAP_UPDATE_ELEM: set `key` to `value` (value_size bytes).
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), BpfError> {
        assert!(key.len() == self.key_size as usize && value.len() == self.value_size as usize && self.per_cpu == 0);
        let mut attr =
            MapElemAttr { map_fd: self.fd() as u32, key: key.as_ptr() as u64, value: value.as_ptr() as u64, ..Default::default() };
        if bpf(BPF_MAP_UPDATE_ELEM, &mut attr) < 0 {
            return Err(BpfError::os("writing a BPF map element"));
        }
        Ok(())
    }

    /// Every (key, value) of a hash map through BPF_MAP_LOOKUP_BATCH (5.6+),
    /// `chunk` elements per call. Unlike GET_NEXT_KEY, a batch walk does not
    /// restart from the beginning when the map changes under it.
    pub fn dump(&self, chunk: u32, mut each: impl FnMut(&[u8], &[u8])) -> Result<(), BpfError> {
        let (ks, vs) = (self.key_size as usize, self.read_value_size());
        let mut keys = vec![0u8; ks * chunk as usize];
        let mut values = vec![0u8; vs * chunk as usize];
        let mut token = [0u8; 8];
        let mut first = true;
        loop {
            let mut attr = MapBatchAttr {
                in_batch: if first { 0 } else { token.as_ptr() as u64 },
                out_batch: token.as_mut_ptr() as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: chunk,
                map_fd: self.fd() as u32,
                ..Default::default()
            };
            let ret = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
            let done = ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT);
            if ret < 0 && !done {
                return Err(BpfError::os("reading a BPF map in batches"));
            }
            for i in 0..attr.count as usize {
                each(&keys[i * ks..(i + 1) * ks], &values[i * vs..(i + 1) * vs]);
            }
            if done {
                return Ok(());
            }
            first = false;
        }
    }
}

/// Program types sysak loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramType {
    /// BPF_PROG_TYPE_RAW_TRACEPOINT (4.17+).
    RawTracepoint = 17,
    /// BPF_PROG_TYPE_SYSCALL (5.14+), run with BPF_PROG_TEST_RUN.
    Syscall = 31,
}

/// Program flag: may sleep (6.x refuses non-sleepable syscall programs).
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    // Explicit: CHECK_ATTR rejects non-zero bytes after the last field,
    // and implicit padding is not guaranteed to be zero.
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct RawTracepointAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info` up to `recursion_misses` (5.12+): 8-byte words.
const PROG_INFO_WORDS: usize = 28;
/// Byte offset of `recursion_misses` in `struct bpf_prog_info`.
const RECURSION_MISSES_OFFSET: usize = 208;

/// A loaded, verified program. Raw tracepoint attachments are separate
/// descriptors ([`Program::attach_raw_tracepoint`]).
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

impl Program {
    /// BPF_PROG_LOAD, license "GPL" (needed by bpf_probe_read_kernel and
    /// bpf_get_stackid). On a verifier rejection the error carries the
    /// verifier's last lines.
    pub fn load(prog_type: ProgramType, name: &str, insns: &[Insn], flags: u32) -> Result<Program, BpfError> {
        let license = CString::new("GPL").unwrap();
        let mut log = vec![0u8; 64 * 1024];
        let mut attr = ProgLoadAttr {
            prog_type: prog_type as u32,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            prog_flags: flags,
            prog_name: name16(name),
            ..Default::default()
        };
        let ret = bpf(BPF_PROG_LOAD, &mut attr);
        if ret < 0 {
            let err = BpfError::os(&format!("loading BPF program {name}"));
            let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned();
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            if tail.is_empty() {
                return Err(err);
            }
            return Err(BpfError(format!("{err}; verifier: {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | "))));
        }
        Ok(Program { fd: fd_from(ret, name)? })
    }

    /// BPF_PROG_TEST_RUN once with `ctx` as the context (empty for syscall
    /// programs); returns the program's R0.
    pub fn test_run(&self, ctx: &mut [u8]) -> Result<u32, BpfError> {
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            ctx_size_in: ctx.len() as u32,
            ctx_in: if ctx.is_empty() { 0 } else { ctx.as_mut_ptr() as u64 },
            ..Default::default()
        };
        if bpf(BPF_PROG_TEST_RUN, &mut attr) < 0 {
            return Err(BpfError::os("running a BPF program"));
        }
        Ok(attr.retval)
    }

    /// BPF_RAW_TRACEPOINT_OPEN (4.17+): attach to tracepoint `name` (e.g.
    /// "kfree"). Unlike PERF_EVENT_IOC_SET_BPF, a raw tracepoint program
    /// never changes what other tracers of that tracepoint see. Detached
    /// when the returned descriptor is dropped.
    pub fn attach_raw_tracepoint(&self, name: &str) -> Result<OwnedFd, BpfError> {
        let cname = CString::new(name).map_err(|_| BpfError(format!("bad tracepoint name {name:?}")))?;
        let mut attr = RawTracepointAttr { name: cname.as_ptr() as u64, prog_fd: self.fd.as_raw_fd() as u32, _pad: 0 };
        fd_from(bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr), &format!("attaching to raw tracepoint {name}"))
    }

    /// Times the kernel skipped this program because it was already running
    /// on that CPU (`bpf_prog_info.recursion_misses`, Linux commit
    /// 9ed9e9ba2337 ("bpf: Count the number of times recursion was prevented")
    /// (v5.12)); `None` where the kernel's bpf_prog_info is shorter: it
    /// cannot say.
    pub fn recursion_misses(&self) -> Result<Option<u64>, BpfError> {
        let mut info = [0u64; PROG_INFO_WORDS];
        let mut attr =
            InfoAttr { bpf_fd: self.fd.as_raw_fd() as u32, info_len: std::mem::size_of_val(&info) as u32, info: info.as_mut_ptr() as u64 };
        if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) < 0 {
            return Err(BpfError::os("reading BPF program info"));
        }
        let word = RECURSION_MISSES_OFFSET / 8;
        Ok((attr.info_len as usize >= RECURSION_MISSES_OFFSET + 8).then(|| info[word]))
    }
}

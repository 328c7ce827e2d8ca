//! tracefs: where it is, and tracepoint `format` files.
//!
//! Field offsets are always read from `events/<system>/<event>/format`:
//! layouts differ between kernels (5.10's `mm_page_alloc` has a 4-byte
//! `gfp_flags`; 6.x's `kmem_cache_alloc` gained a `name` field).

use std::path::{Path, PathBuf};

crate::message_error!(
    /// tracefs could not be found, mounted or read.
    TracefsError
);

/// A mounted tracefs.
#[derive(Debug, Clone)]
pub struct Tracefs {
    root: PathBuf,
}

fn mounted_tracefs() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let w: Vec<&str> = line.split_whitespace().collect();
        match (w.get(1), w.get(2)) {
            (Some(dir), Some(&"tracefs")) => Some(PathBuf::from(dir)),
            (Some(dir), Some(&"debugfs")) if Path::new(dir).join("tracing/events").is_dir() => Some(Path::new(dir).join("tracing")),
            _ => None,
        }
    })
}

impl Tracefs {
    /// Find tracefs; when it is not mounted, mount it at
    /// /sys/kernel/tracing inside a private mount namespace, so the host's
    /// mount table is untouched and the mount vanishes with the process.
    /// Must be called while the process is single-threaded (unshare(2)
    /// refuses CLONE_NEWNS otherwise).
    pub fn open() -> Result<Tracefs, TracefsError> {
        if let Some(root) = mounted_tracefs() {
            return Ok(Tracefs { root });
        }
        let target = c"/sys/kernel/tracing";
        // SAFETY: plain syscalls with valid C strings.
        let rc = unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                -1
            } else if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
            {
                -2
            } else {
                libc::mount(c"tracefs".as_ptr(), target.as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null())
            }
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(TracefsError(format!(
                "tracefs is not mounted and could not be mounted privately ({err}); mount it: mount -t tracefs nodev /sys/kernel/tracing"
            )));
        }
        Ok(Tracefs { root: PathBuf::from("/sys/kernel/tracing") })
    }

    /// A tracefs at `root` (tests, unusual mounts).
    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs { root: root.into() }
    }

    /// Whether `system:event` exists on this kernel.
    pub fn has_event(&self, system: &str, event: &str) -> bool {
        self.root.join("events").join(system).join(event).join("format").exists()
    }

    /// Parse `events/<system>/<event>/format`.
    pub fn event_format(&self, system: &str, event: &str) -> Result<EventFormat, TracefsError> {
        let path = self.root.join("events").join(system).join(event).join("format");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TracefsError(format!("tracepoint {system}:{event} is not available on this kernel ({}: {e})", path.display())))?;
        EventFormat::parse(system, &text).map_err(|e| TracefsError(format!("{}: {e}", path.display())))
    }
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name (`ptr`, `bytes_alloc`).
    pub name: String,
    /// C type as printed (`const void *`, `__data_loc char[]`).
    pub c_type: String,
    /// Byte offset in the raw record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Signed integer.
    pub signed: bool,
}

impl Field {
    /// Read an unsigned integer field (1, 2, 4 or 8 bytes, little-endian as
    /// the host) from a raw record; `None` when the record is too short.
    pub fn read_u64(&self, raw: &[u8]) -> Option<u64> {
        let bytes = raw.get(self.offset..self.offset + self.size)?;
        Some(match self.size {
            1 => bytes[0] as u64,
            2 => u16::from_ne_bytes(bytes.try_into().ok()?) as u64,
            4 => u32::from_ne_bytes(bytes.try_into().ok()?) as u64,
            8 => u64::from_ne_bytes(bytes.try_into().ok()?),
            _ => return None,
        })
    }

    /// Read a signed integer field.
    pub fn read_i64(&self, raw: &[u8]) -> Option<i64> {
        let v = self.read_u64(raw)?;
        Some(match self.size {
            1 => v as u8 as i8 as i64,
            2 => v as u16 as i16 as i64,
            4 => v as u32 as i32 as i64,
            _ => v as i64,
        })
    }

    /// Read a `__data_loc char[]` string field.
    pub fn read_data_loc_str<'a>(&self, raw: &'a [u8]) -> Option<&'a str> {
        let loc = self.read_u64(raw)? as u32;
        let (offset, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
        let bytes = raw.get(offset..offset + len)?;
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).ok()
    }
}

/// A tracepoint's id and record layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    /// `system:name`.
    pub name: String,
    /// The event id (`common_type` of its records; perf's config).
    pub id: u64,
    /// Every field, common ones included.
    pub fields: Vec<Field>,
}

impl EventFormat {
    /// Parse a format file's text.
    pub fn parse(system: &str, text: &str) -> Result<EventFormat, String> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(n) = line.strip_prefix("name:") {
                name = Some(n.trim().to_string());
            } else if let Some(i) = line.strip_prefix("ID:") {
                id = i.trim().parse().ok();
            } else if line.starts_with("field:") {
                fields.push(parse_field(line).ok_or_else(|| format!("malformed field line {line:?}"))?);
            }
        }
        let name = name.ok_or("no name: line")?;
        Ok(EventFormat { name: format!("{system}:{name}"), id: id.ok_or("no ID: line")?, fields })
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field called `name`, or an error naming the event.
    pub fn require(&self, name: &str) -> Result<&Field, TracefsError> {
        self.field(name).ok_or_else(|| TracefsError(format!("tracepoint {} has no field `{name}` on this kernel", self.name)))
    }
}

/// `field:unsigned long call_site;<TAB>offset:8;<TAB>size:8;<TAB>signed:0;`
fn parse_field(line: &str) -> Option<Field> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, false);
    for part in line.split(';').map(str::trim) {
        if let Some(d) = part.strip_prefix("field:") {
            decl = Some(d.trim());
        } else if let Some(o) = part.strip_prefix("offset:") {
            offset = o.parse().ok();
        } else if let Some(s) = part.strip_prefix("size:") {
            size = s.parse().ok();
        } else if let Some(s) = part.strip_prefix("signed:") {
            signed = s == "1";
        }
    }
    let decl = decl?;
    let (c_type, last) = decl.rsplit_once(char::is_whitespace)?;
    let name = last.trim_start_matches('*').split('[').next()?.to_string();
    Some(Field { name, c_type: c_type.trim().to_string(), offset: offset?, size: size?, signed })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 6.18's kmem_cache_alloc format, with the `name` field.
    const KMEM_CACHE_ALLOC_6_18: &str = "name: kmem_cache_alloc
ID: 659
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long call_site;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * ptr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:24;\tsize:4;\tsigned:0;
\tfield:size_t bytes_req;\toffset:32;\tsize:8;\tsigned:0;
\tfield:size_t bytes_alloc;\toffset:40;\tsize:8;\tsigned:0;
\tfield:unsigned long gfp_flags;\toffset:48;\tsize:8;\tsigned:0;
\tfield:int node;\toffset:56;\tsize:4;\tsigned:1;
\tfield:bool accounted;\toffset:60;\tsize:1;\tsigned:0;

print fmt: \"call_site=%pS ptr=%p name=%s\", (void *)REC->call_site, REC->ptr, __get_str(name)
";

    /// 5.10's mm_page_alloc: 4-byte gfp_flags at 20, migratetype at 24.
    const MM_PAGE_ALLOC_5_10: &str = "name: mm_page_alloc
ID: 451
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned int order;\toffset:16;\tsize:4;\tsigned:0;
\tfield:gfp_t gfp_flags;\toffset:20;\tsize:4;\tsigned:0;
\tfield:int migratetype;\toffset:24;\tsize:4;\tsigned:1;
";

    #[test]
    fn parses_layouts_of_two_generations() {
        let f = EventFormat::parse("kmem", KMEM_CACHE_ALLOC_6_18).unwrap();
        assert_eq!((f.name.as_str(), f.id), ("kmem:kmem_cache_alloc", 659));
        let ptr = f.field("ptr").unwrap();
        assert_eq!((ptr.offset, ptr.size, ptr.c_type.as_str()), (16, 8, "const void *"));
        let name = f.field("name").unwrap();
        assert_eq!((name.offset, name.size, name.c_type.as_str()), (24, 4, "__data_loc char[]"));
        let f = EventFormat::parse("kmem", MM_PAGE_ALLOC_5_10).unwrap();
        let gfp = f.field("gfp_flags").unwrap();
        assert_eq!((gfp.offset, gfp.size), (20, 4));
        assert!(f.field("migratetype").unwrap().signed);
        assert!(f.require("name").unwrap_err().0.contains("kmem:mm_page_alloc has no field `name`"));
    }

    #[test]
    fn reads_fields_from_raw_records() {
        let f = EventFormat::parse("kmem", KMEM_CACHE_ALLOC_6_18).unwrap();
        let mut raw = vec![0u8; 72];
        raw[16..24].copy_from_slice(&0xffff888012345678u64.to_ne_bytes());
        raw[56..60].copy_from_slice(&(-1i32).to_ne_bytes());
        let loc: u32 = (8 << 16) | 64;
        raw[24..28].copy_from_slice(&loc.to_ne_bytes());
        raw[64..72].copy_from_slice(b"dentry\0\0");
        assert_eq!(f.field("ptr").unwrap().read_u64(&raw), Some(0xffff888012345678));
        assert_eq!(f.field("node").unwrap().read_i64(&raw), Some(-1));
        assert_eq!(f.field("name").unwrap().read_data_loc_str(&raw), Some("dentry"));
        assert_eq!(f.field("ptr").unwrap().read_u64(&raw[..20]), None, "short record");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(EventFormat::parse("x", "").is_err());
        assert!(EventFormat::parse("x", "name: a\nID: 1\n\tfield:int;\toffset:x;").is_err());
    }
}

//! Every reader of kernel text, fed truncated and mutated copies of the
//! captured files under tests/data, returns a value or an error: never a
//! panic (a kernel can print anything; a file can be cut short).

use std::path::Path;

use proptest::prelude::*;
use sysak_kernel::layout::VmcoreInfo;
use sysak_kernel::procfs::{
    parse_allocinfo, parse_buddyinfo, parse_mm_stat, parse_pagetypeinfo, parse_per_cpu_free_pages, parse_vmallocinfo, MemInfo, SlabInfo,
};
use sysak_kernel::symbols::Kallsyms;
use sysak_kernel::trace::EventFormat;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Every fixture of `name` across the kernel generations.
fn fixtures(name: &str) -> Vec<String> {
    let dir = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter_map(|e| std::fs::read_to_string(e.path().join(name)).ok()).collect();
    found.sort();
    assert!(!found.is_empty(), "no {name} fixture");
    found
}

const KALLSYMS: &str = "ffffffff81000000 T _text\nffffffff81000100 t load_msg\nffffffff81000200 T __start_rodata\n\
ffffffffc0000000 t leakmod_kmalloc_one\t[leakmod]\nffffffffc0000100 t leakmod_exit\t[leakmod]\n";
const VMCOREINFO: &str = "OSRELEASE=6.18.44\nPAGESIZE=4096\nSYMBOL(vmemmap)=ffffea0000000000\n\
NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376\nSIZE(page)=64\nKERNELOFFSET=1e000000\n";
const MM_STAT: &str = "4294967296 1073741824 1140850688        0 1140850688      120        0    12345        0\n";

/// A copy of `text` cut at `cut` (a fraction of its length) with up to
/// eight bytes replaced by `noise` (printable ASCII, newlines, digits,
/// separators: what a parser splits on).
fn mangle(text: &str, cut: f64, edits: &[(f64, u8)]) -> String {
    let mut bytes: Vec<u8> = text.as_bytes()[..(text.len() as f64 * cut) as usize].to_vec();
    for &(at, b) in edits {
        if !bytes.is_empty() {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] = b;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<(f64, u8)>> {
    proptest::collection::vec((0.0..1.0f64, prop_oneof![Just(b'\n'), Just(b' '), Just(b':'), Just(b'='), b'0'..=b'9', 0x20u8..0x7f]), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn procfs_readers(cut in 0.0..=1.0f64, edits in edits(), pick in 0usize..16) {
        let p = Path::new("fixture");
        for name in ["meminfo", "slabinfo", "vmallocinfo", "buddyinfo", "pagetypeinfo", "allocinfo"] {
            let all = fixtures(name);
            let text = mangle(&all[pick % all.len()], cut, &edits);
            match name {
                "meminfo" => { let _ = MemInfo::parse(&text, p); }
                "slabinfo" => { let _ = SlabInfo::parse(&text, p); }
                "vmallocinfo" => { let _ = parse_vmallocinfo(&text, p); }
                "buddyinfo" => { let _ = parse_buddyinfo(&text, p); }
                "pagetypeinfo" => { let _ = parse_pagetypeinfo(&text, p); }
                _ => { let _ = parse_allocinfo(&text, p); }
            }
        }
    }

    #[test]
    fn small_readers(cut in 0.0..=1.0f64, edits in edits()) {
        let _ = Kallsyms::parse(&mangle(KALLSYMS, cut, &edits), &mangle("leakmod 16384 0 - Live 0xffffffffc0000000\n", cut, &edits));
        let info = VmcoreInfo::parse(&mangle(VMCOREINFO, cut, &edits));
        let _ = (info.symbol("vmemmap"), info.number("PAGE_SLAB_MAPCOUNT_VALUE"), info.get("OSRELEASE"));
        let _ = parse_mm_stat(&mangle(MM_STAT, cut, &edits), Path::new("mm_stat"));
        let _ = parse_per_cpu_free_pages(&mangle("  pagesets\n    cpu: 0\n              count: 26\n", cut, &edits));
        let _ = EventFormat::parse("kmem", &mangle(&fixture("6.18/kmalloc.format"), cut, &edits));
    }

    /// Field offsets and sizes come from the text: a mutated format never
    /// yields a field that reads outside a record of the size it claims.
    #[test]
    fn event_fields_read_inside_records(cut in 0.9..=1.0f64, edits in edits(), record in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(format) = EventFormat::parse("kmem", &mangle(&fixture("6.18/kmalloc.format"), cut, &edits)) {
            for name in ["ptr", "call_site", "bytes_alloc", "gfp_flags", "node"] {
                if let Some(field) = format.field(name) {
                    let _ = (field.read_u64(&record), field.read_i64(&record));
                }
            }
        }
    }
}

#[test]
fn unmangled_fixtures_parse() {
    let p = Path::new("fixture");
    for text in fixtures("meminfo") {
        MemInfo::parse(&text, p).unwrap();
    }
    for text in fixtures("slabinfo") {
        SlabInfo::parse(&text, p).unwrap();
    }
    let format = EventFormat::parse("kmem", &fixture("6.18/kmalloc.format")).unwrap();
    assert_eq!(format.field("bytes_alloc").map(|f| f.size), Some(8));
    Kallsyms::parse(KALLSYMS, "").unwrap();
}

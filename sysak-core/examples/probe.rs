use sysak_core::trace::bpf_outstanding::*;
fn main() {
    let allocs = [AllocProbe { tracepoint: "kmalloc".into(), key_arg: 1, call_site_arg: Some(0), bytes: Bytes::Arg(3), filter: Some((3, 128)) }];
    let frees = [FreeProbe { tracepoint: "kfree".into(), key_arg: 1 }, FreeProbe { tracepoint: "kmem_cache_free".into(), key_arg: 1 }];
    let mut t = OutstandingTracer::load(&allocs, &frees, 65536, true).unwrap();
    t.start().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6));
    t.stop_allocs();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let syms = sysak_core::symbols::Kallsyms::load(std::path::Path::new("/proc")).unwrap();
    let mut by = std::collections::HashMap::new();
    let mut some = None;
    let stacks = t.drain(|e| { *by.entry(e.call_site).or_insert(0) += 1; some = e.stack; }).unwrap();
    for (cs, n) in by { println!("{n} {}", syms.format(cs)); }
    println!("{:?}", t.stats());
    if let Some(id) = some { for ip in &stacks[&id] { println!("  {}", syms.format(*ip)); } }
}

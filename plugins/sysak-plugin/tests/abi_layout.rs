//! The Rust mirror must match the C header byte for byte: compile a C program
//! against `plugins/include/sysak_plugin.h` that prints every size and offset,
//! and compare with `std::mem::{size_of, offset_of}`.

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;
use sysak_plugin::abi::{SysakHost, SysakPlugin};

const PROBE_C: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include "sysak_plugin.h"
#define F(s, f) printf(#s "." #f " %zu\n", offsetof(struct s, f))
int main(void) {
    printf("sysak_host %zu\n", sizeof(struct sysak_host));
    F(sysak_host, abi_version); F(sysak_host, struct_size); F(sysak_host, format);
    F(sysak_host, reserved); F(sysak_host, host_version); F(sysak_host, log);
    printf("sysak_plugin %zu\n", sizeof(struct sysak_plugin));
    F(sysak_plugin, abi_version); F(sysak_plugin, struct_size); F(sysak_plugin, name);
    F(sysak_plugin, summary); F(sysak_plugin, category); F(sysak_plugin, flags);
    F(sysak_plugin, reserved); F(sysak_plugin, run);
    printf("abi_version %u\n", SYSAK_PLUGIN_ABI_VERSION);
    printf("flag_experimental %u\n", SYSAK_PLUGIN_EXPERIMENTAL);
    printf("flag_needs_root %u\n", SYSAK_PLUGIN_NEEDS_ROOT);
    printf("entry %s\n", SYSAK_PLUGIN_ENTRY);
    return 0;
}
"#;

fn c_layout() -> String {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("abi_probe.c");
    let exe = dir.join("abi_probe");
    std::fs::write(&src, PROBE_C).unwrap();
    let status = Command::new("cc")
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler (cc) is needed to check the plugin ABI");
    assert!(status.success(), "the plugin header does not compile");
    String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap()
}

#[test]
fn rust_mirror_matches_c_header() {
    let rust = [
        format!("sysak_host {}", size_of::<SysakHost>()),
        format!("sysak_host.abi_version {}", offset_of!(SysakHost, abi_version)),
        format!("sysak_host.struct_size {}", offset_of!(SysakHost, struct_size)),
        format!("sysak_host.format {}", offset_of!(SysakHost, format)),
        format!("sysak_host.reserved {}", offset_of!(SysakHost, reserved)),
        format!("sysak_host.host_version {}", offset_of!(SysakHost, host_version)),
        format!("sysak_host.log {}", offset_of!(SysakHost, log)),
        format!("sysak_plugin {}", size_of::<SysakPlugin>()),
        format!("sysak_plugin.abi_version {}", offset_of!(SysakPlugin, abi_version)),
        format!("sysak_plugin.struct_size {}", offset_of!(SysakPlugin, struct_size)),
        format!("sysak_plugin.name {}", offset_of!(SysakPlugin, name)),
        format!("sysak_plugin.summary {}", offset_of!(SysakPlugin, summary)),
        format!("sysak_plugin.category {}", offset_of!(SysakPlugin, category)),
        format!("sysak_plugin.flags {}", offset_of!(SysakPlugin, flags)),
        format!("sysak_plugin.reserved {}", offset_of!(SysakPlugin, reserved)),
        format!("sysak_plugin.run {}", offset_of!(SysakPlugin, run)),
        format!("abi_version {}", sysak_plugin::abi::ABI_VERSION),
        format!("flag_experimental {}", sysak_plugin::abi::FLAG_EXPERIMENTAL),
        format!("flag_needs_root {}", sysak_plugin::abi::FLAG_NEEDS_ROOT),
        format!("entry {}", sysak_plugin::abi::ENTRY_SYMBOL),
    ]
    .join("\n")
        + "\n";
    assert_eq!(c_layout(), rust);
}

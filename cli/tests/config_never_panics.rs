//! The configuration parser, fed truncated and mutated copies of the
//! documented default file, returns a configuration or an error naming
//! the file: never a panic.

use std::path::Path;

use proptest::prelude::*;
use sysak_cli::config::Config;

const DEFAULT: &str = include_str!("../../packaging/sysak.toml");

proptest! {
    #[test]
    fn mangled_configurations(cut in 0.0..=1.0f64, edits in proptest::collection::vec((0.0..1.0f64, prop_oneof![Just(b'\n'), Just(b'='), Just(b'"'), Just(b'['), Just(b']'), 0x20u8..0x7f]), 0..8)) {
        let mut bytes = DEFAULT.as_bytes()[..(DEFAULT.len() as f64 * cut) as usize].to_vec();
        for (at, b) in edits {
            if !bytes.is_empty() {
                let i = ((bytes.len() - 1) as f64 * at) as usize;
                bytes[i] = b;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = Config::parse(&text, Path::new("/etc/sysak/sysak.toml")) {
            prop_assert!(e.to_string().contains("/etc/sysak/sysak.toml"), "{}", e);
        }
    }
}

#[test]
fn the_default_file_parses() {
    Config::parse(DEFAULT, Path::new("sysak.toml")).unwrap();
}

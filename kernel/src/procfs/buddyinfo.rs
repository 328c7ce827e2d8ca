//! `/proc/buddyinfo`: free blocks per order per zone (every kernel since 2.6).
//!
//! `Node 0, zone   Normal  12625   7432   3724 ...` — one count per order,
//! MAX_ORDER of them (11 on x86_64 up to 6.3; 6.4 made MAX_ORDER inclusive,
//! so the count of columns is whatever the line has).

use super::{read_to_string, Error, ProcFs};
use serde::Serialize;
use std::path::Path;

/// Free blocks of one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneFreeBlocks {
    /// NUMA node.
    pub node: u32,
    /// Zone name (`DMA`, `DMA32`, `Normal`, `Movable`).
    pub zone: String,
    /// Free blocks of order 0, 1, 2, ...
    pub free_blocks: Vec<u64>,
}

impl ProcFs {
    /// Read `/proc/buddyinfo`.
    pub fn read_buddyinfo(&self) -> Result<Vec<ZoneFreeBlocks>, Error> {
        let path = self.proc_path("buddyinfo");
        parse_buddyinfo(&read_to_string(&path)?, &path)
    }
}

/// Parse buddyinfo text; `path` names it in errors.
pub fn parse_buddyinfo(text: &str, path: &Path) -> Result<Vec<ZoneFreeBlocks>, Error> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(index, line)| {
            let bad = || Error::parse(path, index + 1, format!("malformed buddyinfo line: {line:?}"));
            let rest = line.strip_prefix("Node ").ok_or_else(bad)?;
            let (node, rest) = rest.split_once(',').ok_or_else(bad)?;
            let mut words = rest.split_whitespace();
            if words.next() != Some("zone") {
                return Err(bad());
            }
            let zone = words.next().ok_or_else(bad)?.to_string();
            let free_blocks = words.map(|w| w.parse::<u64>().map_err(|_| bad())).collect::<Result<Vec<_>, _>>()?;
            Ok(ZoneFreeBlocks { node: node.trim().parse().map_err(|_| bad())?, zone, free_blocks })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_orders() {
        for kernel in ["4.19", "5.10", "6.18"] {
            let path = format!("{}/tests/data/{kernel}/buddyinfo", env!("CARGO_MANIFEST_DIR"));
            let zones = parse_buddyinfo(&std::fs::read_to_string(&path).unwrap(), Path::new(&path)).unwrap();
            assert_eq!(zones.iter().map(|z| z.zone.as_str()).collect::<Vec<_>>(), ["DMA", "DMA32", "Normal"]);
            assert!(zones.iter().all(|z| z.free_blocks.len() == 11 && z.node == 0));
        }
        // A 2 GiB guest (Debian 6.1 under QEMU) has no Normal zone.
        let path = format!("{}/tests/data/6.1/buddyinfo", env!("CARGO_MANIFEST_DIR"));
        let zones = parse_buddyinfo(&std::fs::read_to_string(&path).unwrap(), Path::new(&path)).unwrap();
        assert_eq!(zones.iter().map(|z| z.zone.as_str()).collect::<Vec<_>>(), ["DMA", "DMA32"]);
        assert_eq!(zones[1].free_blocks[10], 387);
        assert!(parse_buddyinfo("Node 0, zone Normal 1 x\n", Path::new("b")).is_err());
    }
}

//! `/proc/pagetypeinfo` (root only since 5.7): free blocks per order per
//! zone *and migratetype*, and the page block order.
//!
//! ```text
//! Page block order: 9
//! Pages per block:  512
//!
//! Free pages count per migrate type at order       0      1 ...
//! Node    0, zone      DMA, type    Unmovable      0      0 ...
//! ```
//! The migratetypes present vary by kernel config (CMA, HighAtomic since
//! 4.4, Isolate), and the number of orders by MAX_ORDER; both are taken from
//! the file. The "Number of blocks type" table that follows is not needed.

use serde::Serialize;
use std::path::Path;

use super::{read_to_string, Error, ProcFs};

/// Free blocks of one zone and migratetype.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrateFreeBlocks {
    /// NUMA node.
    pub node: u32,
    /// Zone name.
    pub zone: String,
    /// Migratetype (`Unmovable`, `Movable`, `Reclaimable`, …).
    pub migratetype: String,
    /// Free blocks of order 0, 1, 2, …
    pub free_blocks: Vec<u64>,
}

/// The parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageTypeInfo {
    /// pageblock_order.
    pub page_block_order: u32,
    /// Free blocks by zone and migratetype.
    pub free: Vec<MigrateFreeBlocks>,
}

impl ProcFs {
    /// Read `/proc/pagetypeinfo`.
    pub fn read_pagetypeinfo(&self) -> Result<PageTypeInfo, Error> {
        let path = self.proc_path("pagetypeinfo");
        parse_pagetypeinfo(&read_to_string(&path)?, &path)
    }
}

/// Parse pagetypeinfo text; `path` names it in errors.
pub fn parse_pagetypeinfo(text: &str, path: &Path) -> Result<PageTypeInfo, Error> {
    let mut page_block_order = None;
    let mut free = Vec::new();
    let mut in_free_table = false;
    for (index, line) in text.lines().enumerate() {
        let bad = || Error::parse(path, index + 1, format!("malformed pagetypeinfo line: {line:?}"));
        if let Some(v) = line.strip_prefix("Page block order:") {
            page_block_order = Some(v.trim().parse().map_err(|_| bad())?);
        } else if line.starts_with("Free pages count per migrate type") {
            in_free_table = true;
        } else if line.trim().is_empty() || line.starts_with("Number of blocks") {
            in_free_table = in_free_table && line.trim().is_empty() && free.is_empty();
        } else if in_free_table {
            // Node    0, zone      DMA, type    Unmovable      0 ...
            let rest = line.strip_prefix("Node").ok_or_else(bad)?;
            let (node, rest) = rest.split_once(',').ok_or_else(bad)?;
            let rest = rest.trim_start().strip_prefix("zone").ok_or_else(bad)?;
            let (zone, rest) = rest.split_once(',').ok_or_else(bad)?;
            let mut words = rest.split_whitespace();
            if words.next() != Some("type") {
                return Err(bad());
            }
            let migratetype = words.next().ok_or_else(bad)?.to_string();
            let free_blocks = words.map(|w| w.parse::<u64>().map_err(|_| bad())).collect::<Result<Vec<_>, _>>()?;
            if free_blocks.is_empty() {
                return Err(bad());
            }
            free.push(MigrateFreeBlocks {
                node: node.trim().parse().map_err(|_| bad())?,
                zone: zone.trim().to_string(),
                migratetype,
                free_blocks,
            });
        }
    }
    let page_block_order = page_block_order.ok_or_else(|| Error::parse(path, 1, "no \"Page block order\" line"))?;
    if free.is_empty() {
        return Err(Error::parse(path, 1, "no free-pages table"));
    }
    Ok(PageTypeInfo { page_block_order, free })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(kernel: &str) -> PageTypeInfo {
        let path = format!("{}/tests/data/{kernel}/pagetypeinfo", env!("CARGO_MANIFEST_DIR"));
        parse_pagetypeinfo(&std::fs::read_to_string(&path).unwrap(), Path::new(&path)).unwrap()
    }

    #[test]
    fn zones_and_migratetypes_of_two_generations() {
        let p = fixture("5.10");
        assert_eq!(p.page_block_order, 9);
        assert_eq!(p.free.len(), 18, "3 zones x 6 types (CMA built in)");
        let normal_unmovable = p.free.iter().find(|f| f.zone == "Normal" && f.migratetype == "Unmovable").unwrap();
        assert_eq!(normal_unmovable.free_blocks[..4], [12000, 6000, 2000, 500]);
        let p = fixture("6.18");
        assert!(p.free.iter().all(|f| f.free_blocks.len() == 11));
        assert!(p.free.iter().any(|f| f.zone == "DMA32" && f.migratetype == "Movable"));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse_pagetypeinfo("", Path::new("p")).is_err());
        let text = "Page block order: 9\n\nFree pages count per migrate type at order 0 1\nNode 0, zone DMA, type Unmovable 1 x\n";
        assert!(parse_pagetypeinfo(text, Path::new("p")).unwrap_err().to_string().starts_with("p:4:"));
    }
}

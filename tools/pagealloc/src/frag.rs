//! `--frag`: how fragmented free memory is, per zone and order.
//!
//! The unusable free space index is the kernel's own
//! (mm/vmstat.c `unusable_free_index()`, shown in
//! /sys/kernel/debug/extfrag/unusable_index): for order j, the share of a
//! zone's free pages that sit in blocks smaller than 2^j pages, so cannot
//! serve an order-j allocation without compaction. 0 means every free page
//! is usable, 1 that none is.
//!
//! Verdict: the smallest order for which no zone that serves ordinary
//! allocations (every zone but DMA) has a free block. Up to
//! PAGE_ALLOC_COSTLY_ORDER (3) the kernel retries hard and such a gap means
//! stalls in reclaim and compaction: that is reported as a finding.

use serde::Serialize;
use sysak_kernel::procfs::{MigrateFreeBlocks, ZoneFreeBlocks};

/// PAGE_ALLOC_COSTLY_ORDER (include/linux/mmzone.h, every kernel since 2.6.24).
pub const COSTLY_ORDER: usize = 3;

/// One zone's fragmentation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneFrag {
    /// NUMA node.
    pub node: u32,
    /// Zone.
    pub zone: String,
    /// Free pages in the zone.
    pub free_pages: u64,
    /// Free blocks per order.
    pub free_blocks: Vec<u64>,
    /// Unusable free space index per order (0..1).
    pub unusable_index: Vec<f64>,
    /// Highest order with a free block (None: nothing free).
    pub largest_free_order: Option<usize>,
    /// Free blocks per order by migratetype (/proc/pagetypeinfo; empty when
    /// it cannot be read).
    pub by_migratetype: Vec<(String, Vec<u64>)>,
}

/// The `--frag` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FragReport {
    /// Zones.
    pub zones: Vec<ZoneFrag>,
    /// pageblock_order, when pagetypeinfo was readable.
    pub page_block_order: Option<u32>,
    /// Smallest order no ordinary zone can serve from free blocks.
    pub failing_order: Option<usize>,
    /// One sentence.
    pub verdict: String,
    /// Whether the verdict is a finding (failing order ≤ COSTLY_ORDER).
    pub fragmented: bool,
}

/// The kernel's unusable_free_index for every order of one zone.
pub fn unusable_index(free_blocks: &[u64]) -> Vec<f64> {
    let free_pages: u64 = free_blocks.iter().enumerate().map(|(order, n)| n << order).sum();
    (0..free_blocks.len())
        .map(|order| {
            if free_pages == 0 {
                return 0.0;
            }
            let suitable_pages: u64 = free_blocks.iter().enumerate().skip(order).map(|(o, n)| n << o).sum();
            (free_pages - suitable_pages) as f64 / free_pages as f64
        })
        .collect()
}

/// Build the report from buddyinfo and (optionally) pagetypeinfo.
pub fn analyse(buddy: &[ZoneFreeBlocks], by_type: &[MigrateFreeBlocks], page_block_order: Option<u32>) -> FragReport {
    let zones: Vec<ZoneFrag> = buddy
        .iter()
        .map(|z| ZoneFrag {
            node: z.node,
            zone: z.zone.clone(),
            free_pages: z.free_blocks.iter().enumerate().map(|(o, n)| n << o).sum(),
            free_blocks: z.free_blocks.clone(),
            unusable_index: unusable_index(&z.free_blocks),
            largest_free_order: z.free_blocks.iter().rposition(|n| *n > 0),
            by_migratetype: by_type
                .iter()
                .filter(|t| t.node == z.node && t.zone == z.zone)
                .map(|t| (t.migratetype.clone(), t.free_blocks.clone()))
                .collect(),
        })
        .collect();
    let ordinary: Vec<&ZoneFrag> = zones.iter().filter(|z| z.zone != "DMA").collect();
    let best = ordinary.iter().filter_map(|z| z.largest_free_order).max();
    let orders = zones.iter().map(|z| z.free_blocks.len()).max().unwrap_or(0);
    let failing_order = match best {
        Some(o) if o + 1 < orders => Some(o + 1),
        Some(_) => None,
        None if ordinary.is_empty() => None,
        None => Some(0),
    };
    let fragmented = failing_order.is_some_and(|o| o <= COSTLY_ORDER);
    let verdict = match failing_order {
        None => "every order has free blocks: high-order allocations can be served from free memory".to_string(),
        Some(0) => "no free pages outside DMA: allocations depend on reclaim".to_string(),
        Some(o) if fragmented => format!(
            "no free block of order {o} or above outside DMA: order-{o} allocations (≤ costly order {COSTLY_ORDER}, which the kernel retries hard) stall in reclaim and compaction"
        ),
        Some(o) => format!("no free block of order {o} or above outside DMA: order-{o}+ allocations need compaction and may fail"),
    };
    FragReport { zones, page_block_order, failing_order, verdict, fragmented }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, blocks: &[u64]) -> ZoneFreeBlocks {
        ZoneFreeBlocks { node: 0, zone: name.into(), free_blocks: blocks.to_vec() }
    }

    #[test]
    fn unusable_index_matches_the_kernel_formula() {
        // 4 order-0 + 2 order-1 + 1 order-2 = 4 + 4 + 4 = 12 free pages.
        let idx = unusable_index(&[4, 2, 1, 0]);
        assert_eq!(idx[0], 0.0);
        assert!((idx[1] - 4.0 / 12.0).abs() < 1e-9);
        assert!((idx[2] - 8.0 / 12.0).abs() < 1e-9);
        assert_eq!(idx[3], 1.0);
        assert_eq!(unusable_index(&[0, 0, 0]), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn verdicts() {
        let healthy = analyse(&[zone("DMA", &[1, 1, 1, 1]), zone("Normal", &[10, 5, 2, 1])], &[], None);
        assert_eq!((healthy.failing_order, healthy.fragmented), (None, false));
        // Normal has nothing above order 1; DMA's order-3 block does not count.
        let bad = analyse(&[zone("DMA", &[0, 0, 0, 3]), zone("Normal", &[5000, 20, 0, 0])], &[], None);
        assert_eq!((bad.failing_order, bad.fragmented), (Some(2), true));
        assert!(bad.verdict.contains("order-2"));
        let high = analyse(&[zone("Normal", &[5, 5, 5, 5, 5, 0, 0, 0, 0, 0, 0])], &[], None);
        assert_eq!((high.failing_order, high.fragmented), (Some(5), false));
        assert_eq!(high.zones[0].largest_free_order, Some(4));
    }
}

//! What a cache's name says: the kmalloc families, and the size some
//! names end in. A name alone never decides a size: named caches end in
//! digits too (`bio-120` holds 128-byte objects), so callers compare with
//! the cache's object size.

/// `512`, `8k`: the size at the end of a cache name.
pub fn parse_cache_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.strip_suffix('k') {
        Some(d) => (d, 1024),
        None => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// The names kmalloc's caches have (mm/slab_common.c
/// `kmalloc_cache_name()` and `INIT_KMALLOC_INFO`): `kmalloc-N`,
/// `kmalloc-cg-N` (5.14+), `kmalloc-rcl-N` (5.0+), `dma-kmalloc-N`,
/// `kmalloc-rnd-NN-N` (6.6+, CONFIG_RANDOM_KMALLOC_CACHES).
pub fn is_kmalloc_family(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("dma-").unwrap_or(name).strip_prefix("kmalloc-") else { return false };
    let rest = rest.strip_prefix("cg-").or_else(|| rest.strip_prefix("rcl-")).unwrap_or(rest);
    let rest = match rest.strip_prefix("rnd-").and_then(|r| r.split_once('-')) {
        Some((copy, size)) if !copy.is_empty() && copy.bytes().all(|b| b.is_ascii_digit()) => size,
        Some(_) => return false,
        None => rest,
    };
    parse_cache_size(rest).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmalloc_family_by_name() {
        for yes in ["kmalloc-64", "kmalloc-cg-96", "kmalloc-rcl-8k", "dma-kmalloc-512", "kmalloc-rnd-03-128", "kmalloc-cg-1k"] {
            assert!(is_kmalloc_family(yes), "{yes}");
        }
        for no in ["dentry", "msg_msg-256", "bio-120", "kmalloc-", "kmalloc-cg-", "kmalloc-rnd-x-64", "kmalloc-64k-", "ip6-frags"] {
            assert!(!is_kmalloc_family(no), "{no}");
        }
    }
}

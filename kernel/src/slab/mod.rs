//! SLUB, read from kernel memory: the cache list ([`caches`]) and a walk
//! over one cache's slabs that yields its allocated objects ([`walk`]).
//!
//! Layouts come from [`crate::layout::SlabLayout`] (BTF), addresses from
//! [`crate::layout::KernelAddresses`]. A live kernel changes under the
//! walk: every struct slab is validated before use, every freelist walk is
//! bounded by the slab's object count, and inconsistencies are counted, not
//! trusted.

pub mod caches;
pub mod freelist;
pub mod lookup;
pub mod names;
pub mod walk;

pub use caches::KmemCache;
pub use walk::{walk_cache, WalkStats};

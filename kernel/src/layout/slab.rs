//! The slab allocator's structures, as BTF describes them (SLUB only).
//!
//! Two eras, told apart by BTF, never by the version number:
//! - 5.17+: `struct slab` overlays `struct page` and names the fields
//!   (slab_cache, freelist, counters with inuse:16 objects:15 frozen:1).
//! - up to 5.16 (4.19, 5.10 — Anolis ANCK 5.10): the same fields live in
//!   anonymous unions of `struct page` itself.
//!
//! How a page is known to be a slab page also changed:
//! - up to 6.8: bit `PG_slab` of `page->flags` (enum pageflags);
//! - 6.9–6.11: `page_type` with inverted bits (`PG_slab` is then a
//!   page_type bit, value ≥ 0x100, and the page is a slab when that bit is
//!   *clear* under the 0xf0000000 base);
//! - 6.12+: the top byte of `page_type` equals `PGTY_slab` (0xf5 on 6.18).

use super::btf::{BtfError, KernelTypes, StructLayout};

/// How to recognise a slab page from its struct page bytes. `offset` is
/// the byte offset of the word tested in struct page.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlabMark {
    /// `flags & (1 << bit)`.
    FlagBit { offset: usize, bit: u32 },
    /// `page_type >> 24 == value` (6.12+).
    PageType { offset: usize, value: u32 },
    /// `page_type & (0xf0000000 | bit) == 0xf0000000` (6.9–6.11).
    InvertedPageType { offset: usize, bit: u32 },
}

impl SlabMark {
    /// Whether `page` (the struct page bytes) is marked as slab.
    pub fn is_slab(&self, page: &[u8]) -> bool {
        match *self {
            SlabMark::FlagBit { offset, bit } => read_u64(page, offset) & (1 << bit) != 0,
            SlabMark::PageType { offset, value } => read_u32(page, offset) >> 24 == value,
            SlabMark::InvertedPageType { offset, bit } => read_u32(page, offset) & (0xf000_0000 | bit) == 0xf000_0000,
        }
    }
}

/// A bitfield inside the counters word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitField {
    /// Bit offset from the start of the struct.
    pub bit_offset: u32,
    /// Width.
    pub bits: u32,
}

impl BitField {
    fn from(layout: &StructLayout, name: &str) -> Result<BitField, BtfError> {
        let m = layout.member(name)?;
        Ok(BitField { bit_offset: m.bit_offset, bits: m.bits.unwrap_or(m.size as u32 * 8) })
    }

    /// Extract from the struct bytes (little-endian, within one u64).
    pub fn get(&self, bytes: &[u8]) -> u64 {
        let word = (self.bit_offset / 64) as usize * 8;
        let shift = self.bit_offset % 64;
        (read_u64(bytes, word) >> shift) & ((1u64 << self.bits) - 1)
    }
}

/// Offsets in `struct kmem_cache` (SLUB).
#[derive(Debug, Clone)]
pub struct CacheLayout {
    /// Object stride in a slab.
    pub size: usize,
    /// What the caller asked for.
    pub object_size: usize,
    /// Free pointer offset within an object.
    pub offset: usize,
    /// `const char *name`.
    pub name: usize,
    /// `struct list_head list` (slab_caches).
    pub list: usize,
    /// `struct kmem_cache_order_objects oo` (order << 16 | objects).
    pub oo: usize,
    /// CONFIG_SLAB_FREELIST_HARDENED's `random`, when built in.
    pub random: Option<usize>,
    /// Red zone before each object (debug caches), when the field exists.
    pub red_left_pad: Option<usize>,
    /// `slab_flags_t flags`.
    pub flags: usize,
    /// The SLAB_RECLAIM_ACCOUNT bit of `flags`: an enum bit since 6.9
    /// (`_SLAB_RECLAIM_ACCOUNT` in BTF), 0x00020000 before.
    pub reclaim_account: u64,
}

/// Everything the slab walk needs from BTF.
#[derive(Debug, Clone)]
pub struct SlabLayout {
    /// "struct slab" (5.17+) or "struct page" (older).
    pub era: &'static str,
    /// sizeof(struct page): the vmemmap stride.
    pub page_struct_size: usize,
    /// Offset of the owning cache pointer.
    pub slab_cache: usize,
    /// Offset of the first free object pointer.
    pub freelist: usize,
    /// Objects in use (including those on per-CPU freelists).
    pub inuse: BitField,
    /// Objects in this slab.
    pub objects: BitField,
    /// The slab is owned by a CPU (its free objects are on a per-CPU list).
    pub frozen: Option<BitField>,
    /// Slab page test.
    pub mark: SlabMark,
    /// Offset of `compound_head` in struct page (bit 0 set on tail pages).
    pub compound_head: usize,
    /// kmem_cache offsets.
    pub cache: CacheLayout,
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap())).unwrap_or(0)
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap())).unwrap_or(0)
}

impl SlabLayout {
    /// Read the layout from BTF. Refuses SLAB (the pre-6.8 alternative
    /// allocator) and kernels whose slab page marking is not one of the
    /// three known schemes.
    pub fn from_btf(types: &KernelTypes) -> Result<SlabLayout, BtfError> {
        let page = types.require_struct("page")?;
        let slab = types.struct_layout("slab")?.filter(|s| s.has("slab_cache"));
        let (era, holder) = match &slab {
            Some(s) => ("struct slab", s),
            None if page.has("slab_cache") => ("struct page", &page),
            None => return Err(BtfError("BTF has neither struct slab nor slab fields in struct page".into())),
        };
        let cache = types.require_struct("kmem_cache")?;
        if !cache.has("offset") || !cache.has("oo") {
            return Err(BtfError(
                "this kernel uses the SLAB allocator (struct kmem_cache has no SLUB fields); only SLUB is supported".into(),
            ));
        }
        let mark = if let Some(v) = types.enum_value("PGTY_slab") {
            SlabMark::PageType { offset: page.offset("page_type")?, value: v as u32 }
        } else {
            match types.enum_value("PG_slab") {
                Some(bit) if bit < 64 => SlabMark::FlagBit { offset: page.offset("flags")?, bit: bit as u32 },
                Some(bit) => SlabMark::InvertedPageType { offset: page.offset("page_type")?, bit: bit as u32 },
                None => return Err(BtfError("BTF has neither PGTY_slab nor PG_slab: cannot tell slab pages".into())),
            }
        };
        Ok(SlabLayout {
            era,
            page_struct_size: page.size,
            slab_cache: holder.offset("slab_cache")?,
            freelist: holder.offset("freelist")?,
            inuse: BitField::from(holder, "inuse")?,
            objects: BitField::from(holder, "objects")?,
            frozen: holder.has("frozen").then(|| BitField::from(holder, "frozen")).transpose()?,
            mark,
            compound_head: page.offset("compound_head")?,
            cache: CacheLayout {
                size: cache.offset("size")?,
                object_size: cache.offset("object_size")?,
                offset: cache.offset("offset")?,
                name: cache.offset("name")?,
                list: cache.offset("list")?,
                oo: cache.offset("oo")?,
                random: cache.has("random").then(|| cache.offset("random")).transpose()?,
                red_left_pad: cache.has("red_left_pad").then(|| cache.offset("red_left_pad")).transpose()?,
                flags: cache.offset("flags")?,
                reclaim_account: types.enum_value("_SLAB_RECLAIM_ACCOUNT").map(|bit| 1 << bit).unwrap_or(0x0002_0000),
            },
        })
    }
}

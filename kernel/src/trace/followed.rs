//! Objects allocated before a trace window, followed through it: which of
//! them a trace watches on the free path.
//!
//! A stock of alike slab objects can hold millions of members; the free
//! path of a BPF program cannot test membership in a set that large for
//! every `kfree()` on the host. It watches a sample chosen by address
//! instead: a member is followed when a multiplicative hash of its address
//! has `shift` low bits of zero, so the sample is spread over every slab and
//! the program decides with one multiply, one shift and one mask before it
//! looks anything up. Samples are nested: what a larger `shift` follows is
//! also followed by every smaller one.

/// Fibonacci hashing's multiplier, 2^64 / φ: consecutive object addresses
/// (a fixed stride apart) land far apart in the hash's high bits.
pub const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
/// The hash keeps bits 32 and up of the product.
pub const HASH_SHIFT: i32 = 32;

/// One member in `2^shift`, chosen by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressSample {
    /// log2 of the sampling factor (0: every member).
    pub shift: u32,
}

impl AddressSample {
    /// Every member.
    pub const ALL: AddressSample = AddressSample { shift: 0 };

    /// The factor: one member in this many is followed.
    pub fn every(self) -> u64 {
        1 << self.shift
    }

    /// The mask the hash is tested against (0 for every member).
    pub fn mask(self) -> u64 {
        self.every() - 1
    }

    /// Whether the member at `address` is followed.
    pub fn takes(self, address: u64) -> bool {
        (address.wrapping_mul(MULTIPLIER) >> HASH_SHIFT) & self.mask() == 0
    }

    /// The smallest sample that keeps about `members / 2^shift <= cap`.
    pub fn to_fit(members: u64, cap: u64) -> AddressSample {
        let mut shift = 0;
        while members >> shift > cap.max(1) && shift < 32 {
            shift += 1;
        }
        AddressSample { shift }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spread_and_nested() {
        // 64-byte objects in consecutive slabs, as a cache holds them.
        let addresses: Vec<u64> = (0..1_000_000u64).map(|i| 0xffff_8880_1000_0000 + i * 64).collect();
        for shift in [1u32, 2, 4, 6] {
            let sample = AddressSample { shift };
            let taken = addresses.iter().filter(|a| sample.takes(**a)).count() as f64;
            let expected = addresses.len() as f64 / sample.every() as f64;
            assert!((taken - expected).abs() < expected * 0.03, "shift {shift}: {taken} taken, {expected} expected");
            let coarser = AddressSample { shift: shift + 1 };
            assert!(addresses.iter().filter(|a| coarser.takes(**a)).all(|a| sample.takes(*a)), "nested");
        }
        assert!(addresses.iter().all(|a| AddressSample::ALL.takes(*a)));
        assert_eq!(AddressSample::to_fit(100, 262_144), AddressSample::ALL);
        assert_eq!(AddressSample::to_fit(600_000, 262_144).every(), 4);
    }
}

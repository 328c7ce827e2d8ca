//! Kernel layout: struct offsets from BTF ([`btf`], [`slab::SlabLayout`])
//! and where the kernel keeps its memory map ([`addresses`]).
//!
//! Nothing here hard-codes an offset or a base address: offsets differ
//! between 4.19, 5.10, 6.1 and 6.18, and KASLR moves the bases every boot.

pub mod addresses;
pub mod btf;
pub mod slab;

pub use addresses::{KernelAddresses, VmcoreInfo};
pub use btf::{ArgType, BtfError, KernelTypes, StructLayout};
pub use slab::SlabLayout;

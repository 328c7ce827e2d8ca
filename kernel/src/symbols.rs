//! Kernel symbols: `/proc/kallsyms` (with its `[module]` column) and
//! `/proc/modules`, rendering addresses the way the kernel's `%pS` does:
//! `func+0x7c/0x200 [bonding]`.
//!
//! kallsyms has no sizes: a symbol ends where the next one (in address
//! order, same module) starts. The last symbol of a module ends with the
//! module's core text as /proc/modules gives it; the core kernel's regions
//! end at their end markers (`_etext`, `_einittext`, ...), which resolve to
//! nothing. An address past the last symbol with a known end prints as a
//! raw address, never as a far-away symbol plus a huge offset.
//!
//! Needs root (or kptr_restrict=0) for real addresses: unprivileged reads
//! show zeros, which [`Kallsyms::parse`] rejects. Without
//! CONFIG_KALLSYMS_ALL only code symbols are listed.

use std::fmt;
use std::path::Path;

/// Symbols that end a region of the kernel image: addresses at or after
/// them (until the next symbol) belong to no function.
const REGION_END_MARKERS: [&str; 8] =
    ["_etext", "_einittext", "_edata", "_end", "__end_rodata", "__bss_stop", "__init_end", "__entry_text_end"];

#[derive(Debug, Clone)]
struct Entry {
    address: u64,
    /// Exclusive end, when known.
    end: Option<u64>,
    name: String,
    module: Option<String>,
    marker: bool,
}

/// A resolved address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// Symbol name.
    pub name: &'a str,
    /// Offset of the address from the symbol's start.
    pub offset: u64,
    /// The symbol's size (distance to its end).
    pub size: u64,
    /// Module, for module code.
    pub module: Option<&'a str>,
}

impl fmt::Display for Resolved<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:#x}/{:#x}", self.name, self.offset, self.size)?;
        if let Some(module) = self.module {
            write!(f, " [{module}]")?;
        }
        Ok(())
    }
}

/// The kernel's symbol table, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct Kallsyms {
    entries: Vec<Entry>,
}

crate::message_error!(
    /// kallsyms could not be read or is unusable.
    SymbolsError
);

impl Kallsyms {
    /// Read `/proc/kallsyms` and `/proc/modules` under `proc_root`.
    pub fn load(proc_root: &Path) -> Result<Kallsyms, SymbolsError> {
        let read = |name: &str| {
            std::fs::read_to_string(proc_root.join(name))
                .map_err(|e| SymbolsError(format!("cannot read {}: {e}", proc_root.join(name).display())))
        };
        let modules = read("modules").unwrap_or_default();
        Kallsyms::parse(&read("kallsyms")?, &modules)
    }

    /// Parse kallsyms text (`addr type name [module]`) and /proc/modules
    /// text (`name size refs deps state addr ...`).
    pub fn parse(kallsyms: &str, modules: &str) -> Result<Kallsyms, SymbolsError> {
        let mut entries: Vec<Entry> = kallsyms
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let address = u64::from_str_radix(words.next()?, 16).ok()?;
                let kind = words.next()?;
                let name = words.next()?.to_string();
                let module = words.next().map(|m| m.trim_matches(['[', ']']).to_string());
                // Absolute symbols (a/A) are not addresses in the image.
                (!kind.eq_ignore_ascii_case("a")).then(|| Entry {
                    address,
                    end: None,
                    marker: module.is_none() && REGION_END_MARKERS.contains(&name.as_str()),
                    name,
                    module,
                })
            })
            .collect();
        if entries.is_empty() {
            return Err(SymbolsError("kallsyms lists no symbols".into()));
        }
        if entries.iter().all(|e| e.address == 0) {
            return Err(SymbolsError("kallsyms shows only zero addresses (kptr_restrict): run as root".into()));
        }
        entries.sort_by_key(|e| e.address);
        let module_ends: Vec<(String, u64)> = modules
            .lines()
            .filter_map(|line| {
                let w: Vec<&str> = line.split_whitespace().collect();
                let size: u64 = w.get(1)?.parse().ok()?;
                let base = u64::from_str_radix(w.get(5)?.trim_start_matches("0x"), 16).ok()?;
                Some((w[0].to_string(), base + size))
            })
            .collect();
        // Each symbol ends at the next higher address of its own module.
        for i in 0..entries.len() {
            let next = entries[i + 1..].iter().find(|n| n.address > entries[i].address && n.module == entries[i].module).map(|n| n.address);
            let module_end = entries[i].module.as_ref().and_then(|m| module_ends.iter().find(|(name, _)| name == m).map(|(_, end)| *end));
            entries[i].end = match (next, module_end) {
                (Some(n), Some(m)) => Some(n.min(m)),
                (n, m) => n.or(m),
            };
        }
        Ok(Kallsyms { entries })
    }

    /// The symbol containing `address`, if any.
    pub fn resolve(&self, address: u64) -> Option<Resolved<'_>> {
        let idx = self.entries.partition_point(|e| e.address <= address);
        let top = self.entries[..idx].last()?.address;
        // Aliases share an address: a marker among them means "no function
        // here"; otherwise the first whose range holds the address.
        let aliases = self.entries[..idx].iter().rev().take_while(|e| e.address == top);
        let mut found = None;
        for e in aliases {
            if e.marker {
                return None;
            }
            if let Some(end) = e.end.filter(|end| address < *end) {
                found = Some(Resolved { name: &e.name, offset: address - e.address, size: end - e.address, module: e.module.as_deref() });
            }
        }
        found
    }

    /// `func+0xoff/0xsize [module]`, or `0x…` for an address in no symbol.
    pub fn format(&self, address: u64) -> String {
        match self.resolve(address) {
            Some(r) => r.to_string(),
            None => format!("{address:#x}"),
        }
    }

    /// The address of `name` in the core kernel, if listed.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.entries.iter().find(|e| e.name == name && e.module.is_none()).map(|e| e.address)
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no symbols.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81000100 T start_kernel
ffffffff81000300 t helper
ffffffff81000400 T last_text_function
ffffffff81000500 T _etext
ffffffff82000000 D some_data
ffffffff82000040 D more_data
ffffffffc0001000 t bond_init\t[bonding]
ffffffffc0001200 T bond_xmit\t[bonding]
ffffffffc0003000 t ext_fn\t[other]
0000000000000000 A fixed_percpu_data
";
    const MODULES: &str = "bonding 8192 0 - Live 0xffffffffc0001000\nother 4096 0 - Live 0xffffffffc0003000\n";

    fn syms() -> Kallsyms {
        Kallsyms::parse(KALLSYMS, MODULES).unwrap()
    }

    #[test]
    fn renders_like_percent_p_s() {
        let s = syms();
        assert_eq!(s.format(0xffffffff81000100), "start_kernel+0x0/0x200");
        assert_eq!(s.format(0xffffffff8100017c), "start_kernel+0x7c/0x200");
        assert_eq!(s.format(0xffffffffc0001010), "bond_init+0x10/0x200 [bonding]");
    }

    #[test]
    fn last_symbol_of_a_section_ends_at_the_marker_or_module_end() {
        let s = syms();
        assert_eq!(s.format(0xffffffff810004ff), "last_text_function+0xff/0x100");
        // Past _etext: inside no function, even though data follows later.
        assert_eq!(s.format(0xffffffff81000600), "0xffffffff81000600");
        // bonding is 8 KiB from 0xffffffffc0001000: bond_xmit ends there.
        assert_eq!(s.format(0xffffffffc0002ff0), "bond_xmit+0x1df0/0x1e00 [bonding]");
        assert_eq!(s.format(0xffffffffc0003010), "ext_fn+0x10/0x1000 [other]");
        assert_eq!(s.format(0xffffffffc0004000), "0xffffffffc0004000");
    }

    #[test]
    fn addresses_before_everything_are_raw() {
        assert_eq!(syms().format(0x1000), "0x1000");
        assert_eq!(syms().address_of("start_kernel"), Some(0xffffffff81000100));
    }

    #[test]
    fn restricted_kallsyms_is_refused() {
        let err = Kallsyms::parse("0000000000000000 T _text\n0000000000000000 T foo\n", "").unwrap_err();
        assert!(err.0.contains("kptr_restrict"), "{}", err.0);
        assert!(Kallsyms::parse("", "").is_err());
    }

    #[test]
    fn live_kallsyms_resolves_a_known_function() {
        let Ok(s) = Kallsyms::load(Path::new("/proc")) else { return };
        if let Some(addr) = s.address_of("load_msg") {
            assert!(s.format(addr + 4).starts_with("load_msg+0x4/0x"), "{}", s.format(addr + 4));
        }
    }
}

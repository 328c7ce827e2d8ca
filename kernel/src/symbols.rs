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
//! CONFIG_KALLSYMS_ALL only code symbols are listed, plus section bounds
//! (`__start_rodata`, `__start___jump_table`, …) that name no object: they
//! are markers, so a pointer into data does not print as
//! `__start_rodata+0x1b3c40`. A distribution's `System.map` has every
//! symbol; [`Kallsyms::add_system_map`] adds its data symbols, shifted by
//! the KASLR offset (the difference of the two `_text`s).

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
    /// A data symbol (types d, r, b: data, read-only data, bss).
    data: bool,
}

/// Section bounds and end markers name no object.
fn is_marker(name: &str, module: Option<&str>) -> bool {
    module.is_none() && (REGION_END_MARKERS.contains(&name) || ["__start_", "__stop_", "__end_"].iter().any(|p| name.starts_with(p)))
}

/// Data, read-only data and bss symbol types of nm(1).
fn is_data_kind(kind: &str) -> bool {
    matches!(kind, "d" | "D" | "r" | "R" | "b" | "B")
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
    module_ends: Vec<(String, u64)>,
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
        let entries: Vec<Entry> = kallsyms
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
                    marker: is_marker(&name, module.as_deref()),
                    data: is_data_kind(kind),
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
        let module_ends: Vec<(String, u64)> = modules
            .lines()
            .filter_map(|line| {
                let w: Vec<&str> = line.split_whitespace().collect();
                let size: u64 = w.get(1)?.parse().ok()?;
                let base = u64::from_str_radix(w.get(5)?.trim_start_matches("0x"), 16).ok()?;
                Some((w[0].to_string(), base + size))
            })
            .collect();
        let mut symbols = Kallsyms { entries, module_ends };
        symbols.index();
        Ok(symbols)
    }

    /// Sort, and end each symbol at the next higher address of its own
    /// module (or the module's end).
    fn index(&mut self) {
        let entries = &mut self.entries;
        entries.sort_by_key(|e| e.address);
        for i in 0..entries.len() {
            let next = entries[i + 1..].iter().find(|n| n.address > entries[i].address && n.module == entries[i].module).map(|n| n.address);
            let module_end =
                entries[i].module.as_ref().and_then(|m| self.module_ends.iter().find(|(name, _)| name == m).map(|(_, end)| *end));
            entries[i].end = match (next, module_end) {
                (Some(n), Some(m)) => Some(n.min(m)),
                (n, m) => n.or(m),
            };
        }
    }

    /// Data symbols (objects in data, rodata, bss), section bounds not
    /// counted: a handful without CONFIG_KALLSYMS_ALL, tens of thousands
    /// with it.
    pub fn data_symbols(&self) -> usize {
        self.entries.iter().filter(|e| e.data && !e.marker).count()
    }

    /// Add the data symbols of a `System.map` (`addr type name`, the
    /// kernel build's symbol table) that kallsyms lacks, shifted by the
    /// KASLR offset: kallsyms' `_text` minus the map's. Returns how many
    /// were added; an error when the map has no `_text`.
    pub fn add_system_map(&mut self, text: &str) -> Result<usize, SymbolsError> {
        let map: Vec<(u64, &str, &str)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((u64::from_str_radix(w.next()?, 16).ok()?, w.next()?, w.next()?))
            })
            .collect();
        let map_text = map
            .iter()
            .find(|(_, _, n)| *n == "_text")
            .map(|(a, _, _)| *a)
            .ok_or_else(|| SymbolsError("the System.map has no _text".into()))?;
        let live_text = self.address_of("_text").ok_or_else(|| SymbolsError("kallsyms has no _text".into()))?;
        let shift = live_text.wrapping_sub(map_text);
        let known: std::collections::HashSet<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        let added: Vec<Entry> = map
            .iter()
            .filter(|(_, kind, name)| is_data_kind(kind) && !known.contains(name) && !is_marker(name, None))
            .map(|(address, _, name)| Entry {
                address: address.wrapping_add(shift),
                end: None,
                name: name.to_string(),
                module: None,
                marker: false,
                data: true,
            })
            .collect();
        let n = added.len();
        // Section bounds the map lists (and kallsyms may lack) end objects.
        let bounds: Vec<Entry> = map
            .iter()
            .filter(|(_, _, name)| is_marker(name, None) && !known.contains(name))
            .map(|(address, _, name)| Entry {
                address: address.wrapping_add(shift),
                end: None,
                name: name.to_string(),
                module: None,
                marker: true,
                data: false,
            })
            .collect();
        self.entries.extend(added);
        self.entries.extend(bounds);
        self.index();
        Ok(n)
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

    /// Regression: without KALLSYMS_ALL a pointer into rodata
    /// printed as `__start_rodata+0x…`; section bounds name nothing, and a
    /// System.map (KASLR-shifted) names the object.
    #[test]
    fn section_bounds_name_nothing_and_system_map_adds_data() {
        let live = "ffffffff9e000000 T _text\nffffffff9e000100 T start_kernel\nffffffff9e000500 T _etext\nffffffff9f400000 D __start_rodata\nffffffff9f800000 D __start___jump_table\n";
        let mut s = Kallsyms::parse(live, "").unwrap();
        assert_eq!(s.data_symbols(), 0);
        assert_eq!(s.format(0xffffffff9f400108), "0xffffffff9f400108");
        // Built at 0xffffffff81000000: the KASLR shift is 0x1d000000.
        let map = "ffffffff81000000 T _text\nffffffff81000100 T start_kernel\nffffffff82400000 D __start_rodata\n\
                   ffffffff82400100 R inotify_fsnotify_ops\nffffffff82400140 r other_ops\nffffffff82600000 d some_table\n\
                   ffffffff82800000 D __start___jump_table\nffffffff83000000 B jiffies_64\nffffffff83000008 b __bss_stop\n";
        assert_eq!(s.add_system_map(map).unwrap(), 4);
        assert_eq!(s.data_symbols(), 4);
        assert_eq!(s.format(0xffffffff9f400108), "inotify_fsnotify_ops+0x8/0x40");
        assert_eq!(s.format(0xffffffff9f400150), "other_ops+0x10/0x1ffec0");
        assert_eq!(s.format(0xffffffff9e000104), "start_kernel+0x4/0x400", "code symbols are kallsyms' own");
        assert!(s.add_system_map("ffffffff81000100 T start_kernel\n").unwrap_err().0.contains("no _text"));
    }

    #[test]
    fn live_kallsyms_resolves_a_known_function() {
        let Ok(s) = Kallsyms::load(Path::new("/proc")) else { return };
        if let Some(addr) = s.address_of("load_msg") {
            assert!(s.format(addr + 4).starts_with("load_msg+0x4/0x"), "{}", s.format(addr + 4));
        }
    }
}

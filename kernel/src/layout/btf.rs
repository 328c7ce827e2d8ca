//! Struct layouts and enum values from BTF (/sys/kernel/btf/vmlinux on
//! 5.4+ kernels built with CONFIG_DEBUG_INFO_BTF, or a file from --btf).
//! Members of anonymous structs and unions are flattened into their parent,
//! as C lets code name them (struct page keeps its slab fields in anonymous
//! unions on 5.10).

use std::collections::HashMap;
use std::path::Path;

use btf_rs::{Btf, Type};

crate::message_error!(
    /// BTF is missing or lacks something sysak needs.
    BtfError
);

/// Where a member lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Byte offset of the storage unit (for bitfields: of the bit offset / 8).
    pub offset: usize,
    /// Bit offset within the struct.
    pub bit_offset: u32,
    /// Width for bitfields.
    pub bits: Option<u32>,
    /// Size of the member's type in bytes (0 when unknown).
    pub size: usize,
}

/// A struct's size and its (flattened) members by name.
#[derive(Debug, Clone, Default)]
pub struct StructLayout {
    /// Struct name.
    pub name: String,
    /// sizeof.
    pub size: usize,
    /// Members by name.
    pub members: HashMap<String, Member>,
}

impl StructLayout {
    /// A member's layout, or an error naming the struct and member.
    pub fn member(&self, name: &str) -> Result<Member, BtfError> {
        self.members.get(name).copied().ok_or_else(|| BtfError(format!("BTF: struct {} has no member {name}", self.name)))
    }

    /// Byte offset of a member.
    pub fn offset(&self, name: &str) -> Result<usize, BtfError> {
        self.member(name).map(|m| m.offset)
    }

    /// Whether a member exists (config-dependent fields).
    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }
}

/// Parsed kernel BTF.
pub struct KernelTypes {
    btf: Btf,
}

impl KernelTypes {
    /// Parse a BTF file (~0.3 s for a distro vmlinux).
    pub fn load(path: &Path) -> Result<KernelTypes, BtfError> {
        let btf = Btf::from_file(path).map_err(|e| {
            if !path.exists() {
                BtfError(format!("{} does not exist (kernel built without CONFIG_DEBUG_INFO_BTF; give one with --btf)", path.display()))
            } else {
                BtfError(format!("{}: not readable BTF: {e}", path.display()))
            }
        })?;
        Ok(KernelTypes { btf })
    }

    /// The layout of `struct name`, or None when the kernel has no such struct.
    pub fn struct_layout(&self, name: &str) -> Result<Option<StructLayout>, BtfError> {
        let types = self.btf.resolve_types_by_name(name).unwrap_or_default();
        let Some(Type::Struct(s)) = types.into_iter().find(|t| matches!(t, Type::Struct(s) if !s.members.is_empty())) else {
            return Ok(None);
        };
        let mut layout = StructLayout { name: name.to_string(), size: s.size(), members: HashMap::new() };
        self.flatten(&s, 0, &mut layout, 0)?;
        Ok(Some(layout))
    }

    /// The layout of `struct name`, required.
    pub fn require_struct(&self, name: &str) -> Result<StructLayout, BtfError> {
        self.struct_layout(name)?.ok_or_else(|| BtfError(format!("BTF has no struct {name}")))
    }

    fn flatten(&self, s: &btf_rs::Struct, base_bits: u32, out: &mut StructLayout, depth: u32) -> Result<(), BtfError> {
        if depth > 8 {
            return Ok(());
        }
        for m in &s.members {
            let name = self.btf.resolve_name(m).unwrap_or_default();
            let bit_offset = base_bits + m.bit_offset();
            let ty = self.strip(self.btf.resolve_chained_type(m).map_err(|e| BtfError(format!("BTF: {e}")))?);
            if name.is_empty() {
                if let Type::Struct(inner) | Type::Union(inner) = &ty {
                    self.flatten(inner, bit_offset, out, depth + 1)?;
                }
                continue;
            }
            let size = type_size(&ty);
            out.members.entry(name).or_insert(Member {
                offset: (bit_offset / 8) as usize,
                bit_offset,
                bits: m.bitfield_size().filter(|b| *b != 0),
                size,
            });
        }
        Ok(())
    }

    /// Follow typedefs, qualifiers and type tags.
    fn strip(&self, mut ty: Type) -> Type {
        for _ in 0..16 {
            let next = match &ty {
                Type::Typedef(t) => self.btf.resolve_chained_type(t),
                Type::Volatile(t) | Type::Const(t) | Type::Restrict(t) => self.btf.resolve_chained_type(t),
                Type::TypeTag(t) => self.btf.resolve_chained_type(t),
                _ => break,
            };
            match next {
                Ok(next) => ty = next,
                Err(_) => break,
            }
        }
        ty
    }

    /// The value of an enumerator (e.g. `PG_slab`, `PGTY_slab`), searched in
    /// every enum.
    pub fn enum_value(&self, enumerator: &str) -> Option<u64> {
        // Type ids are dense from 1; the first failing id is the end.
        (1u32..).map_while(|id| self.btf.resolve_type_by_id(id).ok()).find_map(|t| match &t {
            Type::Enum(e) => {
                e.members.iter().find(|m| self.btf.resolve_name(*m).ok().as_deref() == Some(enumerator)).map(|m| m.val() as u64)
            }
            Type::Enum64(e) => e.members.iter().find(|m| self.btf.resolve_name(*m).ok().as_deref() == Some(enumerator)).map(|m| m.val()),
            _ => None,
        })
    }
}

/// A raw tracepoint argument's type, as far as a BPF program cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgType {
    /// An integer (or enum) of this many bytes.
    Int(usize),
    /// A pointer; the pointee's struct name when it is a struct.
    Pointer(Option<String>),
    /// Anything else.
    Other,
}

impl KernelTypes {
    /// The arguments a raw tracepoint program on `tracepoint` receives in
    /// its `u64 args[]` context, from BTF's `btf_trace_<name>` typedef
    /// (a pointer to a function whose first parameter, the probe's data,
    /// is not passed). None when the kernel has no such tracepoint.
    pub fn raw_tracepoint_args(&self, tracepoint: &str) -> Option<Vec<ArgType>> {
        let typedef = self.btf.resolve_types_by_name(&format!("btf_trace_{tracepoint}")).ok()?.into_iter().next()?;
        let Type::Ptr(ptr) = self.strip(typedef) else { return None };
        let Type::FuncProto(proto) = self.btf.resolve_chained_type(&ptr).ok()? else { return None };
        let args = proto
            .parameters
            .iter()
            .skip(1)
            .map(|p| match self.btf.resolve_chained_type(p).map(|t| self.strip(t)) {
                Ok(Type::Int(i)) => ArgType::Int(i.size()),
                Ok(Type::Enum(e)) => ArgType::Int(e.size()),
                Ok(Type::Ptr(p)) => match self.btf.resolve_chained_type(&p).map(|t| self.strip(t)) {
                    Ok(Type::Struct(s)) => ArgType::Pointer(self.btf.resolve_name(&s).ok()),
                    _ => ArgType::Pointer(None),
                },
                _ => ArgType::Other,
            })
            .collect();
        Some(args)
    }
}

fn type_size(ty: &Type) -> usize {
    match ty {
        Type::Int(i) => i.size(),
        Type::Ptr(_) => 8,
        Type::Struct(s) | Type::Union(s) => s.size(),
        Type::Enum(e) => e.size(),
        Type::Enum64(e) => e.size(),
        _ => 0,
    }
}

//! pcapng block types: the numbers of the IETF registry
//! (draft-ietf-opsawg-pcapng) and their names, for the parser in
//! [`crate::pcapng`] and for messages ([`BlockName`] in a
//! [`Fault`](crate::Fault)).

use std::fmt;

use crate::format::SHB_MAGIC;

/// Section Header Block.
pub const SHB: u32 = u32::from_le_bytes(SHB_MAGIC);
/// Interface Description Block.
pub const IDB: u32 = 1;
/// Packet Block (obsolete).
pub const PB: u32 = 2;
/// Simple Packet Block.
pub const SPB: u32 = 3;
/// Name Resolution Block.
pub const NRB: u32 = 4;
/// Interface Statistics Block.
pub const ISB: u32 = 5;
/// Enhanced Packet Block.
pub const EPB: u32 = 6;
/// Decryption Secrets Block.
pub const DSB: u32 = 0x0A;
/// Custom Block (may be copied).
pub const CB: u32 = 0x0000_0BAD;
/// Custom Block (do not copy).
pub const DCB: u32 = 0x4000_0BAD;

/// The registry name of a block type, where known.
pub fn block_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        SHB => "SHB",
        IDB => "IDB",
        PB => "PB",
        SPB => "SPB",
        NRB => "NRB",
        ISB => "ISB",
        EPB => "EPB",
        7 => "IRIG",
        8 => "AFDX",
        9 => "SJE",
        DSB => "DSB",
        CB => "CB",
        DCB => "DCB",
        _ => return None,
    })
}

/// The name of a pcapng block type, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockName(pub u32);

impl fmt::Display for BlockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match block_type_name(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:08x}", self.0),
        }
    }
}

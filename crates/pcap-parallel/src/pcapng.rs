//! pcapng: blocks, sections and interfaces.
//!
//! Every block is `[type][total_length][body][total_length]`, with the
//! length a multiple of 4 and at least 12. A Section Header Block (SHB)
//! starts a section and fixes its byte order; Interface Description Blocks
//! (IDBs) that follow define interface ids 0, 1, 2, ... with a link type and
//! timestamp resolution each. Packets come in Enhanced (EPB), Simple (SPB)
//! and obsolete Packet Blocks (PB). Every other block (name resolution,
//! statistics, decryption secrets, custom, unknown) is carried through
//! untouched.
//!
//! `read_block` checks a block's framing and fixed fields; what depends on
//! the section (which interfaces exist) is checked by the walker.

use std::sync::{Arc, OnceLock};

use crate::error::{BlockName, Fault};
use crate::format::{Endian, SHB_MAGIC};
use crate::hop::{Hop, Link};
use crate::packet::LinkType;

pub use crate::block_type::{CB, DCB, DSB, EPB, IDB, ISB, NRB, PB, SHB, SPB, block_type_name};

const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Minimum body length (between the two length fields) of a block type.
fn min_body(t: u32) -> usize {
    match t {
        SHB => 16,
        IDB => 8,
        EPB | PB => 20,
        SPB => 4,
        _ => 0,
    }
}

/// One block, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block<'a> {
    pub btype: u32,
    /// The byte order the block was read with (an SHB's own).
    pub endian: Endian,
    /// Total length in bytes.
    pub len: usize,
    /// Everything between the leading and the trailing length.
    pub body: &'a [u8],
}

/// The byte order announced by the SHB whose first 12 bytes are `head`.
fn shb_endian(head: &[u8]) -> Result<Endian, Fault> {
    let magic = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if magic == BYTE_ORDER_MAGIC {
        Ok(Endian::Little)
    } else if magic.swap_bytes() == BYTE_ORDER_MAGIC {
        Ok(Endian::Big)
    } else {
        Err(Fault::BadByteOrderMagic {
            magic: u32::from_be_bytes(head[8..12].try_into().expect("4 bytes")),
        })
    }
}

#[inline]
/// Reads the length of the block whose first 12 bytes are `head`, with the
/// byte order of the current section (`None` before the first SHB).
/// Returns the block type, its byte order and total length, after checking
/// the length is possible and within `max_len`.
pub(crate) fn block_len(
    head: &[u8],
    section: Option<Endian>,
    max_len: u32,
) -> Result<(u32, Endian, usize), Fault> {
    let endian = if head[..4] == SHB_MAGIC {
        shb_endian(head)?
    } else {
        section.ok_or(Fault::MissingSectionHeader)?
    };
    let btype = endian.u32(head, 0);
    let len = endian.u32(head, 4);
    let block = BlockName(btype);
    if len < 12 || len % 4 != 0 {
        return Err(Fault::BadBlockLength { block, length: len });
    }
    if len > max_len {
        return Err(Fault::BlockTooLarge {
            block,
            length: len,
            max: max_len,
        });
    }
    Ok((btype, endian, len as usize))
}

/// Reads and checks the block at `off`. `Ok(None)` at the exact end of `buf`.
#[inline]
pub(crate) fn read_block(
    buf: &[u8],
    off: usize,
    section: Option<Endian>,
    max_len: u32,
) -> Result<Option<Block<'_>>, Fault> {
    let rest = &buf[off.min(buf.len())..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.len() < 12 {
        return Err(Fault::TruncatedBlockHeader { have: rest.len() });
    }
    let (btype, endian, len) = block_len(rest, section, max_len)?;
    let block = BlockName(btype);
    if rest.len() < len {
        return Err(Fault::TruncatedBlock {
            block,
            length: len as u32,
            have: rest.len(),
        });
    }
    let trailing = endian.u32(rest, len - 4);
    if trailing != len as u32 {
        return Err(Fault::BlockLengthMismatch {
            block,
            leading: len as u32,
            trailing,
        });
    }
    let body = &rest[8..len - 4];
    if body.len() < min_body(btype) {
        return Err(Fault::BlockTooShort {
            block,
            length: len as u32,
            min: (min_body(btype) + 12) as u32,
        });
    }
    match btype {
        SHB => {
            let (major, minor) = (endian.u16(body, 4), endian.u16(body, 6));
            // 1.0 is current; 1.2 was written by some old tools. libpcap and
            // Wireshark reject everything else, 1.1 included.
            if major != 1 || (minor != 0 && minor != 2) {
                return Err(Fault::UnsupportedVersion {
                    format: "pcapng",
                    major,
                    minor,
                });
            }
        }
        EPB | PB => {
            let caplen = endian.u32(body, 12);
            if caplen as usize > body.len() - 20 {
                return Err(Fault::PacketExceedsBlock {
                    block,
                    caplen,
                    room: body.len() - 20,
                });
            }
        }
        _ => {}
    }
    Ok(Some(Block {
        btype,
        endian,
        len,
        body,
    }))
}

/// The block at `off` of bytes already checked by [`read_block`] (a chunk's
/// records were checked when it was cut): only what memory safety needs is
/// checked again. `None` at the end, or if the bytes are not what they were.
#[inline]
pub(crate) fn read_checked_block(
    buf: &[u8],
    off: usize,
    section: Option<Endian>,
) -> Option<Block<'_>> {
    let rest = buf.get(off..)?;
    if rest.len() < 12 {
        return None;
    }
    let endian = if rest[..4] == SHB_MAGIC {
        shb_endian(rest).ok()?
    } else {
        section?
    };
    let btype = endian.u32(rest, 0);
    let len = endian.u32(rest, 4) as usize;
    if len < 12 || len > rest.len() || len - 12 < min_body(btype) {
        return None;
    }
    Some(Block {
        btype,
        endian,
        len,
        body: &rest[8..len - 4],
    })
}

/// Is there a plausible block at `off` read with `endian`, and where does it
/// lead? At the [`Link::First`] of a chain the block type must be a
/// registered one (a chain may pass through unknown types, but not start
/// on one). Returns the byte
/// order in force after the block (an SHB sets its own).
pub(crate) fn hop(
    buf: &[u8],
    off: usize,
    endian: Endian,
    max_len: u32,
    link: Link,
) -> (Hop, Endian) {
    if off == buf.len() {
        return (Hop::End, endian);
    }
    if off > buf.len() {
        return (Hop::Dead, endian);
    }
    if buf.len() - off < 12 {
        return (Hop::Beyond, endian);
    }
    let rest = &buf[off..];
    let Ok((btype, endian, len)) = block_len(rest, Some(endian), max_len) else {
        return (Hop::Dead, endian);
    };
    if link == Link::First && block_type_name(btype).is_none() {
        return (Hop::Dead, endian);
    }
    if len > rest.len() {
        return (Hop::Beyond, endian);
    }
    if endian.u32(rest, len - 4) != len as u32 || len - 12 < min_body(btype) {
        return (Hop::Dead, endian);
    }
    if (btype == EPB || btype == PB) && endian.u32(rest, 20) as usize > len - 32 {
        return (Hop::Dead, endian);
    }
    (Hop::Next(off + len), endian)
}

/// Timestamp resolution of an interface (`if_tsresol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    /// Ticks of 10^-n seconds.
    Decimal(u8),
    /// Ticks of 2^-n seconds.
    Binary(u8),
}

impl TsResolution {
    /// Converts a tick count to nanoseconds, truncating finer resolutions.
    #[inline]
    pub fn ticks_to_nanos(self, ticks: u64) -> i128 {
        const NANOS_PER_TICK: [u128; 10] = [
            1_000_000_000,
            100_000_000,
            10_000_000,
            1_000_000,
            100_000,
            10_000,
            1_000,
            100,
            10,
            1,
        ];
        let t = ticks as u128;
        let ns = match self {
            TsResolution::Decimal(n) if n <= 9 => t * NANOS_PER_TICK[n as usize],
            TsResolution::Decimal(n) => match 10u128.checked_pow(n as u32 - 9) {
                Some(d) => t / d,
                None => 0,
            },
            TsResolution::Binary(n) => match 1u128.checked_shl(n as u32) {
                Some(d) if n < 128 => t * 1_000_000_000 / d,
                _ => 0,
            },
        };
        ns as i128
    }

    /// A short name: `usec`, `nsec`, `msec`, `sec`, `1e-N` or `2^-N`.
    pub fn name(self) -> String {
        match self {
            TsResolution::Decimal(0) => "sec".into(),
            TsResolution::Decimal(3) => "msec".into(),
            TsResolution::Decimal(6) => "usec".into(),
            TsResolution::Decimal(9) => "nsec".into(),
            TsResolution::Decimal(n) => format!("1e-{n}"),
            TsResolution::Binary(n) => format!("2^-{n}"),
        }
    }
}

/// An interface described by an IDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Link-layer type of its packets.
    pub link_type: LinkType,
    /// Snapshot length (0: unlimited).
    pub snaplen: u32,
    /// Timestamp resolution (`if_tsresol`; microseconds when absent).
    pub ts_resolution: TsResolution,
    /// Seconds added to every timestamp (`if_tsoffset`).
    pub ts_offset: i64,
    /// The IDB exactly as in the file.
    pub(crate) raw: Arc<[u8]>,
}

impl Interface {
    /// Parses an IDB (already checked by [`read_block`]).
    pub(crate) fn parse(block: &Block<'_>, raw: &[u8]) -> Interface {
        let (e, body) = (block.endian, block.body);
        let mut iface = Interface {
            link_type: LinkType(e.u16(body, 0)),
            snaplen: e.u32(body, 4),
            ts_resolution: TsResolution::Decimal(6),
            ts_offset: 0,
            raw: raw.into(),
        };
        let mut opts = &body[8..];
        while opts.len() >= 4 {
            let (code, len) = (e.u16(opts, 0), e.u16(opts, 2) as usize);
            if code == 0 {
                break;
            }
            let value = &opts[4..(4 + len).min(opts.len())];
            match code {
                9 if !value.is_empty() => {
                    let v = value[0];
                    iface.ts_resolution = if v & 0x80 != 0 {
                        TsResolution::Binary(v & 0x7f)
                    } else {
                        TsResolution::Decimal(v)
                    };
                }
                14 if value.len() >= 8 => iface.ts_offset = e.i64(value, 0),
                _ => {}
            }
            let step = 4 + ((len + 3) & !3);
            if step > opts.len() {
                break;
            }
            opts = &opts[step..];
        }
        iface
    }

    /// Converts a packet block's tick count to nanoseconds since the epoch.
    #[inline]
    pub fn timestamp(&self, ticks: u64) -> crate::Timestamp {
        crate::Timestamp::from_nanos(
            self.ts_resolution.ticks_to_nanos(ticks) + self.ts_offset as i128 * 1_000_000_000,
        )
    }
}

/// A list that only grows, as one point of the file sees it: a section's
/// interfaces ([`InterfaceTable`]), or the blocks it carries into every
/// part ([`Section::carried`]).
///
/// Every state of such a list is a prefix of one list. A table is such a
/// prefix: a length and a shared array of write-once slots. Adding an item
/// fills the next slot in place when it is free (or already holds the same
/// item, as when a chunk's blocks are walked a second time), and copies
/// the table into a twice larger array only when the array is full or the
/// slot holds something else. So recording the state after every one of
/// `n` additions costs O(n) time and memory in all, never O(n²), and a
/// lookup by index is one array access.
///
/// Read a table through a section (`chunk.section()`): `len()`, `get(i)`, `iter()`.
#[derive(Clone)]
pub struct Table<T> {
    slots: Arc<[OnceLock<T>]>,
    len: usize,
}

/// The interfaces a section has described up to some point of the file, by id.
pub type InterfaceTable = Table<Interface>;

impl<T: Clone + PartialEq> Table<T> {
    /// An empty table.
    pub fn new() -> Table<T> {
        Table {
            slots: Arc::from(Vec::new()),
            len: 0,
        }
    }

    /// How many items it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Item `i`, if there is one.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i < self.len {
            self.slots[i].get()
        } else {
            None
        }
    }

    /// Item 0, if there is one.
    #[inline]
    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }

    /// The items, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + DoubleEndedIterator + '_ {
        self.slots[..self.len]
            .iter()
            .map(|s| s.get().expect("slots below the length are set"))
    }

    /// This table with `item` added at the end.
    pub(crate) fn pushed(&self, item: T) -> Table<T> {
        let item = match self.slots.get(self.len) {
            Some(slot) => match slot.set(item) {
                Ok(()) => return self.sharing(self.len + 1),
                Err(item) if slot.get() == Some(&item) => return self.sharing(self.len + 1),
                // Another history of the section took this slot.
                Err(item) => item,
            },
            None => item,
        };
        let capacity = (self.len + 1).next_power_of_two().max(4);
        let slots: Vec<OnceLock<T>> = self
            .iter()
            .cloned()
            .chain(std::iter::once(item))
            .map(OnceLock::from)
            .chain(std::iter::repeat_with(OnceLock::new))
            .take(capacity)
            .collect();
        Table {
            slots: slots.into(),
            len: self.len + 1,
        }
    }

    fn sharing(&self, len: usize) -> Table<T> {
        Table {
            slots: self.slots.clone(),
            len,
        }
    }
}

impl<T: Clone + PartialEq> Default for Table<T> {
    fn default() -> Self {
        Table::new()
    }
}

impl<T: Clone + PartialEq + std::fmt::Debug> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Clone + PartialEq> PartialEq for Table<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Clone + Eq> Eq for Table<T> {}

/// Most bytes of blocks a section carries into every part (see
/// [`Section::carried`]); blocks past it stay only where they are.
pub const MAX_CARRIED_BYTES: usize = 64 << 20;

/// A pcapng section: its byte order, header and interfaces (as far as they
/// have been described at some point of the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section's byte order.
    pub endian: Endian,
    /// Format version from the SHB.
    pub version: (u16, u16),
    /// Byte offset of the SHB in the input.
    pub offset: u64,
    /// Interfaces described so far, by id.
    pub interfaces: InterfaceTable,
    /// The blocks met so far that apply to every packet of the section,
    /// exactly as in the file: decryption secrets (DSB) and name resolution
    /// (NRB). Every part and shard cut from the section carries those met
    /// before it, so that TLS in any of them can be decrypted (up to
    /// [`MAX_CARRIED_BYTES`] of them).
    pub carried: Table<Arc<[u8]>>,
    /// Bytes in `carried`.
    carried_bytes: usize,
    /// The SHB exactly as in the file.
    pub(crate) raw_shb: Arc<[u8]>,
}

impl Section {
    /// The blocks a standalone view of the section starts with, exactly as
    /// in the file: the SHB, the first `interfaces` IDBs (ids are kept, so
    /// every interface up to the highest id used), then the carried blocks.
    pub(crate) fn prefix(&self, interfaces: usize) -> Vec<u8> {
        let mut out = self.raw_shb.to_vec();
        for iface in self.interfaces.iter().take(interfaces) {
            out.extend_from_slice(&iface.raw);
        }
        for block in self.carried.iter() {
            out.extend_from_slice(block);
        }
        out
    }

    /// Starts a section from its SHB (already checked by [`read_block`]).
    pub(crate) fn new(block: &Block<'_>, raw: &[u8], offset: u64) -> Section {
        Section {
            endian: block.endian,
            version: (
                block.endian.u16(block.body, 4),
                block.endian.u16(block.body, 6),
            ),
            offset,
            interfaces: InterfaceTable::new(),
            carried: Table::new(),
            carried_bytes: 0,
            raw_shb: raw.into(),
        }
    }

    /// Applies the SHB, IDB, DSB or NRB at `off` in `buf` (already checked)
    /// to the section state: an SHB starts a new section, an IDB adds an
    /// interface, a DSB or NRB is carried (each in O(1), see [`Table`]).
    /// `base` is the input offset of `buf[0]`.
    pub(crate) fn apply(
        buf: &[u8],
        off: usize,
        base: u64,
        section: Option<Arc<Section>>,
    ) -> Option<Arc<Section>> {
        let endian = section.as_ref().map(|s| s.endian);
        let Ok(Some(block)) = read_block(buf, off, endian, u32::MAX) else {
            return section;
        };
        let raw = &buf[off..off + block.len];
        match block.btype {
            SHB => Some(Arc::new(Section::new(&block, raw, base + off as u64))),
            IDB => {
                let s = section?;
                Some(Arc::new(Section {
                    interfaces: s.interfaces.pushed(Interface::parse(&block, raw)),
                    ..(*s).clone()
                }))
            }
            DSB | NRB => {
                let s = section?;
                if s.carried_bytes + raw.len() > MAX_CARRIED_BYTES {
                    return Some(s);
                }
                Some(Arc::new(Section {
                    carried: s.carried.pushed(raw.into()),
                    carried_bytes: s.carried_bytes + raw.len(),
                    ..(*s).clone()
                }))
            }
            _ => section,
        }
    }
}

/// The fields of a packet block (EPB, PB or SPB) that do not need the section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketFields<'a> {
    pub interface_id: u32,
    /// `None` for SPBs.
    pub ticks: Option<u64>,
    pub original_len: u32,
    pub data: &'a [u8],
}

impl<'a> Block<'a> {
    /// The interface id a block refers to, for blocks that refer to one.
    #[inline]
    pub(crate) fn interface_ref(&self) -> Option<u32> {
        match self.btype {
            EPB => Some(self.endian.u32(self.body, 0)),
            PB => Some(self.endian.u16(self.body, 0) as u32),
            SPB => Some(0),
            ISB if self.body.len() >= 4 => Some(self.endian.u32(self.body, 0)),
            _ => None,
        }
    }

    /// Decodes a packet block. `snaplen0` is the snapshot length of
    /// interface 0, which bounds an SPB's captured length.
    #[inline]
    pub(crate) fn packet(&self, snaplen0: u32) -> Option<PacketFields<'a>> {
        let (e, b) = (self.endian, self.body);
        match self.btype {
            EPB | PB => {
                let interface_id = if self.btype == EPB {
                    e.u32(b, 0)
                } else {
                    e.u16(b, 0) as u32
                };
                let ticks = ((e.u32(b, 4) as u64) << 32) | e.u32(b, 8) as u64;
                let caplen = e.u32(b, 12) as usize;
                Some(PacketFields {
                    interface_id,
                    ticks: Some(ticks),
                    original_len: e.u32(b, 16),
                    data: b.get(20..20usize.checked_add(caplen)?)?,
                })
            }
            SPB => {
                let original_len = e.u32(b, 0);
                let mut caplen = (original_len as usize).min(b.len() - 4);
                if snaplen0 != 0 {
                    caplen = caplen.min(snaplen0 as usize);
                }
                Some(PacketFields {
                    interface_id: 0,
                    ticks: None,
                    original_len,
                    data: &b[4..4 + caplen],
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        assert_eq!(
            TsResolution::Decimal(6).ticks_to_nanos(1_500_000),
            1_500_000_000
        );
        assert_eq!(TsResolution::Decimal(9).ticks_to_nanos(7), 7);
        assert_eq!(TsResolution::Decimal(12).ticks_to_nanos(7_999), 7);
        assert_eq!(TsResolution::Binary(1).ticks_to_nanos(3), 1_500_000_000);
        assert_eq!(TsResolution::Decimal(127).ticks_to_nanos(u64::MAX), 0);
        assert_eq!(TsResolution::Binary(127).ticks_to_nanos(u64::MAX), 0);
    }

    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len()) as u32;
        let mut v = t.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    #[test]
    fn framing_faults() {
        let b = block(NRB, &[0; 4]);
        assert!(
            read_block(&b, 0, Some(Endian::Little), 1 << 24)
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            read_block(&b, 0, None, 1 << 24),
            Err(Fault::MissingSectionHeader)
        ));
        assert!(matches!(
            read_block(&b[..8], 0, Some(Endian::Little), 1 << 24),
            Err(Fault::TruncatedBlockHeader { have: 8 })
        ));
        assert!(matches!(
            read_block(&b[..14], 0, Some(Endian::Little), 1 << 24),
            Err(Fault::TruncatedBlock {
                length: 16,
                have: 14,
                ..
            })
        ));
        let mut bad = b.clone();
        bad[12] = 9;
        assert!(matches!(
            read_block(&bad, 0, Some(Endian::Little), 1 << 24),
            Err(Fault::BlockLengthMismatch { .. })
        ));
        assert!(matches!(
            read_block(&b, 0, Some(Endian::Little), 12),
            Err(Fault::BlockTooLarge { .. })
        ));
        let epb = block(EPB, &[0u8; 20]);
        let mut big = epb.clone();
        big[20] = 1; // caplen 1 with no room
        assert!(matches!(
            read_block(&big, 0, Some(Endian::Little), 1 << 24),
            Err(Fault::PacketExceedsBlock { .. })
        ));
    }
}

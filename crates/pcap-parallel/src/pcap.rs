//! Classic pcap: the 24-byte file header and the records that follow it.
//!
//! A record is `[ts_sec][ts_frac][caplen][origlen]` (16 bytes; 24 in the
//! "modified" variant, whose extra fields are kept but not interpreted)
//! followed by `caplen` bytes of packet data. Nothing marks where a record
//! starts, which is why the `resync` module exists.
//!
//! All parsing here is zero-copy and checked: every length is compared with
//! the bytes at hand before it is used, and a captured length above the
//! limit is a [`Fault`], never an allocation.

use crate::error::Fault;
use crate::format::{CaptureFormat, Endian, PcapVariant};
use crate::hop::{Hop, Test};
use crate::packet::{LinkType, Timestamp};

/// Size of the pcap file header.
pub const FILE_HEADER_LEN: usize = 24;

/// The parsed pcap file header, plus the limit that applies to its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapHeader {
    /// Timestamp resolution and record header size.
    pub variant: PcapVariant,
    /// The file's byte order.
    pub endian: Endian,
    /// Format version (2.4 in every current writer).
    pub version: (u16, u16),
    /// The snapshot length the capture was taken with.
    pub snaplen: u32,
    /// The link-layer type (lower 16 bits of the header's link-type field).
    pub link_type: LinkType,
    /// The header's link-type field as stored: its upper bits carry FCS
    /// information on some systems.
    pub link_type_field: u32,
    /// The 24 header bytes exactly as in the file; a standalone chunk begins with them.
    pub raw: [u8; FILE_HEADER_LEN],
    /// Records claiming more captured bytes than this are malformed.
    pub max_caplen: u32,
}

/// One record, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    /// Total length: record header plus captured bytes.
    pub len: usize,
    pub ts_sec: u32,
    pub ts_frac: u32,
    pub original_len: u32,
    pub data: &'a [u8],
}

impl PcapHeader {
    /// Parses the file header. `max_packet_len` is the general limit on
    /// captured lengths; link types with larger packets raise it (see
    /// [`LinkType::max_packet_len`]).
    pub fn parse(buf: &[u8], max_packet_len: u32) -> Result<PcapHeader, Fault> {
        let Some(CaptureFormat::Pcap { variant, endian }) = CaptureFormat::detect(buf) else {
            // Callers detect the format first; treat anything else as truncation of the magic.
            return Err(Fault::TruncatedFileHeader {
                have: buf.len().min(3),
                need: FILE_HEADER_LEN,
            });
        };
        if buf.len() < FILE_HEADER_LEN {
            return Err(Fault::TruncatedFileHeader {
                have: buf.len(),
                need: FILE_HEADER_LEN,
            });
        }
        let version = (endian.u16(buf, 4), endian.u16(buf, 6));
        if version.0 != 2 {
            return Err(Fault::UnsupportedVersion {
                format: "pcap",
                major: version.0,
                minor: version.1,
            });
        }
        let link_type_field = endian.u32(buf, 20);
        let link_type = LinkType((link_type_field & 0xffff) as u16);
        let mut raw = [0u8; FILE_HEADER_LEN];
        raw.copy_from_slice(&buf[..FILE_HEADER_LEN]);
        Ok(PcapHeader {
            variant,
            endian,
            version,
            snaplen: endian.u32(buf, 16),
            link_type,
            link_type_field,
            raw,
            max_caplen: link_type.max_packet_len(max_packet_len),
        })
    }

    /// Length of a record header.
    #[inline]
    pub fn record_header_len(&self) -> usize {
        self.variant.record_header_len()
    }

    /// Converts a record's timestamp fields to a [`Timestamp`].
    #[inline]
    pub fn timestamp(&self, ts_sec: u32, ts_frac: u32) -> Timestamp {
        let mult: i128 = match self.variant {
            PcapVariant::Nanosecond => 1,
            _ => 1_000,
        };
        Timestamp::from_nanos(ts_sec as i128 * 1_000_000_000 + ts_frac as i128 * mult)
    }

    /// Reads the record at `off`. `Ok(None)` at the exact end of `buf`.
    #[inline]
    pub(crate) fn read<'a>(&self, buf: &'a [u8], off: usize) -> Result<Option<Record<'a>>, Fault> {
        let rest = &buf[off.min(buf.len())..];
        if rest.is_empty() {
            return Ok(None);
        }
        let rh = self.record_header_len();
        if rest.len() < rh {
            return Err(Fault::TruncatedRecordHeader {
                have: rest.len(),
                need: rh,
            });
        }
        let caplen = self.endian.u32(rest, 8);
        if caplen > self.max_caplen {
            return Err(Fault::CaplenTooLarge {
                caplen,
                max: self.max_caplen,
            });
        }
        let len = rh + caplen as usize;
        if rest.len() < len {
            return Err(Fault::TruncatedPacketData {
                caplen,
                have: rest.len() - rh,
            });
        }
        Ok(Some(Record {
            len,
            ts_sec: self.endian.u32(rest, 0),
            ts_frac: self.endian.u32(rest, 4),
            original_len: self.endian.u32(rest, 12),
            data: &rest[rh..len],
        }))
    }

    /// Total length of the record whose header is `head` (at least a record
    /// header long), checking the captured length against the limit.
    #[inline]
    pub(crate) fn record_len(&self, head: &[u8]) -> Result<usize, Fault> {
        let caplen = self.endian.u32(head, 8);
        if caplen > self.max_caplen {
            return Err(Fault::CaplenTooLarge {
                caplen,
                max: self.max_caplen,
            });
        }
        Ok(self.record_header_len() + caplen as usize)
    }

    /// Is there a plausible record header at `off`, and where does it lead?
    ///
    /// Plausible means: the captured length is within the limit, the
    /// timestamp fraction is below one second, and the header is not all
    /// zeros. Deliberately loose (real
    /// files have caplen > snaplen, caplen > origlen, zero caplen and
    /// timestamps going backwards); exactness comes from verification.
    /// [`Test::Strict`] adds what holds for nearly every real record and
    /// rarely for bytes read at the wrong offset: caplen <= origlen <= 1 MiB.
    #[inline]
    pub(crate) fn hop(&self, buf: &[u8], off: usize, test: Test) -> Hop {
        let rh = self.record_header_len();
        if off == buf.len() {
            return Hop::End;
        }
        if off > buf.len() {
            return Hop::Dead;
        }
        if buf.len() - off < rh {
            return Hop::Beyond;
        }
        let caplen = self.endian.u32(buf, off + 8);
        let frac = self.endian.u32(buf, off + 4);
        if caplen > self.max_caplen || frac >= self.variant.ticks_per_second() {
            return Hop::Dead;
        }
        // Sixteen zero bytes are a zero-filled payload, not a record.
        if buf[off..off + 16] == [0; 16] {
            return Hop::Dead;
        }
        if test == Test::Strict {
            let origlen = self.endian.u32(buf, off + 12);
            if caplen > origlen || origlen > 1 << 20 {
                return Hop::Dead;
            }
        }
        let next = off + rh + caplen as usize;
        if next > buf.len() {
            Hop::Beyond
        } else {
            Hop::Next(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, le: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() })
        };
        w32(&mut v, magic);
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() })
        };
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, 1);
        v
    }

    #[test]
    fn parses_both_byte_orders() {
        for le in [true, false] {
            let h = PcapHeader::parse(&header(0xA1B2C3D4, le), 262144).unwrap();
            assert_eq!(h.endian, if le { Endian::Little } else { Endian::Big });
            assert_eq!(h.snaplen, 65535);
            assert_eq!(h.link_type, LinkType::ETHERNET);
        }
    }

    #[test]
    fn record_faults_are_classified() {
        let h = PcapHeader::parse(&header(0xA1B2C3D4, true), 262144).unwrap();
        let mut rec = vec![0u8; 16];
        rec[8..12].copy_from_slice(&10u32.to_le_bytes());
        rec.extend_from_slice(&[7; 4]);
        assert!(matches!(
            h.read(&rec, 0),
            Err(Fault::TruncatedPacketData {
                caplen: 10,
                have: 4
            })
        ));
        assert!(matches!(
            h.read(&rec[..5], 0),
            Err(Fault::TruncatedRecordHeader { have: 5, need: 16 })
        ));
        rec[8..12].copy_from_slice(&300_000u32.to_le_bytes());
        assert!(matches!(h.read(&rec, 0), Err(Fault::CaplenTooLarge { .. })));
        assert!(h.read(&rec, rec.len()).unwrap().is_none());
    }

    #[test]
    fn rejects_other_major_versions() {
        let mut v = header(0xA1B2C3D4, true);
        v[4] = 1;
        assert!(matches!(
            PcapHeader::parse(&v, 262144),
            Err(Fault::UnsupportedVersion { major: 1, .. })
        ));
    }
}

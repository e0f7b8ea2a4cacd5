//! Walking records one at a time, the same way for pcap and pcapng.
//!
//! A [`Walker`] knows just enough of the format to find where each record
//! ends and whether it is a packet: for pcap the file header, for pcapng the
//! section's byte order and how many interfaces it has described. A walker
//! that starts in the middle of a pcapng section (a parallel worker) does
//! not know the interface count yet; it records how many interfaces its
//! packets *need*, to be checked once the count is known (see
//! [`crate::chunker`]).

use std::sync::Arc;

use crate::error::{BlockName, Error, Fault, FormatError};
use crate::format::CaptureFormat;
use crate::format::Endian;
use crate::hop::{Hop, Link, Test};
use crate::pcap::PcapHeader;
use crate::pcapng;

/// Limits on lengths read from the input. A length above a limit is a
/// format error, never an allocation.
///
/// ```
/// let limits = pcap_parallel::Limits::default();
/// assert_eq!(limits.max_packet_len, 262_144);
/// assert_eq!(limits.max_block_len, 16 * 1024 * 1024);
/// assert_eq!(limits.max_interfaces, 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest captured length of a pcap record (256 KiB, as in libpcap and
    /// Wireshark). Link types with larger packets (D-Bus, USBPcap, EBHSCR)
    /// get their own, larger limit.
    pub max_packet_len: u32,
    /// Largest pcapng block (16 MiB, as in Wireshark).
    pub max_block_len: u32,
    /// Most interfaces one pcapng section may describe (1 048 576). Each
    /// costs memory for as long as its section is read (its description
    /// block is kept), so a section that describes more is a format error
    /// ([`crate::Fault::TooManyInterfaces`]) rather than unbounded memory.
    /// Real captures describe a few; raise it for the rare one that needs
    /// more.
    pub max_interfaces: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_len: 262_144,
            max_block_len: 16 * 1024 * 1024,
            max_interfaces: 1 << 20,
        }
    }
}

/// What a walker knows of the interfaces of the current pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interfaces {
    /// The section has described this many.
    Known(usize),
    /// The walk started mid-section: `here` were described since, and the
    /// packets seen need at least `need` to have been described before.
    Unknown { here: usize, need: usize },
}

/// The state needed to walk records.
#[derive(Debug, Clone)]
pub(crate) enum Walker {
    Pcap(Arc<PcapHeader>),
    Pcapng {
        /// Byte order of the current section; `None` before the first SHB.
        endian: Option<Endian>,
        interfaces: Interfaces,
        limits: Limits,
    },
}

/// What kind of record a step passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Packet,
    /// A pcapng block the section's state keeps: a section header, an
    /// interface description, decryption secrets or name resolution.
    SectionState,
    /// Any other pcapng block.
    Other,
}

impl Walker {
    /// The walker at the start of a capture of `format` named `name`, and
    /// where its records start: after the pcap file header at the start of
    /// `head` (a header that does not parse is the fault of packet 1 at
    /// offset 0), or at once for pcapng, whose first block is read as any
    /// other.
    pub fn at_start(
        format: CaptureFormat,
        head: &[u8],
        limits: Limits,
        name: &str,
    ) -> Result<(Walker, usize), Error> {
        match format {
            CaptureFormat::Pcap { .. } => match PcapHeader::parse(head, limits.max_packet_len) {
                Ok(h) => Ok((Walker::Pcap(Arc::new(h)), crate::pcap::FILE_HEADER_LEN)),
                Err(fault) => Err(Error::Format(FormatError {
                    name: name.to_string(),
                    offset: 0,
                    packet: 1,
                    fault,
                })),
            },
            CaptureFormat::Pcapng => Ok((
                Walker::Pcapng {
                    endian: None,
                    interfaces: Interfaces::Known(0),
                    limits,
                },
                0,
            )),
        }
    }

    /// Passes over the record at `off`: `Ok(None)` at the end of `buf`,
    /// otherwise the record's length and kind.
    #[inline]
    pub fn step(&mut self, buf: &[u8], off: usize) -> Result<Option<(usize, Kind)>, Fault> {
        match self {
            Walker::Pcap(h) => Ok(h.read(buf, off)?.map(|r| (r.len, Kind::Packet))),
            Walker::Pcapng {
                endian,
                interfaces,
                limits,
            } => {
                let Some(block) = pcapng::read_block(buf, off, *endian, limits.max_block_len)?
                else {
                    return Ok(None);
                };
                let kind = match block.btype {
                    pcapng::SHB => {
                        *endian = Some(block.endian);
                        *interfaces = Interfaces::Known(0);
                        Kind::SectionState
                    }
                    pcapng::IDB => {
                        let count = match interfaces {
                            Interfaces::Known(n) => n,
                            Interfaces::Unknown { here, .. } => here,
                        };
                        // A walk from mid-section checks its own count here,
                        // and the section's total when it is verified.
                        if *count >= limits.max_interfaces as usize {
                            return Err(Fault::TooManyInterfaces {
                                max: limits.max_interfaces,
                            });
                        }
                        *count += 1;
                        Kind::SectionState
                    }
                    pcapng::DSB | pcapng::NRB => Kind::SectionState,
                    pcapng::EPB | pcapng::PB | pcapng::SPB => {
                        let id = block.interface_ref().unwrap_or(0);
                        match interfaces {
                            Interfaces::Known(n) if id as usize >= *n => {
                                return Err(Fault::UnknownInterface {
                                    block: BlockName(block.btype),
                                    interface: id,
                                    defined: *n,
                                });
                            }
                            Interfaces::Known(_) => {}
                            Interfaces::Unknown { here, need } => {
                                *need = (*need).max((id as usize + 1).saturating_sub(*here));
                            }
                        }
                        Kind::Packet
                    }
                    _ => Kind::Other,
                };
                Ok(Some((block.len, kind)))
            }
        }
    }

    /// Follows a chain from a candidate boundary (see [`crate::resync`]).
    #[inline]
    pub fn hop(
        &self,
        buf: &[u8],
        off: usize,
        endian: Endian,
        link: Link,
        test: Test,
    ) -> (Hop, Endian) {
        match self {
            Walker::Pcap(h) => (h.hop(buf, off, test), endian),
            Walker::Pcapng { limits, .. } => {
                pcapng::hop(buf, off, endian, limits.max_block_len, link)
            }
        }
    }

    /// The walker to use from a guessed boundary inside a section of byte
    /// order `endian`, before anything of that section is known.
    pub fn mid_section(&self, endian: Endian) -> Walker {
        match self {
            Walker::Pcap(h) => Walker::Pcap(h.clone()),
            Walker::Pcapng { limits, .. } => Walker::Pcapng {
                endian: Some(endian),
                interfaces: Interfaces::Unknown { here: 0, need: 0 },
                limits: *limits,
            },
        }
    }

    /// The state at the end of a walk that began mid-section
    /// ([`Walker::mid_section`]), once the interfaces described before it
    /// are known to be `known`: those it described are added to them.
    pub fn with_interfaces_known(self, known: usize) -> Walker {
        match self {
            Walker::Pcapng {
                endian,
                interfaces: Interfaces::Unknown { here, .. },
                limits,
            } => Walker::Pcapng {
                endian,
                interfaces: Interfaces::Known(known + here),
                limits,
            },
            w => w,
        }
    }

    /// The state where records resume after damage, read with `endian`:
    /// the same section as far as anyone can tell, with the interfaces
    /// known so far (none, if they were not known).
    pub fn resumed(self, endian: Endian) -> Walker {
        match self {
            Walker::Pcapng {
                interfaces, limits, ..
            } => Walker::Pcapng {
                endian: Some(endian),
                interfaces: match interfaces {
                    Interfaces::Known(n) => Interfaces::Known(n),
                    Interfaces::Unknown { .. } => Interfaces::Known(0),
                },
                limits,
            },
            w => w,
        }
    }

    /// The byte order the walker reads with.
    pub fn endian(&self) -> Option<Endian> {
        match self {
            Walker::Pcap(h) => Some(h.endian),
            Walker::Pcapng { endian, .. } => *endian,
        }
    }
}

/// The outcome of walking a stretch of the input.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// Where the walk began.
    pub start: usize,
    /// The byte order the walk began with.
    pub start_endian: Option<Endian>,
    /// Where it stopped: the first record starting at or after the stop
    /// offset, the end of the packet limit, or the offset of a fault.
    pub end: usize,
    /// Packets passed over.
    pub packets: u64,
    /// The fault that stopped the walk, if any (at `end`).
    pub fault: Option<Fault>,
    /// Offsets of the pcapng SHBs and IDBs passed over, in order.
    pub state_blocks: Vec<usize>,
    /// The walker's state at `end`.
    pub walker: Walker,
}

/// Walks from `start` until the first record that starts at or after
/// `stop`, or until `max_packets` packets have been passed over, or until
/// the end of `buf` or a fault.
pub(crate) fn scan(
    buf: &[u8],
    start: usize,
    stop: usize,
    mut walker: Walker,
    max_packets: u64,
) -> Scan {
    let start_endian = walker.endian();
    let mut off = start;
    let mut packets = 0u64;
    let mut state_blocks = Vec::new();
    let mut fault = None;
    let mut prefetcher = Prefetcher::default();
    while off < stop && packets < max_packets {
        prefetcher.advance(buf, off);
        match walker.step(buf, off) {
            Ok(Some((len, kind))) => {
                match kind {
                    Kind::Packet => packets += 1,
                    Kind::SectionState => state_blocks.push(off),
                    Kind::Other => {}
                }
                off += len;
            }
            Ok(None) => break,
            Err(f) => {
                fault = Some(f);
                break;
            }
        }
    }
    Scan {
        start,
        start_endian,
        end: off,
        packets,
        fault,
        state_blocks,
        walker,
    }
}

/// How far ahead of the current record a walk has the memory loaded.
const PREFETCH_AHEAD: usize = 2048;

/// Keeps the bytes ahead of a walk on their way into the cache.
///
/// A walk jumps from record header to record header, each load depending on
/// the one before it: left alone, every record costs a trip to memory. The
/// records lie one after another, so asking for every cache line a little
/// ahead of the walk, once each, turns the chase into a stream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prefetcher {
    next: usize,
}

impl Prefetcher {
    /// Called with each record's offset.
    #[inline(always)]
    pub fn advance(&mut self, buf: &[u8], off: usize) {
        let until = off.saturating_add(PREFETCH_AHEAD).min(buf.len());
        if self.next < off {
            self.next = off;
        }
        while self.next < until {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the address is inside `buf`, and a prefetch never faults.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    buf.as_ptr().add(self.next) as *const i8,
                    std::arch::x86_64::_MM_HINT_T0,
                );
            }
            self.next += 64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EPB, HUGE, IDB, PLAIN, SHB, cat, pcap_of, walker_for};

    #[test]
    fn a_walk_counts_records_and_stops_at_the_first_record_past_its_stop() {
        let buf = pcap_of(&PLAIN, 5);
        let (walker, start) = walker_for(&buf);
        assert_eq!(start, 24);
        let all = scan(&buf, start, buf.len(), walker.clone(), u64::MAX);
        assert_eq!((all.packets, all.end, all.fault), (5, buf.len(), None));
        // A stop inside record 2 (bytes 44..64): the walk ends where record 3 starts.
        let part = scan(&buf, start, 50, walker.clone(), u64::MAX);
        assert_eq!((part.packets, part.end), (2, 64));
        let limited = scan(&buf, start, buf.len(), walker, 3);
        assert_eq!((limited.packets, limited.end), (3, 84));
    }

    #[test]
    fn a_walk_stops_at_damage_with_the_fault_and_its_offset() {
        let buf = cat(&[&pcap_of(&PLAIN, 2), &HUGE, &PLAIN]);
        let (walker, start) = walker_for(&buf);
        let s = scan(&buf, start, buf.len(), walker, u64::MAX);
        assert_eq!((s.packets, s.end), (2, 64));
        assert!(matches!(
            s.fault,
            Some(Fault::CaplenTooLarge {
                caplen: 0x7fff_ffff,
                ..
            })
        ));
    }

    #[test]
    fn a_pcapng_walk_records_its_section_blocks_and_resolves_interfaces() {
        let buf = cat(&[&SHB, &IDB, &EPB, &EPB]);
        let (walker, start) = walker_for(&buf);
        assert_eq!(start, 0);
        let s = scan(&buf, start, buf.len(), walker, u64::MAX);
        assert_eq!((s.packets, s.end, s.fault), (2, buf.len(), None));
        assert_eq!(s.state_blocks, vec![0, 28]);
        // A packet on an interface the section never described is a fault.
        let buf = cat(&[&SHB, &EPB]);
        let (walker, _) = walker_for(&buf);
        let s = scan(&buf, 0, buf.len(), walker, u64::MAX);
        assert_eq!((s.packets, s.end), (0, 28));
        assert!(matches!(
            s.fault,
            Some(Fault::UnknownInterface { interface: 0, .. })
        ));
    }

    #[test]
    fn the_state_after_damage_keeps_the_section_and_its_known_interfaces() {
        let mid = Walker::Pcapng {
            endian: Some(Endian::Big),
            interfaces: Interfaces::Unknown { here: 2, need: 1 },
            limits: Limits::default(),
        };
        let Walker::Pcapng {
            endian, interfaces, ..
        } = mid.clone().with_interfaces_known(3)
        else {
            unreachable!()
        };
        assert_eq!(
            (endian, interfaces),
            (Some(Endian::Big), Interfaces::Known(5))
        );
        let Walker::Pcapng {
            endian, interfaces, ..
        } = mid.resumed(Endian::Little)
        else {
            unreachable!()
        };
        assert_eq!(
            (endian, interfaces),
            (Some(Endian::Little), Interfaces::Known(0))
        );
    }
}

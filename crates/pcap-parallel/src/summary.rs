//! A capinfos-like summary of a capture, computed in parallel: what the
//! command line's `info` prints, and what the Python package's `info()`
//! returns.
//!
//! ```
//! use pcap_parallel::{Capture, summary};
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
//! let (s, report) = summary::summarise(Capture::open(path)?, None);
//! assert!(report.input_error.is_none());
//! assert_eq!(s.packets, Capture::open(path)?.count()?);
//! assert_eq!(s.protocols.ipv4 + s.protocols.ipv6 + s.protocols.not_ip, s.packets);
//! # Ok::<(), pcap_parallel::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::chunk::Chunk;
use crate::decode;
use crate::flow::FlowKey;
use crate::format::{CaptureFormat, Compression};
use crate::packet::{LinkType, Packet, Timestamp};
use crate::pcap::PcapHeader;
use crate::pcapng::Section;
use crate::{Capture, Report};

/// Packets by protocol: IPv4 or IPv6 (the first IP layer), and its payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protocols {
    /// Packets with an IPv4 layer.
    pub ipv4: u64,
    /// Packets with an IPv6 layer.
    pub ipv6: u64,
    /// IP packets carrying TCP.
    pub tcp: u64,
    /// IP packets carrying UDP.
    pub udp: u64,
    /// IP packets carrying ICMP or ICMPv6.
    pub icmp: u64,
    /// IP packets carrying anything else.
    pub other_ip: u64,
    /// Packets without an IP layer this crate decodes.
    pub not_ip: u64,
}

/// One interface of the capture (the pcap file's single one, or each pcapng
/// section's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// The section's number, from 0 (always 0 for pcap).
    pub section: usize,
    /// The interface id within its section.
    pub id: usize,
    /// Its link type.
    pub link_type: LinkType,
    /// Its snapshot length.
    pub snaplen: u32,
    /// Its timestamp resolution (`usec`, `nsec`, ...).
    pub ts_resolution: String,
}

/// What [`summarise`] finds.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The input's name.
    pub name: String,
    /// The capture format.
    pub format: CaptureFormat,
    /// The compression around it.
    pub compression: Compression,
    /// The byte orders met (`little`, `big`), sorted.
    pub byte_orders: Vec<&'static str>,
    /// The timestamp resolutions met, in order of first appearance.
    pub ts_resolutions: Vec<String>,
    /// Every interface.
    pub interfaces: Vec<InterfaceInfo>,
    /// Packets per link type, by link type.
    pub link_types: Vec<(LinkType, u64)>,
    /// pcapng sections (1 for pcap).
    pub sections: usize,
    /// Packets.
    pub packets: u64,
    /// Bytes captured.
    pub captured_bytes: u64,
    /// Bytes on the wire.
    pub original_bytes: u64,
    /// The earliest timestamp.
    pub first_time: Option<Timestamp>,
    /// The latest timestamp.
    pub last_time: Option<Timestamp>,
    /// Packets by protocol.
    pub protocols: Protocols,
    /// Chunks processed.
    pub chunks: usize,
}

impl Summary {
    /// Seconds from the earliest to the latest packet.
    pub fn duration_seconds(&self) -> Option<f64> {
        match (self.first_time, self.last_time) {
            (Some(a), Some(b)) => Some((b.as_nanos() - a.as_nanos()) as f64 / 1e9),
            _ => None,
        }
    }

    /// Bytes on the wire per packet, as capinfos computes it.
    pub fn average_packet_size(&self) -> Option<f64> {
        (self.packets > 0).then(|| self.original_bytes as f64 / self.packets as f64)
    }
}

/// Counts of one chunk, or of several merged in file order.
#[derive(Debug, Default)]
struct Stats {
    packets: u64,
    captured: u64,
    original: u64,
    earliest: Option<Timestamp>,
    latest: Option<Timestamp>,
    protocols: Protocols,
    per_link_type: BTreeMap<LinkType, u64>,
    /// pcapng: the latest state of each section, by offset.
    sections: BTreeMap<u64, Arc<Section>>,
}

impl Stats {
    fn of(chunk: &Chunk) -> Stats {
        let mut s = Stats::default();
        for p in chunk.packets() {
            s.add(&p);
        }
        s.sections_of(chunk);
        s
    }

    fn sections_of(&mut self, chunk: &Chunk) {
        for section in chunk.section_states() {
            self.sections.insert(section.offset, section);
        }
    }

    fn add(&mut self, p: &Packet<'_>) {
        self.packets += 1;
        self.captured += p.data.len() as u64;
        self.original += p.original_len as u64;
        if let Some(t) = p.timestamp {
            self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
            self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
        }
        *self.per_link_type.entry(p.link_type).or_insert(0) += 1;
        let pr = &mut self.protocols;
        match decode::ip(p.link_type, p.data) {
            Some(ip) => {
                if ip.src.is_ipv4() {
                    pr.ipv4 += 1;
                } else {
                    pr.ipv6 += 1;
                }
                match ip.protocol {
                    6 => pr.tcp += 1,
                    17 => pr.udp += 1,
                    1 | 58 => pr.icmp += 1,
                    _ => pr.other_ip += 1,
                }
            }
            None => pr.not_ip += 1,
        }
    }

    fn merge(mut self, o: Stats) -> Stats {
        self.packets += o.packets;
        self.captured += o.captured;
        self.original += o.original;
        self.earliest = match (self.earliest, o.earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.latest = match (self.latest, o.latest) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let (a, b) = (&mut self.protocols, o.protocols);
        a.ipv4 += b.ipv4;
        a.ipv6 += b.ipv6;
        a.tcp += b.tcp;
        a.udp += b.udp;
        a.icmp += b.icmp;
        a.other_ip += b.other_ip;
        a.not_ip += b.not_ip;
        for (k, v) in o.per_link_type {
            *self.per_link_type.entry(k).or_insert(0) += v;
        }
        // Later states of a section have every interface the earlier had.
        self.sections.extend(o.sections);
        self
    }
}

/// Summarises `capture` chunk by chunk (or, with `flows`, shard by flow
/// shard: the same summary), on its workers. The report says whether the
/// input was read to the end; the summary covers everything before a fault.
pub fn summarise(capture: Capture, flows: Option<(usize, FlowKey)>) -> (Summary, Report) {
    let name = capture.name().to_string();
    let format = capture.format();
    let compression = capture.compression();
    let mut pcap_header: Option<PcapHeader> = None;
    let (stats, report) = match flows {
        Some((k, key)) => {
            let mut whole = Stats::default();
            let (shards, report) = capture.flows(k).key(key).fold_observing(
                |_| Stats::default(),
                |s, p| s.add(p),
                |_, s| s,
                |chunk| {
                    whole.sections_of(chunk);
                    if pcap_header.is_none() {
                        pcap_header = chunk.pcap_header().cloned();
                    }
                },
            );
            let mut report = report;
            let stats = match shards {
                Ok(s) => s.into_iter().fold(whole, Stats::merge),
                Err(e) => {
                    report.input_error.get_or_insert(e);
                    whole
                }
            };
            (stats, report)
        }
        None => {
            let mut stats = Some(Stats::default());
            let report = capture.run(
                |chunk| Ok((Stats::of(chunk), chunk.pcap_header().cloned())),
                |r| {
                    if let Ok((s, h)) = r.result {
                        stats = stats.take().map(|acc| acc.merge(s));
                        pcap_header = pcap_header.take().or(h);
                    }
                },
            );
            (stats.expect("set"), report)
        }
    };
    let mut summary = Summary {
        name,
        format,
        compression,
        byte_orders: Vec::new(),
        ts_resolutions: Vec::new(),
        interfaces: Vec::new(),
        link_types: stats.per_link_type.into_iter().collect(),
        sections: stats.sections.len().max(usize::from(!format.is_pcapng())),
        packets: stats.packets,
        captured_bytes: stats.captured,
        original_bytes: stats.original,
        first_time: stats.earliest,
        last_time: stats.latest,
        protocols: stats.protocols,
        chunks: report.chunks,
    };
    describe_interfaces(&mut summary, pcap_header.as_ref(), &stats.sections);
    (summary, report)
}

/// Byte orders, resolutions and interfaces, per section.
fn describe_interfaces(
    s: &mut Summary,
    pcap_header: Option<&PcapHeader>,
    sections: &BTreeMap<u64, Arc<Section>>,
) {
    let mut endians = BTreeSet::new();
    match s.format {
        CaptureFormat::Pcap { variant, endian } => {
            endians.insert(endian.name());
            let res = if variant.ticks_per_second() == 1_000_000_000 {
                "nsec"
            } else {
                "usec"
            };
            s.ts_resolutions.push(res.to_string());
            if let Some(h) = pcap_header {
                s.interfaces.push(InterfaceInfo {
                    section: 0,
                    id: 0,
                    link_type: h.link_type,
                    snaplen: h.snaplen,
                    ts_resolution: res.to_string(),
                });
            }
        }
        CaptureFormat::Pcapng => {
            for (i, section) in sections.values().enumerate() {
                endians.insert(section.endian.name());
                for (id, iface) in section.interfaces.iter().enumerate() {
                    let res = iface.ts_resolution.name();
                    if !s.ts_resolutions.contains(&res) {
                        s.ts_resolutions.push(res.clone());
                    }
                    s.interfaces.push(InterfaceInfo {
                        section: i,
                        id,
                        link_type: iface.link_type,
                        snaplen: iface.snaplen,
                        ts_resolution: res,
                    });
                }
            }
        }
    }
    s.byte_orders = endians.into_iter().collect();
}

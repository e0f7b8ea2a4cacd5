//! What `info` says about a capture: [`Stats`] counted chunk by chunk and
//! merged in file order, then a [`Summary`] that serialises to the JSON
//! line of `--json` and formats as the capinfos-like text of the default
//! output (its `Display`), from the same fields.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use pcap_parallel::pcap::PcapHeader;
use pcap_parallel::pcapng::Section;
use pcap_parallel::{CaptureFormat, Chunk, Compression, LinkType, Timestamp, decode};
use serde::Serialize;

/// Counts of one chunk, or of several merged in file order.
#[derive(Debug, Default)]
pub struct Stats {
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
    /// The counts of one chunk's packets, and the sections it describes.
    pub fn of(chunk: &Chunk) -> Stats {
        let mut s = Stats::default();
        for p in chunk.packets() {
            s.add(&p);
        }
        s.sections_of(chunk);
        s
    }

    /// Takes note of the section states in `chunk` (pcapng).
    pub fn sections_of(&mut self, chunk: &Chunk) {
        for section in chunk.section_states() {
            self.sections.insert(section.offset, section);
        }
    }

    /// Counts one packet.
    pub fn add(&mut self, p: &pcap_parallel::Packet<'_>) {
        self.packets += 1;
        self.captured += p.data.len() as u64;
        self.original += p.original_len as u64;
        if let Some(t) = p.timestamp {
            self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
            self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
        }
        *self.per_link_type.entry(p.link_type).or_insert(0) += 1;
        self.protocols.add(decode::ip(p.link_type, p.data).as_ref());
    }

    /// The counts of `self` followed by those of `o`.
    pub fn merge(mut self, o: Stats) -> Stats {
        self.packets += o.packets;
        self.captured += o.captured;
        self.original += o.original;
        self.earliest = earlier(self.earliest, o.earliest, Ord::min);
        self.latest = earlier(self.latest, o.latest, Ord::max);
        self.protocols.merge(&o.protocols);
        for (k, v) in o.per_link_type {
            *self.per_link_type.entry(k).or_insert(0) += v;
        }
        // Later states of a section have every interface the earlier had.
        self.sections.extend(o.sections);
        self
    }
}

/// `pick` of two optional times, or the one there is.
fn earlier(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    pick: fn(Timestamp, Timestamp) -> Timestamp,
) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// Packets per network and transport protocol.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Protocols {
    ipv4: u64,
    ipv6: u64,
    tcp: u64,
    udp: u64,
    icmp: u64,
    other_ip: u64,
    not_ip: u64,
}

impl Protocols {
    fn add(&mut self, ip: Option<&decode::Ip>) {
        let Some(ip) = ip else {
            self.not_ip += 1;
            return;
        };
        if ip.src.is_ipv4() {
            self.ipv4 += 1;
        } else {
            self.ipv6 += 1;
        }
        match ip.protocol {
            6 => self.tcp += 1,
            17 => self.udp += 1,
            1 | 58 => self.icmp += 1,
            _ => self.other_ip += 1,
        }
    }

    fn merge(&mut self, o: &Protocols) {
        self.ipv4 += o.ipv4;
        self.ipv6 += o.ipv6;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmp += o.icmp;
        self.other_ip += o.other_ip;
        self.not_ip += o.not_ip;
    }
}

/// What the capture is, from its magic number, before anything is read.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub format: CaptureFormat,
    pub compression: Compression,
}

/// An interface (pcapng), or the file header (pcap).
#[derive(Debug, Serialize)]
pub struct Interface {
    section: usize,
    id: usize,
    link_type: u16,
    link_type_name: Option<&'static str>,
    snaplen: u32,
    ts_resolution: String,
}

/// Packets of one link type.
#[derive(Debug, Serialize)]
pub struct LinkTypeCount {
    link_type: u16,
    link_type_name: Option<&'static str>,
    packets: u64,
}

/// Everything `info` prints about one capture.
#[derive(Debug, Serialize)]
pub struct Summary {
    file: String,
    format: &'static str,
    format_detail: &'static str,
    compression: &'static str,
    byte_order: Vec<&'static str>,
    ts_resolution: Vec<String>,
    interfaces: Vec<Interface>,
    link_types: Vec<LinkTypeCount>,
    sections: usize,
    packets: u64,
    captured_bytes: u64,
    original_bytes: u64,
    #[serde(serialize_with = "as_text")]
    first_time: Option<Timestamp>,
    #[serde(serialize_with = "as_text")]
    last_time: Option<Timestamp>,
    duration_seconds: Option<f64>,
    /// As capinfos: original (wire) bytes per packet.
    average_packet_size: Option<f64>,
    protocols: Protocols,
    chunks: usize,
    error: Option<String>,
}

/// Times in JSON: `"1700000000.000057000"`, exact.
fn as_text<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// The line `info --json` prints for an input it could not read at all.
#[derive(Debug, Serialize)]
pub struct Unreadable<'a> {
    pub file: &'a str,
    pub error: String,
}

impl Summary {
    /// The summary of a capture read to the end (or to `error`), from its
    /// counts and, for pcap, its file header.
    pub fn new(
        id: &Identity,
        stats: Stats,
        pcap_header: Option<&PcapHeader>,
        chunks: usize,
        error: Option<String>,
    ) -> Summary {
        let layout = Layout::of(id.format, pcap_header, &stats.sections);
        let duration = match (stats.earliest, stats.latest) {
            (Some(a), Some(b)) => Some((b.as_nanos() - a.as_nanos()) as f64 / 1e9),
            _ => None,
        };
        Summary {
            file: id.name.clone(),
            format: if id.format.is_pcapng() {
                "pcapng"
            } else {
                "pcap"
            },
            format_detail: id.format.name(),
            compression: id.compression.name(),
            byte_order: layout.byte_orders.into_iter().collect(),
            ts_resolution: layout.resolutions,
            interfaces: layout.interfaces,
            link_types: stats
                .per_link_type
                .iter()
                .map(|(lt, n)| LinkTypeCount {
                    link_type: lt.0,
                    link_type_name: lt.name(),
                    packets: *n,
                })
                .collect(),
            sections: stats
                .sections
                .len()
                .max(usize::from(!id.format.is_pcapng())),
            packets: stats.packets,
            captured_bytes: stats.captured,
            original_bytes: stats.original,
            first_time: stats.earliest,
            last_time: stats.latest,
            duration_seconds: duration,
            average_packet_size: (stats.packets > 0)
                .then(|| stats.original as f64 / stats.packets as f64),
            protocols: stats.protocols,
            chunks,
            error,
        }
    }

    /// The JSON line of `--json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary always serialises")
    }
}

/// Byte orders, resolutions and interfaces, per section.
struct Layout {
    byte_orders: BTreeSet<&'static str>,
    resolutions: Vec<String>,
    interfaces: Vec<Interface>,
}

impl Layout {
    fn of(
        format: CaptureFormat,
        pcap_header: Option<&PcapHeader>,
        sections: &BTreeMap<u64, Arc<Section>>,
    ) -> Layout {
        let mut layout = Layout {
            byte_orders: BTreeSet::new(),
            resolutions: Vec::new(),
            interfaces: Vec::new(),
        };
        match format {
            CaptureFormat::Pcap { variant, endian } => {
                let res = if variant.ticks_per_second() == 1_000_000_000 {
                    "nsec"
                } else {
                    "usec"
                };
                layout.byte_orders.insert(endian.name());
                layout.resolutions.push(res.to_string());
                if let Some(h) = pcap_header {
                    layout.interfaces.push(Interface {
                        section: 0,
                        id: 0,
                        link_type: h.link_type.0,
                        link_type_name: h.link_type.name(),
                        snaplen: h.snaplen,
                        ts_resolution: res.to_string(),
                    });
                }
            }
            CaptureFormat::Pcapng => {
                for (i, section) in sections.values().enumerate() {
                    layout.byte_orders.insert(section.endian.name());
                    for (id, iface) in section.interfaces.iter().enumerate() {
                        let res = iface.ts_resolution.name();
                        if !layout.resolutions.contains(&res) {
                            layout.resolutions.push(res.clone());
                        }
                        layout.interfaces.push(Interface {
                            section: i,
                            id,
                            link_type: iface.link_type.0,
                            link_type_name: iface.link_type.name(),
                            snaplen: iface.snaplen,
                            ts_resolution: res,
                        });
                    }
                }
            }
        }
        layout
    }
}

/// The capinfos-like text.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = |k: &str, v: &dyn fmt::Display| writeln!(f, "{k:<22}{v}");
        let or_na = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
        line("File name:", &self.file)?;
        line("File format:", &self.format_detail)?;
        line("Compression:", &self.compression)?;
        line("Byte order:", &self.byte_order.join(", "))?;
        line("Timestamp resolution:", &self.ts_resolution.join(", "))?;
        for i in &self.interfaces {
            line(
                "Interface:",
                &format_args!(
                    "section {} id {}: {} ({}), snaplen {}, {}",
                    i.section,
                    i.id,
                    i.link_type_name.unwrap_or("?"),
                    i.link_type,
                    i.snaplen,
                    i.ts_resolution
                ),
            )?;
        }
        line("Packets:", &self.packets)?;
        for lt in &self.link_types {
            line(
                "  link type:",
                &format_args!("{}: {}", LinkType(lt.link_type), lt.packets),
            )?;
        }
        line("Captured bytes:", &self.captured_bytes)?;
        line("Original bytes:", &self.original_bytes)?;
        line(
            "First packet time:",
            &or_na(self.first_time.map(human_time)),
        )?;
        line("Last packet time:", &or_na(self.last_time.map(human_time)))?;
        let duration = self.duration_seconds.map(|d| format!("{d:.9} seconds"));
        line("Duration:", &or_na(duration))?;
        let average = self.average_packet_size.map(|a| format!("{a:.2} bytes"));
        line("Average packet size:", &or_na(average))?;
        let p = &self.protocols;
        line(
            "Protocols:",
            &format_args!(
                "IPv4 {}, IPv6 {}, TCP {}, UDP {}, ICMP {}, other IP {}, not IP {}",
                p.ipv4, p.ipv6, p.tcp, p.udp, p.icmp, p.other_ip, p.not_ip
            ),
        )
    }
}

/// `2023-11-14 22:13:20.000057000 UTC (1700000000.000057000)`, or the
/// epoch seconds alone when the date is out of range.
fn human_time(t: Timestamp) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:9] UTC"
    );
    match time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()) {
        Ok(d) => match d.format(&format) {
            Ok(s) => format!("{s} ({t})"),
            Err(_) => t.to_string(),
        },
        Err(_) => t.to_string(),
    }
}

//! What `info` prints about a capture: the library's
//! [`pcap_parallel::summary::Summary`], as a [`Summary`] that serialises to
//! the JSON line of `--json` and formats as the capinfos-like text of the
//! default output (its `Display`), from the same fields.

use std::fmt;

use pcap_parallel::summary::{self as lib, InterfaceInfo};
use pcap_parallel::{LinkType, Timestamp};
use serde::Serialize;

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

impl From<lib::Protocols> for Protocols {
    fn from(p: lib::Protocols) -> Protocols {
        Protocols {
            ipv4: p.ipv4,
            ipv6: p.ipv6,
            tcp: p.tcp,
            udp: p.udp,
            icmp: p.icmp,
            other_ip: p.other_ip,
            not_ip: p.not_ip,
        }
    }
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

impl From<InterfaceInfo> for Interface {
    fn from(i: InterfaceInfo) -> Interface {
        Interface {
            section: i.section,
            id: i.id,
            link_type: i.link_type.0,
            link_type_name: i.link_type.name(),
            snaplen: i.snaplen,
            ts_resolution: i.ts_resolution,
        }
    }
}

impl Summary {
    /// What to print of a capture read to the end (or to `error`).
    pub fn new(s: lib::Summary, error: Option<String>) -> Summary {
        Summary {
            duration_seconds: s.duration_seconds(),
            average_packet_size: s.average_packet_size(),
            file: s.name,
            format: s.format.extension(),
            format_detail: s.format.name(),
            compression: s.compression.name(),
            byte_order: s.byte_orders,
            ts_resolution: s.ts_resolutions,
            interfaces: s.interfaces.into_iter().map(Interface::from).collect(),
            link_types: s
                .link_types
                .into_iter()
                .map(|(lt, packets)| LinkTypeCount {
                    link_type: lt.0,
                    link_type_name: lt.name(),
                    packets,
                })
                .collect(),
            sections: s.sections,
            packets: s.packets,
            captured_bytes: s.captured_bytes,
            original_bytes: s.original_bytes,
            first_time: s.first_time,
            last_time: s.last_time,
            protocols: s.protocols.into(),
            chunks: s.chunks,
            error,
        }
    }

    /// The JSON line of `--json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary always serialises")
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

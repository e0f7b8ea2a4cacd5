//! `info`: a capinfos-like summary, computed in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use clap::Args;
use pcap_parallel::pcapng::Section;
use pcap_parallel::{Capture, CaptureFormat, Chunk, LinkType, Timestamp, decode};
use serde_json::{Value, json};

use crate::run::{self, Bar, Status};
use crate::{Chunking, Common, Input};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Capture files (`-` for standard input).
    #[arg(required = true)]
    files: Vec<Input>,

    /// One JSON object per file, one per line.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: Common,

    #[command(flatten)]
    chunking: Chunking,

    #[command(flatten)]
    flow: crate::FlowArgs,
}

/// Counts of one chunk, or of several merged in file order.
#[derive(Debug, Default)]
struct Stats {
    packets: u64,
    captured: u64,
    original: u64,
    earliest: Option<Timestamp>,
    latest: Option<Timestamp>,
    ipv4: u64,
    ipv6: u64,
    tcp: u64,
    udp: u64,
    icmp: u64,
    other_ip: u64,
    not_ip: u64,
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

    fn add(&mut self, p: &pcap_parallel::Packet<'_>) {
        let s = self;
        {
            s.packets += 1;
            s.captured += p.data.len() as u64;
            s.original += p.original_len as u64;
            if let Some(t) = p.timestamp {
                s.earliest = Some(s.earliest.map_or(t, |e| e.min(t)));
                s.latest = Some(s.latest.map_or(t, |l| l.max(t)));
            }
            *s.per_link_type.entry(p.link_type).or_insert(0) += 1;
            match decode::ip(p.link_type, p.data) {
                Some(ip) => {
                    if ip.src.is_ipv4() {
                        s.ipv4 += 1;
                    } else {
                        s.ipv6 += 1;
                    }
                    match ip.protocol {
                        6 => s.tcp += 1,
                        17 => s.udp += 1,
                        1 | 58 => s.icmp += 1,
                        _ => s.other_ip += 1,
                    }
                }
                None => s.not_ip += 1,
            }
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
        self.ipv4 += o.ipv4;
        self.ipv6 += o.ipv6;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmp += o.icmp;
        self.other_ip += o.other_ip;
        self.not_ip += o.not_ip;
        for (k, v) in o.per_link_type {
            *self.per_link_type.entry(k).or_insert(0) += v;
        }
        // Later states of a section have every interface the earlier had.
        self.sections.extend(o.sections);
        self
    }
}

pub fn run(args: InfoArgs) -> anyhow::Result<Status> {
    let mut status = Status::Ok;
    for file in &args.files {
        let capture = match run::open(file, &args.common, args.chunking.split()) {
            Ok(c) => c,
            Err(e)
                if e.downcast_ref::<run::UsageError>().is_some()
                    || e.downcast_ref::<run::Interrupted>().is_some() =>
            {
                return Err(e);
            }
            Err(e) => {
                eprintln!("pcap-parallel: {e:#}");
                status = Status::Failed;
                continue;
            }
        };
        match summarise(capture, &args)? {
            Status::Ok => {}
            Status::Interrupted => return Ok(Status::Interrupted),
            Status::Failed => status = Status::Failed,
        }
    }
    Ok(status)
}

fn summarise(capture: Capture, args: &InfoArgs) -> anyhow::Result<Status> {
    let name = capture.name().to_string();
    let format = capture.format();
    let compression = capture.compression();
    let (capture, bar) = Bar::attach(capture, &args.common, &name);
    let mut stats = Some(Stats::default());
    let mut pcap_header = None;
    let report = if let Some(k) = args.chunking.flows {
        // Per flow shard, then merged: the same summary.
        let mut whole = Stats::default();
        let (shards, report) = capture.flows(k).key(args.flow.key()).fold_observing(
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
        stats = Some(shards?.into_iter().fold(whole, Stats::merge));
        report
    } else {
        capture.run(
            |chunk| {
                let s = Stats::of(chunk);
                Ok((s, chunk.pcap_header().cloned()))
            },
            |r| {
                if let Ok((s, h)) = r.result {
                    stats = stats.take().map(|acc| acc.merge(s));
                    pcap_header = pcap_header.take().or(h);
                }
            },
        )
    };
    drop(bar);
    let stats = stats.expect("set");
    let error = report.input_error.as_ref().map(|e| e.to_string());

    // Byte orders, resolutions and interfaces, per section.
    let mut endians = BTreeSet::new();
    let mut resolutions = Vec::new();
    let mut interfaces = Vec::new();
    match (&format, &pcap_header) {
        (CaptureFormat::Pcap { variant, endian }, _) => {
            endians.insert(endian.name());
            resolutions.push(
                if variant.ticks_per_second() == 1_000_000_000 {
                    "nsec"
                } else {
                    "usec"
                }
                .to_string(),
            );
            if let Some(h) = &pcap_header {
                interfaces.push(json!({
                    "section": 0, "id": 0, "link_type": h.link_type.0,
                    "link_type_name": h.link_type.name(), "snaplen": h.snaplen,
                    "ts_resolution": resolutions[0],
                }));
            }
        }
        (CaptureFormat::Pcapng, _) => {
            for (i, section) in stats.sections.values().enumerate() {
                endians.insert(section.endian.name());
                for (id, iface) in section.interfaces.iter().enumerate() {
                    let res = iface.ts_resolution.name();
                    if !resolutions.contains(&res) {
                        resolutions.push(res.clone());
                    }
                    interfaces.push(json!({
                        "section": i, "id": id, "link_type": iface.link_type.0,
                        "link_type_name": iface.link_type.name(), "snaplen": iface.snaplen,
                        "ts_resolution": res,
                    }));
                }
            }
        }
    }
    let duration = match (stats.earliest, stats.latest) {
        (Some(a), Some(b)) => Some((b.as_nanos() - a.as_nanos()) as f64 / 1e9),
        _ => None,
    };
    // As capinfos: original (wire) bytes per packet.
    let average = (stats.packets > 0).then(|| stats.original as f64 / stats.packets as f64);
    let per_link: Vec<Value> = stats
        .per_link_type
        .iter()
        .map(|(lt, n)| json!({"link_type": lt.0, "link_type_name": lt.name(), "packets": n}))
        .collect();
    let protocols = json!({
        "ipv4": stats.ipv4, "ipv6": stats.ipv6, "tcp": stats.tcp, "udp": stats.udp,
        "icmp": stats.icmp, "other_ip": stats.other_ip, "not_ip": stats.not_ip,
    });
    if args.json {
        let v = json!({
            "file": name,
            "format": match format { CaptureFormat::Pcapng => "pcapng", _ => "pcap" },
            "format_detail": format.name(),
            "compression": compression.name(),
            "byte_order": endians.iter().collect::<Vec<_>>(),
            "ts_resolution": resolutions,
            "interfaces": interfaces,
            "link_types": per_link,
            "sections": stats.sections.len().max(usize::from(!format.is_pcapng())),
            "packets": stats.packets,
            "captured_bytes": stats.captured,
            "original_bytes": stats.original,
            "first_time": stats.earliest.map(|t| t.to_string()),
            "last_time": stats.latest.map(|t| t.to_string()),
            "duration_seconds": duration,
            "average_packet_size": average,
            "protocols": protocols,
            "chunks": report.chunks,
            "error": error,
        });
        println!("{v}");
    } else {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<22}{v}\n"));
        line("File name:", name.clone());
        line("File format:", format.name().to_string());
        line("Compression:", compression.name().to_string());
        line(
            "Byte order:",
            endians.iter().copied().collect::<Vec<_>>().join(", "),
        );
        line("Timestamp resolution:", resolutions.join(", "));
        for i in &interfaces {
            line(
                "Interface:",
                format!(
                    "section {} id {}: {} ({}), snaplen {}, {}",
                    i["section"],
                    i["id"],
                    i["link_type_name"].as_str().unwrap_or("?"),
                    i["link_type"],
                    i["snaplen"],
                    i["ts_resolution"].as_str().unwrap_or("")
                ),
            );
        }
        line("Packets:", stats.packets.to_string());
        for (lt, n) in &stats.per_link_type {
            line("  link type:", format!("{lt}: {n}"));
        }
        line("Captured bytes:", stats.captured.to_string());
        line("Original bytes:", stats.original.to_string());
        line(
            "First packet time:",
            stats
                .earliest
                .map(human_time)
                .unwrap_or_else(|| "n/a".into()),
        );
        line(
            "Last packet time:",
            stats.latest.map(human_time).unwrap_or_else(|| "n/a".into()),
        );
        line(
            "Duration:",
            duration
                .map(|d| format!("{d:.9} seconds"))
                .unwrap_or_else(|| "n/a".into()),
        );
        line(
            "Average packet size:",
            average
                .map(|a| format!("{a:.2} bytes"))
                .unwrap_or_else(|| "n/a".into()),
        );
        line(
            "Protocols:",
            format!(
                "IPv4 {}, IPv6 {}, TCP {}, UDP {}, ICMP {}, other IP {}, not IP {}",
                stats.ipv4,
                stats.ipv6,
                stats.tcp,
                stats.udp,
                stats.icmp,
                stats.other_ip,
                stats.not_ip
            ),
        );
        print!("{out}");
    }
    Ok(run::finish(report.input_error, &report.skipped))
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

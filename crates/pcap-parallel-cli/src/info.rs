//! `info`: a capinfos-like summary, computed in parallel.

use clap::Args;
use pcap_parallel::summary::{self, Summary};
use pcap_parallel::{Capture, Timestamp};
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

pub fn run(args: InfoArgs) -> anyhow::Result<Status> {
    let mut status = Status::Ok;
    for file in &args.files {
        let capture = match run::open(file, &args.common, args.chunking.split()) {
            Ok(c) => c,
            Err(e) if e.downcast_ref::<run::UsageError>().is_some() => return Err(e),
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
    let (capture, bar) = Bar::attach(capture, &args.common, &name);
    let flows = args.chunking.flows.map(|k| (k, args.flow.key()));
    let (s, report) = summary::summarise(capture, flows);
    drop(bar);
    if args.json {
        println!("{}", to_json(&s, report.input_error.as_ref()));
    } else {
        print!("{}", to_text(&s));
    }
    Ok(run::finish(report.input_error, &report.skipped))
}

/// The summary as one JSON object (`--json`).
fn to_json(s: &Summary, error: Option<&pcap_parallel::Error>) -> Value {
    let interfaces: Vec<Value> = s
        .interfaces
        .iter()
        .map(|i| {
            json!({
                "section": i.section, "id": i.id, "link_type": i.link_type.0,
                "link_type_name": i.link_type.name(), "snaplen": i.snaplen,
                "ts_resolution": i.ts_resolution,
            })
        })
        .collect();
    let per_link: Vec<Value> = s
        .link_types
        .iter()
        .map(|(lt, n)| json!({"link_type": lt.0, "link_type_name": lt.name(), "packets": n}))
        .collect();
    let p = &s.protocols;
    json!({
        "file": s.name,
        "format": if s.format.is_pcapng() { "pcapng" } else { "pcap" },
        "format_detail": s.format.name(),
        "compression": s.compression.name(),
        "byte_order": s.byte_orders,
        "ts_resolution": s.ts_resolutions,
        "interfaces": interfaces,
        "link_types": per_link,
        "sections": s.sections,
        "packets": s.packets,
        "captured_bytes": s.captured_bytes,
        "original_bytes": s.original_bytes,
        "first_time": s.first_time.map(|t| t.to_string()),
        "last_time": s.last_time.map(|t| t.to_string()),
        "duration_seconds": s.duration_seconds(),
        "average_packet_size": s.average_packet_size(),
        "protocols": {
            "ipv4": p.ipv4, "ipv6": p.ipv6, "tcp": p.tcp, "udp": p.udp,
            "icmp": p.icmp, "other_ip": p.other_ip, "not_ip": p.not_ip,
        },
        "chunks": s.chunks,
        "error": error.map(|e| e.to_string()),
    })
}

/// The summary as capinfos-like lines.
fn to_text(s: &Summary) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<22}{v}\n"));
    let or_na = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
    line("File name:", s.name.clone());
    line("File format:", s.format.name().to_string());
    line("Compression:", s.compression.name().to_string());
    line("Byte order:", s.byte_orders.join(", "));
    line("Timestamp resolution:", s.ts_resolutions.join(", "));
    for i in &s.interfaces {
        line(
            "Interface:",
            format!(
                "section {} id {}: {} ({}), snaplen {}, {}",
                i.section,
                i.id,
                i.link_type.name().unwrap_or("?"),
                i.link_type.0,
                i.snaplen,
                i.ts_resolution
            ),
        );
    }
    line("Packets:", s.packets.to_string());
    for (lt, n) in &s.link_types {
        line("  link type:", format!("{lt}: {n}"));
    }
    line("Captured bytes:", s.captured_bytes.to_string());
    line("Original bytes:", s.original_bytes.to_string());
    line("First packet time:", or_na(s.first_time.map(human_time)));
    line("Last packet time:", or_na(s.last_time.map(human_time)));
    line(
        "Duration:",
        or_na(s.duration_seconds().map(|d| format!("{d:.9} seconds"))),
    );
    line(
        "Average packet size:",
        or_na(s.average_packet_size().map(|a| format!("{a:.2} bytes"))),
    );
    let p = &s.protocols;
    line(
        "Protocols:",
        format!(
            "IPv4 {}, IPv6 {}, TCP {}, UDP {}, ICMP {}, other IP {}, not IP {}",
            p.ipv4, p.ipv6, p.tcp, p.udp, p.icmp, p.other_ip, p.not_ip
        ),
    );
    out
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

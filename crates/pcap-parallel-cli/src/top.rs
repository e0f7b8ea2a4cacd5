//! `top`: packets and bytes per key, the original README's example as a
//! built-in command.

use clap::{Args, ValueEnum};
use pcap_parallel::tally;
use serde_json::json;

use crate::run::{self, Bar, Status};
use crate::{Chunking, Common, Input};

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Capture file (`-` for standard input).
    file: Input,

    /// What to count by.
    #[arg(long, value_enum, default_value_t = By::Src)]
    by: By,

    /// Show this many keys (0: all).
    #[arg(short = 'n', long, default_value_t = 10)]
    limit: usize,

    /// JSON output.
    #[arg(long, conflicts_with = "csv")]
    json: bool,

    /// CSV output (`key,packets,bytes`).
    #[arg(long)]
    csv: bool,

    #[command(flatten)]
    common: Common,

    #[command(flatten)]
    chunking: Chunking,

    #[command(flatten)]
    flow: crate::FlowArgs,
}

/// What `top` counts by. Only IP packets count (every IP packet for
/// src, dst, proto and conversation; those with ports for sport and dport).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Source address.
    Src,
    /// Destination address.
    Dst,
    /// Source port (TCP, UDP, SCTP...).
    Sport,
    /// Destination port.
    Dport,
    /// IP protocol.
    Proto,
    /// Both directions of a conversation: addresses, protocol and ports.
    Conversation,
}

impl By {
    fn library(self) -> tally::By {
        match self {
            By::Src => tally::By::Src,
            By::Dst => tally::By::Dst,
            By::Sport => tally::By::Sport,
            By::Dport => tally::By::Dport,
            By::Proto => tally::By::Proto,
            By::Conversation => tally::By::Conversation,
        }
    }
}

pub fn run(args: TopArgs) -> anyhow::Result<Status> {
    let capture = run::open(&args.file, &args.common, args.chunking.split())?;
    let (capture, bar) = Bar::attach(capture, &args.common, "top");
    let by = args.by;
    let flows = args.chunking.flows.map(|k| (k, args.flow.key()));
    let (top, report) = tally::count(capture, by.library(), flows);
    drop(bar);
    let (packets, bytes, keys) = (top.packets, top.bytes, top.keys);
    let mut rows = top.rows;
    if args.limit > 0 {
        rows.truncate(args.limit);
    }
    let by_name = by
        .to_possible_value()
        .expect("no skipped values")
        .get_name()
        .to_string();
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(k, n, b)| json!({"key": k.to_string(), "packets": n, "bytes": b}))
            .collect();
        println!(
            "{}",
            json!({"file": args.file.display().to_string(), "by": by_name, "packets": packets,
                   "bytes": bytes, "keys": keys, "rows": rows})
        );
    } else if args.csv {
        println!("{by_name},packets,bytes");
        for (k, n, b) in &rows {
            let k = k.to_string();
            if k.contains([',', '"']) {
                println!("\"{}\",{n},{b}", k.replace('"', "\"\""));
            } else {
                println!("{k},{n},{b}");
            }
        }
    } else {
        let width = rows
            .iter()
            .map(|r| r.0.to_string().len())
            .max()
            .unwrap_or(0)
            .max(by_name.len());
        println!("{by_name:<width$} {:>12} {:>15}", "packets", "bytes");
        for (k, n, b) in &rows {
            println!("{:<width$} {n:>12} {b:>15}", k.to_string());
        }
    }
    Ok(run::finish(report.input_error, &report.skipped))
}

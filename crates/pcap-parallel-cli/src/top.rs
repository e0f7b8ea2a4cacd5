//! `top`: packets and bytes per key, the original README's example as a
//! built-in command.

use clap::{Args, ValueEnum};
use pcap_parallel::LinkType;
use pcap_parallel::tally::{self, Key, Missed, Top};
use serde_json::json;

use crate::args::{Chunking, Common, FlowArgs, Inputs};
use crate::run::{self, Bar, Status};
use crate::{errln, outln, streams};

#[derive(Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// What to count by.
    #[arg(long, value_enum, default_value_t = By::Src)]
    by: By,

    /// Show this many keys (0: all).
    #[arg(short = 'n', long, default_value_t = 10)]
    limit: usize,

    /// JSON output.
    #[arg(long, conflicts_with = "csv")]
    json: bool,

    /// CSV output: a header (the key's name, as in --by, then
    /// `packets,bytes`), then a line per key.
    #[arg(long)]
    csv: bool,

    #[command(flatten)]
    common: Common,

    #[command(flatten, next_help_heading = crate::args::SPEED_ONLY)]
    chunking: Chunking,

    #[command(flatten, next_help_heading = crate::args::SPEED_ONLY)]
    flow: FlowArgs,
}

/// What `top` counts by. Only IP packets count (every IP packet for
/// src, dst, proto and conversation; those with ports for sport and dport);
/// bytes are the packets' lengths on the wire (original lengths, whatever
/// the capture kept of them).
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
    let split = args.chunking.checked()?;
    let (capture, paths) = run::open_inputs(&args.inputs, &args.common, split)?;
    let (capture, bar) = Bar::attach(capture, &args.common, "top");
    let flows = args.chunking.flows.map(|k| (k, args.flow.key()));
    let (top, mut report) = tally::count(capture, args.by.library(), flows);
    drop(bar);
    run::usage_error_in(&mut report)?;
    if run::nothing_read(&report) {
        return Ok(run::finish(report.input_error, &report.skipped));
    }
    let missed = top.missed.clone();
    let table = Table::new(top, args.by, args.limit);
    match (args.json, args.csv) {
        (true, _) => table.print_json(&paths),
        (_, true) => table.print_csv(),
        _ => table.print_text(),
    }
    streams::flush();
    if table.keys == 0 && report.input_error.is_none() {
        explain_empty(&missed, args.common.filter.is_some());
    }
    Ok(run::finish(report.input_error, &report.skipped))
}

/// Says on standard error why a table has no rows.
fn explain_empty(missed: &Missed, filtered: bool) {
    if missed.no_ports > 0 {
        errln!(
            "pcap-parallel: no packets with ports: {} IP packets, none of them TCP, UDP, SCTP or DCCP",
            missed.no_ports
        );
    } else if missed.not_ip > 0 {
        let names: Vec<String> = missed.link_types.iter().map(|lt| link_type(*lt)).collect();
        errln!(
            "pcap-parallel: no IP packets: link type{} {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    } else if filtered {
        errln!("pcap-parallel: no packets passed the filter");
    } else {
        errln!("pcap-parallel: the capture holds no packets");
    }
}

/// `ETHERNET (1)`, or `192` for a link type without a name.
fn link_type(lt: LinkType) -> String {
    match lt.name() {
        Some(name) => format!("{name} ({})", lt.0),
        None => lt.0.to_string(),
    }
}

/// The rows to print, busiest first, and the totals over all keys.
struct Table {
    by: String,
    rows: Vec<(Key, u64, u64)>,
    packets: u64,
    bytes: u64,
    keys: usize,
}

impl Table {
    fn new(top: Top, by: By, limit: usize) -> Table {
        let mut rows = top.rows;
        if limit > 0 {
            rows.truncate(limit);
        }
        let by = by.to_possible_value().expect("no skipped values");
        Table {
            by: by.get_name().to_string(),
            rows,
            packets: top.packets,
            bytes: top.bytes,
            keys: top.keys,
        }
    }

    /// One object; `file` names the input, `files` the inputs when several.
    fn print_json(&self, paths: &[std::path::PathBuf]) {
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|(k, n, b)| json!({"key": k.to_string(), "packets": n, "bytes": b}))
            .collect();
        let mut out = json!({"by": self.by, "packets": self.packets,
                             "bytes": self.bytes, "keys": self.keys, "rows": rows});
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        out["file"] = json!(names[0]);
        if names.len() > 1 {
            out["files"] = json!(names);
        }
        outln!("{out}");
    }

    fn print_csv(&self) {
        outln!("{},packets,bytes", self.by);
        for (k, n, b) in &self.rows {
            let k = k.to_string();
            if k.contains([',', '"']) {
                outln!("\"{}\",{n},{b}", k.replace('"', "\"\""));
            } else {
                outln!("{k},{n},{b}");
            }
        }
    }

    fn print_text(&self) {
        let by = &self.by;
        let width = self
            .rows
            .iter()
            .map(|r| r.0.to_string().len())
            .max()
            .unwrap_or(0)
            .max(by.len());
        outln!("{by:<width$} {:>12} {:>15}", "packets", "bytes");
        for (k, n, b) in &self.rows {
            outln!("{:<width$} {n:>12} {b:>15}", k.to_string());
        }
    }
}

//! `top`: packets and bytes per key, the original README's example as a
//! built-in command.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use clap::{Args, ValueEnum};
use pcap_parallel::decode::{self, Ip};
use pcap_parallel::{Capture, LinkType, Packet, Report};
use serde_json::json;

use crate::args::{Chunking, Common, FlowArgs, Input};
use crate::run::{self, Bar, Status};
use crate::{errln, outln, streams};

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

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Addr(IpAddr),
    Port(u16),
    Proto(u8),
    /// Endpoints in order, so both directions are one key.
    Conversation(u8, (IpAddr, Option<u16>), (IpAddr, Option<u16>)),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn endpoint(f: &mut fmt::Formatter<'_>, (a, p): &(IpAddr, Option<u16>)) -> fmt::Result {
            match (a, p) {
                (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
                (a, Some(p)) => write!(f, "{a}:{p}"),
                (a, None) => write!(f, "{a}"),
            }
        }
        match self {
            Key::Addr(a) => write!(f, "{a}"),
            Key::Port(p) => write!(f, "{p}"),
            Key::Proto(p) => match decode::protocol_name(*p) {
                Some(n) => f.write_str(n),
                None => write!(f, "{p}"),
            },
            Key::Conversation(proto, a, b) => {
                endpoint(f, a)?;
                f.write_str(" <-> ")?;
                endpoint(f, b)?;
                match decode::protocol_name(*proto) {
                    Some(n) => write!(f, " {n}"),
                    None => write!(f, " {proto}"),
                }
            }
        }
    }
}

fn key(by: By, ip: &Ip) -> Option<Key> {
    Some(match by {
        By::Src => Key::Addr(ip.src),
        By::Dst => Key::Addr(ip.dst),
        By::Sport => Key::Port(ip.ports?.0),
        By::Dport => Key::Port(ip.ports?.1),
        By::Proto => Key::Proto(ip.protocol),
        By::Conversation => {
            let a = (ip.src, ip.ports.map(|p| p.0));
            let b = (ip.dst, ip.ports.map(|p| p.1));
            if a <= b {
                Key::Conversation(ip.protocol, a, b)
            } else {
                Key::Conversation(ip.protocol, b, a)
            }
        }
    })
}

/// A fast, non-cryptographic hash: the keys come from the capture, but a
/// table per run is not worth attacking.
type Counts = HashMap<Key, (u64, u64), foldhash::fast::RandomState>;

/// One chunk's packets and bytes per key, and what had no key.
type ChunkCounts = (Vec<(Key, (u64, u64))>, Missed);

/// The packets that have no key, for saying why a table is empty.
#[derive(Debug, Default)]
struct Missed {
    /// Packets that are not IP (or whose IP header cannot be read).
    not_ip: u64,
    /// IP packets without ports, for `--by sport` and `--by dport`.
    no_ports: u64,
    /// The link types of the packets that are not IP, in order of appearance.
    link_types: Vec<LinkType>,
}

impl Missed {
    fn add(&mut self, p: &Packet<'_>) {
        if decode::ip(p.link_type, p.data).is_some() {
            self.no_ports += 1;
            return;
        }
        self.not_ip += 1;
        if !self.link_types.contains(&p.link_type) {
            self.link_types.push(p.link_type);
        }
    }

    fn merge(&mut self, o: Missed) {
        self.not_ip += o.not_ip;
        self.no_ports += o.no_ports;
        for lt in o.link_types {
            if !self.link_types.contains(&lt) {
                self.link_types.push(lt);
            }
        }
    }
}

/// Packets and bytes per key, and what had no key.
#[derive(Debug, Default)]
struct Tally {
    counts: Counts,
    missed: Missed,
}

impl Tally {
    fn add(&mut self, counts: impl IntoIterator<Item = (Key, (u64, u64))>, missed: Missed) {
        for (k, (n, b)) in counts {
            let e = self.counts.entry(k).or_insert((0, 0));
            e.0 += n;
            e.1 += b;
        }
        self.missed.merge(missed);
    }
}

/// Packets and bytes (on the wire) per key of one chunk, counted under the
/// narrowest key type (hashing an address is cheaper than hashing a
/// `Key`), widened at the end.
fn count<K: std::hash::Hash + Eq>(
    chunk: &pcap_parallel::Chunk,
    key: impl Fn(&Packet<'_>) -> Option<K>,
    widen: impl Fn(K) -> Key,
) -> ChunkCounts {
    let mut counts: HashMap<K, (u64, u64), foldhash::fast::RandomState> = HashMap::default();
    let mut missed = Missed::default();
    for p in chunk.packets() {
        match key(&p) {
            Some(k) => {
                let e = counts.entry(k).or_insert((0, 0));
                e.0 += 1;
                e.1 += p.original_len as u64;
            }
            None => missed.add(&p),
        }
    }
    (
        counts.into_iter().map(|(k, v)| (widen(k), v)).collect(),
        missed,
    )
}

/// One chunk's counts, under `by`.
fn count_chunk(chunk: &pcap_parallel::Chunk, by: By) -> ChunkCounts {
    match by {
        By::Src => count(
            chunk,
            |p| Some(decode::addresses(p.link_type, p.data)?.0),
            Key::Addr,
        ),
        By::Dst => count(
            chunk,
            |p| Some(decode::addresses(p.link_type, p.data)?.1),
            Key::Addr,
        ),
        _ => count(chunk, |p| key(by, &decode::ip(p.link_type, p.data)?), |k| k),
    }
}

/// Counts chunk by chunk, in parallel.
fn tally_by_chunk(capture: Capture, by: By) -> (Tally, Report) {
    let mut tally = Tally::default();
    let report = capture.run(
        |chunk| Ok(count_chunk(chunk, by)),
        |r| {
            if let Ok((counts, missed)) = r.result {
                tally.add(counts, missed);
            }
        },
    );
    (tally, report)
}

/// Counts per flow shard: the same totals, each shard in file order.
fn tally_by_flow(capture: Capture, shards: usize, flow: &FlowArgs, by: By) -> (Tally, Report) {
    let mut tally = Tally::default();
    let (per_shard, mut report) = capture.flows(shards).key(flow.key()).fold_report(
        |_| Tally::default(),
        |t, p| match decode::ip(p.link_type, p.data).and_then(|ip| key(by, &ip)) {
            Some(key) => t.add([(key, (1, p.original_len as u64))], Missed::default()),
            None => t.missed.add(p),
        },
        |_, t| t,
    );
    match per_shard {
        Ok(shards) => {
            for t in shards {
                tally.add(t.counts, t.missed);
            }
        }
        Err(e) => {
            report.input_error.get_or_insert(e);
        }
    }
    (tally, report)
}

pub fn run(args: TopArgs) -> anyhow::Result<Status> {
    let split = args.chunking.checked()?;
    let capture = run::open(&args.file, &args.common, split)?;
    let (capture, bar) = Bar::attach(capture, &args.common, "top");
    let (tally, mut report) = match args.chunking.flows {
        Some(k) => tally_by_flow(capture, k, &args.flow, args.by),
        None => tally_by_chunk(capture, args.by),
    };
    drop(bar);
    run::usage_error_in(&mut report)?;
    if run::nothing_read(&report) {
        return Ok(run::finish(report.input_error, &report.skipped));
    }
    let table = Table::new(tally.counts, args.by, args.limit);
    match (args.json, args.csv) {
        (true, _) => table.print_json(&args.file),
        (_, true) => table.print_csv(),
        _ => table.print_text(),
    }
    streams::flush();
    if table.keys == 0 && report.input_error.is_none() {
        explain_empty(&tally.missed, args.common.filter.is_some());
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
    rows: Vec<(Key, (u64, u64))>,
    packets: u64,
    bytes: u64,
    keys: usize,
}

impl Table {
    fn new(counts: Counts, by: By, limit: usize) -> Table {
        let packets = counts.values().map(|v| v.0).sum();
        let bytes = counts.values().map(|v| v.1).sum();
        let keys = counts.len();
        let mut rows: Vec<(Key, (u64, u64))> = counts.into_iter().collect();
        rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        if limit > 0 {
            rows.truncate(limit);
        }
        let by = by.to_possible_value().expect("no skipped values");
        Table {
            by: by.get_name().to_string(),
            rows,
            packets,
            bytes,
            keys,
        }
    }

    fn print_json(&self, file: &std::path::Path) {
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|(k, (n, b))| json!({"key": k.to_string(), "packets": n, "bytes": b}))
            .collect();
        outln!(
            "{}",
            json!({"file": file.display().to_string(), "by": self.by, "packets": self.packets,
                   "bytes": self.bytes, "keys": self.keys, "rows": rows})
        );
    }

    fn print_csv(&self) {
        outln!("{},packets,bytes", self.by);
        for (k, (n, b)) in &self.rows {
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
        for (k, (n, b)) in &self.rows {
            outln!("{:<width$} {n:>12} {b:>15}", k.to_string());
        }
    }
}

//! `top`: packets and bytes per key, the original README's example as a
//! built-in command.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use clap::{Args, ValueEnum};
use pcap_parallel::decode::{self, Ip};
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

/// Packets and bytes per key of one chunk.
fn count<K: std::hash::Hash + Eq>(
    chunk: &pcap_parallel::Chunk,
    key: impl Fn(&pcap_parallel::Packet<'_>) -> Option<K>,
    widen: impl Fn(K) -> Key,
) -> Vec<(Key, (u64, u64))> {
    let mut counts: HashMap<K, (u64, u64), foldhash::fast::RandomState> = HashMap::default();
    for p in chunk.packets() {
        if let Some(k) = key(&p) {
            let e = counts.entry(k).or_insert((0, 0));
            e.0 += 1;
            e.1 += p.original_len as u64;
        }
    }
    counts.into_iter().map(|(k, v)| (widen(k), v)).collect()
}

pub fn run(args: TopArgs) -> anyhow::Result<Status> {
    let capture = run::open(&args.file, &args.common, args.chunking.split())?;
    let (capture, bar) = Bar::attach(capture, &args.common, "top");
    let by = args.by;
    let mut total = Counts::default();
    let mut add = |counts: Vec<(Key, (u64, u64))>| {
        for (k, (n, b)) in counts {
            let e = total.entry(k).or_insert((0, 0));
            e.0 += n;
            e.1 += b;
        }
    };
    let report = if let Some(k) = args.chunking.flows {
        // Counted per flow shard: the same totals, each shard in file order.
        let (counts, report) = capture.flows(k).key(args.flow.key()).fold_report(
            |_| Counts::default(),
            |c, p| {
                if let Some(key) = decode::ip(p.link_type, p.data).and_then(|ip| key(by, &ip)) {
                    let e = c.entry(key).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += p.original_len as u64;
                }
            },
            |_, c| c.into_iter().collect::<Vec<_>>(),
        );
        for shard in counts? {
            add(shard);
        }
        report
    } else {
        capture.run(
            |chunk| {
                // Counted per chunk under the narrowest key type (hashing an
                // address is cheaper than hashing a `Key`), widened at the end.
                Ok(match by {
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
                })
            },
            |r| {
                if let Ok(counts) = r.result {
                    add(counts);
                }
            },
        )
    };
    drop(bar);
    let packets: u64 = total.values().map(|v| v.0).sum();
    let bytes: u64 = total.values().map(|v| v.1).sum();
    let keys = total.len();
    let mut rows: Vec<(Key, (u64, u64))> = total.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
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
            .map(|(k, (n, b))| json!({"key": k.to_string(), "packets": n, "bytes": b}))
            .collect();
        println!(
            "{}",
            json!({"file": args.file.display().to_string(), "by": by_name, "packets": packets,
                   "bytes": bytes, "keys": keys, "rows": rows})
        );
    } else if args.csv {
        println!("{by_name},packets,bytes");
        for (k, (n, b)) in &rows {
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
        for (k, (n, b)) in &rows {
            println!("{:<width$} {n:>12} {b:>15}", k.to_string());
        }
    }
    Ok(run::finish(report.input_error, &report.skipped))
}

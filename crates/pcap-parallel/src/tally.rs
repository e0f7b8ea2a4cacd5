//! Packets and bytes per key (source address, port, protocol, conversation),
//! counted in parallel: the original README's example as a library call, the
//! command line's `top`, and the Python package's `top()`.
//!
//! Only IP packets count: every one for [`By::Src`], [`By::Dst`],
//! [`By::Proto`] and [`By::Conversation`], those with ports for
//! [`By::Sport`] and [`By::Dport`]. Bytes are bytes on the wire.
//!
//! ```
//! use pcap_parallel::{Capture, tally::{self, By}};
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
//! let (top, report) = tally::count(Capture::open(path)?, By::Src, None);
//! assert!(report.input_error.is_none());
//! let (key, packets, _bytes) = &top.rows[0]; // the busiest source first
//! assert!(top.rows.iter().all(|r| r.1 <= *packets));
//! println!("{key}: {packets} packets");
//! # Ok::<(), pcap_parallel::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use crate::chunk::Chunk;
use crate::decode::{self, Ip};
use crate::flow::FlowKey;
use crate::packet::{LinkType, Packet};
use crate::{Capture, Report};

/// What to count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Every key kind, in the order above.
    pub const ALL: [By; 6] = [
        By::Src,
        By::Dst,
        By::Sport,
        By::Dport,
        By::Proto,
        By::Conversation,
    ];

    /// `src`, `dst`, `sport`, `dport`, `proto` or `conversation`.
    pub fn name(self) -> &'static str {
        match self {
            By::Src => "src",
            By::Dst => "dst",
            By::Sport => "sport",
            By::Dport => "dport",
            By::Proto => "proto",
            By::Conversation => "conversation",
        }
    }

    /// The key kind named `name` (see [`By::name`]).
    pub fn from_name(name: &str) -> Option<By> {
        By::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// A key counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An address.
    Addr(IpAddr),
    /// A port.
    Port(u16),
    /// An IP protocol number.
    Proto(u8),
    /// A conversation: protocol, then its endpoints in order, so both
    /// directions are one key.
    Conversation(u8, (IpAddr, Option<u16>), (IpAddr, Option<u16>)),
}

impl fmt::Display for Key {
    /// `10.0.0.1`, `443`, `tcp`, `10.0.0.1:80 <-> [2001:db8::1]:5000 tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn endpoint(f: &mut fmt::Formatter<'_>, (a, p): &(IpAddr, Option<u16>)) -> fmt::Result {
            match (a, p) {
                (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
                (a, Some(p)) => write!(f, "{a}:{p}"),
                (a, None) => write!(f, "{a}"),
            }
        }
        let proto = |f: &mut fmt::Formatter<'_>, p: u8| match decode::protocol_name(p) {
            Some(n) => f.write_str(n),
            None => write!(f, "{p}"),
        };
        match self {
            Key::Addr(a) => write!(f, "{a}"),
            Key::Port(p) => write!(f, "{p}"),
            Key::Proto(p) => proto(f, *p),
            Key::Conversation(p, a, b) => {
                endpoint(f, a)?;
                f.write_str(" <-> ")?;
                endpoint(f, b)?;
                f.write_str(" ")?;
                proto(f, *p)
            }
        }
    }
}

/// The key of an IP packet, if it has one for `by`.
pub fn key(by: By, ip: &Ip) -> Option<Key> {
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

/// What [`count`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    /// What was counted by.
    pub by: By,
    /// Packets counted (those with a key).
    pub packets: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// Distinct keys.
    pub keys: usize,
    /// Every key with its packets and bytes: most packets first, ties by key.
    pub rows: Vec<(Key, u64, u64)>,
    /// The packets that had no key, for saying why a table is empty.
    pub missed: Missed,
}

/// The packets that have no key under [`By`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missed {
    /// Packets that are not IP (or whose IP header cannot be read).
    pub not_ip: u64,
    /// IP packets without ports, for [`By::Sport`] and [`By::Dport`].
    pub no_ports: u64,
    /// The link types of the packets that are not IP, in order of appearance.
    pub link_types: Vec<LinkType>,
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

/// One chunk's (or shard's) counts, and what had no key.
type Counted = (Vec<(Key, (u64, u64))>, Missed);

/// Packets and bytes per key of one chunk, counted under the narrowest key
/// type (hashing an address is cheaper than hashing a [`Key`]), widened at
/// the end.
fn count_chunk<K: std::hash::Hash + Eq>(
    chunk: &Chunk,
    key: impl Fn(&Packet<'_>) -> Option<K>,
    widen: impl Fn(K) -> Key,
) -> Counted {
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
    let counts = counts.into_iter().map(|(k, v)| (widen(k), v)).collect();
    (counts, missed)
}

/// Counts packets and bytes per key over `capture`, chunk by chunk (or, with
/// `flows`, flow shard by flow shard: the same totals). The report says
/// whether the input was read to the end; the counts cover everything
/// before a fault.
pub fn count(capture: Capture, by: By, flows: Option<(usize, FlowKey)>) -> (Top, Report) {
    let mut total = Counts::default();
    let mut missed = Missed::default();
    let mut add = |(counts, m): Counted| {
        missed.merge(m);
        for (k, (n, b)) in counts {
            let e = total.entry(k).or_insert((0, 0));
            e.0 += n;
            e.1 += b;
        }
    };
    let report = match flows {
        Some((k, flow_key)) => {
            let (counts, mut report) = capture.flows(k).key(flow_key).fold_report(
                |_| (Counts::default(), Missed::default()),
                |(c, m), p| match decode::ip(p.link_type, p.data).and_then(|ip| key(by, &ip)) {
                    Some(key) => {
                        let e = c.entry(key).or_insert((0, 0));
                        e.0 += 1;
                        e.1 += p.original_len as u64;
                    }
                    None => m.add(p),
                },
                |_, (c, m)| (c.into_iter().collect::<Vec<_>>(), m),
            );
            match counts {
                Ok(shards) => shards.into_iter().for_each(&mut add),
                Err(e) => {
                    report.input_error.get_or_insert(e);
                }
            }
            report
        }
        None => capture.run(
            |chunk| {
                Ok(match by {
                    By::Src => count_chunk(
                        chunk,
                        |p| Some(decode::addresses(p.link_type, p.data)?.0),
                        Key::Addr,
                    ),
                    By::Dst => count_chunk(
                        chunk,
                        |p| Some(decode::addresses(p.link_type, p.data)?.1),
                        Key::Addr,
                    ),
                    _ => count_chunk(chunk, |p| key(by, &decode::ip(p.link_type, p.data)?), |k| k),
                })
            },
            |r| {
                if let Ok(counts) = r.result {
                    add(counts);
                }
            },
        ),
    };
    let packets = total.values().map(|v| v.0).sum();
    let bytes = total.values().map(|v| v.1).sum();
    let keys = total.len();
    let mut rows: Vec<(Key, u64, u64)> = total.into_iter().map(|(k, (n, b))| (k, n, b)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top = Top {
        by,
        packets,
        bytes,
        keys,
        rows,
        missed,
    };
    (top, report)
}

//! What tshark says of every packet of a capture, field by field, for the
//! decoding tests (the library's `decode` here, the packet table in
//! `pcap-parallel-arrow`): the first IP layer (defragmentation off), the
//! ports and TCP flags right after it, the outermost VLAN tag before it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// One packet's fields, as tshark shows them; `None` where tshark shows
/// no value. The same shape is built from our side for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields {
    /// tshark's frame.number (which also counts pcapng blocks that are not
    /// packets, such as custom blocks; see [`frames`]).
    pub number: u64,
    /// frame.time_epoch in nanoseconds (none for Simple Packet Blocks).
    pub time_ns: Option<i128>,
    pub cap_len: u32,
    pub len: u32,
    /// frame.interface_id (pcapng only).
    pub interface_id: Option<u32>,
    /// vlan.id (or ieee8021ad.id) of the first tag before the first IP layer.
    pub vlan: Option<u16>,
    pub ip_version: Option<u8>,
    pub src: Option<String>,
    pub dst: Option<String>,
    /// ip.proto, or the last of the ipv6 next-header chain (ipv6.nxt,
    /// then hopopts/routing/fraghdr/dstopts .nxt).
    pub proto: Option<u8>,
    /// ip.ttl / ipv6.hlim.
    pub ttl: Option<u8>,
    /// ip.id / ipv6.fraghdr.ident.
    pub ip_id: Option<u32>,
    /// ip.flags / ipv6.fraghdr.more.
    pub ip_flags: Option<u8>,
    /// ip.frag_offset / ipv6.fraghdr.offset.
    pub frag_offset: Option<u16>,
    /// tcp/udp/sctp/dccp .srcport and .dstport of the layer right after
    /// the first IP layer (and its extension headers).
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub tcp_flags: Option<u16>,
}

const FIELDS: &[&str] = &[
    "frame.number",
    "frame.time_epoch",
    "frame.cap_len",
    "frame.len",
    "frame.interface_id",
    "frame.protocols",
    "vlan.id",
    "ieee8021ad.id",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.ttl",
    "ip.id",
    "ip.flags",
    "ip.frag_offset",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.hlim",
    "ipv6.hopopts.nxt",
    "ipv6.routing.nxt",
    "ipv6.fraghdr.nxt",
    "ipv6.dstopts.nxt",
    "ipv6.fraghdr.ident",
    "ipv6.fraghdr.more",
    "ipv6.fraghdr.offset",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "udp.srcport",
    "udp.dstport",
    "sctp.srcport",
    "sctp.dstport",
    "dccp.srcport",
    "dccp.dstport",
];

fn num<T: TryFrom<u64>>(s: &str) -> Option<T> {
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => s.parse().ok()?,
    };
    T::try_from(v).ok()
}

/// frame.time_epoch in nanoseconds. A record whose sub-second field is a
/// billion or more (invalid) is printed by tshark as its raw seconds and
/// sub-second fields (`S.1000000000`, with a stray sign when the field
/// reads as negative): those are added up, as we read such a record.
fn time_ns(s: &str) -> Option<i128> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = secs.parse().ok()?;
    if frac.len() > 9 {
        return Some(secs.abs() * 1_000_000_000 + frac.parse::<i128>().ok()?);
    }
    let nanos: i128 = format!("{frac:0<9}").parse().ok()?;
    Some(if s.starts_with('-') {
        secs * 1_000_000_000 - nanos
    } else {
        secs * 1_000_000_000 + nanos
    })
}

/// One tshark row: every field's occurrences, in tree order.
struct Row<'a> {
    values: Vec<Vec<&'a str>>,
    /// How many occurrences of each field are used up.
    used: Vec<usize>,
}

impl<'a> Row<'a> {
    fn index(field: &str) -> usize {
        FIELDS.iter().position(|f| *f == field).expect("a known field")
    }
    fn first(&self, field: &str) -> Option<&'a str> {
        self.values[Self::index(field)].first().copied()
    }
    /// The next unused occurrence of `field`.
    fn take(&mut self, field: &str) -> Option<&'a str> {
        let i = Self::index(field);
        let v = self.values[i].get(self.used[i]).copied();
        self.used[i] += 1;
        v
    }
}

/// Packet by packet, what tshark shows of `path`'s packets. pcapng blocks
/// that tshark shows as frames but are not packets (custom blocks, say:
/// no interface) are left out, so the result lines up with the packets.
pub fn frames(path: &Path) -> Vec<Fields> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path).args([
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-o",
        "tcp.analyze_sequence_numbers:FALSE",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("tshark prints UTF-8");
    let pcapng = std::fs::read(path)
        .map(|b| b.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]))
        .unwrap_or(false);
    text.lines()
        .filter_map(|line| {
            let values: Vec<Vec<&str>> = line
                .split('\t')
                .map(|v| if v.is_empty() { vec![] } else { v.split(',').collect() })
                .collect();
            assert_eq!(values.len(), FIELDS.len(), "a tshark row: {line}");
            let mut row = Row {
                used: vec![0; values.len()],
                values,
            };
            if pcapng && row.first("frame.interface_id").is_none() {
                return None;
            }
            Some(fields(&mut row))
        })
        .collect()
}

fn fields(row: &mut Row<'_>) -> Fields {
    let mut f = Fields {
        number: num(row.first("frame.number").expect("a frame number")).unwrap(),
        time_ns: row.first("frame.time_epoch").and_then(time_ns),
        cap_len: num(row.first("frame.cap_len").unwrap()).unwrap(),
        len: num(row.first("frame.len").unwrap()).unwrap(),
        interface_id: row.first("frame.interface_id").and_then(num),
        ..Fields::default()
    };
    let protocols: Vec<&str> = row
        .first("frame.protocols")
        .map(|p| p.split(':').collect())
        .unwrap_or_default();
    let mut layers = protocols.iter().peekable();
    while let Some(&layer) = layers.next() {
        match layer {
            "vlan" => {
                let v = row.take("vlan.id").and_then(num);
                f.vlan = f.vlan.or(v);
            }
            "ieee8021ad" => {
                let v = row.take("ieee8021ad.id").and_then(num);
                f.vlan = f.vlan.or(v);
            }
            "ip" => match row.take("ip.src") {
                Some(src) => {
                    f.ip_version = Some(4);
                    f.src = Some(src.to_string());
                    f.dst = row.first("ip.dst").map(str::to_string);
                    f.proto = row.first("ip.proto").and_then(num);
                    f.ttl = row.first("ip.ttl").and_then(num);
                    f.ip_id = row.first("ip.id").and_then(num);
                    f.ip_flags = row.first("ip.flags").and_then(num);
                    f.frag_offset = row.first("ip.frag_offset").and_then(num);
                    break;
                }
                // An `ip` layer without addresses: bogus, or IPv6 handed on.
                None => continue,
            },
            "ipv6" => {
                let Some(src) = row.take("ipv6.src") else {
                    continue;
                };
                f.ip_version = Some(6);
                f.src = Some(src.to_string());
                f.dst = row.first("ipv6.dst").map(str::to_string);
                f.ttl = row.first("ipv6.hlim").and_then(num);
                ipv6_chain(row, &mut f);
                break;
            }
            _ => {}
        }
    }
    if f.ip_version.is_none() {
        return f;
    }
    // The transport layer: the next layer after the IP layer's own
    // extension-header layers.
    let next = layers.find(|l| !l.starts_with("ipv6."));
    let (sport, dport) = match next.copied() {
        Some("tcp") => ("tcp.srcport", "tcp.dstport"),
        Some("udp") | Some("udplite") => ("udp.srcport", "udp.dstport"),
        Some("sctp") => ("sctp.srcport", "sctp.dstport"),
        Some("dccp") => ("dccp.srcport", "dccp.dstport"),
        _ => return f,
    };
    f.src_port = row.first(sport).and_then(num);
    f.dst_port = row.first(dport).and_then(num);
    if next == Some(&"tcp") {
        f.tcp_flags = row.first("tcp.flags").and_then(num);
    }
    f
}

/// Follows the first IPv6 header's next-header chain through the
/// extension headers tshark shows.
fn ipv6_chain(row: &mut Row<'_>, f: &mut Fields) {
    let mut proto: Option<u8> = row.first("ipv6.nxt").and_then(num);
    loop {
        let field = match proto {
            Some(0) => "ipv6.hopopts.nxt",
            Some(43) => "ipv6.routing.nxt",
            Some(60) => "ipv6.dstopts.nxt",
            Some(44) => "ipv6.fraghdr.nxt",
            _ => break,
        };
        let Some(next) = row.take(field).and_then(num) else {
            break;
        };
        if proto == Some(44) {
            let ident = row.take("ipv6.fraghdr.ident").and_then(num);
            let more: Option<u8> = row.take("ipv6.fraghdr.more").and_then(num);
            let offset: Option<u16> = row.take("ipv6.fraghdr.offset").and_then(num);
            if f.ip_id.is_none() {
                f.ip_id = ident;
                f.ip_flags = more;
                f.frag_offset = offset;
            }
            proto = Some(next);
            if offset != Some(0) {
                break;
            }
            continue;
        }
        proto = Some(next);
    }
    f.proto = proto;
}

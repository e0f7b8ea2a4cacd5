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
        FIELDS
            .iter()
            .position(|f| *f == field)
            .expect("a known field")
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

/// Which IP layer to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpLayer {
    /// The first (the outermost).
    First,
    /// The one inside GRE tunnels (up to four): the first IP layer not
    /// followed by GRE, or the last one before a tunnel that leads nowhere.
    InsideGre,
}

/// Packet by packet, what tshark shows of `path`'s packets (first IP
/// layer). pcapng blocks that tshark shows as frames but are not packets
/// (custom blocks, say: no interface) are left out, so the result lines up
/// with the packets.
pub fn frames(path: &Path) -> Vec<Fields> {
    frames_at(path, IpLayer::First)
}

/// Like [`frames`], reporting the IP layer `layer`.
pub fn frames_at(path: &Path, layer: IpLayer) -> Vec<Fields> {
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
    let out = cmd
        .output()
        .expect("tshark is installed (.ci/run installs it)");
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
                .map(|v| {
                    if v.is_empty() {
                        vec![]
                    } else {
                        v.split(',').collect()
                    }
                })
                .collect();
            assert_eq!(values.len(), FIELDS.len(), "a tshark row: {line}");
            let mut row = Row {
                used: vec![0; values.len()],
                values,
            };
            if pcapng && row.first("frame.interface_id").is_none() {
                return None;
            }
            Some(fields(&mut row, layer))
        })
        .collect()
}

/// The IP part of [`Fields`] of one IP layer, read from the next unused
/// occurrences of its fields.
fn ip_layer(row: &mut Row<'_>, layer: &str) -> Option<Fields> {
    let mut f = Fields::default();
    if layer == "ip" {
        f.src = Some(row.take("ip.src")?.to_string());
        f.ip_version = Some(4);
        f.dst = row.take("ip.dst").map(str::to_string);
        f.proto = row.take("ip.proto").and_then(num);
        f.ttl = row.take("ip.ttl").and_then(num);
        f.ip_id = row.take("ip.id").and_then(num);
        f.ip_flags = row.take("ip.flags").and_then(num);
        f.frag_offset = row.take("ip.frag_offset").and_then(num);
    } else {
        f.src = Some(row.take("ipv6.src")?.to_string());
        f.ip_version = Some(6);
        f.dst = row.take("ipv6.dst").map(str::to_string);
        f.ttl = row.take("ipv6.hlim").and_then(num);
        ipv6_chain(row, &mut f);
    }
    // A fixed header cut short before the end of the destination address
    // (by the snapshot length): tshark shows the fields that fit, our
    // decoder no IP layer (documented in `decode`).
    f.dst.is_some().then_some(f)
}

fn fields(row: &mut Row<'_>, wanted: IpLayer) -> Fields {
    let mut f = Fields {
        number: num(row.first("frame.number").expect("a frame number")).unwrap(),
        time_ns: row.first("frame.time_epoch").and_then(time_ns),
        cap_len: num(row.first("frame.cap_len").unwrap()).unwrap(),
        len: num(row.first("frame.len").unwrap()).unwrap(),
        interface_id: row.first("frame.interface_id").and_then(num),
        ..Fields::default()
    };
    let protocols = row.first("frame.protocols").unwrap_or("");
    let mut vlan = None;
    let mut chosen: Option<Fields> = None;
    // The layer before this one was the chosen IP layer (or its extension
    // headers); tunnels entered so far; whether the choice is final.
    let mut right_after = false;
    let mut tunnels = 0;
    let mut settled = false;
    for layer in protocols.split(':') {
        if layer.starts_with("ipv6.") {
            continue;
        }
        let follows = std::mem::replace(&mut right_after, false);
        match layer {
            "vlan" | "ieee8021ad" => {
                let field = if layer == "vlan" {
                    "vlan.id"
                } else {
                    "ieee8021ad.id"
                };
                let v = row.take(field).and_then(num);
                if chosen.is_none() || !settled {
                    vlan = vlan.or(v);
                }
            }
            "ip" | "ipv6" => {
                let Some(ip) = ip_layer(row, layer) else {
                    continue;
                };
                if !settled {
                    chosen = Some(ip);
                    right_after = true;
                    settled = wanted == IpLayer::First;
                }
            }
            "gre" if follows && wanted == IpLayer::InsideGre && tunnels < 4 => {
                tunnels += 1;
            }
            "tcp" | "udp" | "udplite" | "sctp" | "dccp" => {
                let prefix = if layer == "udplite" { "udp" } else { layer };
                let sport = row.take(&format!("{prefix}.srcport")).and_then(num);
                let dport = row.take(&format!("{prefix}.dstport")).and_then(num);
                let flags = if layer == "tcp" {
                    row.take("tcp.flags").and_then(num)
                } else {
                    None
                };
                if follows && let Some(c) = chosen.as_mut() {
                    (c.src_port, c.dst_port, c.tcp_flags) = (sport, dport, flags);
                }
                settled |= chosen.is_some();
            }
            _ => {
                settled |= follows;
            }
        }
    }
    f.vlan = vlan;
    if let Some(c) = chosen {
        Fields {
            ip_version: c.ip_version,
            src: c.src,
            dst: c.dst,
            proto: c.proto,
            ttl: c.ttl,
            ip_id: c.ip_id,
            ip_flags: c.ip_flags,
            frag_offset: c.frag_offset,
            src_port: c.src_port,
            dst_port: c.dst_port,
            tcp_flags: c.tcp_flags,
            ..f
        }
    } else {
        f
    }
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

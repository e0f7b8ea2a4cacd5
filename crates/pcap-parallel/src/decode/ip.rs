//! The IP header, IPv6 extension headers, the first bytes of the transport
//! header, and GRE.
//!
//! Written here rather than taken from a packet crate because a packet
//! table has to say exactly what Wireshark says, field by field, and be
//! fast: the header of a datagram whose total length is smaller than its
//! header is bogus (no fields); a total length of 0 is a TSO segment (the
//! captured length counts); IPv6 extension headers are walked (hop-by-hop,
//! routing, fragment, destination options) but never into a non-first
//! fragment; AH is a protocol of its own, as in `ip.proto` and tcpdump's
//! `ip proto`. Every access is checked (`get`), so bytes cut short by the
//! snapshot length end the walk, with what was read so far kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Fragmentation, Ip};

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// IP protocols whose header starts with the source and destination ports:
/// TCP, UDP, DCCP, SCTP and UDP-Lite.
pub(super) fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 33 | 132 | 136)
}

/// The IP header at the start of `p`, by its version nibble, and its
/// payload (the transport header on), as captured and within the
/// datagram's stated length.
pub(super) fn parse(p: &[u8]) -> Option<(Ip, &[u8])> {
    let (mut ip, payload) = match p.first()? >> 4 {
        4 => v4(p)?,
        6 => v6(p)?,
        _ => return None,
    };
    transport(&mut ip, payload);
    Some((ip, payload))
}

/// Only the addresses (for the fast path of `decode::addresses`), with
/// the same checks as [`parse`].
#[inline]
pub(super) fn addresses(p: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match p.first()? >> 4 {
        4 => {
            v4_bounds(p)?;
            let a: [u8; 4] = p[12..16].try_into().ok()?;
            let b: [u8; 4] = p[16..20].try_into().ok()?;
            Some((Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into()))
        }
        6 => {
            let a: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            Some((Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into()))
        }
        _ => None,
    }
}

/// Header length and end of an IPv4 datagram's captured bytes, if its
/// fixed header is there and its lengths are not bogus.
#[inline]
fn v4_bounds(p: &[u8]) -> Option<(usize, usize)> {
    let h = p.get(..20)?;
    let header = (h[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    let end = match total {
        0 => p.len(),
        t if t < header || header < 20 => return None,
        t => t.min(p.len()),
    };
    Some((header, end))
}

fn v4(p: &[u8]) -> Option<(Ip, &[u8])> {
    let (header, end) = v4_bounds(p)?;
    let off = u16::from_be_bytes([p[6], p[7]]);
    let ip = Ip {
        src: Ipv4Addr::from(<[u8; 4]>::try_from(&p[12..16]).ok()?).into(),
        dst: Ipv4Addr::from(<[u8; 4]>::try_from(&p[16..20]).ok()?).into(),
        protocol: p[9],
        ttl: p[8],
        fragmentation: Some(Fragmentation {
            id: u16::from_be_bytes([p[4], p[5]]) as u32,
            flags: (off >> 13) as u8,
            offset: off & 0x1fff,
        }),
        ports: None,
        tcp_flags: None,
    };
    // Options cut short by the snapshot length leave no payload.
    Some((ip, p.get(header..end).unwrap_or(&[])))
}

fn v6(p: &[u8]) -> Option<(Ip, &[u8])> {
    let h = p.get(..40)?;
    let end = match u16::from_be_bytes([h[4], h[5]]) as usize {
        0 => p.len(), // a jumbogram or a TSO segment
        n => (40 + n).min(p.len()),
    };
    let mut ip = Ip {
        src: Ipv6Addr::from(<[u8; 16]>::try_from(&h[8..24]).ok()?).into(),
        dst: Ipv6Addr::from(<[u8; 16]>::try_from(&h[24..40]).ok()?).into(),
        protocol: h[6],
        ttl: h[7],
        fragmentation: None,
        ports: None,
        tcp_flags: None,
    };
    let mut rest = &p[40..end];
    loop {
        let len = match ip.protocol {
            // Hop-by-hop, routing, destination options.
            0 | 43 | 60 => match rest.get(1) {
                Some(&n) => (n as usize + 1) * 8,
                None => break,
            },
            44 => {
                let (Some(word), Some(id)) = (be16(rest, 2), be32(rest, 4)) else {
                    break;
                };
                let first = ip.fragmentation.is_none();
                let f = Fragmentation {
                    id,
                    flags: (word & 1) as u8,
                    offset: word >> 3,
                };
                if first {
                    ip.fragmentation = Some(f);
                }
                if f.offset != 0 {
                    // What follows is the middle of a datagram.
                    ip.protocol = rest[0];
                    return Some((ip, rest.get(8..).unwrap_or(&[])));
                }
                8
            }
            _ => break,
        };
        let Some(next) = rest.get(len..) else { break };
        ip.protocol = rest[0];
        rest = next;
    }
    Some((ip, rest))
}

/// Ports (the first four bytes of the transport header, in a first
/// fragment or an unfragmented datagram) and TCP's flags.
fn transport(ip: &mut Ip, payload: &[u8]) {
    if ip.fragmentation.is_some_and(|f| f.offset != 0) {
        return;
    }
    if has_ports(ip.protocol)
        && let (Some(src), Some(dst)) = (be16(payload, 0), be16(payload, 2))
    {
        ip.ports = Some((src, dst));
    }
    if ip.protocol == 6 {
        ip.tcp_flags = be16(payload, 12).map(|w| w & 0x0fff);
    }
}

/// What a GRE packet carries: an EtherType and its payload, or an
/// Ethernet frame (transparent Ethernet bridging, ERSPAN), or PPP (PPTP's
/// enhanced GRE).
pub(super) enum GrePayload<'a> {
    EtherType(u16, &'a [u8]),
    Ethernet(&'a [u8]),
    Ppp(&'a [u8]),
}

/// Parses a GRE header (RFC 2784/2890, and version 1 of RFC 2637).
pub(super) fn gre(d: &[u8]) -> Option<GrePayload<'_>> {
    let flags = be16(d, 0)?;
    let protocol = be16(d, 2)?;
    let version = flags & 7;
    if version > 1 || flags & 0x4000 != 0 {
        return None; // unknown versions; source routing (RFC 1701) is obsolete
    }
    let mut len = 4;
    for (bit, extra) in [(0x8000, 4), (0x2000, 4), (0x1000, 4)] {
        if flags & bit != 0 {
            len += extra; // checksum, key, sequence number
        }
    }
    if version == 1 && flags & 0x0080 != 0 {
        len += 4; // acknowledgment number
    }
    let body = d.get(len..)?;
    Some(match protocol {
        // ERSPAN type II has a sequence number and an 8-byte header; type I neither.
        0x88be if flags & 0x1000 != 0 => GrePayload::Ethernet(body.get(8..)?),
        0x88be => GrePayload::Ethernet(body),
        // ERSPAN type III: 12 bytes, and 8 more with the optional subheader.
        0x22eb => {
            let extra = if body.get(11)? & 1 != 0 { 8 } else { 0 };
            GrePayload::Ethernet(body.get(12 + extra..)?)
        }
        0x6558 => GrePayload::Ethernet(body),
        0x880b => GrePayload::Ppp(body),
        kind => GrePayload::EtherType(kind, body),
    })
}

//! From a frame of some link type to the IP packet inside it.
//!
//! Each function takes the bytes of one layer and returns the IP packet
//! (version nibble first) it carries, or `None`. The first 802.1Q/802.1ad
//! tag (or tagged Marvell DSA tag) met on the way is recorded in `vlan`:
//! layers are walked outside in, so it is the outermost one. Nothing here
//! indexes without a check: every access goes through `get`, so a frame cut
//! short anywhere gives `None`, never a panic.

use crate::packet::LinkType;

/// Link layers may nest (PPI and PKTAP name another link type, GRE carries
/// Ethernet, MPLS pseudowires carry Ethernet): never more deeply than this.
const MAX_NESTING: u8 = 8;

/// What the walk found besides the IP packet.
#[derive(Debug, Default)]
pub(super) struct Walk {
    /// The outermost VLAN id met.
    pub vlan: Option<u16>,
    /// How many link layers deep the walk is (bounded by [`MAX_NESTING`]).
    depth: u8,
}

impl Walk {
    fn tag(&mut self, vid: u16) {
        self.vlan.get_or_insert(vid);
    }

    fn deeper(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_NESTING).then_some(())
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The IP packet in a frame of link type `link`.
pub(super) fn frame<'a>(link: LinkType, d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    w.deeper()?;
    match link {
        LinkType::NULL | LinkType::LOOP => loopback(d, w),
        LinkType::ETHERNET => ethernet(d, w),
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 | LinkType::IPV4 => Some(d),
        LinkType::IPV6 => ipv6_only(d),
        LinkType::PPP => ppp(d, w),
        LinkType::PPP_HDLC => match d.first()? {
            // Cisco HDLC shares the link type on some systems.
            0x0f | 0x8f => c_hdlc(d, w),
            _ => ppp(d, w),
        },
        LinkType::PPP_ETHER => pppoe_session(d, w),
        // The direction byte stands where the address byte was.
        LinkType::PPP_PPPD => ppp_protocol(d.get(2..)?, w),
        LinkType::PPP_WITH_DIR => ppp(d.get(1..)?, w),
        LinkType::C_HDLC => c_hdlc(d, w),
        LinkType::C_HDLC_WITH_DIR => c_hdlc(d.get(1..)?, w),
        LinkType::IEEE802_11 => ieee802_11(d, w),
        LinkType::IEEE802_11_RADIOTAP => radiotap(d, w),
        LinkType::LINUX_SLL => sll(d, w),
        LinkType::LINUX_SLL2 => sll2(d, w),
        LinkType::ARCNET_LINUX => arcnet_linux(d),
        LinkType::PPI => ppi(d, w),
        LinkType::MPLS => ethertype(0x8847, d, w),
        LinkType::NFLOG => nflog(d),
        LinkType::IPOIB => ethertype(be16(d, 40)?, d.get(44..)?, w),
        LinkType::PKTAP => pktap(d, w),
        LinkType::DSA_TAG_BRCM => ethertype(be16(d, 16)?, d.get(18..)?, w),
        LinkType::DSA_TAG_BRCM_PREPEND => ethernet(d.get(4..)?, w),
        LinkType::DSA_TAG_DSA => dsa(d, 16, w),
        LinkType::DSA_TAG_EDSA => dsa(d, 20, w),
        _ => None,
    }
}

/// BSD NULL and OpenBSD LOOP: a 4-byte address family in the capturing
/// host's byte order (NULL) or network order (LOOP). Read as Wireshark
/// reads it: `ff 03` starts a PPP frame; a family in either byte order is
/// accepted, as are IRIX's 16-bit family and Linux's EtherType in its place.
fn loopback<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    if d.get(..2)? == [0xff, 0x03] {
        return ppp(d, w);
    }
    let mut v = u32::from_le_bytes(d.get(..4)?.try_into().ok()?);
    if v & 0xffff_0000 != 0 {
        if v & 0xff00_0000 == 0 && v & 0x00ff_0000 < 0x0006_0000 {
            v >>= 16;
        } else {
            v = v.swap_bytes();
        }
    } else if v & 0xff == 0 && v & 0xff00 < 0x0600 {
        v = (v as u16).swap_bytes() as u32;
    }
    let rest = &d[4..];
    match v {
        1501.. => ethertype(v as u16, rest, w),
        // AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 depending on the BSD.
        2 => Some(rest),
        24 | 28 | 30 => ipv6_only(rest),
        _ => None,
    }
}

/// What claims to be IPv6 is taken for IP only with version 6 (as
/// Wireshark does; what claims to be IPv4 may be either, by its version).
fn ipv6_only(d: &[u8]) -> Option<&[u8]> {
    (d.first()? >> 4 == 6).then_some(d)
}

/// Ethernet II, or IEEE 802.3 with an LLC/SNAP header.
pub(super) fn ethernet<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    let kind = be16(d, 12)?;
    let rest = d.get(14..)?;
    match kind {
        0x0600.. => ethertype(kind, rest, w),
        // A length: 802.2 LLC follows.
        ..=0x05dc => {
            let (kind, rest) = snap(rest)?;
            ethertype(kind, rest, w)
        }
        _ => None,
    }
}

/// An 802.2 LLC header with SNAP carrying an EtherType (RFC 1042, or
/// 802.1H bridge tunnelling): the EtherType and what follows.
fn snap(d: &[u8]) -> Option<(u16, &[u8])> {
    match d.get(..6)? {
        [0xaa, 0xaa, 0x03, 0, 0, 0] | [0xaa, 0xaa, 0x03, 0, 0, 0xf8] => {
            Some((be16(d, 6)?, d.get(8..)?))
        }
        _ => None,
    }
}

/// Follows an EtherType through VLAN tags (802.1Q, 802.1ad, old QinQ),
/// PPPoE sessions and MPLS label stacks to an IP packet. After a label stack
/// comes IP (by its version nibble) or, as Wireshark guesses too, an
/// Ethernet pseudowire with a control word (first nibble 0).
pub(super) fn ethertype<'a>(mut kind: u16, mut rest: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    for _ in 0..16 {
        match kind {
            0x0800 => return Some(rest),
            0x86dd => return ipv6_only(rest),
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => {
                w.tag(be16(rest, 0)? & 0x0fff);
                kind = be16(rest, 2)?;
                rest = rest.get(4..)?;
            }
            0x8864 => return pppoe_session(rest, w),
            0x8847 | 0x8848 => {
                loop {
                    let entry = rest.get(..4)?;
                    rest = &rest[4..];
                    if entry[2] & 1 == 1 {
                        break;
                    }
                }
                match rest.first()? >> 4 {
                    4 | 6 => return Some(rest),
                    0 => {
                        w.deeper()?;
                        return ethernet(rest.get(4..)?, w);
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    None
}

/// PPP: an optional `ff 03` address and control, then the protocol.
pub(super) fn ppp<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    match d.get(..2)? {
        [0xff, 0x03] => ppp_protocol(&d[2..], w),
        _ => ppp_protocol(d, w),
    }
}

/// A PPP protocol field (one byte when compressed: odd first byte) and
/// what follows it.
pub(super) fn ppp_protocol<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    let (protocol, rest) = match *d.first()? {
        b if b & 1 == 1 => (b as u16, &d[1..]),
        _ => (be16(d, 0)?, d.get(2..)?),
    };
    let kind = match protocol {
        0x0021 => 0x0800,
        0x0057 => 0x86dd,
        0x0281 => 0x8847,
        0x0283 => 0x8848,
        _ => return None,
    };
    ethertype(kind, rest, w)
}

/// A PPPoE session header (6 bytes), then PPP's protocol field.
fn pppoe_session<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    ppp_protocol(d.get(6..)?, w)
}

/// Cisco HDLC: address, control, EtherType.
fn c_hdlc<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    ethertype(be16(d, 2)?, d.get(4..)?, w)
}

/// Linux cooked v1: the protocol field is an EtherType, or 4 for 802.2 LLC.
fn sll<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    let rest = d.get(16..)?;
    match be16(d, 14)? {
        4 => {
            let (kind, rest) = snap(rest)?;
            ethertype(kind, rest, w)
        }
        kind => ethertype(kind, rest, w),
    }
}

/// Linux cooked v2: the protocol field comes first.
fn sll2<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    let rest = d.get(20..)?;
    match be16(d, 0)? {
        4 => {
            let (kind, rest) = snap(rest)?;
            ethertype(kind, rest, w)
        }
        kind => ethertype(kind, rest, w),
    }
}

/// IEEE 802.11: data frames that are not protected, through LLC/SNAP (the
/// first subframe of an A-MSDU).
fn ieee802_11<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    let (fc, flags) = (*d.first()?, *d.get(1)?);
    let (version, kind, subtype) = (fc & 3, (fc >> 2) & 3, fc >> 4);
    // Data frames only; subtypes with bit 2 set carry no data; protected
    // frames are encrypted.
    if version != 0 || kind != 2 || subtype & 0x4 != 0 || flags & 0x40 != 0 {
        return None;
    }
    let mut len = 24;
    if flags & 0x03 == 0x03 {
        len += 6; // the fourth address (to and from the DS)
    }
    let mut amsdu = false;
    if subtype & 0x8 != 0 {
        amsdu = d.get(len)? & 0x80 != 0;
        len += 2; // QoS control
        if flags & 0x80 != 0 {
            len += 4; // HT control
        }
    }
    let mut body = d.get(len..)?;
    if amsdu {
        body = body.get(14..)?; // the first subframe's DA, SA and length
    }
    let (kind, rest) = snap(body)?;
    ethertype(kind, rest, w)
}

/// Radiotap: a little-endian length, then an 802.11 frame.
fn radiotap<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    if *d.first()? != 0 {
        return None;
    }
    ieee802_11(d.get(le16(d, 2)? as usize..)?, w)
}

/// PPI: a little-endian length and the link type of what follows.
fn ppi<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    if *d.first()? != 0 {
        return None;
    }
    let inner = LinkType(u16::try_from(le32(d, 4)?).ok()?);
    frame(inner, d.get(le16(d, 2)? as usize..)?, w)
}

/// Apple PKTAP: a little-endian header length and the link type (a DLT
/// value; the common ones equal their link types) of what follows.
fn pktap<'a>(d: &'a [u8], w: &mut Walk) -> Option<&'a [u8]> {
    let inner = LinkType(u16::try_from(le32(d, 4)?).ok()?);
    frame(inner, d.get(le32(d, 0)? as usize..)?, w)
}

/// Marvell DSA (4-byte tag at 12) or EDSA (EtherType, 2 reserved bytes and
/// the tag, at 12); `type_at` is where the frame's EtherType is. A tag
/// whose "tagged" bit is set stands for the 802.1Q tag the frame had.
fn dsa<'a>(d: &'a [u8], type_at: usize, w: &mut Walk) -> Option<&'a [u8]> {
    let tag = d.get(type_at - 4..type_at)?;
    if tag[0] & 0x20 != 0 {
        w.tag(u16::from_be_bytes([tag[2] & 0x0f, tag[3]]));
    }
    ethertype(be16(d, type_at)?, d.get(type_at + 2..)?, w)
}

/// Linux ARCnet: source, destination, offset, protocol; the RFC 1201
/// protocols add a split flag and a sequence number.
fn arcnet_linux(d: &[u8]) -> Option<&[u8]> {
    match *d.get(4)? {
        240 => d.get(5..),        // IP, RFC 1051
        212 | 0xc4 => d.get(8..), // IP and IPv6, RFC 1201
        _ => None,
    }
}

/// Linux NFLOG: address family, version, resource id, then TLVs in the
/// capturing host's byte order (told by the first TLV's type, which is
/// small); the payload TLV (type 9) holds the packet.
fn nflog(d: &[u8]) -> Option<&[u8]> {
    if !matches!(d.first()?, 2 | 10) {
        return None;
    }
    let little = le16(d, 6)? & 0x7fff < 0x100;
    let read = |at: usize| {
        if little { le16(d, at) } else { be16(d, at) }
    };
    let mut at = 4;
    while at + 4 <= d.len() {
        let len = read(at)? as usize;
        if len < 4 {
            return None;
        }
        if read(at + 2)? & 0x7fff == 9 {
            return d.get(at + 4..at + len);
        }
        at += (len + 3) & !3;
    }
    None
}

//! Just enough header decoding to know a packet's addresses, protocol and
//! ports: what `top` counts and what flows are keyed by.
//!
//! Link layers: Ethernet (with 802.1Q VLAN and 802.1ad QinQ tags, and MPLS
//! label stacks), Linux "cooked" SLL and SLL2, BSD NULL and OpenBSD LOOP,
//! and raw IPv4/IPv6.
//! Network and transport layers are sliced by [`etherparse`], leniently:
//! a packet cut short by the snapshot length still gives its addresses, as
//! in tcpdump and Wireshark. Only the outermost IP header is looked at;
//! tunnels are not decapsulated.
//!
//! ```
//! use pcap_parallel::{LinkType, decode};
//! // A raw IPv4 UDP datagram from 192.0.2.1:53 to 198.51.100.7:4444.
//! let pkt = [
//!     0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
//!     0, 53, 0x11, 0x5c, 0, 8, 0, 0,
//! ];
//! let ip = decode::ip(LinkType::RAW, &pkt).unwrap();
//! assert_eq!(ip.src.to_string(), "192.0.2.1");
//! assert_eq!(ip.protocol, 17);
//! assert_eq!(ip.ports, Some((53, 4444)));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::LaxIpSlice;

use crate::packet::LinkType;

/// A fragment of an IP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// The datagram's identification (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
    /// Offset of this fragment in the datagram, in 8-byte units.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

/// The outermost IP header of a packet, and its ports where it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ip {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The protocol of the IP payload (after IPv6 extension headers).
    pub protocol: u8,
    /// Set when the packet is a fragment (offset > 0 or more fragments).
    pub fragment: Option<Fragment>,
    /// Source and destination ports, for TCP, UDP, UDP-Lite, DCCP and SCTP
    /// when the transport header's first four bytes are present (not in
    /// non-first fragments).
    pub ports: Option<(u16, u16)>,
}

/// The name of an IP protocol number, as tcpdump prints it, where common.
pub fn protocol_name(p: u8) -> Option<&'static str> {
    Some(match p {
        0 => "hopopt",
        1 => "icmp",
        2 => "igmp",
        4 => "ipip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        43 => "ipv6-route",
        44 => "ipv6-frag",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "icmp6",
        59 => "ipv6-nonxt",
        60 => "ipv6-opts",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}

/// Follows an EtherType through VLAN tags (802.1Q, 802.1ad, old QinQ)
/// and MPLS label stacks to an IP packet. After a label stack comes IP (by
/// its version nibble) or, as Wireshark guesses too, an Ethernet
/// pseudowire with a control word (first nibble 0).
fn ether_payload(mut ether_type: u16, mut rest: &[u8]) -> Option<&[u8]> {
    for _ in 0..16 {
        match ether_type {
            0x0800 | 0x86dd => return Some(rest),
            0x8100 | 0x88a8 | 0x9100 if rest.len() >= 4 => {
                ether_type = u16::from_be_bytes([rest[2], rest[3]]);
                rest = &rest[4..];
            }
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
                    0 if rest.len() >= 18 => {
                        ether_type = u16::from_be_bytes([rest[16], rest[17]]);
                        rest = &rest[18..];
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    None
}

/// The IP packet inside a frame of link type `link`, if there is one.
fn ip_packet(link: LinkType, data: &[u8]) -> Option<&[u8]> {
    match link {
        LinkType::ETHERNET if data.len() >= 14 => {
            ether_payload(u16::from_be_bytes([data[12], data[13]]), &data[14..])
        }
        LinkType::LINUX_SLL if data.len() >= 16 => {
            ether_payload(u16::from_be_bytes([data[14], data[15]]), &data[16..])
        }
        LinkType::LINUX_SLL2 if data.len() >= 20 => {
            ether_payload(u16::from_be_bytes([data[0], data[1]]), &data[20..])
        }
        LinkType::NULL | LinkType::LOOP if data.len() >= 4 => {
            // The address family, in the byte order of the capturing host
            // (NULL) or in network order (LOOP): accept either.
            let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            // AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 depending on the BSD.
            matches!(le.min(be), 2 | 24 | 28 | 30).then_some(&data[4..])
        }
        LinkType::RAW | LinkType::RAW_DLT12 | LinkType(14) | LinkType::IPV4 | LinkType::IPV6 => {
            Some(data)
        }
        _ => None,
    }
}

/// The outermost IP header of a packet of link type `link`, if it has one.
pub fn ip(link_type: LinkType, data: &[u8]) -> Option<Ip> {
    // Only the IP layer is sliced: ports come from the first bytes of the payload.
    let (sliced, stopped) = LaxIpSlice::from_slice(ip_packet(link_type, data)?).ok()?;
    let (src, dst, protocol, fragment, payload) = match sliced {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let fragment =
                (h.more_fragments() || h.fragments_offset().value() != 0).then(|| Fragment {
                    id: h.identification() as u32,
                    offset: h.fragments_offset().value(),
                    more: h.more_fragments(),
                });
            let p = v4.payload();
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                p.ip_number.0,
                fragment,
                p.payload,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let mut fragment = None;
            // Only walk extension headers that were all parsed: etherparse
            // 0.21's iterator reads past the end of a chain cut short (out of
            // bounds, undefined behaviour), which our fuzzing found.
            let exts = if stopped.is_none() {
                v6.extensions().clone().into_iter()
            } else {
                etherparse::Ipv6ExtensionSliceIter::default()
            };
            for ext in exts {
                if let etherparse::Ipv6ExtensionSlice::Fragment(f) = ext
                    && f.is_fragmenting_payload()
                {
                    fragment = Some(Fragment {
                        id: f.identification(),
                        offset: f.fragment_offset().value(),
                        more: f.more_fragments(),
                    });
                }
            }
            let p = v6.payload();
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                p.ip_number.0,
                fragment,
                p.payload,
            )
        }
    };
    let first_fragment = fragment.is_none_or(|f| f.offset == 0);
    let ports = (matches!(protocol, 6 | 17 | 33 | 132 | 136)
        && first_fragment
        && payload.len() >= 4)
        .then(|| {
            (
                u16::from_be_bytes([payload[0], payload[1]]),
                u16::from_be_bytes([payload[2], payload[3]]),
            )
        });
    Some(Ip {
        src,
        dst,
        protocol,
        fragment,
        ports,
    })
}

/// For an ICMP or ICMPv6 error message (destination unreachable, time
/// exceeded, parameter problem, source quench, redirect, packet too big),
/// the header of the datagram it quotes.
pub fn icmp_quoted(link_type: LinkType, data: &[u8]) -> Option<Ip> {
    let (sliced, _) = LaxIpSlice::from_slice(ip_packet(link_type, data)?).ok()?;
    let payload = match &sliced {
        LaxIpSlice::Ipv4(v4) => v4.payload(),
        LaxIpSlice::Ipv6(v6) => v6.payload(),
    };
    if payload.fragmented {
        return None;
    }
    let body = payload.payload;
    let icmp_type = *body.first()?;
    let is_error = match payload.ip_number.0 {
        1 => matches!(icmp_type, 3 | 4 | 5 | 11 | 12),
        58 => matches!(icmp_type, 1..=4),
        _ => false,
    };
    if !is_error {
        return None;
    }
    ip(LinkType::RAW, body.get(8..)?)
}

/// Only the source and destination addresses of the outermost IP header:
/// the same as [`ip`]'s, without looking further (much faster when that is
/// all that is needed).
#[inline]
pub fn addresses(link_type: LinkType, data: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let packet = ip_packet(link_type, data)?;
    match packet.first()? >> 4 {
        4 => {
            let h = etherparse::Ipv4HeaderSlice::from_slice(packet).ok()?;
            Some((h.source_addr().into(), h.destination_addr().into()))
        }
        6 => {
            let h = etherparse::Ipv6HeaderSlice::from_slice(packet).ok()?;
            Some((h.source_addr().into(), h.destination_addr().into()))
        }
        _ => None,
    }
}

/// The link-layer source and destination addresses, for link types that
/// have them (Ethernet MACs; the SLL/SLL2 source address with an empty
/// destination).
pub fn link_addresses(link_type: LinkType, data: &[u8]) -> Option<(&[u8], &[u8])> {
    match link_type {
        LinkType::ETHERNET if data.len() >= 12 => Some((&data[6..12], &data[0..6])),
        LinkType::LINUX_SLL if data.len() >= 16 => {
            let n = (u16::from_be_bytes([data[4], data[5]]) as usize).min(8);
            Some((&data[6..6 + n], &[]))
        }
        LinkType::LINUX_SLL2 if data.len() >= 20 => {
            let n = (data[11] as usize).min(8);
            Some((&data[12..12 + n], &[]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_and_qinq_ethernet() {
        let ip = [
            0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 80,
        ];
        let mut single = vec![0u8; 12];
        single.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
        single.extend_from_slice(&ip);
        let mut double = vec![0u8; 12];
        double.extend_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00]);
        double.extend_from_slice(&ip);
        for frame in [single, double] {
            let d = super::ip(LinkType::ETHERNET, &frame).unwrap();
            assert_eq!(d.dst.to_string(), "10.0.0.2");
            assert_eq!(d.ports, Some((12345, 80)));
        }
    }

    /// Found by fuzzing: an IPv6 extension chain cut short made etherparse
    /// 0.21 read out of bounds.
    #[test]
    fn a_cut_short_ipv6_extension_chain() {
        let data = [
            96, 0, 77, 0, 0, 0, 0, 0, 0, 0, 178, 161, 4, 246, 0, 0, 0, 0, 0, 0, 4, 65, 0, 16, 6, 7,
            212, 195, 178, 161, 4, 246, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 128, 0, 4, 0, 1, 128, 0, 0,
            48, 48, 128, 0, 0, 0, 48, 0, 4, 0, 1, 128, 0, 4, 0, 1, 128, 0, 0, 48, 48, 128, 0, 0, 0,
            48, 0,
        ];
        for lt in [LinkType::RAW, LinkType::IPV6, LinkType::ETHERNET] {
            let _ = ip(lt, &data);
        }
    }

    #[test]
    fn null_loopback_in_either_byte_order() {
        let mut v = 2u32.to_le_bytes().to_vec();
        v.extend_from_slice(&[
            0x45, 0, 0, 20, 0, 0, 0x20, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ]);
        let d = ip(LinkType::NULL, &v).unwrap();
        assert_eq!(d.src.to_string(), "1.2.3.4");
        assert_eq!(
            d.fragment,
            Some(Fragment {
                id: 0,
                offset: 0,
                more: true
            })
        );
        v[..4].copy_from_slice(&2u32.to_be_bytes());
        assert!(ip(LinkType::NULL, &v).is_some());
    }
}

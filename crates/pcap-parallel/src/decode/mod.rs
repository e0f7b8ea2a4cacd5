//! Decoding the headers of a packet: the one per-packet decoder that `top`,
//! flow sharding ([`crate::flow`]) and packet tables use.
//!
//! [`headers`] walks a frame from its link layer to the first IP header and
//! reports the outermost VLAN id, the IP header's fields (addresses,
//! protocol, TTL or hop limit, identification, fragment flags and offset),
//! the ports of TCP, UDP, UDP-Lite, DCCP and SCTP, and TCP's flags:
//! exactly what Wireshark shows as the first `ip`/`ipv6` layer, `vlan.id`,
//! `tcp.flags` and the ports after it, with defragmentation off. Nothing is
//! copied: the IP payload is a slice of the packet.
//!
//! **Link layers**: Ethernet (Ethernet II and 802.3 with LLC/SNAP) with
//! 802.1Q/802.1ad/QinQ tags, MPLS label stacks (and Ethernet pseudowires
//! after them) and PPPoE sessions; raw IPv4/IPv6 (link types 101, 12, 14,
//! 228, 229); BSD NULL and OpenBSD LOOP; Linux cooked SLL and SLL2; PPP
//! (9, 50, 51, 166, 204), Cisco HDLC (104, 205); IEEE 802.11 data frames
//! (105), behind radiotap (127) or PPI (192, which may also carry
//! Ethernet); Marvell DSA and EDSA (284, 285) and Broadcom tags (281, 282);
//! Apple PKTAP (258); Linux NFLOG (239); Linux ARCnet (129); IP over
//! InfiniBand (242); MPLS as the link layer (219). Other link types decode
//! to nothing, never to a guess. [`crate::LinkType::name`] names them all.
//!
//! **Tunnels** are not entered unless asked for: by default the first IP
//! header is the outermost (tshark's first IP layer). [`Tunnels::Gre`]
//! follows GRE (IP, Ethernet, ERSPAN I–III, PPTP's PPP) to the IP header
//! inside.
//!
//! A packet cut short by the snapshot length still gives what it holds
//! (its addresses, say, without ports), as in tcpdump and Wireshark.
//!
//! ```
//! use pcap_parallel::{LinkType, decode};
//! // A raw IPv4 TCP SYN from 192.0.2.1:53 to 198.51.100.7:4444.
//! let pkt = [
//!     0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
//!     0, 53, 0x11, 0x5c, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
//! ];
//! let h = decode::headers(LinkType::RAW, &pkt);
//! let ip = h.ip.unwrap();
//! assert_eq!(ip.src.to_string(), "192.0.2.1");
//! assert_eq!((ip.version(), ip.protocol, ip.ttl), (4, 6, 64));
//! assert_eq!(ip.ports, Some((53, 4444)));
//! assert!(ip.tcp_flags.is_some_and(|f| f & decode::tcp::SYN != 0));
//! assert!(ip.fragmentation.unwrap().dont_fragment());
//! assert_eq!(h.vlan, None);
//! ```

mod ip;
mod link;

use std::net::IpAddr;

use crate::packet::LinkType;

/// The IP header's fragmentation fields: IPv4's, or those of an IPv6
/// fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragmentation {
    /// The datagram's identification (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
    /// Flags as Wireshark's `ip.flags`: 0x4 reserved, 0x2 don't fragment,
    /// 0x1 more fragments (IPv6: only 0x1, the M flag).
    pub flags: u8,
    /// Offset of this fragment in the datagram, in 8-byte units.
    pub offset: u16,
}

impl Fragmentation {
    /// The more-fragments flag.
    pub fn more_fragments(&self) -> bool {
        self.flags & 0x1 != 0
    }

    /// The don't-fragment flag (IPv4).
    pub fn dont_fragment(&self) -> bool {
        self.flags & 0x2 != 0
    }

    /// True for a fragment of a larger datagram: more fragments follow, or
    /// it is not the first.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.offset != 0
    }
}

/// An IP header, and the ports and TCP flags after it where it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ip {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The protocol of the IP payload: IPv4's protocol field; for IPv6 the
    /// next header after the hop-by-hop, routing, fragment and destination
    /// options headers (AH and ESP are protocols of their own).
    pub protocol: u8,
    /// Time to live (IPv4), hop limit (IPv6).
    pub ttl: u8,
    /// Identification, flags and fragment offset: always there for IPv4,
    /// for IPv6 only with a fragment header.
    pub fragmentation: Option<Fragmentation>,
    /// Source and destination ports, for TCP, UDP, UDP-Lite, DCCP and SCTP
    /// when the transport header's first four bytes are present (never in
    /// non-first fragments).
    pub ports: Option<(u16, u16)>,
    /// TCP's 12 flag bits (as Wireshark's `tcp.flags`; see [`tcp`]), when
    /// its bytes are present.
    pub tcp_flags: Option<u16>,
}

impl Ip {
    /// 4 or 6.
    pub fn version(&self) -> u8 {
        match self.src {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 6,
        }
    }

    /// The fragmentation fields when the packet is a fragment of a larger
    /// datagram (see [`Fragmentation::is_fragment`]).
    pub fn fragment(&self) -> Option<Fragmentation> {
        self.fragmentation.filter(Fragmentation::is_fragment)
    }
}

/// TCP flag bits, as in [`Ip::tcp_flags`].
///
/// ```
/// # use pcap_parallel::{LinkType, decode};
/// # let data = [0u8; 0];
/// // SYNs without ACK, IPv4 and IPv6 alike: no filter needed.
/// let syn = decode::ip(LinkType::ETHERNET, &data)
///     .and_then(|ip| ip.tcp_flags)
///     .is_some_and(|f| f & (decode::tcp::SYN | decode::tcp::ACK) == decode::tcp::SYN);
/// # assert!(!syn);
/// ```
pub mod tcp {
    /// No more data from sender.
    pub const FIN: u16 = 0x001;
    /// Synchronise sequence numbers.
    pub const SYN: u16 = 0x002;
    /// Reset the connection.
    pub const RST: u16 = 0x004;
    /// Push.
    pub const PSH: u16 = 0x008;
    /// The acknowledgment field is significant.
    pub const ACK: u16 = 0x010;
    /// The urgent pointer is significant.
    pub const URG: u16 = 0x020;
    /// ECN echo.
    pub const ECE: u16 = 0x040;
    /// Congestion window reduced.
    pub const CWR: u16 = 0x080;
    /// Accurate ECN (formerly the ECN nonce, NS).
    pub const AE: u16 = 0x100;
}

/// Which tunnels decoding enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tunnels {
    /// None: the first IP header is the outermost one.
    #[default]
    Outer,
    /// GRE: the IP header reported is the one inside GRE (IP, Ethernet,
    /// ERSPAN or PPTP's PPP), through up to four nested tunnels.
    Gre,
}

/// How to decode: the tunnels to enter. `Decoder::default()` is what
/// [`headers`] uses.
///
/// ```
/// use pcap_parallel::decode::{Decoder, Tunnels};
/// let through_gre = Decoder::default().tunnels(Tunnels::Gre);
/// # let _ = through_gre;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoder {
    tunnels: Tunnels,
}

/// At most this many GRE tunnels are entered.
const MAX_TUNNELS: u8 = 4;

impl Decoder {
    /// Which tunnels to enter (default: [`Tunnels::Outer`]).
    pub const fn tunnels(mut self, tunnels: Tunnels) -> Self {
        self.tunnels = tunnels;
        self
    }

    /// The headers of a packet of link type `link_type`.
    pub fn headers<'a>(&self, link_type: LinkType, data: &'a [u8]) -> Headers<'a> {
        let mut walk = link::Walk::default();
        let found = link::frame(link_type, data, &mut walk).and_then(ip::parse);
        let mut headers = Headers {
            vlan: None,
            ip: None,
            ip_payload: &[],
            tunnels: 0,
            link_type,
            frame: data,
        };
        if let Some((mut ip, mut payload)) = found {
            while self.tunnels == Tunnels::Gre
                && ip.protocol == 47
                && ip.fragmentation.is_none_or(|f| f.offset == 0)
                && headers.tunnels < MAX_TUNNELS
            {
                let inner = match ip::gre(payload) {
                    Some(ip::GrePayload::EtherType(kind, body)) => {
                        link::ethertype(kind, body, &mut walk)
                    }
                    Some(ip::GrePayload::Ethernet(body)) => link::ethernet(body, &mut walk),
                    Some(ip::GrePayload::Ppp(body)) => link::ppp(body, &mut walk),
                    None => None,
                };
                let Some((i, p)) = inner.and_then(ip::parse) else {
                    break;
                };
                (ip, payload) = (i, p);
                headers.tunnels += 1;
            }
            headers.ip = Some(ip);
            headers.ip_payload = payload;
        }
        headers.vlan = walk.vlan;
        headers
    }
}

/// What [`headers`] finds in a packet. Borrows the packet's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    /// The outermost VLAN id (802.1Q, 802.1ad or QinQ tag, or the tag a
    /// Marvell DSA header stands for) met on the way to the IP header, or
    /// in a frame without IP.
    pub vlan: Option<u16>,
    /// The IP header, if one was found.
    pub ip: Option<Ip>,
    /// The IP payload from the transport header on (after IPv6 extension
    /// headers), as captured and within the datagram's stated length.
    /// Empty without IP.
    pub ip_payload: &'a [u8],
    /// How many GRE tunnels were entered to reach `ip` (see [`Tunnels`]).
    pub tunnels: u8,
    link_type: LinkType,
    frame: &'a [u8],
}

impl<'a> Headers<'a> {
    /// The link type the packet was decoded as.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// The whole packet.
    pub fn frame(&self) -> &'a [u8] {
        self.frame
    }

    /// For an ICMP or ICMPv6 error message (destination unreachable, time
    /// exceeded, parameter problem, source quench, redirect, packet too
    /// big), the header of the datagram it quotes.
    pub fn icmp_quoted(&self) -> Option<Ip> {
        let ip = self.ip.as_ref()?;
        if ip.fragment().is_some() {
            return None;
        }
        let kind = *self.ip_payload.first()?;
        let is_error = match ip.protocol {
            1 => matches!(kind, 3 | 4 | 5 | 11 | 12),
            58 => matches!(kind, 1..=4),
            _ => false,
        };
        if !is_error {
            return None;
        }
        ip::parse(self.ip_payload.get(8..)?).map(|(ip, _)| ip)
    }

    /// The link-layer source and destination addresses; see
    /// [`link_addresses`].
    pub fn link_addresses(&self) -> Option<(&'a [u8], &'a [u8])> {
        link_addresses(self.link_type, self.frame)
    }
}

/// The headers of a packet of link type `link_type`, tunnels not entered
/// (see [`Decoder`] for GRE).
pub fn headers(link_type: LinkType, data: &[u8]) -> Headers<'_> {
    Decoder::default().headers(link_type, data)
}

/// The first IP header of a packet of link type `link_type`, if it has one.
pub fn ip(link_type: LinkType, data: &[u8]) -> Option<Ip> {
    headers(link_type, data).ip
}

/// For an ICMP or ICMPv6 error message, the header of the datagram it
/// quotes; see [`Headers::icmp_quoted`].
pub fn icmp_quoted(link_type: LinkType, data: &[u8]) -> Option<Ip> {
    headers(link_type, data).icmp_quoted()
}

/// Only the source and destination addresses of the first IP header: the
/// same as [`ip`]'s, without looking further (much faster when that is all
/// that is needed).
#[inline]
pub fn addresses(link_type: LinkType, data: &[u8]) -> Option<(IpAddr, IpAddr)> {
    ip::addresses(link::frame(link_type, data, &mut link::Walk::default())?)
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
        33 => "dccp",
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
            let h = headers(LinkType::ETHERNET, &frame);
            let d = h.ip.unwrap();
            assert_eq!(d.dst.to_string(), "10.0.0.2");
            assert_eq!(d.ports, Some((12345, 80)));
            assert_eq!(h.vlan, Some(5), "the outermost tag");
            assert_eq!(d.tcp_flags, None, "the TCP header is cut short");
        }
    }

    /// Found by fuzzing (when etherparse 0.21 sliced the IP layer, its
    /// iterator read out of bounds): an IPv6 extension chain cut short.
    #[test]
    fn a_cut_short_ipv6_extension_chain() {
        let data = [
            96, 0, 77, 0, 0, 0, 0, 0, 0, 0, 178, 161, 4, 246, 0, 0, 0, 0, 0, 0, 4, 65, 0, 16, 6, 7,
            212, 195, 178, 161, 4, 246, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 128, 0, 4, 0, 1, 128, 0, 0,
            48, 48, 128, 0, 0, 0, 48, 0, 4, 0, 1, 128, 0, 4, 0, 1, 128, 0, 0, 48, 48, 128, 0, 0, 0,
            48, 0,
        ];
        // Hop-by-hop headers, then protocol 48 whose header is not captured.
        let ip = ip(LinkType::RAW, &data).unwrap();
        assert_eq!((ip.protocol, ip.ports), (48, None));
        assert_eq!(super::ip(LinkType::ETHERNET, &data), None);
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
            d.fragment(),
            Some(Fragmentation {
                id: 0,
                flags: 1,
                offset: 0,
            })
        );
        v[..4].copy_from_slice(&2u32.to_be_bytes());
        assert!(ip(LinkType::NULL, &v).is_some());
    }
}

//! The same traffic under other link layers: Ethernet frames re-wrapped as
//! IEEE 802.11 data frames (plain, QoS, four-address, HT control), behind
//! radiotap or PPI, as Marvell DSA/EDSA or Broadcom-tagged frames, as PPPoE
//! sessions, PPP, or inside GRE tunnels. Decoders are tested on these
//! against tshark and tcpdump, since real captures of every link type are
//! hard to come by.
//!
//! ```
//! use pcap_synth::{Synth, encap::{Encapsulation, pcap_file}};
//! let mut synth = Synth::new(1);
//! let records: Vec<_> = (0..10u64)
//!     .map(|i| {
//!         let (ts, frame) = synth.next_frame();
//!         (ts, Encapsulation::Radiotap.wrap(&frame, i))
//!     })
//!     .collect();
//! let file = pcap_file(Encapsulation::Radiotap.link_type(), &records);
//! assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), 127);
//! ```

/// A link layer to put an Ethernet frame's payload under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// IEEE 802.11 data frames with LLC/SNAP (link type 105).
    Ieee80211,
    /// 802.11 behind a radiotap header (127).
    Radiotap,
    /// 802.11 behind a PPI header (192).
    Ppi80211,
    /// The Ethernet frame behind a PPI header (192).
    PpiEthernet,
    /// Marvell DSA: a 4-byte tag after the source address (284).
    Dsa,
    /// Marvell EDSA: an 8-byte tag after the source address (285).
    Edsa,
    /// Broadcom: a 4-byte tag after the source address (281).
    BroadcomTag,
    /// Ethernet with a PPPoE session (1).
    Pppoe,
    /// PPP in HDLC-like framing (9).
    Ppp,
    /// IPv4 GRE carrying the IP packet (1, Ethernet outside).
    GreIp,
    /// IPv4 GRE carrying the whole Ethernet frame (transparent bridging).
    GreEthernet,
    /// ERSPAN type II (GRE with an 8-byte header) carrying the frame.
    Erspan2,
}

impl Encapsulation {
    /// Every encapsulation.
    pub const ALL: [Encapsulation; 12] = [
        Encapsulation::Ieee80211,
        Encapsulation::Radiotap,
        Encapsulation::Ppi80211,
        Encapsulation::PpiEthernet,
        Encapsulation::Dsa,
        Encapsulation::Edsa,
        Encapsulation::BroadcomTag,
        Encapsulation::Pppoe,
        Encapsulation::Ppp,
        Encapsulation::GreIp,
        Encapsulation::GreEthernet,
        Encapsulation::Erspan2,
    ];

    /// The link type of the wrapped frames.
    pub fn link_type(self) -> u16 {
        match self {
            Encapsulation::Ieee80211 => 105,
            Encapsulation::Radiotap => 127,
            Encapsulation::Ppi80211 | Encapsulation::PpiEthernet => 192,
            Encapsulation::Dsa => 284,
            Encapsulation::Edsa => 285,
            Encapsulation::BroadcomTag => 281,
            Encapsulation::Ppp => 9,
            Encapsulation::Pppoe
            | Encapsulation::GreIp
            | Encapsulation::GreEthernet
            | Encapsulation::Erspan2 => 1,
        }
    }

    /// `frame` (an Ethernet II frame, possibly VLAN-tagged) under this link
    /// layer; `n` varies the details (802.11 frame subtypes and address
    /// layouts, DSA modes, PPP protocol compression) from frame to frame.
    pub fn wrap(self, frame: &[u8], n: u64) -> Vec<u8> {
        let (dst, src) = (&frame[0..6], &frame[6..12]);
        let (vlan_tci, ethertype, payload) = untag(frame);
        match self {
            Encapsulation::Ieee80211 => wifi(frame, n),
            Encapsulation::Radiotap => {
                let mut out = if n.is_multiple_of(2) {
                    vec![0, 0, 8, 0, 0, 0, 0, 0]
                } else {
                    // With a TSFT field (bit 0): 8 more bytes.
                    let mut h = vec![0, 0, 16, 0, 1, 0, 0, 0];
                    h.extend_from_slice(&n.to_le_bytes());
                    h
                };
                out.extend_from_slice(&wifi(frame, n));
                out
            }
            Encapsulation::Ppi80211 => ppi(105, &wifi(frame, n)),
            Encapsulation::PpiEthernet => ppi(1, frame),
            Encapsulation::Dsa | Encapsulation::Edsa => {
                // The switch replaces an 802.1Q tag by its own, "tagged".
                let mode = [0x00u8, 0x40, 0x80, 0xc0][(n % 4) as usize]; // to CPU .. forward
                let (tagged, tci) = match vlan_tci {
                    Some(tci) => (0x20, tci),
                    None => (0, (n % 4096) as u16),
                };
                let tag = [
                    mode | tagged | 3,
                    ((n % 8) as u8) << 3,
                    ((tci >> 8) as u8 & 0xef) | (0x10 * (n % 2) as u8),
                    tci as u8,
                ];
                let mut out = [dst, src].concat();
                if self == Encapsulation::Edsa {
                    out.extend_from_slice(&[0xda, 0xda, 0, 0]);
                }
                out.extend_from_slice(&tag);
                out.extend_from_slice(&ethertype.to_be_bytes());
                out.extend_from_slice(payload);
                out
            }
            Encapsulation::BroadcomTag => {
                let mut out = [dst, src, &[0x20, 0, 0, (n % 8) as u8]].concat();
                out.extend_from_slice(&frame[12..]);
                out
            }
            Encapsulation::Pppoe => {
                let Some(protocol) = ppp_protocol(ethertype) else {
                    return frame.to_vec();
                };
                let mut out = [dst, src].concat();
                if let Some(tci) = vlan_tci {
                    out.extend_from_slice(&[0x81, 0, (tci >> 8) as u8, tci as u8]);
                }
                out.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x12, 0x34]);
                out.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
                out.extend_from_slice(&protocol.to_be_bytes());
                out.extend_from_slice(payload);
                out
            }
            Encapsulation::Ppp => {
                let mut out = vec![0xff, 0x03];
                match ppp_protocol(ethertype) {
                    // Protocol-field compression on every other frame.
                    Some(p) if n % 2 == 1 => out.push(p as u8),
                    Some(p) => out.extend_from_slice(&p.to_be_bytes()),
                    None => out.extend_from_slice(&[0xc0, 0x21]), // LCP
                }
                out.extend_from_slice(payload);
                out
            }
            Encapsulation::GreIp => {
                let (kind, packet) = innermost(frame);
                gre(frame, kind, packet, n)
            }
            Encapsulation::GreEthernet => gre(frame, 0x6558, frame, n),
            Encapsulation::Erspan2 => {
                let mut body = vec![0x10, (n % 4096) as u8, 0, 0, 0, 0, 0, 0];
                body.extend_from_slice(frame);
                gre(frame, 0x88be, &body, n | 1)
            }
        }
    }
}

/// An Ethernet frame's 802.1Q tag (its TCI, if any), EtherType and payload.
fn untag(frame: &[u8]) -> (Option<u16>, u16, &[u8]) {
    let kind = u16::from_be_bytes([frame[12], frame[13]]);
    if kind == 0x8100 && frame.len() >= 18 {
        let tci = u16::from_be_bytes([frame[14], frame[15]]);
        (
            Some(tci),
            u16::from_be_bytes([frame[16], frame[17]]),
            &frame[18..],
        )
    } else {
        (None, kind, &frame[14..])
    }
}

/// The EtherType and payload under all of an Ethernet frame's VLAN tags.
fn innermost(frame: &[u8]) -> (u16, &[u8]) {
    let mut at = 12;
    loop {
        let kind = u16::from_be_bytes([frame[at], frame[at + 1]]);
        match kind {
            0x8100 | 0x88a8 | 0x9100 if frame.len() >= at + 6 => at += 4,
            _ => return (kind, &frame[at + 2..]),
        }
    }
}

fn ppp_protocol(ethertype: u16) -> Option<u16> {
    match ethertype {
        0x0800 => Some(0x0021),
        0x86dd => Some(0x0057),
        _ => None,
    }
}

/// An 802.11 data frame carrying the Ethernet frame's payload through
/// LLC/SNAP, its type kept (so a VLAN tag stays inside).
fn wifi(frame: &[u8], n: u64) -> Vec<u8> {
    let (dst, src) = (&frame[0..6], &frame[6..12]);
    let bssid = [0x02, 0x11, 0x22, 0x33, 0x44, (n % 7) as u8];
    // Vary: to the AP, from the AP, a four-address (WDS) frame; plain or
    // QoS data; with HT control on some QoS frames.
    let (ds, addrs): (u8, Vec<&[u8]>) = match n % 3 {
        0 => (0x01, vec![&bssid, src, dst]),
        1 => (0x02, vec![dst, &bssid, src]),
        _ => (0x03, vec![&bssid, &bssid, dst, src]),
    };
    let qos = n % 2 == 1;
    let htc = qos && n % 5 == 1;
    let subtype: u8 = if qos { 0x88 } else { 0x08 };
    let mut out = vec![subtype, ds | if htc { 0x80 } else { 0 }, 0x3a, 0x01];
    out.extend_from_slice(addrs[0]);
    out.extend_from_slice(addrs[1]);
    out.extend_from_slice(addrs[2]);
    out.extend_from_slice(&((n as u16 % 4096) << 4).to_le_bytes());
    if let Some(a4) = addrs.get(3) {
        out.extend_from_slice(a4);
    }
    if qos {
        out.extend_from_slice(&[(n % 8) as u8, 0]);
    }
    if htc {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
    out.extend_from_slice(&frame[12..]);
    out
}

fn ppi(dlt: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 0];
    out.extend_from_slice(&dlt.to_le_bytes());
    out.extend_from_slice(inner);
    out
}

/// An Ethernet frame holding IPv4 and GRE (with a key on odd `n`) around
/// `body` of `protocol`. Plain (not VLAN-tagged) outside.
fn gre(frame: &[u8], protocol: u16, body: &[u8], n: u64) -> Vec<u8> {
    let mut g = Vec::new();
    let mut flags = 0u16;
    if n % 2 == 1 {
        flags |= 0x2000;
    }
    if protocol == 0x88be {
        flags |= 0x1000; // ERSPAN II carries a sequence number
    }
    g.extend_from_slice(&flags.to_be_bytes());
    g.extend_from_slice(&protocol.to_be_bytes());
    if flags & 0x2000 != 0 {
        g.extend_from_slice(&(n as u32).to_be_bytes());
    }
    if flags & 0x1000 != 0 {
        g.extend_from_slice(&(n as u32).to_be_bytes());
    }
    g.extend_from_slice(body);
    let total = (20 + g.len()) as u16;
    let mut ip = vec![
        0x45,
        0,
        0,
        0,
        (n >> 8) as u8,
        n as u8,
        0x40,
        0,
        63,
        47,
        0,
        0,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[192, 0, 2, 1 + (n % 3) as u8, 198, 51, 100, 9]);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut out = frame[..12].to_vec();
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&ip);
    out.extend_from_slice(&g);
    out
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A little-endian, nanosecond pcap file of `link_type` holding `records`
/// (timestamp in nanoseconds, frame).
pub fn pcap_file(link_type: u16, records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&(link_type as u32).to_le_bytes());
    for (ts, frame) in records {
        out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

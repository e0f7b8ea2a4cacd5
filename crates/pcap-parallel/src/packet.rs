//! One packet as the reader hands it out: a zero-copy view into the capture.

use std::fmt;

/// A link-layer header type (a `LINKTYPE_` value from the tcpdump.org registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u16);

impl LinkType {
    /// BSD loopback (4-byte address family in host byte order).
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / IEEE 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP on OpenBSD (DLT 12), IPv4 or IPv6 by version nibble.
    pub const RAW_DLT12: LinkType = LinkType(12);
    /// Raw IP, IPv4 or IPv6 by version nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback (4-byte address family in network byte order).
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture, version 1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// IEEE 802.11 wireless LAN frames, without radio headers.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux "cooked" capture, version 2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The registry name without the `LINKTYPE_` prefix, where known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NULL",
            1 => "ETHERNET",
            2 => "EXP_ETHERNET",
            6 => "IEEE802_5",
            8 => "SLIP",
            9 => "PPP",
            10 => "FDDI",
            12 => "RAW",
            50 => "PPP_HDLC",
            51 => "PPP_ETHER",
            101 => "RAW",
            104 => "C_HDLC",
            105 => "IEEE802_11",
            107 => "FRELAY",
            108 => "LOOP",
            113 => "LINUX_SLL",
            119 => "IEEE802_11_PRISM",
            127 => "IEEE802_11_RADIOTAP",
            129 => "ARCNET_LINUX",
            132 => "JUNIPER_ES",
            182 => "MFR",
            195 => "IEEE802_15_4_WITHFCS",
            227 => "CAN_SOCKETCAN",
            228 => "IPV4",
            229 => "IPV6",
            231 => "DBUS",
            239 => "NFLOG",
            249 => "USBPCAP",
            253 => "NETLINK",
            258 => "PKTAP",
            276 => "LINUX_SLL2",
            279 => "EBHSCR",
            281 => "DSA_TAG_BRCM",
            _ => return None,
        })
    }

    /// The largest captured length a record of this link type may claim
    /// before it is taken for corruption, following libpcap and Wireshark:
    /// 256 KiB, except for link types whose packets are known to be larger.
    pub fn max_packet_len(self, default: u32) -> u32 {
        match self.0 {
            // D-Bus messages and USBPcap transfers: 128 MiB, as in libpcap.
            231 | 249 => default.max(128 * 1024 * 1024),
            // EBHSCR: 8 MiB.
            279 => default.max(8 * 1024 * 1024),
            _ => default,
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{}({n})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A packet's timestamp: nanoseconds since the Unix epoch, exact for every
/// resolution pcap and pcapng can express (wide enough for pcapng's 64-bit
/// tick counts and signed `if_tsoffset`; finer resolutions are truncated).
///
/// ```
/// use pcap_parallel::Timestamp;
/// let t = Timestamp::from_nanos(1_700_000_000_123_456_789);
/// assert_eq!(t.seconds(), 1_700_000_000);
/// assert_eq!(t.subsec_nanos(), 123_456_789);
/// assert_eq!(t.to_string(), "1700000000.123456789");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i128);

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i128) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i128 {
        self.0
    }

    /// Whole seconds (rounded towards minus infinity).
    pub fn seconds(self) -> i128 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Nanoseconds past [`Timestamp::seconds`], in `0..1_000_000_000`.
    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(1_000_000_000) as u32
    }
}

impl fmt::Display for Timestamp {
    /// Seconds with nine decimals, as `tshark -t e` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.seconds(), self.subsec_nanos())
    }
}

/// One packet: its metadata and a zero-copy slice of its captured bytes.
///
/// The captured length is `data.len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Number of the packet in the whole capture, 1-based (Wireshark's `frame.number`).
    pub number: u64,
    /// Byte offset of the packet's record or block in the (decompressed) input.
    pub offset: u64,
    /// When it was captured. `None` for pcapng Simple Packet Blocks, which carry no time.
    pub timestamp: Option<Timestamp>,
    /// Length of the packet on the wire (may be less than `data.len()` in broken files).
    pub original_len: u32,
    /// The link-layer header type of `data`.
    pub link_type: LinkType,
    /// The pcapng interface id (always 0 for pcap).
    pub interface_id: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

impl Packet<'_> {
    /// Number of captured bytes (`data.len()`).
    pub fn captured_len(&self) -> u32 {
        self.data.len() as u32
    }
}

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
    /// PPP, with or without HDLC-like framing.
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP as most systems write DLT_RAW (12), IPv4 or IPv6 by version nibble.
    pub const RAW_DLT12: LinkType = LinkType(12);
    /// Raw IP as OpenBSD writes DLT_RAW (14), IPv4 or IPv6 by version nibble.
    pub const RAW_DLT14: LinkType = LinkType(14);
    /// PPP in HDLC-like framing (or Cisco HDLC) over serial lines.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// PPPoE session packets.
    pub const PPP_ETHER: LinkType = LinkType(51);
    /// Raw IP, IPv4 or IPv6 by version nibble.
    pub const RAW: LinkType = LinkType(101);
    /// Cisco HDLC.
    pub const C_HDLC: LinkType = LinkType(104);
    /// IEEE 802.11 wireless LAN frames.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// OpenBSD loopback (4-byte address family in network byte order).
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture, version 1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// IEEE 802.11 frames behind a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// Linux ARCnet.
    pub const ARCNET_LINUX: LinkType = LinkType(129);
    /// PPP for pppd, with a direction byte in place of the address byte.
    pub const PPP_PPPD: LinkType = LinkType(166);
    /// Per-Packet Information header, followed by a frame of the link type it names.
    pub const PPI: LinkType = LinkType(192);
    /// PPP with a direction pseudo-header.
    pub const PPP_WITH_DIR: LinkType = LinkType(204);
    /// Cisco HDLC with a direction pseudo-header.
    pub const C_HDLC_WITH_DIR: LinkType = LinkType(205);
    /// An MPLS label stack as the link-layer header.
    pub const MPLS: LinkType = LinkType(219);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux netfilter log messages.
    pub const NFLOG: LinkType = LinkType(239);
    /// IP over InfiniBand (RFC 4391).
    pub const IPOIB: LinkType = LinkType(242);
    /// Apple PKTAP: a metadata header, followed by a frame of the link type it names.
    pub const PKTAP: LinkType = LinkType(258);
    /// Linux "cooked" capture, version 2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// Ethernet with a 4-byte Broadcom switch tag after the source address.
    pub const DSA_TAG_BRCM: LinkType = LinkType(281);
    /// Ethernet behind a 4-byte Broadcom switch tag.
    pub const DSA_TAG_BRCM_PREPEND: LinkType = LinkType(282);
    /// Ethernet with a 4-byte Marvell DSA tag after the source address.
    pub const DSA_TAG_DSA: LinkType = LinkType(284);
    /// Ethernet with an 8-byte Marvell EDSA tag after the source address.
    pub const DSA_TAG_EDSA: LinkType = LinkType(285);

    /// The registry name without the `LINKTYPE_` prefix (for every link
    /// type tcpdump names).
    ///
    /// ```
    /// use pcap_parallel::LinkType;
    /// assert_eq!(LinkType::PPI.name(), Some("PPI"));
    /// assert_eq!(LinkType(285).to_string(), "285(DSA_TAG_EDSA)");
    /// assert_eq!(LinkType(9999).name(), None);
    /// ```
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|e| e.1)
    }

    /// What the link type is, in words: libpcap's description, the one
    /// `tcpdump -L` and `tcpdump -r` print (`"Ethernet"`, `"Per-Packet
    /// Information"`, ...).
    ///
    /// ```
    /// use pcap_parallel::LinkType;
    /// assert_eq!(LinkType::LINUX_SLL2.description(), Some("Linux cooked v2"));
    /// ```
    pub fn description(self) -> Option<&'static str> {
        self.entry().map(|e| e.2)
    }

    fn entry(self) -> Option<&'static (u16, &'static str, &'static str)> {
        LINK_TYPES
            .binary_search_by_key(&self.0, |e| e.0)
            .ok()
            .map(|i| &LINK_TYPES[i])
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

/// Every link type of the tcpdump.org registry that libpcap knows, by
/// number: the `LINKTYPE_` name and libpcap's description (its `dlt_choices`
/// table, which `tcpdump` prints; for the few link types libpcap reads but
/// does not describe, the registry's), sorted by number. DLT_RAW's other
/// numbers (12 and 14) are included, as libpcap reads them.
const LINK_TYPES: &[(u16, &str, &str)] = &[
    (0, "NULL", "BSD loopback"),
    (1, "ETHERNET", "Ethernet"),
    (2, "EXP_ETHERNET", "experimental Ethernet (3Mb/s)"),
    (3, "AX25", "AX.25 layer 2"),
    (4, "PRONET", "Proteon ProNET Token Ring"),
    (5, "CHAOS", "MIT Chaosnet"),
    (6, "IEEE802_5", "802.5 Token Ring"),
    (7, "ARCNET_BSD", "BSD ARCnet"),
    (8, "SLIP", "Serial Line IP"),
    (9, "PPP", "Point-to-Point Protocol"),
    (10, "FDDI", "Fiber Distributed Data Interface"),
    (
        12,
        "RAW",
        "Raw IPv4/IPv6 (DLT 12, as written by most systems)",
    ),
    (14, "RAW", "Raw IPv4/IPv6 (DLT 14, as written by OpenBSD)"),
    (50, "PPP_HDLC", "Point-to-Point Protocol over serial"),
    (51, "PPP_ETHER", "PPPoE session packets"),
    (99, "SYMANTEC_FIREWALL", "Symantec Firewall"),
    (100, "ATM_RFC1483", "RFC 1483 LLC-encapsulated ATM"),
    (101, "RAW", "Raw IPv4/IPv6"),
    (102, "SLIP_BSDOS", "BSD/OS Serial Line IP"),
    (103, "PPP_BSDOS", "BSD/OS Point-to-Point Protocol"),
    (104, "C_HDLC", "Cisco HDLC"),
    (105, "IEEE802_11", "802.11"),
    (106, "ATM_CLIP", "Linux Classical IP over ATM"),
    (107, "FRELAY", "Frame Relay"),
    (108, "LOOP", "OpenBSD loopback"),
    (109, "ENC", "OpenBSD encapsulated IP"),
    (110, "LANE8023", "LANE 802.3 (ATM LAN Emulation)"),
    (111, "HIPPI", "HIPPI"),
    (112, "NETBSD_HDLC", "NetBSD HDLC framing"),
    (113, "LINUX_SLL", "Linux cooked v1"),
    (114, "LTALK", "LocalTalk"),
    (115, "ECONET", "Acorn Econet"),
    (116, "IPFILTER", "OpenBSD IPFilter"),
    (117, "PFLOG", "OpenBSD pflog file"),
    (118, "CISCO_IOS", "Cisco IOS internal"),
    (119, "IEEE802_11_PRISM", "802.11 plus Prism header"),
    (120, "IEEE802_11_AIRONET", "802.11 plus Aironet header"),
    (121, "HHDLC", "Siemens HiPath HDLC"),
    (122, "IP_OVER_FC", "RFC 2625 IP-over-Fibre Channel"),
    (123, "SUNATM", "Sun raw ATM"),
    (124, "RIO", "RapidIO"),
    (125, "PCI_EXP", "PCI Express"),
    (126, "AURORA", "Xilinx Aurora link layer"),
    (127, "IEEE802_11_RADIOTAP", "802.11 plus radiotap header"),
    (128, "TZSP", "TZSP (TaZmen Sniffer Protocol)"),
    (129, "ARCNET_LINUX", "Linux ARCnet"),
    (130, "JUNIPER_MLPPP", "Juniper Multi-Link PPP"),
    (131, "JUNIPER_MLFR", "Juniper Multi-Link Frame Relay"),
    (132, "JUNIPER_ES", "Juniper Encryption Services PIC"),
    (133, "JUNIPER_GGSN", "Juniper GGSN PIC"),
    (134, "JUNIPER_MFR", "Juniper FRF.16 Frame Relay"),
    (135, "JUNIPER_ATM2", "Juniper ATM2 PIC"),
    (136, "JUNIPER_SERVICES", "Juniper Advanced Services PIC"),
    (137, "JUNIPER_ATM1", "Juniper ATM1 PIC"),
    (138, "APPLE_IP_OVER_IEEE1394", "Apple IP-over-IEEE 1394"),
    (139, "MTP2_WITH_PHDR", "SS7 MTP2 with Pseudo-header"),
    (140, "MTP2", "SS7 MTP2"),
    (141, "MTP3", "SS7 MTP3"),
    (142, "SCCP", "SS7 SCCP"),
    (143, "DOCSIS", "DOCSIS"),
    (144, "LINUX_IRDA", "Linux IrDA"),
    (145, "IBM_SP", "IBM SP switch"),
    (146, "IBM_SN", "IBM Next Federation switch"),
    (147, "USER0", "Private use 0"),
    (148, "USER1", "Private use 1"),
    (149, "USER2", "Private use 2"),
    (150, "USER3", "Private use 3"),
    (151, "USER4", "Private use 4"),
    (152, "USER5", "Private use 5"),
    (153, "USER6", "Private use 6"),
    (154, "USER7", "Private use 7"),
    (155, "USER8", "Private use 8"),
    (156, "USER9", "Private use 9"),
    (157, "USER10", "Private use 10"),
    (158, "USER11", "Private use 11"),
    (159, "USER12", "Private use 12"),
    (160, "USER13", "Private use 13"),
    (161, "USER14", "Private use 14"),
    (162, "USER15", "Private use 15"),
    (
        163,
        "IEEE802_11_AVS",
        "802.11 plus AVS radio information header",
    ),
    (164, "JUNIPER_MONITOR", "Juniper Passive Monitor PIC"),
    (165, "BACNET_MS_TP", "BACnet MS/TP"),
    (166, "PPP_PPPD", "PPP for pppd, with direction flag"),
    (167, "JUNIPER_PPPOE", "Juniper PPPoE"),
    (168, "JUNIPER_PPPOE_ATM", "Juniper PPPoE/ATM"),
    (169, "GPRS_LLC", "GPRS LLC"),
    (170, "GPF_T", "GPF-T"),
    (171, "GPF_F", "GPF-F"),
    (172, "GCOM_T1E1", "GCOM T1/E1 line monitoring"),
    (173, "GCOM_SERIAL", "GCOM serial line monitoring"),
    (174, "JUNIPER_PIC_PEER", "Juniper PIC Peer"),
    (175, "ERF_ETH", "Ethernet with Endace ERF header"),
    (176, "ERF_POS", "Packet-over-SONET with Endace ERF header"),
    (177, "LINUX_LAPD", "Linux vISDN LAPD"),
    (178, "JUNIPER_ETHER", "Juniper Ethernet"),
    (179, "JUNIPER_PPP", "Juniper PPP"),
    (180, "JUNIPER_FRELAY", "Juniper Frame Relay"),
    (181, "JUNIPER_CHDLC", "Juniper C-HDLC"),
    (182, "MFR", "FRF.16 Frame Relay"),
    (183, "JUNIPER_VP", "Juniper Voice PIC"),
    (184, "A429", "Arinc 429"),
    (185, "A653_ICM", "Arinc 653 Interpartition Communication"),
    (186, "USB_FREEBSD", "USB with FreeBSD header"),
    (
        187,
        "BLUETOOTH_HCI_H4",
        "Bluetooth HCI UART transport layer",
    ),
    (
        188,
        "IEEE802_16_MAC_CPS",
        "IEEE 802.16 MAC Common Part Sublayer",
    ),
    (189, "USB_LINUX", "USB with Linux header"),
    (190, "CAN20B", "Controller Area Network (CAN) v. 2.0B"),
    (
        191,
        "IEEE802_15_4_LINUX",
        "IEEE 802.15.4 with Linux padding",
    ),
    (192, "PPI", "Per-Packet Information"),
    (
        193,
        "IEEE802_16_MAC_CPS_RADIO",
        "IEEE 802.16 MAC Common Part Sublayer plus radiotap header",
    ),
    (194, "JUNIPER_ISM", "Juniper Integrated Service Module"),
    (195, "IEEE802_15_4_WITHFCS", "IEEE 802.15.4 with FCS"),
    (196, "SITA", "SITA pseudo-header"),
    (197, "ERF", "Endace ERF header"),
    (198, "RAIF1", "Ethernet with u10 Networks pseudo-header"),
    (199, "IPMB_KONTRON", "IPMB with Kontron pseudo-header"),
    (200, "JUNIPER_ST", "Juniper Secure Tunnel"),
    (
        201,
        "BLUETOOTH_HCI_H4_WITH_PHDR",
        "Bluetooth HCI UART transport layer plus pseudo-header",
    ),
    (202, "AX25_KISS", "AX.25 with KISS header"),
    (203, "LAPD", "Linux LAPD (Q.921) with pseudo-header"),
    (204, "PPP_WITH_DIR", "PPP with direction pseudo-header"),
    (
        205,
        "C_HDLC_WITH_DIR",
        "Cisco HDLC with direction pseudo-header",
    ),
    (
        206,
        "FRELAY_WITH_DIR",
        "Frame Relay with direction pseudo-header",
    ),
    (207, "LAPB_WITH_DIR", "LAPB with direction pseudo-header"),
    (
        209,
        "I2C_LINUX",
        "I2C with Linux/Pigeon Point pseudo-header",
    ),
    (210, "FLEXRAY", "FlexRay automotive bus"),
    (211, "MOST", "MOST automotive bus"),
    (212, "LIN", "LIN automotive bus"),
    (213, "X2E_SERIAL", "X2E serial line capture"),
    (214, "X2E_XORAYA", "X2E Xoraya data logger"),
    (
        215,
        "IEEE802_15_4_NONASK_PHY",
        "IEEE 802.15.4 with non-ASK PHY data",
    ),
    (216, "LINUX_EVDEV", "Linux evdev events"),
    (217, "GSMTAP_UM", "GSM Um interface with GSMTAP header"),
    (218, "GSMTAP_ABIS", "GSM Abis interface with GSMTAP header"),
    (219, "MPLS", "MPLS with label as link-layer header"),
    (220, "USB_LINUX_MMAPPED", "USB with padded Linux header"),
    (221, "DECT", "DECT"),
    (222, "AOS", "AOS Space Data Link protocol"),
    (223, "WIHART", "WirelessHART"),
    (224, "FC_2", "Fibre Channel FC-2"),
    (
        225,
        "FC_2_WITH_FRAME_DELIMS",
        "Fibre Channel FC-2 with frame delimiters",
    ),
    (226, "IPNET", "Solaris ipnet"),
    (227, "CAN_SOCKETCAN", "CAN-bus with SocketCAN headers"),
    (228, "IPV4", "Raw IPv4"),
    (229, "IPV6", "Raw IPv6"),
    (230, "IEEE802_15_4_NOFCS", "IEEE 802.15.4 without FCS"),
    (231, "DBUS", "D-Bus"),
    (232, "JUNIPER_VS", "Juniper Virtual Server"),
    (233, "JUNIPER_SRX_E2E", "Juniper SRX E2E"),
    (234, "JUNIPER_FIBRECHANNEL", "Juniper Fibre Channel"),
    (235, "DVB_CI", "DVB-CI"),
    (236, "MUX27010", "MUX27010"),
    (237, "STANAG_5066_D_PDU", "STANAG 5066 D_PDUs"),
    (238, "JUNIPER_ATM_CEMIC", "Juniper ATM CEMIC"),
    (239, "NFLOG", "Linux netfilter log messages"),
    (
        240,
        "NETANALYZER",
        "Ethernet with Hilscher netANALYZER pseudo-header",
    ),
    (
        241,
        "NETANALYZER_TRANSPARENT",
        "Ethernet with Hilscher netANALYZER pseudo-header and with preamble and SFD",
    ),
    (242, "IPOIB", "RFC 4391 IP-over-InfiniBand"),
    (243, "MPEG_2_TS", "MPEG-2 transport stream"),
    (244, "NG40", "ng40 protocol tester Iub/Iur"),
    (245, "NFC_LLCP", "NFC LLCP PDUs with pseudo-header"),
    (246, "PFSYNC", "Packet filter state syncing"),
    (247, "INFINIBAND", "InfiniBand"),
    (248, "SCTP", "SCTP"),
    (249, "USBPCAP", "USB with USBPcap header"),
    (
        250,
        "RTAC_SERIAL",
        "Schweitzer Engineering Laboratories RTAC packets",
    ),
    (251, "BLUETOOTH_LE_LL", "Bluetooth Low Energy air interface"),
    (252, "WIRESHARK_UPPER_PDU", "Wireshark upper-protocol PDUs"),
    (253, "NETLINK", "Linux netlink"),
    (254, "BLUETOOTH_LINUX_MONITOR", "Bluetooth Linux Monitor"),
    (
        255,
        "BLUETOOTH_BREDR_BB",
        "Bluetooth Basic Rate/Enhanced Data Rate baseband packets",
    ),
    (
        256,
        "BLUETOOTH_LE_LL_WITH_PHDR",
        "Bluetooth Low Energy air interface with pseudo-header",
    ),
    (257, "PROFIBUS_DL", "PROFIBUS data link layer"),
    (258, "PKTAP", "Apple PKTAP"),
    (259, "EPON", "Ethernet with 802.3 Clause 65 EPON preamble"),
    (260, "IPMI_HPM_2", "IPMI trace packets"),
    (261, "ZWAVE_R1_R2", "Z-Wave RF profile R1 and R2 packets"),
    (262, "ZWAVE_R3", "Z-Wave RF profile R3 packets"),
    (
        263,
        "WATTSTOPPER_DLM",
        "WattStopper Digital Lighting Management (DLM) and Legrand Nitoo Open protocol",
    ),
    (264, "ISO_14443", "ISO 14443 messages"),
    (265, "RDS", "IEC 62106 Radio Data System groups"),
    (266, "USB_DARWIN", "USB with Darwin header"),
    (267, "OPENFLOW", "OpenBSD OpenFlow"),
    (268, "SDLC", "IBM SDLC frames"),
    (269, "TI_LLN_SNIFFER", "TI LLN sniffer frames"),
    (270, "LORATAP", "LoRaWAN with LoRaTap header"),
    (271, "VSOCK", "Linux vsock"),
    (
        272,
        "NORDIC_BLE",
        "Nordic Semiconductor Bluetooth LE sniffer frames",
    ),
    (
        273,
        "DOCSIS31_XRA31",
        "Excentis XRA-31 DOCSIS 3.1 RF sniffer frames",
    ),
    (274, "ETHERNET_MPACKET", "802.3br mPackets"),
    (
        275,
        "DISPLAYPORT_AUX",
        "DisplayPort AUX channel monitoring data",
    ),
    (276, "LINUX_SLL2", "Linux cooked v2"),
    (277, "SERCOS_MONITOR", "SERCOS monitor"),
    (278, "OPENVIZSLA", "OpenVizsla USB"),
    (
        279,
        "EBHSCR",
        "Elektrobit High Speed Capture and Replay (EBHSCR)",
    ),
    (280, "VPP_DISPATCH", "VPP graph dispatch tracer"),
    (281, "DSA_TAG_BRCM", "Broadcom infix DSA tag"),
    (282, "DSA_TAG_BRCM_PREPEND", "Broadcom prefix DSA tag"),
    (283, "IEEE802_15_4_TAP", "IEEE 802.15.4 with pseudo-header"),
    (284, "DSA_TAG_DSA", "Marvell infix 4-octet DSA tag"),
    (285, "DSA_TAG_EDSA", "Marvell infix 8-octet DSA tag"),
    (286, "ELEE", "ELEE lawful intercept packets"),
    (
        287,
        "Z_WAVE_SERIAL",
        "Z-Wave serial frames between host and chip",
    ),
    (
        288,
        "USB_2_0",
        "USB 2.0/1.1/1.0 as transmitted over the cable",
    ),
    (289, "ATSC_ALP", "ATSC Link-Layer Protocol packets"),
    (290, "ETW", "Event Tracing for Windows messages"),
    (
        291,
        "NETANALYZER_NG",
        "Hilscher netANALYZER NG pseudo-footer",
    ),
    (292, "ZBOSS_NCP", "ZBOSS NCP protocol with pseudo-header"),
    (
        293,
        "USB_2_0_LOW_SPEED",
        "Low-Speed USB 2.0/1.1/1.0 as transmitted over the cable",
    ),
    (
        294,
        "USB_2_0_FULL_SPEED",
        "Full-Speed USB 2.0/1.1/1.0 as transmitted over the cable",
    ),
    (
        295,
        "USB_2_0_HIGH_SPEED",
        "High-Speed USB 2.0 as transmitted over the cable",
    ),
    (296, "AUERSWALD_LOG", "Auerswald Logger Protocol"),
    (
        297,
        "ZWAVE_TAP",
        "Z-Wave packets with a TAP meta-data header",
    ),
    (
        298,
        "SILABS_DEBUG_CHANNEL",
        "Silicon Labs debug channel protocol",
    ),
    (
        299,
        "FIRA_UCI",
        "Ultra-wideband controller interface protocol",
    ),
    (300, "MDB", "Multi-Drop Bus"),
    (301, "DECT_NR", "DECT New Radio"),
    (302, "EDK2_MM", "EDK II MM request serialization protocol"),
    (
        303,
        "DEBUG_ONLY",
        "unstructured data for manual debugging only",
    ),
    (304, "DECT_NR_TAP", "DECT-2020 New Radio TAP"),
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_type_table_is_sorted_and_complete() {
        assert!(LINK_TYPES.windows(2).all(|w| w[0].0 < w[1].0));
        // Every number of libpcap's LINKTYPE_ range 104..=304 is named
        // except those the registry leaves unassigned.
        let unassigned = [208];
        for n in 104..=304u16 {
            assert_eq!(
                LinkType(n).name().is_some(),
                !unassigned.contains(&n),
                "link type {n}"
            );
        }
        assert_eq!(LinkType::ETHERNET.to_string(), "1(ETHERNET)");
        assert_eq!(LinkType::PPI.description(), Some("Per-Packet Information"));
        assert_eq!(LinkType(105).description(), Some("802.11"));
    }
}

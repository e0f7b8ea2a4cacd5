//! Deterministic synthetic packet captures with a realistic traffic mix.
//!
//! The same seed gives the same bytes on every machine. The mix follows
//! what the benchmarks need to be representative:
//!
//! * frame sizes from the simple IMIX: 64, 576 and 1500 bytes in the
//!   ratio 7:4:1;
//! * about 85% IPv4 and 15% IPv6; TCP (70%), UDP (25%) and ICMP/ICMPv6 (5%);
//! * a few thousand hosts, sources drawn from a skewed distribution (a few
//!   talk a lot, most rarely), each conversation keeping its ports;
//! * about 10% of frames VLAN-tagged (a tenth of those QinQ);
//! * about 2% of records truncated as by a 96-byte snapshot length;
//! * timestamps rising by random gaps, microsecond or nanosecond resolution.
//!
//! Any [`Layout`]: pcap or pcapng, either byte order, microsecond or
//! nanosecond timestamps; a plain [`Format`] is the little-endian,
//! microsecond layout.
//!
//! ```
//! use pcap_synth::{Format, Synth};
//! let mut out = Vec::new();
//! let written = Synth::new(7).write(&mut out, Format::Pcap, 100).unwrap();
//! assert_eq!(written.packets, 100);
//! assert_eq!(&out[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
//! let mut again = Vec::new();
//! Synth::new(7).write(&mut again, Format::Pcap, 100).unwrap();
//! assert_eq!(out, again);
//! ```

pub mod encap;

use std::io::{self, Write};

use etherparse::PacketBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The capture format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap, little-endian, microsecond timestamps.
    Pcap,
    /// pcapng, little-endian, two Ethernet interfaces (microsecond and
    /// nanosecond resolution), Enhanced Packet Blocks.
    Pcapng,
}

/// The byte order of a written capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ByteOrder {
    /// Little-endian, as most captures are written.
    #[default]
    Little,
    /// Big-endian.
    Big,
}

impl ByteOrder {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }
}

/// Timestamp resolution: of the file (pcap), or of the first interface
/// (pcapng, whose second interface is always nanosecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// Microseconds (pcap magic `a1b2c3d4`, pcapng `if_tsresol` 6).
    #[default]
    Micro,
    /// Nanoseconds (pcap magic `a1b23c4d`, pcapng `if_tsresol` 9).
    Nano,
}

/// How a capture is laid out.
///
/// ```
/// use pcap_synth::{ByteOrder, Format, Layout, Resolution, Synth};
/// let layout = Layout { format: Format::Pcap, byte_order: ByteOrder::Big, resolution: Resolution::Nano };
/// let mut out = Vec::new();
/// Synth::new(7).write(&mut out, layout, 10).unwrap();
/// assert_eq!(&out[..4], &[0xa1, 0xb2, 0x3c, 0x4d]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub format: Format,
    pub byte_order: ByteOrder,
    pub resolution: Resolution,
}

impl From<Format> for Layout {
    /// Little-endian, microsecond timestamps.
    fn from(format: Format) -> Layout {
        Layout {
            format,
            byte_order: ByteOrder::Little,
            resolution: Resolution::Micro,
        }
    }
}

impl Layout {
    /// Every layout: both formats, both byte orders, both resolutions.
    pub fn all() -> Vec<Layout> {
        let mut out = Vec::new();
        for format in [Format::Pcap, Format::Pcapng] {
            for byte_order in [ByteOrder::Little, ByteOrder::Big] {
                for resolution in [Resolution::Micro, Resolution::Nano] {
                    out.push(Layout {
                        format,
                        byte_order,
                        resolution,
                    });
                }
            }
        }
        out
    }
}

/// What a write produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Packet records written.
    pub packets: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// A seeded generator of packets.
pub struct Synth {
    rng: ChaCha8Rng,
    hosts: Vec<Host>,
    /// Nanoseconds since the epoch of the next packet.
    now_ns: u64,
    seq: u32,
}

#[derive(Clone, Copy)]
struct Host {
    mac: [u8; 6],
    v4: [u8; 4],
    v6: [u8; 16],
}

/// Pieces of text-like payload (HTTP, DNS, NTP-ish).
const WORDS: &[&[u8]] = &[
    b"GET /index.html HTTP/1.1\r\n",
    b"Host: www.example.com\r\n",
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n",
    b"Accept: text/html,application/xhtml+xml\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n",
    b"Content-Length: ",
    b"1432",
    b"\r\n\r\n",
    b"<html><head><title>",
    b"</title></head><body>",
    b"<div class=\"content\">",
    b"\x07example\x03com\x00\x00\x01\x00\x01",
    b"\x03www\x06google\x03com\x00",
    b"Cookie: session=",
    b"a8f5f167f44f4964e6c998dee827110c",
    b"Connection: keep-alive\r\n",
];

/// Snapshot length used for the truncated records.
pub const SHORT_SNAPLEN: usize = 96;

impl Synth {
    /// A generator for `seed`, with 4096 hosts.
    pub fn new(seed: u64) -> Synth {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let hosts = (0..4096u32)
            .map(|i| {
                let mut mac = [0u8; 6];
                rng.fill(&mut mac);
                mac[0] &= 0xfe; // unicast
                let mut v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                rng.fill(&mut v6[8..]);
                Host {
                    mac,
                    v4: [10, (i >> 8) as u8, i as u8, rng.random_range(1..255)],
                    v6,
                }
            })
            .collect();
        Synth {
            rng,
            hosts,
            now_ns: 1_700_000_000_000_000_000,
            seq: 1,
        }
    }

    /// Picks a host, skewed: host 0 most often, the tail rarely.
    fn host(&mut self) -> Host {
        let u: f64 = self.rng.random();
        let i = ((u * u * u) * self.hosts.len() as f64) as usize;
        self.hosts[i.min(self.hosts.len() - 1)]
    }

    /// The next frame (Ethernet, maybe VLAN-tagged) and its timestamp in ns.
    pub fn next_frame(&mut self) -> (u64, Vec<u8>) {
        self.now_ns += self.rng.random_range(1_000..200_000);
        let size = match self.rng.random_range(0..12) {
            0..7 => 64,
            7..11 => 576,
            _ => 1500,
        };
        let src = self.host();
        let mut dst = self.host();
        while dst.mac == src.mac {
            dst = self.host();
        }
        let mut frame = Vec::with_capacity(size + 8);
        frame.extend_from_slice(&dst.mac);
        frame.extend_from_slice(&src.mac);
        let v6 = self.rng.random_range(0..100) < 15;
        match self.rng.random_range(0..100) {
            0 => {
                frame.extend_from_slice(&[0x88, 0xa8, 0, 100]);
                let vid: u16 = self.rng.random_range(1..4095);
                frame.extend_from_slice(&[0x81, 0x00, (vid >> 8) as u8, vid as u8]);
            }
            1..10 => {
                let vid: u16 = self.rng.random_range(1..4095);
                frame.extend_from_slice(&[0x81, 0x00, (vid >> 8) as u8, vid as u8]);
            }
            _ => {}
        }
        frame.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        let ip = if v6 {
            PacketBuilder::ipv6(src.v6, dst.v6, 64)
        } else {
            PacketBuilder::ipv4(src.v4, dst.v4, 64)
        };
        // Ports derive from the host pair, so conversations repeat.
        let sport = 1024 + (u16::from_be_bytes([src.mac[4], src.mac[5]]) % 60000);
        let dport = [80u16, 443, 53, 22, 8080, 123][(dst.mac[5] % 6) as usize];
        let l4 = self.rng.random_range(0..100);
        let header_room = frame.len();
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let body = |builder_size: usize| size.saturating_sub(header_room + builder_size);
        let mut payload = Vec::new();
        // Encrypted traffic (443, 22) is random bytes; the rest is text-like
        // and compresses as real captures do.
        let text = !matches!(dport, 443 | 22);
        let fill = |rng: &mut ChaCha8Rng, payload: &mut Vec<u8>, n: usize| {
            payload.clear();
            if text {
                while payload.len() < n {
                    payload.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())]);
                }
                payload.truncate(n);
            } else {
                payload.resize(n, 0);
                rng.fill(&mut payload[..]);
            }
        };
        if l4 < 70 {
            let b = ip.tcp(sport, dport, seq, 64240).ack(seq ^ 0x5a5a).psh();
            fill(&mut self.rng, &mut payload, body(b.size(0)));
            b.write(&mut frame, &payload).expect("write to a Vec");
        } else if l4 < 95 {
            let b = ip.udp(sport, dport);
            fill(&mut self.rng, &mut payload, body(b.size(0)));
            b.write(&mut frame, &payload).expect("write to a Vec");
        } else if v6 {
            let b = ip.icmpv6_echo_request(sport, seq as u16);
            fill(&mut self.rng, &mut payload, body(b.size(0)));
            b.write(&mut frame, &payload).expect("write to a Vec");
        } else {
            let b = ip.icmpv4_echo_request(sport, seq as u16);
            fill(&mut self.rng, &mut payload, body(b.size(0)));
            b.write(&mut frame, &payload).expect("write to a Vec");
        }
        (self.now_ns, frame)
    }

    /// Writes a capture of `packets` packets.
    pub fn write<W: Write>(
        &mut self,
        out: W,
        layout: impl Into<Layout>,
        packets: u64,
    ) -> io::Result<Written> {
        self.write_until(out, layout.into(), |w| w.packets >= packets)
    }

    /// Writes a capture of at least `bytes` bytes (stopping after the packet
    /// that reaches it).
    pub fn write_bytes<W: Write>(
        &mut self,
        out: W,
        layout: impl Into<Layout>,
        bytes: u64,
    ) -> io::Result<Written> {
        self.write_until(out, layout.into(), |w| w.bytes >= bytes)
    }

    fn write_until<W: Write>(
        &mut self,
        out: W,
        layout: Layout,
        done: impl Fn(&Written) -> bool,
    ) -> io::Result<Written> {
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        let mut w = Written::default();
        let header = match layout.format {
            Format::Pcap => pcap_header(layout),
            Format::Pcapng => pcapng_header(layout),
        };
        let e = layout.byte_order;
        out.write_all(&header)?;
        w.bytes += header.len() as u64;
        let mut record = Vec::with_capacity(2048);
        while !done(&w) {
            let (ts, frame) = self.next_frame();
            let caplen = if self.rng.random_range(0..100) < 2 {
                frame.len().min(SHORT_SNAPLEN)
            } else {
                frame.len()
            };
            record.clear();
            let nano = layout.resolution == Resolution::Nano;
            match layout.format {
                Format::Pcap => {
                    let frac = ts % 1_000_000_000;
                    let frac = if nano { frac } else { frac / 1000 };
                    record.extend_from_slice(&e.u32((ts / 1_000_000_000) as u32));
                    record.extend_from_slice(&e.u32(frac as u32));
                    record.extend_from_slice(&e.u32(caplen as u32));
                    record.extend_from_slice(&e.u32(frame.len() as u32));
                    record.extend_from_slice(&frame[..caplen]);
                }
                Format::Pcapng => {
                    let iface = (w.packets % 2) as u32;
                    let ticks = if iface == 0 && !nano { ts / 1000 } else { ts };
                    let padded = caplen.next_multiple_of(4);
                    let len = (32 + padded) as u32;
                    record.extend_from_slice(&e.u32(6));
                    record.extend_from_slice(&e.u32(len));
                    record.extend_from_slice(&e.u32(iface));
                    record.extend_from_slice(&e.u32((ticks >> 32) as u32));
                    record.extend_from_slice(&e.u32(ticks as u32));
                    record.extend_from_slice(&e.u32(caplen as u32));
                    record.extend_from_slice(&e.u32(frame.len() as u32));
                    record.extend_from_slice(&frame[..caplen]);
                    record.resize(record.len() + padded - caplen, 0);
                    record.extend_from_slice(&e.u32(len));
                }
            }
            out.write_all(&record)?;
            w.bytes += record.len() as u64;
            w.packets += 1;
        }
        out.flush()?;
        Ok(w)
    }
}

fn pcap_header(layout: Layout) -> Vec<u8> {
    let e = layout.byte_order;
    let magic = match layout.resolution {
        Resolution::Micro => 0xa1b2_c3d4u32,
        Resolution::Nano => 0xa1b2_3c4d,
    };
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&e.u32(magic));
    h.extend_from_slice(&e.u16(2));
    h.extend_from_slice(&e.u16(4));
    h.extend_from_slice(&e.u32(0)); // thiszone
    h.extend_from_slice(&e.u32(0)); // sigfigs
    h.extend_from_slice(&e.u32(65535));
    h.extend_from_slice(&e.u32(1)); // Ethernet
    h
}

fn block(e: ByteOrder, kind: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&e.u32(kind));
    b.extend_from_slice(&e.u32(len));
    b.extend_from_slice(body);
    b.extend_from_slice(&e.u32(len));
    b
}

fn pcapng_header(layout: Layout) -> Vec<u8> {
    let e = layout.byte_order;
    let mut shb = Vec::new();
    shb.extend_from_slice(&e.u32(0x1a2b_3c4d));
    shb.extend_from_slice(&e.u16(1));
    shb.extend_from_slice(&e.u16(0));
    shb.extend_from_slice(&[0xff; 8]); // section length: unknown (-1)
    let mut out = block(e, 0x0a0d_0d0a, &shb);
    let first = match layout.resolution {
        Resolution::Micro => 6u8,
        Resolution::Nano => 9,
    };
    for resol in [first, 9] {
        let mut idb = Vec::new();
        idb.extend_from_slice(&e.u16(1)); // Ethernet
        idb.extend_from_slice(&e.u16(0));
        idb.extend_from_slice(&e.u32(65535));
        // if_tsresol, then opt_endofopt
        idb.extend_from_slice(&e.u16(9));
        idb.extend_from_slice(&e.u16(1));
        idb.extend_from_slice(&[resol, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&block(e, 1, &idb));
    }
    out
}

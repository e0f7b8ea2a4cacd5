//! Property test: captures whose packets carry bytes built to look like
//! record headers (whole captures inside packets, copies of neighbouring
//! headers, zero runs, headers read 4 bytes late) are chunked in parallel
//! into exactly the packets a sequential walk sees.

mod common;

use common::{PacketTuple, chunk_tuples, packet_tuples};
use pcap_parallel::{Capture, Split};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Payload {
    Random(Vec<u8>),
    Zeros(usize),
    /// A run of valid-looking records of the outer file's own format.
    Embedded(Vec<(u32, Vec<u8>)>),
    /// The header of the previous record, repeated.
    EchoPrevious(usize),
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    Pcap {
        big: bool,
        nanos: bool,
        modified: bool,
    },
    Pcapng {
        big: bool,
    },
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Payload::Random),
        (0usize..400).prop_map(Payload::Zeros),
        prop::collection::vec(
            (0u32..2_000_000, prop::collection::vec(any::<u8>(), 0..80)),
            1..12
        )
        .prop_map(Payload::Embedded),
        (1usize..6).prop_map(Payload::EchoPrevious),
    ]
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(big, nanos, modified)| {
            Layout::Pcap {
                big,
                nanos: nanos && !modified,
                modified,
            }
        }),
        any::<bool>().prop_map(|big| Layout::Pcapng { big }),
    ]
}

struct Writer {
    big: bool,
    out: Vec<u8>,
}

impl Writer {
    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
}

/// A record (pcap) or EPB (pcapng) in the layout's own encoding.
fn record(layout: Layout, ts: u32, frac: u32, data: &[u8]) -> Vec<u8> {
    match layout {
        Layout::Pcap { big, modified, .. } => {
            let mut w = Writer {
                big,
                out: Vec::new(),
            };
            w.u32(ts);
            w.u32(frac);
            w.u32(data.len() as u32);
            w.u32(data.len() as u32);
            if modified {
                w.u32(3);
                w.u16(0x0800);
                w.u16(0);
            }
            w.out.extend_from_slice(data);
            w.out
        }
        Layout::Pcapng { big } => {
            let padded = data.len().next_multiple_of(4);
            let len = (32 + padded) as u32;
            let mut w = Writer {
                big,
                out: Vec::new(),
            };
            w.u32(6);
            w.u32(len);
            w.u32(0);
            w.u32(ts >> 8);
            w.u32(frac);
            w.u32(data.len() as u32);
            w.u32(data.len() as u32);
            w.out.extend_from_slice(data);
            w.out.resize(w.out.len() + padded - data.len(), 0);
            w.u32(len);
            w.out
        }
    }
}

fn build(layout: Layout, packets: &[Payload]) -> Vec<u8> {
    let mut out;
    match layout {
        Layout::Pcap {
            big,
            nanos,
            modified,
        } => {
            let magic = if modified {
                0xa1b2_cd34
            } else if nanos {
                0xa1b2_3c4d
            } else {
                0xa1b2_c3d4
            };
            let mut w = Writer {
                big,
                out: Vec::new(),
            };
            w.u32(magic);
            w.u16(2);
            w.u16(4);
            w.u32(0);
            w.u32(0);
            w.u32(65535);
            w.u32(1);
            out = w.out;
        }
        Layout::Pcapng { big } => {
            let mut w = Writer {
                big,
                out: Vec::new(),
            };
            w.out.extend_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
            w.u32(28);
            w.u32(0x1a2b_3c4d);
            w.u16(1);
            w.u16(0);
            w.out.extend_from_slice(&[0xff; 8]);
            w.u32(28);
            // IDB: Ethernet, snaplen 0
            w.u32(1);
            w.u32(20);
            w.u16(1);
            w.u16(0);
            w.u32(0);
            w.u32(20);
            out = w.out;
        }
    }
    let mut ts = 1_600_000_000u32;
    let mut previous: Vec<u8> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        ts += (i % 3) as u32;
        let data: Vec<u8> = match p {
            Payload::Random(b) => b.clone(),
            Payload::Zeros(n) => vec![0; *n],
            Payload::Embedded(inner) => inner
                .iter()
                .flat_map(|(frac, d)| record(layout, ts, frac % 1_000_000, d))
                .collect(),
            Payload::EchoPrevious(k) => previous
                .iter()
                .cycle()
                .take(previous.len() * k)
                .copied()
                .collect(),
        };
        let rec = record(layout, ts, (i as u32 * 7919) % 1_000_000, &data);
        previous = rec[..rec.len().min(32)].to_vec();
        out.extend_from_slice(&rec);
    }
    out
}

fn packets(capture: Capture) -> Vec<PacketTuple> {
    packet_tuples(capture).expect("a well-formed capture")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn parallel_chunking_equals_the_sequential_walk(
        layout in layout(),
        payloads in prop::collection::vec(payload(), 1..60),
        segment in 1usize..700,
        chunks in 1usize..9,
    ) {
        let bytes = build(layout, &payloads);
        let sequential = packets(Capture::from_bytes("gen", bytes.clone()).unwrap().workers(1).split(Split::Chunks(1)));
        prop_assert_eq!(sequential.len(), payloads.len());
        for split in [Split::Chunks(chunks), Split::Packets(chunks as u64), Split::Bytes(segment as u64 * 3 + 1)] {
            let parallel = packets(
                Capture::from_bytes("gen", bytes.clone()).unwrap().workers(3).split(split).segment_len(Some(segment)),
            );
            prop_assert!(parallel == sequential, "{:?} with segments of {}", split, segment);
        }
    }
}

/// 40 packets, each carrying a run of 60 valid-looking records of the
/// outer file's own format.
fn embedded_payloads() -> Vec<Payload> {
    let inner: Vec<(u32, Vec<u8>)> = (0..60)
        .map(|i| (i * 1000, vec![i as u8; 20 + (i as usize % 7)]))
        .collect();
    (0..40).map(|_| Payload::Embedded(inner.clone())).collect()
}

/// Packets that each carry a long valid-looking capture fool the boundary
/// guess (the report shows segments redone), and the result is still exact.
#[test]
fn embedded_captures_fool_the_guess_but_not_the_result() {
    for layout in [
        Layout::Pcap {
            big: false,
            nanos: false,
            modified: false,
        },
        Layout::Pcap {
            big: true,
            nanos: true,
            modified: false,
        },
        Layout::Pcapng { big: false },
    ] {
        let bytes = build(layout, &embedded_payloads());
        let sequential = packets(
            Capture::from_bytes("gen", bytes.clone())
                .unwrap()
                .workers(1)
                .split(Split::Chunks(1)),
        );
        assert_eq!(sequential.len(), 40);
        let mut parallel = Vec::new();
        let report = Capture::from_bytes("gen", bytes.clone())
            .unwrap()
            .workers(2)
            .split(Split::Chunks(16))
            .segment_len(Some(700))
            .run(
                |c| {
                    Ok(c.packets()
                        .map(|p| {
                            (
                                p.offset,
                                p.original_len,
                                p.timestamp.map(|t| t.as_nanos()),
                                p.data.to_vec(),
                            )
                        })
                        .collect::<Vec<_>>())
                },
                |r| parallel.extend(r.result.unwrap()),
            );
        assert!(report.input_error.is_none());
        assert!(
            report.redone_segments > 0,
            "{layout:?}: the embedded captures should have fooled some guesses"
        );
        assert!(parallel == sequential, "{layout:?}");
    }
}

/// The packets of `bytes` read in byte-range partitions of `size`, one at a
/// time as on a cluster, verified and recomputed by the driver; and how
/// many partitions were recomputed.
fn partitioned(bytes: &[u8], size: u64) -> (Vec<PacketTuple>, usize) {
    use pcap_parallel::partition::{self, InMemory};
    let src = InMemory {
        name: "gen".into(),
        bytes: bytes.into(),
    };
    let parts = partition::partitions(bytes.len() as u64, size);
    let run = partition::read_partitions(&src, &parts, 2, chunk_tuples);
    assert!(run.error.is_none(), "{:?}", run.error);
    let packets = run.results.into_iter().flat_map(|r| r.value).collect();
    (packets, run.recomputed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn partitions_equal_the_sequential_walk(
        layout in layout(),
        payloads in prop::collection::vec(payload(), 1..60),
        size in 1u64..900,
    ) {
        let bytes = build(layout, &payloads);
        let sequential = packets(Capture::from_bytes("gen", bytes.clone()).unwrap().workers(1).split(Split::Chunks(1)));
        let (parted, _) = partitioned(&bytes, size);
        prop_assert!(parted == sequential, "partitions of {}", size);
    }
}

/// Captures embedded in payloads at partition edges fool partitions' guesses:
/// the driver recomputes them (counted) and the result is exact.
#[test]
fn embedded_captures_fool_partitions_but_not_the_result() {
    for layout in [
        Layout::Pcap {
            big: false,
            nanos: false,
            modified: false,
        },
        Layout::Pcapng { big: true },
    ] {
        let bytes = build(layout, &embedded_payloads());
        let sequential = packets(
            Capture::from_bytes("gen", bytes.clone())
                .unwrap()
                .workers(1),
        );
        assert_eq!(sequential.len(), 40);
        for size in [97, 700, 1024] {
            let (parted, recomputed) = partitioned(&bytes, size);
            assert!(recomputed > 0, "{layout:?} at {size}: no guess was fooled");
            assert!(parted == sequential, "{layout:?} at {size}");
        }
    }
}

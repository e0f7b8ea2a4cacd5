//! Under the skip policy, the same bytes give the same packets however
//! they arrive: a mapped file, a plain stream, a gzip file and a gzip
//! stream (issue 15.6). Property-tested on corpus captures damaged by
//! random insertions, deletions and overwrites, some of them fake block
//! headers claiming huge lengths.

mod codecs;
mod common;

use common::capture_file;
use pcap_parallel::{Capture, OnError, Split};
use proptest::prelude::*;

type Seen = (Vec<(u64, Option<i128>, Vec<u8>)>, Vec<(u64, u64, u64)>);

fn seen(capture: Capture) -> Seen {
    let mut packets = Vec::new();
    let report = capture.on_error(OnError::Skip).run(
        |c| {
            Ok(c.packets()
                .map(|p| (p.offset, p.timestamp.map(|t| t.as_nanos()), p.data.to_vec()))
                .collect::<Vec<_>>())
        },
        |r| packets.extend(r.result.unwrap()),
    );
    let skipped = report
        .skipped
        .iter()
        .map(|s| (s.offset, s.len, s.packet))
        .collect();
    (packets, skipped)
}

/// The packets of `bytes` through every way in, which must all agree.
fn agree(bytes: &[u8], chunks: usize, segment: usize) -> Seen {
    let file = seen(
        Capture::from_bytes("f", bytes.to_vec())
            .unwrap()
            .workers(3)
            .split(Split::Chunks(chunks))
            .segment_len(Some(segment)),
    );
    let stream = seen(
        Capture::from_reader("s", std::io::Cursor::new(bytes.to_vec()))
            .unwrap()
            .workers(2),
    );
    let gz = codecs::compress("gzip", bytes);
    let gzip_file = seen(
        Capture::from_bytes("g", gz.clone())
            .unwrap()
            .split(Split::Packets(7)),
    );
    let gzip_stream = seen(
        Capture::from_reader("gs", std::io::Cursor::new(gz))
            .unwrap()
            .split(Split::Chunks(chunks)),
    );
    for (what, other) in [
        ("stream", &stream),
        ("gzip file", &gzip_file),
        ("gzip stream", &gzip_stream),
    ] {
        assert_eq!(file.1, other.1, "{what}: the same damage passed over");
        assert_eq!(file.0.len(), other.0.len(), "{what}: packet count");
        assert!(file.0 == other.0, "{what}: the same packets");
    }
    file
}

#[derive(Debug, Clone)]
enum Damage {
    Insert(usize, Vec<u8>),
    /// A block header claiming `len` bytes, inserted (pcapng's fake IDB).
    FakeBlock(usize, u32, u32),
    Delete(usize, usize),
    Overwrite(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    let at = any::<prop::sample::Index>();
    prop_oneof![
        (at.clone(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(i, b)| Damage::Insert(i.index(1 << 30), b)),
        (at.clone(), 1u32..7, 12u32..(16 << 20)).prop_map(|(i, t, l)| Damage::FakeBlock(
            i.index(1 << 30),
            t,
            l
        )),
        (at.clone(), 1usize..64).prop_map(|(i, n)| Damage::Delete(i.index(1 << 30), n)),
        (at, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Damage::Overwrite(i.index(1 << 30), b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    // Never the first 32 bytes: the format must still be told.
    let at = |i: usize, n: usize| 32 + i % n.saturating_sub(32).max(1);
    match d {
        Damage::Insert(i, b) => {
            let p = at(*i, bytes.len());
            bytes.splice(p..p, b.iter().copied());
        }
        Damage::FakeBlock(i, t, l) => {
            let p = at(*i, bytes.len());
            let mut h = t.to_le_bytes().to_vec();
            h.extend_from_slice(&(l & !3).to_le_bytes());
            bytes.splice(p..p, h);
        }
        Damage::Delete(i, n) => {
            let p = at(*i, bytes.len()).min(bytes.len());
            let e = (p + n).min(bytes.len());
            bytes.drain(p..e);
        }
        Damage::Overwrite(i, b) => {
            let p = at(*i, bytes.len());
            for (k, x) in b.iter().enumerate() {
                if let Some(y) = bytes.get_mut(p + k) {
                    *y = *x;
                }
            }
        }
    }
}

const BASES: [&str; 3] = [
    "rusticata__pcap-parser__wireshark_samples-test.pcapng",
    "the-tcpdump-group__tcpdump__of13_ericsson.pcapng",
    "seladb__PcapPlusPlus__http-packets.pcap",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn damaged_captures_give_the_same_packets_from_a_file_and_a_stream(
        base in 0usize..BASES.len(),
        damages in prop::collection::vec(damage(), 1..24),
        chunks in 1usize..6,
        segment in 64usize..20_000,
    ) {
        let mut bytes = std::fs::read(capture_file(BASES[base]).expect("shipped in samples/real")).unwrap();
        for d in &damages {
            apply(&mut bytes, d);
        }
        agree(&bytes, chunks, segment);
    }
}

/// The case: twenty insertions, one of them a fake IDB claiming
/// 16 MiB, in a pcapng, gzipped: the stream used to latch onto the fake
/// and drop the rest of the capture.
#[test]
fn twenty_insertions_and_a_fake_sixteen_mebibyte_block() {
    let clean = std::fs::read(capture_file(BASES[0]).expect("shipped in samples/real")).unwrap();
    let mut bytes = clean.clone();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    for k in 0..20 {
        let d = if k == 10 {
            Damage::FakeBlock(next(), 1, (16 << 20) - 4)
        } else {
            Damage::Insert(next(), (0..1 + next() % 40).map(|_| next() as u8).collect())
        };
        apply(&mut bytes, &d);
    }
    let (packets, skipped) = agree(&bytes, 3, 4096);
    let all = Capture::from_bytes("clean", clean)
        .unwrap()
        .count()
        .unwrap();
    assert!(!skipped.is_empty());
    assert!(skipped.len() <= 20, "{skipped:?}");
    // Each insertion costs at most the record it landed in, and the
    // records it took along: most packets survive, in the stream too.
    assert!(
        packets.len() as u64 >= all * 3 / 4,
        "{} of {all} packets",
        packets.len()
    );
}

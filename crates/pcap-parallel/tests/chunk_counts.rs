//! How many chunks a split gives on small, empty and damaged inputs (issue
//! 9, points 8 and 9): never a chunk without packets from an input that
//! has packets, exactly one chunk from an input without packets, and at
//! most K chunks for `Split::Chunks(K)`, damage passed over or not.

mod common;

use common::capture_file;
use pcap_parallel::{Capture, OnError, Split};

fn block(btype: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().next_multiple_of(4);
    let len = (12 + padded) as u32;
    let mut v = btype.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    v.resize(8 + padded, 0);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// A section header with `options` bytes of (comment) options.
fn shb(options: usize) -> Vec<u8> {
    let mut body = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    body.extend_from_slice(&[1, 0, 0, 0]);
    body.extend_from_slice(&(-1i64).to_le_bytes());
    if options > 0 {
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&(options as u16).to_le_bytes());
        body.extend(std::iter::repeat_n(b'x', options));
        body.resize(body.len().next_multiple_of(4), 0);
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(0x0A0D_0D0A, &body)
}

fn idb() -> Vec<u8> {
    block(1, &[1, 0, 0, 0, 0, 0, 0, 0])
}

fn epb(data: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8; 12];
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    block(6, &body)
}

/// An interface statistics block.
fn isb() -> Vec<u8> {
    block(5, &[0u8; 12])
}

/// (packets per chunk) for every way of reading `bytes` with `split`.
fn chunk_packets(bytes: &[u8], split: Split, policy: OnError) -> Vec<(String, Vec<u64>)> {
    let ways: Vec<(&str, Capture)> = vec![
        (
            "file",
            Capture::from_bytes("f", bytes.to_vec())
                .unwrap()
                .segment_len(Some(64)),
        ),
        (
            "stream",
            Capture::from_reader("s", std::io::Cursor::new(bytes.to_vec())).unwrap(),
        ),
    ];
    ways.into_iter()
        .map(|(what, c)| {
            let counts = c
                .split(split)
                .on_error(policy)
                .workers(2)
                .map(|chunk| chunk.packet_count())
                .unwrap();
            (what.to_string(), counts)
        })
        .collect()
}

#[test]
fn a_one_packet_pcapng_gives_one_chunk_with_its_packet() {
    // A large section header: a cut by bytes would fall before the packet.
    let mut bytes = shb(400);
    bytes.extend(idb());
    bytes.extend(epb(&[7u8; 60]));
    bytes.extend(isb());
    for split in [Split::Chunks(3), Split::Bytes(50), Split::Packets(1)] {
        for (what, counts) in chunk_packets(&bytes, split, OnError::Stop) {
            assert_eq!(counts, vec![1], "{what} {split:?}");
        }
    }
}

#[test]
fn trailing_blocks_without_packets_join_the_last_chunk() {
    let mut bytes = shb(0);
    bytes.extend(idb());
    for i in 0..10u8 {
        bytes.extend(epb(&[i; 40]));
    }
    for _ in 0..5 {
        bytes.extend(isb());
    }
    for split in [Split::Packets(3), Split::Bytes(100), Split::Chunks(4)] {
        for (what, counts) in chunk_packets(&bytes, split, OnError::Stop) {
            assert!(
                counts.iter().all(|&n| n > 0),
                "{what} {split:?}: {counts:?}"
            );
            assert_eq!(counts.iter().sum::<u64>(), 10, "{what} {split:?}");
        }
    }
}

#[test]
fn an_input_without_packets_gives_exactly_one_chunk() {
    let mut bytes = shb(0);
    bytes.extend(idb());
    bytes.extend(isb());
    for split in [Split::Chunks(3), Split::Packets(1), Split::Bytes(8)] {
        for (what, counts) in chunk_packets(&bytes, split, OnError::Stop) {
            assert_eq!(counts, vec![0], "{what} {split:?}");
        }
    }
    // A pcap file header alone: one chunk too (it reads as the header).
    let pcap = std::fs::read(
        capture_file("seladb__PcapPlusPlus__http-packets.pcap").expect("shipped in samples/real"),
    )
    .unwrap();
    for (what, counts) in chunk_packets(&pcap[..24], Split::Chunks(3), OnError::Stop) {
        assert_eq!(counts, vec![0], "{what}");
    }
}

#[test]
fn chunks_k_gives_at_most_k_chunks_on_damaged_input() {
    let name = "seladb__PcapPlusPlus__http-packets.pcap";
    let mut bytes = std::fs::read(capture_file(name).expect("shipped in samples/real")).unwrap();
    let all = Capture::from_bytes(name, bytes.clone())
        .unwrap()
        .count()
        .unwrap();
    // Ten damaged record headers (impossible captured lengths), spread out.
    let offsets: Vec<u64> = Capture::from_bytes(name, bytes.clone())
        .unwrap()
        .map(|c| c.packets().map(|p| p.offset).collect::<Vec<_>>())
        .unwrap()
        .concat();
    for k in 1..=10 {
        let o = offsets[k * offsets.len() / 11] as usize;
        bytes[o + 8..o + 12].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    }
    for k in [1, 3, 7] {
        let whole = Capture::from_bytes(name, bytes.clone())
            .unwrap()
            .segment_len(Some(100_000))
            .split(Split::Chunks(k))
            .on_error(OnError::Skip)
            .map(|c| c.packets().map(|p| p.offset).collect::<Vec<_>>())
            .unwrap();
        assert!(
            !whole.is_empty() && whole.len() <= k,
            "{k} asked, {} chunks",
            whole.len()
        );
        let got = whole.concat();
        assert_eq!(
            got.len() as u64,
            all - 10,
            "every packet but the damaged ones"
        );
    }
    // Stopping at the first damage: at most K chunks too.
    let stopped = Capture::from_bytes(name, bytes)
        .unwrap()
        .split(Split::Chunks(3))
        .run(|c| Ok(c.packet_count()), |_| {});
    assert!(stopped.chunks <= 3 && stopped.input_error.is_some());
}

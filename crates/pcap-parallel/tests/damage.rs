//! Broken input: captures cut at every byte offset, damaged record headers
//! passed over with the skip policy, corrupt compressed streams. Never a
//! panic, never a lost or invented packet before the fault.

mod codecs;
mod common;

use common::*;
use pcap_parallel::{Capture, Error, OnError, Split};

/// A packet as delivered: where its record starts and ends, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct P {
    offset: u64,
    end: u64,
    data: Vec<u8>,
}

/// Where the record holding `data` at `offset` ends.
fn record_end(bytes: &[u8], offset: u64, caplen: usize) -> u64 {
    let o = offset as usize;
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        // pcapng: the block length, in whichever byte order matches its trailer.
        let le = u32::from_le_bytes(bytes[o + 4..o + 8].try_into().unwrap()) as usize;
        let be = u32::from_be_bytes(bytes[o + 4..o + 8].try_into().unwrap()) as usize;
        let ok = |l: usize| {
            o + l <= bytes.len() && l >= 12 && bytes[o + l - 4..o + l] == bytes[o + 4..o + 8]
        };
        (o + if ok(le) { le } else { be }) as u64
    } else {
        let rh = if bytes[..4] == [0x34, 0xcd, 0xb2, 0xa1] || bytes[..4] == [0xa1, 0xb2, 0xcd, 0x34]
        {
            24
        } else {
            16
        };
        (o + rh + caplen) as u64
    }
}

/// Every offset where a record or block ends (and the pcap file header),
/// found by a walk of its own: where a cut leaves no partial record.
fn record_ends(bytes: &[u8]) -> std::collections::HashSet<u64> {
    let mut ends = std::collections::HashSet::new();
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut off = 0;
        let mut le = true;
        while off + 12 <= bytes.len() {
            if bytes[off..off + 4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                le = bytes[off + 8..off + 12] == [0x4d, 0x3c, 0x2b, 0x1a];
            }
            let raw: [u8; 4] = bytes[off + 4..off + 8].try_into().unwrap();
            let len = if le {
                u32::from_le_bytes(raw)
            } else {
                u32::from_be_bytes(raw)
            } as usize;
            if len < 12 || off + len > bytes.len() {
                break;
            }
            off += len;
            ends.insert(off as u64);
        }
    } else {
        let modified =
            bytes[..4] == [0x34, 0xcd, 0xb2, 0xa1] || bytes[..4] == [0xa1, 0xb2, 0xcd, 0x34];
        let le = bytes[0] == 0xd4 || bytes[0] == 0x4d || bytes[0] == 0x34;
        let rh = if modified { 24 } else { 16 };
        let mut off = 24;
        ends.insert(24);
        while off + rh <= bytes.len() {
            let raw: [u8; 4] = bytes[off + 8..off + 12].try_into().unwrap();
            let caplen = if le {
                u32::from_le_bytes(raw)
            } else {
                u32::from_be_bytes(raw)
            } as usize;
            off += rh + caplen;
            ends.insert(off as u64);
        }
    }
    ends
}

fn run(capture: Capture) -> (Vec<P>, Option<Error>, Vec<pcap_parallel::Skipped>) {
    let mut got = Vec::new();
    let report = capture.run(
        |c| {
            Ok(c.packets()
                .map(|p| (p.offset, p.data.to_vec()))
                .collect::<Vec<_>>())
        },
        |r| got.extend(r.result.unwrap()),
    );
    (
        got.into_iter()
            .map(|(offset, data)| P {
                offset,
                end: 0,
                data,
            })
            .collect(),
        report.input_error,
        report.skipped,
    )
}

fn reference(bytes: &[u8]) -> Vec<P> {
    let (mut ps, err, _) = run(Capture::from_bytes("ref", bytes.to_vec())
        .unwrap()
        .workers(1));
    assert!(err.is_none());
    for p in &mut ps {
        p.end = record_end(bytes, p.offset, p.data.len());
    }
    ps
}

const FILES: [&str; 6] = [
    "appneta__tcpreplay__test.pcap",
    "seladb__PcapPlusPlus__nanosecs_big_endian.pcap",
    "rusticata__pcap-parser__modified-format.pcap",
    "hadrielk__pcapng-test-generator__output_le--difficult--test202.pcapng",
    "hadrielk__pcapng-test-generator__output_be--advanced--test102.pcapng",
    "seladb__PcapPlusPlus__many_interfaces-1.pcapng",
];

#[test]
fn a_capture_cut_anywhere_gives_exactly_the_complete_packets_before_the_cut() {
    for name in FILES {
        let Some(path) = capture_file(name) else {
            continue;
        };
        let bytes = std::fs::read(path).unwrap();
        let all = reference(&bytes);
        let boundaries = record_ends(&bytes);
        let mut cuts: Vec<usize> = (0..bytes.len().min(4096)).collect();
        let step = (bytes.len() / 150).max(1);
        cuts.extend((4096..bytes.len()).step_by(step));
        for cut in cuts {
            let cut_bytes = bytes[..cut].to_vec();
            let want: Vec<&P> = all.iter().filter(|p| p.end <= cut as u64).collect();
            for streamed in [false, true] {
                let what = format!("{name} cut at {cut}, streamed {streamed}");
                let capture = if streamed {
                    Capture::from_reader(name, std::io::Cursor::new(cut_bytes.clone()))
                } else {
                    Capture::from_bytes(name, cut_bytes.clone())
                };
                let capture = match capture {
                    Ok(c) => c,
                    // Fewer than four bytes: not even a magic number.
                    Err(Error::UnknownFormat { .. }) if cut < 4 => continue,
                    Err(e) => panic!("{what}: {e}"),
                };
                let (got, err, _) = run(capture
                    .split(Split::Chunks(3))
                    .segment_len(Some(150))
                    .workers(2));
                assert_eq!(got.len(), want.len(), "{what}: packets");
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(g, w)| g.offset == w.offset && g.data == w.data),
                    "{what}"
                );
                let clean_end =
                    cut == bytes.len() || boundaries.contains(&(cut as u64)) && cut > 24;
                match err {
                    None => assert!(
                        clean_end || cut == 24 && !name.ends_with("pcapng"),
                        "{what}: no error"
                    ),
                    Some(Error::Format(f)) => {
                        assert!(f.fault.is_truncation(), "{what}: {f}");
                        assert!(f.offset <= cut as u64, "{what}: {f}");
                        assert_eq!(f.packet, want.len() as u64 + 1, "{what}: {f}");
                    }
                    Some(e) => panic!("{what}: {e}"),
                }
            }
        }
    }
}

/// Makes record `k`'s header impossible: its captured length (pcap) or its
/// block length (pcapng) becomes absurd.
fn damage(bytes: &mut [u8], p: &P) {
    let o = p.offset as usize;
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        bytes[o + 4..o + 8].copy_from_slice(&[0x03, 0x03, 0x03, 0x03]);
    } else {
        bytes[o + 8..o + 12].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    }
}

#[test]
fn the_skip_policy_recovers_every_packet_outside_the_damage() {
    for name in [
        "appneta__tcpreplay__test.pcap",
        "seladb__PcapPlusPlus__http-packets.pcap",
        "RIPE-NCC__hadoop-pcap__reversedtest.pcap",
        "rusticata__pcap-parser__wireshark_samples-test.pcapng",
        "seladb__PcapPlusPlus__many_interfaces-1.pcapng",
    ] {
        let Some(path) = capture_file(name) else {
            continue;
        };
        let bytes = std::fs::read(path).unwrap();
        let all = reference(&bytes);
        let n = all.len();
        for victims in [vec![n / 2], vec![1, n / 3, n - 2], vec![n - 1]] {
            let mut broken = bytes.clone();
            for &k in &victims {
                damage(&mut broken, &all[k]);
            }
            let want: Vec<&P> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| !victims.contains(i))
                .map(|(_, p)| p)
                .collect();
            for streamed in [false, true] {
                let what = format!("{name}, damaged {victims:?}, streamed {streamed}");
                let capture = if streamed {
                    Capture::from_reader(name, std::io::Cursor::new(broken.clone())).unwrap()
                } else {
                    Capture::from_bytes(name, broken.clone())
                        .unwrap()
                        .segment_len(Some(4096))
                };
                let (got, err, skipped) = run(capture
                    .on_error(OnError::Skip)
                    .split(Split::Chunks(4))
                    .workers(2));
                assert!(err.is_none(), "{what}: {err:?}");
                assert_eq!(got.len(), want.len(), "{what}: packets recovered");
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(g, w)| g.offset == w.offset && g.data == w.data),
                    "{what}"
                );
                assert_eq!(skipped.len(), victims.len(), "{what}: {skipped:?}");
                for (s, &k) in skipped.iter().zip(&victims) {
                    assert_eq!(s.offset, all[k].offset, "{what}");
                    assert_eq!(
                        s.offset + s.len,
                        all[k].end,
                        "{what}: the damaged record exactly"
                    );
                }
            }
            // Stopping instead: every packet before the first damaged record, then the error.
            let (got, err, _) = run(Capture::from_bytes(name, broken.clone())
                .unwrap()
                .workers(2));
            assert_eq!(got.len(), victims[0], "{name}: stop policy");
            let Some(Error::Format(f)) = err else {
                panic!("{name}: {err:?}")
            };
            assert_eq!(f.offset, all[victims[0]].offset);
        }
    }
}

#[test]
fn corrupt_or_truncated_compressed_streams_keep_the_packets_before_the_damage() {
    let bytes =
        std::fs::read(capture_file("seladb__PcapPlusPlus__http-packets.pcap").unwrap()).unwrap();
    let all = reference(&bytes);
    for codec in ["gzip", "bzip2", "xz", "zstd", "lz4"] {
        let packed = codecs::compress(codec, &bytes);
        let len = packed.len();
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        for frac in [10, 50, 90, 99] {
            cases.push((
                format!("truncated at {frac}%"),
                packed[..len * frac / 100].to_vec(),
            ));
            let mut flipped = packed.clone();
            flipped[len * frac / 100] ^= 0x55;
            cases.push((format!("byte flipped at {frac}%"), flipped));
        }
        for (what, data) in cases {
            let flipped = what.contains("flipped");
            let what = format!("{codec}: {what}");
            let capture = match Capture::from_bytes("c", data) {
                Ok(c) => c,
                Err(e) => {
                    // Damage within the first bytes may hide the format itself.
                    assert!(
                        matches!(e, Error::Decompress { .. } | Error::UnknownFormat { .. }),
                        "{what}: {e}"
                    );
                    continue;
                }
            };
            let (got, err, _) = run(capture.split(Split::Packets(100)).workers(2));
            assert!(got.len() <= all.len(), "{what}");
            if flipped {
                // A flipped bit inside compressed data can decode to other
                // bytes before any check fails (gzip checks its CRC only at
                // the end of a member): the damage must be reported, but the
                // packets before it cannot all be vouched for.
                assert!(
                    err.is_some() || got.len() == all.len(),
                    "{what}: damage reported"
                );
                continue;
            }
            // Cut short: what came out is the start of the capture, exactly.
            assert!(
                got.iter()
                    .zip(&all)
                    .all(|(g, w)| g.offset == w.offset && g.data == w.data),
                "{what}: a prefix"
            );
            match err {
                Some(Error::Decompress { compression, .. }) => {
                    assert!(codec.starts_with(compression.name()), "{what}")
                }
                Some(Error::Format(f)) => assert!(got.len() < all.len(), "{what}: {f}"),
                None => assert_eq!(got.len(), all.len(), "{what}: no error, then everything"),
                Some(e) => panic!("{what}: {e}"),
            }
        }
    }
}

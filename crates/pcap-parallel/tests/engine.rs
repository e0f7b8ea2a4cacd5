//! The engine's contract beyond the corpus fingerprints: every compression
//! format (multi-member and multi-frame included), `max_packets`, failing
//! and panicking closures, cancellation and progress.

mod codecs;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use pcap_parallel::{Capture, ChunkFailureCause, Error, Progress, Split};

/// A capture of the corpus, when it is shipped in `samples/real` or the
/// corpus is there.
fn corpus_file(name: &str) -> Option<Vec<u8>> {
    capture_file(name).map(|p| std::fs::read(p).unwrap())
}

const FILES: [&str; 6] = [
    "appneta__tcpreplay__test.pcap",
    "RIPE-NCC__hadoop-pcap__reversedtest.pcap",
    "seladb__PcapPlusPlus__nanosecs_big_endian.pcap",
    "rusticata__pcap-parser__modified-format.pcap",
    "hadrielk__pcapng-test-generator__output_le--difficult--test202.pcapng",
    "rusticata__pcap-parser__wireshark_samples-test.pcapng",
];

#[test]
fn every_compression_format_gives_the_same_packets() {
    let dir = tempfile::tempdir().unwrap();
    for name in FILES {
        let Some(plain) = corpus_file(name) else {
            continue;
        };
        let expected =
            packet_tuples(Capture::from_bytes(name, plain.clone()).unwrap().workers(1)).unwrap();
        assert!(!expected.is_empty());
        for codec in ["gzip", "bzip2", "xz", "zstd", "zstd-skippable", "lz4"] {
            let packed = codecs::compress_in_two(codec, &plain);
            let c = Capture::from_bytes(name, packed.clone()).unwrap();
            assert!(codec.starts_with(c.compression().name()), "{codec}");
            assert!(!c.is_mapped());
            for split in [
                Split::Auto,
                Split::Packets(3),
                Split::Bytes(5000),
                Split::Chunks(4),
            ] {
                let got = packet_tuples(
                    Capture::from_bytes(name, packed.clone())
                        .unwrap()
                        .split(split)
                        .workers(3),
                )
                .unwrap();
                assert!(got == expected, "{name} {codec} {split:?}");
            }
            // From a file: detected by magic, whatever the name says.
            let path = dir.path().join(format!("{codec}-{name}.pcap"));
            std::fs::write(&path, &packed).unwrap();
            let got = packet_tuples(Capture::open(&path).unwrap().workers(2)).unwrap();
            assert!(got == expected, "{name} {codec} from a file");
        }
    }
}

#[test]
fn max_packets_stops_after_exactly_that_many() {
    for name in FILES {
        let Some(plain) = corpus_file(name) else {
            continue;
        };
        let all =
            packet_tuples(Capture::from_bytes(name, plain.clone()).unwrap().workers(1)).unwrap();
        let n = all.len() as u64;
        for max in [0, 1, 2, 7, n.saturating_sub(1), n, n + 5] {
            for split in [Split::Chunks(1), Split::Chunks(5), Split::Packets(2)] {
                let want = &all[..(max.min(n) as usize)];
                let mapped = Capture::from_bytes(name, plain.clone())
                    .unwrap()
                    .split(split)
                    .segment_len(Some(512))
                    .max_packets(Some(max));
                assert!(
                    packet_tuples(mapped).unwrap() == want,
                    "{name} max {max} {split:?} mapped"
                );
                let streamed = Capture::from_reader(name, std::io::Cursor::new(plain.clone()))
                    .unwrap()
                    .split(split)
                    .max_packets(Some(max));
                assert!(
                    packet_tuples(streamed).unwrap() == want,
                    "{name} max {max} {split:?} streamed"
                );
            }
        }
    }
}

fn sample() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/sample.pcap"
    ))
    .unwrap()
}

#[test]
fn a_panicking_closure_is_reported_with_its_chunk_and_the_others_finish() {
    for mapped in [true, false] {
        let c = if mapped {
            Capture::from_bytes("sample", sample()).unwrap()
        } else {
            Capture::from_reader("sample", std::io::Cursor::new(sample())).unwrap()
        };
        let mut delivered = Vec::new();
        let report = c.split(Split::Packets(100)).workers(3).run(
            |chunk| {
                if chunk.index() == 2 {
                    panic!("boom in chunk {}", chunk.index());
                }
                Ok(chunk.packet_count())
            },
            |r| {
                delivered.push((
                    r.index,
                    r.result
                        .map_err(|f| (f.index, f.range, f.cause.to_string())),
                ))
            },
        );
        assert!(report.input_error.is_none());
        assert_eq!(report.failed_chunks, 1);
        assert_eq!(delivered.len(), 10, "every chunk is delivered, in order");
        for (i, (index, result)) in delivered.iter().enumerate() {
            assert_eq!(*index, i);
            if i == 2 {
                let (fi, range, cause) = result.as_ref().unwrap_err();
                assert_eq!(*fi, 2);
                assert!(range.start > 0 && range.end > range.start);
                assert_eq!(cause, "panicked: boom in chunk 2");
            } else {
                assert_eq!(result.as_ref().unwrap(), &100);
            }
        }
    }
    // `map` turns the failure into an error naming the chunk and its bytes.
    let err = Capture::from_bytes("sample", sample())
        .unwrap()
        .split(Split::Chunks(4))
        .map(|c| if c.index() == 3 { panic!("last") } else { 1 })
        .unwrap_err();
    let Error::Chunk(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(f.index, 3);
    assert!(matches!(f.cause, ChunkFailureCause::Panic(_)));
    assert!(err.to_string().starts_with("chunk 3 (bytes "), "{err}");
}

#[test]
fn errors_from_closures_and_fail_fast() {
    let err = Capture::from_bytes("sample", sample())
        .unwrap()
        .split(Split::Packets(100))
        .try_map(|c| {
            if c.index() >= 5 {
                Err(format!("bad chunk {}", c.index()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert_eq!(
        err.to_string().split(": ").last(),
        Some("bad chunk 5"),
        "the first failure in file order"
    );
    // With fail_fast, chunks after a failure are not started.
    let started = std::sync::atomic::AtomicUsize::new(0);
    let report = Capture::from_bytes("sample", sample())
        .unwrap()
        .split(Split::Packets(10))
        .workers(1)
        .fail_fast(true)
        .run(
            |c| {
                started.fetch_add(1, Ordering::Relaxed);
                if c.index() == 1 {
                    Err("stop".into())
                } else {
                    Ok(())
                }
            },
            |_| {},
        );
    assert_eq!(report.failed_chunks, 1);
    assert!(
        started.load(Ordering::Relaxed) < 100,
        "fail_fast stopped the run early"
    );
}

#[test]
fn cancellation_stops_the_run_without_hanging() {
    for mapped in [true, false] {
        let flag = Arc::new(AtomicBool::new(false));
        let c = if mapped {
            Capture::from_bytes("sample", sample()).unwrap()
        } else {
            Capture::from_reader("sample", std::io::Cursor::new(sample())).unwrap()
        };
        let f = flag.clone();
        let report = c
            .split(Split::Packets(5))
            .workers(2)
            .cancel_flag(flag.clone())
            .run(
                move |c| {
                    if c.index() == 3 {
                        f.store(true, Ordering::Relaxed);
                    }
                    Ok(())
                },
                |_| {},
            );
        assert!(
            matches!(report.input_error, Some(Error::Cancelled)),
            "{:?}",
            report.input_error
        );
        assert!(report.chunks < 200);
    }
}

#[test]
fn progress_counts_reach_the_totals() {
    let bytes = sample();
    let len = bytes.len() as u64;
    let p = Arc::new(Progress::default());
    let n = Capture::from_bytes("sample", bytes)
        .unwrap()
        .progress(p.clone())
        .split(Split::Chunks(5))
        .count()
        .unwrap();
    assert_eq!(n, 1000);
    assert_eq!(p.packets_done.load(Ordering::Relaxed), 1000);
    assert_eq!(p.bytes_total.load(Ordering::Relaxed), len);
    assert_eq!(
        p.bytes_done.load(Ordering::Relaxed),
        len,
        "every byte, the file header too, once the input is read to its end"
    );
    assert_eq!(p.chunks_done.load(Ordering::Relaxed), 5);
}

#[test]
fn a_deliver_callback_that_panics_does_not_hang_the_pool() {
    let result = std::panic::catch_unwind(|| {
        let _ = Capture::from_bytes("sample", sample())
            .unwrap()
            .split(Split::Packets(10))
            .workers(2)
            .run(
                |_| Ok(()),
                |r| {
                    if r.index == 1 {
                        panic!("in deliver");
                    }
                },
            );
    });
    assert!(result.is_err());
}

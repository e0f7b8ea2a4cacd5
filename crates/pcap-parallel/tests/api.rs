//! The library as a dependency sees it: what the README uses is at the
//! root, the shorthands can see what was skipped, the packet limit counts
//! what the filter keeps and stops before what follows, and errors read as
//! one message however they are printed. On the shipped sample only.

mod common;

use std::sync::{Arc, Mutex};

// What the README's examples name, from the crate root.
use pcap_parallel::{Capture, Error, Filter, OnError, Split};

fn sample() -> Vec<u8> {
    std::fs::read(common::repo_root().join("samples/sample.pcap")).unwrap()
}

/// Offset of record `k` (from 0) of the sample (little-endian pcap).
fn record_offset(bytes: &[u8], k: usize) -> usize {
    let mut off = 24;
    for _ in 0..k {
        off += 16 + u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
    }
    off
}

/// The sample with record `k` claiming 2 GiB.
fn damaged(k: usize) -> Vec<u8> {
    let mut bytes = sample();
    let off = record_offset(&bytes, k);
    bytes[off + 8..off + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    bytes
}

/// The ways to read `bytes`: mapped, streamed, and streamed into a spool.
fn ways(bytes: &[u8], split: Split) -> Vec<(String, Capture)> {
    let mapped = Capture::from_bytes("x", bytes.to_vec())
        .unwrap()
        .split(split)
        .segment_len(Some(4096));
    let streamed = Capture::from_reader("x", std::io::Cursor::new(bytes.to_vec()))
        .unwrap()
        .split(split);
    let spooled = Capture::from_reader("x", std::io::Cursor::new(bytes.to_vec()))
        .unwrap()
        .split(Split::Chunks(3));
    vec![
        (format!("mapped {split:?}"), mapped),
        (format!("streamed {split:?}"), streamed),
        ("spooled Chunks(3)".into(), spooled),
    ]
}

fn numbers(capture: Capture) -> pcap_parallel::Result<Vec<u64>> {
    Ok(capture
        .workers(2)
        .map(|c| c.packets().map(|p| p.number).collect::<Vec<_>>())?
        .concat())
}

#[test]
fn the_packet_limit_counts_the_packets_the_filter_keeps() {
    let bytes = sample();
    let kept = numbers(
        Capture::from_bytes("x", bytes.clone())
            .unwrap()
            .filter(Filter::new("udp").unwrap()),
    )
    .unwrap();
    assert!(kept.len() > 200);
    for split in [
        Split::Auto,
        Split::Packets(10),
        Split::Bytes(3000),
        Split::Chunks(5),
    ] {
        for limit in [1u64, 37, 100, kept.len() as u64, kept.len() as u64 + 9] {
            for (what, capture) in ways(&bytes, split) {
                let what = format!("{what}, at most {limit}");
                let got = numbers(
                    capture
                        .filter(Filter::new("udp").unwrap())
                        .max_packets(Some(limit)),
                )
                .unwrap();
                let n = (limit as usize).min(kept.len());
                assert_eq!(got, kept[..n], "{what}");
            }
        }
    }
    // The standalone views end with the last packet wanted.
    let views: Vec<Vec<u8>> = Capture::from_bytes("x", bytes.clone())
        .unwrap()
        .filter(Filter::new("udp").unwrap())
        .max_packets(Some(100))
        .split(Split::Chunks(4))
        .map(|c| {
            let mut v = Vec::new();
            c.write_standalone(&mut v).unwrap();
            v
        })
        .unwrap();
    let total: u64 = views
        .into_iter()
        .map(|v| Capture::from_bytes("view", v).unwrap().count().unwrap())
        .sum();
    assert_eq!(total, 100);
}

#[test]
fn the_packet_limit_stops_before_damage_after_it() {
    // Damage at packet 19: 18 packets are all there is before it.
    let bytes = damaged(18);
    for split in [Split::Auto, Split::Packets(5), Split::Chunks(4)] {
        for (what, capture) in ways(&bytes, split) {
            let got = numbers(capture.max_packets(Some(18)));
            assert_eq!(got.unwrap(), (1..=18).collect::<Vec<_>>(), "{what}");
        }
        for (what, capture) in ways(&bytes, split) {
            let err = numbers(capture.max_packets(Some(19))).unwrap_err();
            let Error::Format(f) = err else {
                panic!("{what}: {err}")
            };
            assert_eq!(f.packet, 19, "{what}");
        }
        // With a filter, the limit counts kept packets: the damage comes
        // before the 18th TCP packet, after the 5th.
        for (what, capture) in ways(&bytes, split) {
            let tcp = || Filter::new("tcp").unwrap();
            let five = numbers(capture.filter(tcp()).max_packets(Some(5)));
            assert_eq!(five.unwrap().len(), 5, "{what}");
        }
        for (what, capture) in ways(&bytes, split) {
            let err = numbers(
                capture
                    .filter(Filter::new("tcp").unwrap())
                    .max_packets(Some(18)),
            );
            assert!(matches!(err, Err(Error::Format(_))), "{what}: {err:?}");
        }
    }
}

#[test]
fn the_shorthands_can_see_what_was_skipped() {
    let bytes = damaged(500);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let packets = Capture::from_bytes("x", bytes.clone())
        .unwrap()
        .on_error(OnError::Skip)
        .on_skipped(move |s| log.lock().unwrap().push(s.clone()))
        .fold_packets(|| 0u64, |n, _| n + 1, |a, b| a + b)
        .unwrap();
    assert_eq!(packets, 999);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].offset, record_offset(&bytes, 500) as u64);
    assert_eq!(seen[0].packet, 501);
    // The same through the other ways to run, streamed too, and flows.
    for streamed in [false, true] {
        let count = Arc::new(Mutex::new(0));
        let c = count.clone();
        let capture = if streamed {
            Capture::from_reader("x", std::io::Cursor::new(bytes.clone())).unwrap()
        } else {
            Capture::from_bytes("x", bytes.clone()).unwrap()
        };
        let shards = capture
            .on_error(OnError::Skip)
            .on_skipped(move |_| *c.lock().unwrap() += 1)
            .flows(3)
            .fold(|_| 0u64, |n, _| *n += 1, |_, n| n)
            .unwrap();
        assert_eq!(shards.iter().sum::<u64>(), 999);
        assert_eq!(*count.lock().unwrap(), 1, "streamed {streamed}");
    }
    // Nothing skipped, nothing called.
    let called = Arc::new(Mutex::new(false));
    let c = called.clone();
    Capture::from_bytes("x", sample())
        .unwrap()
        .on_error(OnError::Skip)
        .on_skipped(move |_| *c.lock().unwrap() = true)
        .count()
        .unwrap();
    assert!(!*called.lock().unwrap());
}

#[test]
fn the_report_says_it_counts_every_packet_read() {
    let report = Capture::from_bytes("x", sample())
        .unwrap()
        .filter(Filter::new("udp").unwrap())
        .run(|c| Ok(c.packets().count() as u64), |_| {});
    assert_eq!(report.packets_read, 1000, "before the filter");
}

#[test]
fn errors_read_as_one_message_however_printed() {
    // An I/O error: the OS's words once, whether printed alone or as a chain.
    let e = Capture::open("/nonexistent/x.pcap").unwrap_err();
    let message = "/nonexistent/x.pcap: No such file or directory (os error 2)";
    assert_eq!(e.to_string(), message);
    assert_eq!(
        format!("{e:?}"),
        message,
        "what `fn main() -> Result<(), Error>` prints"
    );
    assert!(
        std::error::Error::source(&e).is_none(),
        "not repeated by a chain"
    );
    assert!(format!("{e:#?}").contains("NotFound"), "{e:#?}");
    // A closure's failure.
    let e = Capture::from_bytes("x", sample())
        .unwrap()
        .try_map(|c| if c.index() == 0 { Err("boom") } else { Ok(()) })
        .unwrap_err();
    assert!(e.to_string().ends_with(": boom"), "{e}");
    assert_eq!(format!("{e:?}"), e.to_string());
    assert!(std::error::Error::source(&e).is_none());
    // A corrupt compressed stream.
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut w = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        w.write_all(&sample()).unwrap();
        w.finish().unwrap();
    }
    gz.truncate(gz.len() / 2);
    let e = Capture::from_bytes("x.gz", gz)
        .unwrap()
        .count()
        .unwrap_err();
    assert!(
        matches!(e, Error::Decompress { .. } | Error::Format(_)),
        "{e}"
    );
    assert_eq!(format!("{e:?}"), e.to_string());
    let chain = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>();
    assert_eq!(chain.len(), 1, "{chain:?}");
}

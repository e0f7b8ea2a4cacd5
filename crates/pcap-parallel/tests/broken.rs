//! Files of the corpus that end in a structural error: every complete
//! packet before the fault is delivered, exactly those `fingerprint.py`
//! reads, then an error naming the byte offset and the packet; never a
//! panic; the same whatever the chunking.

mod common;

use common::*;
use pcap_parallel::{Capture, Error, Split};

/// The byte offset in a `fingerprint.py` status, where it gives one.
fn status_offset(status: &str) -> Option<u64> {
    let rest = &status[status.find("offset ")? + 7..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn broken_files_deliver_every_packet_before_the_fault_then_fail() {
    let broken: Vec<Entry> = manifest().into_iter().filter(|e| !e.ok()).collect();
    let least = if whole_corpus() { 9 } else { 5 };
    assert!(broken.len() >= least, "the manifest lists its broken files");
    for e in &broken {
        let bytes = std::fs::read(&e.path).unwrap();
        let status = e.get("parser_status");
        for (split, segment, streamed) in [
            (Split::Chunks(1), None, false),
            (Split::Chunks(2), Some(64), false),
            (Split::Chunks(7), Some(100), false),
            (Split::Packets(1), Some(333), false),
            (Split::Bytes(200), None, true),
            (Split::Chunks(3), None, true),
        ] {
            let what = format!(
                "{}: {split:?}, segments {segment:?}, streamed {streamed}",
                e.file
            );
            let capture = if streamed {
                Capture::from_reader(&e.file, std::io::Cursor::new(bytes.clone()))
            } else {
                Capture::from_bytes(&e.file, bytes.clone())
            };
            let capture = capture
                .unwrap()
                .split(split)
                .segment_len(segment)
                .workers(2);
            let mut fp = Fingerprint::default();
            let report = capture.run(
                |c| {
                    let mut f = Replay::default();
                    f.add_chunk(c);
                    Ok(f)
                },
                |r| {
                    let part = r.result.unwrap();
                    // Fold the chunk's fingerprint into the running one in file order.
                    fp.merge(part);
                },
            );
            assert_eq!(
                fp.packets,
                e.packets(),
                "{what}: packets delivered before the fault"
            );
            assert_eq!(
                fp.data_sha256(),
                e.get("data_sha256"),
                "{what}: data_sha256"
            );
            assert_eq!(
                fp.records_sha256(),
                e.get("records_sha256"),
                "{what}: records_sha256"
            );
            let err = report
                .input_error
                .unwrap_or_else(|| panic!("{what}: no error reported"));
            let Error::Format(fe) = &err else {
                panic!("{what}: not a format error: {err}");
            };
            assert_eq!(fe.packet, e.packets() + 1, "{what}: packet number in {err}");
            if let Some(off) = status_offset(status) {
                assert_eq!(fe.offset, off, "{what}: offset in '{err}' vs '{status}'");
            }
            let msg = err.to_string();
            assert!(
                msg.starts_with(&e.file),
                "{what}: message names the file: {msg}"
            );
            assert!(
                msg.contains(&format!("at byte {}", fe.offset)),
                "{what}: {msg}"
            );
            assert_eq!(
                fe.fault.is_truncation(),
                status.contains("truncated"),
                "{what}: truncation or malformation: {msg} vs {status}"
            );
        }
    }
}

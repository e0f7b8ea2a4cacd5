//! The core engine against the real captures of the shared corpus: for
//! every well-formed file, every strategy and several chunk counts, the
//! packets equal what `fingerprint.py` (the corpus' reference reader) saw,
//! and every chunk reads back as a valid capture of its own, by this crate
//! and by independent readers (the pcap-file crate and capinfos).

mod common;

use std::io::Read;
use std::process::Command;

use common::*;
use pcap_parallel::{Capture, Split};

/// What identifies a packet: where it is, its lengths and its timestamp.
/// Equal keys at equal offsets of the same input mean equal packet bytes.
type Key = (u64, u32, u32, Option<i128>, u16, u32);

fn key(p: &pcap_parallel::Packet<'_>) -> Key {
    (
        p.offset,
        p.data.len() as u32,
        p.original_len,
        p.timestamp.map(|t| t.as_nanos()),
        p.link_type.0,
        p.interface_id,
    )
}

/// Per chunk: index, byte range, first packet number, its packets' keys.
type Run = Vec<(usize, std::ops::Range<u64>, u64, Vec<Key>)>;

fn collect(capture: Capture) -> Run {
    capture
        .map(|c| {
            (
                c.index(),
                c.byte_range(),
                c.first_packet_number(),
                c.packets().map(|p| key(&p)).collect(),
            )
        })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The packets of a file read in one chunk by one worker, checked against
/// the manifest's fingerprints: the reference the other runs must equal.
fn reference(e: &Entry, bytes: &[u8]) -> Vec<Key> {
    let mut fp = Fingerprint::default();
    let keys = Capture::from_bytes(&e.file, bytes.to_vec())
        .unwrap()
        .split(Split::Chunks(1))
        .workers(1)
        .map(|c| {
            let mut fp = Fingerprint::default();
            fp.add_chunk(c);
            (fp, c.packets().map(|p| key(&p)).collect::<Vec<_>>())
        })
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(keys.len() <= 1);
    if let Some((f, _)) = keys.first() {
        fp = f.clone();
    }
    assert_eq!(fp.packets, e.packets(), "{}: packet count", e.file);
    assert_eq!(
        fp.data_sha256(),
        e.get("data_sha256"),
        "{}: data_sha256",
        e.file
    );
    assert_eq!(
        fp.records_sha256(),
        e.get("records_sha256"),
        "{}: records_sha256",
        e.file
    );
    keys.into_iter().next().map(|k| k.1).unwrap_or_default()
}

fn check_run(e: &Entry, what: &str, run: &Run, expected: &[Key]) {
    let mut next_packet = 1;
    let mut all = Vec::with_capacity(expected.len());
    for (i, (index, range, first, packets)) in run.iter().enumerate() {
        assert_eq!(*index, i, "{}: {what}: chunk indexes", e.file);
        assert_eq!(
            *first, next_packet,
            "{}: {what}: chunk {i} first packet",
            e.file
        );
        if i > 0 {
            assert_eq!(
                run[i - 1].1.end,
                range.start,
                "{}: {what}: chunks {} and {i} do not join",
                e.file,
                i - 1
            );
        }
        next_packet += packets.len() as u64;
        all.extend_from_slice(packets);
    }
    assert_eq!(
        all.len(),
        expected.len(),
        "{}: {what}: packet count",
        e.file
    );
    assert!(
        all == expected,
        "{}: {what}: packets differ from the sequential reading",
        e.file
    );
}

fn ok_entries() -> Vec<Entry> {
    manifest().into_iter().filter(|e| e.ok()).collect()
}

#[test]
fn every_strategy_and_chunk_count_reproduces_the_fingerprints() {
    let entries = ok_entries();
    assert!(entries.len() >= if whole_corpus() { 75 } else { 20 });
    for e in &entries {
        let bytes = std::fs::read(&e.path).unwrap();
        let expected = reference(e, &bytes);
        let n = e.packets();
        let len = bytes.len() as u64;
        let mut splits = vec![Split::Auto];
        for k in [1usize, 2, 3, 7, 64] {
            splits.push(Split::Chunks(k));
            splits.push(Split::Packets(n.div_ceil(k as u64).max(1)));
            splits.push(Split::Bytes(len.div_ceil(k as u64).max(1)));
        }
        for split in splits {
            // Default segments, and tiny ones that make every worker search
            // for its own first boundary many times over.
            for (segment, workers) in [(None, 2), (Some(97), 3), (Some(1000), 2)] {
                let what = format!("{split:?}, segments {segment:?}, {workers} workers, mapped");
                let c = Capture::from_bytes(&e.file, bytes.clone())
                    .unwrap()
                    .split(split)
                    .segment_len(segment)
                    .workers(workers);
                let run = collect(c);
                check_run(e, &what, &run, &expected);
                if let Split::Chunks(k) = split {
                    assert!(run.len() <= k, "{}: {what}: {} chunks", e.file, run.len());
                }
                if let Split::Packets(per) = split {
                    for (i, (_, _, _, p)) in run.iter().enumerate().rev().skip(1) {
                        assert_eq!(p.len() as u64, per, "{}: {what}: chunk {i}", e.file);
                    }
                }
            }
            let what = format!("{split:?}, streamed");
            let c = Capture::from_reader(&e.file, std::io::Cursor::new(bytes.clone()))
                .unwrap()
                .split(split)
                .workers(2);
            check_run(e, &what, &collect(c), &expected);
        }
    }
}

#[test]
fn files_open_from_disk_mapped_or_streamed() {
    for e in ok_entries() {
        let c = Capture::open(&e.path).unwrap().workers(2);
        let compressed = e.get("compression") != "none";
        assert_eq!(c.is_mapped(), !compressed, "{}", e.file);
        assert_eq!(c.compression().name(), e.get("compression"), "{}", e.file);
        let format = match c.format() {
            pcap_parallel::CaptureFormat::Pcapng => "pcapng",
            pcap_parallel::CaptureFormat::Pcap {
                variant: pcap_parallel::PcapVariant::Modified,
                ..
            } => "pcap-modified(kuznetzov)",
            _ => "pcap",
        };
        assert_eq!(format, e.get("format"), "{}", e.file);
        let expected = reference(&e, &std::fs::read(&e.path).unwrap());
        check_run(&e, "open", &collect(c), &expected);
    }
}

/// Packets of a capture, read by the pcap-file crate; `None` for what it
/// does not read (the modified pcap variant, and blocks it is stricter
/// about than Wireshark, such as an IDB MAC address option of the wrong
/// length).
fn read_with_pcap_file(bytes: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
    use pcap_file::pcapng::Block;
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = pcap_file::pcapng::PcapNgReader::new(bytes).ok()?;
        let mut out = Vec::new();
        while let Some(block) = r.next_block() {
            match block.ok()? {
                Block::EnhancedPacket(p) => out.push((p.original_len, p.data.to_vec())),
                Block::Packet(p) => out.push((p.original_len, p.data.to_vec())),
                Block::SimplePacket(p) => out.push((p.original_len, p.data.to_vec())),
                _ => {}
            }
        }
        Some(out)
    } else if bytes[..4] == [0xa1, 0xb2, 0xcd, 0x34] || bytes[..4] == [0x34, 0xcd, 0xb2, 0xa1] {
        None // the modified variant is not supported by pcap-file
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(bytes).ok()?;
        let mut out = Vec::new();
        while let Some(p) = r.next_raw_packet() {
            let p = p.ok()?;
            out.push((p.orig_len, p.data.to_vec()));
        }
        Some(out)
    }
}

/// How many packets capinfos counts in a file.
fn capinfos_count(path: &std::path::Path) -> Option<u64> {
    let out = Command::new("capinfos")
        .args(["-c", "-M", "-T", "-r"])
        .arg(path)
        .output()
        .expect("capinfos is installed (.ci/run installs tshark)");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split('\t').nth(1)?.trim().parse().ok()
}

#[test]
fn every_chunk_is_a_valid_standalone_capture() {
    let dir = tempfile::tempdir().unwrap();
    for e in ok_entries() {
        let bytes = std::fs::read(&e.path).unwrap();
        // capinfos counts pcapng custom blocks as frames; compare only where it agrees with the reference.
        let capinfos_agrees = e.get("packets_capinfos") == e.get("packets_parser");
        // pcap-file is used where it reads the whole original file.
        let pcap_file_reads =
            e.get("compression") == "none" && read_with_pcap_file(&bytes).is_some();
        assert!(
            pcap_file_reads
                || capinfos_agrees
                || e.packets() == 0
                || e.get("compression") != "none",
            "{}: no independent reader reads this file",
            e.file
        );
        for k in [1usize, 3, 7] {
            let views = Capture::from_bytes(&e.file, bytes.clone())
                .unwrap()
                .split(Split::Chunks(k))
                .segment_len(Some(333))
                .workers(2)
                .map(|c| {
                    let mut file = Vec::new();
                    c.standalone().read_to_end(&mut file).unwrap();
                    let mut written = Vec::new();
                    assert_eq!(c.write_standalone(&mut written).unwrap(), file.len() as u64);
                    assert_eq!(written, file);
                    (file, c.packets().map(|p| owned(&p)).collect::<Vec<_>>())
                })
                .unwrap();
            for (i, (file, packets)) in views.iter().enumerate() {
                let what = format!("{}: {k} chunks, chunk {i}", e.file);
                // Read back by this crate, in one piece and in several.
                for split in [Split::Chunks(1), Split::Packets(2)] {
                    let back: Vec<Owned> = Capture::from_bytes("chunk", file.clone())
                        .unwrap()
                        .split(split)
                        .segment_len(Some(64))
                        .map(|c| c.packets().map(|p| owned(&p)).collect::<Vec<_>>())
                        .unwrap_or_else(|err| panic!("{what}: {err}"))
                        .concat();
                    assert_eq!(&back, packets, "{what}: read back by this crate");
                }
                // Read back by an independent reader.
                if pcap_file_reads {
                    let theirs = read_with_pcap_file(file).unwrap_or_else(|| {
                        panic!("{what}: pcap-file reads the original but not the chunk")
                    });
                    assert_eq!(
                        theirs.len(),
                        packets.len(),
                        "{what}: pcap-file packet count"
                    );
                    for (t, o) in theirs.iter().zip(packets) {
                        assert_eq!(t.0, o.original_len, "{what}: pcap-file original length");
                        // pcap-file hands out an SPB's whole body, padding included.
                        assert!(t.1.starts_with(&o.data), "{what}: pcap-file packet data");
                    }
                }
                if capinfos_agrees {
                    let path = dir.path().join(format!("chunk-{i}"));
                    std::fs::write(&path, file).unwrap();
                    assert_eq!(
                        capinfos_count(&path),
                        Some(packets.len() as u64),
                        "{what}: capinfos count"
                    );
                }
            }
        }
    }
}

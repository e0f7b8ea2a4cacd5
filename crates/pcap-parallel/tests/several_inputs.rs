//! `Capture::open_many`: several files read as one capture, against the
//! same packets read from one file.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use pcap_parallel::{Capture, InputOrder, Progress, Split};

/// The sample cut into `parts` standalone captures of consecutive packets
/// (each chunk's standalone view), written into `dir`, the last of them
/// gzip-compressed when `gzip_last`.
fn rotated(dir: &Path, parts: usize, gzip_last: bool) -> Vec<PathBuf> {
    let sample = repo_root().join("samples/sample.pcap");
    let files = Capture::open(&sample)
        .unwrap()
        .split(Split::Packets(1000 / parts as u64))
        .map(|c| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut c.standalone(), &mut bytes).unwrap();
            (c.index(), bytes)
        })
        .unwrap();
    files
        .into_iter()
        .map(|(i, bytes)| {
            let last = i + 1 == parts;
            let path = dir.join(format!(
                "day-{i}.pcap{}",
                if last && gzip_last { ".gz" } else { "" }
            ));
            if last && gzip_last {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut gz, &bytes).unwrap();
                std::fs::write(&path, gz.finish().unwrap()).unwrap();
            } else {
                std::fs::write(&path, bytes).unwrap();
            }
            path
        })
        .collect()
}

/// A packet's bytes and time in nanoseconds.
type Packet = (Vec<u8>, Option<i128>);
/// A chunk's index, input name and first packet number.
type ChunkAt = (usize, String, u64);

/// Every packet, in order, and where each chunk is.
fn read(capture: Capture) -> (Vec<Packet>, Vec<ChunkAt>) {
    let per_chunk = capture
        .map(|c| {
            let packets: Vec<_> = c
                .packets()
                .map(|p| (p.data.to_vec(), p.timestamp.map(|t| t.as_nanos())))
                .collect();
            (
                packets,
                (
                    c.index(),
                    c.input_name().to_string(),
                    c.first_packet_number(),
                ),
            )
        })
        .unwrap();
    let (packets, chunks): (Vec<_>, Vec<_>) = per_chunk.into_iter().unzip();
    (packets.into_iter().flatten().collect(), chunks)
}

#[test]
fn several_files_are_read_as_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let files = rotated(dir.path(), 4, true);
    let (expected, _) = read(Capture::open(repo_root().join("samples/sample.pcap")).unwrap());
    for workers in [1, 3] {
        let capture = Capture::open_many(&files, InputOrder::Given)
            .unwrap()
            .workers(workers)
            .split(Split::Packets(100));
        assert_eq!(capture.input_count(), 4);
        let (packets, chunks) = read(capture);
        assert_eq!(packets, expected, "{workers} workers");
        // Indices run on over the files (250 packets each: chunks of 100,
        // 100 and 50); packet numbers count in each file.
        let indices: Vec<usize> = chunks.iter().map(|c| c.0).collect();
        assert_eq!(indices, (0..12).collect::<Vec<_>>());
        let names: Vec<&str> = chunks.iter().map(|c| c.1.as_str()).collect();
        let firsts: Vec<u64> = chunks.iter().map(|c| c.2).collect();
        assert_eq!(names[0], files[0].display().to_string());
        assert_eq!(names[3], files[1].display().to_string());
        assert_eq!(names[11], files[3].display().to_string());
        assert_eq!(firsts, [1, 101, 201].repeat(4));
    }
}

#[test]
fn the_options_apply_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let files = rotated(dir.path(), 4, false);
    let many = || {
        Capture::open_many(&files, InputOrder::Given)
            .unwrap()
            .workers(2)
    };
    // The packet limit counts the packets of all files, and reads no further.
    let (limited, chunks) = read(many().max_packets(Some(600)));
    assert_eq!(limited.len(), 600);
    assert_eq!(chunks.last().unwrap().1, files[2].display().to_string());
    // K chunks in all, shared among the files by size (at least one each).
    let (_, chunks) = read(many().split(Split::Chunks(8)));
    assert_eq!(chunks.len(), 8, "{chunks:?}");
    let (_, chunks) = read(many().split(Split::Chunks(2)));
    assert_eq!(chunks.len(), 4, "one chunk per file at least: {chunks:?}");
    // Progress counts the bytes of every file.
    let progress = Arc::new(Progress::default());
    assert_eq!(many().progress(progress.clone()).count().unwrap(), 1000);
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(
        progress
            .bytes_total
            .load(std::sync::atomic::Ordering::Relaxed),
        total
    );
    assert_eq!(
        progress
            .bytes_done
            .load(std::sync::atomic::Ordering::Relaxed),
        total
    );
}

#[test]
fn files_are_put_in_time_order_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = rotated(dir.path(), 4, true);
    let (expected, _) = read(Capture::open_many(&files, InputOrder::Given).unwrap());
    files.reverse();
    let (backwards, _) = read(Capture::open_many(&files, InputOrder::Given).unwrap());
    assert_ne!(backwards, expected);
    let (sorted, _) = read(Capture::open_many(&files, InputOrder::Time).unwrap());
    assert_eq!(sorted, expected);
}

#[test]
fn patterns_expand_in_sorted_order_and_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let files = rotated(dir.path(), 4, false);
    let pattern = dir.path().join("day-*.pcap");
    assert_eq!(pcap_parallel::expand_inputs([&pattern]).unwrap(), files);
    let none = dir.path().join("night-*.pcap");
    let err = pcap_parallel::expand_inputs([&pattern, &none]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: no file matches", none.display())
    );
    let err =
        Capture::open_many([files[0].as_path(), Path::new("-")], InputOrder::Given).unwrap_err();
    assert!(err.to_string().contains("standard input"), "{err}");
}

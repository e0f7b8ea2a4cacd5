//! Byte-range partitions (`pcap_parallel::partition`): read one at a time
//! from a file by ranged reads, verified and recomputed by the driver, the
//! union equals the sequential reading.

mod common;

use std::sync::Arc;

use common::{Fingerprint, manifest};
use pcap_parallel::partition::{
    self, Entry, InMemory, LocalFile, PartitionReport, Partitioned, RangeRead, Verdict, Verified,
    Verifier,
};
use pcap_parallel::{Capture, Error, Limits, Split};

/// Reads `src` in partitions of `size` bytes and fingerprints the result.
fn fingerprint(src: &dyn RangeRead, size: u64) -> (Fingerprint, Partitioned<Vec<u64>>) {
    let parts = partition::partitions(src.len().unwrap(), size);
    let mut fp = Fingerprint::default();
    let run = partition::read_partitions(src, &parts, 2, |c| {
        let mut local = Fingerprint::default();
        local.add_chunk(c);
        c.packets().map(|p| p.number).collect::<Vec<u64>>()
    });
    // The packets again, in the verified order, for the fingerprint.
    for r in &run.results {
        let read = partition::read_partition(
            src,
            &parts[r.report.index],
            &Entry::Exact(r.report.entry.clone().unwrap()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(read.report, r.report);
        fp.add_chunk(&read.chunk);
        // Read once more as verified (what a table read does): the same
        // records, cut without a walk or walked again.
        let again = partition::read_partition(
            src,
            &parts[r.report.index],
            &Entry::Verified(verified(&r.report)),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(again.report, r.report);
        assert_eq!(prints(&again.chunk), prints(&read.chunk));
    }
    (fp, run)
}

/// What a report says, as an [`Entry::Verified`] gives it back.
fn verified(report: &PartitionReport) -> Verified {
    Verified {
        start: report.entry.clone().unwrap(),
        exit: report.exit.clone(),
        packets: report.packets,
    }
}

/// A chunk's packets and records, fingerprinted.
fn prints(chunk: &pcap_parallel::Chunk) -> (u64, String, String) {
    let mut fp = Fingerprint::default();
    fp.add_chunk(chunk);
    (fp.packets, fp.data_sha256(), fp.records_sha256())
}

/// A source that records the ranges read from it.
struct Counting<R> {
    inner: R,
    read: std::sync::Mutex<Vec<(u64, usize)>>,
}

impl<R: RangeRead> RangeRead for Counting<R> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read.lock().unwrap().push((offset, buf.len()));
        self.inner.read_at(offset, buf)
    }
}

/// A verified pcap partition is cut where the survey said, without a walk:
/// it reads exactly its records' bytes, and trusts its packet count; a
/// file rewritten since gives fewer packets (the caller's check), one cut
/// short is refused.
#[test]
fn a_verified_partition_reads_exactly_its_records() {
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/sample.pcap"
    ))
    .unwrap();
    let src = |bytes: Vec<u8>| Counting {
        inner: InMemory {
            name: "sample.pcap".into(),
            bytes: bytes.into(),
        },
        read: Default::default(),
    };
    let sound = src(sample.clone());
    let parts = partition::partitions(sample.len() as u64, 4096);
    let run = partition::read_partitions(&sound, &parts, 2, prints);
    assert!(run.error.is_none());
    let r = &run.results[3].report;
    let (start, exit) = (r.entry.as_ref().unwrap().offset, r.exit.offset);
    let entry = Entry::Verified(verified(r));
    let limits = Limits::default();

    let fresh = src(sample.clone());
    let read = partition::read_partition(&fresh, &parts[3], &entry, limits).unwrap();
    assert_eq!(prints(&read.chunk), run.results[3].value);
    assert_eq!(
        *fresh.read.lock().unwrap(),
        [(start, (exit - start) as usize)],
        "one read of the records, nothing more (not even the file header)"
    );

    // The records rewritten since the survey: the chunk's packets stop at
    // what cannot be read, and fall short of the count it was given.
    let mut rewritten = sample.clone();
    let mut at = start as usize;
    for _ in 0..r.packets / 2 {
        at += 16 + u32::from_le_bytes(sample[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    // The captured length of the middle record: more than the snap length.
    rewritten[at + 8..at + 12].fill(0xff);
    let read = partition::read_partition(&src(rewritten), &parts[3], &entry, limits).unwrap();
    assert_eq!(read.chunk.packet_count(), r.packets);
    assert!((read.chunk.packets().count() as u64) < r.packets);

    // Cut short: the records are not all there.
    let short = src(sample[..exit as usize - 1].to_vec());
    match partition::read_partition(&short, &parts[3], &entry, limits) {
        Err(Error::InputChanged { name }) => assert_eq!(name, "sample.pcap"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_well_formed_corpus_file_reads_the_same_in_partitions() {
    let mut files = 0;
    for e in manifest() {
        if !e.ok() || e.get("compression") != "none" {
            continue;
        }
        files += 1;
        // Both ways of reading: in place in the file's map, and by ranges
        // copied into windows (as from an object store).
        let mapped = LocalFile::open(&e.path).unwrap();
        assert!(mapped.mapped().is_some(), "{}", e.file);
        let windows = InMemory {
            name: e.path.display().to_string(),
            bytes: std::fs::read(&e.path).unwrap().into(),
        };
        let len = mapped.len().unwrap();
        let sources: [&dyn RangeRead; 2] = [&mapped, &windows];
        for (src, size) in sources
            .into_iter()
            .flat_map(|src| [97u64, 1024, 64 << 10].map(|size| (src, size)))
        {
            if size == 97 && len > 1 << 20 {
                // 97-byte partitions of the largest files: tens of thousands
                // each; the sizes below cover them.
                continue;
            }
            let (fp, run) = fingerprint(src, size);
            assert!(run.error.is_none(), "{} at {size}: {:?}", e.file, run.error);
            assert_eq!(fp.packets, e.packets(), "{} at {size}", e.file);
            assert_eq!(
                fp.data_sha256(),
                e.get("data_sha256"),
                "{} at {size}",
                e.file
            );
            assert_eq!(
                fp.records_sha256(),
                e.get("records_sha256"),
                "{} at {size}",
                e.file
            );
            // Within a partition, packets are numbered from 1; the driver
            // gives each its place in the capture.
            let mut next = 1;
            for r in &run.results {
                assert_eq!(r.first_packet_number, next, "{}", e.file);
                assert_eq!(r.value, (1..=r.report.packets).collect::<Vec<_>>());
                next += r.report.packets;
            }
            // Each partition starts where the one before it ended.
            for pair in run.results.windows(2) {
                assert_eq!(
                    pair[1].report.entry.as_ref().unwrap().offset,
                    pair[0].report.exit.offset
                );
            }
        }
    }
    assert!(files >= 3, "only {files} files");
}

#[test]
fn a_partition_reads_only_its_range_and_a_little_more() {
    // A capture of a few MiB: the corpus' example.pcap (3.8 MB), or without
    // the corpus the sample's records ten times over (3.8 MB too).
    let dir = tempfile::tempdir().unwrap();
    let path = common::capture_file("seladb__PcapPlusPlus__example.pcap")
        .filter(|p| p.is_file())
        .unwrap_or_else(|| {
            let sample = std::fs::read(common::repo_root().join("samples/sample.pcap")).unwrap();
            let mut bytes = sample[..24].to_vec();
            (0..10).for_each(|_| bytes.extend_from_slice(&sample[24..]));
            let path = dir.path().join("sample-x10.pcap");
            std::fs::write(&path, bytes).unwrap();
            path
        });
    let src = Counting {
        inner: LocalFile::open(&path).unwrap(),
        read: Default::default(),
    };
    let len = src.len().unwrap();
    let parts = partition::partitions(len, 1 << 20);
    let read = partition::read_partition(&src, &parts[2], &Entry::Guess, Limits::default());
    let read = read.unwrap();
    assert!(read.report.packets > 0);
    let bytes: usize = src.read.lock().unwrap().iter().map(|r| r.1).sum();
    assert!(
        (bytes as u64) < (1 << 20) + (256 << 10),
        "{bytes} bytes read for a 1 MiB partition of {len}"
    );
    assert!(
        src.read
            .lock()
            .unwrap()
            .iter()
            .all(|&(o, _)| o == 0 || o >= 2 << 20)
    );
}

/// A pcap whose packets hold whole captures: the guesses are fooled, the
/// verifier recomputes, and the packets are exact.
#[test]
fn several_pcapng_sections_are_recomputed_and_exact() {
    // Two sections of different byte order and interfaces: little-endian
    // test100 of the corpus (without it, the shipped test202), big-endian
    // test102 (shipped).
    let file = |name: &str| common::capture_file(name).filter(|p| p.is_file());
    let one = file("hadrielk__pcapng-test-generator__output_le--advanced--test100.pcapng")
        .or_else(|| file("hadrielk__pcapng-test-generator__output_le--difficult--test202.pcapng"))
        .expect("test202 is shipped in samples/real");
    let one = std::fs::read(one).unwrap();
    let two = file("hadrielk__pcapng-test-generator__output_be--advanced--test102.pcapng")
        .expect("test102 is shipped in samples/real");
    let two = std::fs::read(two).unwrap();
    let joined: Vec<u8> = [one.clone(), two.clone(), one].concat();
    let src = InMemory {
        name: "joined.pcapng".into(),
        bytes: Arc::from(joined.clone()),
    };
    let mut sequential = Fingerprint::default();
    for c in Capture::from_bytes("joined", joined)
        .unwrap()
        .split(Split::Chunks(1))
        .map(|c| c.clone())
        .unwrap()
    {
        sequential.add_chunk(&c);
    }
    for size in [64, 97, 256, 1024] {
        let (fp, run) = fingerprint(&src, size);
        assert!(run.error.is_none(), "{:?}", run.error);
        assert_eq!(fp.packets, sequential.packets, "{size}");
        assert_eq!(fp.data_sha256(), sequential.data_sha256(), "{size}");
        assert_eq!(fp.records_sha256(), sequential.records_sha256(), "{size}");
        assert!(
            run.recomputed > 0,
            "{size}: later sections need recomputing"
        );
    }
}

#[test]
fn damage_gives_the_packets_before_it_then_the_error() {
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/sample.pcap"
    ))
    .unwrap();
    // Damage the record header of packet 300.
    let mut data = sample.clone();
    let mut off = 24;
    for _ in 1..300 {
        off += 16 + u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
    }
    data[off + 8..off + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let sequential = Capture::from_bytes("d", data.clone())
        .unwrap()
        .count()
        .unwrap_err();
    let src = InMemory {
        name: "damaged.pcap".into(),
        bytes: Arc::from(data),
    };
    for size in [97, 1024, 4096] {
        let parts = partition::partitions(src.len().unwrap(), size);
        let run = partition::read_partitions(&src, &parts, 2, |c| c.packet_count());
        let total: u64 = run.results.iter().map(|r| r.value).sum();
        assert_eq!(total, 299, "{size}");
        let Some(Error::Format(e)) = &run.error else {
            panic!("{size}: {:?}", run.error);
        };
        assert_eq!((e.offset, e.packet), (off as u64, 300), "{size}");
        assert_eq!(e.name, "damaged.pcap");
        let Error::Format(s) = &sequential else {
            panic!()
        };
        assert_eq!(s.fault, e.fault);
    }
    // A file cut short in the middle of a record: the same.
    let cut = &sample[..sample.len() - 7];
    let src = InMemory {
        name: "cut.pcap".into(),
        bytes: Arc::from(cut),
    };
    let run = partition::read_partitions(
        &src,
        &partition::partitions(cut.len() as u64, 500),
        2,
        |c| c.packet_count(),
    );
    let total: u64 = run.results.iter().map(|r| r.value).sum();
    let all = Capture::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/sample.pcap"
    ))
    .unwrap()
    .count()
    .unwrap();
    assert_eq!(total, all - 1);
    assert!(
        matches!(&run.error, Some(Error::Format(e)) if e.fault.is_truncation() && e.packet == all)
    );
}

#[test]
fn the_verifier_asks_for_a_partition_that_does_not_join_up() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
    let src = LocalFile::open(path).unwrap();
    let parts = partition::partitions(src.len().unwrap(), 2000);
    let read = |i: usize, e: &Entry| {
        partition::read_partition(&src, &parts[i], e, Limits::default())
            .unwrap()
            .report
    };
    let mut v = Verifier::new(path);
    let r0 = read(0, &Entry::Guess);
    assert!(matches!(
        v.check(&r0),
        Verdict::Accepted {
            packets_before: 0,
            error: None
        }
    ));
    // Partition 2's report where partition 1's was expected.
    let r2 = read(2, &Entry::Guess);
    let Verdict::Recompute(Entry::Exact(b)) = v.check(&r2) else {
        panic!("a report that does not join up was accepted")
    };
    assert_eq!(b, r0.exit);
    assert_eq!(v.recomputed(), 1);
    let r1 = read(1, &Entry::Exact(b));
    assert!(
        matches!(v.check(&r1), Verdict::Accepted { packets_before, .. } if packets_before == r0.packets)
    );
}

#[test]
fn compressed_and_foreign_input_are_refused_clearly() {
    let gz = InMemory {
        name: "x.pcap.gz".into(),
        bytes: Arc::from(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3][..]),
    };
    let part = &partition::partitions(10, 100)[0];
    let err = partition::read_partition(&gz, part, &Entry::Guess, Limits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::CompressedPartition { name, .. } if name == "x.pcap.gz"),
        "{err}"
    );
    assert!(err.to_string().contains("read whole"), "{err}");
    let text = InMemory {
        name: "notes.txt".into(),
        bytes: Arc::from(&b"hello, world, this is text"[..]),
    };
    let err = partition::read_partition(&text, part, &Entry::Guess, Limits::default()).unwrap_err();
    assert!(matches!(err, Error::UnknownFormat { .. }), "{err}");
}

//! A mapped capture that another program truncates during the run (issue
//! 15.2): no SIGBUS death, a clean error naming the file, and nothing read
//! after the change is delivered.

use pcap_parallel::{Capture, Error, Split};

fn sample() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/sample.pcap"
    ))
    .unwrap()
}

/// The sample's packets sixteen times over in `dir/shrinks.pcap`: large
/// enough that most of its pages lie past a cut to 100 bytes. Returns the
/// path and the length.
fn sixteen_samples(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    let path = dir.join("shrinks.pcap");
    let one = sample();
    let mut bytes = one.clone();
    for _ in 0..15 {
        bytes.extend_from_slice(&one[24..]);
    }
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes.len() as u64)
}

#[test]
fn a_file_truncated_while_mapped_ends_the_run_with_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sixteen_samples(dir.path());
    let capture = Capture::open(&path).unwrap();
    assert!(capture.is_mapped());
    let mut delivered = Vec::new();
    let report = capture.workers(1).split(Split::Packets(500)).run(
        |chunk| {
            if chunk.index() == 0 {
                // Another program cuts the file to a few bytes.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(100)
                    .unwrap();
            }
            // Reads every byte of the packets: past the cut, they are gone.
            Ok(chunk
                .packets()
                .map(|p| p.data.iter().map(|&b| b as u64).sum::<u64>())
                .sum::<u64>())
        },
        |r| delivered.push(r.index),
    );
    match &report.input_error {
        Some(e @ Error::InputChanged { name }) => {
            assert_eq!(name, &path.display().to_string());
            assert!(e.to_string().contains("changed during the run"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Chunk 0 was read before the cut; nothing after it is handed out.
    assert!(delivered.len() <= 1, "{delivered:?}");

    // The same file, shrunk before a second run is opened, reads as what it is now.
    let again = Capture::open(&path).unwrap().count();
    assert!(
        again.is_err(),
        "100 bytes are a header and a cut-short record"
    );
}

#[test]
fn a_fault_outside_our_maps_still_kills_the_process() {
    // The handler passes faults elsewhere on: a child that maps a file
    // itself (not through this crate), after ours is installed, truncates
    // it and reads past the end must still die of SIGBUS.
    if std::env::var_os("PCAP_PARALLEL_SIGBUS_CHILD").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.pcap");
        std::fs::write(&ours, sample()).unwrap();
        let _c = Capture::open(&ours).unwrap(); // installs the handler
        let other = dir.path().join("other.bin");
        std::fs::write(&other, vec![1u8; 1 << 16]).unwrap();
        let f = std::fs::File::open(&other).unwrap();
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&other)
            .unwrap()
            .set_len(0)
            .unwrap();
        let v = unsafe { std::ptr::read_volatile(map.as_ptr().add(40_000)) };
        println!("read {v}: not killed");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_fault_outside_our_maps_still_kills_the_process",
            "--nocapture",
        ])
        .env("PCAP_PARALLEL_SIGBUS_CHILD", "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc_sigbus()), "{out:?}");
}

fn libc_sigbus() -> i32 {
    7 // SIGBUS on Linux (x86-64 and aarch64)
}

#[test]
fn a_partition_of_a_file_truncated_while_mapped_says_so() {
    use pcap_parallel::partition::{self, Entry, LocalFile, RangeRead};

    let dir = tempfile::tempdir().unwrap();
    let (path, len) = sixteen_samples(dir.path());
    let src = LocalFile::open(&path).unwrap();
    assert!(src.mapped().is_some());
    let parts = partition::partitions(len, 64 << 10);
    let limits = pcap_parallel::Limits::default();
    let first = partition::read_partition(&src, &parts[0], &Entry::Guess, limits).unwrap();
    assert!(!first.input_changed());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    // What was read before the cut is known to be stale...
    assert!(first.input_changed());
    // ...and a partition read after it (its pages gone) is refused.
    let last = parts.last().unwrap();
    match partition::read_partition(&src, last, &Entry::Guess, limits) {
        Err(Error::InputChanged { name }) => assert_eq!(name, path.display().to_string()),
        other => panic!("{other:?}"),
    }
}

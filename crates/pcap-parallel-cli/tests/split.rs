//! `split` onto a full disk, and the prefix check: the output directory
//! is as it was after a failed split, even one the split itself made.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::*;

/// A small tmpfs mounted at `DIR/disk` (this test runs as root in CI and
/// in the development container); unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// The mount, or why it could not be made.
    fn mount(parent: &Path, size: &str) -> Result<Tmpfs, String> {
        let path = parent.join("disk");
        std::fs::create_dir_all(&path).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "mount -t tmpfs: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(Tmpfs { path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Says on the terminal (not through the test harness' captured output)
/// why a test could not run; the clippy configuration keeps `eprintln!`
/// out of this crate.
fn report_skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every entry under `dir`, recursively, with its bytes (directories as
/// empty), sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push((p.clone(), Vec::new()));
            out.extend(tree(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// Issue 22, item 14: a split onto a full disk into a directory that did
/// not exist leaves no empty new directory behind (nor its parents); into
/// one that did exist, it leaves it as it was (its earlier parts too).
#[test]
fn a_split_onto_a_full_disk_leaves_no_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let disk = match Tmpfs::mount(dir.path(), "200k") {
        Ok(d) => d,
        Err(why) => {
            report_skip(
                "a_split_onto_a_full_disk_leaves_no_new_directory",
                &format!("a tmpfs cannot be mounted here ({why}); it needs root"),
            );
            return;
        }
    };
    let sample = sample();
    assert!(
        std::fs::metadata(&sample).unwrap().len() > 300 << 10,
        "more than the disk holds"
    );
    let new = disk.path.join("new").join("deeper");
    for extra in [&["--chunks", "4"][..], &["--flows", "3"][..]] {
        let mut args = vec![
            "split",
            "-q",
            sample.to_str().unwrap(),
            "-o",
            new.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("No space left on device"),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("no part written"), "{}", stderr(&o));
        assert_eq!(
            tree(&disk.path),
            [],
            "{extra:?}: the disk is as it was: empty"
        );
    }
    // An existing directory with an earlier split's parts: as it was.
    let out = disk.path.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("sample-00000000.pcap"), b"earlier part").unwrap();
    std::fs::write(out.join("sample-00000001.pcap"), b"earlier part 1").unwrap();
    let before = tree(&disk.path);
    let o = run(&[
        "split",
        "-q",
        sample.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--chunks",
        "1",
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(tree(&disk.path), before);
}

/// Issue 22, item 7: prefixes that would write outside the output
/// directory are refused before anything is made.
#[test]
fn prefixes_outside_the_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for prefix in ["../escaped", "/tmp/absolute", "..", "", "a/b"] {
        let o = run(&[
            "split",
            "-q",
            sample().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--prefix",
            prefix,
        ]);
        assert_eq!(o.status.code(), Some(2), "{prefix:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--prefix must be a file name"),
            "{}",
            stderr(&o)
        );
        assert_eq!(tree(dir.path()), [], "{prefix:?}: nothing made");
    }
}

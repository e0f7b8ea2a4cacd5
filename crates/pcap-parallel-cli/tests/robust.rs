//! Every corpus file, well-formed or not, through every command with 1, 2
//! and 7 chunks: no panic, no hang, the documented exit status, and on
//! broken files exactly the packets the reference reader reads before its
//! error. Then interruption: SIGINT or SIGTERM leaves only complete outputs.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use support::*;

fn check_exit(e: &Entry, what: &str, out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: {err}");
    let want = if e.ok() { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(want), "{what}: {err}");
    if !e.ok() {
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.contains(&e.file) && last.contains("at byte"),
            "{what}: {err}"
        );
    }
}

#[test]
fn every_file_through_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for e in manifest() {
        let f = e.path.to_str().unwrap();
        for k in ["1", "2", "7"] {
            let what = format!("{} with {k} chunks", e.file);
            let out = run(&["info", "--json", "-q", f, "--chunks", k]);
            check_exit(&e, &format!("info: {what}"), &out);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            // A file of which nothing could be read has its error only.
            let packets = v.get("packets").map_or(Some(0), |p| p.as_u64());
            assert_eq!(packets, Some(e.packets()), "info: {what}");

            let out = run(&["top", "-q", f, "--chunks", k, "--limit", "0", "--json"]);
            check_exit(&e, &format!("top: {what}"), &out);

            let parts = dir.path().join(format!("{}-{k}", e.file));
            let out = run(&[
                "split",
                "-q",
                f,
                "-o",
                parts.to_str().unwrap(),
                "--chunks",
                k,
            ]);
            check_exit(&e, &format!("split: {what}"), &out);
            let names: Vec<PathBuf> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(PathBuf::from)
                .collect();
            if e.get("compression") != "zstd" {
                let r = reference(&names);
                assert_eq!(r["packets"].as_u64(), Some(e.packets()), "split: {what}");
                assert_eq!(
                    r["data_sha256"].as_str(),
                    Some(e.get("data_sha256")),
                    "split: {what}"
                );
            }

            let out = run(&["exec", "-q", f, "--chunks", k, "--", "wc", "-c"]);
            check_exit(&e, &format!("exec: {what}"), &out);
            let sizes: u64 = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().parse::<u64>().unwrap())
                .sum();
            // An input without packets runs no command (its one part is
            // the headers alone).
            let on_disk: u64 = if e.packets() == 0 {
                0
            } else {
                names
                    .iter()
                    .map(|n| std::fs::metadata(n).unwrap().len())
                    .sum()
            };
            assert_eq!(
                sizes, on_disk,
                "exec: {what}: every chunk went through the command"
            );
        }
    }
}

#[test]
fn skip_policy_on_the_command_line() {
    // A capture with a record whose length is absurd in its middle.
    let mut bytes = std::fs::read(sample()).unwrap();
    let mut off = 24;
    for _ in 0..50 {
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
    }
    bytes[off + 8..off + 12].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("damaged.pcap");
    std::fs::write(&f, &bytes).unwrap();
    let f = f.to_str().unwrap();
    let stop = run(&["info", "--json", f]);
    assert_eq!(stop.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&stop.stdout).unwrap();
    assert_eq!(v["packets"], 50);
    let skip = run(&["info", "--json", "--on-error", "skip", f]);
    assert_eq!(skip.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&skip.stdout).unwrap();
    assert_eq!(v["packets"], 999, "every packet but the damaged one");
    let err = String::from_utf8_lossy(&skip.stderr);
    assert!(
        err.contains("warning: skipped") && err.contains(&format!("at byte {off}")),
        "{err}"
    );
}

/// A capture big enough that a debug build takes a while over it.
fn big_capture(dir: &Path) -> PathBuf {
    let path = dir.join("big.pcap");
    pcap_synth::Synth::new(7)
        .write_bytes(
            std::fs::File::create(&path).unwrap(),
            pcap_synth::Format::Pcap,
            120 << 20,
        )
        .unwrap();
    path
}

fn signal_after(
    child: &mut std::process::Child,
    sig: i32,
    after: Duration,
) -> std::process::ExitStatus {
    std::thread::sleep(after);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no hang after the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What an exited child wrote on its piped standard error.
fn said(child: &mut std::process::Child) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut text).unwrap();
    text
}

#[test]
fn interrupted_split_and_exec_leave_only_complete_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let big = big_capture(dir.path());
    let b = big.to_str().unwrap();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // split: the output directory is as it was (a split leaves the
        // complete new set or nothing), with no temporary file.
        let out = dir.path().join(format!("parts-{sig}"));
        let mut child = bin()
            .args([
                "split",
                "-q",
                b,
                "-o",
                out.to_str().unwrap(),
                "--packets",
                "2000",
                "--compress",
                "gzip",
                "-j",
                "2",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = signal_after(&mut child, sig, Duration::from_millis(300));
        assert_eq!(status.code(), Some(130), "split after signal {sig}");
        let text = said(&mut child);
        assert!(
            text.starts_with("pcap-parallel: interrupted\n") && text.contains("no part written"),
            "{text}"
        );
        // It was not there before: nor is it now.
        assert!(!out.exists(), "nothing left: {:?}", std::fs::read_dir(&out));

        // exec: the commands are stopped, their temporary files removed.
        let tmp = dir.path().join(format!("tmp-{sig}"));
        std::fs::create_dir_all(&tmp).unwrap();
        let mut child = bin()
            .args([
                "exec",
                "-q",
                b,
                "--packets",
                "1000",
                "-j",
                "2",
                "--",
                "sh",
                "-c",
                "sleep 20",
                "{}",
            ])
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = signal_after(&mut child, sig, Duration::from_millis(500));
        assert_eq!(status.code(), Some(130), "exec after signal {sig}");
        assert_eq!(said(&mut child), "pcap-parallel: interrupted\n");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the running commands were stopped"
        );
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "temporary chunk files removed"
        );
    }
}

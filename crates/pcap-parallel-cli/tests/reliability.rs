//! Nothing a user can give the binary crashes it, loses data or mixes
//! results (issue 15): crafted captures generated here, options that would
//! multiply memory, full disks, concurrent runs, signals and named pipes.
//! Each test reproduces a case of the issue through the real binary.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

#[allow(unused_imports)]
use common::corpus_dir;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::*;

/// Little-endian pcapng blocks, for crafting captures.
mod craft {
    pub fn block(btype: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().next_multiple_of(4);
        let len = (12 + padded) as u32;
        let mut v = btype.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
        v.resize(8 + padded, 0);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    pub fn shb() -> Vec<u8> {
        let mut body = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(0x0A0D_0D0A, &body)
    }

    /// An Ethernet interface.
    pub fn idb() -> Vec<u8> {
        let mut body = 1u16.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        block(1, &body)
    }

    pub fn epb(interface: u32, ticks: u64, data: &[u8]) -> Vec<u8> {
        let mut body = interface.to_le_bytes().to_vec();
        body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ticks as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(6, &body)
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out.stdout
}

/// Runs the binary with its address space limited to `limit` bytes (and
/// one malloc arena, so that the limit measures what is allocated rather
/// than what arenas reserve), `stdin` fed from a file if given.
fn run_limited(args: &[&str], limit: u64, stdin: Option<&Path>) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    cmd.args(args).env("MALLOC_ARENA_MAX", "1");
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p).unwrap());
    }
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// 15.1: a section with 100 000 interface descriptions costs memory in
/// proportion (it took 23 GB before), through a file, gzip and a pipe; and
/// a section above the interface limit fails cleanly, naming the limit.
#[test]
fn a_hundred_thousand_interfaces_cost_linear_memory() {
    const N: u32 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = craft::shb();
    for _ in 0..N {
        bytes.extend(craft::idb());
    }
    for i in 0..10u32 {
        bytes.extend(craft::epb(N - 1 - i, i as u64, &[0u8; 60]));
    }
    let plain = dir.path().join("idb.pcapng");
    std::fs::write(&plain, &bytes).unwrap();
    let gz = dir.path().join("idb.pcapng.gz");
    std::fs::write(&gz, gzip(&bytes)).unwrap();
    // 1 GiB of address space: 50 times what the run needs, a twentieth of
    // what a quadratic state took for this file.
    const LIMIT: u64 = 1 << 30;
    for (what, args, stdin) in [
        ("file", vec![plain.to_str().unwrap()], None),
        ("gzip", vec![gz.to_str().unwrap()], None),
        ("stdin", vec!["-"], Some(gz.as_path())),
    ] {
        let mut all = vec!["info", "--json", "-q"];
        all.extend(args);
        let out = run_limited(&all, LIMIT, stdin);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["packets"], 10, "{what}");
        assert_eq!(
            v["interfaces"].as_array().unwrap().len(),
            N as usize,
            "{what}"
        );
        // Splitting carries the interfaces its packets need into each part.
        let parts = dir.path().join(format!("parts-{what}"));
        let mut all = vec!["split", "-q", "--packets", "3", "-o"];
        all.push(parts.to_str().unwrap());
        all.extend(if stdin.is_some() {
            vec!["-"]
        } else {
            vec![all_input(&plain, &gz, what)]
        });
        let out = run_limited(&all, LIMIT, stdin);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert_eq!(std::fs::read_dir(&parts).unwrap().count(), 4, "{what}");
    }
    // Above the limit: exit 1, one line naming the limit, no crash.
    let out = run_limited(
        &[
            "info",
            "-q",
            "--max-interfaces",
            "50000",
            plain.to_str().unwrap(),
        ],
        LIMIT,
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than 50000 interfaces"),
        "{}",
        stderr(&out)
    );
}

fn all_input<'a>(plain: &'a Path, gz: &'a Path, what: &str) -> &'a str {
    if what == "gzip" {
        gz.to_str().unwrap()
    } else {
        plain.to_str().unwrap()
    }
}

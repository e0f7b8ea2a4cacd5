//! Several capture files read as one: rotated files cut from one capture by
//! editcap (as `tcpdump -C` rotates) give what the uncut capture gives, in
//! `top`, `table`, `split` and `exec`, given in order, as a glob pattern,
//! or shuffled with `--order time`.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use support::*;

/// Cuts `path` into about `parts` files of consecutive packets with
/// editcap, in `dir`, in the input's file format (as `tcpdump -C` rotates);
/// their paths in capture order. `None` for a format editcap cannot write
/// back as it was.
fn rotate(path: &Path, packets: u64, parts: u64, dir: &Path) -> Option<Vec<PathBuf>> {
    let magic = std::fs::read(path).ok()?.get(..4)?.to_vec();
    let (kind, ext) = match magic.as_slice() {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0xa1, 0xb2, 0xc3, 0xd4] => ("pcap", "pcap"),
        [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d] => ("nsecpcap", "pcap"),
        [0x0a, 0x0d, 0x0d, 0x0a] => ("pcapng", "pcapng"),
        _ => return None,
    };
    let per = packets.div_ceil(parts).max(1);
    let out = Command::new("editcap")
        .args(["-F", kind, "-c", &per.to_string()])
        .arg(path)
        .arg(dir.join(format!("part.{ext}")))
        .output()
        .expect("editcap is installed (.ci/run installs tshark, which brings it)");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("can't be written") || err.contains("doesn't support") {
        return None;
    }
    assert!(out.status.success(), "{}: {err}", path.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part_")
        })
        .collect();
    files.sort();
    Some(files)
}

/// The captures to cut: every readable capture of the corpus with a few
/// packets, or without it the sample and the shipped real captures.
fn captures() -> Vec<(PathBuf, u64)> {
    let mut out = vec![(sample(), 1000)];
    for e in manifest() {
        if e.ok() && e.packets() >= 4 {
            out.push((e.path.clone(), e.packets()));
        }
    }
    out
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn strs(paths: &[PathBuf]) -> Vec<&str> {
    paths.iter().map(|p| p.to_str().unwrap()).collect()
}

/// `top --json` without the names of the inputs.
fn top_of(inputs: &[&str], extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "top",
        "--by",
        "conversation",
        "-n",
        "0",
        "--json",
        "-j",
        "2",
    ];
    args.extend(extra);
    args.extend(inputs);
    let mut v: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("file");
    o.remove("files");
    v
}

const COLUMNS: &str = "frame_number,file,ts,cap_len,len,link_type,interface_id,vlan,ip_version,\
src_ip,dst_ip,ip_proto,ttl,ip_id,ip_flags,frag_offset,src_port,dst_port,tcp_flags,flow_id";

/// `table` as CSV rows split into fields (no field holds a comma).
fn rows_of(inputs: &[&str], extra: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["table", "-o", "-", "--format", "csv", "-j", "2"];
    args.extend(extra);
    args.extend(inputs);
    ok(&args)
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn rotated_files_read_as_one_give_the_uncut_capture_s_top_and_table() {
    let all = captures();
    let mut uncut = Vec::new();
    for (path, packets) in &all {
        let (path, packets) = (path.as_path(), *packets);
        let dir = tempfile::tempdir().unwrap();
        let Some(parts) = rotate(path, packets, 3, dir.path()) else {
            uncut.push(path.display().to_string());
            continue;
        };
        let whole = [path.to_str().unwrap()];
        let name = path.display();
        assert!(
            parts.len() >= 2,
            "{name}: editcap made {} files",
            parts.len()
        );

        let expected = top_of(&whole, &[]);
        assert_eq!(
            top_of(&strs(&parts), &[]),
            expected,
            "{name}: top, in order"
        );
        let pattern = dir.path().join("part_*").display().to_string();
        assert_eq!(
            top_of(&[&pattern], &[]),
            expected,
            "{name}: top of a pattern"
        );
        let mut shuffled = strs(&parts);
        shuffled.reverse();
        assert_eq!(
            top_of(&shuffled, &["--order", "time"]),
            expected,
            "{name}: top, files given backwards, --order time"
        );
        let limit = (packets / 2).to_string();
        assert_eq!(
            top_of(&strs(&parts), &["-c", &limit]),
            top_of(&whole, &["-c", &limit]),
            "{name}: top -c {limit} over several files"
        );

        // Rows: the same packets in the same order; `file` names each row's
        // file and `frame_number` counts within it.
        let whole_rows = rows_of(&whole, &["--columns", &COLUMNS.replace("file,", "")]);
        let rows = rows_of(&strs(&parts), &[]);
        assert_eq!(rows.len(), whole_rows.len(), "{name}: rows");
        let (mut file, mut before, mut last) = (String::new(), 0u64, 0u64);
        for (i, (row, expected)) in rows.iter().zip(&whole_rows).enumerate() {
            if row[1] != file {
                assert!(
                    parts.iter().any(|p| p.to_str() == Some(row[1].as_str())),
                    "{name}: {row:?}"
                );
                (file, before) = (row[1].clone(), before + last);
            }
            last = row[0].parse().unwrap();
            assert_eq!(
                before + last,
                expected[0].parse::<u64>().unwrap(),
                "{name}: row {i}: frame number {row:?}"
            );
            // A simple packet block has no time; editcap writes it as an
            // enhanced packet block of time 0.
            let ts_ok = row[2] == expected[1]
                || (expected[1].is_empty() && row[2] == "1970-01-01T00:00:00.000000000Z");
            assert!(ts_ok, "{name}: row {i}: time {row:?} for {expected:?}");
            // editcap writes the platform values of raw IP (DLT 12, 14) as
            // LINKTYPE_RAW (101).
            let link = |v: &str| {
                if v == "12" || v == "14" {
                    "101".to_string()
                } else {
                    v.to_string()
                }
            };
            assert_eq!(
                link(&row[5]),
                link(&expected[4]),
                "{name}: row {i}: link type"
            );
            assert_eq!(row[3..5], expected[2..4], "{name}: row {i}");
            assert_eq!(row[6..], expected[5..], "{name}: row {i}");
        }
    }
    // Most captures are cut: editcap writes back every plain pcap and most
    // pcapng (not compressed files, nor a few link types).
    let n = all.len();
    assert!(
        uncut.len() * 4 <= n,
        "{} of {n} not cut: {uncut:?}",
        uncut.len()
    );
}

#[test]
fn split_and_exec_cover_several_files_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let parts = rotate(&sample(), 1000, 4, dir.path()).unwrap();
    let inputs = strs(&parts);
    let out = dir.path().join("out");
    let mut args = vec![
        "split",
        "-o",
        out.to_str().unwrap(),
        "--packets",
        "77",
        "-q",
    ];
    args.extend(&inputs);
    let listed: Vec<PathBuf> = ok(&args).lines().map(PathBuf::from).collect();
    // Each file gives ceil(250 / 77) = 4 parts: no part spans two files.
    assert_eq!(listed.len(), 16);
    let whole = reference(&[sample()]);
    let split = reference(&listed);
    assert_eq!(split["packets"], whole["packets"]);
    assert_eq!(split["data_sha256"], whole["data_sha256"]);

    let mut args = vec!["exec", "--packets", "100", "-q"];
    args.extend(&inputs);
    args.extend([
        "--",
        "sh",
        "-c",
        "echo $PCAP_PARALLEL_CHUNK $PCAP_PARALLEL_FIRST_PACKET $PCAP_PARALLEL_PACKETS",
    ]);
    let runs: Vec<Vec<u64>> = ok(&args)
        .lines()
        .map(|l| l.split(' ').map(|n| n.parse().unwrap()).collect())
        .collect();
    let chunks: Vec<u64> = runs.iter().map(|r| r[0]).collect();
    assert_eq!(
        chunks,
        (0..runs.len() as u64).collect::<Vec<_>>(),
        "{runs:?}"
    );
    assert_eq!(runs.iter().map(|r| r[2]).sum::<u64>(), 1000);
    // Packet numbers count within each file: 1, 101, 201, then 1 again.
    let firsts: Vec<u64> = runs.iter().map(|r| r[1]).collect();
    assert_eq!(firsts, [1, 101, 201].repeat(4), "{runs:?}");
}

#[test]
fn a_damaged_file_among_several_ends_the_run_after_its_last_good_packet() {
    let dir = tempfile::tempdir().unwrap();
    let parts = rotate(&sample(), 1000, 4, dir.path()).unwrap();
    // The second file loses its last 10 bytes: its last record is cut short.
    let damaged = &parts[1];
    let len = std::fs::metadata(damaged).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(damaged)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let mut args = vec![
        "table",
        "-o",
        "-",
        "--format",
        "csv",
        "--columns",
        "file",
        "-q",
    ];
    args.extend(strs(&parts));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(damaged.to_str().unwrap()) && err.contains("packet 250"),
        "{err}"
    );
    let rows = stdout(&out);
    let per_file = |p: &PathBuf| rows.lines().filter(|l| *l == p.to_str().unwrap()).count();
    assert_eq!(
        (
            per_file(&parts[0]),
            per_file(&parts[1]),
            per_file(&parts[2])
        ),
        (250, 249, 0)
    );
}

#[test]
fn several_inputs_refuse_what_cannot_be_done() {
    let dir = tempfile::tempdir().unwrap();
    let parts = rotate(&sample(), 1000, 2, dir.path()).unwrap();
    let (a, b) = (parts[0].to_str().unwrap(), parts[1].to_str().unwrap());
    let code = |args: &[&str]| {
        let out = run(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let missing = dir.path().join("nothing-*.pcap");
    let (status, err) = code(&["top", a, missing.to_str().unwrap()]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("no file matches"), "{err}");
    let (status, err) = code(&["top", a, "-"]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("standard input"), "{err}");

    // A table never replaces an input, even with --force.
    let before = std::fs::read(&parts[1]).unwrap();
    let (status, err) = code(&["table", a, b, "-o", b, "--force", "--format", "csv"]);
    assert_eq!(status, Some(2), "{err}");
    assert_eq!(std::fs::read(&parts[1]).unwrap(), before);

    // Flow shards are written from one file at a time.
    let out = dir.path().join("flows");
    let (status, err) = code(&["split", a, b, "--flows", "4", "-o", out.to_str().unwrap()]);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("one capture file at a time"), "{err}");

    // Parts are named for one format: pcap and pcapng together are refused,
    // and nothing is written.
    let pcapng = capture_file("seladb__PcapPlusPlus__many_interfaces-1.pcapng").unwrap();
    let out = dir.path().join("mixed");
    let (status, err) = code(&[
        "split",
        a,
        pcapng.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("split the formats apart"), "{err}");
    assert!(!out.exists(), "no part left, nor the directory it made");
}

#[test]
fn a_file_that_is_not_a_capture_is_described() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "passwd",
            b"root:x:0:0:root:/root:/bin/bash\n",
            "(text: \"root:x:0:0:root:/root:/bin/bash\")",
        ),
        (
            "page.pcap",
            b"<!DOCTYPE html>\n<html><body>404</body></html>\n",
            "(an HTML page)",
        ),
        (
            "trace.zip",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
            "(a ZIP archive)",
        ),
        ("empty.pcap", b"", "(nothing: the input is empty)"),
    ];
    for (name, bytes, said) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = run(&["info", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!("not a pcap or pcapng capture {said}")),
            "{name}: {err}"
        );
    }
}

//! What a new user meets first, through the real binary: closed pipes and
//! failed writes on either stream, the messages and exit codes of common
//! mistakes, `-c`, the help texts and the README's examples. Everything here
//! runs on any clone: the shipped sample and real captures, and captures
//! made by the tests.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::*;

/// A pipe whose reading end is already closed: the first write to it fails
/// with EPIPE, as when `head` has exited.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// Runs the binary with `args`, its standard output into `stdout`.
fn run_into(args: &[&str], stdout: Stdio) -> Output {
    bin()
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `script` in bash with `set -o pipefail`, `$BIN` the binary.
fn bash(script: &str) -> Output {
    Command::new("bash")
        .args(["-c", &format!("set -o pipefail\n{script}")])
        .env("BIN", env!("CARGO_BIN_EXE_pcap-parallel"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// A synthetic capture of `packets` packets in `dir`.
fn synthetic(dir: &Path, packets: u64) -> PathBuf {
    let path = dir.join(format!("synth-{packets}.pcap"));
    pcap_synth::Synth::new(11)
        .write(
            std::fs::File::create(&path).unwrap(),
            pcap_synth::Format::Pcap,
            packets,
        )
        .unwrap();
    path
}

/// The offset of record `k` (from 0) of a little-endian microsecond pcap.
fn record_offset(bytes: &[u8], k: usize) -> usize {
    let mut off = 24;
    for _ in 0..k {
        off += 16 + u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
    }
    off
}

/// The sample with record `k` (from 0) claiming 2 GiB: damage at packet k + 1.
fn damaged_sample(dir: &Path, k: usize) -> PathBuf {
    let mut bytes = std::fs::read(sample()).unwrap();
    let off = record_offset(&bytes, k);
    bytes[off + 8..off + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let path = dir.join(format!("damaged-at-{}.pcap", k + 1));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_closed_output_pipe_stops_every_command_quietly_with_status_141() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample();
    let s = s.to_str().unwrap();
    let parts = dir.path().join("parts");
    let commands: Vec<Vec<&str>> = vec![
        vec!["info", s],
        vec!["info", "--json", s, s],
        vec!["top", s, "--csv", "--limit", "0"],
        vec!["top", s, "--json"],
        vec!["split", s, "-o", parts.to_str().unwrap(), "--chunks", "3"],
        vec!["exec", s, "--chunks", "3", "--", "capinfos", "{}"],
        vec!["exec", s, "--flows", "2", "--", "wc", "-c"],
        vec!["completions", "bash"],
        vec!["--help"],
        vec!["info", "--help"],
    ];
    for args in commands {
        let out = run_into(&args, closed_pipe());
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}: quietly");
    }
    // Parts written before the reader went away are whole; none half-written.
    for entry in std::fs::read_dir(&parts).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name.starts_with("sample-") && name.ends_with(".pcap"),
            "{name}"
        );
    }
}

#[test]
fn head_on_a_long_output_ends_the_run_with_141() {
    let dir = tempfile::tempdir().unwrap();
    let big = synthetic(dir.path(), 20_000);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // Megabytes of rows; head takes the first line and leaves.
    let out = bash(&format!(
        "$BIN top '{}' --by conversation --limit 0 --csv | head -1; echo \"status ${{PIPESTATUS[0]}}\"",
        big.display()
    ));
    assert_eq!(
        stdout(&out),
        "conversation,packets,bytes\nstatus 141\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out), "");
    // exec: the commands still running are stopped, their files removed.
    let out = bash(&format!(
        "TMPDIR='{}' $BIN exec '{}' --chunks 6 -j 2 -- sh -c 'seq 100000; sleep 30' {{}} | head -2; \
         echo \"status ${{PIPESTATUS[0]}}\"",
        tmp.display(),
        big.display()
    ));
    assert_eq!(stdout(&out), "1\n2\nstatus 141\n", "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "chunk files removed"
    );
}

#[test]
fn a_closed_standard_error_is_a_closed_pipe_too() {
    // The message has nowhere to go: no panic, status 141, nothing else.
    let out = bin()
        .args(["info", "/nonexistent/missing.pcap"])
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141));
    assert_eq!(stdout(&out), "");
    // As a shell pipeline whose reader is gone before the message comes.
    let out = bash(
        "{ sleep 0.5; exec $BIN info /nonexistent/missing.pcap 2>&1; } | true; \
         echo \"status ${PIPESTATUS[0]}\"",
    );
    assert_eq!(stdout(&out), "status 141\n");
    // Warnings of a run that skips damage, to a closed standard error.
    let dir = tempfile::tempdir().unwrap();
    let damaged = damaged_sample(dir.path(), 500);
    let out = bin()
        .args(["top", "--on-error", "skip"])
        .arg(&damaged)
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141));
}

#[test]
fn a_failed_write_is_a_failure_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample();
    let s = s.to_str().unwrap();
    let parts = dir.path().join("parts");
    for args in [
        vec!["info", s],
        vec!["info", "--json", s],
        vec!["top", s, "--limit", "0"],
        vec!["split", s, "-o", parts.to_str().unwrap(), "--force"],
        vec!["exec", s, "--chunks", "3", "--", "cat", "{}"],
        vec!["exec", s, "--flows", "3", "--", "cat"],
        vec!["completions", "zsh"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = run_into(&args, Stdio::from(full));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("pcap-parallel: standard output: No space left on device"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn the_os_error_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    for (path, os) in [
        ("/nonexistent/missing.pcap", "No such file or directory"),
        (dir.path().to_str().unwrap(), "Is a directory"),
    ] {
        let out = run(&["info", path]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(err.matches(os).count(), 1, "{err}");
        assert_eq!(
            err,
            format!(
                "pcap-parallel: {path}: {os} (os error {})\n",
                if os.starts_with("No") { 2 } else { 21 }
            )
        );
    }
}

#[test]
fn info_json_gives_every_input_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_capture = dir.path().join("notes.txt");
    std::fs::write(&not_a_capture, "hello, world\n").unwrap();
    let s = sample();
    let files = [
        s.to_str().unwrap(),
        "/nonexistent/missing.pcap",
        not_a_capture.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        s.to_str().unwrap(),
    ];
    let mut args = vec!["info", "--json"];
    args.extend(files);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), files.len(), "{}", stdout(&out));
    for (line, file) in lines.iter().zip(files) {
        assert_eq!(line["file"], file);
    }
    assert_eq!(lines[0]["packets"], 1000);
    assert_eq!(lines[4]["packets"], 1000);
    for line in &lines[1..4] {
        let error = line["error"].as_str().unwrap();
        assert!(error.starts_with(line["file"].as_str().unwrap()), "{error}");
        assert_eq!(line.as_object().unwrap().len(), 2, "{line}");
    }
    // The errors are on standard error too, one line each.
    assert_eq!(stderr(&out).lines().count(), 3, "{}", stderr(&out));
}

#[test]
fn no_summary_for_a_file_that_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    // A pcap header of version 3.0, and a pcapng section of version 2.0.
    let mut bytes = std::fs::read(sample()).unwrap();
    bytes[4..6].copy_from_slice(&3u16.to_le_bytes());
    let pcap = dir.path().join("version-3.pcap");
    std::fs::write(&pcap, &bytes).unwrap();
    let pcapng =
        common::shipped_dir().join("the-tcpdump-group__libpcap__pcapng-invalid-vers-1.pcapng");
    for file in [&pcap, &pcapng] {
        let f = file.to_str().unwrap();
        let out = run(&["info", f]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out), "", "{f}: no summary");
        assert!(stderr(&out).contains("unsupported"), "{}", stderr(&out));
        let lines = json_lines(&run(&["info", "--json", f]));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].as_object().unwrap().len(), 2, "{f}: {}", lines[0]);
        // Nor an empty table.
        for args in [vec!["top", f], vec!["top", "--json", f]] {
            let out = run(&args);
            assert_eq!(out.status.code(), Some(1));
            assert_eq!(stdout(&out), "", "{args:?}: no table");
            assert_eq!(stderr(&out).lines().count(), 1, "{args:?}");
        }
    }
}

#[test]
fn split_into_a_regular_file_says_it_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("some-file");
    std::fs::write(&file, "x").unwrap();
    let s = sample();
    let out = run(&["split", s.to_str().unwrap(), "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("some-file: not a directory"), "{err}");
    assert!(!err.contains("File exists"), "{err}");
}

#[test]
fn a_filter_unsuited_to_the_link_type_is_a_usage_error_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let raw = common::shipped_dir().join("seladb__PcapPlusPlus__raw_ip.pcap");
    let f = raw.to_str().unwrap();
    let parts = dir.path().join("parts");
    let filter = "ether host 00:11:22:33:44:55";
    for args in [
        vec!["info", f, "--filter", filter],
        vec!["info", "--json", f, "--filter", filter],
        vec!["top", f, "--filter", filter],
        vec![
            "split",
            f,
            "-o",
            parts.to_str().unwrap(),
            "--filter",
            filter,
        ],
        vec!["exec", f, "--filter", filter, "--", "capinfos", "{}"],
        vec![
            "exec", f, "--flows", "2", "--filter", filter, "--", "wc", "-c",
        ],
    ] {
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(stdout(&out), "", "{args:?}: no results");
        assert!(
            err.contains("cannot be used on link type 101"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(
        !parts.exists(),
        "no part written, nor the directory the split made"
    );
}

#[test]
fn max_packets_stops_before_damage_that_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let damaged = damaged_sample(dir.path(), 18);
    let f = damaged.to_str().unwrap();
    let gz = dir.path().join("damaged.pcap.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c '{f}' > '{}'", gz.display()))
        .status()
        .unwrap();
    assert!(status.success());
    for file in [f, gz.to_str().unwrap()] {
        for chunking in [&[][..], &["--chunks", "3"], &["--packets", "5"]] {
            let what = format!("{file} {chunking:?}");
            let mut args = vec!["info", "--json", "-c", "18", file];
            args.extend(chunking);
            let out = run(&args);
            assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
            assert_eq!(json_lines(&out)[0]["packets"], 18, "{what}");
            assert!(json_lines(&out)[0]["error"].is_null(), "{what}");
            // One more packet meets the damage.
            args[3] = "19";
            let out = run(&args);
            assert_eq!(out.status.code(), Some(1), "{what}");
            assert!(
                stderr(&out).contains("(packet 19)"),
                "{what}: {}",
                stderr(&out)
            );
        }
    }
    // Standard input, and the other commands.
    let out = bin()
        .args(["info", "--json", "-c", "18", "-"])
        .stdin(std::fs::File::open(&damaged).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["packets"], 18);
    let parts = dir.path().join("parts");
    for args in [
        vec!["top", f, "-c", "18"],
        vec![
            "split",
            f,
            "-c",
            "18",
            "-o",
            parts.to_str().unwrap(),
            "--chunks",
            "2",
        ],
        vec!["exec", f, "-c", "18", "--", "wc", "-c"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

/// How many packets tshark reads in `file`.
fn tshark_count(file: &Path) -> u64 {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .output()
        .expect("tshark is installed (.ci/run installs it)");
    assert!(out.status.success(), "tshark reads {}", file.display());
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

/// How many packets tcpdump reads with `-c count` and `filter`.
fn tcpdump_count(file: &Path, count: u64, filter: &str) -> u64 {
    let out = Command::new("tcpdump")
        .args(["-nr"])
        .arg(file)
        .args(["-c", &count.to_string(), filter])
        .stderr(Stdio::null())
        .output()
        .expect("tcpdump is installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

#[test]
fn max_packets_with_a_filter_counts_the_packets_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample();
    let f = s.to_str().unwrap();
    for (count, filter) in [(100, "udp"), (7, "icmp or icmp6"), (50, "tcp port 443")] {
        let want = tcpdump_count(&s, count, filter);
        assert_eq!(want, count, "tcpdump finds {count} of '{filter}'");
        let c = count.to_string();
        for extra in [&[][..], &["--chunks", "5"], &["--packets", "10"]] {
            let mut args = vec!["info", "--json", f, "-c", &c, "--filter", filter];
            args.extend(extra);
            let v = &json_lines(&run(&args))[0];
            assert_eq!(v["packets"], count, "{args:?}");
            // Streamed the same.
            args[2] = "-";
            let out = bin()
                .args(&args)
                .stdin(std::fs::File::open(&s).unwrap())
                .output()
                .unwrap();
            assert_eq!(json_lines(&out)[0]["packets"], count, "{args:?} streamed");
        }
        // exec: PCAP_PARALLEL_PACKETS is what each run gets, and they add up.
        let out = run(&[
            "exec",
            f,
            "-c",
            &c,
            "--filter",
            filter,
            "--chunks",
            "4",
            "--",
            "sh",
            "-c",
            "echo $PCAP_PARALLEL_PACKETS $(capinfos -c -M {} | grep -o '[0-9]*$')",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut total = 0;
        for line in stdout(&out).lines() {
            let (env, file) = line.split_once(' ').unwrap();
            assert_eq!(
                env, file,
                "'{filter}': PCAP_PARALLEL_PACKETS is the file's count"
            );
            total += env.parse::<u64>().unwrap();
        }
        assert_eq!(total, count, "'{filter}'");
        // split: the parts hold that many packets.
        let parts = dir.path().join(format!("parts-{count}"));
        let out = run(&[
            "split",
            f,
            "-c",
            &c,
            "--filter",
            filter,
            "-o",
            parts.to_str().unwrap(),
        ]);
        let names: Vec<PathBuf> = stdout(&out).lines().map(PathBuf::from).collect();
        let packets: u64 = names.iter().map(|n| tshark_count(n)).sum();
        assert_eq!(packets, count, "'{filter}': split");
    }
}

#[test]
fn skipped_bytes_are_counted_in_words() {
    let dir = tempfile::tempdir().unwrap();
    // One stray byte after the last record.
    let mut bytes = std::fs::read(sample()).unwrap();
    bytes.push(0);
    let f = dir.path().join("trailing-byte.pcap");
    std::fs::write(&f, bytes).unwrap();
    let out = run(&["info", "--on-error", "skip", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("warning: skipped 1 byte at byte"), "{err}");
    assert!(err.contains("1 damaged stretch skipped (1 byte)"), "{err}");
    assert!(!err.contains("1 bytes"), "{err}");
}

#[test]
fn sizes_with_decimals_and_every_unit() {
    let s = sample();
    let f = s.to_str().unwrap();
    let chunks = |size: &str| {
        let out = run(&["info", "--json", f, "--bytes", size]);
        assert!(out.status.success(), "{size}: {}", stderr(&out));
        json_lines(&out)[0]["chunks"].as_u64().unwrap()
    };
    // 1.5 KiB is 1536 bytes, 0.1 MiB 104857 (rounded down).
    assert!(chunks("1.5K") > 100);
    assert_eq!(chunks("1.5K"), chunks("1536"));
    assert_eq!(chunks("0.1M"), chunks("104857"));
    assert_eq!(chunks("1T"), 1);
    let out = run(&["info", f, "--bytes", "1,5M"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a size"), "{}", stderr(&out));
    let out = run(&["info", f, "--bytes", "15Q"]);
    assert!(
        stderr(&out).contains("unknown size unit"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_says_what_the_options_do() {
    let help = |cmd: &str| stdout(&run(&[cmd, "--help"]));
    assert!(help("split").contains("K, M, G, T"), "{}", help("split"));
    let top = help("top");
    assert!(top.contains("the key's name, as in --by"), "{top}");
    assert!(!top.contains("`key,packets,bytes`"), "{top}");
    assert!(top.contains("lengths on the wire"), "{top}");
    for cmd in ["info", "top"] {
        let h = help(cmd);
        let heading = h.find("Chunking (changes the speed, never the results):");
        let chunks = h.find("--chunks");
        assert!(heading.is_some() && chunks > heading, "{cmd}: {h}");
    }
    for cmd in ["info", "top", "split", "exec"] {
        assert!(
            help(cmd).contains("temporary file"),
            "{cmd}: --chunks on a stream"
        );
    }
    assert!(help("exec").contains("with --filter, those that pass it"));
    let top_help = stdout(&run(&["--help"]));
    assert!(top_help.contains("141"), "{top_help}");
}

#[test]
fn split_sizes_parts_automatically_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let big = synthetic(dir.path(), 20_000);
    let parts = dir.path().join("parts");
    let out = run(&[
        "split",
        big.to_str().unwrap(),
        "-o",
        parts.to_str().unwrap(),
        "-j",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<PathBuf> = stdout(&out).lines().map(PathBuf::from).collect();
    // About 7 MB, in parts of the automatic size (1 MiB at least).
    assert!(names.len() >= 3, "{names:?}");
    let r = reference(&names);
    assert_eq!(r["packets"], 20_000);
}

/// A capture of `link_type` whose packets are not IP.
fn not_ip(dir: &Path, link_type: u32) -> PathBuf {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, link_type] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..5u32 {
        let data = [0x42u8; 40];
        for v in [1_700_000_000 + i, 0, 40, 40] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&data);
    }
    let path = dir.join(format!("linktype-{link_type}.pcap"));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn top_says_why_its_table_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let user0 = not_ip(dir.path(), 147);
    let out = run(&["top", user0.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 1, "the header alone");
    let said = "pcap-parallel: no IP packets: link type ";
    let err = stderr(&out);
    assert!(
        err.starts_with(said) && err.contains("147") && err.lines().count() == 1,
        "{err}"
    );
    let out = run(&["top", user0.to_str().unwrap(), "--flows", "2", "--json"]);
    assert_eq!(stderr(&out), err, "the same by flow shards");
    // IP packets, but none with ports.
    let s = sample();
    let out = run(&[
        "top",
        s.to_str().unwrap(),
        "--by",
        "dport",
        "--filter",
        "icmp",
    ]);
    assert!(
        stderr(&out).contains("no packets with ports"),
        "{}",
        stderr(&out)
    );
    // Nothing passes the filter.
    let out = run(&["top", s.to_str().unwrap(), "--filter", "vlan 4000 and arp"]);
    assert_eq!(
        stderr(&out),
        "pcap-parallel: no packets passed the filter\n"
    );
    // A table with rows says nothing.
    let out = run(&["top", s.to_str().unwrap()]);
    assert_eq!(stderr(&out), "");
}

/// The `--filter` expression of the README's SYN example.
fn readme_syn_filter() -> String {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("--filter") && l.contains("tcp-syn"))
        .expect("README has a SYN example");
    let start = line.find("--filter '").unwrap() + "--filter '".len();
    let end = start + line[start..].find('\'').unwrap();
    line[start..end].to_string()
}

/// Frames tshark sees with the SYN flag, over IPv4 and IPv6.
fn tshark_syns(file: &Path) -> u64 {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-Y", "tcp.flags.syn == 1"])
        .output()
        .expect("tshark is installed");
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

#[test]
fn the_readme_syn_example_finds_ipv4_and_ipv6_syns() {
    let filter = readme_syn_filter();
    let raw = common::shipped_dir().join("seladb__PcapPlusPlus__raw_ip.pcap");
    let v6 = common::shipped_dir().join("seladb__PcapPlusPlus__four_ipv6_http_streams.pcap");
    for file in [&raw, &v6] {
        let want = tshark_syns(file);
        assert!(want > 0);
        let out = run(&[
            "info",
            "--json",
            file.to_str().unwrap(),
            "--filter",
            &filter,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(json_lines(&out)[0]["packets"], want, "{}", file.display());
        let v = &json_lines(&out)[0]["protocols"];
        assert_eq!(v["tcp"], want);
    }
    let out = run(&["info", "--json", raw.to_str().unwrap(), "--filter", &filter]);
    let p = &json_lines(&out)[0]["protocols"];
    assert!(
        p["ipv4"].as_u64() > Some(0) && p["ipv6"].as_u64() > Some(0),
        "{p}"
    );
}

#[test]
fn readme_says_how_to_install_and_what_exit_statuses_mean() {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let install = readme
        .find("cargo install --locked --path crates/pcap-parallel-cli")
        .expect("README says how to install the binary, with the tested Cargo.lock");
    let first_use = readme.find("pcap-parallel info").unwrap();
    assert!(install < first_use, "installing comes before the examples");
    assert!(
        readme.contains("141"),
        "README documents the closed-pipe status"
    );
}

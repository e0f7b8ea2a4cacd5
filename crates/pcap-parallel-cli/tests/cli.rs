//! The `pcap-parallel` binary on the corpus captures, checked against the
//! corpus manifest, tshark, capinfos and the reference reader.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use support::*;

/// The number of frames tshark reads, and the fields it prints.
fn tshark_fields(path: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"])
        .arg(path)
        .args(["-T", "fields", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark is installed (.ci/run installs it)");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn info_json_counts_equal_the_manifest_for_every_file() {
    for e in manifest() {
        let out = run(&["info", "--json", "-q", "-j", "2", e.path.to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(text.lines().count(), 1, "{}: one JSON object", e.file);
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}: {text}", e.file));
        if v.get("packets").is_none() {
            // Nothing could be read: the file and its error only.
            assert!(!e.ok() && e.packets() == 0, "{}: {text}", e.file);
            assert_eq!(v.as_object().unwrap().len(), 2, "{}: {text}", e.file);
            assert!(v["error"].as_str().unwrap().contains(&e.file), "{text}");
            assert_eq!(out.status.code(), Some(1), "{}", e.file);
            continue;
        }
        assert_eq!(v["packets"].as_u64(), Some(e.packets()), "{}", e.file);
        assert_eq!(
            v["captured_bytes"].as_u64(),
            e.get("captured_bytes").parse().ok(),
            "{}",
            e.file
        );
        assert_eq!(
            v["compression"].as_str(),
            Some(e.get("compression")),
            "{}",
            e.file
        );
        if e.ok() {
            assert!(
                out.status.success(),
                "{}: {}",
                e.file,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(v["error"].is_null());
        } else {
            assert_eq!(out.status.code(), Some(1), "{}", e.file);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{}: one error line: {err}", e.file);
            assert!(
                err.contains(&e.file) && err.contains("at byte"),
                "{}: {err}",
                e.file
            );
        }
    }
}

#[test]
fn info_reads_standard_input_and_several_files() {
    let f = std::fs::File::open(sample()).unwrap();
    let out = bin()
        .args(["info", "--json", "-"])
        .stdin(f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packets"], 1000);
    assert_eq!(v["file"], "-");
    let s = sample();
    let out = run(&["info", s.to_str().unwrap(), s.to_str().unwrap()]);
    assert_eq!(
        stdout(&out).matches("Packets:              1000").count(),
        2
    );
}

/// Source-address counts as tshark sees them, over the first IP layer of each frame.
fn tshark_sources(path: &Path) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for f in tshark_fields(path, &["frame.protocols", "ip.src", "ipv6.src"]) {
        let first = f[0].split(':').find(|l| *l == "ip" || *l == "ipv6");
        let addr = match first {
            Some("ip") => &f[1],
            Some(_) => &f[2],
            None => continue,
        };
        *counts.entry(addr.clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn top_by_source_equals_tshark() {
    let files = [
        "appneta__tcpreplay__test.pcap",
        "seladb__PcapPlusPlus__sll.pcap",
        "OISF__suricata-verify__tests--decode-sll2-02--input.pcap",
        "seladb__PcapPlusPlus__VlanPackets.pcap",
        "OISF__suricata-verify__defrag-af-confusion-spray-h8.pcap",
        "seladb__PcapPlusPlus__pcapng-example.pcapng.zst",
    ];
    for path in std::iter::once(sample()).chain(files.into_iter().filter_map(capture_file)) {
        let out = run(&[
            "top",
            path.to_str().unwrap(),
            "--by",
            "src",
            "--limit",
            "0",
            "--csv",
            "-j",
            "2",
        ]);
        assert!(out.status.success(), "{}", path.display());
        let text = stdout(&out);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("src,packets,bytes"));
        let ours: HashMap<String, u64> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[1].parse().unwrap())
            })
            .collect();
        let theirs = tshark_sources(&path);
        let ip_packets: u64 = theirs.values().sum();
        assert!(ip_packets > 0);
        assert_eq!(
            ours.values().sum::<u64>(),
            ip_packets,
            "{}: total = IP packets",
            path.display()
        );
        assert_eq!(ours, theirs, "{}", path.display());
    }
}

#[test]
fn top_other_keys_and_formats() {
    let s = sample();
    let s = s.to_str().unwrap();
    // Every packet of the sample is IP, so every key's packets add up to 1000 ...
    for by in ["src", "dst", "proto", "conversation"] {
        let out = run(&["top", s, "--by", by, "--limit", "0", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["packets"], 1000, "{by}");
        let sum: u64 = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["packets"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, 1000, "{by}");
    }
    // ... and the ports those of the TCP and UDP packets, as tshark counts them.
    let fields = tshark_fields(&sample(), &["tcp.dstport", "udp.dstport"]);
    let with_ports = fields
        .iter()
        .filter(|f| !f[0].is_empty() || !f[1].is_empty())
        .count() as u64;
    let out = run(&["top", s, "--by", "dport", "--limit", "3"]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 4, "a header and 3 rows");
    let out = run(&["top", s, "--by", "dport", "--limit", "0", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packets"].as_u64(), Some(with_ports));
    // Rows are sorted by packets, then key.
    let rows = v["rows"].as_array().unwrap();
    for w in rows.windows(2) {
        assert!(w[0]["packets"].as_u64() >= w[1]["packets"].as_u64());
    }
}

#[test]
fn split_parts_are_valid_and_reproduce_the_input() {
    let dir = tempfile::tempdir().unwrap();
    for e in manifest()
        .into_iter()
        .filter(|e| e.ok() && e.get("compression") != "zstd")
    {
        // Compare with capinfos only where it reads the file as the reference does.
        let capinfos_agrees = e.get("packets_capinfos") == e.get("packets_parser");
        let tshark_reads = e.get("packets_tshark") == e.get("packets_parser") && e.packets() > 0;
        let original_frames = if tshark_reads && e.get("format") == "pcapng" {
            tshark_fields(&e.path, &["frame.interface_id", "frame.encap_type"])
        } else {
            Vec::new()
        };
        for k in ["1", "3", "50"] {
            let out_dir = dir.path().join(format!("{}-{k}", e.file));
            let out = run(&[
                "split",
                e.path.to_str().unwrap(),
                "-o",
                out_dir.to_str().unwrap(),
                "--chunks",
                k,
                "-j",
                "3",
            ]);
            assert!(
                out.status.success(),
                "{}: {}",
                e.file,
                String::from_utf8_lossy(&out.stderr)
            );
            let names: Vec<PathBuf> = stdout(&out).lines().map(PathBuf::from).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{}: names sort in file order", e.file);
            assert!(
                !names.is_empty() && names.len() <= k.parse().unwrap(),
                "{}",
                e.file
            );
            let mut on_disk: Vec<PathBuf> = std::fs::read_dir(&out_dir)
                .unwrap()
                .map(|d| d.unwrap().path())
                .collect();
            on_disk.sort();
            assert_eq!(
                on_disk, names,
                "{}: exactly the printed files, no temporaries",
                e.file
            );
            let r = reference(&names);
            assert_eq!(
                r["packets"].as_u64(),
                Some(e.packets()),
                "{}: {k} parts",
                e.file
            );
            assert_eq!(
                r["data_sha256"].as_str(),
                Some(e.get("data_sha256")),
                "{}: {k} parts",
                e.file
            );
            assert!(
                r["statuses"].as_array().unwrap().iter().all(|s| s == "ok"),
                "{}: {r}",
                e.file
            );
            if capinfos_agrees && k == "3" {
                for n in &names {
                    let c = Command::new("capinfos")
                        .args(["-c", "-M"])
                        .arg(n)
                        .output()
                        .unwrap();
                    assert!(c.status.success(), "capinfos opens {}", n.display());
                }
            }
            if !original_frames.is_empty() && k != "1" {
                let mut frames = Vec::new();
                for n in &names {
                    frames.extend(tshark_fields(
                        n,
                        &["frame.interface_id", "frame.encap_type"],
                    ));
                }
                assert_eq!(
                    frames, original_frames,
                    "{}: {k} parts keep interface ids and link types",
                    e.file
                );
            }
        }
    }
}

#[test]
fn split_refuses_to_overwrite_and_compresses() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("parts");
    let s = sample();
    let s = s.to_str().unwrap();
    let o = out_dir.to_str().unwrap();
    assert!(
        run(&["split", s, "-o", o, "--packets", "300"])
            .status
            .success()
    );
    let again = run(&["split", s, "-o", o, "--packets", "300"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    // --force replaces, and removes the parts an earlier, longer split left.
    let forced = run(&["split", s, "-o", o, "--packets", "600", "--force"]);
    assert!(forced.status.success());
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 2);
    // Compressed parts.
    let gz = dir.path().join("gz");
    let out = run(&[
        "split",
        s,
        "-o",
        gz.to_str().unwrap(),
        "--bytes",
        "100K",
        "--compress",
        "gzip",
    ]);
    let names: Vec<PathBuf> = stdout(&out).lines().map(PathBuf::from).collect();
    assert!(
        names.len() >= 3
            && names
                .iter()
                .all(|n| n.to_str().unwrap().ends_with(".pcap.gz"))
    );
    let r = reference(&names);
    assert_eq!(r["packets"], 1000);
    // A usage error is exit status 2.
    assert_eq!(
        run(&["split", s, "-o", o, "--packets", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["split", s, "-o", o, "--chunks", "0"]).status.code(),
        Some(2)
    );
}

#[test]
fn exec_with_a_file_and_with_standard_input() {
    let files = [
        "seladb__PcapPlusPlus__many_interfaces-1.pcapng",
        "secdev__scapy__gmlan_trace.pcap.gz",
    ];
    for path in std::iter::once(sample()).chain(files.into_iter().filter_map(capture_file)) {
        let p = path.to_str().unwrap();
        let expected = reference(std::slice::from_ref(&path))["packets"]
            .as_u64()
            .unwrap();
        // capinfos on each chunk's temporary file: the counts add up.
        let out = run(&[
            "exec", p, "--chunks", "5", "-j", "3", "--", "capinfos", "-c", "-M", "{}",
        ]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = stdout(&out);
        let counts: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Number of packets:"))
            .map(|v| v.trim().parse().unwrap())
            .collect();
        assert!(!counts.is_empty() && counts.len() <= 5);
        assert_eq!(counts.iter().sum::<u64>(), expected, "{p}");
        // The temporary files are gone.
        for l in text.lines().filter_map(|l| l.strip_prefix("File name:")) {
            assert!(!Path::new(l.trim()).exists(), "{l} was removed");
        }
        // wc -c on each chunk streamed to its standard input: the sizes of the standalone chunks.
        let out = run(&["exec", p, "--chunks", "5", "--", "wc", "-c"]);
        assert!(out.status.success());
        let total: u64 = stdout(&out)
            .lines()
            .map(|l| l.trim().parse::<u64>().unwrap())
            .sum();
        let dir = tempfile::tempdir().unwrap();
        let split = run(&[
            "split",
            p,
            "-o",
            dir.path().to_str().unwrap(),
            "--chunks",
            "5",
        ]);
        let sizes: u64 = stdout(&split)
            .lines()
            .map(|n| std::fs::metadata(n).unwrap().len())
            .sum();
        assert_eq!(total, sizes, "{p}");
    }
}

#[test]
fn exec_reports_failed_chunks_and_keeps_output_order() {
    let s = sample();
    let out = run(&[
        "exec",
        s.to_str().unwrap(),
        "--chunks",
        "4",
        "-j",
        "4",
        "--",
        "sh",
        "-c",
        "sleep 0.$((3 - PCAP_PARALLEL_CHUNK)); echo chunk $PCAP_PARALLEL_CHUNK; echo note >&2; [ $PCAP_PARALLEL_CHUNK != 2 ]",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "chunk 0\nchunk 1\nchunk 2\nchunk 3\n");
    let err = String::from_utf8_lossy(&out.stderr);
    for i in 0..4 {
        assert!(err.contains(&format!("[chunk {i}] note")), "{err}");
    }
    assert!(err.contains("1 of 4 runs failed"), "{err}");
    assert!(
        err.contains("chunk 2 (bytes") && err.contains("exit status 1"),
        "{err}"
    );
    // A command that does not exist.
    let out = run(&["exec", s.to_str().unwrap(), "--", "/nonexistent/command"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not run /nonexistent/command"));
}

#[test]
fn json_output_is_all_that_reaches_standard_output() {
    // Piped into a JSON parser, as a script would.
    let s = sample();
    let mut producer = bin()
        .args(["top", s.to_str().unwrap(), "--json", "--by", "proto"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let consumer = Command::new("python3")
        .args([
            "-c",
            "import json,sys; d=json.load(sys.stdin); print(d['packets'])",
        ])
        .stdin(producer.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(producer.wait().unwrap().success());
    assert_eq!(String::from_utf8_lossy(&consumer.stdout).trim(), "1000");
}

#[test]
fn help_and_completions() {
    for cmd in ["info", "top", "split", "exec"] {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success());
        assert!(
            stdout(&out).contains("Examples:"),
            "{cmd} --help has examples"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(
            out.status.success() && stdout(&out).contains("pcap-parallel"),
            "{shell}"
        );
    }
    assert_eq!(run(&["top"]).status.code(), Some(2));
    assert_eq!(run(&["info", "/nonexistent.pcap"]).status.code(), Some(1));
}

/// The conversation key of a packet, both directions alike (as `top --by conversation`).
fn conversation(p: &pcap_parallel::Packet<'_>) -> Option<String> {
    let ip = pcap_parallel::decode::ip(p.link_type, p.data)?;
    let a = (ip.src, ip.ports.map(|x| x.0));
    let b = (ip.dst, ip.ports.map(|x| x.1));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Some(format!("{lo:?} {hi:?} {}", ip.protocol))
}

#[test]
fn split_by_flows_into_a_thousand_files_with_64_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many-flows.pcap");
    pcap_synth::Synth::new(99)
        .write(
            std::fs::File::create(&input).unwrap(),
            pcap_synth::Format::Pcap,
            150_000,
        )
        .unwrap();
    // More than a thousand conversations.
    let convs: std::collections::HashSet<String> = pcap_parallel::Capture::open(&input)
        .unwrap()
        .map(|c| {
            c.packets()
                .filter_map(|p| conversation(&p))
                .collect::<Vec<_>>()
        })
        .unwrap()
        .concat()
        .into_iter()
        .collect();
    assert!(convs.len() > 1000, "{} conversations", convs.len());
    let split = |out: &Path, extra: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 64 && exec '{}' split -q '{}' -o '{}' --flows 1000 {extra}",
                env!("CARGO_BIN_EXE_pcap-parallel"),
                input.display(),
                out.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    // The limit is real: asked to keep 200 files open, the split fails cleanly.
    let too_many = dir.path().join("too-many");
    assert_eq!(split(&too_many, "--max-open 200").code(), Some(1));
    assert!(
        !too_many.exists(),
        "nothing half-written left, nor the directory the split made"
    );
    let out = dir.path().join("shards");
    assert!(split(&out, "").success());
    let mut names: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 1000);
    // Every packet once, every conversation in one file only.
    let mut home: HashMap<String, usize> = HashMap::new();
    let mut packets = 0;
    for (i, n) in names.iter().enumerate() {
        let keys = pcap_parallel::Capture::open(n)
            .unwrap()
            .workers(1)
            .map(|c| {
                c.packets()
                    .map(|p| conversation(&p).unwrap_or_default())
                    .collect::<Vec<_>>()
            })
            .unwrap()
            .concat();
        packets += keys.len();
        for k in keys {
            assert_eq!(
                *home.entry(k.clone()).or_insert(i),
                i,
                "conversation {k} in two files"
            );
        }
    }
    assert_eq!(packets, 150_000);
}

#[test]
fn exec_by_flows() {
    let s = sample();
    let p = s.to_str().unwrap();
    let out = run(&[
        "exec", p, "--flows", "4", "--", "capinfos", "-c", "-M", "{}",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<u64> = stdout(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("Number of packets:"))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 4);
    assert_eq!(counts.iter().sum::<u64>(), 1000);
    let out = run(&["exec", p, "--flows", "3", "--", "wc", "-c"]);
    assert_eq!(stdout(&out).lines().count(), 3);
    // The same totals by flow shard as by chunk.
    let by_chunk = run(&["top", p, "--by", "conversation", "--limit", "0", "--csv"]);
    let by_flow = run(&[
        "top",
        p,
        "--by",
        "conversation",
        "--limit",
        "0",
        "--csv",
        "--flows",
        "7",
    ]);
    assert_eq!(stdout(&by_chunk), stdout(&by_flow));
    let info = |extra: &[&str]| {
        let mut args = vec!["info", "--json", p];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_slice(&run(&args).stdout).unwrap();
        (
            v["packets"].clone(),
            v["protocols"].clone(),
            v["captured_bytes"].clone(),
        )
    };
    assert_eq!(info(&[]), info(&["--flows", "5"]));
}

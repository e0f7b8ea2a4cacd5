//! What the command-line tests share: running the binary, the shipped
//! sample, and the corpus' reference reader over output files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::{Fingerprint, Replay, corpus};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pcap-parallel"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.pcap")
}

/// Reads `files` in order, as if they were one capture: the packets, the
/// SHA-256 of their data and each file's status ("ok" when it reads to the
/// end), to compare with the manifest. With the corpus, its reference
/// reader `fingerprint.py` reads them; without it, this crate reads them
/// sequentially (one chunk, one worker), and the manifest's values, which
/// the reference reader computed, stay the independent side.
pub fn reference(files: &[PathBuf]) -> serde_json::Value {
    let Some(corpus) = corpus() else {
        return read_in_order(files);
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fingerprint_parts.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(corpus)
        .args(files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// [`reference`] without the corpus: this crate, sequentially.
fn read_in_order(files: &[PathBuf]) -> serde_json::Value {
    let mut fp = Fingerprint::default();
    let mut statuses = Vec::new();
    for f in files {
        let capture = match pcap_parallel::Capture::open(f) {
            Ok(c) => c,
            Err(e) => {
                statuses.push(e.to_string());
                continue;
            }
        };
        let report = capture
            .workers(1)
            .split(pcap_parallel::Split::Chunks(1))
            .run(
                |c| {
                    let mut replay = Replay::default();
                    replay.add_chunk(c);
                    Ok(replay)
                },
                |r| fp.merge(r.result.expect("no user code fails")),
            );
        statuses.push(report.input_error.map_or("ok".into(), |e| e.to_string()));
    }
    serde_json::json!({
        "packets": fp.packets,
        "data_sha256": fp.data_sha256(),
        "statuses": statuses,
    })
}

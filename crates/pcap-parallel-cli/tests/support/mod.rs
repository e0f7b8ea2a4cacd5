//! What the command-line tests share: running the binary, the shipped
//! sample, and the corpus' reference reader over output files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::corpus_dir;

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

/// Runs the reference reader over `files` in order.
pub fn reference(files: &[PathBuf]) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fingerprint_parts.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(corpus_dir())
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

//! The original README's example (examples/count_sources.rs) counts what
//! tshark counts: per source address, on the shipped sample and on corpus
//! captures of several link types.

mod common;
#[path = "../examples/count_sources.rs"]
mod example;

use std::collections::HashMap;
use std::process::Command;

/// Source address counts as tshark sees them: the first IP layer of each frame.
fn tshark_sources(path: &std::path::Path) -> HashMap<String, u64> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "frame.protocols",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
        ])
        .output()
        .expect("tshark is installed (.ci/run installs it)");
    assert!(out.status.success(), "tshark failed on {}", path.display());
    let mut counts = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let layers: Vec<&str> = f[0].split(':').collect();
        let first = layers.iter().find(|l| **l == "ip" || **l == "ipv6");
        let addr = match first {
            Some(&"ip") => f[1],
            Some(_) => f[2],
            None => continue,
        };
        *counts.entry(addr.to_string()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn counts_equal_tsharks() {
    let sample = common::repo_root().join("samples/sample.pcap");
    let files = [
        "appneta__tcpreplay__test.pcap",
        "seladb__PcapPlusPlus__sll.pcap",
        "seladb__PcapPlusPlus__VlanPackets.pcap",
        "seladb__PcapPlusPlus__http-packets.pcap",
        "OISF__suricata-verify__tests--decode-sll2-02--input.pcap",
        "OISF__suricata-verify__tests--smb-length-5770--input.pcap",
        "seladb__PcapPlusPlus__four_ipv6_http_streams.pcap",
    ];
    let files = std::iter::once(sample).chain(files.into_iter().filter_map(common::capture_file));
    for path in files {
        let ours: HashMap<String, u64> = example::count_sources(path.to_str().unwrap())
            .unwrap()
            .into_iter()
            .map(|(a, n)| (a.to_string(), n))
            .collect();
        let theirs = tshark_sources(&path);
        assert!(
            !theirs.is_empty(),
            "{}: tshark saw IP packets",
            path.display()
        );
        assert_eq!(ours, theirs, "{}", path.display());
    }
}

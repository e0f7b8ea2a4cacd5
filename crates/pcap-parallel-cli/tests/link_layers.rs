//! `info` and `top` on link layers other than Ethernet (issue 9, point 10):
//! PPI and Marvell DSA/EDSA are named as libpcap names them, the IP
//! packets behind them are counted, and a capture with no IP says why its
//! table is empty.
//!
//! The captures are pcap-synth's traffic wrapped in each link layer, so the
//! same traffic as plain Ethernet is the reference: `top` must give the
//! same keys and packet counts for both.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::path::{Path, PathBuf};

use pcap_synth::Synth;
use pcap_synth::encap::{Encapsulation, pcap_file};
use support::*;

/// 300 frames of synthetic traffic, as they are (Ethernet) and under `encap`.
fn captures(dir: &Path, encap: Encapsulation) -> (PathBuf, PathBuf) {
    let mut synth = Synth::new(7);
    let frames: Vec<(u64, Vec<u8>)> = (0..300).map(|_| synth.next_frame()).collect();
    let wrapped: Vec<(u64, Vec<u8>)> = frames
        .iter()
        .enumerate()
        .map(|(i, (ts, f))| (*ts, encap.wrap(f, i as u64)))
        .collect();
    let plain = dir.join("ethernet.pcap");
    let other = dir.join(format!("{encap:?}.pcap"));
    std::fs::write(&plain, pcap_file(1, &frames)).unwrap();
    std::fs::write(&other, pcap_file(encap.link_type(), &wrapped)).unwrap();
    (plain, other)
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ppi_and_dsa_are_named_and_decoded() {
    let dir = tempfile::tempdir().unwrap();
    for (encap, name) in [
        (Encapsulation::PpiEthernet, "PPI"),
        (Encapsulation::Ppi80211, "PPI"),
        (Encapsulation::Dsa, "DSA_TAG_DSA"),
        (Encapsulation::Edsa, "DSA_TAG_EDSA"),
    ] {
        let (plain, other) = captures(dir.path(), encap);
        let (plain, other) = (plain.to_str().unwrap(), other.to_str().unwrap());
        let info = json(&["info", other, "--json"]);
        let lt = &info["interfaces"][0];
        assert_eq!(lt["link_type"], encap.link_type(), "{encap:?}");
        assert_eq!(lt["link_type_name"], name, "{encap:?}");
        let plain_info = json(&["info", plain, "--json"]);
        assert!(plain_info["protocols"]["ipv4"].as_u64().unwrap() > 0);
        for key in ["ipv4", "ipv6", "tcp", "udp", "icmp", "other_ip"] {
            assert_eq!(
                info["protocols"][key], plain_info["protocols"][key],
                "{encap:?}: {key}"
            );
        }
        for by in ["src", "dst", "dport", "conversation"] {
            let top = json(&["top", other, "--by", by, "--limit", "0", "--json"]);
            let reference = json(&["top", plain, "--by", by, "--limit", "0", "--json"]);
            // Keys and packets; bytes are the frames' lengths on the wire,
            // which the link layer's header adds to.
            let rows = |v: &serde_json::Value| -> Vec<(String, u64)> {
                let rows = v["rows"].as_array().unwrap().iter();
                rows.map(|r| (r["key"].to_string(), r["packets"].as_u64().unwrap()))
                    .collect()
            };
            assert!(rows(&reference).len() > 1);
            assert!(rows(&top) == rows(&reference), "{encap:?} by {by}");
        }
    }
}

#[test]
fn top_names_the_link_type_that_has_no_ip() {
    let dir = tempfile::tempdir().unwrap();
    // PPI headers announcing a link type nothing decodes (DLT 147, USER0).
    let records: Vec<(u64, Vec<u8>)> = (0..5u64)
        .map(|i| {
            let mut r = vec![0, 0, 8, 0, 147, 0, 0, 0];
            r.extend_from_slice(&[0x42; 40]);
            (1_700_000_000_000_000_000 + i, r)
        })
        .collect();
    let path = dir.path().join("ppi-user0.pcap");
    std::fs::write(&path, pcap_file(192, &records)).unwrap();
    let out = run(&["top", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 1, "the header alone");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pcap-parallel: no IP packets: link type PPI (192)\n"
    );
}

//! Filters keep exactly the packets tcpdump keeps: a table of expressions
//! over corpus captures of several link types, compared packet for packet
//! with `tcpdump -r FILE -w - EXPR`.

mod common;

use std::process::Command;

use common::*;
use pcap_parallel::filter::{Filter, FilterError};
use pcap_parallel::{Capture, Error, Split};

const EXPRESSIONS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "ip",
    "ip6",
    "arp",
    "port 80",
    "port 53",
    "tcp port 443 or tcp port 80",
    "portrange 1-1023",
    "src portrange 1024-65535",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[13] & 2 != 0",
    "vlan",
    "vlan and tcp",
    "less 100",
    "greater 1000",
    "net 10.0.0.0/8",
    "src net 192.168.0.0/16 or dst net 172.16.0.0/12",
    "host 172.16.11.12",
    "not ip",
    "ip and not tcp and not udp",
    "ip6 and tcp",
    "icmp6",
    "ip[6:2] & 0x1fff != 0",
    "udp and len > 200",
];

const FILES: &[&str] = &[
    "appneta__tcpreplay__test.pcap",
    "seladb__PcapPlusPlus__http-packets.pcap",
    "seladb__PcapPlusPlus__VlanPackets.pcap",
    "seladb__PcapPlusPlus__sll.pcap",
    "seladb__PcapPlusPlus__null_loopback.pcap",
    "seladb__PcapPlusPlus__raw_ip.pcap",
    "seladb__PcapPlusPlus__linktype_ipv6.pcap",
    "seladb__PcapPlusPlus__four_ipv6_http_streams.pcap",
    "seladb__PcapPlusPlus__ip-frag.pcap",
    "seladb__PcapPlusPlus__ip6_fragments.pcap",
    "OISF__suricata-verify__tests--decode-sll2-02--input.pcap",
    "OISF__suricata-verify__tests--smb-length-5770--input.pcap",
    "the-tcpdump-group__libpcap__Network_Join_Nokia_Mobile.pcap",
    "RIPE-NCC__hadoop-pcap__reversedtest.pcap",
];

type Kept = Vec<(Option<i128>, Vec<u8>)>;

/// What tcpdump keeps, or its error.
fn tcpdump(path: &std::path::Path, expr: &str) -> Result<Kept, String> {
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(path)
        .args(["-w", "-", expr])
        .output()
        .expect("tcpdump is installed (.ci/run installs it)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(Capture::from_bytes("tcpdump", out.stdout)
        .unwrap()
        .workers(1)
        .map(|c| {
            c.packets()
                .map(|p| (p.timestamp.map(|t| t.as_nanos()), p.data.to_vec()))
                .collect::<Vec<_>>()
        })
        .unwrap()
        .concat())
}

fn ours(path: &std::path::Path, filter: Filter, split: Split) -> Result<Kept, Error> {
    Ok(Capture::open(path)?
        .filter(filter)
        .split(split)
        .segment_len(Some(4096))
        .workers(2)
        .map(|c| {
            c.packets()
                .map(|p| (p.timestamp.map(|t| t.as_nanos()), p.data.to_vec()))
                .collect::<Vec<_>>()
        })?
        .concat())
}

/// Every filter of [`EXPRESSIONS`] over `files`, against tcpdump: the
/// comparisons made and how many of them kept packets.
fn compare_with_tcpdump(files: &[std::path::PathBuf]) -> (usize, usize) {
    let mut compared = 0;
    let mut nonempty = 0;
    for path in files {
        let file = path.display();
        for expr in EXPRESSIONS {
            let theirs = tcpdump(path, expr);
            let filter = Filter::new(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let mine = ours(path, filter, Split::Chunks(3));
            match (&theirs, &mine) {
                (Ok(t), Ok(m)) => {
                    assert_eq!(m.len(), t.len(), "{file} '{expr}': packets kept");
                    assert!(m == t, "{file} '{expr}': different packets kept");
                    compared += 1;
                    nonempty += usize::from(!t.is_empty());
                }
                // Both refuse an expression that does not suit the link type.
                (Err(_), Err(Error::Filter(FilterError::LinkType { .. }))) => {}
                _ => panic!(
                    "{file} '{expr}': tcpdump {:?} vs ours {:?}",
                    theirs.map(|t| t.len()),
                    mine.map(|m| m.len())
                ),
            }
        }
    }
    (compared, nonempty)
}

#[test]
fn filters_keep_exactly_what_tcpdump_keeps() {
    // The files of FILES at hand: all with the corpus, else those shipped
    // in samples/real.
    let files: Vec<_> = FILES
        .iter()
        .filter_map(|f| capture_file(f))
        .filter(|p| p.is_file())
        .collect();
    let (compared, nonempty) = compare_with_tcpdump(&files);
    // Measured: 197 comparisons over the 8 shipped files, 70 keeping packets.
    let (want, want_nonempty) = if whole_corpus() {
        (200, 100)
    } else {
        (190, 65)
    };
    assert!(
        files.len() >= 8,
        "{} of the filter test's files found",
        files.len()
    );
    assert!(
        compared >= want && nonempty >= want_nonempty,
        "{compared} comparisons, {nonempty} keeping something, over {} files",
        files.len()
    );
}

#[test]
fn filtered_standalone_chunks_hold_only_the_kept_packets() {
    let path = repo_root().join("samples/sample.pcap");
    let want = tcpdump(&path, "tcp").unwrap();
    let files: Vec<Vec<u8>> = Capture::open(&path)
        .unwrap()
        .filter(Filter::new("tcp").unwrap())
        .split(Split::Chunks(4))
        .map(|c| {
            let mut v = Vec::new();
            c.write_standalone(&mut v).unwrap();
            v
        })
        .unwrap();
    let mut got = Vec::new();
    for f in files {
        got.extend(
            Capture::from_bytes("part", f)
                .unwrap()
                .map(|c| {
                    c.packets()
                        .map(|p| (p.timestamp.map(|t| t.as_nanos()), p.data.to_vec()))
                        .collect::<Vec<_>>()
                })
                .unwrap()
                .concat(),
        );
    }
    assert!(got == want);
}

#[test]
fn a_bad_expression_is_refused_with_libpcaps_message() {
    let err = Filter::new("tcp port eighty").unwrap_err();
    assert!(matches!(err, FilterError::Syntax { .. }), "{err}");
    assert!(err.to_string().contains("tcp port eighty"), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("syntax error") || msg.contains("unknown port"),
        "{msg}"
    );
    // Per-link-type programs: an 802.11-only expression compiles, and
    // refuses an Ethernet capture when it meets one.
    let f = Filter::new("wlan type mgt").unwrap();
    let e = Capture::open(repo_root().join("samples/sample.pcap"))
        .unwrap()
        .filter(f)
        .count()
        .unwrap_err();
    assert!(
        matches!(e, Error::Filter(FilterError::LinkType { .. })),
        "{e}"
    );
}

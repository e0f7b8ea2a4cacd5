//! `decode::headers` says what tshark says: on every capture of the corpus
//! tshark can read, packet by packet, the first IP layer's addresses,
//! protocol, TTL, identification, fragment flags and offset, the ports and
//! TCP flags after it and the outermost VLAN tag.

mod common;
mod tshark;

use std::path::Path;

use common::*;
use pcap_parallel::{Capture, Packet, decode};
use tshark::Fields;

/// Our side of [`Fields`] for one packet.
fn ours(p: &Packet<'_>, pcapng: bool) -> Fields {
    let h = decode::headers(p.link_type, p.data);
    let mut f = Fields {
        number: p.number,
        time_ns: p.timestamp.map(|t| t.as_nanos()),
        cap_len: p.captured_len(),
        len: p.original_len,
        interface_id: pcapng.then_some(p.interface_id),
        vlan: h.vlan,
        ..Fields::default()
    };
    if let Some(ip) = h.ip {
        f.ip_version = Some(ip.version());
        f.src = Some(ip.src.to_string());
        f.dst = Some(ip.dst.to_string());
        f.proto = Some(ip.protocol);
        f.ttl = Some(ip.ttl);
        f.ip_id = ip.fragmentation.map(|x| x.id);
        f.ip_flags = ip.fragmentation.map(|x| x.flags);
        f.frag_offset = ip.fragmentation.map(|x| x.offset);
        f.src_port = ip.ports.map(|p| p.0);
        f.dst_port = ip.ports.map(|p| p.1);
        f.tcp_flags = ip.tcp_flags;
    }
    f
}

/// Every packet of `path`, decoded.
fn decoded(path: &Path) -> Vec<Fields> {
    let capture = Capture::open(path).unwrap().workers(2);
    let pcapng = capture.format() == pcap_parallel::CaptureFormat::Pcapng;
    capture
        .map(|c| c.packets().map(|p| ours(&p, pcapng)).collect::<Vec<_>>())
        .unwrap()
        .concat()
}

/// Compares packet by packet; returns what differs. tshark numbers pcapng
/// blocks that are not packets as frames too: where it does, its numbers
/// stand in for ours.
pub fn compare(name: &str, mut ours: Vec<Fields>, theirs: &[Fields]) -> Option<String> {
    assert_eq!(ours.len(), theirs.len(), "{name}: packets");
    let mut differences = Vec::new();
    for (o, t) in ours.iter_mut().zip(theirs) {
        if o.number != t.number {
            assert!(t.number > o.number, "{name}: tshark numbers more frames");
            o.number = t.number;
        }
        if o != t {
            differences.push(format!("ours   {o:?}\ntshark {t:?}"));
        }
    }
    (!differences.is_empty()).then(|| {
        format!(
            "{name}: {} packets differ, the first:\n{}",
            differences.len(),
            differences[..differences.len().min(3)].join("\n")
        )
    })
}

#[test]
fn every_readable_corpus_capture_decodes_as_tshark_does() {
    let mut files = vec![(
        "sample.pcap".to_string(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.pcap"),
    )];
    for e in manifest() {
        if e.ok() && e.get("tshark_error").is_empty() {
            files.push((e.file.clone(), e.path.clone()));
        }
    }
    let mut with_ip = 0;
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, path) in &files {
        let ours = decoded(path);
        total += ours.len();
        with_ip += ours.iter().filter(|f| f.ip_version.is_some()).count();
        failures.extend(compare(name, ours, &tshark::frames(path)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(files.len() > 70, "{} captures", files.len());
    assert!(with_ip > 100_000, "{with_ip} of {total} packets with IP");
}

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

/// Our side of [`Fields`] for one packet, decoded by `decoder`.
fn ours(p: &Packet<'_>, decoder: decode::Decoder, pcapng: bool) -> Fields {
    Fields {
        number: p.number,
        time_ns: p.timestamp.map(|t| t.as_nanos()),
        cap_len: p.captured_len(),
        len: p.original_len,
        interface_id: pcapng.then_some(p.interface_id),
        ..ours_from(&decoder.headers(p.link_type, p.data))
    }
}

/// Every packet of `path`, decoded by `decoder`.
fn decoded(path: &Path, decoder: decode::Decoder) -> Vec<Fields> {
    let capture = Capture::open(path).unwrap().workers(2);
    let pcapng = capture.format() == pcap_parallel::CaptureFormat::Pcapng;
    capture
        .map(|c| {
            c.packets()
                .map(|p| ours(&p, decoder, pcapng))
                .collect::<Vec<_>>()
        })
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
        let ours = decoded(path, decode::Decoder::default());
        total += ours.len();
        with_ip += ours.iter().filter(|f| f.ip_version.is_some()).count();
        failures.extend(compare(name, ours, &tshark::frames(path)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    if whole_corpus() {
        assert!(files.len() > 70, "{} captures", files.len());
        assert!(with_ip > 100_000, "{with_ip} of {total} packets with IP");
    } else {
        assert!(
            files.len() > 10 && with_ip > 1000,
            "{with_ip} of {total} packets with IP"
        );
    }
}

/// A record to write: timestamp (ns) and frame.
type Record = (u64, Vec<u8>);

/// The records of `frames` under `encapsulation`, some cut short (as by a
/// snapshot length) before wrapping, and the unwrapped frames cut alike.
fn wrapped(
    frames: &[Record],
    encapsulation: pcap_synth::encap::Encapsulation,
) -> (Vec<Record>, Vec<Record>) {
    frames
        .iter()
        .enumerate()
        .map(|(i, (ts, f))| {
            let mut f = f.clone();
            if i % 13 == 5 {
                f.truncate(14 + 20 + 10 * (i % 5));
            }
            ((*ts, encapsulation.wrap(&f, i as u64)), (*ts, f))
        })
        .unzip()
}

/// The decoded part of [`Fields`].
fn ours_from(h: &decode::Headers<'_>) -> Fields {
    let mut f = Fields {
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

/// 802.11 (plain, behind radiotap, behind PPI), PPI with Ethernet, PPPoE,
/// PPP and GRE decode as tshark decodes them; Marvell DSA/EDSA and
/// Broadcom tags (which tshark 4.0 does not read) as tshark decodes the
/// same frames untagged. Tunnels: the outer IP header by default, the one
/// inside GRE when asked.
#[test]
fn encapsulations_decode_as_tshark_does() {
    use pcap_synth::encap::{Encapsulation, pcap_file};
    let mut synth = pcap_synth::Synth::new(11);
    let frames: Vec<Record> = (0..3000).map(|_| synth.next_frame()).collect();
    let dir = tempfile::tempdir().unwrap();
    let gre = decode::Decoder::default().tunnels(decode::Tunnels::Gre);
    let mut failures = Vec::new();
    for enc in Encapsulation::ALL {
        let (records, plain) = wrapped(&frames, enc);
        let path = dir.path().join(format!("{enc:?}.pcap"));
        std::fs::write(&path, pcap_file(enc.link_type(), &records)).unwrap();
        let ours = decoded(&path, decode::Decoder::default());
        let switch_tag = matches!(
            enc,
            Encapsulation::Dsa | Encapsulation::Edsa | Encapsulation::BroadcomTag
        );
        let theirs = match enc {
            _ if switch_tag => {
                let orig = dir.path().join(format!("{enc:?}-untagged.pcap"));
                std::fs::write(&orig, pcap_file(1, &plain)).unwrap();
                // The same packets; only the frame lengths differ.
                tshark::frames(&orig)
                    .into_iter()
                    .zip(&ours)
                    .map(|(t, o)| Fields {
                        cap_len: o.cap_len,
                        len: o.len,
                        ..t
                    })
                    .collect()
            }
            _ => tshark::frames(&path),
        };
        let with_ip = ours.iter().filter(|f| f.src.is_some()).count();
        assert!(with_ip > 2500, "{enc:?}: {with_ip} packets with IP");
        failures.extend(compare(&format!("{enc:?}"), ours, &theirs));
        if switch_tag {
            continue;
        }
        let inside = decoded(&path, gre);
        failures.extend(compare(
            &format!("{enc:?} through GRE"),
            inside,
            &tshark::frames_at(&path, tshark::IpLayer::InsideGre),
        ));
    }
    // Real GRE: PPTP's enhanced GRE carrying PPP (LCP: the tunnel leads to
    // no IP header, so the outer one stays).
    if let Some(pptp) = capture_file("the-tcpdump-group__tcpdump__pptp.pcap") {
        let inside = decoded(&pptp, gre);
        failures.extend(compare(
            "pptp.pcap through GRE",
            inside,
            &tshark::frames_at(&pptp, tshark::IpLayer::InsideGre),
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

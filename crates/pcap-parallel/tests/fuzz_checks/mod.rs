//! The properties the fuzz targets check (`fuzz/fuzz_targets/*.rs`), shared
//! with `tests/fuzz_replay.rs`, which replays them on stable over the corpus
//! and mutations of it.
#![allow(dead_code)]

use pcap_parallel::{Capture, Error, LinkType, OnError, Split, decode};

type Packets = Vec<(u64, Option<i128>, u32, Vec<u8>)>;

/// Runs a capture and returns its packets and how it ended.
fn collect(capture: Capture) -> (Packets, Option<String>) {
    let mut out = Vec::new();
    let report = capture.run(
        |c| {
            let mut v = Vec::new();
            for p in c.packets() {
                v.push((
                    p.offset,
                    p.timestamp.map(|t| t.as_nanos()),
                    p.original_len,
                    p.data.to_vec(),
                ));
            }
            // Every chunk reads back as a capture of its own, with the same packets.
            let mut file = Vec::new();
            c.write_standalone(&mut file).unwrap();
            let back: Vec<Vec<u8>> = Capture::from_bytes("chunk", file)
                .unwrap()
                .workers(1)
                .map(|c| c.packets().map(|p| p.data.to_vec()).collect::<Vec<_>>())
                .unwrap()
                .concat();
            assert_eq!(back.len(), v.len());
            assert!(back.iter().zip(&v).all(|(a, b)| *a == b.3));
            Ok(v)
        },
        |r| out.extend(r.result.expect("no closure fails")),
    );
    let end = report.input_error.map(|e| match e {
        Error::Format(f) => format!("format {} {} {:?}", f.offset, f.packet, f.fault),
        other => other.to_string(),
    });
    (out, end)
}

/// Any bytes, read whole: no panic, no hang; packets only from the input.
pub fn reader(data: &[u8]) {
    let Ok(c) = Capture::from_bytes("fuzz", data.to_vec()) else {
        return;
    };
    let (packets, _) = collect(c.workers(1));
    let total: usize = packets.iter().map(|p| p.3.len()).sum();
    assert!(
        total <= data.len().max(1) * 64,
        "no more bytes out than could be in"
    );
}

/// The first bytes choose the chunking; the rest is a capture. Parallel
/// chunking must equal the sequential walk, packet for packet, and end the
/// same way; with the skip policy too.
pub fn chunker(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let segment = 16 + data[0] as usize * 4;
    let chunks = 1 + (data[1] % 9) as usize;
    let skip = data[2] & 1 == 1;
    let capture = &data[3..];
    let open = || Capture::from_bytes("fuzz", capture.to_vec()).ok();
    let policy = if skip { OnError::Skip } else { OnError::Stop };
    let Some(seq) = open() else { return };
    let sequential = collect(seq.workers(1).split(Split::Chunks(1)).on_error(policy));
    let parallel = collect(
        open()
            .unwrap()
            .workers(3)
            .split(Split::Chunks(chunks))
            .segment_len(Some(segment))
            .on_error(policy),
    );
    assert_eq!(sequential.0.len(), parallel.0.len(), "packet count");
    assert!(sequential.0 == parallel.0, "packets differ");
    if !skip {
        assert_eq!(sequential.1, parallel.1, "the same ending");
    }
}

/// The packets and what was skipped, under the skip policy.
fn skipping(capture: Capture) -> (Packets, Vec<(u64, u64, u64)>) {
    let mut out = Vec::new();
    let report = capture.on_error(OnError::Skip).run(
        |c| {
            Ok(c.packets()
                .map(|p| {
                    (
                        p.offset,
                        p.timestamp.map(|t| t.as_nanos()),
                        p.original_len,
                        p.data.to_vec(),
                    )
                })
                .collect::<Vec<_>>())
        },
        |r| out.extend(r.result.expect("no closure fails")),
    );
    let skipped = report
        .skipped
        .iter()
        .map(|s| (s.offset, s.len, s.packet))
        .collect();
    (out, skipped)
}

/// The same bytes give the same packets under the skip policy however
/// they arrive: mapped (cut in parallel, with segments chosen by the first
/// byte) or streamed (cut as read, chunk size chosen by the second), at the
/// same offsets, with the same damage passed over.
pub fn file_vs_stream(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let segment = 16 + data[0] as usize * 8;
    let stream_chunk = 1 + data[1] as u64 * 64;
    let capture = data[2..].to_vec();
    let Ok(file) = Capture::from_bytes("fuzz", capture.clone()) else {
        return;
    };
    let mapped = skipping(
        file.workers(3)
            .split(Split::Chunks(4))
            .segment_len(Some(segment)),
    );
    let streamed = skipping(
        Capture::from_reader("fuzz", std::io::Cursor::new(capture))
            .expect("opens as a stream too")
            .workers(2)
            .split(Split::Bytes(stream_chunk)),
    );
    assert_eq!(mapped.1, streamed.1, "the same damage skipped");
    assert_eq!(mapped.0.len(), streamed.0.len(), "packet count");
    assert!(mapped.0 == streamed.0, "packets differ");
}

/// The first byte chooses a compression magic put in front of the rest.
pub fn decompress(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let magic: &[u8] = match which % 6 {
        0 => &[0x1f, 0x8b, 0x08, 0x00],
        1 => b"BZh9",
        2 => &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
        3 => &[0x28, 0xb5, 0x2f, 0xfd],
        4 => &[0x04, 0x22, 0x4d, 0x18],
        _ => &[],
    };
    let mut bytes = magic.to_vec();
    bytes.extend_from_slice(rest);
    if let Ok(c) = Capture::from_bytes("fuzz", bytes) {
        let _ = collect(c.workers(2).split(Split::Bytes(1000)));
    }
}

/// Header decoding of any bytes under every link type it knows (and a
/// few it does not): never a panic, and the shortcuts agree with the full
/// decoder.
pub fn decode(data: &[u8]) {
    let link_types = [
        0u16, 1, 9, 12, 14, 50, 51, 101, 104, 105, 108, 113, 127, 129, 166, 192, 204, 205, 219,
        228, 229, 239, 242, 258, 276, 281, 282, 284, 285, 2, 999,
    ];
    let gre = decode::Decoder::default().tunnels(decode::Tunnels::Gre);
    for lt in link_types {
        let lt = LinkType(lt);
        let headers = decode::headers(lt, data);
        let addrs = decode::addresses(lt, data);
        assert_eq!(headers.ip.map(|ip| (ip.src, ip.dst)), addrs);
        assert_eq!(decode::ip(lt, data), headers.ip);
        if let Some(ip) = headers.ip {
            assert!(ip.ports.is_none() || ip.fragmentation.is_none_or(|f| f.offset == 0));
            assert!(headers.ip_payload.len() <= data.len());
        }
        let _ = headers.icmp_quoted();
        let _ = decode::link_addresses(lt, data);
        let inner = gre.headers(lt, data);
        if inner.tunnels == 0 {
            assert_eq!(inner.ip, headers.ip);
        }
    }
}

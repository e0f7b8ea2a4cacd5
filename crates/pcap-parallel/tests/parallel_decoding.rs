//! Compressed files decoded in parallel (bzip2 blocks, xz blocks, BGZF
//! members, zstd frames) give exactly the bytes the sequential decoder
//! gives, on the corpus and on synthetic captures; damage, false bzip2
//! magics, zstd windows, lz4 legacy streams and damaged gzip are reported
//! as what they are.

mod codecs;
mod common;

use std::io::Write;

use common::*;
use pcap_parallel::{Capture, Decoding, Error, OnError, Split};

/// Every byte a run delivers (the chunks' raw bytes, in order, from the
/// first chunk's start), its packets, and the error that ended it.
#[derive(Debug, PartialEq)]
struct Run {
    start: u64,
    bytes: Vec<u8>,
    packets: Vec<PacketTuple>,
    error: Option<String>,
}

fn run(capture: Capture) -> (Run, Option<Error>) {
    let mut chunks = Vec::new();
    let report = capture.split(Split::Bytes(64 << 10)).run(
        |c| {
            Ok((
                c.byte_range().start,
                c.raw_bytes().to_vec(),
                chunk_tuples(c),
            ))
        },
        |r| chunks.push(r.result.unwrap()),
    );
    let mut out = Run {
        start: chunks.first().map_or(0, |c| c.0),
        bytes: Vec::new(),
        packets: Vec::new(),
        error: report.input_error.as_ref().map(|e| e.to_string()),
    };
    for (start, bytes, packets) in chunks {
        assert_eq!(
            start,
            out.start + out.bytes.len() as u64,
            "chunks follow each other"
        );
        out.bytes.extend(bytes);
        out.packets.extend(packets);
    }
    (out, report.input_error)
}

/// The run over `packed` decoded in parallel (bytes that can be read at
/// any offset) and sequentially (a reader, as a pipe is read).
fn both_ways(name: &str, packed: &[u8]) -> (Run, Run) {
    let options = Decoding {
        threads: Some(3),
        ..Decoding::default()
    };
    let parallel = Capture::from_bytes_with(name, packed.to_vec(), &options).unwrap();
    let sequential = Capture::from_reader(name, std::io::Cursor::new(packed.to_vec())).unwrap();
    (run(parallel.workers(2)).0, run(sequential.workers(2)).0)
}

fn synthetic(format: pcap_synth::Format, bytes: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    pcap_synth::Synth::new(seed)
        .write_bytes(&mut out, format, bytes)
        .unwrap();
    out
}

#[test]
fn parallel_decoding_gives_the_bytes_of_the_capture_on_the_corpus() {
    // The corpus' own compressed files would be compressed twice.
    let entries: Vec<Entry> = manifest()
        .into_iter()
        .filter(|e| {
            let head = std::fs::read(&e.path).unwrap();
            e.ok()
                && pcap_parallel::Compression::detect(&head[..6.min(head.len())])
                    == pcap_parallel::Compression::None
        })
        .collect();
    assert!(entries.len() > if whole_corpus() { 50 } else { 15 });
    for codec in codecs::PARALLEL {
        for e in &entries {
            let data = std::fs::read(&e.path).unwrap();
            let packed = codecs::compress_in_units(codec, &data, 48 << 10);
            let (par, seq) = both_ways(&e.file, &packed);
            let what = format!("{codec}: {}", e.file);
            assert_eq!(par.error, None, "{what}");
            assert_eq!(par.bytes, data[par.start as usize..], "{what}: the bytes");
            assert_eq!(par.packets.len() as u64, e.packets(), "{what}");
            assert_eq!(par, seq, "{what}: parallel and sequential");
        }
    }
}

#[test]
fn parallel_decoding_gives_the_bytes_of_synthetic_captures() {
    for (format, seed) in [
        (pcap_synth::Format::Pcap, 1),
        (pcap_synth::Format::Pcapng, 2),
    ] {
        let data = synthetic(format, 6 << 20, seed);
        let mut multi_stream = codecs::compress("bzip2", &data[..data.len() / 3]);
        multi_stream.extend(codecs::compress("bzip2", &data[data.len() / 3..]));
        let mut cases: Vec<(String, Vec<u8>)> = codecs::PARALLEL
            .iter()
            .map(|c| (c.to_string(), codecs::compress_in_units(c, &data, 1 << 20)))
            .collect();
        cases.push(("bzip2, two streams".into(), multi_stream));
        for (what, packed) in cases {
            let what = format!("{what}, {format:?}");
            let (par, seq) = both_ways(&what, &packed);
            assert_eq!(par.error, None, "{what}");
            assert_eq!(par.bytes, data[par.start as usize..], "{what}: the bytes");
            assert_eq!(par, seq, "{what}");
        }
    }
}

/// Runs a capture that may fail to open (its first bytes damaged).
fn open_and_run(capture: pcap_parallel::Result<Capture>) -> (Run, Option<Error>) {
    match capture {
        Ok(c) => run(c.workers(2)),
        Err(e) => (
            Run {
                start: 0,
                bytes: Vec::new(),
                packets: Vec::new(),
                error: Some(e.to_string()),
            },
            Some(e),
        ),
    }
}

/// Runs `packed` both ways and checks they agree: the same packets, and a
/// decompression error of the same codec at or after the bytes delivered.
/// Where exactly depends on how much of a damaged unit (bytes its check
/// has not vouched for) a decoder hands out before it fails, which depends
/// on the size of the reads it is asked for: one of the two runs may
/// deliver a few packets more from the damaged unit than the other.
fn damaged_agree(codec: &str, what: &str, packed: &[u8], all: &[PacketTuple]) -> Option<Error> {
    let options = Decoding {
        threads: Some(3),
        ..Decoding::default()
    };
    let (par, par_err) = open_and_run(Capture::from_bytes_with("d", packed.to_vec(), &options));
    let seq = Capture::from_reader("d", std::io::Cursor::new(packed.to_vec()));
    let (seq, seq_err) = open_and_run(seq);
    let shorter = par.packets.len().min(seq.packets.len());
    assert!(
        par.packets[..shorter] == seq.packets[..shorter],
        "{what}: the same packets ({} and {}; {:?} / {:?})",
        par.packets.len(),
        seq.packets.len(),
        par.error,
        seq.error
    );
    assert!(par.packets.len() <= all.len(), "{what}");
    let (par_err, seq_err) = match (par_err, seq_err) {
        (Some(p), Some(s)) => (p, s),
        // Damage where nothing reads it (inside a skippable frame, say).
        (None, None) => {
            assert_eq!(par.bytes, seq.bytes, "{what}: the same bytes");
            return None;
        }
        (p, s) => panic!("{what}: both fail or neither ({p:?}, {s:?})"),
    };
    if let (Error::Format(p), Error::Format(s)) = (&par_err, &seq_err) {
        // Damage no check catches (zstd frames without checksums): the
        // capture inside is broken, at the same place both ways.
        assert_eq!(p, s, "{what}");
        return Some(par_err);
    }
    for (run, err) in [(&par, &par_err), (&seq, &seq_err)] {
        let Error::Decompress {
            compression,
            offset,
            compressed_offset,
            ..
        } = err
        else {
            panic!("{what}: {err}")
        };
        let name = if codec == "bgzf" { "gzip" } else { codec };
        assert!(name.starts_with(compression.name()), "{what}: {err}");
        assert!(
            *offset >= run.start + run.bytes.len() as u64,
            "{what}: {err}"
        );
        let c = compressed_offset.expect("a compressed offset");
        assert!(c <= packed.len() as u64, "{what}: {err}");
    }
    Some(par_err)
}

#[test]
fn a_damaged_unit_is_reported_as_the_sequential_decoder_reports_it() {
    let data = synthetic(pcap_synth::Format::Pcap, 3 << 20, 3);
    let all = run(Capture::from_bytes("p", data.clone()).unwrap())
        .0
        .packets;
    for codec in codecs::PARALLEL {
        let packed = codecs::compress_in_units(codec, &data, 256 << 10);
        for frac in [5, 40, 75, 97] {
            let mut broken = packed.clone();
            let at = packed.len() * frac / 100;
            for b in &mut broken[at..at + 4] {
                *b ^= 0xa5;
            }
            damaged_agree(
                codec,
                &format!("{codec}, damaged at {frac}%"),
                &broken,
                &all,
            );
            let cut = &packed[..at];
            damaged_agree(codec, &format!("{codec}, cut at {frac}%"), cut, &all);
        }
    }
}

/// Writes the 48 bits of `magic` at bit offset `bit` of `bytes`.
fn put_bits(bytes: &mut [u8], bit: usize, magic: u64) {
    for k in 0..48 {
        let (byte, off) = ((bit + k) / 8, 7 - (bit + k) % 8);
        let v = ((magic >> (47 - k)) & 1) as u8;
        bytes[byte] = bytes[byte] & !(1 << off) | v << off;
    }
}

#[test]
fn a_false_bzip2_block_magic_never_produces_other_bytes() {
    let data = synthetic(pcap_synth::Format::Pcapng, 2 << 20, 4);
    let all = run(Capture::from_bytes("p", data.clone()).unwrap())
        .0
        .packets;
    let packed = codecs::compress("bzip2", &data);
    // The block magic written at odd bit offsets inside the compressed data
    // of several blocks: the scan takes each for a block start.
    for (i, frac) in [12usize, 50, 88].into_iter().enumerate() {
        let mut fake = packed.clone();
        put_bits(
            &mut fake,
            (packed.len() * frac / 100) * 8 + 3 + i,
            0x3141_5926_5359,
        );
        let err = damaged_agree("bzip2", &format!("false magic at {frac}%"), &fake, &all);
        let Some(Error::Decompress { compression, .. }) = err else {
            unreachable!()
        };
        assert_eq!(compression, pcap_parallel::Compression::Bzip2);
    }
    // An end-of-stream magic inside a block: the same.
    let mut fake = packed.clone();
    put_bits(&mut fake, (packed.len() / 2) * 8 + 5, 0x1772_4538_5090);
    assert!(damaged_agree("bzip2", "false end-of-stream magic", &fake, &all).is_some());
}

#[test]
fn zstd_windows_up_to_the_limit_are_read_and_larger_ones_refused_with_the_limit() {
    let data = std::fs::read(
        capture_file("seladb__PcapPlusPlus__http-packets.pcap").expect("shipped in samples/real"),
    )
    .unwrap();
    let want = Capture::from_bytes("p", data.clone())
        .unwrap()
        .count()
        .unwrap();
    // A frame that claims a 2 GiB window (as `zstd --long=31` writes from a
    // pipe): compressed with a small window, the descriptor raised.
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.set_parameter(zstd::stream::raw::CParameter::WindowLog(20))
        .unwrap();
    e.write_all(&data).unwrap();
    let mut packed = e.finish().unwrap();
    assert_eq!(packed[4] & 0x20, 0, "a window descriptor");
    packed[5] = (31 - 10) << 3;
    for streamed in [false, true] {
        let open = |options: &Decoding| {
            if streamed {
                Capture::from_reader_with("w.zst", std::io::Cursor::new(packed.clone()), options)
            } else {
                Capture::from_bytes_with("w.zst", packed.clone(), options)
            }
        };
        let err = open(&Decoding::default()).unwrap_err();
        let Error::ZstdWindow { window, offset, .. } = &err else {
            panic!("streamed {streamed}: {err}")
        };
        assert_eq!(
            (window.window, window.limit, *offset),
            (2 << 30, 1 << 30, 0)
        );
        assert!(
            err.to_string().contains("raise Decoding::max_zstd_window"),
            "{err}"
        );
        let wide = Decoding {
            max_zstd_window: 2 << 30,
            ..Decoding::default()
        };
        assert_eq!(
            open(&wide).unwrap().count().unwrap(),
            want,
            "streamed {streamed}"
        );
    }
}

#[test]
fn lz4_legacy_streams_are_read() {
    for name in [
        "seladb__PcapPlusPlus__http-packets.pcap",
        "hadrielk__pcapng-test-generator__output_le--difficult--test202.pcapng",
    ] {
        let data = std::fs::read(capture_file(name).expect("shipped in samples/real")).unwrap();
        let mut packed = vec![0x02, 0x21, 0x4c, 0x18];
        for block in data.chunks(8 << 20) {
            let c = lz4_flex::block::compress(block);
            packed.extend((c.len() as u32).to_le_bytes());
            packed.extend(c);
        }
        let c = Capture::from_reader(name, std::io::Cursor::new(packed)).unwrap();
        assert_eq!(c.compression(), pcap_parallel::Compression::Lz4);
        let (got, err) = run(c);
        assert!(err.is_none(), "{name}: {err:?}");
        assert_eq!(got.bytes, data[got.start as usize..], "{name}");
    }
}

#[test]
fn gzip_damaged_in_the_middle_is_reported_as_gzip_damage_under_both_policies() {
    let data = synthetic(pcap_synth::Format::Pcap, 1 << 20, 5);
    let packed = codecs::compress("gzip", &data);
    // A flipped byte in the middle that inflates without complaint: only
    // the CRC at the end of the member tells (the capture inside turns to
    // nonsense long before).
    let broken = (packed.len() * 2 / 5..packed.len() * 3 / 5)
        .map(|at| {
            let mut b = packed.clone();
            b[at] ^= 0x10;
            b
        })
        .find(|b| {
            let mut out = Vec::new();
            let r = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b[..]), &mut out);
            r.is_err() && out.len() == data.len()
        })
        .expect("a flip only the CRC catches");
    for policy in [OnError::Stop, OnError::Skip] {
        for streamed in [false, true] {
            let c = if streamed {
                Capture::from_reader("d.gz", std::io::Cursor::new(broken.clone()))
            } else {
                Capture::from_bytes("d.gz", broken.clone())
            };
            let (_, err) = run(c.unwrap().on_error(policy));
            let what = format!("{policy:?}, streamed {streamed}");
            let Some(Error::Decompress {
                compression,
                offset,
                compressed_offset,
                ..
            }) = err
            else {
                panic!("{what}: {err:?}")
            };
            assert_eq!(compression, pcap_parallel::Compression::Gzip, "{what}");
            assert_eq!(
                offset,
                data.len() as u64,
                "{what}: found at the member's end"
            );
            assert!(compressed_offset.is_some(), "{what}");
        }
    }
}

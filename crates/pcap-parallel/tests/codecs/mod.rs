//! Compressing test data in every format the crate reads.
#![allow(dead_code)]

use std::io::Write;

/// `data` compressed by `codec` as one gzip member, bzip2 stream, xz
/// stream (in 64 KiB blocks), zstd frame (`zstd-skippable`: behind a
/// skippable frame, as pzstd writes) or lz4 frame.
pub fn compress(codec: &str, data: &[u8]) -> Vec<u8> {
    match codec {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bzip2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut opts = lzma_rust2::XzOptions::with_preset(1);
            // Blocks are at least as large as the dictionary.
            opts.lzma_options.dict_size = 1 << 16;
            opts.set_block_size(std::num::NonZeroU64::new(1 << 16));
            let mut e = lzma_rust2::XzWriter::new(Vec::new(), opts).unwrap();
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::encode_all(data, 1).unwrap(),
        "zstd-skippable" => {
            let mut out = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
            out.extend(zstd::encode_all(data, 1).unwrap());
            out
        }
        "lz4" => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        _ => unreachable!("unknown codec {codec}"),
    }
}

/// `data` in two independently compressed parts, concatenated (multi-member
/// gzip, multi-stream bzip2 and xz, multi-frame zstd and lz4).
pub fn compress_in_two(codec: &str, data: &[u8]) -> Vec<u8> {
    let (a, b) = data.split_at(data.len() / 3);
    let mut out = compress(codec, a);
    out.extend(compress(codec, b));
    out
}

/// Codecs whose files are decoded in parallel when they hold several
/// units (see [`compress_in_units`]).
pub const PARALLEL: [&str; 4] = ["bzip2", "xz", "bgzf", "zstd-frames"];

/// `data` compressed in independent units of about `unit` bytes: bzip2
/// blocks (level 1: 100 kB blocks, whatever `unit`), xz blocks (as `xz -T`
/// writes them), BGZF members (as bgzip writes them, ending with its empty
/// end-of-file member), zstd frames behind skippable frames (as pzstd
/// writes them).
pub fn compress_in_units(codec: &str, data: &[u8], unit: usize) -> Vec<u8> {
    match codec {
        "bzip2" => compress("bzip2", data),
        "xz" => {
            let mut opts = lzma_rust2::XzOptions::with_preset(1);
            opts.lzma_options.dict_size = (unit as u32).max(4096);
            opts.set_block_size(std::num::NonZeroU64::new(unit as u64));
            let mut e = lzma_rust2::XzWriter::new(Vec::new(), opts).unwrap();
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "bgzf" => {
            let mut out = Vec::new();
            for piece in data.chunks(unit.min(65_280)) {
                out.extend(bgzf_member(piece));
            }
            out.extend(bgzf_member(&[]));
            out
        }
        "zstd-frames" => {
            let mut out = Vec::new();
            for piece in data.chunks(unit) {
                let frame = zstd::encode_all(piece, 1).unwrap();
                // pzstd's skippable frame: the size of the frame after it.
                out.extend([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0]);
                out.extend((frame.len() as u32).to_le_bytes());
                out.extend(frame);
            }
            out
        }
        _ => unreachable!("unknown codec {codec}"),
    }
}

/// One BGZF member: a gzip member whose `BC` extra field gives its length.
pub fn bgzf_member(data: &[u8]) -> Vec<u8> {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    deflate.write_all(data).unwrap();
    let deflate = deflate.finish().unwrap();
    let total = 18 + deflate.len() + 8;
    let mut out = vec![
        0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
    ];
    out.extend(((total - 1) as u16).to_le_bytes());
    out.extend(deflate);
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend(crc.sum().to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

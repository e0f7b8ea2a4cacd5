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

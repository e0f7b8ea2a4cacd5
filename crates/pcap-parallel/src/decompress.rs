//! Decompressors: gzip (every member), bzip2 (every stream), xz (every
//! stream), zstd (every frame, skippable frames included) and lz4 (every
//! frame), each decoded sequentially on the stream's own thread while the
//! workers process earlier chunks.
//!
//! Parallel decoders were measured and not adopted (see BENCHMARKS.md):
//! rapidgzip's parallel DEFLATE is no faster than zlib-rs on two cores for
//! single-member gzip, the usual case; decoding zstd frames in parallel
//! gains nothing when the whole pipeline already keeps both cores busy; and
//! lzma-rust2's multi-threaded xz reader holds whole blocks in memory (a
//! single-block file is the whole decompressed file), which breaks the
//! bounded-memory promise unless the block sizes are read from the index
//! first.

use std::io::{self, BufReader, Read};

use crate::format::Compression;

/// Wraps `raw` in the sequential decoder for `compression`.
pub(crate) fn decoder(
    raw: Box<dyn Read + Send>,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Compression::None => raw,
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            raw,
        ))),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(raw)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(
            BufReader::with_capacity(1 << 16, raw),
            true,
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(
            BufReader::with_capacity(1 << 16, raw),
        )),
    })
}

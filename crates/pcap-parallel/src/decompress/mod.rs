//! Decompressors: gzip (every member), bzip2 (every stream), xz (every
//! stream), zstd (every frame, skippable frames included) and lz4 (every
//! frame, legacy `lz4 -l` streams too).
//!
//! A compressed file that can be read at any offset (a regular file, or
//! bytes in memory) is decoded in parallel where its format lets
//! independent units be found without decoding what comes before them
//! ([`parallel`] runs them on a pool and hands the bytes on in order):
//!
//! | format | units | how they are found |
//! |---|---|---|
//! | bzip2 | blocks | a scan for the 48-bit block magic at every bit offset ([`bzip2_blocks`]); each block's CRC and each stream's CRC checked, a false magic caught by its block's failed decode |
//! | xz | blocks | the index at the end of each stream ([`xz_index`]), as `xz -T` and pixz write them |
//! | gzip | BGZF members | the member length in each header's `BC` field ([`bgzf`]), as bgzip writes it |
//! | zstd | frames | each frame's header and block lengths ([`zstd_frames`]), as pzstd and concatenations write them |
//!
//! Everything else is decoded sequentially on the stream's own thread:
//! pipes and standard input (read once, in order), single-block xz, plain
//! gzip (one member, or members whose lengths are not written down:
//! finding a member start means decoding up to it, and pigz's
//! `--independent` output is one member), single-frame zstd and lz4 (whose
//! decoders outrun the rest of the pipeline anyway). Parallel DEFLATE for
//! single-member gzip (rapidgzip's method) was measured and gained nothing
//! on two cores (see BENCHMARKS.md).
//!
//! [`Decoding`] holds the options: decode threads, the memory in flight,
//! and the largest zstd window accepted.

pub(crate) mod bgzf;
pub(crate) mod bzip2_blocks;
pub(crate) mod lz4;
pub(crate) mod parallel;
pub(crate) mod peek;
pub(crate) mod xz_index;
pub(crate) mod zstd_frames;

use std::io::{self, BufReader, Read};
use std::sync::Arc;

use crate::format::Compression;
use parallel::{Planner, Source};

pub use zstd_frames::WindowTooLarge;

/// How compressed input is decoded.
///
/// ```
/// use pcap_parallel::{Capture, Decoding};
///
/// // Accept zstd frames written with `zstd --long=31` from a pipe
/// // (2 GiB windows), and decode on two threads.
/// let options = Decoding { max_zstd_window: 2 << 30, threads: Some(2), ..Decoding::default() };
/// # let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap")).unwrap();
/// let n = Capture::from_bytes_with("sample.pcap", bytes, &options)?.count()?;
/// # assert_eq!(n, 1000);
/// # Ok::<(), pcap_parallel::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoding {
    /// Threads decoding a file in parallel (see the module docs of
    /// `pcap_parallel::Capture`); `None`: the capture's worker count.
    pub threads: Option<usize>,
    /// Decoded bytes of units other than the one being handed on that may
    /// be held at once, in parallel decoding (default 64 MiB): the memory
    /// bound, beside the decoders' own state.
    pub max_in_flight: usize,
    /// The largest window a zstd frame may ask for (default 1 GiB). zstd
    /// keeps up to a window of decoded data in memory; `zstd --long=31`
    /// writes 2 GiB windows when it compresses a pipe or a file of more
    /// than 1 GiB (a smaller file gets a window no larger than itself).
    /// libzstd decodes windows up to 2 GiB.
    pub max_zstd_window: u64,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            threads: None,
            max_in_flight: 64 << 20,
            max_zstd_window: 1 << 30,
        }
    }
}

/// Wraps `raw`, which starts at compressed offset `start`, in the
/// sequential decoder for `compression`.
pub(crate) fn decoder(
    raw: Box<dyn Read + Send>,
    compression: Compression,
    options: &Decoding,
    start: u64,
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
        Compression::Zstd => Box::new(zstd_frames::ZstdFrames::new(
            raw,
            options.max_zstd_window,
            start,
        )?),
        Compression::Lz4 => lz4::decoder(raw)?,
    })
}

/// The parallel plan for `src`, if its format has one.
pub(crate) fn planner(
    src: Arc<dyn Source>,
    compression: Compression,
    options: &Decoding,
) -> Option<Box<dyn Planner>> {
    match compression {
        Compression::Bzip2 => Some(Box::new(bzip2_blocks::BlockPlanner::new(src))),
        Compression::Xz => xz_index::plan(src).map(|p| Box::new(p) as Box<dyn Planner>),
        Compression::Gzip => bgzf::plan(src).map(|p| Box::new(p) as Box<dyn Planner>),
        Compression::Zstd => {
            zstd_frames::plan(src, options.max_zstd_window).map(|p| Box::new(p) as Box<dyn Planner>)
        }
        Compression::None | Compression::Lz4 => None,
    }
}

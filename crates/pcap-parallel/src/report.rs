//! What a run reports besides its results: each chunk's [`ChunkResult`],
//! the [`Report`] of the whole run, and the [`Progress`] counters a long
//! run updates as it goes.

use std::ops::Range;
use std::sync::atomic::AtomicU64;

use crate::error::{ChunkFailure, Error, Result, Skipped};

/// An error type user closures may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Counters a long run updates as it goes, for progress displays.
///
/// Share one with [`Capture::progress`](crate::Capture::progress) and read it from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Size of the input in bytes (compressed size for compressed files);
    /// 0 when unknown (standard input).
    pub bytes_total: AtomicU64,
    /// Bytes of input done (compressed bytes read, for compressed files).
    pub bytes_done: AtomicU64,
    /// Packets in the chunks finished so far.
    pub packets_done: AtomicU64,
    /// Chunks finished so far.
    pub chunks_done: AtomicU64,
}

/// One chunk's result, as [`Capture::run`](crate::Capture::run) delivers it, in file order.
#[derive(Debug)]
pub struct ChunkResult<R> {
    /// The chunk's index in file order.
    pub index: usize,
    /// The chunk's bytes in the (decompressed) input.
    pub byte_range: Range<u64>,
    /// Number of the chunk's first packet (1-based).
    pub first_packet_number: u64,
    /// Packets in the chunk.
    pub packet_count: u64,
    /// What the closure returned, or how it failed.
    pub result: Result<R, ChunkFailure>,
}

/// What a run did, besides the results.
#[derive(Debug)]
#[must_use = "a run's report says whether the input was read to the end"]
pub struct Report {
    /// Chunks delivered.
    pub chunks: usize,
    /// Packets read: every packet of the delivered chunks, whether or not
    /// the filter ([`Capture::filter`](crate::Capture::filter)) kept it.
    pub packets_read: u64,
    /// Bytes of the (decompressed) input in the delivered chunks.
    pub bytes: u64,
    /// Chunks whose closure failed.
    pub failed_chunks: usize,
    /// Segments whose guessed first boundary was wrong and were walked again
    /// (mapped input; see the `chunker` module).
    pub redone_segments: usize,
    /// Segments searched for boundaries in parallel (mapped input).
    pub segments: usize,
    /// The error that ended reading early (a broken or truncated capture, a
    /// corrupt compressed stream, an I/O error, or cancellation), after
    /// every complete packet before it was delivered.
    pub input_error: Option<Error>,
    /// Damaged stretches passed over, under [`OnError::Skip`](crate::OnError::Skip).
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// A report of nothing done, ending with `error` (for code that wraps
    /// a run and fails before starting it).
    pub fn empty(error: Option<Error>) -> Report {
        Report {
            chunks: 0,
            packets_read: 0,
            bytes: 0,
            failed_chunks: 0,
            redone_segments: 0,
            segments: 0,
            input_error: error,
            skipped: Vec::new(),
        }
    }

    /// Adds the report of the next input of several read as one.
    pub(crate) fn absorb(&mut self, next: Report) {
        self.chunks += next.chunks;
        self.packets_read += next.packets_read;
        self.bytes += next.bytes;
        self.failed_chunks += next.failed_chunks;
        self.redone_segments += next.redone_segments;
        self.segments += next.segments;
        self.input_error = next.input_error;
        self.skipped.extend(next.skipped);
    }
}

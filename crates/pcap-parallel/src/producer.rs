//! Producing chunks in file order: one producer per kind of input, chosen
//! in one place ([`Producer::new`]), as ripgrep's searcher picks a strategy
//! per input.
//!
//! * [`Mapped`]: input held whole (a memory-mapped file, bytes in memory).
//!   The chunks are planned up front by the parallel boundary search of
//!   [`crate::chunker`], then handed out one by one.
//! * [`Streamed`]: compressed input, pipes and standard input, read once in
//!   order; [`crate::streaming::Cutter`] cuts chunks as the bytes arrive.
//! * A stream split into a number of chunks ([`Split::Chunks`]) needs its
//!   length first: it is *spooled* into an unnamed temporary file, which is
//!   then mapped and planned like a file.
//!
//! Whatever the producer, the chunks are the same: same boundaries, same
//! packets, same errors (the test suites compare them).

use std::io::Read;
use std::sync::Arc;

use crate::capture::OnError;
use crate::chunk::{Chunk, ChunkParts, Gap};
use crate::chunker::{self, ChunkSpec, Plan, PlanRequest};
use crate::error::{Error, FormatError, Result, Skipped};
use crate::format::{CaptureFormat, Compression};
use crate::source::{self, Bytes, Input, StreamReader};
use crate::split::{STREAM_CHUNK_BYTES, Split};
use crate::streaming::{Cutter, Fill};
use crate::walk::{Limits, Walker};

/// What a producer is given besides the input: what is known of it, and
/// the options that shape its chunks.
pub(crate) struct Job {
    pub name: String,
    pub compression: Compression,
    pub format: CaptureFormat,
    /// The first decompressed bytes, read from a stream to detect its format.
    pub head: Vec<u8>,
    pub split: Split,
    pub workers: usize,
    /// The limit on records the producer applies itself (see
    /// [`crate::admission`]).
    pub max_packets: Option<u64>,
    pub limits: Limits,
    pub segment_len: Option<usize>,
    pub on_error: OnError,
}

/// What a producer reports when it is done.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    /// Segments whose guessed start failed verification (mapped input).
    pub redone: usize,
    /// Segments searched in parallel (mapped input).
    pub segments: usize,
    /// What ended the input early.
    pub error: Option<Error>,
    /// Damage passed over.
    pub skipped: Vec<Skipped>,
}

impl Produced {
    fn failed(error: Error) -> Produced {
        Produced {
            error: Some(error),
            ..Produced::default()
        }
    }
}

/// A source of chunks in file order.
pub(crate) enum Producer {
    Mapped(Mapped),
    Streamed(Streamed),
    /// Nothing to produce: the input failed before its first chunk.
    Failed(Produced),
}

impl Producer {
    /// The producer for this kind of input.
    pub fn new(input: Input, job: Job) -> Producer {
        let result = match input {
            Input::Whole(bytes, _) => Mapped::plan(job, bytes, None),
            Input::Stream(stream) if matches!(job.split, Split::Chunks(_)) => {
                Mapped::spooled(job, stream)
            }
            Input::Stream(stream) => Streamed::new(job, stream).map(Producer::Streamed),
        };
        result.unwrap_or_else(|e| Producer::Failed(Produced::failed(e)))
    }

    /// The next chunk, or `None` at the end (or after a fault: see
    /// [`Producer::finish`]).
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        match self {
            Producer::Mapped(m) => m.next_chunk(),
            Producer::Streamed(s) => s.next_chunk(),
            Producer::Failed(_) => None,
        }
    }

    /// What the production found, once the chunks wanted have been taken.
    pub fn finish(self) -> Produced {
        match self {
            Producer::Mapped(m) => m.finish(),
            Producer::Streamed(s) => s.finish(),
            Producer::Failed(p) => p,
        }
    }
}

/// Chunks of an input held whole, planned in parallel up front.
pub(crate) struct Mapped {
    name: String,
    bytes: Bytes,
    chunks: std::iter::Enumerate<std::vec::IntoIter<ChunkSpec>>,
    /// The plan, without its chunks.
    plan: Plan,
    /// The error that ended a spooled stream early, if any.
    spool_error: Option<Error>,
    /// The plan's chunks hold `max_packets` packets.
    limit_reached: bool,
}

impl Mapped {
    /// Plans the chunks of `bytes`.
    fn plan(job: Job, bytes: Bytes, spool_error: Option<Error>) -> Result<Producer> {
        let data = (*bytes).as_ref();
        let (walker, data_start) = match Walker::at_start(job.format, data, job.limits, &job.name) {
            Ok(start) => start,
            // A spooled stream cut short before its header: that failure.
            Err(e) => return Err(spool_error.unwrap_or(e)),
        };
        let request = PlanRequest {
            split: job.split,
            workers: job.workers,
            segment_len: job.segment_len,
            max_packets: job.max_packets,
            on_error: job.on_error,
        };
        let mut plan = chunker::plan(data, walker, data_start, &request);
        if spool_error.is_some() {
            // The record cut short where decompression failed is that
            // failure, reported as such (as a stream does), not damage.
            plan.skipped
                .retain(|k| !(k.fault.is_truncation() && k.offset + k.len == data.len() as u64));
        }
        let limit_reached = job
            .max_packets
            .is_some_and(|m| plan.chunks.iter().map(|c| c.packets).sum::<u64>() >= m);
        let chunks = std::mem::take(&mut plan.chunks).into_iter().enumerate();
        Ok(Producer::Mapped(Mapped {
            name: job.name,
            bytes,
            chunks,
            plan,
            spool_error,
            limit_reached,
        }))
    }

    /// Spools a stream into a temporary file, then plans it.
    fn spooled(mut job: Job, stream: StreamReader) -> Result<Producer> {
        let head = std::mem::take(&mut job.head);
        let (bytes, spool_error) = spool(head, stream, &job.name)?;
        Mapped::plan(job, bytes, spool_error)
    }

    fn next_chunk(&mut self) -> Option<Chunk> {
        let (index, spec) = self.chunks.next()?;
        Some(Chunk::new(ChunkParts {
            index,
            data: self.bytes.clone(),
            range: spec.start..spec.end,
            offset: spec.start as u64,
            packets_before: spec.packets_before,
            packet_count: spec.packets,
            context: spec.context,
            described: spec.described,
            gaps: spec
                .holes
                .iter()
                .map(|h| Gap {
                    at: h.start - spec.start,
                    skip: h.len(),
                    resume: h.end as u64,
                })
                .collect(),
        }))
    }

    fn finish(self) -> Produced {
        let Mapped {
            name,
            plan,
            spool_error,
            limit_reached,
            ..
        } = self;
        let error = match (plan.fault, spool_error) {
            // The spooled data ends where decompression failed, and what
            // came before a decompression failure cannot be vouched for:
            // report that.
            (Some((_, _, f)), Some(e)) if f.is_truncation() || is_decompression(&e) => Some(e),
            (None, Some(e)) if !limit_reached => Some(e),
            (Some((offset, packet, fault)), _) => Some(Error::Format(FormatError {
                name,
                offset: offset as u64,
                packet,
                fault,
            })),
            _ => None,
        };
        Produced {
            redone: plan.redone,
            segments: plan.segments,
            error,
            skipped: plan.skipped,
        }
    }
}

/// Chunks of a stream, cut as its bytes arrive.
pub(crate) struct Streamed {
    cutter: Cutter,
    compression: Compression,
    error: Option<Error>,
}

impl Streamed {
    fn new(mut job: Job, stream: StreamReader) -> Result<Streamed> {
        let fill = match job.split {
            Split::Packets(n) => Fill::Packets(n),
            Split::Bytes(b) => Fill::Bytes(b as usize),
            _ => Fill::Bytes(STREAM_CHUNK_BYTES as usize),
        };
        let head = std::mem::take(&mut job.head);
        let reader = Box::new(std::io::Cursor::new(head).chain(stream));
        let cutter = Cutter::new(
            reader,
            &job.name,
            job.format,
            job.limits,
            fill,
            job.max_packets,
            job.on_error,
        )?;
        Ok(Streamed {
            cutter,
            compression: job.compression,
            error: None,
        })
    }

    fn next_chunk(&mut self) -> Option<Chunk> {
        if self.error.is_some() {
            return None;
        }
        match self.cutter.next_chunk() {
            Ok(chunk) => chunk,
            Err(e) => {
                let cutter = &mut self.cutter;
                self.error = Some(blame_compressed_data(e, self.compression, || {
                    cutter.drain()
                }));
                None
            }
        }
    }

    fn finish(mut self) -> Produced {
        Produced {
            skipped: self.cutter.skipped(),
            error: self.error,
            ..Produced::default()
        }
    }
}

/// True for errors of the compressed data (not of the capture in it).
fn is_decompression(e: &Error) -> bool {
    matches!(e, Error::Decompress { .. } | Error::ZstdWindow { .. })
}

/// A fault found in the capture inside a compressed stream may be the
/// visible effect of damaged compressed data whose check (gzip's CRC at the
/// end of a member, say) comes later: the stream is decoded to its end
/// (`drain`), and a decompression error found there is reported instead.
fn blame_compressed_data(
    fault: Error,
    compression: Compression,
    drain: impl FnOnce() -> Option<Error>,
) -> Error {
    if compression == Compression::None || !matches!(fault, Error::Format(_)) {
        return fault;
    }
    match drain() {
        Some(e) if is_decompression(&e) => e,
        _ => fault,
    }
}

/// Decompresses a stream into an unnamed temporary file and maps it, for
/// splits that need the whole length up front. Returns the error that ended
/// the stream early, if any, beside the bytes that came before it.
fn spool(head: Vec<u8>, mut stream: StreamReader, name: &str) -> Result<(Bytes, Option<Error>)> {
    let mut file = tempfile::tempfile().map_err(|e| Error::io(name, e))?;
    let mut error = None;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut file);
        std::io::Write::write_all(&mut w, &head).map_err(|e| Error::io(name, e))?;
        if let Err(e) = std::io::copy(&mut stream, &mut w) {
            error = Some(source::StreamFailure::into_error(e, name));
        }
        std::io::Write::flush(&mut w).map_err(|e| Error::io(name, e))?;
    }
    let len = file.metadata().map_err(|e| Error::io(name, e))?.len();
    if len == 0 {
        return Ok((Arc::new(Vec::new()), error));
    }
    // SAFETY: the file is ours alone (unnamed, never shared) and read-only from here on.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(name, e))?;
    Ok((Arc::new(map), error))
}

//! The parallel engine: [`Capture`], its options, and the ways to run code
//! over its chunks.
//!
//! One thread produces chunks in file order (for a mapped file, after the
//! parallel boundary search of `chunker`; for a stream, as the
//! stream is read). Worker threads take chunks from a bounded channel and
//! run user code on them, catching panics. Results are put back in file
//! order before they reach the caller. At most a fixed number of chunks are
//! in flight (produced but not yet delivered), so memory stays bounded
//! however slow one chunk is.

use std::any::Any;
use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, bounded, unbounded};

use crate::admission::{Admission, Verdict};
use crate::chunk::Chunk;
use crate::chunker::{self, PlanRequest};
use crate::decompress::Decoding;
use crate::error::{ChunkFailure, ChunkFailureCause, Error, FormatError, Result, Skipped};
use crate::filter::Filter;
use crate::format::{CaptureFormat, Compression};
use crate::packet::Packet;
use crate::pcap::{self, PcapHeader};
use crate::source::{self, Bytes, Input, StreamReader};
use crate::split::{STREAM_CHUNK_BYTES, Split};
use crate::streaming::{Cutter, Fill};
use crate::walk::{Interfaces, Limits, Walker};

/// What to do when the capture turns out to be damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Deliver every complete packet before the fault, then end the run
    /// with the error ([`Report::input_error`]).
    #[default]
    Stop,
    /// Pass over the damaged bytes to the next record boundary (found by
    /// the same search the parallel chunker uses), keep going, and list
    /// what was passed over: in [`Report::skipped`] for [`Capture::run`],
    /// and for every way to run, to the [`Capture::on_skipped`] callback
    /// (without one, the shorthands such as [`Capture::map`] pass over the
    /// damage silently). A record header that is
    /// damaged but still plausible cannot be told from a real one, in pcap:
    /// the bytes it claims are read as its packet until the next
    /// implausible header.
    Skip,
}

/// An error type user closures may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Counters a long run updates as it goes, for progress displays.
///
/// Share one with [`Capture::progress`] and read it from another thread.
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

/// One chunk's result, as [`Capture::run`] delivers it, in file order.
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
    /// the filter ([`Capture::filter`]) kept it.
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
    /// Damaged stretches passed over, under [`OnError::Skip`].
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
}

/// A packet capture opened for parallel processing, with its options.
///
/// Open one with [`Capture::open`], set options with the builder methods,
/// then run code over its chunks with [`Capture::map`], [`Capture::try_map`],
/// [`Capture::map_reduce`], [`Capture::fold_packets`], [`Capture::for_each`]
/// or, for full control over partial results, [`Capture::run`].
///
/// ```no_run
/// use pcap_parallel::{Capture, Split};
/// use std::collections::HashMap;
///
/// // Count packets per link type, 4 workers, 50 000 packets per chunk.
/// let counts = Capture::open("big.pcapng")?
///     .workers(4)
///     .split(Split::Packets(50_000))
///     .fold_packets(
///         HashMap::new,
///         |mut m, p| { *m.entry(p.link_type).or_insert(0u64) += 1; m },
///         |mut a, b| { for (k, v) in b { *a.entry(k).or_insert(0) += v; } a },
///     )?;
/// # Ok::<(), pcap_parallel::Error>(())
/// ```
pub struct Capture {
    name: String,
    input: Input,
    compression: Compression,
    format: CaptureFormat,
    /// The first decompressed bytes, read from a stream to detect its format.
    head: Vec<u8>,
    split: Split,
    workers: usize,
    max_packets: Option<u64>,
    limits: Limits,
    segment_len: Option<usize>,
    on_error: OnError,
    filter: Option<Arc<Filter>>,
    fail_fast: bool,
    cancel: Option<Arc<AtomicBool>>,
    progress: Option<Arc<Progress>>,
    on_skipped: Option<SkipCallback>,
}

/// See [`Capture::on_skipped`].
type SkipCallback = Box<dyn FnMut(&Skipped) + Send>;

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("split", &self.split)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// The most workers a capture runs with: more are clamped to this many.
/// Each worker is a thread with chunks in flight, so an absurd count
/// (`-j 4294967296`) must not become threads or allocations; well past any
/// core count, it still lets commands that mostly wait (`exec`) run many
/// at once.
pub const MAX_WORKERS: usize = 1024;

/// The number of cores available to this process.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Capture {
    /// Opens a capture file, or standard input for `-`. The compression and
    /// capture format are detected from magic bytes. A plain file is
    /// memory-mapped; compressed files, pipes and standard input are
    /// streamed.
    ///
    /// Should another program truncate the file while it is mapped, the
    /// run ends with [`Error::InputChanged`] rather than the process dying
    /// of SIGBUS: the first map installs a SIGBUS handler that handles
    /// faults in this crate's maps only and passes others on (see the
    /// `mapped` module of the source). FIFOs, process substitutions and
    /// files that report no size (`/proc`) are streamed.
    pub fn open(path: impl AsRef<Path>) -> Result<Capture> {
        Capture::open_with(path, &Decoding::default())
    }

    /// Like [`Capture::open`], with options for decoding compressed input
    /// (decode threads, memory, the largest zstd window).
    pub fn open_with(path: impl AsRef<Path>, decoding: &Decoding) -> Result<Capture> {
        let path = path.as_ref();
        let (input, compression) = source::open(path, decoding)?;
        Capture::new(path.display().to_string(), input, compression)
    }

    /// A capture held in memory (plain or compressed).
    ///
    /// ```
    /// # use pcap_parallel::Capture;
    /// let err = Capture::from_bytes("x", b"hello".to_vec()).unwrap_err();
    /// assert_eq!(err.to_string(), "x: not a pcap or pcapng capture (starts with 68656c6c)");
    /// ```
    pub fn from_bytes(
        name: &str,
        bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    ) -> Result<Capture> {
        Capture::from_bytes_with(name, bytes, &Decoding::default())
    }

    /// Like [`Capture::from_bytes`], with options for decoding compressed input.
    pub fn from_bytes_with(
        name: &str,
        bytes: impl AsRef<[u8]> + Send + Sync + 'static,
        decoding: &Decoding,
    ) -> Result<Capture> {
        let bytes: Bytes = Arc::new(bytes);
        let (input, compression) = source::from_bytes(bytes, decoding)?;
        Capture::new(name.to_string(), input, compression)
    }

    /// A capture read from any reader (plain or compressed), as a stream.
    pub fn from_reader(name: &str, reader: impl Read + Send + 'static) -> Result<Capture> {
        Capture::from_reader_with(name, reader, &Decoding::default())
    }

    /// Like [`Capture::from_reader`], with options for decoding compressed
    /// input (always sequential: a reader is read once, in order).
    pub fn from_reader_with(
        name: &str,
        reader: impl Read + Send + 'static,
        decoding: &Decoding,
    ) -> Result<Capture> {
        let (input, compression) = source::from_reader(Box::new(reader), name, decoding)?;
        Capture::new(name.to_string(), input, compression)
    }

    fn new(name: String, mut input: Input, compression: Compression) -> Result<Capture> {
        let head = match &mut input {
            Input::Whole(b, _) => (**b).as_ref()[..(**b).as_ref().len().min(4)].to_vec(),
            Input::Stream(s) => {
                read_up_to(s, 4).map_err(|e| source::StreamFailure::into_error(e, &name))?
            }
        };
        let format = CaptureFormat::detect(&head).ok_or_else(|| Error::UnknownFormat {
            name: name.clone(),
            magic: if head.is_empty() {
                "nothing: the input is empty".into()
            } else {
                head.iter().map(|b| format!("{b:02x}")).collect()
            },
        })?;
        Ok(Capture {
            name,
            input,
            compression,
            format,
            head,
            split: Split::Auto,
            workers: default_workers(),
            max_packets: None,
            limits: Limits::default(),
            segment_len: None,
            on_error: OnError::Stop,
            filter: None,
            fail_fast: false,
            cancel: None,
            progress: None,
            on_skipped: None,
        })
    }

    /// How many chunks are processed at once.
    pub fn worker_count(&self) -> usize {
        self.workers.clamp(1, MAX_WORKERS)
    }

    /// The input's name (its path, or `-`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The capture format, from the magic number.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The compression around the capture.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// True when the input is memory-mapped (or in memory), false when it is
    /// streamed.
    pub fn is_mapped(&self) -> bool {
        matches!(self.input, Input::Whole(..))
    }

    /// How to divide the capture into chunks (default: [`Split::Auto`]).
    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// How many chunks are processed at once (default: the cores
    /// available; at least 1, at most [`MAX_WORKERS`]). A compressed file
    /// decoded in parallel uses as many decode threads, unless
    /// [`Decoding::threads`] said otherwise.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        if let Input::Stream(s) = &self.input
            && let Some(threads) = &s.decode_threads
        {
            threads.store(workers.max(1), Ordering::Relaxed);
        }
        self
    }

    /// Stop after this many packets (the original pcap-parallel's `maximum_count`).
    pub fn max_packets(mut self, max: Option<u64>) -> Self {
        self.max_packets = max;
        self
    }

    /// Limits on lengths read from the input.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Tuning: the byte length of the segments of a mapped file whose first
    /// record boundary each worker finds on its own (default: the chunk size
    /// of [`Split::Auto`], or the chunk size asked for when it is 1 MiB or
    /// more). Chunks are then cut inside the verified segments. Small
    /// segments exercise the boundary search; the result never depends on it.
    pub fn segment_len(mut self, bytes: Option<usize>) -> Self {
        self.segment_len = bytes;
        self
    }

    /// What to do with a damaged capture (default: [`OnError::Stop`]).
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.on_error = policy;
        self
    }

    /// Only packets that pass `filter` (a tcpdump expression) reach user
    /// code: [`Chunk::packets`] and the standalone views skip the others.
    /// Packets keep their numbers in the whole capture.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Stop handing out chunks after the first closure failure (default:
    /// the other chunks finish).
    pub fn fail_fast(mut self, yes: bool) -> Self {
        self.fail_fast = yes;
        self
    }

    /// A flag that cancels the run when set (from a signal handler, say):
    /// no further chunk starts, and the run ends with [`Error::Cancelled`].
    pub fn cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Counters to update as the run goes.
    pub fn progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Under [`OnError::Skip`], calls `f` with every damaged stretch that
    /// was passed over, in file order, on the calling thread, when the run
    /// ends: the way to see them with [`Capture::map`], [`Capture::fold_packets`]
    /// and the other shorthands, which return only results. ([`Capture::run`]
    /// also lists them in [`Report::skipped`].)
    ///
    /// ```
    /// use pcap_parallel::{Capture, OnError};
    /// use std::sync::{Arc, Mutex};
    /// # let mut bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap")).unwrap();
    /// // A record claiming 2 GiB in the middle of the capture.
    /// # let mut at = 24;
    /// # for _ in 0..500 { at += 16 + u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize; }
    /// bytes[at + 8..at + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    /// let skipped = Arc::new(Mutex::new(Vec::new()));
    /// let seen = skipped.clone();
    /// let packets = Capture::from_bytes("damaged.pcap", bytes)?
    ///     .on_error(OnError::Skip)
    ///     .on_skipped(move |s| seen.lock().unwrap().push(s.clone()))
    ///     .map(|chunk| chunk.packets().count())?;
    /// assert_eq!(packets.iter().sum::<usize>(), 999);
    /// let skipped = skipped.lock().unwrap();
    /// assert_eq!(skipped.len(), 1);
    /// assert_eq!(skipped[0].packet, 501);
    /// # Ok::<(), pcap_parallel::Error>(())
    /// ```
    pub fn on_skipped(mut self, f: impl FnMut(&Skipped) + Send + 'static) -> Self {
        self.on_skipped = Some(Box::new(f));
        self
    }

    /// Runs `f` over every chunk in parallel; results in file order.
    ///
    /// Strict: a closure panic, or a broken or truncated capture, makes the
    /// whole call fail (after every chunk before the fault was processed).
    /// See [`Capture::run`] to keep partial results.
    pub fn map<R, F>(self, f: F) -> Result<Vec<R>>
    where
        R: Send,
        F: Fn(&Chunk) -> R + Sync,
    {
        self.try_map(|c| Ok::<R, BoxError>(f(c)))
    }

    /// Like [`Capture::map`], for closures that can fail; the first failure
    /// (in file order) is returned with the chunk's index and byte range.
    pub fn try_map<R, E, F>(self, f: F) -> Result<Vec<R>>
    where
        R: Send,
        E: Into<BoxError>,
        F: Fn(&Chunk) -> std::result::Result<R, E> + Sync,
    {
        let mut out = Vec::new();
        let mut failure = None;
        let report = self.run(
            |c| f(c).map_err(Into::into),
            |r| match r.result {
                Ok(v) => out.push(v),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            },
        );
        if let Some(e) = failure {
            return Err(Error::Chunk(e));
        }
        match report.input_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Maps every chunk, then combines the results in file order with
    /// `reduce`, starting from `R::default()`, as they arrive.
    ///
    /// ```no_run
    /// # use pcap_parallel::Capture;
    /// let bytes: u64 = Capture::open("trace.pcap")?
    ///     .map_reduce(|c| c.packets().map(|p| p.data.len() as u64).sum(), |a, b| a + b)?;
    /// # Ok::<(), pcap_parallel::Error>(())
    /// ```
    pub fn map_reduce<R, M, F>(self, map: M, mut reduce: F) -> Result<R>
    where
        R: Send + Default,
        M: Fn(&Chunk) -> R + Sync,
        F: FnMut(R, R) -> R,
    {
        let mut acc = Some(R::default());
        let mut failure = None;
        let report = self.run(
            |c| Ok(map(c)),
            |r| match r.result {
                Ok(v) => acc = acc.take().map(|a| reduce(a, v)),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            },
        );
        if let Some(e) = failure {
            return Err(Error::Chunk(e));
        }
        match report.input_error {
            Some(e) => Err(e),
            None => Ok(acc.expect("set")),
        }
    }

    /// Folds every packet: each chunk folds its packets into a fresh
    /// `init()`, then the chunks' values are combined in file order.
    pub fn fold_packets<A, I, F, C>(self, init: I, fold: F, mut combine: C) -> Result<A>
    where
        A: Send,
        I: Fn() -> A + Sync,
        F: Fn(A, Packet<'_>) -> A + Sync,
        C: FnMut(A, A) -> A,
    {
        let start = init();
        let parts = self.map(|c| c.packets().fold(init(), &fold))?;
        Ok(parts.into_iter().fold(start, &mut combine))
    }

    /// Runs `f` on every chunk in parallel, for its effects.
    pub fn for_each<F>(self, f: F) -> Result<()>
    where
        F: Fn(&Chunk) + Sync,
    {
        self.map(f).map(|_| ())
    }

    /// Counts the packets (only record headers are read, unless a filter
    /// has to look at the packets).
    ///
    /// ```
    /// # use pcap_parallel::Capture;
    /// # let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap")).unwrap();
    /// let n = Capture::from_bytes("sample.pcap", bytes)?.workers(2).count()?;
    /// assert_eq!(n, 1000);
    /// # Ok::<(), pcap_parallel::Error>(())
    /// ```
    pub fn count(self) -> Result<u64> {
        if self.filter.is_some() {
            return self.map_reduce(|c| c.packets().count() as u64, |a, b| a + b);
        }
        self.map_reduce(|c| c.packet_count(), |a, b| a + b)
    }

    /// The general form: runs `f` over every chunk in parallel and hands
    /// each chunk's result (or failure) to `deliver`, on the calling thread,
    /// in file order, as soon as it and every chunk before it are done.
    ///
    /// Never panics because user code did, and never hangs: a closure that
    /// panics or returns an error is reported as a [`ChunkFailure`] naming
    /// the chunk, and the other chunks go on (unless [`Capture::fail_fast`]).
    /// A broken input ends the run after every complete packet before the
    /// fault was delivered; the error is in [`Report::input_error`].
    pub fn run<R, F, D>(mut self, f: F, mut deliver: D) -> Report
    where
        R: Send,
        F: Fn(&Chunk) -> std::result::Result<R, BoxError> + Sync,
        D: FnMut(ChunkResult<R>),
    {
        let workers = self.worker_count();
        let mut on_skipped = self.on_skipped.take();
        let stop = AtomicBool::new(false);
        let cancel = self.cancel.clone();
        let cancelled = || {
            stop.load(Ordering::Relaxed)
                || cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
        };
        let progress = self.progress.clone();
        let fail_fast = self.fail_fast;
        let in_flight = 2 * workers + 2;
        let mut report = Report::empty(None);
        if let Err(e) = self.split.validate() {
            report.input_error = Some(e);
            return report;
        }
        let (chunk_tx, chunk_rx) = bounded::<Chunk>(workers);
        let (res_tx, res_rx) = unbounded::<(ChunkResult<R>, u64)>();
        let (tok_tx, tok_rx) = bounded::<()>(in_flight);
        for _ in 0..in_flight {
            tok_tx.send(()).expect("room for every token");
        }
        // A mapped file that shrinks under the run ends it: see `crate::mapped`.
        let watch = match &self.input {
            Input::Whole(_, map) => map.clone(),
            Input::Stream(_) => None,
        };
        let changed = AtomicBool::new(false);
        let input_name = self.name.clone();
        let stream_pos = match &self.input {
            Input::Stream(s) => Some(s.consumed.clone()),
            Input::Whole(..) => None,
        };
        if let Some(p) = &progress {
            let total = match &self.input {
                Input::Whole(b, _) => (**b).as_ref().len() as u64,
                Input::Stream(s) => s.input_len.unwrap_or(0),
            };
            p.bytes_total.store(total, Ordering::Relaxed);
        }
        let f = &f;
        let self_cancel = cancel.clone();
        let stop = &stop;
        let cancelled = &cancelled;
        std::thread::scope(|s| {
            // On any exit from this scope (a panic in `deliver` included),
            // tell the other threads to stop, so the scope can end.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _guard = StopOnDrop(stop);
            let producer = s.spawn(move || {
                let (mut admission, cut_limit) =
                    Admission::new(self.filter.clone(), self.max_packets);
                let send = |chunk: Chunk| -> bool {
                    let (chunk, more) = match admission.admit(chunk) {
                        Verdict::Next(chunk) => (chunk, true),
                        Verdict::Last(chunk) => (chunk, false),
                        Verdict::Refuse => return false,
                    };
                    loop {
                        if cancelled() {
                            return false;
                        }
                        match tok_rx.recv_timeout(Duration::from_millis(50)) {
                            Ok(()) => return chunk_tx.send(chunk).is_ok() && more,
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => return false,
                        }
                    }
                };
                let mut produced = self.produce(workers, cut_limit, send);
                if let Some(e) = admission.error.take() {
                    produced.error = Some(e);
                }
                if let Some(at) = admission.limit_at {
                    // Enough packets: what follows them is not part of the run.
                    produced.error = None;
                    produced.skipped.retain(|k| k.offset < at);
                }
                produced
            });
            for _ in 0..workers {
                let chunk_rx = chunk_rx.clone();
                let res_tx = res_tx.clone();
                s.spawn(move || {
                    for chunk in chunk_rx {
                        if cancelled() {
                            continue;
                        }
                        let outcome = catch_unwind(AssertUnwindSafe(|| f(&chunk)));
                        let result = match outcome {
                            Ok(Ok(v)) => Ok(v),
                            Ok(Err(e)) => Err(ChunkFailureCause::Error(e)),
                            Err(panic) => Err(ChunkFailureCause::Panic(panic_message(&*panic))),
                        };
                        let result = result.map_err(|cause| ChunkFailure {
                            index: chunk.index,
                            range: chunk.byte_range(),
                            cause,
                        });
                        if result.is_err() && fail_fast {
                            stop.store(true, Ordering::Relaxed);
                        }
                        let done = ChunkResult {
                            index: chunk.index,
                            byte_range: chunk.byte_range(),
                            first_packet_number: chunk.first_packet_number(),
                            packet_count: chunk.packet_count(),
                            result,
                        };
                        if res_tx.send((done, chunk.range.len() as u64)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(res_tx);
            drop(chunk_rx);
            let mut pending: BTreeMap<usize, (ChunkResult<R>, u64)> = BTreeMap::new();
            let mut next = 0usize;
            let mut emit = |(r, bytes): (ChunkResult<R>, u64), report: &mut Report| {
                if changed.load(Ordering::Relaxed) || watch.as_ref().is_some_and(|m| m.changed()) {
                    // Computed from a file that changed: never handed out.
                    changed.store(true, Ordering::Relaxed);
                    stop.store(true, Ordering::Relaxed);
                    let _ = tok_tx.send(());
                    return;
                }
                report.chunks += 1;
                report.packets_read += r.packet_count;
                report.bytes += bytes;
                if r.result.is_err() {
                    report.failed_chunks += 1;
                }
                if let Some(p) = &progress {
                    p.chunks_done.fetch_add(1, Ordering::Relaxed);
                    p.packets_done.fetch_add(r.packet_count, Ordering::Relaxed);
                    match &stream_pos {
                        Some(pos) => p
                            .bytes_done
                            .store(pos.load(Ordering::Relaxed), Ordering::Relaxed),
                        None => {
                            p.bytes_done.fetch_add(bytes, Ordering::Relaxed);
                        }
                    }
                }
                deliver(r);
                let _ = tok_tx.send(());
            };
            for item in res_rx.iter() {
                pending.insert(item.0.index, item);
                while let Some(item) = pending.remove(&next) {
                    emit(item, &mut report);
                    next += 1;
                }
            }
            // Chunks skipped after a cancellation leave gaps; deliver the rest in order.
            for (_, item) in std::mem::take(&mut pending) {
                emit(item, &mut report);
            }
            match producer.join() {
                Ok(p) => {
                    report.redone_segments = p.redone;
                    report.segments = p.segments;
                    report.input_error = p.error;
                    report.skipped = p.skipped;
                }
                Err(panic) => {
                    report.input_error = Some(Error::InvalidOption(format!(
                        "internal error while cutting chunks: {}",
                        panic_message(&*panic)
                    )))
                }
            }
        });
        if changed.load(Ordering::Relaxed) || watch.as_ref().is_some_and(|m| m.changed()) {
            report.input_error = Some(Error::InputChanged { name: input_name });
            report.skipped.clear();
        }
        if report.input_error.is_none() && self_cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            report.input_error = Some(Error::Cancelled);
        }
        if let Some(f) = &mut on_skipped {
            report.skipped.iter().for_each(f);
        }
        report
    }
}

/// What the producing thread reports when it is done.
struct Produced {
    redone: usize,
    segments: usize,
    error: Option<Error>,
    skipped: Vec<crate::error::Skipped>,
}

impl Capture {
    /// Cuts the chunks, at most `max_packets` packets of them, and hands
    /// each to `send`, in order; stops when `send` returns false.
    fn produce(
        self,
        workers: usize,
        max_packets: Option<u64>,
        mut send: impl FnMut(Chunk) -> bool,
    ) -> Produced {
        let mut produced = Produced {
            redone: 0,
            segments: 0,
            error: None,
            skipped: Vec::new(),
        };
        let Capture {
            name,
            input,
            compression,
            format,
            head,
            split,
            limits,
            segment_len,
            on_error,
            ..
        } = self;
        let skip_damage = on_error == OnError::Skip;
        let (bytes, spool_error) = match (input, split) {
            (Input::Whole(b, _), _) => (b, None),
            (Input::Stream(stream), Split::Chunks(_)) => {
                let (bytes, err) = match spool(head, stream, &name) {
                    Ok(x) => x,
                    Err(e) => {
                        produced.error = Some(e);
                        return produced;
                    }
                };
                (bytes, err)
            }
            (Input::Stream(stream), _) => {
                let fill = match split {
                    Split::Packets(n) => Fill::Packets(n),
                    Split::Bytes(b) => Fill::Bytes(b as usize),
                    _ => Fill::Bytes(STREAM_CHUNK_BYTES as usize),
                };
                let reader = Box::new(std::io::Cursor::new(head).chain(stream));
                let mut cutter = match Cutter::new(
                    reader,
                    &name,
                    format,
                    limits,
                    fill,
                    max_packets,
                    skip_damage,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        produced.error = Some(e);
                        return produced;
                    }
                };
                loop {
                    match cutter.next_chunk() {
                        Ok(Some(chunk)) => {
                            if !send(chunk) {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            produced.error =
                                Some(blame_compressed_data(e, compression, || cutter.drain()));
                            break;
                        }
                    }
                }
                produced.skipped = cutter.skipped();
                return produced;
            }
        };
        let data = (*bytes).as_ref();
        let (walker, data_start) = match format {
            CaptureFormat::Pcap { .. } => match PcapHeader::parse(data, limits.max_packet_len) {
                Ok(h) => (Walker::Pcap(Arc::new(h)), pcap::FILE_HEADER_LEN),
                Err(fault) => {
                    produced.error = Some(spool_error.unwrap_or_else(|| {
                        Error::Format(FormatError {
                            name: name.clone(),
                            offset: 0,
                            packet: 1,
                            fault,
                        })
                    }));
                    return produced;
                }
            },
            CaptureFormat::Pcapng => (
                Walker::Pcapng {
                    endian: None,
                    interfaces: Interfaces::Known(0),
                    limits,
                },
                0,
            ),
        };
        let plan = chunker::plan(
            data,
            walker,
            data_start,
            &PlanRequest {
                split,
                workers,
                segment_len,
                max_packets,
                skip_damage,
            },
        );
        produced.redone = plan.redone;
        produced.skipped = plan.skipped;
        if spool_error.is_some() {
            // The record cut short where decompression failed is that
            // failure, reported as such (as a stream does), not damage.
            produced
                .skipped
                .retain(|k| !(k.fault.is_truncation() && k.offset + k.len == data.len() as u64));
        }
        produced.segments = plan.segments;
        let limit_reached =
            max_packets.is_some_and(|m| plan.chunks.iter().map(|c| c.packets).sum::<u64>() >= m);
        for (index, spec) in plan.chunks.into_iter().enumerate() {
            let chunk = Chunk {
                index,
                data: bytes.clone(),
                range: spec.start..spec.end,
                offset: spec.start as u64,
                packets_before: spec.packets_before,
                packet_count: spec.packets,
                context: spec.context,
                described: spec.described.into(),
                filter: None,
                gaps: spec
                    .holes
                    .iter()
                    .map(|h| crate::chunk::Gap {
                        at: h.start - spec.start,
                        skip: h.len(),
                        resume: h.end as u64,
                    })
                    .collect(),
            };
            if !send(chunk) {
                break;
            }
        }
        produced.error = match (plan.fault, spool_error) {
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
        produced
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

/// Reads up to `n` bytes (fewer only at the end of input).
fn read_up_to(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

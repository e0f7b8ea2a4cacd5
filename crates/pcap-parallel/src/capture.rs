//! [`Capture`]: a capture opened for parallel processing, its options, and
//! the ways to run code over its chunks.
//!
//! A run is three parts, each in its own module: a
//! [`Producer`](crate::producer) cuts chunks in file order (from a memory
//! map after the parallel boundary search of [`crate::chunker`], or from a
//! stream as it is read); [`crate::admission`] checks each against the
//! filter and the packet limit; the [ordered pool](crate::pool) runs user
//! code on worker threads, catching panics, and hands the results back in
//! file order. At most a fixed number of chunks are in flight (produced but
//! not yet delivered), so memory stays bounded however slow one chunk is.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::admission::{Admission, Verdict};
use crate::chunk::{Chunk, Origin};
use crate::decompress::Decoding;
use crate::error::{Error, Result, Skipped};
use crate::filter::Filter;
use crate::format::{CaptureFormat, Compression};
use crate::inputs::{InputOrder, InputsError};
use crate::mapped::GuardedMap;
use crate::packet::Packet;
use crate::pool::{self, AfterFailure, Feeder, Flow, Pool};
use crate::producer::{Job, Produced, Producer};
use crate::report::{BoxError, ChunkResult, Progress, Report};
use crate::source::{self, Bytes, Input};
use crate::split::Split;
use crate::walk::Limits;

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
    /// The input read first (taken when the capture runs); the others
    /// ([`Capture::open_many`]) are opened when their turn comes.
    first: Option<Opened>,
    later: VecDeque<Later>,
    /// How the later inputs are opened.
    decoding: Decoding,
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

/// An input, opened: its bytes and what was learnt of them.
struct Opened {
    origin: Arc<Origin>,
    input: Input,
    compression: Compression,
    format: CaptureFormat,
    /// The first decompressed bytes, read from a stream to detect its format.
    head: Vec<u8>,
}

/// An input of several, not opened yet.
struct Later {
    path: PathBuf,
    /// Its size on disk (compressed size for compressed files), for progress.
    size: u64,
}

/// See [`Capture::on_skipped`].
type SkipCallback = Box<dyn FnMut(&Skipped) + Send>;

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("name", &self.first().origin.name)
            .field("format", &self.first().format)
            .field("compression", &self.first().compression)
            .field("later_inputs", &self.later.len())
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
    /// FIFOs, process substitutions and files that report no size
    /// (`/proc`) are streamed.
    ///
    /// # Files that change while mapped
    ///
    /// Mapping is what makes a plain file fast to cut (no copy, workers
    /// read where they want), and it is sound only while nobody else
    /// changes the file. This crate keeps that promise for you as far as it
    /// can: should another program truncate the file during a run, the
    /// reads past its new end do not kill the process with SIGBUS (the
    /// first map installs a handler that handles faults in this crate's
    /// maps only and passes others on; see the `mapped` module of the
    /// source), and the run ends with [`Error::InputChanged`], delivering
    /// nothing computed from the changed file. A file *rewritten in place*
    /// at the same length cannot be told from the original: its chunks
    /// then mix old and new bytes. If other programs may write the capture
    /// while you read it, copy it first or read it as a stream
    /// ([`Capture::from_reader`]), which never maps.
    pub fn open(path: impl AsRef<Path>) -> Result<Capture> {
        Capture::open_with(path, &Decoding::default())
    }

    /// Like [`Capture::open`], with options for decoding compressed input
    /// (decode threads, memory, the largest zstd window).
    pub fn open_with(path: impl AsRef<Path>, decoding: &Decoding) -> Result<Capture> {
        let first = Opened::path(path.as_ref(), decoding)?;
        Ok(Capture::new(first, decoding))
    }

    /// Several captures read as one, in the order given ([`InputOrder::Given`])
    /// or by their first packet's time ([`InputOrder::Time`]): rotated files
    /// (`tcpdump -G`/`-C`), a directory of days. Each file keeps its own
    /// format, compression, header and packet numbers (errors name the file
    /// and its packet), chunks never span two files ([`Chunk::input_name`]
    /// says which each comes from), chunk indices run on over all of them,
    /// and the options apply to the whole: [`Capture::max_packets`] counts
    /// the packets of all files, [`Split::Chunks`] shares its chunks among
    /// the files by size (at least one each). A broken file ends the run
    /// as it would alone, after every complete packet before the fault.
    ///
    /// Paths are taken as they are; [`expand_inputs`](crate::expand_inputs) turns patterns into
    /// paths first. The first file is opened now, the others when their
    /// turn comes (so a thousand compressed files do not decode at once).
    /// Standard input (`-`) can only be read alone.
    pub fn open_many<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        order: InputOrder,
    ) -> Result<Capture> {
        Capture::open_many_with(paths, order, &Decoding::default())
    }

    /// Like [`Capture::open_many`], with options for decoding compressed input.
    pub fn open_many_with<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        order: InputOrder,
        decoding: &Decoding,
    ) -> Result<Capture> {
        let mut paths: Vec<PathBuf> = paths
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        if paths.len() > 1 && paths.iter().any(|p| p.as_os_str() == "-") {
            return Err(Error::Inputs(InputsError::StdinAmongOthers));
        }
        if order == InputOrder::Time {
            paths = by_first_packet_time(paths, decoding);
        }
        let mut paths = paths.into_iter();
        let first = paths.next().ok_or(Error::Inputs(InputsError::None))?;
        let mut capture = Capture::open_with(first, decoding)?;
        for path in paths {
            let size = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path.display().to_string(), e))?
                .len();
            capture.later.push_back(Later { path, size });
        }
        Ok(capture)
    }

    /// A capture held in memory (plain or compressed).
    ///
    /// ```
    /// # use pcap_parallel::Capture;
    /// let err = Capture::from_bytes("x", b"hello".to_vec()).unwrap_err();
    /// assert_eq!(err.to_string(), "x: not a pcap or pcapng capture (text: \"hello\")");
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
        let first = Opened::new(name.to_string(), None, input, compression)?;
        Ok(Capture::new(first, decoding))
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
        let first = Opened::new(name.to_string(), None, input, compression)?;
        Ok(Capture::new(first, decoding))
    }

    fn new(first: Opened, decoding: &Decoding) -> Capture {
        Capture {
            first: Some(first),
            later: VecDeque::new(),
            decoding: decoding.clone(),
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
        }
    }

    /// The input read first (until the capture runs).
    fn first(&self) -> &Opened {
        self.first
            .as_ref()
            .expect("a capture has its input until it runs")
    }

    /// How many chunks are processed at once.
    pub fn worker_count(&self) -> usize {
        self.workers.clamp(1, MAX_WORKERS)
    }

    /// The input's name (its path, or `-`); of several inputs, the first's.
    pub fn name(&self) -> &str {
        &self.first().origin.name
    }

    /// How many inputs are read as one ([`Capture::open_many`]).
    pub fn input_count(&self) -> usize {
        1 + self.later.len()
    }

    /// The capture format, from the magic number (of several inputs, the
    /// first's; each chunk says its own: [`Chunk::format`]).
    pub fn format(&self) -> CaptureFormat {
        self.first().format
    }

    /// The compression around the capture (of several inputs, the first's).
    pub fn compression(&self) -> Compression {
        self.first().compression
    }

    /// True when the input is memory-mapped (or in memory), false when it is
    /// streamed (of several inputs, the first).
    pub fn is_mapped(&self) -> bool {
        matches!(self.first().input, Input::Whole(..))
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
        if let Some(first) = &self.first {
            first.set_decode_threads(workers);
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
    /// panics or returns an error is reported as a [`ChunkFailure`](crate::ChunkFailure) naming
    /// the chunk, and the other chunks go on (unless [`Capture::fail_fast`]).
    /// A broken input ends the run after every complete packet before the
    /// fault was delivered; the error is in [`Report::input_error`].
    pub fn run<R, F, D>(mut self, f: F, mut deliver: D) -> Report
    where
        R: Send,
        F: Fn(&Chunk) -> std::result::Result<R, BoxError> + Sync,
        D: FnMut(ChunkResult<R>),
    {
        if let Err(e) = self.split.validate() {
            return Report::empty(Some(e));
        }
        let on_skipped = self.on_skipped.take();
        let first = self.first.take().expect("a capture runs once");
        let sizes: Vec<u64> = std::iter::once(first.size())
            .chain(self.later.iter().map(|l| l.size))
            .collect();
        if let Some(p) = &self.progress {
            p.bytes_total.store(sizes.iter().sum(), Ordering::Relaxed);
        }
        let (mut admission, cut_limit) = Admission::new(self.filter.clone(), self.max_packets);
        let mut at = Position {
            index: 0,
            bytes_before: 0,
            cut_limit,
        };
        let mut report = Report::empty(None);
        let mut later = std::mem::take(&mut self.later).into_iter();
        let mut next = Some(Ok(first));
        let splits = self.splits_for(&sizes);
        for (size, split) in sizes.iter().zip(splits) {
            let Some(opened) = next.take() else { break };
            let one = match opened {
                Ok(opened) => self.run_input(opened, split, &f, &mut deliver, &mut admission, &at),
                Err(e) => Report::empty(Some(e)),
            };
            at.index += one.chunks;
            at.bytes_before += size;
            if let (Some(p), None) = (&self.progress, &one.input_error) {
                // Read to its end: its headers count as done too.
                p.bytes_done.fetch_max(at.bytes_before, Ordering::Relaxed);
            }
            at.cut_limit = at.cut_limit.map(|n| n.saturating_sub(one.packets_read));
            report.absorb(one);
            if !self.ended(&report, &at, &admission) {
                next = later.next().map(|l| self.open_later(&l.path));
            }
        }
        if let Some(f) = on_skipped {
            report.skipped.iter().for_each(f);
        }
        report
    }

    /// Whether a run of several inputs stops before the next one: an
    /// error, the packets wanted, a failure under [`Capture::fail_fast`].
    fn ended(&self, report: &Report, at: &Position, admission: &Admission) -> bool {
        report.input_error.is_some()
            || at.cut_limit == Some(0)
            || admission.limit_at.is_some()
            || (self.fail_fast && report.failed_chunks > 0)
    }

    /// The split of each input of `sizes`: [`Split::Chunks`] shares its K
    /// chunks among them by size (largest remainders, so that the shares
    /// add up to K), at least one each; other splits apply to each as they
    /// are.
    fn splits_for(&self, sizes: &[u64]) -> Vec<Split> {
        let Split::Chunks(k) = self.split else {
            return vec![self.split; sizes.len()];
        };
        let total = sizes.iter().sum::<u64>().max(1) as u128;
        let exact: Vec<(usize, u128)> = sizes
            .iter()
            .map(|&size| {
                let scaled = k as u128 * size as u128;
                ((scaled / total) as usize, scaled % total)
            })
            .collect();
        let mut shares: Vec<usize> = exact.iter().map(|e| e.0).collect();
        let mut by_remainder: Vec<usize> = (0..sizes.len()).collect();
        by_remainder.sort_by_key(|&i| std::cmp::Reverse(exact[i].1));
        let left = k.saturating_sub(shares.iter().sum());
        for &i in by_remainder.iter().take(left) {
            shares[i] += 1;
        }
        shares
            .into_iter()
            .map(|s| Split::Chunks(s.max(1)))
            .collect()
    }

    /// Opens a later input of [`Capture::open_many`], decoded as the first.
    fn open_later(&self, path: &Path) -> Result<Opened> {
        let opened = Opened::path(path, &self.decoding)?;
        opened.set_decode_threads(self.workers);
        Ok(opened)
    }

    /// Runs `f` over the chunks of one input, their indices from `at.index`.
    fn run_input<R, F, D>(
        &self,
        opened: Opened,
        split: Split,
        f: &F,
        deliver: &mut D,
        admission: &mut Admission,
        at: &Position,
    ) -> Report
    where
        R: Send,
        F: Fn(&Chunk) -> std::result::Result<R, BoxError> + Sync,
        D: FnMut(ChunkResult<R>),
    {
        let workers = self.worker_count();
        let pool = Pool {
            workers,
            in_flight: 2 * workers + 2,
            first_index: at.index,
            after_failure: if self.fail_fast {
                AfterFailure::Stop
            } else {
                AfterFailure::GoOn
            },
            cancel: self.cancel.clone(),
        };
        let mut delivery = Delivery::new(&opened, self.progress.clone(), at.bytes_before, deliver);
        let map = delivery.watch.clone();
        let job = Job {
            name: opened.origin.name.clone(),
            compression: opened.compression,
            format: opened.format,
            head: opened.head,
            split,
            workers,
            max_packets: at.cut_limit,
            limits: self.limits,
            segment_len: self.segment_len,
            on_error: self.on_error,
        };
        let fed = pool::ordered(
            &pool,
            |feeder| {
                feed(
                    opened.input,
                    job,
                    admission,
                    feeder,
                    &opened.origin,
                    at.index,
                )
            },
            |chunk: &Chunk| {
                let r = f(chunk);
                if let Some(map) = &map {
                    release_used(map, chunk);
                }
                r
            },
            |r, bytes| delivery.take(r, bytes),
        );
        delivery.finish(fed, pool.cancel.as_ref())
    }
}

/// Where a run of several inputs is, before each.
struct Position {
    /// The index of the next chunk.
    index: usize,
    /// The size of the inputs before (for progress).
    bytes_before: u64,
    /// The limit on records left (see [`Admission::new`]).
    cut_limit: Option<u64>,
}

impl Opened {
    /// Opens a file, or standard input for `-`.
    fn path(path: &Path, decoding: &Decoding) -> Result<Opened> {
        let (input, compression) = source::open(path, decoding)?;
        let mapped_file = match &input {
            Input::Whole(..) => Some(path.to_path_buf()),
            Input::Stream(_) => None,
        };
        Opened::new(path.display().to_string(), mapped_file, input, compression)
    }

    /// Reads the first bytes to tell the capture format.
    fn new(
        name: String,
        mapped_file: Option<PathBuf>,
        mut input: Input,
        compression: Compression,
    ) -> Result<Opened> {
        let head = match &mut input {
            Input::Whole(b, _) => (**b).as_ref()[..(**b).as_ref().len().min(4)].to_vec(),
            Input::Stream(s) => {
                read_up_to(s, 4).map_err(|e| source::StreamFailure::into_error(e, &name))?
            }
        };
        let Some(format) = CaptureFormat::detect(&head) else {
            return Err(Error::UnknownFormat {
                what: describe_input(&mut input, &head, compression),
                name,
            });
        };
        Ok(Opened {
            origin: Arc::new(Origin {
                guard: match &input {
                    Input::Whole(_, map) => map.clone(),
                    Input::Stream(_) => None,
                },
                name,
                mapped_file,
            }),
            input,
            compression,
            format,
            head,
        })
    }

    /// The input's size (compressed size for compressed files; 0 when unknown).
    fn size(&self) -> u64 {
        match &self.input {
            Input::Whole(b, _) => (**b).as_ref().len() as u64,
            Input::Stream(s) => s.input_len.unwrap_or(0),
        }
    }

    /// Decode threads of a compressed file decoded in parallel.
    fn set_decode_threads(&self, workers: usize) {
        if let Input::Stream(s) = &self.input
            && let Some(threads) = &s.decode_threads
        {
            threads.store(workers.max(1), Ordering::Relaxed);
        }
    }
}

/// What an input that is not a capture looks like (more of its first bytes
/// than the format needed are read for it).
fn describe_input(input: &mut Input, head: &[u8], compression: Compression) -> String {
    let mut bytes = head.to_vec();
    match input {
        Input::Whole(b, _) => {
            let all = (**b).as_ref();
            bytes = all[..all.len().min(crate::format::DESCRIBE_LEN)].to_vec();
        }
        Input::Stream(s) => {
            if let Ok(more) = read_up_to(s, crate::format::DESCRIBE_LEN - head.len()) {
                bytes.extend(more);
            }
        }
    }
    let what = crate::format::describe_non_capture(&bytes);
    match compression {
        Compression::None => what,
        c => format!("{c}-compressed {what}"),
    }
}

/// `paths` sorted by their first packet's time (stable; those without a
/// readable first packet first, so that an input that cannot be opened
/// fails the run before any other is read).
fn by_first_packet_time(paths: Vec<PathBuf>, decoding: &Decoding) -> Vec<PathBuf> {
    // Read as a stream: only the first bytes are read (a mapped file's
    // boundary search would walk the whole file).
    let first_time = |path: &Path| -> Option<i128> {
        let file = std::fs::File::open(path).ok()?;
        let firsts = Capture::from_reader_with(&path.display().to_string(), file, decoding)
            .ok()?
            .workers(1)
            .split(Split::Bytes(64 << 10))
            .max_packets(Some(1))
            .map(|c| c.packets().next().and_then(|p| p.timestamp))
            .ok()?;
        Some(firsts.into_iter().flatten().next()?.as_nanos())
    };
    let mut keyed: Vec<(Option<i128>, PathBuf)> =
        paths.into_iter().map(|p| (first_time(&p), p)).collect();
    keyed.sort_by_key(|(t, _)| *t);
    keyed.into_iter().map(|(_, p)| p).collect()
}

/// After a worker has used a chunk of a mapped file: its pages' entries
/// are let go of there (see [`GuardedMap::release`]), not all at the end.
fn release_used(map: &GuardedMap, chunk: &Chunk) {
    let data: &[u8] = (*chunk.data).as_ref();
    let mapped: &[u8] = map.as_ref();
    if std::ptr::eq(data.as_ptr(), mapped.as_ptr()) {
        map.release(chunk.range.clone());
    }
}

/// The feeding thread: chunks from the producer, through the admission
/// checks, to the pool.
fn feed(
    input: Input,
    job: Job,
    admission: &mut Admission,
    feeder: &Feeder<'_>,
    origin: &Arc<Origin>,
    first_index: usize,
) -> Produced {
    let mut producer = Producer::new(input, job);
    while let Some(mut chunk) = producer.next_chunk() {
        chunk.index += first_index;
        chunk = chunk.with_origin(origin.clone());
        let more = match admission.admit(chunk) {
            Verdict::Next(chunk) => feeder.send(chunk),
            Verdict::Last(chunk) => {
                feeder.send(chunk);
                false
            }
            Verdict::Refuse => false,
        };
        if !more {
            break;
        }
    }
    let mut produced = producer.finish();
    if let Some(e) = admission.error.take() {
        produced.error = Some(e);
    }
    if let Some(at) = admission.limit_at {
        // Enough packets: what follows them is not part of the run.
        produced.error = None;
        produced.skipped.retain(|k| k.offset < at);
    }
    produced
}

/// Hands results to the caller in order, keeping the report's counts and
/// the progress counters, and holding back anything computed from a file
/// that changed under its map.
struct Delivery<'d, D> {
    deliver: &'d mut D,
    report: Report,
    name: String,
    progress: Option<Arc<Progress>>,
    /// The map of a mapped file, to tell whether it changed.
    watch: Option<Arc<GuardedMap>>,
    /// Bytes a stream has consumed, for progress.
    stream_pos: Option<Arc<AtomicU64>>,
    /// The size of the inputs before this one, for progress.
    bytes_before: u64,
    changed: bool,
}

impl<'d, D> Delivery<'d, D> {
    fn new(
        opened: &Opened,
        progress: Option<Arc<Progress>>,
        bytes_before: u64,
        deliver: &'d mut D,
    ) -> Delivery<'d, D> {
        let (watch, stream_pos) = match &opened.input {
            Input::Whole(_, map) => (map.clone(), None),
            Input::Stream(s) => (None, Some(s.consumed.clone())),
        };
        Delivery {
            deliver,
            report: Report::empty(None),
            name: opened.origin.name.clone(),
            progress,
            watch,
            stream_pos,
            bytes_before,
            changed: false,
        }
    }

    fn input_changed(&mut self) -> bool {
        self.changed = self.changed || self.watch.as_ref().is_some_and(|m| m.changed());
        self.changed
    }

    fn take<R>(&mut self, r: ChunkResult<R>, bytes: u64) -> Flow
    where
        D: FnMut(ChunkResult<R>),
    {
        if self.input_changed() {
            // Computed from a file that changed: never handed out.
            return Flow::Stop;
        }
        let report = &mut self.report;
        report.chunks += 1;
        report.packets_read += r.packet_count;
        report.bytes += bytes;
        if r.result.is_err() {
            report.failed_chunks += 1;
        }
        if let Some(p) = &self.progress {
            p.chunks_done.fetch_add(1, Ordering::Relaxed);
            p.packets_done.fetch_add(r.packet_count, Ordering::Relaxed);
            match &self.stream_pos {
                Some(pos) => p.bytes_done.store(
                    self.bytes_before + pos.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                ),
                None => {
                    p.bytes_done.fetch_add(bytes, Ordering::Relaxed);
                }
            }
        }
        (self.deliver)(r);
        Flow::Continue
    }

    /// The report, with what the feeding thread found.
    fn finish(
        mut self,
        fed: std::thread::Result<Produced>,
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Report {
        let mut report = std::mem::replace(&mut self.report, Report::empty(None));
        match fed {
            Ok(p) => {
                report.redone_segments = p.redone;
                report.segments = p.segments;
                report.input_error = p.error;
                report.skipped = p.skipped;
            }
            Err(panic) => {
                report.input_error = Some(Error::Internal(format!(
                    "a panic while cutting chunks: {}",
                    pool::panic_message(&*panic)
                )))
            }
        }
        if self.input_changed() {
            report.input_error = Some(Error::InputChanged { name: self.name });
            report.skipped.clear();
        }
        if report.input_error.is_none() && cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            report.input_error = Some(Error::Cancelled);
        }
        report
    }
}

/// Reads up to `n` bytes (fewer only at the end of input).
fn read_up_to(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

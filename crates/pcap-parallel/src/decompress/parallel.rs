//! Decoding the independent units of a compressed file (bzip2 blocks, xz
//! blocks, BGZF members, zstd frames) on a small pool of threads, handing
//! the decoded bytes on in file order, as one ordered stream of blocks.
//!
//! One thread, the *dispatcher*, asks a codec's [`Planner`] for the next
//! unit (from headers, an index, or a scan), queues it for the pool, and
//! forwards the decoded pieces of the oldest unit (the *head*) to the
//! stream's reader. Nothing else of the engine changes: the stream cutter
//! sees the same bytes, in the same order, as from a sequential decoder.
//!
//! # Memory
//!
//! At most `4 × threads + 2` units are queued or being decoded. Decoded
//! pieces (of [`BLOCK_LEN`] bytes at most) of units other than the head
//! need a token from a budget of [`Decoding::max_in_flight`] bytes;
//! the head may hold [`HEAD_PIECES`] pieces besides. A worker waiting for a
//! token holds its piece. So decoded data in flight stays under
//! `max_in_flight + (HEAD_PIECES + threads) × BLOCK_LEN`, plus what a
//! unit that must be verified whole before any byte of it is handed on
//! holds (a bzip2 block: at most 46 MB by the format, about 1 MB in
//! practice), plus the decoders' own state (an xz dictionary, a zstd
//! window) per thread.
//!
//! # Failures
//!
//! A unit that fails to decode, or a plan that meets something it cannot
//! place, is never reported from the parallel path: decoding falls back to
//! the codec's sequential decoder from the last point it can start at (the
//! start of the bzip2 or xz stream, the BGZF member, the zstd frame), the
//! bytes already handed on are decoded again and dropped, and whatever
//! the sequential decoder then meets is reported with its compressed and
//! decompressed offsets, exactly as for a file decoded sequentially. Units
//! decoded in parallel after the failing one are discarded.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::Decoding;
use crate::format::Compression;
use crate::source::{BLOCK_LEN, BlockSender, Bytes, StreamFailure, pump};

/// Compressed bytes small units (BGZF members, small zstd frames) are
/// grouped into, so that handing a unit on costs little beside decoding it.
pub(crate) const GROUP: u64 = 1 << 20;

/// Pieces the head unit may hold without a token from the budget.
pub(crate) const HEAD_PIECES: usize = 8;

/// Compressed bytes that can be read at any offset: a regular file, or
/// bytes in memory.
pub(crate) trait Source: Send + Sync {
    /// The length in bytes.
    fn len(&self) -> u64;
    /// Reads from `offset`; fewer bytes only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// Bytes in memory as a [`Source`].
pub(crate) struct MemSource(pub Bytes);

impl Source for MemSource {
    fn len(&self) -> u64 {
        (*self.0).as_ref().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let data = (*self.0).as_ref();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
}

/// A file's length, read once: a [`Source`] whose length is asked often.
pub(crate) struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn new(file: File, len: u64) -> FileSource {
        FileSource { file, len }
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }
}

/// Fills `buf` from `offset` as far as the source goes; returns the count.
pub(crate) fn read_full(src: &dyn Source, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read_at(offset + filled as u64, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads `range` of a source, as a [`Read`].
pub(crate) struct RangeReader {
    src: Arc<dyn Source>,
    pos: u64,
    end: u64,
}

impl RangeReader {
    pub fn new(src: Arc<dyn Source>, range: Range<u64>) -> RangeReader {
        RangeReader {
            src,
            pos: range.start,
            end: range.end,
        }
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end.saturating_sub(self.pos)) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.src.read_at(self.pos, &mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// When a unit's decoded bytes may be handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// As they are decoded: the unit's place is certain (from a length in a
    /// header or an index) and its decoder checks it.
    Streamed,
    /// Only once the whole unit has decoded and passed its check: its place
    /// was guessed (a bzip2 block magic found by a scan), and a wrong guess
    /// must never produce bytes.
    Verified,
}

/// Opens a unit's decoder, on a worker.
pub(crate) type OpenUnit = Box<dyn FnOnce() -> io::Result<Box<dyn Read>> + Send>;

/// One independently decodable piece of the compressed input.
pub(crate) struct Unit {
    /// Its compressed bytes (for progress).
    pub compressed: Range<u64>,
    /// Where the sequential decoder can start to decode this unit again,
    /// should it fail: the unit's own start, or its stream's.
    pub restart: u64,
    pub release: Release,
    /// Its decoder; the unit is good when this reads to its end.
    pub open: OpenUnit,
}

/// What a codec's planner says comes next.
pub(crate) enum Next {
    Unit(Unit),
    /// The input ends here, every unit planned.
    End,
    /// Something the plan cannot place: decode sequentially from `restart`.
    Sequential {
        restart: u64,
    },
}

/// Finds a codec's units, in order.
pub(crate) trait Planner: Send {
    fn next(&mut self) -> Next;
}

/// A decoded piece, and whether it holds a token of the budget.
enum Msg {
    Piece(Vec<u8>, Token),
    Done,
    /// The unit failed: the sequential decoder will say how.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Head,
    Budget,
}

/// The budget of decoded pieces in flight (see the module docs).
struct Budget {
    state: Mutex<BudgetState>,
    changed: Condvar,
}

struct BudgetState {
    free: usize,
    head: u64,
    head_pending: usize,
    closed: bool,
}

impl Budget {
    fn new(pieces: usize) -> Budget {
        Budget {
            state: Mutex::new(BudgetState {
                free: pieces,
                head: 0,
                head_pending: 0,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// A token for a piece of unit `seq`; `None` once the run is over.
    fn acquire(&self, seq: u64) -> Option<Token> {
        let mut s = self.state.lock().expect("budget lock");
        loop {
            if s.closed {
                return None;
            }
            if s.head == seq && s.head_pending < HEAD_PIECES {
                s.head_pending += 1;
                return Some(Token::Head);
            }
            if s.free > 0 {
                s.free -= 1;
                return Some(Token::Budget);
            }
            s = self.changed.wait(s).expect("budget lock");
        }
    }

    fn release(&self, token: Token) {
        let mut s = self.state.lock().expect("budget lock");
        match token {
            Token::Head => s.head_pending -= 1,
            Token::Budget => s.free += 1,
        }
        drop(s);
        self.changed.notify_all();
    }

    fn advance(&self, head: u64) {
        let mut s = self.state.lock().expect("budget lock");
        s.head = head;
        s.head_pending = 0;
        drop(s);
        self.changed.notify_all();
    }

    /// The sequence number of the head (the next unit to hand on).
    fn head(&self) -> u64 {
        self.state.lock().expect("budget lock").head
    }

    fn is_closed(&self) -> bool {
        self.state.lock().expect("budget lock").closed
    }

    fn close(&self) {
        self.state.lock().expect("budget lock").closed = true;
        self.changed.notify_all();
    }
}

/// A queued unit, as the dispatcher keeps it.
struct InFlight {
    seq: u64,
    compressed_end: u64,
    restart: u64,
    pieces: Receiver<Msg>,
}

/// Everything the workers share.
struct Shared {
    budget: Budget,
    spent: Receiver<Vec<u8>>,
}

impl Shared {
    /// The sequence number of a unit queued when none is in flight.
    fn first_seq(&self) -> u64 {
        self.budget.head()
    }
}

/// The next piece of `reader` (at most `BLOCK_LEN` bytes), in a recycled
/// buffer if one is there. Only what is read is written: a small unit
/// (a BGZF member decodes to 64 KiB) does not pay for zeroing a whole block.
fn next_piece(reader: &mut dyn Read, spent: &Receiver<Vec<u8>>) -> io::Result<Vec<u8>> {
    let mut piece = spent.try_recv().unwrap_or_default();
    piece.clear();
    piece.reserve_exact(BLOCK_LEN);
    reader.take(BLOCK_LEN as u64).read_to_end(&mut piece)?;
    Ok(piece)
}

/// Decodes one unit on a worker, sending its pieces to `out`.
fn decode_unit(seq: u64, release: Release, open: OpenUnit, shared: &Shared, out: &Sender<Msg>) {
    let send = |piece: Vec<u8>| -> bool {
        match shared.budget.acquire(seq) {
            Some(token) => out.send(Msg::Piece(piece, token)).is_ok(),
            None => false,
        }
    };
    if shared.budget.is_closed() {
        return; // the run ended (or fell back) before this unit's turn
    }
    let result = (|| -> io::Result<bool> {
        let mut reader = open()?;
        let mut held = Vec::new();
        loop {
            let piece = next_piece(&mut *reader, &shared.spent)?;
            if piece.is_empty() {
                break;
            }
            match release {
                Release::Streamed => {
                    if !send(piece) {
                        return Ok(false);
                    }
                }
                Release::Verified => held.push(piece),
            }
        }
        for piece in held {
            if !send(piece) {
                return Ok(false);
            }
        }
        Ok(true)
    })();
    let _ = match result {
        Ok(true) => out.send(Msg::Done),
        Ok(false) => Ok(()),
        Err(_) => out.send(Msg::Failed),
    };
}

/// A job for the pool.
type Job = Box<dyn FnOnce() + Send>;

/// Worker threads, started as they are needed, up to the thread count.
struct Pool {
    jobs: Sender<Job>,
    job_rx: Receiver<Job>,
    started: usize,
}

impl Pool {
    /// Queues `job`, starting a thread for it if fewer than `threads` run;
    /// false if not a single thread could be started.
    fn submit(&mut self, job: Job, threads: usize) -> bool {
        if self.started < threads {
            let rx = self.job_rx.clone();
            let spawned = std::thread::Builder::new()
                .name("pcap-parallel-decode".into())
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                });
            match spawned {
                Ok(_) => self.started += 1,
                Err(_) if self.started == 0 => return false,
                Err(_) => {}
            }
        }
        self.jobs.send(job).is_ok()
    }
}

/// What planning found, besides the units queued.
enum Planned {
    /// The queue is full; more to come.
    More,
    /// Every unit is queued.
    All,
    /// The rest is decoded sequentially from this compressed offset.
    Sequential(u64),
}

/// Plans and queues units until `4 × threads + 2` are in flight.
fn queue_units(
    planner: &mut dyn Planner,
    pool: &mut Pool,
    queue: &mut VecDeque<InFlight>,
    shared: &Arc<Shared>,
    threads: usize,
) -> Planned {
    while queue.len() < 4 * threads + 2 {
        let unit = match planner.next() {
            Next::Unit(unit) => unit,
            Next::End => return Planned::All,
            Next::Sequential { restart } => return Planned::Sequential(restart),
        };
        let (out, pieces) = unbounded();
        let seq = queue.back().map_or(shared.first_seq(), |u| u.seq + 1);
        let shared = shared.clone();
        let (release, open) = (unit.release, unit.open);
        let job = Box::new(move || decode_unit(seq, release, open, &shared, &out));
        if !pool.submit(job, threads) {
            // No thread to decode on: all of it sequentially.
            return Planned::Sequential(unit.restart);
        }
        queue.push_back(InFlight {
            seq,
            compressed_end: unit.compressed.end,
            restart: unit.restart,
            pieces,
        });
    }
    Planned::More
}

/// The dispatcher: plans, queues and hands on units in order, until the
/// input ends, the reader hangs up, or a failure sends it sequential.
pub(crate) struct Dispatcher {
    pub src: Arc<dyn Source>,
    pub compression: Compression,
    pub options: Decoding,
    pub threads: Arc<AtomicUsize>,
    pub consumed: Arc<AtomicU64>,
}

impl Dispatcher {
    /// Runs on the stream's producing thread.
    pub fn run(self, mut planner: Box<dyn Planner>, tx: BlockSender, spent: Receiver<Vec<u8>>) {
        let shared = Arc::new(Shared {
            budget: Budget::new((self.options.max_in_flight / BLOCK_LEN).max(1)),
            spent: spent.clone(),
        });
        let (jobs, job_rx) = unbounded::<Job>();
        let mut pool = Pool {
            jobs,
            job_rx,
            started: 0,
        };
        let mut queue: VecDeque<InFlight> = VecDeque::new();
        let mut planned_all = false;
        let mut fallback: Option<u64> = None;
        let mut emitted = 0u64;
        // The restart point of the units being handed on, and how many
        // decoded bytes came before it.
        let mut restart = (0u64, 0u64);
        loop {
            let threads = self.threads.load(Ordering::Relaxed).max(1);
            if !planned_all && fallback.is_none() {
                match queue_units(&mut *planner, &mut pool, &mut queue, &shared, threads) {
                    Planned::More => {}
                    Planned::All => planned_all = true,
                    Planned::Sequential(from) => fallback = Some(from),
                }
            }
            let Some(head) = queue.front_mut() else { break };
            if head.restart != restart.0 {
                restart = (head.restart, emitted);
            }
            match head.pieces.recv() {
                Ok(Msg::Piece(piece, token)) => {
                    shared.budget.release(token);
                    emitted += piece.len() as u64;
                    if tx.send(Ok(piece)).is_err() {
                        shared.budget.close();
                        return; // the reader hung up
                    }
                }
                Ok(Msg::Done) => {
                    let done = queue.pop_front().expect("the head");
                    self.consumed.store(done.compressed_end, Ordering::Relaxed);
                    shared.budget.advance(done.seq + 1);
                }
                Ok(Msg::Failed) | Err(_) => {
                    let failed = queue.pop_front().expect("the head");
                    fallback = Some(failed.restart);
                    queue.clear();
                }
            }
        }
        shared.budget.close();
        drop(pool);
        if let Some(from) = fallback {
            let skip = if from == restart.0 {
                emitted - restart.1
            } else {
                0
            };
            self.sequential(from, skip, emitted, tx, spent);
        }
    }

    /// Decodes from compressed offset `from` to the end sequentially,
    /// dropping the first `skip` decoded bytes (handed on already), the
    /// stream being `emitted` bytes long so far.
    fn sequential(
        &self,
        from: u64,
        skip: u64,
        emitted: u64,
        tx: BlockSender,
        spent: Receiver<Vec<u8>>,
    ) {
        let counted = Arc::new(AtomicU64::new(from));
        let raw = crate::source::Counting {
            inner: RangeReader::new(self.src.clone(), from..self.src.len()),
            count: counted.clone(),
        };
        let fail = |source: io::Error, offset: u64| StreamFailure {
            compression: self.compression,
            offset,
            compressed_offset: Some(counted.load(Ordering::Relaxed)),
            source,
        };
        let mut reader = match super::decoder(Box::new(raw), self.compression, &self.options, from)
        {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(fail(e, emitted)));
                return;
            }
        };
        let mut skipper = (&mut reader).take(skip);
        match io::copy(&mut skipper, &mut io::sink()) {
            Ok(n) if n == skip => {}
            Ok(n) => {
                let e = io::Error::new(
                    io::ErrorKind::InvalidData,
                    "decoded differently the second time",
                );
                let _ = tx.send(Err(fail(e, emitted - skip + n)));
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(fail(e, emitted - skip)));
                return;
            }
        }
        let consumed = self.consumed.clone();
        let count = counted.clone();
        pump(
            reader,
            self.compression,
            emitted,
            move || {
                let at = count.load(Ordering::Relaxed);
                consumed.store(at, Ordering::Relaxed);
                at
            },
            &tx,
            &spent,
        );
    }
}

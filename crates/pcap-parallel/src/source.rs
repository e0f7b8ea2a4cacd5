//! Where the bytes come from: a memory-mapped file, or a bounded stream.
//!
//! A plain file is memory-mapped and never read into the heap: its pages
//! are the kernel's page cache. Everything else (compressed input, standard
//! input, pipes and FIFOs) is a *stream*: a thread of its own reads and
//! decompresses it into blocks of [`BLOCK_LEN`] bytes and hands them over a
//! channel holding at most [`BLOCK_QUEUE`] blocks, so memory stays flat
//! however large the input, and decompression runs while the workers
//! process earlier chunks.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, bounded};

use crate::decompress::parallel::{Dispatcher, FileSource, MemSource, RangeReader, Source};
use crate::decompress::{self, Decoding};
use crate::error::{Error, Result};
use crate::format::Compression;
use crate::mapped::GuardedMap;

/// Bytes shared between the input and the chunks cut from it.
pub(crate) type Bytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Size of a block handed from the decompressing thread to the reader.
pub const BLOCK_LEN: usize = 1 << 20;
/// Blocks queued between the decompressing thread and the reader.
pub const BLOCK_QUEUE: usize = 4;

/// The opened input, before its capture format is looked at.
pub(crate) enum Input {
    /// All bytes are addressable at once (a mapped file, or bytes in
    /// memory); a mapped file comes with its map, to tell whether the file
    /// changed under it.
    Whole(Bytes, Option<Arc<GuardedMap>>),
    /// Bytes arrive in order and are seen once.
    Stream(StreamReader),
}

/// Counts bytes pulled through a reader, for progress and error offsets.
pub(crate) struct Counting<R> {
    pub inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Fills every read whole (short only at the end of input or before an
/// error, which the next read returns), so that a decompressor sees its
/// input in the same pieces whether it comes from a file, memory or a
/// pipe. With corrupt input, how much a decompressor emits before it
/// notices depends on those pieces: this way the same bytes give the same
/// output however they arrive.
struct FullReads<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R: Read> Read for FullReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if filled == 0 => return Err(e),
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        Ok(filled)
    }
}

/// A failure of the decompressing (or reading) thread, carried to the reader.
#[derive(Debug)]
pub(crate) struct StreamFailure {
    pub compression: Compression,
    /// Decompressed bytes produced before the failure.
    pub offset: u64,
    /// Compressed bytes consumed before the failure, where it is compressed.
    pub compressed_offset: Option<u64>,
    pub source: io::Error,
}

impl std::fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for StreamFailure {}

impl StreamFailure {
    /// Turns an error met while reading a stream into this crate's error.
    pub(crate) fn into_error(err: io::Error, name: &str) -> Error {
        let failure = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<StreamFailure>())
            .is_some();
        if failure {
            let f = *err
                .into_inner()
                .expect("checked")
                .downcast::<StreamFailure>()
                .expect("checked");
            let window = f
                .source
                .get_ref()
                .and_then(|e| e.downcast_ref::<decompress::WindowTooLarge>())
                .copied();
            if let Some(window) = window {
                Error::ZstdWindow {
                    name: name.to_string(),
                    window,
                    offset: f.offset,
                }
            } else if f.compression == Compression::None {
                Error::io(name, f.source)
            } else {
                Error::Decompress {
                    name: name.to_string(),
                    compression: f.compression,
                    offset: f.offset,
                    compressed_offset: f.compressed_offset,
                    error: f.source,
                }
            }
        } else {
            Error::io(name, err)
        }
    }
}

/// The reading end of a stream: blocks from the decompressing thread.
pub(crate) struct StreamReader {
    blocks: Receiver<std::result::Result<Vec<u8>, StreamFailure>>,
    spent: crossbeam_channel::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// Compressed (or raw) bytes consumed so far by the producing thread.
    pub consumed: Arc<AtomicU64>,
    /// Size of the compressed file, where known.
    pub input_len: Option<u64>,
    /// Threads decoding it, where it is decoded in parallel; the capture
    /// sets it to its worker count.
    pub decode_threads: Option<Arc<AtomicUsize>>,
    done: bool,
}

impl io::BufRead for StreamReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(&[]);
            }
            match self.blocks.recv() {
                Ok(Ok(block)) => {
                    let spent = std::mem::replace(&mut self.current, block);
                    // Hand the spent block back for reuse: no allocation, no
                    // zeroing per block. If the producer is gone, drop it.
                    if spent.capacity() >= BLOCK_LEN {
                        let _ = self.spent.try_send(spent);
                    }
                    self.pos = 0;
                }
                Ok(Err(failure)) => {
                    self.done = true;
                    return Err(io::Error::other(failure));
                }
                Err(_) => {
                    self.done = true;
                    return Ok(&[]);
                }
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.len());
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = io::BufRead::fill_buf(self)?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Starts the thread that reads (and decompresses) `raw` into blocks,
/// sequentially; progress counts the raw bytes.
fn spawn_stream(
    raw: Box<dyn Read + Send>,
    compression: Compression,
    input_len: Option<u64>,
    options: &Decoding,
) -> io::Result<StreamReader> {
    let consumed = Arc::new(AtomicU64::new(0));
    let counting = Box::new(FullReads {
        inner: Counting {
            inner: raw,
            count: consumed.clone(),
        },
        error: None,
    });
    let reader = decompress::decoder(counting, compression, options, 0)?;
    let count = consumed.clone();
    spawn_producer(
        move |tx, spent_rx| {
            pump(
                reader,
                compression,
                0,
                || count.load(Ordering::Relaxed),
                &tx,
                &spent_rx,
            )
        },
        consumed,
        input_len,
    )
}

/// Starts the decoding of a compressed input that can be read at any
/// offset: in parallel where its format lets independent units be found
/// (see [`decompress::parallel`]), else sequentially.
fn spawn_seekable(
    src: Arc<dyn Source>,
    compression: Compression,
    options: &Decoding,
) -> io::Result<StreamReader> {
    let len = src.len();
    let Some(planner) = decompress::planner(src.clone(), compression, options) else {
        let raw = Box::new(RangeReader::new(src, 0..len));
        return spawn_stream(raw, compression, Some(len), options);
    };
    let consumed = Arc::new(AtomicU64::new(0));
    let threads = Arc::new(AtomicUsize::new(
        options
            .threads
            .unwrap_or_else(crate::capture::default_workers),
    ));
    let dispatcher = Dispatcher {
        src,
        compression,
        options: options.clone(),
        threads: threads.clone(),
        consumed: consumed.clone(),
    };
    let mut stream = spawn_producer(
        move |tx, spent_rx| dispatcher.run(planner, tx, spent_rx),
        consumed,
        Some(len),
    )?;
    if options.threads.is_none() {
        stream.decode_threads = Some(threads);
    }
    Ok(stream)
}

/// Where a block-producing thread sends decoded blocks, in order.
pub(crate) type BlockSender =
    crossbeam_channel::Sender<std::result::Result<Vec<u8>, StreamFailure>>;

/// Starts `produce` on a thread of its own, sending decoded blocks to the
/// returned reader; spent blocks come back on the receiver it is given.
/// `consumed` is what progress reports, out of `input_len`.
pub(crate) fn spawn_producer(
    produce: impl FnOnce(BlockSender, Receiver<Vec<u8>>) + Send + 'static,
    consumed: Arc<AtomicU64>,
    input_len: Option<u64>,
) -> io::Result<StreamReader> {
    let (tx, rx) = bounded(BLOCK_QUEUE);
    // Spent blocks come back, so at most BLOCK_QUEUE + 2 are ever allocated.
    let (spent_tx, spent_rx) = bounded::<Vec<u8>>(BLOCK_QUEUE + 2);
    thread::Builder::new()
        .name("pcap-parallel-decompress".into())
        .spawn(move || produce(tx, spent_rx))?;
    Ok(StreamReader {
        blocks: rx,
        spent: spent_tx,
        current: Vec::new(),
        pos: 0,
        consumed,
        input_len,
        decode_threads: None,
        done: false,
    })
}

/// Reads an already decoding `reader` into blocks and sends them, until it
/// ends, fails (the failure is sent, with the decompressed offset counted
/// from `produced` and the compressed offset from `compressed_pos`), or
/// the reader hangs up.
pub(crate) fn pump(
    mut reader: Box<dyn Read + Send>,
    compression: Compression,
    mut produced: u64,
    compressed_pos: impl Fn() -> u64,
    tx: &BlockSender,
    spent_rx: &Receiver<Vec<u8>>,
) {
    loop {
        let mut block = match spent_rx.try_recv() {
            Ok(mut b) => {
                // Initialised already: no need to zero it again.
                b.truncate(BLOCK_LEN);
                b.resize(BLOCK_LEN, 0);
                b
            }
            Err(_) => vec![0u8; BLOCK_LEN],
        };
        let mut filled = 0;
        let result = loop {
            match reader.read(&mut block[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == block.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        block.truncate(filled);
        produced += filled as u64;
        if filled > 0 && tx.send(Ok(block)).is_err() {
            return; // the reader hung up
        }
        match result {
            Ok(()) if filled == 0 => return,
            Ok(()) => {}
            Err(source) => {
                let _ = tx.send(Err(StreamFailure {
                    compression,
                    offset: produced,
                    compressed_offset: (compression != Compression::None).then(&compressed_pos),
                    source,
                }));
                return;
            }
        }
    }
}

/// Opens `path` (`-` for standard input) and detects its compression.
///
/// A regular file is mapped (plain) or streamed (compressed). Anything else
/// that can be opened (a FIFO, a character device, `<(process
/// substitution)`) and a file whose size the kernel does not report (those
/// of `/proc` and `/sys` say 0) is read once, from the start, as a stream:
/// nothing is probed out of order.
pub(crate) fn open(path: &Path, options: &Decoding) -> Result<(Input, Compression)> {
    let name = path.display().to_string();
    if path.as_os_str() == "-" {
        return from_reader(Box::new(io::stdin()), &name, options);
    }
    let file = File::open(path).map_err(|e| Error::io(&name, e))?;
    let meta = file.metadata().map_err(|e| Error::io(&name, e))?;
    if !meta.is_file() || meta.len() == 0 {
        // A FIFO, a character device or a file with no size (in /proc): its
        // bytes can be read only once, and not at an offset (the head is
        // read from the stream itself).
        return from_reader(Box::new(file), &name, options);
    }
    let mut head = [0u8; Compression::MAGIC_LEN];
    let got = read_at_most(&file, &mut head).map_err(|e| Error::io(&name, e))?;
    let compression = Compression::detect(&head[..got]);
    if compression == Compression::None {
        let map = Arc::new(GuardedMap::new(file).map_err(|e| Error::io(&name, e))?);
        return Ok((Input::Whole(map.clone(), Some(map)), compression));
    }
    let stream = spawn_seekable(
        Arc::new(FileSource::new(file, meta.len())),
        compression,
        options,
    )
    .map_err(|e| Error::io(&name, e))?;
    Ok((Input::Stream(stream), compression))
}

/// Reads the first bytes of a regular file without moving its cursor.
fn read_at_most(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Bytes held in memory (for tests and for callers that have them already).
pub(crate) fn from_bytes(bytes: Bytes, options: &Decoding) -> Result<(Input, Compression)> {
    let compression = Compression::detect(&(*bytes).as_ref()[..(*bytes).as_ref().len().min(8)]);
    if compression == Compression::None {
        return Ok((Input::Whole(bytes, None), compression));
    }
    let stream = spawn_seekable(Arc::new(MemSource(bytes)), compression, options)
        .map_err(|e| Error::io("<memory>", e))?;
    Ok((Input::Stream(stream), compression))
}

/// Any reader, treated as a stream (compression detected).
pub(crate) fn from_reader(
    reader: Box<dyn Read + Send>,
    name: &str,
    options: &Decoding,
) -> Result<(Input, Compression)> {
    let (head, reader) =
        read_head(reader, Compression::MAGIC_LEN).map_err(|e| Error::io(name, e))?;
    let compression = Compression::detect(&head);
    let stream =
        spawn_stream(reader, compression, None, options).map_err(|e| Error::io(name, e))?;
    Ok((Input::Stream(stream), compression))
}

/// Reads up to `n` leading bytes, and returns them with a reader that
/// still yields every byte from the start (short reads of pipes included).
fn read_head<R: Read + Send + 'static>(
    mut reader: R,
    n: usize,
) -> io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok((head.clone(), Box::new(io::Cursor::new(head).chain(reader))))
}

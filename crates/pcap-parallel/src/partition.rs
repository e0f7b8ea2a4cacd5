//! One capture as byte-range partitions, processed anywhere and verified
//! by whoever gathers the results.
//!
//! A cluster (Dask, Spark) hands each worker a *partition*: a byte range of
//! a file, computed from the file's size alone ([`partitions`]). The worker
//! reads its range (and what its last record needs past the end) through a
//! [`RangeRead`], and [`read_partition`] finds its first record boundary by
//! the same guess as the in-process engine ([`crate::Capture`]; see
//! `docs/boundary-resync.md`), walks exactly the records that *start* inside the
//! range, and reports where its walk really started and where the last
//! record ended ([`PartitionReport`]). Whoever gathers the reports, in file
//! order, checks with a [`Verifier`] that each partition starts where the
//! one before it ended, in the same state: the same induction as the
//! engine's verification. A partition whose guess was wrong is read again
//! from the right place ([`Entry::Exact`]), so the union of the partitions
//! is exactly what a sequential reader sees, whatever the payloads hold.
//!
//! ```
//! use pcap_parallel::partition::{self, LocalFile};
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
//! let file = LocalFile::open(path)?;
//! let parts = partition::partitions(std::fs::metadata(path)?.len(), 4096);
//! let run = partition::read_partitions(&file, &parts, 2, |chunk| chunk.packet_count());
//! assert!(run.error.is_none());
//! let total: u64 = run.results.iter().map(|r| r.value).sum();
//! assert_eq!(total, pcap_parallel::Capture::open(path)?.count()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What a partition reads, and what it costs
//!
//! * **The head of the file.** pcap: the 24-byte file header. pcapng: the
//!   section header at offset 0 and the blocks right after it that the
//!   section keeps (interface descriptions, decryption secrets, name
//!   resolution), up to the first other block: usually a few hundred bytes.
//!   A partition assumes that this is the state in force where it starts.
//!   The assumption is checked like the boundary: a file with several
//!   sections, or interfaces described after packets, has partitions whose
//!   assumption is wrong, and they are read again with the state the
//!   partition before them ended with (counted in
//!   [`Verifier::recomputed`]). Nothing is read backwards.
//! * **Its range, and a little more.** The guess needs the chains of its
//!   candidates (32 records each, as the design note says) and the walk needs the last
//!   record whole: the range is read with 64 KiB more, and more again (the
//!   extra doubling) only when the answer depends on bytes not read yet.
//!   The guess is exactly the engine's on the whole file.
//! * **Packet numbers** are not known to a partition (they depend on every
//!   packet before it): [`read_partition`]'s chunk numbers its packets from
//!   1, and the verifier gives each partition the number of its first
//!   packet in the capture.
//! * **Compressed files** cannot be entered at a byte offset: they are one
//!   partition each, read whole with [`crate::Capture`] (independent zstd
//!   frames, xz blocks, BGZF or bzip2 blocks are not used for partitions
//!   yet); [`read_partition`] refuses them.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::chunk::{Chunk, Context};
use crate::chunker::par_map;
use crate::error::{Error, Fault, FormatError, Result};
use crate::format::{CaptureFormat, Compression, Endian};
use crate::locator::ChunkContext;
use crate::mapped::GuardedMap;
use crate::pcap::{self, PcapHeader};
use crate::pcapng::Section;
use crate::resync::{Guess, Horizon, find_boundary_windowed};
use crate::source::Bytes;
use crate::walk::{Interfaces, Kind, Limits, Walker, scan};

/// Input read by byte ranges: a local file ([`LocalFile`]), bytes in
/// memory, or (from the Python bindings) an object store through fsspec.
pub trait RangeRead: Send + Sync {
    /// The input's name, for errors.
    fn name(&self) -> String;
    /// The input's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`: fewer only at the end of
    /// the input.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Whether the input is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// The whole input mapped in memory, for readers that have it (a
    /// [`LocalFile`]): [`read_partition`] then reads its range in place,
    /// without copying it. None (the default): by [`RangeRead::read_at`].
    fn mapped(&self) -> Option<MappedInput> {
        None
    }
}

/// A whole input mapped in memory (see [`RangeRead::mapped`]), guarded
/// against the file shrinking under the map as [`crate::Capture::open`]'s
/// maps are.
#[derive(Clone)]
pub struct MappedInput(Arc<GuardedMap>);

impl MappedInput {
    /// Has the file shrunk since it was mapped?
    fn changed(&self) -> bool {
        self.0.changed()
    }

    /// The mapped bytes.
    fn bytes(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

impl std::fmt::Debug for MappedInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedInput")
            .field("len", &self.bytes().len())
            .finish()
    }
}

/// A local file: memory-mapped when it is a regular file with bytes in it
/// (partitions are then read in place, see [`RangeRead::mapped`]), else
/// read with positioned reads (`pread`).
pub struct LocalFile {
    name: String,
    file: std::fs::File,
    map: Option<MappedInput>,
}

impl std::fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFile")
            .field("name", &self.name)
            .field("mapped", &self.map.is_some())
            .finish()
    }
}

impl LocalFile {
    /// Opens `path` for reading, and maps it if it is a regular file that
    /// is not empty.
    pub fn open(path: impl AsRef<Path>) -> Result<LocalFile> {
        let name = path.as_ref().display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::io(&name, e))?;
        let meta = file.metadata().map_err(|e| Error::io(&name, e))?;
        let map = if meta.is_file() && meta.len() > 0 {
            let clone = file.try_clone().map_err(|e| Error::io(&name, e))?;
            let map = GuardedMap::new(clone).map_err(|e| Error::io(&name, e))?;
            Some(MappedInput(Arc::new(map)))
        } else {
            None
        };
        Ok(LocalFile { name, file, map })
    }
}

impl RangeRead for LocalFile {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn len(&self) -> io::Result<u64> {
        match &self.map {
            // The length of what is mapped: the view every read shares.
            Some(m) => Ok(m.bytes().len() as u64),
            None => Ok(self.file.metadata()?.len()),
        }
    }

    fn mapped(&self) -> Option<MappedInput> {
        self.map.clone()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match std::os::unix::fs::FileExt::read_at(
                &self.file,
                &mut buf[done..],
                offset + done as u64,
            ) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// Bytes in memory, named.
#[derive(Debug, Clone)]
pub struct InMemory {
    /// The name errors give.
    pub name: String,
    /// The input.
    pub bytes: Arc<[u8]>,
}

impl RangeRead for InMemory {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset).map_or(self.bytes.len(), |o| o.min(self.bytes.len()));
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
}

/// A byte range of a capture, to be processed on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition {
    /// Position in file order, from 0.
    pub index: usize,
    /// The bytes whose records the partition delivers: those that start
    /// inside it.
    pub range: Range<u64>,
}

/// Cuts `len` bytes into partitions of `target_bytes` (the last one takes
/// the rest): no byte of the file is read. A file of `len` 0 has one empty
/// partition.
///
/// ```
/// let parts = pcap_parallel::partition::partitions(250, 100);
/// let ranges: Vec<_> = parts.iter().map(|p| p.range.clone()).collect();
/// assert_eq!(ranges, [0..100, 100..200, 200..250]);
/// ```
pub fn partitions(len: u64, target_bytes: u64) -> Vec<Partition> {
    let step = target_bytes.max(1);
    let count = len.div_ceil(step).max(1);
    (0..count)
        .map(|i| Partition {
            index: i as usize,
            range: i * step..((i + 1) * step).min(len),
        })
        .collect()
}

/// A record boundary and the state a sequential reader is in there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    /// Byte offset of the record.
    pub offset: u64,
    /// What the records from there on need (file header, pcapng section).
    pub context: ChunkContext,
}

/// Where a partition's walk begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Guess the first boundary in the range (partition 0: after the file
    /// header), assuming the state at the head of the file.
    Guess,
    /// Start exactly there (a partition read again after verification).
    Exact(Boundary),
    /// A partition the driver has verified, read again for its records
    /// (to build its table, say): see [`Verified`].
    Verified(Verified),
}

/// What a verified partition's report said: where its records start and
/// end, in which state, and how many packets they hold.
///
/// [`read_partition`] then cuts the chunk from these values without
/// walking the records again when nothing in them can change the state:
/// always for pcap, and for pcapng when the state at `exit` is the state
/// at `start` (no section header or interface description inside).
/// Otherwise it walks from `start` as for [`Entry::Exact`]. Records are
/// not checked again on the fast path: a chunk's packet iterator ends at
/// anything it cannot read, so a file rewritten since the survey gives
/// fewer packets than `packets` — compare the packets used with it (the
/// Python bindings' `read_table` does), and check
/// [`PartitionRead::input_changed`] for a file that shrank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The partition's first record and the state there (its report's
    /// `entry`).
    pub start: Boundary,
    /// Where its last record ended and the state there (its report's
    /// `exit`). For a partition that stopped at a fault, the fault's
    /// offset: the records before it are read, and the report of the read
    /// does not repeat the fault.
    pub exit: Boundary,
    /// Packets between the two.
    pub packets: u64,
}

/// A fault met by a partition's walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFault {
    /// Byte offset of the record that could not be read.
    pub offset: u64,
    /// Packets of the partition before it.
    pub packets_before: u64,
    /// What was wrong.
    pub fault: Fault,
}

impl PartitionFault {
    /// The error to give for the fault of a partition with
    /// `packets_before` packets of the capture before it.
    pub fn to_error(&self, name: &str, packets_before: u64) -> Error {
        Error::Format(FormatError {
            name: name.to_string(),
            offset: self.offset,
            packet: packets_before + self.packets_before + 1,
            fault: self.fault.clone(),
        })
    }
}

/// What a partition's walk found: all the driver needs to verify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// The partition's index.
    pub index: usize,
    /// Where the walk began and the state it assumed; `None` when no
    /// boundary could be guessed.
    pub entry: Option<Boundary>,
    /// Where the walk ended (the first record at or after the range's end,
    /// or the end of the input) and the state there.
    pub exit: Boundary,
    /// Packets walked.
    pub packets: u64,
    /// The fault that stopped the walk, if any (at `exit.offset`).
    pub fault: Option<PartitionFault>,
}

/// A partition read: its records as a chunk (packets numbered from 1), and
/// the report to verify it by.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    /// The records walked (those before any fault).
    pub chunk: Chunk,
    /// Where the walk began and ended.
    pub report: PartitionReport,
    /// The mapped input the chunk's bytes are in, if they are.
    map: Option<MappedInput>,
    /// The state the file's head gives a guessed start (None for a read
    /// of verified bounds, which does not read the head).
    head: Option<Context>,
}

impl PartitionRead {
    /// Has the input file shrunk since the partition was read (its chunk
    /// is then in a map whose vanished pages read as zeros)? Check after
    /// using the chunk, before trusting what was computed from it; a read
    /// copied into memory never changes.
    pub fn input_changed(&self) -> bool {
        self.map.as_ref().is_some_and(MappedInput::changed)
    }

    /// The state the file's head gives a partition whose start is guessed
    /// (see [`head_context`]), as read for this partition; None for a
    /// read of verified bounds.
    pub fn head_context(&self) -> Option<ChunkContext> {
        self.head.as_ref().map(ChunkContext::of)
    }

    /// The read, unless its file shrank under `map` while it was made.
    fn checked(
        name: String,
        chunk: Chunk,
        report: PartitionReport,
        map: Option<MappedInput>,
        head: Option<Context>,
    ) -> Result<PartitionRead> {
        let read = PartitionRead {
            chunk,
            report,
            map,
            head,
        };
        match read.input_changed() {
            true => Err(Error::InputChanged { name }),
            false => Ok(read),
        }
    }

    /// The chunk, its packets numbered as in the capture, given the
    /// packets before the partition (from the [`Verifier`]).
    pub fn into_chunk(self, packets_before: u64) -> Chunk {
        Chunk {
            packets_before,
            ..self.chunk
        }
    }
}

/// Extra bytes read past a range at first.
const LOOKAHEAD: u64 = 64 << 10;

/// Bytes read of the head of a pcapng file to find its first section's
/// state, at most (then it is assumed empty of interfaces; verification
/// corrects what that gets wrong).
const MAX_HEAD: u64 = 16 << 20;

/// Bytes of the head of a pcapng file read at first.
const HEAD: u64 = 4 << 10;

/// A stretch of the input in memory: read into a buffer, or the whole of
/// a mapped input.
struct Window {
    base: u64,
    bytes: WindowBytes,
    /// The stretch reaches the end of the input.
    eof: bool,
}

/// The bytes of a [`Window`].
enum WindowBytes {
    Read(Vec<u8>),
    /// The whole input (`base` is 0), read in place.
    Mapped(MappedInput),
}

impl std::ops::Deref for WindowBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            WindowBytes::Read(v) => v,
            WindowBytes::Mapped(m) => m.bytes(),
        }
    }
}

impl WindowBytes {
    /// The map the bytes are read in place from, if they are.
    fn map(&self) -> Option<MappedInput> {
        match self {
            WindowBytes::Mapped(m) => Some(m.clone()),
            WindowBytes::Read(_) => None,
        }
    }

    fn into_shared(self) -> Bytes {
        match self {
            WindowBytes::Read(v) => Arc::new(v),
            WindowBytes::Mapped(m) => m.0,
        }
    }
}

impl Window {
    fn read(src: &dyn RangeRead, base: u64, end: u64, len: u64) -> Result<Window> {
        if let Some(map) = src.mapped() {
            return Ok(Window {
                base: 0,
                bytes: WindowBytes::Mapped(map),
                eof: true,
            });
        }
        let mut w = Window {
            base,
            bytes: WindowBytes::Read(Vec::new()),
            eof: false,
        };
        w.extend_to(src, end, len)?;
        Ok(w)
    }

    /// Reads on up to `end` (or the end of the input, `len`); a mapped
    /// window holds all of it already.
    fn extend_to(&mut self, src: &dyn RangeRead, end: u64, len: u64) -> Result<()> {
        let WindowBytes::Read(bytes) = &mut self.bytes else {
            return Ok(());
        };
        let end = end.min(len);
        let have = self.base + bytes.len() as u64;
        if end > have {
            let old = bytes.len();
            let more = usize::try_from(end - have).map_err(|_| {
                let big = io::Error::other("a partition larger than the address space");
                Error::io(&src.name(), big)
            })?;
            bytes.resize(old + more, 0);
            let n = src
                .read_at(have, &mut bytes[old..])
                .map_err(|e| Error::io(&src.name(), e))?;
            bytes.truncate(old + n);
        }
        self.eof = self.base + bytes.len() as u64 >= len;
        Ok(())
    }

    /// Reads twice as far past `at_least` as the window reaches past it now.
    fn grow(&mut self, src: &dyn RangeRead, at_least: u64, len: u64) -> Result<()> {
        let end = self.base + self.bytes.len() as u64;
        let extra = end.saturating_sub(at_least).max(LOOKAHEAD);
        self.extend_to(src, at_least.max(end).saturating_add(extra), len)
    }

    fn horizon(&self) -> Horizon {
        if self.eof {
            Horizon::EndOfInput
        } else {
            Horizon::WindowOfFile
        }
    }
}

/// What the head of the file says: how to walk it and the state assumed.
struct Head {
    /// The walker the engine guesses with.
    guesser: Walker,
    /// Offset of the first record.
    data_start: u64,
    /// pcapng: byte order of the first block.
    hint: Endian,
    /// The state assumed at a guessed boundary.
    assumed: Context,
    /// The state at the first record (`data_start`).
    initial: Context,
}

/// Reads the head of the input: the format, and the state a partition
/// assumes where it starts (see the [module docs](self)).
fn read_head(src: &dyn RangeRead, len: u64, limits: Limits) -> Result<Head> {
    let name = src.name();
    let format_error = |offset: u64, fault| {
        Error::Format(FormatError {
            name: name.clone(),
            offset,
            packet: 1,
            fault,
        })
    };
    let mut w = Window::read(src, 0, pcap::FILE_HEADER_LEN as u64, len)?;
    let compression = Compression::detect(&w.bytes);
    if compression != Compression::None {
        return Err(Error::CompressedPartition { name, compression });
    }
    match CaptureFormat::detect(&w.bytes) {
        Some(CaptureFormat::Pcap { .. }) => {
            let h = PcapHeader::parse(&w.bytes, limits.max_packet_len)
                .map_err(|f| format_error(0, f))?;
            let h = Arc::new(h);
            Ok(Head {
                guesser: Walker::Pcap(h.clone()),
                data_start: pcap::FILE_HEADER_LEN as u64,
                hint: h.endian,
                assumed: Context::Pcap(h.clone()),
                initial: Context::Pcap(h),
            })
        }
        Some(CaptureFormat::Pcapng) => {
            let guesser = Walker::Pcapng {
                endian: None,
                interfaces: Interfaces::Known(0),
                limits,
            };
            let mut walker = guesser.clone();
            let mut section = None;
            let mut off = 0usize;
            w.extend_to(src, HEAD, len)?;
            loop {
                match walker.step(&w.bytes, off) {
                    Ok(Some((n, Kind::SectionState))) => {
                        section = Section::apply(&w.bytes, off, 0, section.take());
                        off += n;
                    }
                    Err(f) if f.is_truncation() && !w.eof && (w.bytes.len() as u64) < MAX_HEAD => {
                        w.grow(src, off as u64, len)?;
                    }
                    _ => break,
                }
            }
            let hint = section.as_ref().map_or(Endian::Little, |s| s.endian);
            Ok(Head {
                guesser,
                data_start: 0,
                hint,
                assumed: Context::Pcapng(section),
                initial: Context::Pcapng(None),
            })
        }
        None => Err(Error::UnknownFormat {
            name,
            what: crate::format::describe_non_capture(&w.bytes),
        }),
    }
}

/// The state the head of `src` gives a partition whose start is guessed:
/// the pcap file header, or the first pcapng section's header and the
/// blocks right after it (what every guessed partition of the file starts
/// from, so a report may name it instead of carrying it).
pub fn head_context(src: &dyn RangeRead, limits: Limits) -> Result<ChunkContext> {
    let name = src.name();
    let len = src.len().map_err(|e| Error::io(&name, e))?;
    Ok(ChunkContext::of(&read_head(src, len, limits)?.assumed))
}

/// Reads one partition of `src`: finds its first record boundary (or
/// starts at `entry`'s), walks the records that start inside its range,
/// and reports where it began and ended. A fault stops the walk: the
/// records before it are in the chunk, the fault in the report. Errors are
/// those of reading the input, and of its head (not a capture, compressed).
pub fn read_partition(
    src: &dyn RangeRead,
    part: &Partition,
    entry: &Entry,
    limits: Limits,
) -> Result<PartitionRead> {
    let name = src.name();
    let len = src.len().map_err(|e| Error::io(&name, e))?;
    let past_end = match entry {
        Entry::Exact(b) => b.offset > len,
        Entry::Verified(v) => v.start.offset > len || v.exit.offset > len,
        Entry::Guess => part.range.start > len,
    };
    if past_end {
        // The boundary was found in a longer file: it changed since (or
        // the entry is not one this file gave).
        return Err(Error::InputChanged { name });
    }
    if let Entry::Verified(v) = entry
        && let Some(read) = read_verified(src, part, v, len, limits)?
    {
        return Ok(read);
    }
    let head = read_head(src, len, limits)?;
    let stop = part.range.end.min(len);
    let (from, assumed, exact) = match entry {
        Entry::Exact(b) | Entry::Verified(Verified { start: b, .. }) => {
            (b.offset, b.context.rebuild(&name, limits)?.0, true)
        }
        Entry::Guess if part.range.start <= head.data_start => {
            (head.data_start, head.initial.clone(), true)
        }
        Entry::Guess => (part.range.start, head.assumed.clone(), false),
    };
    // pcapng candidates are 4-byte aligned in the input: so is the window.
    let base = from - from % 4;
    let mut w = Window::read(src, base, stop.max(from).saturating_add(LOOKAHEAD), len)?;
    let start = if exact {
        Some(from)
    } else {
        guess(src, &mut w, &head, from, len)?
    };
    let Some(start) = start else {
        let exit = Boundary {
            offset: stop,
            context: ChunkContext::of(&assumed),
        };
        let chunk = chunk_of(part.index, Arc::new(Vec::new()), 0..0, stop, 0, assumed);
        let report = PartitionReport {
            index: part.index,
            entry: None,
            exit,
            packets: 0,
            fault: None,
        };
        return Ok(PartitionRead {
            chunk,
            report,
            map: None,
            head: Some(head.assumed),
        });
    };
    let walked = walk(src, &mut w, &assumed, start, stop, len, limits)?;
    let local = (start - w.base) as usize..(walked.end - w.base) as usize;
    let exit = Boundary {
        offset: walked.end,
        context: ChunkContext::of(&walked.exit),
    };
    let map = w.bytes.map();
    let mut chunk = chunk_of(
        part.index,
        w.bytes.into_shared(),
        local,
        start,
        walked.packets,
        assumed.clone(),
    );
    chunk.described = walked.described.into();
    let report = PartitionReport {
        index: part.index,
        entry: Some(Boundary {
            offset: start,
            context: ChunkContext::of(&assumed),
        }),
        exit,
        packets: walked.packets,
        fault: walked.fault.map(|fault| PartitionFault {
            offset: walked.end,
            packets_before: walked.packets,
            fault,
        }),
    };
    PartitionRead::checked(name, chunk, report, map, Some(head.assumed))
}

/// [`Entry::Verified`] without a walk: the chunk cut from the verified
/// values, when its records cannot change the state; `None` when they
/// may, and must be walked.
fn read_verified(
    src: &dyn RangeRead,
    part: &Partition,
    v: &Verified,
    len: u64,
    limits: Limits,
) -> Result<Option<PartitionRead>> {
    if v.start.context != v.exit.context || v.exit.offset < v.start.offset {
        return Ok(None);
    }
    let name = src.name();
    let w = Window::read(src, v.start.offset, v.exit.offset, len)?;
    if v.exit.offset > w.base + w.bytes.len() as u64 {
        // The records are no longer all there.
        return Err(Error::InputChanged { name });
    }
    let (assumed, _) = v.start.context.rebuild(&name, limits)?;
    let local = (v.start.offset - w.base) as usize..(v.exit.offset - w.base) as usize;
    let map = w.bytes.map();
    let data = w.bytes.into_shared();
    let chunk = chunk_of(part.index, data, local, v.start.offset, v.packets, assumed);
    let report = PartitionReport {
        index: part.index,
        entry: Some(v.start.clone()),
        exit: v.exit.clone(),
        packets: v.packets,
        fault: None,
    };
    PartitionRead::checked(name, chunk, report, map, None).map(Some)
}

fn chunk_of(
    index: usize,
    data: Bytes,
    range: Range<usize>,
    offset: u64,
    packets: u64,
    context: Context,
) -> Chunk {
    Chunk {
        index,
        data,
        range,
        offset,
        packets_before: 0,
        packet_count: packets,
        context,
        described: Arc::new([]),
        filter: None,
        gaps: Arc::new([]),
        origin: crate::chunk::Origin::unknown(),
    }
}

/// The engine's guess at the first boundary at or after `from`, reading
/// more of the input as long as the answer depends on it.
fn guess(
    src: &dyn RangeRead,
    w: &mut Window,
    head: &Head,
    from: u64,
    len: u64,
) -> Result<Option<u64>> {
    loop {
        let local = (from - w.base) as usize;
        match find_boundary_windowed(&head.guesser, &w.bytes, local, head.hint, w.horizon()) {
            Guess::Found(at, _) => return Ok(Some(w.base + at as u64)),
            Guess::NotFound => return Ok(None),
            Guess::NeedMore if w.eof => return Ok(None),
            Guess::NeedMore => {
                let end = w.base + w.bytes.len() as u64;
                w.grow(src, end, len)?;
            }
        }
    }
}

/// What a partition's walk found.
struct Walked {
    end: u64,
    packets: u64,
    fault: Option<Fault>,
    /// pcapng: the section's state after each state block met.
    described: Vec<Arc<Section>>,
    /// The state at `end`.
    exit: Context,
}

/// Walks from `start` (in state `assumed`) to the first record that starts
/// at or after `stop`, reading on while the last record is cut short by the
/// end of the window.
fn walk(
    src: &dyn RangeRead,
    w: &mut Window,
    assumed: &Context,
    start: u64,
    stop: u64,
    len: u64,
    limits: Limits,
) -> Result<Walked> {
    let mut walker = match assumed {
        Context::Pcap(h) => Walker::Pcap(h.clone()),
        Context::Pcapng(s) => Walker::Pcapng {
            endian: s.as_ref().map(|s| s.endian),
            interfaces: Interfaces::Known(s.as_ref().map_or(0, |s| s.interfaces.len())),
            limits,
        },
    };
    let mut section = match assumed {
        Context::Pcapng(s) => s.clone(),
        Context::Pcap(_) => None,
    };
    let mut at = start;
    let mut packets = 0;
    let mut described = Vec::new();
    loop {
        let stop_local = (stop.max(at) - w.base) as usize;
        let s = scan(
            &w.bytes,
            (at - w.base) as usize,
            stop_local,
            walker,
            u64::MAX,
        );
        packets += s.packets;
        for &off in &s.state_blocks {
            section = Section::apply(&w.bytes, off, w.base, section.take());
            described.extend(section.clone());
        }
        at = w.base + s.end as u64;
        walker = s.walker;
        match s.fault {
            Some(f) if f.is_truncation() && !w.eof => w.grow(src, at, len)?,
            fault => {
                let exit = match assumed {
                    Context::Pcap(h) => Context::Pcap(h.clone()),
                    Context::Pcapng(_) => Context::Pcapng(section),
                };
                return Ok(Walked {
                    end: at,
                    packets,
                    fault,
                    described,
                    exit,
                });
            }
        }
    }
}

/// Checks partition reports in file order: each must start where the one
/// before it ended, in the same state (partition 0 starts after the file
/// header by construction). See the [module docs](self).
#[derive(Debug)]
pub struct Verifier {
    name: String,
    expected: Option<Boundary>,
    packets_before: u64,
    recomputed: usize,
    stopped: bool,
}

/// What the verifier makes of a report.
#[derive(Debug)]
pub enum Verdict {
    /// The partition is exact: its first packet is number
    /// `packets_before + 1` of the capture. With a fault, its records
    /// before the fault are the last of the capture that can be read, and
    /// `error` says where and why (no later partition is accepted).
    Accepted {
        /// Packets of the capture before the partition.
        packets_before: u64,
        /// The fault the partition's walk stopped at, as the error to give.
        error: Option<Error>,
    },
    /// The partition did not start where the one before it ended (or not
    /// in the same state): read it again from there, and check that.
    Recompute(Entry),
    /// A partition after a fault: nothing of it is read.
    AfterFault,
}

impl Verifier {
    /// A verifier for the partitions of the input named `name`.
    pub fn new(name: impl Into<String>) -> Verifier {
        Verifier {
            name: name.into(),
            expected: None,
            packets_before: 0,
            recomputed: 0,
            stopped: false,
        }
    }

    /// Checks the next report in file order (the first is partition 0).
    pub fn check(&mut self, report: &PartitionReport) -> Verdict {
        if self.stopped {
            return Verdict::AfterFault;
        }
        let joins = match (&self.expected, &report.entry) {
            (None, _) => true,
            (Some(e), Some(entry)) => e == entry,
            (Some(_), None) => false,
        };
        if !joins {
            self.recomputed += 1;
            let exact = self
                .expected
                .clone()
                .expect("only partition 0 has no expectation");
            return Verdict::Recompute(Entry::Exact(exact));
        }
        let packets_before = self.packets_before;
        self.packets_before += report.packets;
        self.expected = Some(report.exit.clone());
        let error = report.fault.as_ref().map(|f| {
            self.stopped = true;
            f.to_error(&self.name, packets_before)
        });
        Verdict::Accepted {
            packets_before,
            error,
        }
    }

    /// Partitions read again because their start or state was wrong.
    pub fn recomputed(&self) -> usize {
        self.recomputed
    }

    /// Packets accepted so far.
    pub fn packets(&self) -> u64 {
        self.packets_before
    }
}

/// One verified partition's result.
#[derive(Debug)]
pub struct PartitionResult<T> {
    /// Where the partition's records are.
    pub report: PartitionReport,
    /// Number of its first packet in the capture.
    pub first_packet_number: u64,
    /// What the function gave for it.
    pub value: T,
}

/// The results of [`read_partitions`], in file order.
#[derive(Debug)]
pub struct Partitioned<T> {
    /// One per partition up to (and including) the one with a fault.
    pub results: Vec<PartitionResult<T>>,
    /// Partitions read again after verification.
    pub recomputed: usize,
    /// What stopped the reading: a fault in the capture (every packet
    /// before it is in `results`) or an error reading the input.
    pub error: Option<Error>,
}

/// The driver: reads every partition on `workers` threads, applies `f` to
/// each chunk (packets numbered from 1 within it), verifies the reports in
/// file order and reads again, on this thread, the partitions whose guess
/// was wrong. What a cluster does with [`read_partition`] and [`Verifier`],
/// in one process.
pub fn read_partitions<T: Send>(
    src: &dyn RangeRead,
    parts: &[Partition],
    workers: usize,
    f: impl Fn(&Chunk) -> T + Sync,
) -> Partitioned<T> {
    let limits = Limits::default();
    let read = |part: &Partition, entry: &Entry| {
        read_partition(src, part, entry, limits).map(|r| (r.report, f(&r.chunk)))
    };
    let first = par_map(parts.len(), workers, |i| read(&parts[i], &Entry::Guess));
    let mut verifier = Verifier::new(src.name());
    let mut out = Partitioned {
        results: Vec::with_capacity(parts.len()),
        recomputed: 0,
        error: None,
    };
    for (part, mut done) in parts.iter().zip(first) {
        loop {
            let (report, value) = match done {
                Ok(r) => r,
                Err(e) => {
                    out.error = Some(e);
                    out.recomputed = verifier.recomputed();
                    return out;
                }
            };
            match verifier.check(&report) {
                Verdict::Accepted {
                    packets_before,
                    error,
                } => {
                    out.results.push(PartitionResult {
                        report,
                        first_packet_number: packets_before + 1,
                        value,
                    });
                    out.error = error;
                    break;
                }
                Verdict::Recompute(entry) => done = read(part, &entry),
                Verdict::AfterFault => break,
            }
        }
        if out.error.is_some() {
            break;
        }
    }
    out.recomputed = verifier.recomputed();
    out
}

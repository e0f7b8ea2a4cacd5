//! A chunk described as plain data, to be processed anywhere.
//!
//! A [`Chunk`] shares its bytes with the memory map of the process that cut
//! it. To process it in another process (a Python worker, a cluster node),
//! describe it as a [`ChunkLocator`]: where its records are (a byte range of
//! a file, or the records themselves for input that was streamed), which
//! packet number it starts with, and the context its records need to be read
//! on their own — the pcap file header, or the pcapng section header and the
//! interface descriptions in force where it starts. A locator is small for a
//! chunk of a file (a few hundred bytes, whatever the chunk's size), encodes
//! to bytes ([`ChunkLocator::encode`]) and back ([`ChunkLocator::decode`]),
//! and [`ChunkLocator::open`] rebuilds the chunk wherever the file can be
//! read: the range is mapped (only the range), walked once, and checked
//! against the description, so a file that changed in between is an error,
//! never a wrong result.
//!
//! ```
//! use pcap_parallel::{Capture, Split, locator::ChunkLocator};
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
//! // Describe the chunks in one place...
//! let locators: Vec<Vec<u8>> = Capture::open(path)?
//!     .split(Split::Chunks(4))
//!     .map(|chunk| ChunkLocator::in_file(chunk, path).encode())?;
//! // ...and process them somewhere else.
//! let mut packets = 0;
//! for bytes in &locators {
//!     let chunk = ChunkLocator::decode(bytes)?.open()?;
//!     packets += chunk.packets().count();
//! }
//! assert_eq!(packets as u64, Capture::open(path)?.count()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::chunk::{Chunk, ChunkParts, Context, Gap, Origin};
use crate::error::{Error, FormatError, Result};
use crate::filter::Filter;
use crate::mapped::GuardedMap;
use crate::pcap::PcapHeader;
use crate::pcapng::Section;
use crate::source::Bytes;
use crate::walk::{Interfaces, Limits, Walker, scan};

/// What the records of a chunk need before them to be read on their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkContext {
    /// pcap: the file header, and the largest captured length accepted.
    Pcap {
        /// The 24 bytes of the file header, as in the file.
        header: Vec<u8>,
        /// Records claiming more captured bytes are malformed.
        max_caplen: u32,
    },
    /// pcapng: the section in force where the chunk starts.
    Pcapng {
        /// `None` when the chunk starts with its own section header.
        section: Option<SectionBlocks>,
    },
}

/// A pcapng section as blocks: its header, then the interface descriptions
/// known where a chunk starts and the blocks carried into every part of the
/// section (decryption secrets, name resolution), exactly as in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionBlocks {
    /// Byte offset of the section header in the (decompressed) input.
    pub offset: u64,
    /// The SHB followed by the IDBs, then the carried blocks.
    pub blocks: Vec<u8>,
}

/// Where a chunk's records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// At the chunk's byte range of this plain (uncompressed) file.
    File(PathBuf),
    /// Right here: the records themselves (for streamed input).
    Inline(Arc<[u8]>),
}

/// A chunk described as data; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkLocator {
    /// Position of the chunk in file order, from 0.
    pub index: usize,
    /// The chunk's records in the (decompressed) input.
    pub byte_range: Range<u64>,
    /// Number (1-based) of the chunk's first packet in the whole capture.
    pub first_packet_number: u64,
    /// Packets in the chunk (before any filter).
    pub packet_count: u64,
    /// What the records need before them.
    pub context: ChunkContext,
    /// Where the records are.
    pub placement: Placement,
    /// The tcpdump expression the chunk's packets pass through, if any.
    pub filter: Option<String>,
    /// Damage passed over inside the chunk (under `OnError::Skip`), in
    /// order: where in the records, how many bytes, and the input offset of
    /// the record after it.
    pub(crate) gaps: Vec<Gap>,
}

/// A locator's bytes that cannot be decoded, or that do not describe what is
/// found where they point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocatorError {
    /// The bytes are not an encoded locator (or of another version).
    #[error("not a chunk locator: {0}")]
    Malformed(&'static str),
    /// The records found at the byte range are not those described: the
    /// file changed since the chunk was cut.
    #[error(
        "{name}: bytes {start}..{end} no longer hold the chunk that was cut there \
         ({found_packets} of {packets} packets, walk ended at byte {found_end}); \
         the file changed"
    )]
    Changed {
        /// The file.
        name: String,
        /// The chunk's byte range.
        start: u64,
        /// End of the chunk's byte range.
        end: u64,
        /// Packets the chunk was cut with.
        packets: u64,
        /// Packets found.
        found_packets: u64,
        /// Where the walk of the records ended.
        found_end: u64,
    },
}

impl ChunkLocator {
    /// Describes `chunk`, whose records are at its byte range of the plain
    /// file `path` (a chunk of a capture opened from that path, memory-mapped).
    pub fn in_file(chunk: &Chunk, path: impl Into<PathBuf>) -> ChunkLocator {
        ChunkLocator::describe(chunk, Placement::File(path.into()))
    }

    /// Describes `chunk` with a copy of its records (for chunks of streamed
    /// input, which exist nowhere else).
    pub fn inline(chunk: &Chunk) -> ChunkLocator {
        ChunkLocator::describe(chunk, Placement::Inline(chunk.raw_bytes().into()))
    }

    fn describe(chunk: &Chunk, placement: Placement) -> ChunkLocator {
        let context = ChunkContext::of(&chunk.context);
        ChunkLocator {
            index: chunk.index(),
            byte_range: chunk.byte_range(),
            first_packet_number: chunk.first_packet_number(),
            packet_count: chunk.packet_count(),
            context,
            placement,
            filter: chunk.filter().map(|f| f.expression().to_string()),
            gaps: chunk.gaps.to_vec(),
        }
    }

    /// The name errors give the chunk's input: the file, or `<chunk N>`.
    pub fn name(&self) -> String {
        match &self.placement {
            Placement::File(p) => p.display().to_string(),
            Placement::Inline(_) => format!("<chunk {}>", self.index),
        }
    }

    /// Byte length of the chunk as a standalone capture, before any filter:
    /// its context (for pcapng, the whole section state) and its records.
    pub fn len_hint(&self) -> u64 {
        let context = match &self.context {
            ChunkContext::Pcap { header, .. } => header.len(),
            ChunkContext::Pcapng { section } => section.as_ref().map_or(0, |s| s.blocks.len()),
        };
        context as u64 + (self.byte_range.end - self.byte_range.start)
    }

    /// Rebuilds the chunk: maps its byte range of the file (or takes the
    /// inline records), walks the records once and checks they are what was
    /// described. A fault inside is a [`FormatError`] naming the file, the
    /// byte offset and the packet number; records that walk cleanly but do
    /// not match are [`LocatorError::Changed`].
    pub fn open(&self) -> Result<Chunk> {
        let name = self.name();
        let len = (self.byte_range.end - self.byte_range.start) as usize;
        let mut guard = None;
        let data: Bytes = match &self.placement {
            Placement::Inline(records) if records.len() == len => Arc::new(records.clone()),
            Placement::Inline(_) => {
                return Err(LocatorError::Malformed("inline records of the wrong length").into());
            }
            Placement::File(_) if len == 0 => Arc::new(Vec::new()),
            Placement::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| Error::io(&name, e))?;
                let size = file.metadata().map_err(|e| Error::io(&name, e))?.len();
                if size < self.byte_range.end {
                    // A stale locator (the file shrank since), or a range
                    // past the end: never mapped, as a read of pages past
                    // the end would fault.
                    return Err(self.changed(&name, 0, size.saturating_sub(self.byte_range.start)));
                }
                // Guarded like the engine's maps: a file truncated while
                // the chunk is in use reads as zeros and is reported by
                // `Chunk::input_changed`, never a SIGBUS.
                let map = GuardedMap::range(file, self.byte_range.start, len)
                    .map_err(|e| Error::io(&name, e))?;
                if map.as_ref().len() != len {
                    return Err(self.changed(&name, 0, map.as_ref().len() as u64));
                }
                let map = Arc::new(map);
                guard = Some(map.clone());
                map
            }
        };
        let (context, walker) = self.rebuild_context(&name)?;
        let buf = (*data).as_ref();
        let walk = self.walk(&name, buf, walker)?;
        let mut section = match &context {
            Context::Pcapng(s) => s.clone(),
            Context::Pcap(_) => None,
        };
        let mut described = Vec::with_capacity(walk.state_blocks.len());
        for &off in &walk.state_blocks {
            let base = walk.base_of(off);
            section = Section::apply(buf, off, base, section.take());
            described.extend(section.clone());
        }
        let chunk = Chunk::new(ChunkParts {
            index: self.index,
            data: data.clone(),
            range: 0..len,
            offset: self.byte_range.start,
            packets_before: self.first_packet_number.saturating_sub(1),
            packet_count: self.packet_count,
            context,
            described,
            gaps: self.gaps.clone(),
        })
        .with_origin(Arc::new(Origin {
            guard,
            name,
            mapped_file: match &self.placement {
                Placement::File(p) => Some(p.clone()),
                Placement::Inline(_) => None,
            },
        }));
        // The expression must suit every link type the chunk holds, as
        // the engine checks before handing out a chunk.
        let chunk = match self.filter.as_deref().map(compiled_filter).transpose()? {
            Some(filter) => chunk.with_filter(filter)?,
            None => chunk,
        };
        if chunk.input_changed() {
            // Truncated while it was walked: what was walked was zeros.
            return Err(Error::InputChanged { name: self.name() });
        }
        Ok(chunk)
    }

    /// Walks the records piece by piece, passing over the gaps, and checks
    /// that every piece ends where the next gap (or the records) ends and
    /// that the packets are those described.
    fn walk(&self, name: &str, buf: &[u8], mut walker: Walker) -> Result<Walked> {
        let mut walked = Walked {
            packets: 0,
            state_blocks: Vec::new(),
            bases: Vec::new(),
        };
        let mut at = 0usize;
        let mut base = self.byte_range.start;
        let ends = self
            .gaps
            .iter()
            .map(|g| (g.at, Some(g)))
            .chain([(buf.len(), None)]);
        for (end, gap) in ends {
            if end < at || end > buf.len() {
                return Err(LocatorError::Malformed("gaps out of order").into());
            }
            let piece = scan(buf, at, end, walker, u64::MAX);
            if let Some(fault) = piece.fault {
                return Err(Error::Format(FormatError {
                    name: name.to_string(),
                    offset: base + piece.end as u64,
                    packet: self.first_packet_number + walked.packets + piece.packets,
                    fault,
                }));
            }
            walked.packets += piece.packets;
            walked.bases.push((at, base));
            walked.state_blocks.extend(piece.state_blocks);
            if piece.end != end {
                return Err(self.changed(name, walked.packets, piece.end as u64));
            }
            walker = piece.walker;
            if let Some(g) = gap {
                at = end + g.skip;
                base = g.resume - at as u64;
            }
        }
        if walked.packets != self.packet_count {
            return Err(self.changed(name, walked.packets, buf.len() as u64));
        }
        Ok(walked)
    }

    fn changed(&self, name: &str, found_packets: u64, found_end: u64) -> Error {
        Error::Locator(LocatorError::Changed {
            name: name.to_string(),
            start: self.byte_range.start,
            end: self.byte_range.end,
            packets: self.packet_count,
            found_packets,
            found_end: self.byte_range.start + found_end,
        })
    }

    /// The chunk's context and the walker state where it starts.
    fn rebuild_context(&self, name: &str) -> Result<(Context, Walker)> {
        self.context.rebuild(name, unbounded_blocks())
    }
}

impl ChunkContext {
    /// Describes a chunk's context as data.
    pub(crate) fn of(context: &Context) -> ChunkContext {
        match context {
            Context::Pcap(h) => ChunkContext::Pcap {
                header: h.raw.to_vec(),
                max_caplen: h.max_caplen,
            },
            Context::Pcapng(section) => ChunkContext::Pcapng {
                section: section.as_ref().map(|s| SectionBlocks {
                    offset: s.offset,
                    blocks: s.prefix(s.interfaces.len()),
                }),
            },
        }
    }

    /// The context described, and the walker state it implies, walking
    /// pcapng blocks under `limits`. `name` names the input in errors.
    pub(crate) fn rebuild(&self, name: &str, limits: Limits) -> Result<(Context, Walker)> {
        let malformed = |what| Error::from(LocatorError::Malformed(what));
        match self {
            ChunkContext::Pcap { header, max_caplen } => {
                let mut h = PcapHeader::parse(header, *max_caplen).map_err(|fault| {
                    Error::Format(FormatError {
                        name: name.to_string(),
                        offset: 0,
                        packet: 1,
                        fault,
                    })
                })?;
                h.max_caplen = *max_caplen;
                let h = Arc::new(h);
                Ok((Context::Pcap(h.clone()), Walker::Pcap(h)))
            }
            ChunkContext::Pcapng { section: None } => Ok((
                Context::Pcapng(None),
                Walker::Pcapng {
                    endian: None,
                    interfaces: Interfaces::Known(0),
                    limits,
                },
            )),
            ChunkContext::Pcapng {
                section: Some(blocks),
            } => {
                let buf = &blocks.blocks;
                let mut walker = Walker::Pcapng {
                    endian: None,
                    interfaces: Interfaces::Known(0),
                    limits: unbounded_blocks(),
                };
                let walk = scan(buf, 0, buf.len(), walker.clone(), u64::MAX);
                if walk.fault.is_some() || walk.end != buf.len() || walk.packets != 0 {
                    return Err(malformed("section blocks that do not parse"));
                }
                let mut section = None;
                for &off in &walk.state_blocks {
                    // Offsets past the header do not matter: only the SHB's is kept.
                    section = Section::apply(buf, off, blocks.offset, section.take());
                }
                let section = section.ok_or_else(|| malformed("no section header"))?;
                walker = Walker::Pcapng {
                    endian: Some(section.endian),
                    interfaces: Interfaces::Known(section.interfaces.len()),
                    limits,
                };
                Ok((Context::Pcapng(Some(section)), walker))
            }
        }
    }

    /// Encodes the context as bytes (the encoding a locator holds it in).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes what [`ChunkContext::encode`] made.
    pub fn decode(bytes: &[u8]) -> Result<ChunkContext, LocatorError> {
        let mut r = Decoder { rest: bytes };
        let context = ChunkContext::decode_from(&mut r)?;
        if !r.rest.is_empty() {
            return Err(LocatorError::Malformed("trailing bytes"));
        }
        Ok(context)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            ChunkContext::Pcap { header, max_caplen } => {
                out.push(0);
                out.extend_from_slice(&max_caplen.to_le_bytes());
                put_bytes(out, header);
            }
            ChunkContext::Pcapng { section: None } => out.push(1),
            ChunkContext::Pcapng { section: Some(s) } => {
                out.push(2);
                out.extend_from_slice(&s.offset.to_le_bytes());
                put_bytes(out, &s.blocks);
            }
        }
    }

    fn decode_from(r: &mut Decoder<'_>) -> Result<ChunkContext, LocatorError> {
        Ok(match r.take(1)?[0] {
            0 => {
                let max_caplen = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
                ChunkContext::Pcap {
                    max_caplen,
                    header: r.bytes()?.to_vec(),
                }
            }
            1 => ChunkContext::Pcapng { section: None },
            2 => ChunkContext::Pcapng {
                section: Some(SectionBlocks {
                    offset: r.u64()?,
                    blocks: r.bytes()?.to_vec(),
                }),
            },
            _ => return Err(LocatorError::Malformed("context kind")),
        })
    }
}

/// Filters compiled in this process, by expression: a worker opening many
/// chunks compiles each expression once.
fn compiled_filter(expr: &str) -> Result<Arc<Filter>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Filter>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(f) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(expr) {
        return Ok(f.clone());
    }
    let f = Arc::new(Filter::new(expr)?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(expr.to_string(), f.clone());
    Ok(f)
}

/// A placement, borrowed: what an encoding needs of it.
enum PlacementRef<'a> {
    File(&'a std::path::Path),
    Inline(&'a [u8]),
}

/// Format of encoded locators: a magic number and a version.
const MAGIC: &[u8; 4] = b"PPCL";
const VERSION: u8 = 2;

impl ChunkLocator {
    /// Encodes the locator as bytes (little-endian fields, length-prefixed
    /// byte strings), for pickling, queues and files.
    pub fn encode(&self) -> Vec<u8> {
        let placement = match &self.placement {
            Placement::File(p) => PlacementRef::File(p),
            Placement::Inline(r) => PlacementRef::Inline(r),
        };
        self.encode_with(placement)
    }

    /// What `ChunkLocator::inline(chunk).encode()` gives, without the
    /// intermediate copy of the records.
    pub fn encode_inline(chunk: &Chunk) -> Vec<u8> {
        let empty: Arc<[u8]> = Arc::new([]);
        ChunkLocator::describe(chunk, Placement::Inline(empty))
            .encode_with(PlacementRef::Inline(chunk.raw_bytes()))
    }

    fn encode_with(&self, placement: PlacementRef<'_>) -> Vec<u8> {
        let records = match placement {
            PlacementRef::Inline(r) => r.len(),
            PlacementRef::File(_) => 0,
        };
        let mut out = Vec::with_capacity(256 + records);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        for v in [
            self.index as u64,
            self.byte_range.start,
            self.byte_range.end,
            self.first_packet_number,
            self.packet_count,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        self.context.encode_into(&mut out);
        match &self.filter {
            None => out.push(0),
            Some(f) => {
                out.push(1);
                put_bytes(&mut out, f.as_bytes());
            }
        }
        out.extend_from_slice(&(self.gaps.len() as u64).to_le_bytes());
        for g in &self.gaps {
            for v in [g.at as u64, g.skip as u64, g.resume] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        match placement {
            PlacementRef::File(p) => {
                out.push(0);
                put_bytes(
                    &mut out,
                    std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()),
                );
            }
            PlacementRef::Inline(r) => {
                out.push(1);
                put_bytes(&mut out, r);
            }
        }
        out
    }

    /// Decodes what [`ChunkLocator::encode`] made. Every length is checked
    /// against the bytes at hand before it is used.
    pub fn decode(bytes: &[u8]) -> Result<ChunkLocator, LocatorError> {
        let mut r = Decoder { rest: bytes };
        if r.take(4)? != MAGIC || r.take(1)?[0] != VERSION {
            return Err(LocatorError::Malformed("wrong magic number or version"));
        }
        let index = usize::try_from(r.u64()?).map_err(|_| LocatorError::Malformed("index"))?;
        let (start, end) = (r.u64()?, r.u64()?);
        if end < start || end - start > usize::MAX as u64 {
            return Err(LocatorError::Malformed("byte range"));
        }
        let (first_packet_number, packet_count) = (r.u64()?, r.u64()?);
        let context = ChunkContext::decode_from(&mut r)?;
        let filter = match r.take(1)?[0] {
            0 => None,
            1 => Some(
                std::str::from_utf8(r.bytes()?)
                    .map_err(|_| LocatorError::Malformed("filter is not UTF-8"))?
                    .to_string(),
            ),
            _ => return Err(LocatorError::Malformed("filter kind")),
        };
        let gap_count = r.u64()?;
        // Each gap takes 24 bytes: the count is checked against what is left
        // before anything is allocated for it.
        if gap_count > (r.rest.len() / 24) as u64 {
            return Err(LocatorError::Malformed("gap count"));
        }
        let mut gaps = Vec::with_capacity(gap_count as usize);
        for _ in 0..gap_count {
            let (at, skip, resume) = (r.u64()?, r.u64()?, r.u64()?);
            let at = usize::try_from(at).map_err(|_| LocatorError::Malformed("gap"))?;
            let skip = usize::try_from(skip).map_err(|_| LocatorError::Malformed("gap"))?;
            gaps.push(Gap { at, skip, resume });
        }
        let placement = match r.take(1)?[0] {
            0 => Placement::File(PathBuf::from(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(r.bytes()?),
            )),
            1 => Placement::Inline(r.bytes()?.into()),
            _ => return Err(LocatorError::Malformed("placement kind")),
        };
        if !r.rest.is_empty() {
            return Err(LocatorError::Malformed("trailing bytes"));
        }
        Ok(ChunkLocator {
            index,
            byte_range: start..end,
            first_packet_number,
            packet_count,
            context,
            placement,
            filter,
            gaps,
        })
    }
}

/// The limits of a locator's walk: blocks of any length (the chunk was cut
/// under the capture's own limits; here only agreement with them matters).
fn unbounded_blocks() -> Limits {
    Limits {
        max_block_len: u32::MAX,
        ..Limits::default()
    }
}

/// What walking a locator's records found.
struct Walked {
    packets: u64,
    /// Offsets of the pcapng section blocks met.
    state_blocks: Vec<usize>,
    /// Where each piece between gaps starts, and the input offset of its
    /// position 0 (`base + position` is an input offset inside the piece).
    bases: Vec<(usize, u64)>,
}

impl Walked {
    /// The input offset of position 0 for the piece holding `off`.
    fn base_of(&self, off: usize) -> u64 {
        let k = self.bases.partition_point(|(at, _)| *at <= off);
        self.bases[k.saturating_sub(1)].1
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LocatorError> {
        if self.rest.len() < n {
            return Err(LocatorError::Malformed("cut short"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, LocatorError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8], LocatorError> {
        let n = self.u64()?;
        if n > self.rest.len() as u64 {
            return Err(LocatorError::Malformed("a length beyond the end"));
        }
        self.take(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Capture, Split};

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/sample.pcap"
        ))
        .unwrap()
    }

    /// Number, offset and bytes of each packet.
    type Seen = Vec<(u64, u64, Vec<u8>)>;

    #[test]
    fn a_range_past_the_end_of_the_file_is_refused_and_a_shrink_in_use_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.pcap");
        std::fs::write(&path, sample()).unwrap();
        let locators: Vec<ChunkLocator> = Capture::open(&path)
            .unwrap()
            .split(Split::Chunks(4))
            .map(|c| ChunkLocator::in_file(c, &path))
            .unwrap();
        let kept = locators[3].open().unwrap();
        assert!(!kept.input_changed());
        // A stale locator: the file shrank into its range. Never mapped past
        // the end (that read would be a SIGBUS): the file changed.
        let size = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size - 100)
            .unwrap();
        let err = locators[3].open().unwrap_err();
        assert!(
            matches!(err, Error::Locator(LocatorError::Changed { .. })),
            "{err}"
        );
        assert!(locators[0].open().is_ok());
        // The chunk opened before: its map is guarded, and says so.
        assert!(kept.input_changed());
        let zeros = kept.raw_bytes().iter().rev().take(50).all(|&b| b == 0);
        assert!(zeros, "the vanished page reads as zeros, and is reported");
    }

    #[test]
    fn inline_locators_round_trip_and_rebuild_the_same_packets() {
        let data = sample();
        let originals: Vec<(ChunkLocator, Seen)> = Capture::from_bytes("sample.pcap", data)
            .unwrap()
            .split(Split::Packets(97))
            .map(|c| {
                let packets = c
                    .packets()
                    .map(|p| (p.number, p.offset, p.data.to_vec()))
                    .collect();
                (ChunkLocator::inline(c), packets)
            })
            .unwrap();
        assert!(originals.len() > 2);
        for (loc, packets) in originals {
            let decoded = ChunkLocator::decode(&loc.encode()).unwrap();
            assert_eq!(decoded, loc);
            let chunk = decoded.open().unwrap();
            let again: Vec<_> = chunk
                .packets()
                .map(|p| (p.number, p.offset, p.data.to_vec()))
                .collect();
            assert_eq!(again, packets);
        }
    }

    /// The sample with the record headers of packets 20 and 300 damaged
    /// (captured length far beyond any limit).
    fn damaged_sample() -> Vec<u8> {
        let mut data = sample();
        let mut off = 24;
        for number in 1.. {
            let caplen = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
            if number == 20 || number == 300 {
                data[off + 8..off + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
            }
            off += 16 + caplen;
            if number == 300 {
                break;
            }
        }
        data
    }

    #[test]
    fn chunks_spanning_skipped_damage_are_located_and_rebuilt_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.pcap");
        std::fs::write(&path, damaged_sample()).unwrap();
        for (split, placement) in [(Split::Chunks(2), "file"), (Split::Chunks(1), "inline")] {
            let located: Vec<(ChunkLocator, Seen)> = Capture::open(&path)
                .unwrap()
                .on_error(crate::OnError::Skip)
                .split(split)
                .map(|c| {
                    let packets = c
                        .packets()
                        .map(|p| (p.number, p.offset, p.data.to_vec()))
                        .collect();
                    let loc = match placement {
                        "file" => ChunkLocator::in_file(c, &path),
                        _ => ChunkLocator::inline(c),
                    };
                    (loc, packets)
                })
                .unwrap();
            assert!(
                located.iter().any(|(l, _)| !l.gaps.is_empty()),
                "{placement}"
            );
            for (loc, packets) in located {
                let decoded = ChunkLocator::decode(&loc.encode()).unwrap();
                assert_eq!(decoded, loc);
                let again: Seen = decoded
                    .open()
                    .unwrap()
                    .packets()
                    .map(|p| (p.number, p.offset, p.data.to_vec()))
                    .collect();
                assert_eq!(again, packets, "{placement}");
            }
        }
    }

    #[test]
    fn every_truncation_of_an_encoding_is_refused() {
        let data = sample();
        let loc = Capture::from_bytes("s", data)
            .unwrap()
            .split(Split::Chunks(2))
            .map(ChunkLocator::inline)
            .unwrap()
            .remove(1);
        let bytes = loc.encode();
        for n in 0..bytes.len() {
            assert!(ChunkLocator::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(ChunkLocator::decode(&long).is_err());
    }

    #[test]
    fn records_that_differ_from_the_description_are_refused() {
        let data = sample();
        let mut loc = Capture::from_bytes("s", data)
            .unwrap()
            .split(Split::Chunks(3))
            .map(ChunkLocator::inline)
            .unwrap()
            .remove(1);
        loc.packet_count += 1;
        assert!(matches!(
            loc.open(),
            Err(Error::Locator(LocatorError::Changed { .. }))
        ));
    }
}

//! A chunk: a run of whole records, cut at exact packet boundaries.
//!
//! A [`Chunk`] is what user code receives. It borrows nothing from the
//! caller: its bytes are shared with the memory map (or owned, for streamed
//! input). It can be read packet by packet ([`Chunk::packets`], zero-copy)
//! or as a valid standalone capture ([`Chunk::standalone`]) for tools that
//! want a file: for pcap the file header followed by the records, for
//! pcapng the section header and the interface descriptions the chunk's
//! packets refer to, followed by the blocks.

use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::filter::{Filter, FilterError, ProgramCache};
use crate::format::CaptureFormat;
use crate::packet::{LinkType, Packet};
use crate::pcap::PcapHeader;
use crate::pcapng::{self, Section};
use crate::source::Bytes;
use crate::walk::Prefetcher;

/// What a chunk needs to know of the capture before its first byte.
#[derive(Debug, Clone)]
pub(crate) enum Context {
    /// The pcap file header.
    Pcap(Arc<PcapHeader>),
    /// The pcapng section in force where the chunk starts (`None` before
    /// the first section header).
    Pcapng(Option<Arc<Section>>),
}

/// Where a chunk's records jump over damage passed over under
/// [`crate::OnError::Skip`]: a chunk may span damage, so that the chunks
/// asked for are not multiplied by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    /// Position in the chunk's bytes where the gap is.
    pub at: usize,
    /// Bytes of the chunk's data to pass over there: the damaged bytes of a
    /// mapped input; 0 for a stream, whose chunk buffers hold records only.
    pub skip: usize,
    /// Input offset of the record after the gap.
    pub resume: u64,
}

/// Which input of a capture a chunk comes from: a capture may be several
/// files read as one ([`crate::Capture::open_many`]).
#[derive(Debug, Default)]
pub(crate) struct Origin {
    /// The input's name: its path, `-`, or the name it was opened with.
    pub name: String,
    /// The plain file the chunk's byte range is in, when the input was
    /// memory-mapped from a path.
    pub mapped_file: Option<PathBuf>,
    /// The guarded map the chunk's bytes are in, if they are in one.
    pub guard: Option<Arc<crate::mapped::GuardedMap>>,
}

impl Origin {
    /// The origin of chunks made where no input is known (tests, partitions).
    pub fn unknown() -> Arc<Origin> {
        static UNKNOWN: OnceLock<Arc<Origin>> = OnceLock::new();
        UNKNOWN.get_or_init(Arc::default).clone()
    }
}

/// A run of whole records of a capture, ready to be processed on its own.
///
/// ```no_run
/// use pcap_parallel::{Capture, Split};
///
/// let sizes = Capture::open("trace.pcap")?
///     .split(Split::Packets(10_000))
///     .map(|chunk| chunk.packets().map(|p| p.data.len() as u64).sum::<u64>())?;
/// println!("{} chunks, {} captured bytes", sizes.len(), sizes.iter().sum::<u64>());
/// # Ok::<(), pcap_parallel::Error>(())
/// ```
#[derive(Clone)]
pub struct Chunk {
    pub(crate) index: usize,
    pub(crate) data: Bytes,
    /// The chunk's records within `data`.
    pub(crate) range: Range<usize>,
    /// Offset of `range.start` in the (decompressed) input.
    pub(crate) offset: u64,
    /// Packets before this chunk.
    pub(crate) packets_before: u64,
    pub(crate) packet_count: u64,
    pub(crate) context: Context,
    /// pcapng: the section's state after each SHB and IDB inside the chunk
    /// (recorded while the chunk was cut, so nobody walks it again for them).
    pub(crate) described: Arc<[Arc<Section>]>,
    /// The capture's filter, applied by [`Chunk::packets`] and the standalone view.
    pub(crate) filter: Option<Arc<Filter>>,
    /// Damage passed over inside the chunk, in order.
    pub(crate) gaps: Arc<[Gap]>,
    /// The input the chunk comes from.
    pub(crate) origin: Arc<Origin>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("index", &self.index)
            .field("byte_range", &self.byte_range())
            .field("first_packet_number", &self.first_packet_number())
            .field("packet_count", &self.packet_count)
            .finish()
    }
}

/// Everything a chunk is made of, as the three places that cut chunks find
/// it (the chunker of mapped input, the stream cutter, a locator), for
/// [`Chunk::new`].
pub(crate) struct ChunkParts {
    /// Position in file order, from 0.
    pub index: usize,
    /// The bytes the chunk's records are in.
    pub data: Bytes,
    /// The chunk's records within `data`.
    pub range: Range<usize>,
    /// Offset of `range.start` in the (decompressed) input.
    pub offset: u64,
    /// Packets before this chunk.
    pub packets_before: u64,
    /// Packets in it.
    pub packet_count: u64,
    /// What its records need from before its first byte.
    pub context: Context,
    /// pcapng: the section's state after each SHB and IDB inside it.
    pub described: Vec<Arc<Section>>,
    /// Damage passed over inside it, in order.
    pub gaps: Vec<Gap>,
}

impl Chunk {
    /// The one way to make a chunk: without a filter (see
    /// [`Chunk::with_filter`]).
    pub(crate) fn new(parts: ChunkParts) -> Chunk {
        let ChunkParts {
            index,
            data,
            range,
            offset,
            packets_before,
            packet_count,
            context,
            described,
            gaps,
        } = parts;
        Chunk {
            index,
            data,
            range,
            offset,
            packets_before,
            packet_count,
            context,
            described: described.into(),
            filter: None,
            gaps: gaps.into(),
            origin: Origin::unknown(),
        }
    }

    /// The chunk with the capture's filter attached: its packets, its
    /// standalone view and its locator then keep only what the filter
    /// keeps. Fails when the expression does not suit a link type the
    /// chunk holds (`ether host` on raw IP, say).
    pub(crate) fn with_filter(mut self, filter: Arc<Filter>) -> Result<Chunk, FilterError> {
        for (link_type, endian) in self.link_types_described() {
            filter.program(link_type, endian)?;
        }
        self.filter = Some(filter);
        Ok(self)
    }

    /// The chunk, named as coming from `origin`.
    pub(crate) fn with_origin(mut self, origin: Arc<Origin>) -> Chunk {
        self.origin = origin;
        self
    }
}

impl Chunk {
    /// Position of the chunk in file order, from 0 (with several inputs
    /// read as one, counted over all of them).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The name of the input the chunk comes from: its path (`-` for
    /// standard input) or the name it was opened with; with several inputs
    /// read as one ([`crate::Capture::open_many`]), this chunk's own. Empty
    /// for a chunk rebuilt without its capture (a locator's, a partition's).
    pub fn input_name(&self) -> &str {
        &self.origin.name
    }

    /// The plain file whose bytes [`Chunk::byte_range`] the chunk's records
    /// are, when its input was memory-mapped from a path (what
    /// [`crate::locator::ChunkLocator::in_file`] needs); `None` for
    /// streamed input and bytes in memory.
    pub fn mapped_file(&self) -> Option<&Path> {
        self.origin.mapped_file.as_deref()
    }

    /// Has the file the chunk's bytes are mapped from shrunk under the map
    /// (its vanished pages then read as zeros)? Check after using the
    /// chunk, before trusting what was computed from it. Always false for
    /// chunks whose bytes are in memory.
    pub fn input_changed(&self) -> bool {
        self.origin.guard.as_ref().is_some_and(|g| g.changed())
    }

    /// The chunk's bytes in the (decompressed) input: whole records, from
    /// the first byte of its first record to the end of its last (damage
    /// passed over under [`crate::OnError::Skip`] may lie inside).
    pub fn byte_range(&self) -> Range<u64> {
        let end = match self.gaps.last() {
            Some(g) => g.resume + (self.range.len() - g.at - g.skip) as u64,
            None => self.offset + self.range.len() as u64,
        };
        self.offset..end
    }

    /// Number (1-based) of the chunk's first packet in the whole capture.
    /// For a chunk without packets, the number the next packet will have.
    pub fn first_packet_number(&self) -> u64 {
        self.packets_before + 1
    }

    /// How many packets the chunk holds.
    pub fn packet_count(&self) -> u64 {
        self.packet_count
    }

    /// The chunk's records exactly as in the input (without any file
    /// header). Under [`crate::OnError::Skip`], a chunk of a mapped input
    /// that spans damage holds the damaged bytes too; [`Chunk::packets`]
    /// and [`Chunk::standalone`] pass over them.
    pub fn raw_bytes(&self) -> &[u8] {
        &(*self.data).as_ref()[self.range.clone()]
    }

    /// The capture format the chunk's records are in.
    pub fn format(&self) -> CaptureFormat {
        match &self.context {
            Context::Pcap(h) => CaptureFormat::Pcap {
                variant: h.variant,
                endian: h.endian,
            },
            Context::Pcapng(_) => CaptureFormat::Pcapng,
        }
    }

    /// The pcap file header, for pcap input.
    pub fn pcap_header(&self) -> Option<&PcapHeader> {
        match &self.context {
            Context::Pcap(h) => Some(h),
            Context::Pcapng(_) => None,
        }
    }

    /// The pcapng section in force where the chunk starts, for pcapng input
    /// (`None` for the chunk that starts with the file's first section header).
    pub fn section(&self) -> Option<&Section> {
        match &self.context {
            Context::Pcapng(s) => s.as_deref(),
            Context::Pcap(_) => None,
        }
    }

    /// The chunk's packets, in file order, as zero-copy views: those the
    /// capture's filter passes, if it has one ([`crate::Capture::filter`]).
    pub fn packets(&self) -> Packets<'_> {
        Packets {
            inner: self.filtered_records(),
        }
    }

    /// Every record, with the packets the filter rejects left out of them.
    pub(crate) fn filtered_records(&self) -> Filtered<'_> {
        Filtered {
            records: self.records(),
            filter: self.filter.as_deref().map(|f| (f, ProgramCache::default())),
        }
    }

    /// Every record of the chunk, packets and other blocks, unfiltered.
    pub(crate) fn records(&self) -> Records<'_> {
        Records {
            buf: self.raw_bytes(),
            off: 0,
            base: self.offset,
            number: self.packets_before,
            gaps: &self.gaps,
            prefetcher: Prefetcher::default(),
            state: match &self.context {
                Context::Pcap(h) => State::Pcap(h),
                Context::Pcapng(s) => State::Pcapng(s.clone()),
            },
        }
    }

    /// The filter the chunk's packets pass through, if any.
    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_deref()
    }

    /// Counts the packets [`Chunk::packets`] gives, up to `wanted`; when
    /// there are that many, cuts the chunk short right after the last one
    /// (its byte range, packet count and described sections with it).
    /// Returns the count.
    pub(crate) fn keep_at_most(&mut self, wanted: u64) -> u64 {
        let mut records = self.filtered_records();
        let mut section = records.section().map(Arc::as_ptr);
        let (mut kept, mut records_read, mut states) = (0u64, 0u64, 0usize);
        let mut end = None;
        while kept < wanted
            && let Some(r) = records.next_record()
        {
            if r.packet.is_some() || r.rejected {
                records_read += 1;
            }
            let now = records.section();
            if now.map(Arc::as_ptr) != section {
                // A section header or interface description: a state.
                section = now.map(Arc::as_ptr);
                states += usize::from(now.is_some());
            }
            if r.packet.is_some() {
                kept += 1;
                end = Some(r.range.end);
            }
        }
        if kept == wanted
            && let Some(end) = end
        {
            self.range.end = self.range.start + end;
            self.packet_count = records_read;
            self.described = self.described[..states.min(self.described.len())].into();
        }
        kept
    }

    /// The bytes that must precede the chunk's records for them to form a
    /// valid capture on their own.
    fn prefix(&self) -> Vec<u8> {
        match &self.context {
            Context::Pcap(h) => h.raw.to_vec(),
            Context::Pcapng(None) => Vec::new(),
            Context::Pcapng(Some(section)) => self
                .interfaces_needed(section)
                .map_or_else(Vec::new, |count| section.prefix(count)),
        }
    }

    /// How many of the section's interfaces the chunk's blocks before its
    /// own first section header refer to; `None` when the chunk starts with
    /// a section header (it then needs nothing before it). Interface ids are
    /// kept, so every interface up to the highest id used is included, and
    /// all of them when the chunk describes further interfaces itself.
    fn interfaces_needed(&self, section: &Section) -> Option<usize> {
        let buf = self.raw_bytes();
        let mut off = 0;
        let mut needed = 0usize;
        let mut first = true;
        let mut gaps = self.gaps.iter().peekable();
        loop {
            while let Some(g) = gaps.next_if(|g| g.at == off) {
                off += g.skip;
            }
            let Ok(Some(block)) = pcapng::read_block(buf, off, Some(section.endian), u32::MAX)
            else {
                break;
            };
            match block.btype {
                pcapng::SHB if first => return None,
                pcapng::SHB => break,
                pcapng::IDB => {
                    needed = section.interfaces.len();
                    break;
                }
                _ => {
                    if let Some(id) = block.interface_ref() {
                        needed = needed.max(id as usize + 1);
                    }
                }
            }
            first = false;
            off += block.len;
        }
        Some(needed)
    }

    /// The record bytes of the standalone view: all of them, or, with a
    /// filter, every block but the packets it rejects.
    fn kept_records(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.filter.is_none() && self.gaps.iter().all(|g| g.skip == 0) {
            return std::borrow::Cow::Borrowed(self.raw_bytes());
        }
        let buf = self.raw_bytes();
        let mut out = Vec::with_capacity(buf.len() / 2);
        let mut records = self.filtered_records();
        // Keep every block but the packets the filter rejects (and damage).
        while let Some(r) = records.next_record() {
            if !r.rejected {
                out.extend_from_slice(&buf[r.range]);
            }
        }
        std::borrow::Cow::Owned(out)
    }

    /// The chunk as a valid capture of its own, as a reader.
    ///
    /// ```no_run
    /// # use pcap_parallel::Capture;
    /// # use std::io::Read;
    /// Capture::open("trace.pcapng")?.for_each(|chunk| {
    ///     let mut file = Vec::new();
    ///     chunk.standalone().read_to_end(&mut file).unwrap();
    ///     // `file` opens in Wireshark, tcpdump, or this crate.
    /// })?;
    /// # Ok::<(), pcap_parallel::Error>(())
    /// ```
    pub fn standalone(&self) -> impl Read + '_ {
        io::Cursor::new(self.prefix()).chain(io::Cursor::new(self.kept_records()))
    }

    /// Writes the chunk as a valid capture of its own; returns the bytes written.
    pub fn write_standalone<W: Write>(&self, mut out: W) -> io::Result<u64> {
        let prefix = self.prefix();
        let records = self.kept_records();
        out.write_all(&prefix)?;
        out.write_all(&records)?;
        Ok((prefix.len() + records.len()) as u64)
    }

    /// pcapng: the section in force where the chunk starts (if any), then
    /// the state of the section after each section header and interface
    /// description in the chunk, in order. Keeping the last state of each
    /// section (by [`Section::offset`]) over all chunks gives every section
    /// with all its interfaces. Each state costs O(1) (see
    /// [`crate::pcapng::InterfaceTable`]). Empty for pcap.
    pub fn section_states(&self) -> Vec<Arc<Section>> {
        match &self.context {
            Context::Pcapng(start) => start.iter().chain(self.described.iter()).cloned().collect(),
            Context::Pcap(_) => Vec::new(),
        }
    }

    /// pcapng: the last state of each section the chunk sees (the one in
    /// force at its start, and those it starts), in order. Every earlier
    /// state of a section is a prefix of its last one.
    pub(crate) fn final_section_states(&self) -> Vec<Arc<Section>> {
        let mut out: Vec<Arc<Section>> = Vec::new();
        for s in self.section_states() {
            match out.last_mut() {
                Some(last) if last.offset == s.offset => *last = s,
                _ => out.push(s),
            }
        }
        out
    }

    /// The link types the chunk's packets may have: the pcap file's, or
    /// those of the interfaces described before and in the chunk.
    pub(crate) fn link_types_described(&self) -> Vec<(LinkType, crate::Endian)> {
        let mut out = match &self.context {
            Context::Pcap(h) => vec![(h.link_type, h.endian)],
            Context::Pcapng(_) => Vec::new(),
        };
        let mut seen: std::collections::HashSet<(LinkType, crate::Endian)> =
            out.iter().copied().collect();
        for s in self.final_section_states() {
            for i in s.interfaces.iter() {
                if seen.insert((i.link_type, s.endian)) {
                    out.push((i.link_type, s.endian));
                }
            }
        }
        out
    }

    /// The link types of the chunk's packets, without duplicates, in order
    /// of first appearance.
    pub fn link_types(&self) -> Vec<LinkType> {
        let mut out = Vec::new();
        for p in self.packets() {
            if !out.contains(&p.link_type) {
                out.push(p.link_type);
            }
        }
        out
    }
}

enum State<'a> {
    Pcap(&'a PcapHeader),
    Pcapng(Option<Arc<Section>>),
}

/// One record of a chunk: where it is, and the packet it holds, if any.
pub(crate) struct Record<'a> {
    /// The record's bytes within the chunk.
    pub range: std::ops::Range<usize>,
    /// `None` for pcapng blocks that hold no packet.
    pub packet: Option<Packet<'a>>,
    /// Byte order of the file or section (filters compile per byte order).
    pub endian: crate::Endian,
    /// The record holds a packet the filter rejected (`packet` is then `None`).
    pub rejected: bool,
}

/// Iterator over a chunk's records.
pub(crate) struct Records<'a> {
    buf: &'a [u8],
    off: usize,
    base: u64,
    number: u64,
    gaps: &'a [Gap],
    prefetcher: Prefetcher,
    state: State<'a>,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        // A chunk's records were checked when it was cut, so a fault here
        // cannot happen; should it, iteration simply ends.
        while let Some((g, rest)) = self.gaps.split_first()
            && g.at == self.off
        {
            self.off += g.skip;
            self.base = g.resume - self.off as u64;
            self.gaps = rest;
        }
        let off = self.off;
        self.prefetcher.advance(self.buf, off);
        match &mut self.state {
            State::Pcap(h) => {
                let rec = h.read(self.buf, off).ok()??;
                self.off += rec.len;
                self.number += 1;
                Some(Record {
                    range: off..off + rec.len,
                    endian: h.endian,
                    rejected: false,
                    packet: Some(Packet {
                        number: self.number,
                        offset: self.base + off as u64,
                        timestamp: Some(h.timestamp(rec.ts_sec, rec.ts_frac)),
                        original_len: rec.original_len,
                        link_type: h.link_type,
                        interface_id: 0,
                        data: rec.data,
                    }),
                })
            }
            State::Pcapng(section) => {
                let endian = section.as_ref().map(|s| s.endian);
                let block = pcapng::read_checked_block(self.buf, off, endian)?;
                self.off += block.len;
                let range = off..off + block.len;
                let endian = block.endian;
                match block.btype {
                    pcapng::SHB | pcapng::IDB | pcapng::DSB | pcapng::NRB => {
                        *section = Section::apply(self.buf, off, self.base, section.take());
                        Some(Record {
                            range,
                            endian,
                            rejected: false,
                            packet: None,
                        })
                    }
                    pcapng::EPB | pcapng::PB | pcapng::SPB => {
                        let s = section.as_ref()?;
                        let snaplen0 = s.interfaces.first().map_or(0, |i| i.snaplen);
                        let fields = block.packet(snaplen0)?;
                        let iface = s.interfaces.get(fields.interface_id as usize)?;
                        self.number += 1;
                        Some(Record {
                            range,
                            endian,
                            rejected: false,
                            packet: Some(Packet {
                                number: self.number,
                                offset: self.base + off as u64,
                                timestamp: fields.ticks.map(|t| iface.timestamp(t)),
                                original_len: fields.original_len,
                                link_type: iface.link_type,
                                interface_id: fields.interface_id,
                                data: fields.data,
                            }),
                        })
                    }
                    _ => Some(Record {
                        range,
                        endian,
                        rejected: false,
                        packet: None,
                    }),
                }
            }
        }
    }
}

/// A chunk's records, with the packets the filter rejects turned into
/// records without a packet.
pub(crate) struct Filtered<'a> {
    records: Records<'a>,
    filter: Option<(&'a Filter, ProgramCache)>,
}

impl<'a> Filtered<'a> {
    /// The next record.
    #[inline]
    pub fn next_record(&mut self) -> Option<Record<'a>> {
        let mut r = self.records.next()?;
        if let (Some(p), Some((f, cache))) = (&r.packet, &mut self.filter)
            && !cache.matches(f, p.link_type, r.endian, p.data, p.original_len)
        {
            r.packet = None;
            r.rejected = true;
        }
        Some(r)
    }

    /// The pcapng section in force after the last record returned.
    pub fn section(&self) -> Option<&Arc<Section>> {
        match &self.records.state {
            State::Pcapng(s) => s.as_ref(),
            State::Pcap(_) => None,
        }
    }
}

/// Iterator over a chunk's packets (those the filter passes, if there is
/// one); see [`Chunk::packets`].
pub struct Packets<'a> {
    inner: Filtered<'a>,
}

impl<'a> Iterator for Packets<'a> {
    type Item = Packet<'a>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'a>> {
        loop {
            if let Some(p) = self.inner.next_record()?.packet {
                return Some(p);
            }
        }
    }
}

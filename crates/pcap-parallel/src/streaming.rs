//! Cutting a stream (compressed input, standard input, a pipe) into chunks
//! as it is read.
//!
//! A stream cannot be divided by byte offset before it is decoded, so one
//! thread walks its records in order, which is exact by construction, and
//! copies them into a chunk buffer; every [`crate::Split`] worth of bytes or
//! packets it hands the chunk to the workers. Each length is checked before
//! anything is allocated for it, so a corrupt length cannot make the reader
//! allocate or stall. Walking costs far less than decompression, so this
//! thread is never the bottleneck.

use std::io::{self, BufRead, Read};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::chunk::{Chunk, Context, Gap};
use crate::error::{BlockName, Error, Fault, FormatError, Skipped};
use crate::format::CaptureFormat;
use crate::pcap::{self, PcapHeader};
use crate::pcapng::{self, Section};
use crate::resync;
use crate::source::StreamFailure;
use crate::walk::{Interfaces, Kind, Limits, Walker};

/// How far a full chunk may grow past its size with blocks that hold no
/// packet (statistics, names, a new section's header) before it is cut
/// anyway: such blocks join the chunk before them, so that no chunk is
/// without packets, but a long run of them must not hold unbounded memory.
pub const TRAILING_MAX: usize = 16 << 20;

/// Chunk buffers kept for reuse (about the number of chunks in flight).
const POOL_LEN: usize = 16;

/// When a chunk is full.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fill {
    Bytes(usize),
    Packets(u64),
}

/// Cuts chunks from a stream, one after another.
pub(crate) struct Cutter {
    reader: Pushback,
    name: String,
    /// Input offset of the next byte to read.
    offset: u64,
    walker: Walker,
    /// pcapng: the section in force at `offset`.
    section: Option<Arc<Section>>,
    fill: Fill,
    max_packets: u64,
    packets: u64,
    index: usize,
    /// An error to report once the chunk before it has been delivered.
    pending: Option<Error>,
    done: bool,
    /// Buffers of delivered chunks come back here to be reused: a fresh
    /// multi-megabyte allocation per chunk would cost a page fault and a
    /// page of zeroes for every 4 KiB of input.
    pool: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    /// Pass over damaged bytes instead of stopping at the first fault.
    skip_damage: bool,
    skipped: Vec<Skipped>,
    /// A packet record read after its chunk was full: the next chunk's first.
    carry: Option<Vec<u8>>,
    /// A read error met while looking ahead for a record boundary: the
    /// bytes before it are used as a mapped copy of the stream would use
    /// them, then it ends the input.
    deferred: Option<io::Error>,
}

/// A reader with bytes put back in front of it (after a search for the
/// next record boundary read past it).
struct Pushback {
    front: io::Cursor<Vec<u8>>,
    inner: Box<dyn BufRead + Send>,
}

impl Pushback {
    /// Puts `bytes` back, in front of whatever was not read yet.
    fn put_back(&mut self, mut bytes: Vec<u8>) {
        let pos = self.front.position() as usize;
        bytes.extend_from_slice(&self.front.get_ref()[pos..]);
        self.front = io::Cursor::new(bytes);
    }
}

impl Read for Pushback {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Pushback {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if (self.front.position() as usize) < self.front.get_ref().len() {
            return self.front.fill_buf();
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if (self.front.position() as usize) < self.front.get_ref().len() {
            self.front.consume(amount);
        } else {
            self.inner.consume(amount);
        }
    }
}

/// A chunk's buffer, returned to the pool when the last chunk using it is dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let _ = self.pool.try_send(std::mem::take(&mut self.buf));
    }
}

enum ReadFail {
    Fault(Fault),
    Io(io::Error),
}

impl From<Fault> for ReadFail {
    fn from(f: Fault) -> Self {
        ReadFail::Fault(f)
    }
}

impl Cutter {
    /// Starts cutting `reader`, whose format is `format`. For pcap the file
    /// header is read here; a fault in it is returned as an error.
    pub fn new(
        mut reader: Box<dyn BufRead + Send>,
        name: &str,
        format: CaptureFormat,
        limits: Limits,
        fill: Fill,
        max_packets: Option<u64>,
        skip_damage: bool,
    ) -> Result<Cutter, Error> {
        let mut offset = 0;
        let walker = match format {
            CaptureFormat::Pcap { .. } => {
                let mut head = Vec::new();
                let n = fill_exact(&mut reader, &mut head, pcap::FILE_HEADER_LEN)
                    .map_err(|e| StreamFailure::into_error(e, name))?;
                let fault = |fault| {
                    Error::Format(FormatError {
                        name: name.to_string(),
                        offset: 0,
                        packet: 1,
                        fault,
                    })
                };
                if n < pcap::FILE_HEADER_LEN {
                    return Err(fault(Fault::TruncatedFileHeader {
                        have: n,
                        need: pcap::FILE_HEADER_LEN,
                    }));
                }
                offset = pcap::FILE_HEADER_LEN as u64;
                Walker::Pcap(Arc::new(
                    PcapHeader::parse(&head, limits.max_packet_len).map_err(fault)?,
                ))
            }
            CaptureFormat::Pcapng => Walker::Pcapng {
                endian: None,
                interfaces: Interfaces::Known(0),
                limits,
            },
        };
        Ok(Cutter {
            reader: Pushback {
                front: io::Cursor::new(Vec::new()),
                inner: reader,
            },
            name: name.to_string(),
            offset,
            walker,
            section: None,
            fill,
            max_packets: max_packets.unwrap_or(u64::MAX),
            packets: 0,
            index: 0,
            pending: None,
            done: false,
            pool: bounded(POOL_LEN),
            skip_damage,
            skipped: Vec::new(),
            carry: None,
            deferred: None,
        })
    }

    /// The next chunk; `Ok(None)` at the end. After a fault, the chunk that
    /// holds every complete record before it comes first, then the error.
    ///
    /// A chunk is full at its size (bytes or packets) once it holds a
    /// packet; the blocks without packets that follow join it, and it ends
    /// before the next packet. So no chunk is without packets, unless the
    /// input holds none (one chunk then), or more than [`TRAILING_MAX`]
    /// bytes of such blocks come in a row. Damage passed over under the
    /// skip policy stays inside the chunk, as a gap.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, Error> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.done && self.carry.is_none() {
            return Ok(None);
        }
        let mut start = self.offset;
        let packets_before = self.packets;
        let context = match &self.walker {
            Walker::Pcap(h) => Context::Pcap(h.clone()),
            Walker::Pcapng { .. } => Context::Pcapng(self.section.clone()),
        };
        let capacity = match self.fill {
            Fill::Bytes(b) => b.min(64 << 20) + (1 << 16),
            Fill::Packets(_) => 1 << 20,
        };
        let mut described = Vec::new();
        let mut gaps = Vec::new();
        let mut buf = match self.pool.1.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(capacity),
        };
        // Where the chunk became full, once it is.
        let mut full_at: Option<usize> = None;
        loop {
            if self.packets >= self.max_packets {
                self.done = true;
                break;
            }
            let record_start = buf.len();
            match self.next_record(&mut buf) {
                Ok(None) => {
                    self.done = true;
                    if let Some(e) = self.deferred.take() {
                        self.pending = Some(StreamFailure::into_error(e, &self.name));
                    }
                    break;
                }
                Ok(Some(Kind::Packet)) if full_at.is_some() => {
                    self.carry = Some(buf.split_off(record_start));
                    break;
                }
                Ok(Some(kind)) => {
                    let base = self.offset - record_start as u64;
                    self.offset += (buf.len() - record_start) as u64;
                    match kind {
                        Kind::Packet => self.packets += 1,
                        Kind::SectionState => {
                            self.section =
                                Section::apply(&buf, record_start, base, self.section.take());
                            described.extend(self.section.clone());
                        }
                        Kind::Other => {}
                    }
                    let has_packet = self.packets > packets_before;
                    let size_reached = match self.fill {
                        Fill::Bytes(b) => buf.len() >= b,
                        Fill::Packets(n) => self.packets - packets_before >= n,
                    };
                    if full_at.is_none() && has_packet && size_reached {
                        full_at = Some(buf.len());
                    }
                    let cap = match (full_at, self.fill) {
                        (Some(at), _) => at + TRAILING_MAX,
                        (None, _) if has_packet => usize::MAX,
                        (None, Fill::Bytes(b)) => b.saturating_add(TRAILING_MAX),
                        (None, Fill::Packets(_)) => TRAILING_MAX,
                    };
                    if buf.len() >= cap {
                        break;
                    }
                }
                Err(ReadFail::Fault(fault)) if self.skip_damage => {
                    let partial = buf.split_off(record_start);
                    if !self.skip_past(partial, fault) {
                        self.done = true;
                        if let Some(e) = self.deferred.take() {
                            self.pending = Some(StreamFailure::into_error(e, &self.name));
                        }
                        break;
                    }
                    if buf.is_empty() {
                        start = self.offset;
                    } else {
                        gaps.push(Gap {
                            at: buf.len(),
                            skip: 0,
                            resume: self.offset,
                        });
                    }
                }
                Err(fail) => {
                    buf.truncate(record_start);
                    self.done = true;
                    self.pending = Some(match fail {
                        ReadFail::Fault(fault) => Error::Format(FormatError {
                            name: self.name.clone(),
                            offset: self.offset,
                            packet: self.packets + 1,
                            fault,
                        }),
                        ReadFail::Io(e) => StreamFailure::into_error(e, &self.name),
                    });
                    break;
                }
            }
        }
        // An empty first chunk is kept for pcap (it reads as the header
        // alone), never for pcapng (it would not have a section header).
        if buf.is_empty() && (self.index > 0 || matches!(self.walker, Walker::Pcapng { .. })) {
            return match self.pending.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let chunk = Chunk {
            index: self.index,
            range: 0..buf.len(),
            data: Arc::new(Pooled {
                buf,
                pool: self.pool.0.clone(),
            }),
            offset: start,
            packets_before,
            packet_count: self.packets - packets_before,
            context,
            described: described.into(),
            filter: None,
            gaps: gaps.into(),
        };
        self.index += 1;
        Ok(Some(chunk))
    }

    /// Appends the next record to `buf`: the one carried over from the
    /// chunk before, or one read; `Ok(None)` at a clean end of input.
    fn next_record(&mut self, buf: &mut Vec<u8>) -> Result<Option<Kind>, ReadFail> {
        match self.carry.take() {
            Some(record) => {
                buf.extend_from_slice(&record);
                Ok(Some(Kind::Packet))
            }
            None => self.read_record(buf),
        }
    }

    /// Passes over damaged bytes: `partial` holds what was read of the
    /// broken record (starting at `self.offset`). Searches the stream, a
    /// window at a time, for the next record boundary by the rule a mapped
    /// file follows ([`resync::resync`], so both find the same), puts the
    /// bytes from there back in front of the reader and records what was
    /// skipped. `false` when the damage runs to the end of the input.
    fn skip_past(&mut self, partial: Vec<u8>, fault: Fault) -> bool {
        let start = self.offset;
        let packet = self.packets + 1;
        let hint = self.walker.endian().unwrap_or(crate::Endian::Little);
        let need = resync::RESYNC_WINDOW + resync::lookahead(&self.walker);
        let mut window = partial;
        let mut base = start;
        let mut from = 1;
        loop {
            let want = (from + need).saturating_sub(window.len());
            let eof = match fill_exact(&mut self.reader, &mut window, want) {
                Ok(n) => n < want,
                Err(e) => {
                    self.deferred = Some(e);
                    true
                }
            };
            let found = resync::resync(
                &self.walker,
                &window,
                from,
                eof,
                hint,
                self.section.is_some(),
            );
            let (skipped, resumed) = match found {
                resync::Resync::Found(k, endian) => {
                    self.reader.put_back(window.split_off(k));
                    if let Walker::Pcapng {
                        endian: e,
                        interfaces,
                        ..
                    } = &mut self.walker
                    {
                        *e = Some(endian);
                        if let Interfaces::Unknown { .. } = interfaces {
                            *interfaces = Interfaces::Known(0);
                        }
                    }
                    (base + k as u64 - start, true)
                }
                resync::Resync::NotFound => (base + window.len() as u64 - start, false),
                resync::Resync::NeedMore { resume } => {
                    window.drain(..resume);
                    base += resume as u64;
                    from = 0;
                    continue;
                }
            };
            // The record cut short where reading failed is that failure,
            // reported as such, not damage.
            if resumed || !fault.is_truncation() || self.deferred.is_none() {
                self.skipped.push(Skipped {
                    offset: start,
                    len: skipped,
                    packet,
                    fault,
                });
            }
            self.offset += skipped;
            return resumed;
        }
    }

    /// Reads the rest of the input and returns the error that ends it, if
    /// any: whether the compressed data holding a fault is itself damaged.
    pub fn drain(&mut self) -> Option<Error> {
        io::copy(&mut self.reader, &mut io::sink())
            .err()
            .map(|e| StreamFailure::into_error(e, &self.name))
    }

    /// What was passed over under the skip policy.
    pub fn skipped(&mut self) -> Vec<Skipped> {
        std::mem::take(&mut self.skipped)
    }

    /// Appends the next record to `buf`; `Ok(None)` at a clean end of input.
    fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<Option<Kind>, ReadFail> {
        let start = buf.len();
        let (head_len, len) = match &self.walker {
            Walker::Pcap(h) => {
                let rh = h.record_header_len();
                let n = fill_exact(&mut self.reader, buf, rh).map_err(ReadFail::Io)?;
                if n == 0 {
                    return Ok(None);
                }
                if n < rh {
                    return Err(Fault::TruncatedRecordHeader { have: n, need: rh }.into());
                }
                (rh, h.record_len(&buf[start..])?)
            }
            Walker::Pcapng { endian, limits, .. } => {
                let n = fill_exact(&mut self.reader, buf, 12).map_err(ReadFail::Io)?;
                if n == 0 {
                    return Ok(None);
                }
                if n < 12 {
                    return Err(Fault::TruncatedBlockHeader { have: n }.into());
                }
                let (_, _, len) = pcapng::block_len(&buf[start..], *endian, limits.max_block_len)?;
                (12, len)
            }
        };
        let n = fill_exact(&mut self.reader, buf, len - head_len).map_err(ReadFail::Io)?;
        if n < len - head_len {
            return Err(match &self.walker {
                Walker::Pcap(h) => Fault::TruncatedPacketData {
                    caplen: (len - h.record_header_len()) as u32,
                    have: n,
                },
                Walker::Pcapng { endian, .. } => Fault::TruncatedBlock {
                    block: BlockName(endian.unwrap_or(crate::Endian::Little).u32(buf, start)),
                    length: len as u32,
                    have: head_len + n,
                },
            }
            .into());
        }
        match &mut self.walker {
            // A pcap record is whole once its length was checked and its bytes read.
            Walker::Pcap(_) => Ok(Some(Kind::Packet)),
            // A pcapng block has more to check: trailer, fixed fields, interfaces.
            walker => Ok(walker.step(buf, start)?.map(|(_, kind)| kind)),
        }
    }
}

/// Appends up to `n` bytes from `reader` to `buf`, copying straight from
/// the reader's buffer; returns how many came (fewer only at the end of input).
fn fill_exact(reader: &mut dyn BufRead, buf: &mut Vec<u8>, n: usize) -> io::Result<usize> {
    let mut filled = 0;
    while filled < n {
        let avail = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            break;
        }
        let k = avail.len().min(n - filled);
        buf.extend_from_slice(&avail[..k]);
        reader.consume(k);
        filled += k;
    }
    Ok(filled)
}

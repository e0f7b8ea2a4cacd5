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

use crate::capture::OnError;
use crate::chunk::{Chunk, ChunkParts, Context, Gap};
use crate::error::{BlockName, Error, Fault, FormatError, Skipped};
use crate::format::CaptureFormat;
use crate::pcap;
use crate::pcapng::{self, Section};
use crate::resync::{self, Horizon, Restart};
use crate::source::StreamFailure;
use crate::walk::{Kind, Limits, Walker};

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
    /// Stop at the first fault, or pass over damaged bytes.
    on_error: OnError,
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
        on_error: OnError,
    ) -> Result<Cutter, Error> {
        let mut head = Vec::new();
        if let CaptureFormat::Pcap { .. } = format {
            fill_exact(&mut reader, &mut head, pcap::FILE_HEADER_LEN)
                .map_err(|e| StreamFailure::into_error(e, name))?;
        }
        let (walker, offset) = Walker::at_start(format, &head, limits, name)?;
        let offset = offset as u64;
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
            on_error,
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
        let mut chunk = self.begin_chunk();
        loop {
            if self.packets >= self.max_packets {
                self.done = true;
                break;
            }
            let record_start = chunk.buf.len();
            let step = match self.next_record(&mut chunk.buf) {
                Ok(None) => self.end_of_input(),
                Ok(Some(Kind::Packet)) if chunk.full_at.is_some() => {
                    // The first packet of the next chunk.
                    self.carry = Some(chunk.buf.split_off(record_start));
                    Step::Full
                }
                Ok(Some(kind)) => self.take_record(&mut chunk, record_start, kind),
                Err(ReadFail::Fault(fault)) if self.on_error == OnError::Skip => {
                    self.pass_damage(&mut chunk, record_start, fault)
                }
                Err(fail) => {
                    chunk.buf.truncate(record_start);
                    self.fail(fail)
                }
            };
            if step == Step::Full {
                break;
            }
        }
        self.finish_chunk(chunk)
    }

    /// A chunk to fill, from where the stream is.
    fn begin_chunk(&mut self) -> Filling {
        let capacity = match self.fill {
            Fill::Bytes(b) => b.min(64 << 20) + (1 << 16),
            Fill::Packets(_) => 1 << 20,
        };
        let buf = match self.pool.1.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(capacity),
        };
        Filling {
            buf,
            start: self.offset,
            packets_before: self.packets,
            context: match &self.walker {
                Walker::Pcap(h) => Context::Pcap(h.clone()),
                Walker::Pcapng { .. } => Context::Pcapng(self.section.clone()),
            },
            described: Vec::new(),
            gaps: Vec::new(),
            full_at: None,
        }
    }

    /// Accounts for the record of `kind` just appended at `record_start`,
    /// and says whether the chunk is full.
    fn take_record(&mut self, chunk: &mut Filling, record_start: usize, kind: Kind) -> Step {
        let buf = &chunk.buf;
        let base = self.offset - record_start as u64;
        self.offset += (buf.len() - record_start) as u64;
        match kind {
            Kind::Packet => self.packets += 1,
            Kind::SectionState => {
                self.section = Section::apply(buf, record_start, base, self.section.take());
                chunk.described.extend(self.section.clone());
            }
            Kind::Other => {}
        }
        let has_packet = self.packets > chunk.packets_before;
        let size_reached = match self.fill {
            Fill::Bytes(b) => buf.len() >= b,
            Fill::Packets(n) => self.packets - chunk.packets_before >= n,
        };
        if chunk.full_at.is_none() && has_packet && size_reached {
            chunk.full_at = Some(buf.len());
        }
        let cap = match (chunk.full_at, self.fill) {
            (Some(at), _) => at + TRAILING_MAX,
            (None, _) if has_packet => usize::MAX,
            (None, Fill::Bytes(b)) => b.saturating_add(TRAILING_MAX),
            (None, Fill::Packets(_)) => TRAILING_MAX,
        };
        if buf.len() >= cap {
            Step::Full
        } else {
            Step::More
        }
    }

    /// Passes over damage met at `record_start` (skip policy): the chunk
    /// goes on after it, with a gap where it was.
    fn pass_damage(&mut self, chunk: &mut Filling, record_start: usize, fault: Fault) -> Step {
        let partial = chunk.buf.split_off(record_start);
        if !self.skip_past(partial, fault) {
            return self.end_of_input();
        }
        if chunk.buf.is_empty() {
            chunk.start = self.offset;
        } else {
            chunk.gaps.push(Gap {
                at: chunk.buf.len(),
                skip: 0,
                resume: self.offset,
            });
        }
        Step::More
    }

    /// The input ends here; a read error deferred until now is reported
    /// after this chunk.
    fn end_of_input(&mut self) -> Step {
        self.done = true;
        if let Some(e) = self.deferred.take() {
            self.pending = Some(StreamFailure::into_error(e, &self.name));
        }
        Step::Full
    }

    /// The input ends with `fail`, reported after this chunk.
    fn fail(&mut self, fail: ReadFail) -> Step {
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
        Step::Full
    }

    /// The filled chunk, or none when it is empty (but for a pcap input
    /// without packets: one empty chunk, which reads as the header alone;
    /// a pcapng chunk without bytes would not have a section header).
    fn finish_chunk(&mut self, chunk: Filling) -> Result<Option<Chunk>, Error> {
        if chunk.buf.is_empty() && (self.index > 0 || matches!(self.walker, Walker::Pcapng { .. }))
        {
            return match self.pending.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let Filling {
            buf,
            start,
            packets_before,
            context,
            described,
            gaps,
            ..
        } = chunk;
        let chunk = Chunk::new(ChunkParts {
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
            described,
            gaps,
        });
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
            let horizon = match fill_exact(&mut self.reader, &mut window, want) {
                Ok(n) if n >= want => Horizon::MoreToCome,
                Ok(_) => Horizon::EndOfInput,
                Err(e) => {
                    self.deferred = Some(e);
                    Horizon::EndOfInput
                }
            };
            let found = resync::resync(
                &self.walker,
                &window,
                from,
                horizon,
                hint,
                Restart::after(self.section.as_ref()),
            );
            let (skipped, resumed) = match found {
                resync::Resync::Found(k, endian) => {
                    self.reader.put_back(window.split_off(k));
                    self.walker = self.walker.clone().resumed(endian);
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

/// The chunk being filled.
struct Filling {
    buf: Vec<u8>,
    /// Input offset of its first record.
    start: u64,
    packets_before: u64,
    context: Context,
    described: Vec<Arc<Section>>,
    gaps: Vec<Gap>,
    /// Where it became full, once it is.
    full_at: Option<usize>,
}

/// Whether a chunk takes more records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    More,
    Full,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EPB, HUGE, IDB, PLAIN, SHB, cat, pcap_of};

    fn cutter(bytes: Vec<u8>, fill: Fill, on_error: OnError) -> Result<Cutter, Error> {
        let format = CaptureFormat::detect(&bytes).expect("a capture");
        Cutter::new(
            Box::new(std::io::Cursor::new(bytes)),
            "test",
            format,
            Limits::default(),
            fill,
            None,
            on_error,
        )
    }

    /// (offset, packets before, packets) of every chunk, and the error
    /// that ended the stream.
    fn cut_all(mut c: Cutter) -> (Vec<(u64, u64, u64)>, Option<Error>) {
        let mut out = Vec::new();
        loop {
            match c.next_chunk() {
                Ok(Some(k)) => out.push((k.offset, k.packets_before, k.packet_count)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn a_stream_is_cut_into_chunks_of_whole_records() {
        let c = cutter(pcap_of(&PLAIN, 7), Fill::Packets(3), OnError::Stop).unwrap();
        let (chunks, error) = cut_all(c);
        assert_eq!(chunks, vec![(24, 0, 3), (84, 3, 3), (144, 6, 1)]);
        assert!(error.is_none());
        // By bytes: a chunk takes records until it holds at least 50 bytes.
        let c = cutter(pcap_of(&PLAIN, 7), Fill::Bytes(50), OnError::Stop).unwrap();
        let counts: Vec<u64> = cut_all(c).0.iter().map(|k| k.2).collect();
        assert_eq!(counts.iter().sum::<u64>(), 7);
        assert!(counts.iter().all(|&n| n >= 1));
    }

    #[test]
    fn damage_in_a_stream_ends_it_after_the_good_records_or_is_passed_over() {
        let bytes = cat(&[&pcap_of(&PLAIN, 3), &HUGE, &PLAIN, &PLAIN]);
        let (chunks, error) =
            cut_all(cutter(bytes.clone(), Fill::Packets(2), OnError::Stop).unwrap());
        assert_eq!(chunks, vec![(24, 0, 2), (64, 2, 1)]);
        let Some(Error::Format(f)) = error else {
            panic!("a format error")
        };
        assert_eq!((f.offset, f.packet), (84, 4));

        let mut c = cutter(bytes, Fill::Packets(2), OnError::Skip).unwrap();
        let mut packets = 0;
        while let Some(k) = c.next_chunk().unwrap() {
            packets += k.packet_count;
        }
        assert_eq!(packets, 5);
        let skipped = c.skipped();
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            (skipped[0].offset, skipped[0].len, skipped[0].packet),
            (84, 16, 4)
        );
    }

    #[test]
    fn a_pcap_stream_shorter_than_its_header_is_a_fault_of_packet_one() {
        let Err(Error::Format(f)) =
            cutter(PCAP_HEADER_START.to_vec(), Fill::Packets(1), OnError::Stop)
        else {
            panic!("a format error")
        };
        assert_eq!((f.offset, f.packet), (0, 1));
        assert!(matches!(
            f.fault,
            Fault::TruncatedFileHeader { have: 10, need: 24 }
        ));
    }

    /// The first 10 bytes of a pcap file header.
    const PCAP_HEADER_START: [u8; 10] =
        [0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00];

    #[test]
    fn pcapng_chunks_from_a_stream_carry_their_section() {
        let bytes = cat(&[&SHB, &IDB, &EPB, &EPB, &EPB]);
        let mut c = cutter(bytes, Fill::Packets(2), OnError::Stop).unwrap();
        let first = c.next_chunk().unwrap().unwrap();
        let second = c.next_chunk().unwrap().unwrap();
        assert!(c.next_chunk().unwrap().is_none());
        assert_eq!((first.packet_count, second.packet_count), (2, 1));
        // The second chunk reads as a capture of its own: section header,
        // interface, then its packet.
        let mut standalone = Vec::new();
        second.write_standalone(&mut standalone).unwrap();
        assert_eq!(standalone, cat(&[&SHB, &IDB, &EPB]));
    }
}

//! bzip2, block by block: a bzip2 stream is a header (`BZh1`–`BZh9`), then
//! blocks, each starting with the 48-bit magic `0x314159265359` at any bit
//! offset and holding its own CRC, then the end-of-stream magic
//! `0x177245385090` and the CRC of the whole stream. Blocks do not depend
//! on each other, so each can be decoded alone.
//!
//! # Finding the blocks
//!
//! A scan looks for both magics at every bit offset (a table of the 16-bit
//! prefixes that the 16 shifted patterns put on byte boundaries, then a
//! full 48-bit check), from the stream's first block, which must sit right
//! after the header. The bits from one magic to the next are a *fragment*.
//! Each fragment is decoded as a stream of its own: the original header,
//! the fragment's bits moved to a byte boundary, an end-of-stream magic and
//! the block's CRC as the stream's. The decoder checks the block CRC and
//! that the block ends exactly where the next magic was found.
//!
//! # False magics
//!
//! The magic can occur by chance inside compressed data (about once in
//! 2^48 bit offsets, or on purpose in a crafted file). It never produces
//! wrong bytes: a fragment's bytes are handed on only after its whole
//! decode succeeded ([`Release::Verified`]), in order, and a fragment that
//! starts at a true block boundary decodes only if the block really ends
//! where the fragment does (the decoder must read the end-of-stream magic
//! right after the block's last symbol, and no magic lies in between, or
//! the scan would have found it). So the first fragment after a false
//! magic fails, and by induction every fragment handed on is a true block.
//! A failed fragment, a stream CRC that does not match the blocks' CRCs, a
//! fragment longer than a block can be, or anything else unexpected sends
//! the rest of the file to the sequential decoder, from the start of the
//! stream (see [`super::parallel`]), which reports real damage with its
//! offsets. Several streams (`cat a.bz2 b.bz2`, lbzip2 and pbzip2 output)
//! follow each other, each checked in the same way.

use std::io::{self, Read};
use std::sync::Arc;

use super::parallel::{Next, Planner, Release, Source, Unit, read_full};

const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
const EOS_MAGIC: u64 = 0x1772_4538_5090;
const MASK48: u64 = (1 << 48) - 1;
/// The most compressed bytes a block can take (900 000 symbols of at most
/// 20 bits, plus tables), with room to spare.
pub(crate) const MAX_BLOCK_BYTES: u64 = 5 << 19;
/// Bytes scanned per read.
const WINDOW: usize = 1 << 20;

/// Which magic was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    Block,
    End,
}

/// Finds magics at any bit offset.
struct Scanner {
    src: Arc<dyn Source>,
    /// Bytes from `start` (8 zero bytes past the end of the input); magics
    /// starting in the first `scan_end` are looked for in them.
    buf: Vec<u8>,
    start: u64,
    scan_end: usize,
    /// Bit `p` set: a shifted magic puts `p` on the two bytes after its first.
    table: Box<[u64; 1024]>,
}

impl Scanner {
    fn new(src: Arc<dyn Source>) -> Scanner {
        let mut table = Box::new([0u64; 1024]);
        for magic in [BLOCK_MAGIC, EOS_MAGIC] {
            for shift in 0..8 {
                let prefix = ((magic >> (8 + shift)) >> 16) as usize & 0xffff;
                table[prefix / 64] |= 1 << (prefix % 64);
            }
        }
        Scanner {
            src,
            buf: Vec::new(),
            start: 0,
            scan_end: 0,
            table,
        }
    }

    /// Makes `buf` hold the bytes from `byte` on (a window of them, and
    /// the 8 after it, so that magics across its end are seen).
    fn load(&mut self, byte: u64) -> io::Result<()> {
        let len = self.src.len();
        let want = (WINDOW + 8).min((len - byte.min(len)) as usize);
        self.buf.clear();
        self.buf.resize(want + 8, 0);
        let got = read_full(&*self.src, byte, &mut self.buf[..want])?;
        self.buf.truncate(got + 8);
        self.start = byte;
        self.scan_end = got.min(WINDOW);
        Ok(())
    }

    /// The first magic at bit offset `from` or later.
    fn find(&mut self, from: u64) -> io::Result<Option<(u64, Magic)>> {
        let bits = self.src.len() * 8;
        let mut byte = from / 8;
        loop {
            if byte * 8 + 48 > bits {
                return Ok(None);
            }
            if byte < self.start || byte >= self.start + self.scan_end as u64 {
                self.load(byte)?;
                if self.scan_end == 0 {
                    return Ok(None); // the input ended early
                }
            }
            let base = (byte - self.start) as usize;
            let end = self.scan_end;
            for i in base..end {
                let prefix = usize::from(u16::from_be_bytes([self.buf[i + 1], self.buf[i + 2]]));
                if self.table[prefix / 64] & (1 << (prefix % 64)) == 0 {
                    continue;
                }
                let v = u64::from_be_bytes(self.buf[i..i + 8].try_into().expect("8"));
                for shift in 0..8u64 {
                    let at = (self.start + i as u64) * 8 + shift;
                    if at < from || at + 48 > bits {
                        continue;
                    }
                    let found = match (v >> (16 - shift)) & MASK48 {
                        BLOCK_MAGIC => Magic::Block,
                        EOS_MAGIC => Magic::End,
                        _ => continue,
                    };
                    return Ok(Some((at, found)));
                }
            }
            byte = self.start + end as u64;
        }
    }
}

/// Reads `count` (at most 57) bits from bit offset `at`.
fn bits_at(src: &dyn Source, at: u64, count: u32) -> io::Result<Option<u64>> {
    let mut b = [0u8; 8];
    if read_full(src, at / 8, &mut b)? * 8 < (at % 8) as usize + count as usize {
        return Ok(None);
    }
    Ok(Some((u64::from_be_bytes(b) << (at % 8)) >> (64 - count)))
}

/// Where the planner is.
#[derive(Debug, Clone, Copy)]
enum At {
    /// A stream header is expected at this byte.
    Header(u64),
    /// Inside the stream started at `stream` (of `level`), at the magic at
    /// bit `bit`; `crc` combines the CRCs of its blocks so far.
    Magic {
        stream: u64,
        level: u8,
        bit: u64,
        kind: Magic,
        crc: u32,
    },
}

/// The blocks of a bzip2 file as units.
pub(crate) struct BlockPlanner {
    src: Arc<dyn Source>,
    scanner: Scanner,
    at: At,
}

impl BlockPlanner {
    pub fn new(src: Arc<dyn Source>) -> BlockPlanner {
        BlockPlanner {
            scanner: Scanner::new(src.clone()),
            src,
            at: At::Header(0),
        }
    }

    /// Reads the stream header at `byte` and finds its first magic.
    fn header(&mut self, byte: u64) -> Result<At, ()> {
        let mut h = [0u8; 4];
        let got = read_full(&*self.src, byte, &mut h).map_err(drop)?;
        if got < 4 || h[..3] != *b"BZh" || !(b'1'..=b'9').contains(&h[3]) {
            return Err(());
        }
        let first = (byte + 4) * 8;
        match self.scanner.find(first).map_err(drop)? {
            Some((bit, kind)) if bit == first => Ok(At::Magic {
                stream: byte,
                level: h[3],
                bit,
                kind,
                crc: 0,
            }),
            _ => Err(()),
        }
    }
}

impl Planner for BlockPlanner {
    fn next(&mut self) -> Next {
        loop {
            match self.at {
                At::Header(byte) if byte == self.src.len() && byte > 0 => return Next::End,
                At::Header(byte) => match self.header(byte) {
                    Ok(at) => self.at = at,
                    Err(()) => return Next::Sequential { restart: byte },
                },
                At::Magic {
                    stream,
                    kind: Magic::End,
                    bit,
                    crc,
                    ..
                } => {
                    match bits_at(&*self.src, bit + 48, 32) {
                        Ok(Some(stored)) if stored as u32 == crc => {}
                        _ => return Next::Sequential { restart: stream },
                    }
                    self.at = At::Header((bit + 80).div_ceil(8));
                }
                At::Magic {
                    stream,
                    level,
                    bit,
                    kind: Magic::Block,
                    crc,
                } => {
                    let (Ok(Some(block_crc)), Ok(Some((end, kind)))) = (
                        bits_at(&*self.src, bit + 48, 32),
                        self.scanner.find(bit + 80),
                    ) else {
                        return Next::Sequential { restart: stream };
                    };
                    if end - bit > MAX_BLOCK_BYTES * 8 {
                        return Next::Sequential { restart: stream };
                    }
                    let block_crc = block_crc as u32;
                    self.at = At::Magic {
                        stream,
                        level,
                        bit: end,
                        kind,
                        crc: crc.rotate_left(1) ^ block_crc,
                    };
                    let src = self.src.clone();
                    return Next::Unit(Unit {
                        compressed: bit / 8..end.div_ceil(8),
                        restart: stream,
                        release: Release::Verified,
                        open: Box::new(move || {
                            let alone = block_alone(&*src, level, bit..end, block_crc)?;
                            Ok(
                                Box::new(bzip2::read::BzDecoder::new(io::Cursor::new(alone)))
                                    as Box<dyn Read>,
                            )
                        }),
                    });
                }
            }
        }
    }
}

/// The fragment of bits `bits` as a stream of its own: header, the bits
/// from a byte boundary, the end-of-stream magic, `crc` as the stream CRC.
fn block_alone(
    src: &dyn Source,
    level: u8,
    bits: std::ops::Range<u64>,
    crc: u32,
) -> io::Result<Vec<u8>> {
    let first = bits.start / 8;
    let last = bits.end.div_ceil(8);
    let mut raw = vec![0u8; (last - first) as usize + 1];
    if read_full(src, first, &mut raw[..(last - first) as usize])? < (last - first) as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "bzip2 block cut short",
        ));
    }
    let shift = (bits.start % 8) as u32;
    let nbits = bits.end - bits.start;
    let mut out = Vec::with_capacity(raw.len() + 16);
    out.extend([b'B', b'Z', b'h', level]);
    let whole = (nbits / 8) as usize;
    out.extend((0..whole).map(|j| {
        if shift == 0 {
            raw[j]
        } else {
            raw[j] << shift | raw[j + 1] >> (8 - shift)
        }
    }));
    let mut acc: u128 = 0;
    let mut count = 0u32;
    let tail = (nbits % 8) as u32;
    if tail > 0 {
        let byte = if shift == 0 {
            raw[whole]
        } else {
            raw[whole] << shift | raw[whole + 1] >> (8 - shift)
        };
        acc = u128::from(byte >> (8 - tail));
        count = tail;
    }
    acc = acc << 48 | u128::from(EOS_MAGIC);
    acc = acc << 32 | u128::from(crc);
    count += 80;
    let pad = count.div_ceil(8) * 8 - count;
    acc <<= pad;
    count += pad;
    out.extend(&acc.to_be_bytes()[16 - (count / 8) as usize..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decompress::parallel::MemSource;
    use std::io::Write;

    fn bz2(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn sample(n: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| (i.wrapping_mul(2654435761) >> 13).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_block_decodes_alone_and_in_order_gives_the_file() {
        let data = sample(200_000); // 800 kB: nine blocks at level 1 (99 981 bytes each)
        let mut packed = bz2(&data, 1);
        packed.extend(bz2(&data[..1000], 9));
        let src: Arc<dyn Source> = Arc::new(MemSource(Arc::new(packed)));
        let mut p = BlockPlanner::new(src);
        let (mut got, mut units) = (Vec::new(), 0);
        loop {
            match p.next() {
                Next::Unit(u) => {
                    units += 1;
                    (u.open)().unwrap().read_to_end(&mut got).unwrap();
                }
                Next::End => break,
                Next::Sequential { restart } => panic!("sequential from {restart}"),
            }
        }
        assert_eq!(units, 10);
        let mut want = data.clone();
        want.extend(&data[..1000]);
        assert_eq!(got, want);
    }

    #[test]
    fn a_fragment_cut_at_a_false_boundary_never_decodes() {
        let data = sample(50_000);
        let packed = bz2(&data, 1);
        let src: Arc<dyn Source> = Arc::new(MemSource(Arc::new(packed.clone())));
        let mut scanner = Scanner::new(src.clone());
        let (first, _) = scanner.find(32).unwrap().unwrap();
        let (end, kind) = scanner.find(first + 80).unwrap().unwrap();
        assert_eq!((first, kind), (32, Magic::Block));
        let crc = bits_at(&*src, first + 48, 32).unwrap().unwrap() as u32;
        let decode = |bits: std::ops::Range<u64>, crc: u32| {
            let alone = block_alone(&*src, b'1', bits, crc).unwrap();
            let mut out = Vec::new();
            bzip2::read::BzDecoder::new(&alone[..])
                .read_to_end(&mut out)
                .map(|_| out)
        };
        let block = decode(first..end, crc).unwrap();
        assert!(
            block.len() > 50_000 && data.starts_with(&block),
            "{}",
            block.len()
        );
        // As if a false magic had been found inside the block: the block
        // cut there (and closed with an end-of-stream magic) never decodes.
        for cut in (first + 200..end - 8).step_by(997) {
            assert!(decode(first..cut, crc).is_err(), "cut at bit {cut}");
        }
    }

    #[test]
    fn the_scan_finds_magics_at_every_bit_offset() {
        for shift in 0..8u64 {
            for magic in [BLOCK_MAGIC, EOS_MAGIC] {
                let mut data = vec![0x55u8; 64];
                let at = 20 * 8 + shift;
                // Write the 48 bits at bit `at`.
                for k in 0..48 {
                    let bit = (magic >> (47 - k)) & 1;
                    let pos = at + k;
                    let (byte, off) = ((pos / 8) as usize, 7 - (pos % 8));
                    data[byte] = data[byte] & !(1 << off) | (bit as u8) << off;
                }
                let mut s = Scanner::new(Arc::new(MemSource(Arc::new(data))));
                let want = if magic == BLOCK_MAGIC {
                    Magic::Block
                } else {
                    Magic::End
                };
                assert_eq!(s.find(0).unwrap(), Some((at, want)), "shift {shift}");
                assert_eq!(s.find(at + 1).unwrap(), None, "shift {shift}");
            }
        }
    }
}

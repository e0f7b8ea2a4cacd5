//! xz files of several blocks (what `xz -T`, pixz and lzma-rust2's
//! multi-threaded writer produce): the index at the end of each stream
//! lists every block's compressed and decompressed size, so the blocks can
//! be found without decoding anything and decoded on their own.
//!
//! The streams are read from the end of the file backwards: stream padding,
//! the footer (magic, CRC), the index it points to (at most
//! [`MAX_INDEX`] bytes, checked before it is read; its CRC and sizes
//! checked), and the stream header the block sizes lead back to (its flags
//! must match the footer's). Anything that does not add up makes the whole
//! file sequential. Each block is decoded as a one-block xz stream (the
//! original header, the block, an index and footer written for it), so
//! the block's own check (CRC32, CRC64 or SHA-256) and its sizes are
//! verified by the decoder. Files of one block stay sequential.

use std::io::{self, Read};
use std::sync::Arc;

use super::parallel::{Next, Planner, RangeReader, Release, Source, Unit, read_full};

/// The longest index read (about four million blocks).
pub(crate) const MAX_INDEX: u64 = 64 << 20;
const HEADER_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];

/// One block, as the index gives it.
#[derive(Debug, Clone, Copy)]
struct Block {
    offset: u64,
    unpadded: u64,
    uncompressed: u64,
}

/// One stream: where it starts, its header, and its blocks.
#[derive(Debug, Clone)]
struct Stream {
    start: u64,
    header: [u8; 12],
    blocks: Vec<Block>,
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// Reads a variable-length integer (at most 9 bytes).
fn vli(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_vli(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the stream that ends at `end` (its footer's last byte).
fn stream_before(src: &dyn Source, end: u64) -> Option<Stream> {
    let mut footer = [0u8; 12];
    if end < 24 || read_full(src, end - 12, &mut footer).ok()? < 12 || footer[10..] != *b"YZ" {
        return None;
    }
    if crc32(&footer[4..10]) != u32::from_le_bytes(footer[..4].try_into().ok()?) {
        return None;
    }
    let backward = (u64::from(u32::from_le_bytes(footer[4..8].try_into().ok()?)) + 1) * 4;
    if backward > MAX_INDEX || backward + 24 > end {
        return None;
    }
    let index_start = end - 12 - backward;
    let mut index = vec![0u8; backward as usize];
    if read_full(src, index_start, &mut index).ok()? < index.len() {
        return None;
    }
    let (body, crc) = index.split_at(index.len() - 4);
    if index[0] != 0 || crc32(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let mut pos = 1;
    let count = vli(body, &mut pos)?;
    let mut sizes = Vec::new();
    let mut blocks_len = 0u64;
    for _ in 0..count {
        let unpadded = vli(body, &mut pos)?;
        let uncompressed = vli(body, &mut pos)?;
        if unpadded < 5 {
            return None;
        }
        sizes.push((blocks_len, unpadded, uncompressed));
        blocks_len = blocks_len.checked_add(unpadded.div_ceil(4) * 4)?;
    }
    if body.len() != pos.div_ceil(4) * 4 || body[pos..].iter().any(|&b| b != 0) {
        return None;
    }
    let start = index_start.checked_sub(blocks_len)?.checked_sub(12)?;
    let mut header = [0u8; 12];
    read_full(src, start, &mut header).ok()?;
    if header[..6] != HEADER_MAGIC || header[6..8] != footer[8..10] {
        return None;
    }
    let blocks = sizes
        .into_iter()
        .map(|(at, unpadded, uncompressed)| Block {
            offset: start + 12 + at,
            unpadded,
            uncompressed,
        })
        .collect();
    Some(Stream {
        start,
        header,
        blocks,
    })
}

/// Every stream of the file, first to last; `None` if the file does not
/// add up.
fn streams(src: &dyn Source) -> Option<Vec<Stream>> {
    let mut end = src.len();
    let mut out = Vec::new();
    while end > 0 {
        // Stream padding: zero bytes, four at a time.
        let mut word = [0u8; 4];
        while end >= 4 && read_full(src, end - 4, &mut word).ok()? == 4 && word == [0; 4] {
            end -= 4;
        }
        let stream = stream_before(src, end)?;
        end = stream.start;
        out.push(stream);
    }
    out.reverse();
    Some(out)
}

/// The blocks of a multi-block xz file as units.
pub(crate) struct BlockPlanner {
    src: Arc<dyn Source>,
    streams: std::vec::IntoIter<Stream>,
    current: Option<(Arc<Stream>, usize)>,
}

/// The block plan of an xz file, if it has two blocks or more.
pub(crate) fn plan(src: Arc<dyn Source>) -> Option<BlockPlanner> {
    let streams = streams(&*src)?;
    if streams.iter().map(|s| s.blocks.len()).sum::<usize>() < 2 {
        return None;
    }
    Some(BlockPlanner {
        src,
        streams: streams.into_iter(),
        current: None,
    })
}

impl Planner for BlockPlanner {
    fn next(&mut self) -> Next {
        loop {
            if let Some((stream, i)) = &mut self.current
                && let Some(&block) = stream.blocks.get(*i)
            {
                *i += 1;
                let (stream, src) = (stream.clone(), self.src.clone());
                let end = block.offset + block.unpadded.div_ceil(4) * 4;
                return Next::Unit(Unit {
                    compressed: block.offset..end,
                    restart: stream.start,
                    release: Release::Streamed,
                    open: Box::new(move || one_block_stream(src, &stream, block)),
                });
            }
            match self.streams.next() {
                Some(s) => self.current = Some((Arc::new(s), 0)),
                None => return Next::End,
            }
        }
    }
}

/// A decoder of `block` alone: the stream's header, the block, and an
/// index and footer for that one block.
fn one_block_stream(
    src: Arc<dyn Source>,
    stream: &Stream,
    block: Block,
) -> io::Result<Box<dyn Read>> {
    let mut index = vec![0u8];
    put_vli(&mut index, 1);
    put_vli(&mut index, block.unpadded);
    put_vli(&mut index, block.uncompressed);
    while index.len() % 4 != 0 {
        index.push(0);
    }
    let crc = crc32(&index);
    index.extend(crc.to_le_bytes());
    let mut footer = Vec::with_capacity(12);
    let backward = (index.len() as u32 / 4) - 1;
    let mut tail = backward.to_le_bytes().to_vec();
    tail.extend(&stream.header[6..8]);
    footer.extend(crc32(&tail).to_le_bytes());
    footer.extend(tail);
    footer.extend(b"YZ");
    let end = block.offset + block.unpadded.div_ceil(4) * 4;
    let whole = io::Cursor::new(stream.header.to_vec())
        .chain(RangeReader::new(src, block.offset..end))
        .chain(io::Cursor::new(index))
        .chain(io::Cursor::new(footer));
    Ok(Box::new(lzma_rust2::XzReader::new(
        io::BufReader::with_capacity(1 << 16, whole),
        false,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decompress::parallel::MemSource;
    use std::io::Write;

    fn xz(data: &[u8], block: u64) -> Vec<u8> {
        let mut opts = lzma_rust2::XzOptions::with_preset(1);
        opts.set_block_size(std::num::NonZeroU64::new(block));
        let mut e = lzma_rust2::XzWriter::new(Vec::new(), opts).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_block_decodes_alone_to_its_part_of_the_file() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i / 7).to_le_bytes())
            .collect();
        let mut packed = xz(&data, 100_000);
        packed.extend([0u8; 8]); // stream padding
        packed.extend(xz(&data[..5000], 1 << 20));
        let src: Arc<dyn Source> = Arc::new(MemSource(Arc::new(packed)));
        let all = streams(&*src).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].blocks.len() >= 2, "{:?}", all[0].blocks);
        assert_eq!(all[1].blocks.len(), 1);
        let mut got = Vec::new();
        let mut p = plan(src).unwrap();
        while let Next::Unit(u) = p.next() {
            (u.open)().unwrap().read_to_end(&mut got).unwrap();
        }
        let mut want = data.clone();
        want.extend(&data[..5000]);
        assert_eq!(got, want);
    }

    #[test]
    fn an_index_that_does_not_add_up_means_no_plan() {
        let data = vec![5u8; 3 << 20];
        let packed = xz(&data, 1 << 20);
        let src: Arc<dyn Source> = Arc::new(MemSource(Arc::new(packed.clone())));
        assert!(plan(src).is_some());
        // One byte of the index changed: its CRC no longer matches.
        let mut bad = packed.clone();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert!(plan(Arc::new(MemSource(Arc::new(bad)))).is_none());
        // A single block: sequential.
        let one = xz(&data, 1 << 30);
        assert!(plan(Arc::new(MemSource(Arc::new(one)))).is_none());
    }
}

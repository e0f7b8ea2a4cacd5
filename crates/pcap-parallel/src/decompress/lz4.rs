//! LZ4: the frame format (`lz4`'s default, decoded by lz4_flex) and the
//! legacy format (`lz4 -l`, magic `02 21 4c 18`).
//!
//! A legacy stream is its magic number, then blocks: a 4-byte
//! little-endian compressed length and that many bytes, each block
//! decompressing on its own to 8 MiB (the last to less). It ends at the end
//! of the input, or where another magic number stands in place of a block
//! length: a legacy magic starts a new legacy stream, a frame magic hands
//! the rest to the frame decoder (as `lz4 -d` does with concatenated files).

use std::io::{self, BufRead, Read};

use super::peek::Peek;

/// Magic number of a legacy stream, little-endian (`02 21 4c 18`).
pub(crate) const LEGACY_MAGIC: u32 = 0x184C_2102;
const FRAME_MAGIC: u32 = 0x184D_2204;
/// Decompressed size of every legacy block but the last.
const LEGACY_BLOCK: usize = 8 << 20;
/// The longest a legacy block can be compressed (LZ4_compressBound(8 MiB)).
const LEGACY_BOUND: usize = LEGACY_BLOCK + LEGACY_BLOCK / 255 + 16;

/// Decodes LZ4 input in either format, told apart by its first four bytes.
pub(crate) fn decoder(raw: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut input = Peek::new(raw, 1 << 16);
    let head = input.peek(4)?;
    if head.len() == 4 && u32::from_le_bytes(head.try_into().expect("4")) == LEGACY_MAGIC {
        return Ok(Box::new(Legacy {
            input: Some(input),
            block: Vec::new(),
            out: Vec::new(),
            filled: 0,
            pos: 0,
            rest: None,
        }));
    }
    Ok(Box::new(lz4_flex::frame::FrameDecoder::new(input)))
}

/// The legacy format's decoder.
struct Legacy {
    input: Option<Peek<Box<dyn Read + Send>>>,
    /// The compressed block being read (allocated once, to at most the bound).
    block: Vec<u8>,
    /// The decompressed block being handed out: `out[pos..filled]` is left.
    out: Vec<u8>,
    filled: usize,
    pos: usize,
    /// Frames that follow the legacy stream.
    rest: Option<lz4_flex::frame::FrameDecoder<Peek<Box<dyn Read + Send>>>>,
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("lz4 legacy stream: {what}"),
    )
}

impl Legacy {
    /// Decodes the next block into `out`; false at the end of the input.
    fn next_block(&mut self) -> io::Result<bool> {
        let Some(input) = self.input.as_mut() else {
            return Ok(false);
        };
        loop {
            let word = input.peek(4)?;
            match word.len() {
                0 => return Ok(false),
                1..=3 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "lz4 legacy block length cut short",
                    ));
                }
                _ => {}
            }
            let word = u32::from_le_bytes(word.try_into().expect("4"));
            if word == LEGACY_MAGIC {
                input.consume(4);
                continue;
            }
            if word == FRAME_MAGIC || word & 0xFFFF_FFF0 == 0x184D_2A50 {
                let input = self.input.take().expect("checked");
                self.rest = Some(lz4_flex::frame::FrameDecoder::new(input));
                return Ok(false);
            }
            let len = word as usize;
            if len > LEGACY_BOUND {
                return Err(corrupt(&format!(
                    "block length {len} is more than a block can take ({LEGACY_BOUND})"
                )));
            }
            input.consume(4);
            self.block.resize(len, 0);
            input.read_exact(&mut self.block).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "lz4 legacy block cut short")
                } else {
                    e
                }
            })?;
            // Zeroed once, then overwritten block after block.
            self.out.resize(LEGACY_BLOCK, 0);
            self.filled = lz4_flex::block::decompress_into(&self.block, &mut self.out)
                .map_err(|e| corrupt(&e.to_string()))?;
            self.pos = 0;
            return Ok(true);
        }
    }
}

impl Read for Legacy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.filled {
            if !self.next_block()? {
                return match &mut self.rest {
                    Some(frames) => frames.read(buf),
                    None => Ok(0),
                };
            }
        }
        let n = buf.len().min(self.filled - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data` in the legacy format, in blocks of `block` bytes.
    fn legacy(data: &[u8], block: usize) -> Vec<u8> {
        let mut out = LEGACY_MAGIC.to_le_bytes().to_vec();
        for piece in data.chunks(block) {
            let c = lz4_flex::block::compress(piece);
            out.extend((c.len() as u32).to_le_bytes());
            out.extend(c);
        }
        out
    }

    fn decode(packed: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoder(Box::new(io::Cursor::new(packed)))?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn legacy_streams_concatenated_and_followed_by_a_frame_decode_in_order() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i % 253) as u8 ^ (i >> 12) as u8)
            .collect();
        let mut packed = legacy(&data[..LEGACY_BLOCK.min(data.len())], LEGACY_BLOCK);
        packed.extend(legacy(&data[..1000], LEGACY_BLOCK));
        let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
        io::Write::write_all(&mut e, &data[..5000]).unwrap();
        packed.extend(e.finish().unwrap());
        let mut want = data.clone();
        want.extend(&data[..1000]);
        want.extend(&data[..5000]);
        assert_eq!(decode(packed).unwrap(), want);
    }

    #[test]
    fn damaged_legacy_streams_fail_cleanly() {
        let data = vec![42u8; 100_000];
        let packed = legacy(&data, LEGACY_BLOCK);
        // Cut inside the block.
        let err = decode(packed[..packed.len() - 3].to_vec()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // An absurd block length is refused before anything is allocated for it.
        let mut absurd = packed.clone();
        absurd[4..8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let err = decode(absurd).unwrap_err();
        assert!(
            err.to_string().contains("more than a block can take"),
            "{err}"
        );
    }
}

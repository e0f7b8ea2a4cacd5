//! BGZF (bgzip, samtools, many capture archives): gzip members of at most
//! 64 KiB, each saying its own length in a `BC` extra field, so every
//! member can be found from the headers alone and decoded on its own.
//!
//! Each member is decoded with its CRC and length checked, and must end
//! exactly where its header said. A member without the field (a plain gzip
//! member appended to a BGZF file) ends the plan: from there the file is
//! decoded sequentially.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use super::parallel::{Next, Planner, RangeReader, Release, Source, Unit, read_full};

/// The length of the member starting at `offset`, from its `BC` field.
fn member_len(src: &dyn Source, offset: u64) -> Option<u64> {
    let mut h = [0u8; 12];
    if read_full(src, offset, &mut h).ok()? < 12 || h[..3] != [0x1f, 0x8b, 8] || h[3] & 4 == 0 {
        return None;
    }
    let xlen = usize::from(u16::from_le_bytes([h[10], h[11]]));
    let mut extra = vec![0u8; xlen]; // at most 64 KiB
    if read_full(src, offset + 12, &mut extra).ok()? < xlen {
        return None;
    }
    let mut fields = &extra[..];
    while fields.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([fields[2], fields[3]]));
        let data = fields.get(4..4 + len)?;
        if fields[..2] == *b"BC" && len == 2 {
            return Some(u64::from(u16::from_le_bytes([data[0], data[1]])) + 1);
        }
        fields = &fields[4 + len..];
    }
    None
}

/// BGZF members as units.
pub(crate) struct MemberPlanner {
    src: Arc<dyn Source>,
    at: u64,
}

/// The member plan of a gzip file, if it is BGZF.
pub(crate) fn plan(src: Arc<dyn Source>) -> Option<MemberPlanner> {
    member_len(&*src, 0)?;
    Some(MemberPlanner { src, at: 0 })
}

impl Planner for MemberPlanner {
    fn next(&mut self) -> Next {
        let start = self.at;
        if start == self.src.len() {
            return Next::End;
        }
        let end = match member_len(&*self.src, start) {
            Some(len) if start + len <= self.src.len() => start + len,
            _ => return Next::Sequential { restart: start },
        };
        self.at = end;
        let src = self.src.clone();
        Next::Unit(Unit {
            compressed: start..end,
            restart: start,
            release: Release::Streamed,
            open: Box::new(move || {
                let input = BufReader::with_capacity(1 << 16, RangeReader::new(src, start..end));
                Ok(Box::new(Member(flate2::bufread::GzDecoder::new(input))) as Box<dyn Read>)
            }),
        })
    }
}

/// One member's decoder, which must use up exactly the member's bytes.
struct Member(flate2::bufread::GzDecoder<BufReader<RangeReader>>);

impl Read for Member {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.0.get_mut().fill_buf()?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "gzip member shorter than its BGZF header says",
            ));
        }
        Ok(n)
    }
}

//! BGZF (bgzip, samtools, many capture archives): gzip members of at most
//! 64 KiB, each saying its own length in a `BC` extra field, so every
//! member can be found from the headers alone and decoded on its own.
//!
//! Consecutive members are decoded together as one unit of about
//! [`super::parallel::GROUP`] compressed bytes, each member's CRC and
//! length checked; the unit must end exactly where a member ends. A member without the field (a plain gzip
//! member appended to a BGZF file) ends the plan: from there the file is
//! decoded sequentially.

use std::io::{BufReader, Read};
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
        // Members of at most 64 KiB are grouped into units of about
        // GROUP compressed bytes, so that handing on a unit costs little
        // beside decoding it.
        while self.at < self.src.len() && self.at - start < super::parallel::GROUP {
            match member_len(&*self.src, self.at) {
                Some(len) if self.at + len <= self.src.len() => self.at += len,
                _ if self.at == start => return Next::Sequential { restart: start },
                _ => break, // the next call says so
            }
        }
        let (src, end) = (self.src.clone(), self.at);
        Next::Unit(Unit {
            compressed: start..end,
            restart: start,
            release: Release::Streamed,
            open: Box::new(move || {
                // The range ends where a member ends, or decoding fails.
                let input = BufReader::with_capacity(1 << 16, RangeReader::new(src, start..end));
                Ok(Box::new(flate2::bufread::MultiGzDecoder::new(input)) as Box<dyn Read>)
            }),
        })
    }
}

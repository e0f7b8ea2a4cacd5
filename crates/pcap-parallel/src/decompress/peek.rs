//! A buffered reader that can look ahead a few bytes before they are
//! consumed (a frame's header, a block's length), counting what was consumed.

use std::io::{self, BufRead, Read};

/// Buffered reading with [`Peek::peek`]: at least `n` bytes, unless the
/// input ends first.
pub(crate) struct Peek<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Bytes consumed so far (the offset of the next byte in the input).
    consumed: u64,
}

impl<R: Read> Peek<R> {
    /// A reader over `inner` with a buffer of `capacity` bytes.
    pub fn new(inner: R, capacity: usize) -> Peek<R> {
        Peek {
            inner,
            buf: vec![0; capacity].into_boxed_slice(),
            pos: 0,
            end: 0,
            consumed: 0,
        }
    }

    /// The next `n` bytes (`n` at most the capacity), or fewer at the end
    /// of the input; nothing is consumed.
    pub fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        debug_assert!(n <= self.buf.len());
        if self.end - self.pos < n {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            while self.end < n {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(0) => break,
                    Ok(k) => self.end += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.end.min(self.pos + n)])
    }

    /// Offset of the next unconsumed byte.
    pub fn position(&self) -> u64 {
        self.consumed
    }
}

impl<R: Read> BufRead for Peek<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(k) => {
                        self.end = k;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.end - self.pos);
        self.pos += amount;
        self.consumed += amount as u64;
    }
}

impl<R: Read> Read for Peek<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeking_across_short_reads_sees_the_bytes_reading_then_returns() {
        // A reader that hands out one byte at a time, like a slow pipe.
        struct OneByOne(io::Cursor<Vec<u8>>);
        impl Read for OneByOne {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let data: Vec<u8> = (0..100u8).collect();
        let mut p = Peek::new(OneByOne(io::Cursor::new(data.clone())), 16);
        assert_eq!(p.peek(10).unwrap(), &data[..10]);
        let mut got = Vec::new();
        p.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
        assert_eq!(p.position(), 100);
        assert!(p.peek(4).unwrap().is_empty());
    }
}

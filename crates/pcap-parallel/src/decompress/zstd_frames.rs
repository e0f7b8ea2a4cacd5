//! Zstandard, frame by frame: each frame's header is read before the frame
//! is decoded, so a window larger than the limit is refused with an error
//! that says so (instead of zstd's "requires too much memory"), and the
//! frames of a multi-frame file (pzstd, `zstd --format` concatenations) can
//! be located without decoding them, for frame-parallel decoding.
//!
//! Frame format: RFC 8878. A frame is a magic number, a header (whose
//! window descriptor, or content size for single-segment frames, gives the
//! window), blocks each with a 3-byte header giving its size, and an
//! optional checksum. Skippable frames carry their size.

use std::io::{self, BufRead, Read};

use zstd::stream::raw::{DParameter, Decoder, Operation};

use super::parallel::{GROUP, Next, Planner, RangeReader, Release, Source, Unit, read_full};
use super::peek::Peek;
use std::sync::Arc;

const MAGIC: u32 = 0xFD2F_B528;
/// The largest window libzstd can decode (`ZSTD_WINDOWLOG_MAX_64`).
const WINDOW_LOG_MAX: u32 = 31;
/// The longest frame header: magic, descriptor, window, dictionary id, size.
pub(crate) const MAX_HEADER: usize = 4 + 1 + 1 + 4 + 8;

/// A zstd frame whose window is larger than the configured limit: decoding
/// it would hold that much decoded data in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTooLarge {
    /// The window the frame asks for, in bytes.
    pub window: u64,
    /// The limit in force ([`crate::Decoding::max_zstd_window`]).
    pub limit: u64,
    /// Compressed offset of the frame.
    pub frame_offset: u64,
}

impl std::fmt::Display for WindowTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the zstd frame at compressed offset {} needs a window of {} bytes, more than the limit of {} bytes",
            self.frame_offset, self.window, self.limit
        )
    }
}

impl std::error::Error for WindowTooLarge {}

/// What starts at a frame boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// A zstd frame: its header's length, window, and whether a checksum
    /// follows the last block.
    Frame {
        header_len: usize,
        window: u64,
        checksum: bool,
    },
    /// A skippable frame of this many bytes in all.
    Skippable { len: u64 },
}

fn corrupt(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Reads the header of the frame at the start of `b` (which holds
/// [`MAX_HEADER`] bytes, or fewer at the end of the input).
pub(crate) fn parse_header(b: &[u8]) -> io::Result<Header> {
    let short = || io::Error::new(io::ErrorKind::UnexpectedEof, "zstd frame header cut short");
    let magic = u32::from_le_bytes(b.get(..4).ok_or_else(short)?.try_into().expect("4"));
    if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
        let size = u32::from_le_bytes(b.get(4..8).ok_or_else(short)?.try_into().expect("4"));
        return Ok(Header::Skippable {
            len: 8 + u64::from(size),
        });
    }
    if magic != MAGIC {
        return Err(corrupt(format!("not a zstd frame (magic {magic:08x})")));
    }
    let fhd = *b.get(4).ok_or_else(short)?;
    if fhd & 0x08 != 0 {
        return Err(corrupt("zstd frame header with its reserved bit set"));
    }
    let single_segment = fhd & 0x20 != 0;
    let dict_len = [0, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_len = match fhd >> 6 {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let window_len = usize::from(!single_segment);
    let header_len = 5 + window_len + dict_len + fcs_len;
    let h = b.get(..header_len).ok_or_else(short)?;
    let window = if single_segment {
        let f = &h[5 + dict_len..];
        match fcs_len {
            1 => u64::from(f[0]),
            2 => u64::from(u16::from_le_bytes([f[0], f[1]])) + 256,
            4 => u64::from(u32::from_le_bytes(f[..4].try_into().expect("4"))),
            _ => u64::from_le_bytes(f[..8].try_into().expect("8")),
        }
    } else {
        let wd = h[5];
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        base + (base / 8) * u64::from(wd & 7)
    };
    Ok(Header::Frame {
        header_len,
        window,
        checksum: fhd & 0x04 != 0,
    })
}

/// Checks a frame's window against `limit`.
fn check_window(window: u64, limit: u64, frame_offset: u64) -> io::Result<()> {
    if window > limit {
        return Err(io::Error::other(WindowTooLarge {
            window,
            limit,
            frame_offset,
        }));
    }
    Ok(())
}

thread_local! {
    /// A decoder kept for the thread's next [`ZstdFrames`]: a decoding
    /// context keeps its window buffer, so frames decoded one after another
    /// on a pool thread do not each allocate (and fault in) a new window.
    static SPARE: std::cell::RefCell<Option<Decoder<'static>>> = const { std::cell::RefCell::new(None) };
}

/// A zstd decoder that reads frame by frame, checking each frame's window.
pub(crate) struct ZstdFrames<R> {
    input: Peek<R>,
    decoder: Option<Decoder<'static>>,
    in_frame: bool,
    limit: u64,
    /// Compressed offset of `input`'s first byte in the whole file.
    base: u64,
}

impl<R: Read> ZstdFrames<R> {
    /// Decodes `inner`, which starts at compressed offset `base`; frames
    /// with a window over `limit` bytes are refused.
    pub fn new(inner: R, limit: u64, base: u64) -> io::Result<ZstdFrames<R>> {
        let decoder = match SPARE.with(|s| s.borrow_mut().take()) {
            Some(mut d) => {
                d.reinit()?; // whatever a failed frame left behind is dropped
                d
            }
            None => {
                let mut d = Decoder::new()?;
                // The limit is ours (checked per frame); libzstd's own is the most it can do.
                d.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))?;
                d
            }
        };
        Ok(ZstdFrames {
            input: Peek::new(inner, 1 << 17),
            decoder: Some(decoder),
            in_frame: false,
            limit,
            base,
        })
    }

    /// Looks at the next frame's header; false at the end of the input.
    fn start_frame(&mut self) -> io::Result<bool> {
        let frame_offset = self.base + self.input.position();
        let head = self.input.peek(MAX_HEADER)?;
        if head.is_empty() {
            return Ok(false);
        }
        match parse_header(head)? {
            Header::Skippable { len } => {
                let mut skip = (&mut self.input).take(len);
                let skipped = io::copy(&mut skip, &mut io::sink())?;
                if skipped < len {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "zstd skippable frame cut short",
                    ));
                }
            }
            Header::Frame { window, .. } => {
                check_window(window, self.limit, frame_offset)?;
                self.in_frame = true;
            }
        }
        Ok(true)
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame && !self.start_frame()? {
                return Ok(0);
            }
            if !self.in_frame {
                continue; // a skippable frame was passed over
            }
            let input = self.input.fill_buf()?;
            let at_end = input.is_empty();
            let decoder = self.decoder.as_mut().expect("kept until dropped");
            let status = decoder.run_on_buffers(input, out)?;
            self.input.consume(status.bytes_read);
            if status.remaining == 0 {
                self.in_frame = false;
            } else if at_end && status.bytes_written == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "zstd frame cut short",
                ));
            }
            if status.bytes_written > 0 {
                return Ok(status.bytes_written);
            }
        }
    }
}

impl<R> Drop for ZstdFrames<R> {
    fn drop(&mut self) {
        let decoder = self.decoder.take();
        // During thread exit the slot may be gone already: then it is dropped.
        let _ = SPARE.try_with(|s| *s.borrow_mut() = decoder);
    }
}

/// Frames as units for parallel decoding.
pub(crate) struct FramePlanner {
    src: Arc<dyn Source>,
    at: u64,
    limit: u64,
}

/// The frame plan of a zstd file.
pub(crate) fn plan(src: Arc<dyn Source>, limit: u64) -> Option<FramePlanner> {
    Some(FramePlanner { src, at: 0, limit })
}

impl Planner for FramePlanner {
    fn next(&mut self) -> Next {
        let start = self.at;
        if start == self.src.len() {
            return Next::End;
        }
        // Small frames are grouped into units of about GROUP compressed bytes.
        while self.at < self.src.len() && self.at - start < GROUP {
            match frame_end(&*self.src, self.at, self.limit) {
                Ok(end) => self.at = end,
                // The sequential decoder says what is wrong, where.
                Err(_) if self.at == start => return Next::Sequential { restart: start },
                Err(_) => break, // the next call says so
            }
        }
        let (src, limit, end) = (self.src.clone(), self.limit, self.at);
        Next::Unit(Unit {
            compressed: start..end,
            restart: start,
            release: Release::Streamed,
            open: Box::new(move || {
                let range = RangeReader::new(src, start..end);
                Ok(Box::new(ZstdFrames::new(range, limit, start)?) as Box<dyn Read>)
            }),
        })
    }
}

/// Where the frame starting at `offset` of `src` ends, found from its
/// header and block headers without decoding it; its window is checked.
pub(crate) fn frame_end(src: &dyn Source, offset: u64, limit: u64) -> io::Result<u64> {
    let mut head = [0u8; MAX_HEADER];
    let got = read_full(src, offset, &mut head)?;
    match parse_header(&head[..got])? {
        Header::Skippable { len } => {
            let end = offset + len;
            if end > src.len() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "zstd skippable frame cut short",
                ));
            }
            Ok(end)
        }
        Header::Frame {
            header_len,
            window,
            checksum,
        } => {
            check_window(window, limit, offset)?;
            let mut at = offset + header_len as u64;
            loop {
                let mut bh = [0u8; 3];
                if read_full(src, at, &mut bh)? < 3 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "zstd frame cut short",
                    ));
                }
                let h = u32::from(bh[0]) | u32::from(bh[1]) << 8 | u32::from(bh[2]) << 16;
                let last = h & 1 == 1;
                let size = u64::from(h >> 3);
                let stored = match (h >> 1) & 3 {
                    0 | 2 => size,
                    1 => 1,
                    _ => return Err(corrupt("zstd block of the reserved type")),
                };
                at += 3 + stored;
                if last {
                    break;
                }
            }
            let end = at + if checksum { 4 } else { 0 };
            if end > src.len() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "zstd frame cut short",
                ));
            }
            Ok(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_read_from_frame_headers() {
        // A single-segment frame: the window is the content size (4 bytes).
        let hdr = [0x28, 0xb5, 0x2f, 0xfd, 0xa4, 0x00, 0x00, 0x10, 0x00];
        match parse_header(&hdr).unwrap() {
            Header::Frame {
                window,
                header_len,
                checksum,
            } => assert_eq!((window, header_len, checksum), (1 << 20, 9, true)),
            h => panic!("{h:?}"),
        }
        // A window descriptor: exponent 21 - 10, mantissa 3 (2 MiB + 3/8).
        let hdr = [0x28, 0xb5, 0x2f, 0xfd, 0x00, (11 << 3) | 3];
        match parse_header(&hdr).unwrap() {
            Header::Frame { window, .. } => assert_eq!(window, (1 << 21) + (1 << 18) * 3),
            h => panic!("{h:?}"),
        }
    }

    #[test]
    fn a_window_over_the_limit_is_refused_by_name() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let packed = zstd::encode_all(&data[..], 1).unwrap();
        let mut r = ZstdFrames::new(&packed[..], 1 << 16, 0).unwrap();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        let w = err
            .get_ref()
            .unwrap()
            .downcast_ref::<WindowTooLarge>()
            .unwrap();
        assert_eq!(w.limit, 1 << 16);
        assert!(w.window > 1 << 16);
        let mut r = ZstdFrames::new(&packed[..], 1 << 30, 0).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }
}

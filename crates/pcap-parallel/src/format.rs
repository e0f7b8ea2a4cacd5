//! Format detection from magic bytes (never from a file name).
//!
//! Two layers are recognised: an optional compression wrapper
//! ([`Compression`]) and the capture format inside it ([`CaptureFormat`]).
//!
//! ```
//! use pcap_parallel::{CaptureFormat, Compression, Endian, PcapVariant};
//!
//! assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
//! assert_eq!(Compression::detect(&[0xd4, 0xc3, 0xb2, 0xa1]), Compression::None);
//! assert_eq!(Compression::detect(&[0x02, 0x21, 0x4c, 0x18]), Compression::Lz4); // lz4 -l
//!
//! let f = CaptureFormat::detect(&[0xa1, 0xb2, 0x3c, 0x4d]).unwrap();
//! assert_eq!(f, CaptureFormat::Pcap { variant: PcapVariant::Nanosecond, endian: Endian::Big });
//! assert_eq!(CaptureFormat::detect(b"\x0a\x0d\x0d\x0a"), Some(CaptureFormat::Pcapng));
//! assert_eq!(CaptureFormat::detect(b"GIF8"), None);
//! ```

use std::fmt;

/// Byte order of a pcap file or a pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Least significant byte first (x86, ARM).
    Little,
    /// Most significant byte first (network order; SPARC, old MIPS).
    Big,
}

impl Endian {
    #[inline]
    pub(crate) fn u16(self, b: &[u8], off: usize) -> u16 {
        let a = [b[off], b[off + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    #[inline]
    pub(crate) fn u32(self, b: &[u8], off: usize) -> u32 {
        let a: [u8; 4] = b[off..off + 4].try_into().expect("4 bytes");
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    #[inline]
    pub(crate) fn i64(self, b: &[u8], off: usize) -> i64 {
        let a: [u8; 8] = b[off..off + 8].try_into().expect("8 bytes");
        match self {
            Endian::Little => i64::from_le_bytes(a),
            Endian::Big => i64::from_be_bytes(a),
        }
    }

    /// The other byte order.
    pub fn swapped(self) -> Endian {
        match self {
            Endian::Little => Endian::Big,
            Endian::Big => Endian::Little,
        }
    }

    /// `"little"` or `"big"`.
    pub fn name(self) -> &'static str {
        match self {
            Endian::Little => "little",
            Endian::Big => "big",
        }
    }
}

/// Which compression wraps the capture, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Plain, uncompressed data.
    None,
    /// gzip (RFC 1952), one or several members.
    Gzip,
    /// bzip2, one or several streams.
    Bzip2,
    /// xz, one or several streams.
    Xz,
    /// Zstandard, one or several frames.
    Zstd,
    /// LZ4, one or several frames, or the legacy format (`lz4 -l`).
    Lz4,
}

impl Compression {
    /// How many leading bytes [`Compression::detect`] looks at.
    pub const MAGIC_LEN: usize = 6;

    /// Detects the compression from the first bytes of the input.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") && head.len() >= 4 && (b'1'..=b'9').contains(&head[3]) {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
        {
            // A zstd frame, or a skippable frame (pzstd starts with one).
            Compression::Zstd
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18])
            || head.starts_with(&[0x02, 0x21, 0x4c, 0x18])
        {
            // An LZ4 frame, or a legacy stream (`lz4 -l`).
            Compression::Lz4
        } else {
            Compression::None
        }
    }

    /// The usual name: `none`, `gzip`, `bzip2`, `xz`, `zstd`, `lz4`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The flavours of classic pcap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcapVariant {
    /// Magic 0xA1B2C3D4: microsecond timestamps, 16-byte record headers.
    Microsecond,
    /// Magic 0xA1B23C4D: nanosecond timestamps, 16-byte record headers.
    Nanosecond,
    /// Magic 0xA1B2CD34 (Alexey Kuznetzov's patched libpcap): microsecond
    /// timestamps, 24-byte record headers.
    Modified,
}

impl PcapVariant {
    /// Size of a record header in bytes.
    pub fn record_header_len(self) -> usize {
        match self {
            PcapVariant::Modified => 24,
            _ => 16,
        }
    }

    /// Timestamp fraction units per second.
    pub fn ticks_per_second(self) -> u32 {
        match self {
            PcapVariant::Nanosecond => 1_000_000_000,
            _ => 1_000_000,
        }
    }

    pub(crate) fn magic(self) -> u32 {
        match self {
            PcapVariant::Microsecond => 0xA1B2_C3D4,
            PcapVariant::Nanosecond => 0xA1B2_3C4D,
            PcapVariant::Modified => 0xA1B2_CD34,
        }
    }
}

/// The capture format, as told by its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        /// Which pcap flavour.
        variant: PcapVariant,
        /// The file's byte order.
        endian: Endian,
    },
    /// pcapng; byte order is per section.
    Pcapng,
}

/// The bytes a pcapng section header starts with, in either byte order
/// (the block type `0x0A0D0D0A` is a palindrome, so that a reader can find
/// it before it knows the byte order; it is also the file's magic number).
pub const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl CaptureFormat {
    /// Detects the format from the first four bytes.
    pub fn detect(head: &[u8]) -> Option<CaptureFormat> {
        let magic: [u8; 4] = head.get(..4)?.try_into().ok()?;
        if magic == SHB_MAGIC {
            return Some(CaptureFormat::Pcapng);
        }
        for variant in [
            PcapVariant::Microsecond,
            PcapVariant::Nanosecond,
            PcapVariant::Modified,
        ] {
            if u32::from_le_bytes(magic) == variant.magic() {
                return Some(CaptureFormat::Pcap {
                    variant,
                    endian: Endian::Little,
                });
            }
            if u32::from_be_bytes(magic) == variant.magic() {
                return Some(CaptureFormat::Pcap {
                    variant,
                    endian: Endian::Big,
                });
            }
        }
        None
    }

    /// The family's name, which is also its file extension: `"pcap"` or
    /// `"pcapng"`.
    pub fn extension(self) -> &'static str {
        match self {
            CaptureFormat::Pcap { .. } => "pcap",
            CaptureFormat::Pcapng => "pcapng",
        }
    }

    /// `"pcap"`, `"pcap (nanosecond)"`, `"pcap (modified)"` or `"pcapng"`.
    pub fn name(self) -> &'static str {
        match self {
            CaptureFormat::Pcap {
                variant: PcapVariant::Microsecond,
                ..
            } => "pcap",
            CaptureFormat::Pcap {
                variant: PcapVariant::Nanosecond,
                ..
            } => "pcap (nanosecond)",
            CaptureFormat::Pcap {
                variant: PcapVariant::Modified,
                ..
            } => "pcap (modified)",
            CaptureFormat::Pcapng => "pcapng",
        }
    }

    /// True for pcapng.
    pub fn is_pcapng(self) -> bool {
        matches!(self, CaptureFormat::Pcapng)
    }
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many leading bytes [`describe_non_capture`] looks at, at most.
pub const DESCRIBE_LEN: usize = 512;

/// What the first bytes of an input that is not a capture look like, as
/// `file(1)` would say it, for the error that names it: `"nothing: the input
/// is empty"`, `"text: \"root:x:0:0:root…\""`, `"an HTML page"`, `"a ZIP
/// archive"`, … or their first bytes in hex.
///
/// ```
/// use pcap_parallel::format::describe_non_capture;
/// assert_eq!(describe_non_capture(b""), "nothing: the input is empty");
/// assert_eq!(describe_non_capture(b"root:x:0:0:root:/root:/bin/bash\n"), "text: \"root:x:0:0:root:/root:/bin/bash\"");
/// assert_eq!(describe_non_capture(b"<!DOCTYPE html>\n<html>"), "an HTML page");
/// assert_eq!(describe_non_capture(b"PK\x03\x04\x14\x00"), "a ZIP archive");
/// assert_eq!(describe_non_capture(&[0, 1, 2, 0xff]), "binary data starting 000102ff");
/// ```
pub fn describe_non_capture(head: &[u8]) -> String {
    let head = &head[..head.len().min(DESCRIBE_LEN)];
    const KINDS: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "a ZIP archive"),
        (b"PK\x05\x06", "a ZIP archive (empty)"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!\x1a\x07", "a RAR archive"),
        (b"\x7fELF", "an ELF executable or library"),
        (b"%PDF-", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"SQLite format 3\x00", "an SQLite database"),
        (b"PAR1", "a Parquet file"),
        (b"ARROW1", "an Arrow IPC file"),
        // Captures of other tools: editcap (or tshark -F pcap) converts them.
        (
            b"snoop\x00\x00\x00",
            "a snoop capture (convert it with editcap -F pcap)",
        ),
        (
            b"XCP\x00",
            "a NetXray/Sniffer capture (convert it with editcap -F pcap)",
        ),
    ];
    if head.is_empty() {
        return "nothing: the input is empty".into();
    }
    if let Some((_, kind)) = KINDS.iter().find(|(magic, _)| head.starts_with(magic)) {
        return (*kind).into();
    }
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return "a tar archive".into();
    }
    match std::str::from_utf8(text_prefix(head)) {
        Ok(text) if looks_like_text(text, head.len()) => describe_text(text),
        _ => {
            let hex: String = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("binary data starting {hex}")
        }
    }
}

/// `head` without a UTF-8 sequence cut off at its end.
fn text_prefix(head: &[u8]) -> &[u8] {
    match std::str::from_utf8(head) {
        Ok(_) => head,
        Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
        Err(_) => head,
    }
}

/// Printable text (tabs and line ends allowed) making up nearly all of it.
fn looks_like_text(text: &str, len: usize) -> bool {
    text.len() + 4 > len
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// What a text input is: a page, a document, or text with its first line.
fn describe_text(text: &str) -> String {
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = start
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        return "an HTML page".into();
    }
    if lower.starts_with("<?xml") {
        return "an XML document".into();
    }
    if start.starts_with('{') || start.starts_with('[') {
        return "JSON text (or another text format)".into();
    }
    let line = start.lines().next().unwrap_or("");
    let mut shown: String = line.chars().take(40).collect();
    if line.chars().count() > 40 {
        shown.push('…');
    }
    format!("text: {shown:?}")
}

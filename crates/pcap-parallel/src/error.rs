//! Error types.
//!
//! Every error that concerns the input names it, and every error found in the
//! capture's structure carries the byte offset (in the decompressed stream) and
//! the number of the packet that could not be read. The packets before a fault
//! are always delivered first; see [`crate::Capture`].
//!
//! [`Fault`] describes *what* is wrong with a record or block and is shared by
//! the pcap and pcapng readers; [`FormatError`] adds *where*.
//!
//! Every message is complete on its own: [`Error`]'s `Display` includes the
//! underlying error (an OS error, a decompressor's), which is therefore not
//! also returned by `source()`, so that error reporters that print the
//! chain (`anyhow`'s `{:#}`, `eyre`) do not print it twice. `Debug`, which
//! `fn main() -> Result<(), Error>` prints, is the same message; `{:#?}`
//! shows the structure.
//!
//! ```
//! # use pcap_parallel::Capture;
//! let e = Capture::open("/nonexistent.pcap").unwrap_err();
//! assert_eq!(e.to_string(), "/nonexistent.pcap: No such file or directory (os error 2)");
//! assert_eq!(format!("{e:?}"), e.to_string());
//! assert!(std::error::Error::source(&e).is_none());
//! assert!(format!("{e:#?}").starts_with("Io {"));
//! ```

use std::fmt;
use std::io;
use std::ops::Range;

pub use crate::block_type::BlockName;

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while opening or processing a capture.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the input failed (not found, permission denied, broken pipe, ...).
    #[error("{name}: {error}")]
    Io {
        /// The input's name (its path, or `-` for standard input).
        name: String,
        /// The underlying error (part of the message, not a `source()`).
        error: io::Error,
    },

    /// The first bytes are neither a pcap nor a pcapng magic number, nor a
    /// known compression format holding one.
    #[error("{name}: not a pcap or pcapng capture ({what})")]
    UnknownFormat {
        /// The input's name.
        name: String,
        /// What its first bytes look like
        /// ([`crate::format::describe_non_capture`]).
        what: String,
    },

    /// The capture's structure is broken at a known place.
    #[error(transparent)]
    Format(#[from] FormatError),

    /// The compressed stream is corrupt or cut short.
    #[error(
        "{name}: {compression} data is corrupt or truncated after {offset} decompressed bytes{}: {error}",
        compressed_offset.map(|o| format!(" (compressed offset {o})")).unwrap_or_default()
    )]
    Decompress {
        /// The input's name.
        name: String,
        /// The compression format.
        compression: crate::Compression,
        /// Decompressed bytes delivered before the error.
        offset: u64,
        /// Compressed bytes consumed before the error, where known.
        compressed_offset: Option<u64>,
        /// The decompressor's own error (part of the message, not a `source()`).
        error: io::Error,
    },

    /// A zstd frame asks for a larger window than
    /// [`crate::Decoding::max_zstd_window`] allows: decoding it would hold
    /// that much decoded data in memory. Raise the limit to read it.
    #[error(
        "{name}: {window}, after {offset} decompressed bytes (raise Decoding::max_zstd_window to read it)"
    )]
    ZstdWindow {
        /// The input's name.
        name: String,
        /// The frame's window, the limit, and where the frame starts.
        window: crate::WindowTooLarge,
        /// Decompressed bytes delivered before the frame.
        offset: u64,
    },

    /// User code failed on one chunk.
    #[error(transparent)]
    Chunk(#[from] ChunkFailure),

    /// A filter expression cannot be used (see [`crate::filter`]).
    #[error(transparent)]
    Filter(#[from] crate::filter::FilterError),

    /// A split that cannot work: zero packets, bytes or chunks (see
    /// [`crate::Split::validate`]).
    #[error("invalid option: {}", .0.problem().unwrap_or("none"))]
    InvalidSplit(crate::Split),

    /// A bug in this crate, caught instead of crashing the caller.
    #[error("internal error: {0}")]
    Internal(String),

    /// A chunk locator that cannot be decoded, or whose records changed
    /// (see [`crate::locator`]).
    #[error(transparent)]
    Locator(#[from] crate::locator::LocatorError),

    /// The input file shrank while it was being read (another program
    /// truncated or rewrote it): what was read after that cannot be
    /// trusted, and was not delivered. See the `mapped` module docs.
    #[error(
        "{name}: the file changed during the run (it shrank while it was being read); \
         nothing read after that was used: run again on a copy that stays put"
    )]
    InputChanged {
        /// The input's name.
        name: String,
    },

    /// The run was cancelled through [`crate::Capture::cancel_flag`].
    #[error("cancelled")]
    Cancelled,

    /// Several inputs could not be taken as one capture (a pattern that
    /// matches no file, standard input among other inputs).
    #[error(transparent)]
    Inputs(#[from] crate::inputs::InputsError),

    /// A compressed input asked for by byte range ([`crate::partition`]):
    /// it cannot be entered at a byte offset, and is read whole instead
    /// (one partition, with [`crate::Capture::open`]).
    #[error(
        "{name}: {compression} input cannot be entered at a byte offset: \
         it is one partition, read whole"
    )]
    CompressedPartition {
        /// The input's name.
        name: String,
        /// Its compression.
        compression: crate::Compression,
    },
}

impl Error {
    pub(crate) fn io(name: &str, error: io::Error) -> Self {
        Error::Io {
            name: name.to_string(),
            error,
        }
    }

    /// The byte offset (in the decompressed stream) the error refers to, if any.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::Format(e) => Some(e.offset),
            Error::Decompress { offset, .. } | Error::ZstdWindow { offset, .. } => Some(*offset),
            Error::Chunk(c) => Some(c.range.start),
            _ => None,
        }
    }
}

/// The message, as `Display` gives it (what `fn main() -> Result<(), Error>`
/// prints); the alternate form `{:#?}` shows the variant and its fields.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return fmt::Display::fmt(self, f);
        }
        match self {
            Error::Io { name, error } => f
                .debug_struct("Io")
                .field("name", name)
                .field("error", error)
                .finish(),
            Error::UnknownFormat { name, what } => f
                .debug_struct("UnknownFormat")
                .field("name", name)
                .field("what", what)
                .finish(),
            Error::Format(e) => f.debug_tuple("Format").field(e).finish(),
            Error::Decompress {
                name,
                compression,
                offset,
                compressed_offset,
                error,
            } => f
                .debug_struct("Decompress")
                .field("name", name)
                .field("compression", compression)
                .field("offset", offset)
                .field("compressed_offset", compressed_offset)
                .field("error", error)
                .finish(),
            Error::ZstdWindow {
                name,
                window,
                offset,
            } => f
                .debug_struct("ZstdWindow")
                .field("name", name)
                .field("window", window)
                .field("offset", offset)
                .finish(),
            Error::Chunk(e) => f.debug_tuple("Chunk").field(e).finish(),
            Error::Filter(e) => f.debug_tuple("Filter").field(e).finish(),
            Error::Locator(e) => f.debug_tuple("Locator").field(e).finish(),
            Error::InputChanged { name } => {
                f.debug_struct("InputChanged").field("name", name).finish()
            }
            Error::InvalidSplit(s) => f.debug_tuple("InvalidSplit").field(s).finish(),
            Error::Internal(e) => f.debug_tuple("Internal").field(e).finish(),
            Error::Cancelled => f.write_str("Cancelled"),
            Error::Inputs(e) => f.debug_tuple("Inputs").field(e).finish(),
            Error::CompressedPartition { name, compression } => f
                .debug_struct("CompressedPartition")
                .field("name", name)
                .field("compression", compression)
                .finish(),
        }
    }
}

/// A structural error in a capture: what went wrong, where, and after which packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The input's name.
    pub name: String,
    /// Byte offset of the broken record or block in the (decompressed) input.
    pub offset: u64,
    /// Number (1-based, as in Wireshark) of the packet that could not be read:
    /// every packet before it was delivered.
    pub packet: u64,
    /// What is wrong.
    pub fault: Fault,
}

impl std::error::Error for FormatError {}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.fault.is_truncation() {
            "capture cut short"
        } else {
            "malformed capture"
        };
        write!(
            f,
            "{}: {what} at byte {} (packet {}): {}",
            self.name, self.offset, self.packet, self.fault
        )
    }
}

/// What is wrong with a record, block or header. Truncation (the input ends
/// inside a record) is told apart from malformation (the bytes are
/// impossible) by [`Fault::is_truncation`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The input ends inside the file header.
    TruncatedFileHeader {
        /// Bytes of the header present.
        have: usize,
        /// Bytes a header takes.
        need: usize,
    },
    /// The input ends inside a pcap record header.
    TruncatedRecordHeader {
        /// Bytes of the record header present.
        have: usize,
        /// Bytes a record header takes.
        need: usize,
    },
    /// The input ends inside a pcap record's packet data.
    TruncatedPacketData {
        /// Captured length the record header claims.
        caplen: u32,
        /// Bytes of packet data present.
        have: usize,
    },
    /// The input ends inside the 12 bytes every pcapng block starts with.
    TruncatedBlockHeader {
        /// Bytes present.
        have: usize,
    },
    /// The input ends inside a pcapng block.
    TruncatedBlock {
        /// The block's type.
        block: BlockName,
        /// The length it claims.
        length: u32,
        /// Bytes of it present.
        have: usize,
    },
    /// A pcap record claims more captured bytes than any real packet has.
    CaplenTooLarge {
        /// Captured length the record header claims.
        caplen: u32,
        /// The limit ([`crate::Limits::max_packet_len`], or the link type's).
        max: u32,
    },
    /// A version this reader (like libpcap and Wireshark) does not accept.
    UnsupportedVersion {
        /// `"pcap"` or `"pcapng"`.
        format: &'static str,
        /// Major version in the header.
        major: u16,
        /// Minor version in the header.
        minor: u16,
    },
    /// A pcapng block length that is below 12 or not a multiple of 4.
    BadBlockLength {
        /// The block's type.
        block: BlockName,
        /// The length it claims.
        length: u32,
    },
    /// A pcapng block longer than the configured maximum.
    BlockTooLarge {
        /// The block's type.
        block: BlockName,
        /// The length it claims.
        length: u32,
        /// The limit ([`crate::Limits::max_block_len`]).
        max: u32,
    },
    /// A pcapng block's trailing length differs from its leading length.
    BlockLengthMismatch {
        /// The block's type.
        block: BlockName,
        /// The length at its start.
        leading: u32,
        /// The length at its end.
        trailing: u32,
    },
    /// A pcapng block too short to hold its fixed fields.
    BlockTooShort {
        /// The block's type.
        block: BlockName,
        /// The length it claims.
        length: u32,
        /// The least length its type allows.
        min: u32,
    },
    /// A section header whose byte-order magic is neither 0x1A2B3C4D nor its swap.
    BadByteOrderMagic {
        /// The magic found.
        magic: u32,
    },
    /// A pcapng file that does not begin with a section header.
    MissingSectionHeader,
    /// A packet block refers to an interface the section has not described.
    UnknownInterface {
        /// The packet block's type.
        block: BlockName,
        /// The interface id it names.
        interface: u32,
        /// Interfaces the section has described.
        defined: usize,
    },
    /// A pcapng section describes more interfaces than
    /// [`crate::Limits::max_interfaces`] allows.
    TooManyInterfaces {
        /// The limit.
        max: u32,
    },
    /// A packet block's captured length runs past the end of the block.
    PacketExceedsBlock {
        /// The packet block's type.
        block: BlockName,
        /// Captured length it claims.
        caplen: u32,
        /// Bytes of room the block has for packet data.
        room: usize,
    },
}

impl Fault {
    /// True when the input simply ends inside a record (a capture cut short),
    /// false when the bytes themselves are impossible.
    pub fn is_truncation(&self) -> bool {
        matches!(
            self,
            Fault::TruncatedFileHeader { .. }
                | Fault::TruncatedRecordHeader { .. }
                | Fault::TruncatedPacketData { .. }
                | Fault::TruncatedBlockHeader { .. }
                | Fault::TruncatedBlock { .. }
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::TruncatedFileHeader { have, need } => {
                write!(f, "file header cut short ({have} of {need} bytes)")
            }
            Fault::TruncatedRecordHeader { have, need } => {
                write!(f, "record header cut short ({have} of {need} bytes)")
            }
            Fault::TruncatedPacketData { caplen, have } => write!(
                f,
                "packet data cut short ({have} of {caplen} captured bytes)"
            ),
            Fault::TruncatedBlockHeader { have } => {
                write!(f, "block header cut short ({have} of 12 bytes)")
            }
            Fault::TruncatedBlock {
                block,
                length,
                have,
            } => write!(f, "{block} block cut short ({have} of {length} bytes)"),
            Fault::CaplenTooLarge { caplen, max } => write!(
                f,
                "record claims {caplen} captured bytes, more than the maximum of {max}"
            ),
            Fault::UnsupportedVersion {
                format,
                major,
                minor,
            } => write!(f, "unsupported {format} version {major}.{minor}"),
            Fault::BadBlockLength { block, length } => write!(
                f,
                "{block} block has impossible length {length} (must be a multiple of 4, at least 12)"
            ),
            Fault::BlockTooLarge { block, length, max } => write!(
                f,
                "{block} block length {length} is above the maximum of {max}"
            ),
            Fault::BlockLengthMismatch {
                block,
                leading,
                trailing,
            } => write!(
                f,
                "{block} block's leading length {leading} differs from its trailing length {trailing}"
            ),
            Fault::BlockTooShort { block, length, min } => write!(
                f,
                "{block} block of {length} bytes is shorter than its minimum of {min}"
            ),
            Fault::BadByteOrderMagic { magic } => {
                write!(f, "section header has bad byte-order magic 0x{magic:08x}")
            }
            Fault::MissingSectionHeader => {
                write!(f, "pcapng data does not start with a section header")
            }
            Fault::UnknownInterface {
                block,
                interface,
                defined,
            } => write!(
                f,
                "{block} refers to interface {interface} but the section describes {defined}"
            ),
            Fault::TooManyInterfaces { max } => write!(
                f,
                "the section describes more than {max} interfaces (the limit; raise it to read this capture)"
            ),
            Fault::PacketExceedsBlock {
                block,
                caplen,
                room,
            } => write!(
                f,
                "{block} captured length {caplen} runs past the block ({room} bytes of room)"
            ),
        }
    }
}

/// A damaged stretch of input passed over under [`crate::OnError::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where the damage was found, in the (decompressed) input.
    pub offset: u64,
    /// Bytes passed over, up to the next record boundary found (or the end).
    pub len: u64,
    /// Number of the packet that would have come next.
    pub packet: u64,
    /// What was wrong at `offset`.
    pub fault: Fault,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.len == 1 { "byte" } else { "bytes" };
        write!(
            f,
            "skipped {} {unit} at byte {} (before packet {}): {}",
            self.len, self.offset, self.packet, self.fault
        )
    }
}

/// User code failed on one chunk: it returned an error or panicked.
#[derive(Debug, thiserror::Error)]
#[error("chunk {index} (bytes {}..{}): {cause}", range.start, range.end)]
pub struct ChunkFailure {
    /// The chunk's index in file order.
    pub index: usize,
    /// The chunk's byte range in the (decompressed) input.
    pub range: Range<u64>,
    /// What happened (part of the message, not a `source()`).
    pub cause: ChunkFailureCause,
}

/// Why user code failed on a chunk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkFailureCause {
    /// The closure panicked; this is the panic message.
    #[error("panicked: {0}")]
    Panic(String),
    /// The closure returned an error.
    #[error("{0}")]
    Error(Box<dyn std::error::Error + Send + Sync>),
}

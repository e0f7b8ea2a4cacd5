//! How a capture is divided into chunks.

/// A chunking strategy.
///
/// Every strategy cuts only at record boundaries, so a chunk never holds part
/// of a packet; sizes in bytes are therefore approximate (a chunk ends with
/// the first record that *starts* at or after its nominal end).
///
/// **The automatic rule** ([`Split::Auto`], the default) keeps every worker
/// busy while bounding chunk size both ways: for input of known length `L`
/// with `W` workers, chunks are `L / (4 W)` bytes, but at least 1 MiB and at
/// most 64 MiB (several chunks per worker even out uneven work; the bounds
/// keep per-chunk overhead small and memory in flight modest). For streamed
/// input (compressed files, pipes) whose length is unknown, chunks are 4 MiB.
///
/// ```
/// use pcap_parallel::Split;
/// const MIB: u64 = 1 << 20;
/// assert_eq!(Split::auto_chunk_bytes(1024 * MIB, 2), 64 * MIB);
/// assert_eq!(Split::auto_chunk_bytes(200 * MIB, 2), 25 * MIB);
/// assert_eq!(Split::auto_chunk_bytes(100_000, 8), MIB);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Split {
    /// Sized for the worker count (see above).
    #[default]
    Auto,
    /// This many packets per chunk (the original pcap-parallel's `split_size`).
    Packets(u64),
    /// About this many bytes per chunk.
    Bytes(u64),
    /// This many chunks of about equal byte size. Streamed input is first
    /// decompressed into a temporary file, since its length is not known.
    Chunks(usize),
}

/// Chunk size for streamed input under [`Split::Auto`].
pub const STREAM_CHUNK_BYTES: u64 = 4 << 20;

impl Split {
    /// The automatic chunk size for `len` bytes and `workers` workers.
    pub fn auto_chunk_bytes(len: u64, workers: usize) -> u64 {
        (len / (4 * workers.max(1) as u64)).clamp(1 << 20, 64 << 20)
    }

    /// Nominal chunk size in bytes for input of `len` bytes (`None` for
    /// [`Split::Packets`]).
    pub(crate) fn chunk_bytes(&self, len: u64, workers: usize) -> Option<u64> {
        match *self {
            Split::Auto => Some(Self::auto_chunk_bytes(len, workers)),
            Split::Packets(_) => None,
            Split::Bytes(b) => Some(b.max(1)),
            Split::Chunks(k) => Some(len.div_ceil(k.max(1) as u64).max(1)),
        }
    }

    /// Checks that the split can work: counts and sizes of at least 1.
    /// [`crate::Capture::run`] checks it too, and ends with this error.
    ///
    /// ```
    /// use pcap_parallel::Split;
    /// assert!(Split::Chunks(4).validate().is_ok());
    /// let e = Split::Packets(0).validate().unwrap_err();
    /// assert_eq!(e.to_string(), "invalid option: packets per chunk must be at least 1");
    /// ```
    pub fn validate(&self) -> crate::Result<()> {
        match self.problem() {
            Some(_) => Err(crate::Error::InvalidSplit(*self)),
            None => Ok(()),
        }
    }

    /// What is wrong with the split, if anything.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        match *self {
            Split::Packets(0) => Some("packets per chunk must be at least 1"),
            Split::Bytes(0) => Some("bytes per chunk must be at least 1"),
            Split::Chunks(0) => Some("the number of chunks must be at least 1"),
            _ => None,
        }
    }
}

//! Writing chunks to files, atomically.
//!
//! A chunk is written to a temporary file in the destination's directory
//! and renamed into place only once it is complete and flushed, so an error,
//! a crash or Ctrl-C never leaves a half-written capture under the final
//! name: the temporary file is removed when it is dropped, and a stray one
//! from a killed process is recognisable by its `.pcap-parallel-` prefix.
//! A whole set of parts (a split's chunks, flow shards) is written through
//! a [`PartSet`]: all of it replaces the earlier set, or none.
//!
//! ```
//! use pcap_parallel::{Capture, output::{IfExists, OutputCompression, write_chunk}};
//! # let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap")).unwrap();
//! let dir = tempfile::tempdir()?;
//! let names = Capture::from_bytes("sample.pcap", sample)?
//!     .split(pcap_parallel::Split::Chunks(3))
//!     .try_map(|chunk| {
//!         let path = dir.path().join(format!("part-{}.pcap", chunk.index()));
//!         write_chunk(chunk, &path, OutputCompression::None, IfExists::Fail).map(|_| path)
//!     })?;
//! assert_eq!(names.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::chunk::Chunk;

mod parts;
pub use parts::{PartSet, PartsError, STAGING_PREFIX, check_prefix, owned_prefix, remove_stale};

/// Compression for written chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OutputCompression {
    /// Plain capture files.
    #[default]
    None,
    /// gzip (level 6), readable by Wireshark and tcpdump -r via zcat.
    Gzip,
    /// Zstandard (level 3), readable by Wireshark 4.
    Zstd,
}

impl OutputCompression {
    /// The file name suffix: `""`, `".gz"` or `".zst"`.
    pub fn suffix(self) -> &'static str {
        match self {
            OutputCompression::None => "",
            OutputCompression::Gzip => ".gz",
            OutputCompression::Zstd => ".zst",
        }
    }
}

/// What to do when an output file is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfExists {
    /// Fail with [`io::ErrorKind::AlreadyExists`]; the file is untouched.
    #[default]
    Fail,
    /// Replace it (atomically: the old file stays whole until the new one
    /// takes its name).
    Replace,
}

/// Writes `chunk` as a standalone capture to `path`, atomically. Returns
/// the bytes written (before compression).
pub fn write_chunk(
    chunk: &Chunk,
    path: &Path,
    compression: OutputCompression,
    if_exists: IfExists,
) -> io::Result<u64> {
    write_atomically(path, if_exists, |file| match compression {
        OutputCompression::None => {
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let n = chunk.write_standalone(&mut w)?;
            w.flush()?;
            Ok(n)
        }
        OutputCompression::Gzip => {
            let mut w = flate2::write::GzEncoder::new(
                BufWriter::with_capacity(1 << 20, file),
                flate2::Compression::new(6),
            );
            let n = chunk.write_standalone(&mut w)?;
            w.finish()?.flush()?;
            Ok(n)
        }
        OutputCompression::Zstd => {
            let mut w =
                zstd::stream::write::Encoder::new(BufWriter::with_capacity(1 << 20, file), 3)?;
            let n = chunk.write_standalone(&mut w)?;
            w.finish()?.flush()?;
            Ok(n)
        }
    })
}

/// Runs `write` on a temporary file beside `path` and renames it to `path`.
/// On any error the temporary file is removed and `path` is untouched. The
/// data is not forced to disk (no fsync, like editcap and tcpdump -w): a
/// complete file appears under its name, or none, whatever happens to this
/// process; a power cut is another matter.
pub fn write_atomically<T>(
    path: &Path,
    if_exists: IfExists,
    write: impl FnOnce(&mut fs::File) -> io::Result<T>,
) -> io::Result<T> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if if_exists == IfExists::Fail && path.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", path.display()),
        ));
    }
    let mut tmp = temp_file_in(dir)?;
    let value = write(tmp.as_file_mut())?;
    if if_exists == IfExists::Replace {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(value)
}

/// A temporary file in `dir`, to be renamed to its real name once
/// complete: named `.pcap-parallel-*.tmp`, with the usual mode (0666 less
/// the umask, not tempfile's private 0600), removed if dropped.
pub(crate) fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".pcap-parallel-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
}

/// Where flow shards are written; see [`crate::Flows::write_shards`].
#[derive(Debug, Clone)]
pub struct ShardFiles {
    /// The directory (created if missing).
    pub dir: std::path::PathBuf,
    /// Files are named `PREFIX-NNNNNNNN.EXT` (shard number, 8 digits).
    pub prefix: String,
    /// Compression of the files.
    pub compression: OutputCompression,
    /// What to do with files already there.
    pub if_exists: IfExists,
    /// At most this many files open at once, however many shards (default 32).
    pub max_open: usize,
}

impl ShardFiles {
    /// Shard files in `dir` named after `prefix`, plain, at most 32 open.
    pub fn new(dir: impl Into<std::path::PathBuf>, prefix: &str) -> ShardFiles {
        ShardFiles {
            dir: dir.into(),
            prefix: prefix.to_string(),
            compression: OutputCompression::None,
            if_exists: IfExists::Fail,
            max_open: 32,
        }
    }

    /// The name of shard `n` for a capture in `format`.
    pub fn name(&self, n: usize, format: crate::CaptureFormat) -> std::path::PathBuf {
        self.dir
            .join(part_file_name(&self.prefix, n, format, self.compression))
    }
}

/// Digits in part numbers: enough for 100 million parts, so that names
/// sort in file order.
pub const PART_DIGITS: usize = 8;

/// The file name of part `n` of a split (or shard `n`):
/// `PREFIX-NNNNNNNN.pcap` or `.pcapng`, then the compression's suffix.
///
/// ```
/// use pcap_parallel::{CaptureFormat, output::{OutputCompression, part_file_name}};
/// assert_eq!(
///     part_file_name("trace", 12, CaptureFormat::Pcapng, OutputCompression::Gzip),
///     "trace-00000012.pcapng.gz"
/// );
/// ```
pub fn part_file_name(
    prefix: &str,
    n: usize,
    format: crate::CaptureFormat,
    compression: OutputCompression,
) -> String {
    format!(
        "{prefix}-{n:0PART_DIGITS$}{}",
        part_extension(format, compression)
    )
}

/// The extension of parts: `.pcap` or `.pcapng`, then the compression's suffix.
pub fn part_extension(format: crate::CaptureFormat, compression: OutputCompression) -> String {
    format!(".{}{}", format.extension(), compression.suffix())
}

/// The number of the part `name` is, if it is one that [`part_file_name`]
/// gives for `prefix` and the extension `ext` (`.pcap`, `.pcapng.gz`, ...).
///
/// ```
/// use pcap_parallel::output::part_number;
/// assert_eq!(part_number("trace-00000012.pcap", "trace", ".pcap"), Some(12));
/// assert_eq!(part_number("trace-12.pcap", "trace", ".pcap"), None);
/// assert_eq!(part_number("other-00000012.pcap", "trace", ".pcap"), None);
/// ```
pub fn part_number(name: &str, prefix: &str, ext: &str) -> Option<u64> {
    let rest = name
        .strip_prefix(prefix)?
        .strip_prefix('-')?
        .strip_suffix(ext)?;
    (rest.len() == PART_DIGITS && rest.bytes().all(|b| b.is_ascii_digit()))
        .then(|| rest.parse().ok())?
}

/// The prefix parts of `input` are named with by default: its file name
/// without the capture and compression extensions (`stdin` for `-`).
///
/// ```
/// use pcap_parallel::output::default_prefix;
/// use std::path::Path;
/// assert_eq!(default_prefix(Path::new("/x/trace.pcapng.gz")), "trace");
/// assert_eq!(default_prefix(Path::new("a.b.pcap")), "a.b");
/// assert_eq!(default_prefix(Path::new("-")), "stdin");
/// ```
pub fn default_prefix(input: &Path) -> String {
    if input.as_os_str() == "-" {
        return "stdin".into();
    }
    let mut name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    for ext in [
        ".gz", ".bz2", ".xz", ".zst", ".lz4", ".pcapng", ".pcap", ".ntar", ".cap", ".dmp",
    ] {
        if let Some(stripped) = name.strip_suffix(ext)
            && !stripped.is_empty()
        {
            name = stripped.to_string();
        }
    }
    name
}

/// Open files of shards being written, shared by the shard workers, at most
/// `max` at once (the least recently written is closed first).
pub(crate) struct OpenFiles {
    max: usize,
    open: std::collections::VecDeque<(usize, fs::File)>,
}

impl OpenFiles {
    pub(crate) fn new(max: usize) -> Self {
        OpenFiles {
            max: max.max(1),
            open: std::collections::VecDeque::new(),
        }
    }

    /// Appends `bytes` to shard `n`'s file at `path`.
    pub(crate) fn append(&mut self, n: usize, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let pos = self.open.iter().position(|(k, _)| *k == n);
        let (k, mut file) = match pos {
            Some(i) => self.open.remove(i).expect("present"),
            None => {
                if self.open.len() >= self.max {
                    self.open.pop_front();
                }
                (n, fs::OpenOptions::new().append(true).open(path)?)
            }
        };
        let r = file.write_all(bytes);
        self.open.push_back((k, file));
        r
    }

    /// Closes shard `n`'s file, if it is open.
    pub(crate) fn close(&mut self, n: usize) {
        self.open.retain(|(k, _)| *k != n);
    }
}

/// Rewrites the plain file at `path` as one zstd frame (level 3), through a
/// temporary file beside it, in bounded memory.
pub(crate) fn zstd_in_place(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = temp_file_in(dir)?;
    {
        let plain = fs::File::open(path)?;
        let len = plain.metadata()?.len();
        let mut w = zstd::stream::write::Encoder::new(
            BufWriter::with_capacity(1 << 20, tmp.as_file_mut()),
            3,
        )?;
        w.set_pledged_src_size(Some(len))?;
        io::copy(&mut io::BufReader::with_capacity(1 << 20, plain), &mut w)?;
        w.finish()?.flush()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Compresses `bytes` as one gzip member or zstd frame (appended members
/// and frames make one valid file), or returns them as they are.
pub(crate) fn compress_piece(
    bytes: &[u8],
    compression: OutputCompression,
) -> io::Result<std::borrow::Cow<'_, [u8]>> {
    Ok(match compression {
        OutputCompression::None => std::borrow::Cow::Borrowed(bytes),
        OutputCompression::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            w.write_all(bytes)?;
            std::borrow::Cow::Owned(w.finish()?)
        }
        OutputCompression::Zstd => std::borrow::Cow::Owned(zstd::encode_all(bytes, 3)?),
    })
}

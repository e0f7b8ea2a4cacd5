//! `split`: every chunk written as a standalone capture file, atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use pcap_parallel::output::{OutputCompression, ShardFiles, write_chunk};
use pcap_parallel::{CaptureFormat, Split};

use crate::run::{self, Bar, Status, UsageError};
use crate::{Common, Input};

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// Capture file (`-` for standard input).
    file: Input,

    /// Directory for the parts (created if missing).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    out: PathBuf,

    #[command(flatten)]
    size: SplitSize,

    /// Compress the parts (compressed input is otherwise written plain).
    #[arg(long, value_enum)]
    compress: Option<Compress>,

    /// Name parts PREFIX-00000000.pcap, ... [default: the input's name without extensions].
    #[arg(long)]
    prefix: Option<String>,

    /// Replace existing parts (and remove stale ones from an earlier split).
    #[arg(short, long)]
    force: bool,

    /// Print the parts' paths each followed by a NUL byte rather than a
    /// newline (for `xargs -0`: paths may hold newlines).
    #[arg(short = '0', long)]
    print0: bool,

    /// With --flows: the most output files open at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    max_open: usize,

    #[command(flatten)]
    flow: crate::FlowArgs,

    #[command(flatten)]
    common: Common,
}

/// How big the parts are (exactly one).
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct SplitSize {
    /// Packets per part.
    #[arg(long, value_name = "N")]
    packets: Option<u64>,

    /// About this many bytes per part (suffixes K, M, G).
    #[arg(long, value_name = "SIZE", value_parser = crate::parse_size)]
    bytes: Option<u64>,

    /// At most K parts of about equal size: fewer when the input has fewer
    /// packets (a part always holds one), ends early, or is damaged (damage
    /// passed over with --on-error skip stays inside a part).
    #[arg(long, value_name = "K")]
    chunks: Option<usize>,

    /// This many parts by flow (both directions of each conversation in
    /// one part, in file order); at most --max-open files are open at once.
    #[arg(long, value_name = "K")]
    flows: Option<usize>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Compress {
    Gzip,
    Zstd,
}

/// Digits in part numbers: enough for 100 million parts, so names sort in file order.
const DIGITS: usize = 8;

fn default_prefix(input: &Path) -> String {
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

/// Is `name` a part this split would write (`PREFIX-NNNNNNNN.EXT`)? Its number, if so.
fn part_number(name: &str, prefix: &str, ext: &str) -> Option<u64> {
    let rest = name
        .strip_prefix(prefix)?
        .strip_prefix('-')?
        .strip_suffix(ext)?;
    (rest.len() == DIGITS && rest.bytes().all(|b| b.is_ascii_digit())).then(|| rest.parse().ok())?
}

pub fn run(args: SplitArgs) -> anyhow::Result<Status> {
    let split = match (
        args.size.packets,
        args.size.bytes,
        args.size.chunks,
        args.size.flows,
    ) {
        (Some(n), _, _, _) => Split::Packets(n),
        (_, Some(b), _, _) => Split::Bytes(b),
        (_, _, Some(k), _) => Split::Chunks(k),
        (_, _, _, Some(0)) => return Err(UsageError("--flows must be at least 1".into()).into()),
        (_, _, _, Some(_)) => Split::Auto,
        _ => unreachable!("clap requires one"),
    };
    let capture = run::open(&args.file, &args.common, split)?;
    let compression = match args.compress {
        None => OutputCompression::None,
        Some(Compress::Gzip) => OutputCompression::Gzip,
        Some(Compress::Zstd) => OutputCompression::Zstd,
    };
    let ext = format!(
        ".{}{}",
        match capture.format() {
            CaptureFormat::Pcapng => "pcapng",
            CaptureFormat::Pcap { .. } => "pcap",
        },
        compression.suffix()
    );
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| default_prefix(&args.file));
    if prefix.is_empty() || prefix.contains('/') {
        return Err(UsageError(format!("--prefix must be a file name, not {prefix:?}")).into());
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    let parts = PartSet {
        dir: args.out.clone(),
        prefix,
        ext,
    };
    let _lock = PrefixLock::take(&parts)?;
    crate::stale::remove_stale(&parts.dir, crate::stale::SPLIT_PREFIX);
    let existing = parts.existing(&args.file, args.force)?;
    let staging = tempfile::Builder::new()
        .prefix(&crate::stale::ours(crate::stale::SPLIT_PREFIX))
        .tempdir_in(&parts.dir)
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot write there (a staging directory could not be made: {e})",
                parts.dir.display()
            )
        })?;
    let staged = PartSet {
        dir: staging.path().to_path_buf(),
        ..parts.clone()
    };

    let (capture, bar) = Bar::attach(capture, &args.common, "split");
    let written = match args.size.flows {
        Some(k) => write_flows(capture, &args, k, &staged, compression),
        None => write_chunks(capture, &parts, &staged, compression),
    };
    drop(bar);
    let Written {
        count,
        status,
        write_failed,
    } = written?;
    if status == Status::Interrupted || write_failed {
        // `staging` goes, and with it every new part.
        eprintln!(
            "pcap-parallel: no part written: {} is as it was",
            parts.dir.display()
        );
        return Ok(if status == Status::Interrupted {
            status
        } else {
            Status::Failed
        });
    }
    let names = parts.commit(&staged, count, existing)?;
    for n in &names {
        let mut out = std::io::stdout().lock();
        let sep: &[u8] = if args.print0 { b"\0" } else { b"\n" };
        let r = out
            .write_all(n.as_os_str().as_encoded_bytes())
            .and_then(|()| out.write_all(sep));
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(anyhow::anyhow!("writing standard output: {e}"));
        }
    }
    Ok(status)
}

/// What writing the parts came to.
struct Written {
    /// Parts written (part numbers 0..count).
    count: u64,
    /// How reading the input ended.
    status: Status,
    /// A part could not be written.
    write_failed: bool,
}

/// Writes each chunk as part `PREFIX-NNNNNNNN.EXT` of `staged`.
fn write_chunks(
    capture: pcap_parallel::Capture,
    parts: &PartSet,
    staged: &PartSet,
    compression: OutputCompression,
) -> anyhow::Result<Written> {
    let mut write_failed = false;
    let mut count = 0u64;
    let report = capture.run(
        |chunk| {
            let n = chunk.index() as u64;
            write_chunk(chunk, &staged.path(n), compression, false)
                .map_err(|e| format!("{}: {e}", parts.path(n).display()).into())
        },
        |r| match r.result {
            Ok(_) => count += 1,
            Err(e) => {
                write_failed = true;
                if let pcap_parallel::ChunkFailureCause::Error(e) = &e.cause {
                    eprintln!("pcap-parallel: {e}");
                } else {
                    eprintln!("pcap-parallel: {e}");
                }
            }
        },
    );
    let status = run::finish(report.input_error, &report.skipped);
    Ok(Written {
        count,
        status,
        write_failed,
    })
}

/// Writes the flow shards as parts of `staged`.
fn write_flows(
    capture: pcap_parallel::Capture,
    args: &SplitArgs,
    shards: usize,
    staged: &PartSet,
    compression: OutputCompression,
) -> anyhow::Result<Written> {
    let mut files = ShardFiles::new(&staged.dir, &staged.prefix);
    files.compression = compression;
    files.max_open = args.max_open.max(1);
    let (names, report) = capture
        .flows(shards)
        .key(args.flow.key())
        .write_shards(&files);
    let status = run::finish(report.input_error, &report.skipped);
    match names {
        Ok(names) => Ok(Written {
            count: names.len() as u64,
            status,
            write_failed: false,
        }),
        Err(pcap_parallel::Error::Cancelled) => Ok(Written {
            count: 0,
            status: Status::Interrupted,
            write_failed: false,
        }),
        Err(e) => {
            eprintln!("pcap-parallel: {e}");
            Ok(Written {
                count: 0,
                status,
                write_failed: true,
            })
        }
    }
}

/// The parts of one split: `DIR/PREFIX-NNNNNNNN.EXT`.
#[derive(Debug, Clone)]
struct PartSet {
    dir: PathBuf,
    prefix: String,
    ext: String,
}

impl PartSet {
    fn path(&self, n: u64) -> PathBuf {
        self.dir
            .join(format!("{}-{n:0DIGITS$}{}", self.prefix, self.ext))
    }

    /// The parts already in the directory, checked: without `force` there
    /// must be none; none may be the input itself (a split never deletes or
    /// overwrites its input, whatever its name), and none a directory.
    fn existing(&self, input: &Path, force: bool) -> anyhow::Result<Vec<(u64, PathBuf)>> {
        use std::os::unix::fs::MetadataExt;
        let found: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                part_number(&name, &self.prefix, &self.ext).map(|n| (n, e.path()))
            })
            .collect();
        let input_id = (input.as_os_str() != "-")
            .then(|| std::fs::metadata(input).ok())
            .flatten()
            .map(|m| (m.dev(), m.ino()));
        for (_, path) in &found {
            let meta = std::fs::symlink_metadata(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if Some((meta.dev(), meta.ino())) == input_id {
                return Err(UsageError(format!(
                    "the input {} is named like a part of this split in {}: it would be \
                     replaced; choose another --prefix or output directory",
                    input.display(),
                    self.dir.display()
                ))
                .into());
            }
            if meta.is_dir() {
                return Err(UsageError(format!(
                    "{} is a directory named like a part: not replacing it",
                    path.display()
                ))
                .into());
            }
        }
        if !found.is_empty() && !force {
            anyhow::bail!(
                "{} already holds parts named {}-*{} (use --force to replace them)",
                self.dir.display(),
                self.prefix,
                self.ext
            );
        }
        Ok(found)
    }

    /// Puts the `count` parts written in `staged` in place of the
    /// `existing` ones: the old parts past the new set are removed, then
    /// each new part is renamed in (over the old part of its number). The
    /// prefix lock keeps other splits out meanwhile.
    fn commit(
        &self,
        staged: &PartSet,
        count: u64,
        existing: Vec<(u64, PathBuf)>,
    ) -> anyhow::Result<Vec<PathBuf>> {
        for (n, path) in existing {
            if n >= count {
                std::fs::remove_file(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
        let mut names = Vec::with_capacity(count as usize);
        for n in 0..count {
            let (from, to) = (staged.path(n), self.path(n));
            std::fs::rename(&from, &to).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (parts below {n} are in place, the others in {})",
                    to.display(),
                    staged.dir.display()
                )
            })?;
            names.push(to);
        }
        Ok(names)
    }
}

/// An exclusive lock on a prefix in an output directory, so that two
/// splits never write the same parts at once: a lock file
/// `DIR/.PREFIX.pcap-parallel.lock`, held with `flock` (released by the
/// kernel if the process dies) and removed when the split ends.
struct PrefixLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl PrefixLock {
    fn take(parts: &PartSet) -> anyhow::Result<PrefixLock> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let path = parts
            .dir
            .join(format!(".{}.pcap-parallel.lock", parts.prefix));
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    anyhow::bail!(
                        "another split is writing parts named {}-* in {} (it holds {})",
                        parts.prefix,
                        parts.dir.display(),
                        path.display()
                    );
                }
                return Err(anyhow::anyhow!("{}: {e}", path.display()));
            }
            // The holder before us may have removed the file after we
            // opened it: then ours is not the lock; take the new one.
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if same {
                return Ok(PrefixLock { path, _file: file });
            }
        }
    }
}

impl Drop for PrefixLock {
    fn drop(&mut self) {
        // Removed while still held, then released when the file closes.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_part_names() {
        assert_eq!(default_prefix(Path::new("/x/trace.pcapng.gz")), "trace");
        assert_eq!(default_prefix(Path::new("a.b.pcap")), "a.b");
        assert_eq!(default_prefix(Path::new("-")), "stdin");
        assert_eq!(
            part_number("trace-00000012.pcap", "trace", ".pcap"),
            Some(12)
        );
        assert_eq!(part_number("trace-12.pcap", "trace", ".pcap"), None);
        assert_eq!(part_number("other-00000012.pcap", "trace", ".pcap"), None);
    }
}

//! `split`: every chunk written as a standalone capture file; the set of
//! parts replaces the earlier one whole, or not at all.
//!
//! The parts are written in a staging directory inside the output
//! directory (`.pcap-parallel-<pid>-XXXXXX`) and renamed in once all are
//! complete; a failed write or an interruption removes them and leaves the
//! directory as it was. A lock file per prefix keeps two splits from
//! writing the same parts at once, and a part that is the input itself
//! (same device and inode) is never replaced or removed.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use pcap_parallel::output::{
    IfExists, OutputCompression, ShardFiles, default_prefix, part_extension, part_file_name,
    part_number, write_chunk,
};
use pcap_parallel::{Capture, CaptureFormat};

use crate::args::{Chunking, Common, FlowArgs, Inputs};
use crate::run::{self, Bar, Status, UsageError};
use crate::{errln, streams};

#[derive(Args, Debug)]
pub struct SplitArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// Directory for the parts (created if missing).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    out: PathBuf,

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

    /// How big the parts are: one part per chunk (by default, chunks sized
    /// for the worker count), or with --flows one part per shard.
    #[command(flatten, next_help_heading = "Parts")]
    size: Chunking,

    #[command(flatten, next_help_heading = "Parts")]
    flow: FlowArgs,

    #[command(flatten)]
    common: Common,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Compress {
    Gzip,
    Zstd,
}

/// Where the parts go and what they are called.
struct Parts {
    dir: PathBuf,
    prefix: String,
    format: CaptureFormat,
    compression: OutputCompression,
    /// Parts of an earlier split already there, by number (checked: none
    /// is the input, none a directory).
    existing: Vec<(u64, PathBuf)>,
    /// Where the new parts are written until all are complete.
    staging: tempfile::TempDir,
    /// Held until the split ends.
    _lock: PrefixLock,
}

impl Parts {
    /// Checks the options and the output directory (creating it if
    /// needed), takes the prefix's lock, finds the parts an earlier split
    /// left there and makes the staging directory.
    fn prepare(
        args: &SplitArgs,
        format: CaptureFormat,
        inputs: &[PathBuf],
    ) -> anyhow::Result<Parts> {
        let compression = match args.compress {
            None => OutputCompression::None,
            Some(Compress::Gzip) => OutputCompression::Gzip,
            Some(Compress::Zstd) => OutputCompression::Zstd,
        };
        let ext = part_extension(format, compression);
        let prefix = args
            .prefix
            .clone()
            .unwrap_or_else(|| default_prefix(&inputs[0]));
        if prefix.is_empty() || prefix.contains('/') {
            return Err(UsageError(format!("--prefix must be a file name, not {prefix:?}")).into());
        }
        let dir = args.out.clone();
        if dir.exists() && !dir.is_dir() {
            return Err(UsageError(format!(
                "{}: not a directory (-o names the directory for the parts)",
                dir.display()
            ))
            .into());
        }
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let lock = PrefixLock::take(&dir, &prefix)?;
        // What split runs that were killed left here.
        crate::stale::remove_stale(&dir, crate::stale::SPLIT_PREFIX);
        let existing = existing_parts(&dir, &prefix, &ext, inputs)?;
        if !existing.is_empty() && !args.force {
            anyhow::bail!(
                "{} already holds parts named {prefix}-*{ext} (use --force to replace them)",
                dir.display()
            );
        }
        let staging = tempfile::Builder::new()
            .prefix(&crate::stale::ours(crate::stale::SPLIT_PREFIX))
            .tempdir_in(&dir)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot write there (a staging directory could not be made: {e})",
                    dir.display()
                )
            })?;
        Ok(Parts {
            dir,
            prefix,
            format,
            compression,
            existing,
            staging,
            _lock: lock,
        })
    }

    fn name(&self, n: u64) -> String {
        part_file_name(&self.prefix, n as usize, self.format, self.compression)
    }

    /// The final path of part `n`.
    fn path(&self, n: u64) -> PathBuf {
        self.dir.join(self.name(n))
    }

    /// Where part `n` is written until the set is complete.
    fn staged(&self, n: u64) -> PathBuf {
        self.staging.path().join(self.name(n))
    }

    /// Puts the `count` parts written in place of the existing ones: the
    /// old parts past the new set are removed, then each new part is
    /// renamed in (over the old part of its number). The prefix lock keeps
    /// other splits out meanwhile.
    fn commit(&self, count: u64) -> anyhow::Result<Vec<PathBuf>> {
        for (n, path) in &self.existing {
            if *n >= count {
                std::fs::remove_file(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
        let mut names = Vec::with_capacity(count as usize);
        for n in 0..count {
            let to = self.path(n);
            std::fs::rename(self.staged(n), &to).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (parts below {n} are in place, the others in {})",
                    to.display(),
                    self.staging.path().display()
                )
            })?;
            names.push(to);
        }
        Ok(names)
    }
}

/// The parts already in `dir`, checked: none may be an input (a split
/// never deletes or overwrites its input, whatever its name), and none a
/// directory.
fn existing_parts(
    dir: &Path,
    prefix: &str,
    ext: &str,
    inputs: &[PathBuf],
) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    use std::os::unix::fs::MetadataExt;
    let found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            part_number(&name, prefix, ext).map(|n| (n, e.path()))
        })
        .collect();
    let input_ids: Vec<((u64, u64), &PathBuf)> = inputs
        .iter()
        .filter(|input| input.as_os_str() != "-")
        .filter_map(|input| Some(((std::fs::metadata(input).ok()?), input)))
        .map(|(m, input)| ((m.dev(), m.ino()), input))
        .collect();
    for (_, path) in &found {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Some((_, input)) = input_ids
            .iter()
            .find(|(id, _)| *id == (meta.dev(), meta.ino()))
        {
            return Err(UsageError(format!(
                "the input {} is named like a part of this split in {}: it would be \
                 replaced; choose another --prefix or output directory",
                input.display(),
                dir.display()
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
    Ok(found)
}

pub fn run(args: SplitArgs) -> anyhow::Result<Status> {
    let split = args.size.checked()?;
    let (capture, inputs) = run::open_inputs(&args.inputs, &args.common, split)?;
    let parts = Parts::prepare(&args, capture.format(), &inputs)?;
    let (capture, bar) = Bar::attach(capture, &args.common, "split");
    let written = match args.size.flows {
        Some(k) => write_shards(capture, k, &parts, &args)?,
        None => write_chunks(capture, &parts)?,
    };
    drop(bar);
    if written.status == Status::Interrupted || written.write_failed {
        // The staging directory goes, and with it every new part.
        errln!(
            "pcap-parallel: no part written: {} is as it was",
            parts.dir.display()
        );
        return Ok(if written.status == Status::Interrupted {
            Status::Interrupted
        } else {
            Status::Failed
        });
    }
    // Written whole (a broken input gives the parts of every packet
    // before the fault): the new set replaces the old.
    for name in parts.commit(written.count)? {
        streams::write_out(name.as_os_str().as_encoded_bytes());
        streams::write_out(if args.print0 { b"\0" } else { b"\n" });
    }
    streams::flush();
    Ok(written.status)
}

/// What writing the parts came to.
struct Written {
    /// Parts written (numbers 0..count).
    count: u64,
    /// How reading the input ended.
    status: Status,
    /// A part could not be written.
    write_failed: bool,
}

/// One part per chunk, written in parallel into the staging directory.
fn write_chunks(capture: Capture, parts: &Parts) -> anyhow::Result<Written> {
    let mut write_failed = false;
    let mut count = 0u64;
    let mut report = capture.run(
        |chunk| {
            let n = chunk.index() as u64;
            if part_extension(chunk.format(), parts.compression)
                != part_extension(parts.format, parts.compression)
            {
                // Several inputs read as one, in two formats: the parts
                // would be named for the first one's.
                return Err(format!(
                    "{}: {} input among {} ones: split the formats apart",
                    chunk.input_name(),
                    chunk.format().extension(),
                    parts.format.extension()
                )
                .into());
            }
            write_chunk(chunk, &parts.staged(n), parts.compression, IfExists::Fail)
                .map_err(|e| format!("{}: {e}", parts.path(n).display()).into())
        },
        |r| match r.result {
            Ok(_) => count += 1,
            Err(e) => {
                write_failed = true;
                match &e.cause {
                    pcap_parallel::ChunkFailureCause::Error(e) => errln!("pcap-parallel: {e}"),
                    _ => errln!("pcap-parallel: {e}"),
                }
            }
        },
    );
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    Ok(Written {
        count,
        status,
        write_failed,
    })
}

/// One part per flow shard, written into the staging directory.
fn write_shards(
    capture: Capture,
    shards: usize,
    parts: &Parts,
    args: &SplitArgs,
) -> anyhow::Result<Written> {
    let mut files = ShardFiles::new(parts.staging.path(), &parts.prefix);
    files.compression = parts.compression;
    files.max_open = args.max_open.max(1);
    let (names, mut report) = capture
        .flows(shards)
        .key(args.flow.key())
        .write_shards(&files);
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    Ok(match names {
        Ok(names) => Written {
            count: names.len() as u64,
            status,
            write_failed: false,
        },
        Err(pcap_parallel::Error::Cancelled) => Written {
            count: 0,
            status: Status::Interrupted,
            write_failed: false,
        },
        Err(e) => {
            errln!("pcap-parallel: {e}");
            Written {
                count: 0,
                status,
                write_failed: true,
            }
        }
    })
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
    fn take(dir: &Path, prefix: &str) -> anyhow::Result<PrefixLock> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let path = dir.join(format!(".{prefix}.pcap-parallel.lock"));
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
                        "another split is writing parts named {prefix}-* in {} (it holds {})",
                        dir.display(),
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

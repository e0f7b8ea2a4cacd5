//! `split`: every chunk written as a standalone capture file, atomically.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use pcap_parallel::output::{OutputCompression, ShardFiles, write_chunk};
use pcap_parallel::{Capture, CaptureFormat};

use crate::args::{Chunking, Common, FlowArgs, Input};
use crate::run::{self, Bar, Status, UsageError};
use crate::{errln, outln, streams};

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// Capture file (`-` for standard input).
    file: Input,

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

/// Where the parts go and what they are called.
struct Parts {
    dir: PathBuf,
    prefix: String,
    /// `.pcap`, `.pcapng.gz`, ...
    ext: String,
    compression: OutputCompression,
    /// Parts of an earlier split already there, by number.
    existing: Vec<(u64, PathBuf)>,
}

impl Parts {
    /// Checks the options and the output directory (creating it if
    /// needed), and finds the parts an earlier split left there.
    fn prepare(args: &SplitArgs, format: CaptureFormat) -> anyhow::Result<Parts> {
        let compression = match args.compress {
            None => OutputCompression::None,
            Some(Compress::Gzip) => OutputCompression::Gzip,
            Some(Compress::Zstd) => OutputCompression::Zstd,
        };
        let ext = format!(
            ".{}{}",
            match format {
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
        let dir = args.out.clone();
        if dir.exists() && !dir.is_dir() {
            return Err(UsageError(format!(
                "{}: not a directory (-o names the directory for the parts)",
                dir.display()
            ))
            .into());
        }
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let existing: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                part_number(&name, &prefix, &ext).map(|n| (n, e.path()))
            })
            .collect();
        if !existing.is_empty() && !args.force {
            anyhow::bail!(
                "{} already holds parts named {prefix}-*{ext} (use --force to replace them)",
                dir.display()
            );
        }
        Ok(Parts {
            dir,
            prefix,
            ext,
            compression,
            existing,
        })
    }

    /// The path of part `n`.
    fn path(&self, n: usize) -> PathBuf {
        self.dir
            .join(format!("{}-{n:0DIGITS$}{}", self.prefix, self.ext))
    }

    /// Removes the parts of an earlier, longer split, numbered `written` and
    /// up: they would now be misleading.
    fn remove_stale(self, written: u64) -> anyhow::Result<()> {
        for (n, path) in self.existing {
            if n >= written {
                std::fs::remove_file(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
        Ok(())
    }
}

pub fn run(args: SplitArgs) -> anyhow::Result<Status> {
    let split = args.size.checked()?;
    let capture = run::open(&args.file, &args.common, split)?;
    let parts = Parts::prepare(&args, capture.format())?;
    let (capture, bar) = Bar::attach(capture, &args.common, "split");
    let (status, written) = match args.size.flows {
        Some(k) => write_shards(capture, k, &parts, &args)?,
        None => write_chunks(capture, &parts, args.force)?,
    };
    drop(bar);
    if status == Status::Ok {
        parts.remove_stale(written)?;
    }
    Ok(status)
}

/// One part per chunk, written in parallel, named as they complete.
/// Returns the status and the number of parts written.
fn write_chunks(capture: Capture, parts: &Parts, force: bool) -> anyhow::Result<(Status, u64)> {
    let mut failed = false;
    let mut written = 0u64;
    let mut report = capture.run(
        |chunk| {
            let path = parts.path(chunk.index());
            write_chunk(chunk, &path, parts.compression, force)
                .map(|_| path)
                .map_err(|e| e.into())
        },
        |r| match r.result {
            Ok(path) => {
                written += 1;
                outln!("{}", path.display());
                streams::flush();
            }
            Err(e) => {
                failed = true;
                errln!("pcap-parallel: {e}");
            }
        },
    );
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    Ok((if failed { Status::Failed } else { status }, written))
}

/// One part per flow shard, named when all are complete.
fn write_shards(
    capture: Capture,
    shards: usize,
    parts: &Parts,
    args: &SplitArgs,
) -> anyhow::Result<(Status, u64)> {
    let mut files = ShardFiles::new(&parts.dir, &parts.prefix);
    files.compression = parts.compression;
    files.overwrite = args.force;
    files.max_open = args.max_open.max(1);
    let (names, mut report) = capture
        .flows(shards)
        .key(args.flow.key())
        .write_shards(&files);
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    match names {
        Ok(names) => {
            for n in &names {
                outln!("{}", n.display());
            }
            streams::flush();
            Ok((status, names.len() as u64))
        }
        Err(pcap_parallel::Error::Cancelled) => Ok((Status::Interrupted, 0)),
        Err(e) if status == Status::Ok => Err(e.into()),
        Err(e) => {
            errln!("pcap-parallel: {e}");
            Ok((status, 0))
        }
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

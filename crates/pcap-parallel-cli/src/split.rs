//! `split`: every chunk written as a standalone capture file, atomically.

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

    /// This many parts of about equal size.
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
    let existing: Vec<(u64, PathBuf)> = std::fs::read_dir(&args.out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            part_number(&name, &prefix, &ext).map(|n| (n, e.path()))
        })
        .collect();
    if !existing.is_empty() && !args.force {
        anyhow::bail!(
            "{} already holds parts named {prefix}-*{ext} (use --force to replace them)",
            args.out.display()
        );
    }

    let (capture, bar) = Bar::attach(capture, &args.common, "split");
    if let Some(k) = args.size.flows {
        let mut files = ShardFiles::new(&args.out, &prefix);
        files.compression = compression;
        files.overwrite = args.force;
        files.max_open = args.max_open.max(1);
        let (names, report) = capture.flows(k).key(args.flow.key()).write_shards(&files);
        drop(bar);
        let status = run::finish(report.input_error, &report.skipped);
        return match names {
            Ok(names) => {
                for n in &names {
                    println!("{}", n.display());
                }
                if status == Status::Ok {
                    for (n, path) in existing {
                        if n >= k as u64 {
                            std::fs::remove_file(&path)
                                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                        }
                    }
                }
                Ok(status)
            }
            Err(pcap_parallel::Error::Cancelled) => Ok(Status::Interrupted),
            Err(e) if status == Status::Ok => Err(e.into()),
            Err(e) => {
                eprintln!("pcap-parallel: {e}");
                Ok(status)
            }
        };
    }
    let out = &args.out;
    let force = args.force;
    let mut failed = false;
    let mut written = 0u64;
    let report = capture.run(
        |chunk| {
            let path = out.join(format!("{prefix}-{:0DIGITS$}{ext}", chunk.index()));
            write_chunk(chunk, &path, compression, force)
                .map(|_| path)
                .map_err(|e| e.into())
        },
        |r| match r.result {
            Ok(path) => {
                written += 1;
                println!("{}", path.display());
            }
            Err(e) => {
                failed = true;
                eprintln!("pcap-parallel: {e}");
            }
        },
    );
    drop(bar);
    let status = run::finish(report.input_error, &report.skipped);
    if status == Status::Ok && !failed {
        // Parts of an earlier, longer split would now be misleading.
        for (n, path) in existing {
            if n >= written {
                std::fs::remove_file(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
    }
    Ok(if failed { Status::Failed } else { status })
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

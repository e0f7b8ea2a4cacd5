//! `split`: every chunk written as a standalone capture file, atomically.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use pcap_parallel::Split;
use pcap_parallel::output::{
    OutputCompression, ShardFiles, default_prefix, part_extension, part_file_name, part_number,
    write_chunk,
};

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
    let ext = part_extension(capture.format(), compression);
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

    let format = capture.format();
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
            let path = out.join(part_file_name(&prefix, chunk.index(), format, compression));
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

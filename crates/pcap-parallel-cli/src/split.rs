//! `split`: every chunk written as a standalone capture file; the set of
//! parts replaces the earlier one whole, or not at all.
//!
//! The parts are written in a staging directory inside the output
//! directory (`.pcap-parallel-<pid>-XXXXXX`) and renamed in once all are
//! complete; a failed write or an interruption removes them and leaves the
//! directory as it was. A lock file per prefix keeps two splits from
//! writing the same parts at once, and a part that is the input itself
//! (same device and inode) is never replaced or removed.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use pcap_parallel::output::{OutputCompression, PartSet, PartsError, default_prefix};
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

/// The output directory, prefix and compression from the options, made
/// ready: the library's [`PartSet`] checks the prefix, takes the prefix's
/// lock, guards the inputs and makes the staging directory; here its
/// errors get the command line's words.
fn prepare(args: &SplitArgs, format: CaptureFormat, inputs: &[PathBuf]) -> anyhow::Result<PartSet> {
    let compression = match args.compress {
        None => OutputCompression::None,
        Some(Compress::Gzip) => OutputCompression::Gzip,
        Some(Compress::Zstd) => OutputCompression::Zstd,
    };
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| default_prefix(&inputs[0]));
    PartSet::prepare(&args.out, &prefix, format, compression, args.force, inputs).map_err(|e| {
        match e {
            PartsError::BadPrefix(p) => {
                UsageError(format!("--prefix must be a file name, not {p:?}")).into()
            }
            PartsError::NotADirectory(d) => UsageError(format!(
                "{}: not a directory (-o names the directory for the parts)",
                d.display()
            ))
            .into(),
            e @ PartsError::InputIsPart { .. } => {
                UsageError(format!("{e}; choose another --prefix or output directory")).into()
            }
            e @ PartsError::DirectoryIsPart(_) => UsageError(e.to_string()).into(),
            e @ PartsError::PartsExist { .. } => {
                anyhow::anyhow!("{e} (use --force to replace them)")
            }
            e => anyhow::anyhow!("{e}"),
        }
    })
}

pub fn run(args: SplitArgs) -> anyhow::Result<Status> {
    let split = args.size.checked()?;
    let (capture, inputs) = run::open_inputs(&args.inputs, &args.common, split)?;
    let parts = prepare(&args, capture.format(), &inputs)?;
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
            parts.dir().display()
        );
        return Ok(if written.status == Status::Interrupted {
            Status::Interrupted
        } else {
            Status::Failed
        });
    }
    // Written whole (a broken input gives the parts of every packet
    // before the fault): the new set replaces the old.
    let dir = parts.dir().to_path_buf();
    let names = parts
        .commit(written.count)
        .map_err(|e| anyhow::anyhow!("{e} (no part replaced: {} is as it was)", dir.display()))?;
    for name in names {
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
fn write_chunks(capture: Capture, parts: &PartSet) -> anyhow::Result<Written> {
    let mut write_failed = false;
    let (count, mut report) = parts.write_chunks(capture, |e| {
        write_failed = true;
        match &e.cause {
            pcap_parallel::ChunkFailureCause::Error(e) => errln!("pcap-parallel: {e}"),
            _ => errln!("pcap-parallel: {e}"),
        }
    });
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
    parts: &PartSet,
    args: &SplitArgs,
) -> anyhow::Result<Written> {
    let flows = capture.flows(shards).key(args.flow.key());
    let (count, mut report) = parts.write_shards(flows, args.max_open);
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    Ok(match count {
        Ok(count) => Written {
            count,
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

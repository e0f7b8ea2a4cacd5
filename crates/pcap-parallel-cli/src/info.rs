//! `info`: a capinfos-like summary, computed in parallel.
//!
//! Every input gets its answer, in order: a summary, or (for an input of
//! which nothing could be read: missing, not a capture, a header this reader
//! does not accept) only its error, which `--json` prints as a line of its
//! own, `{"file": ..., "error": ...}`, so that scripts can line the lines up
//! with their inputs.

use clap::Args;
use pcap_parallel::pcap::PcapHeader;
use pcap_parallel::{Capture, Report};

use crate::args::{Chunking, Common, FlowArgs, Input};
use crate::run::{self, Bar, Status};
use crate::summary::{Identity, Stats, Summary, Unreadable};
use crate::{errln, outln, streams};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Capture files (`-` for standard input).
    #[arg(required = true)]
    files: Vec<Input>,

    /// One JSON object per file, one per line.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: Common,

    #[command(flatten, next_help_heading = crate::args::SPEED_ONLY)]
    chunking: Chunking,

    #[command(flatten, next_help_heading = crate::args::SPEED_ONLY)]
    flow: FlowArgs,
}

pub fn run(args: InfoArgs) -> anyhow::Result<Status> {
    let split = args.chunking.checked()?;
    let mut status = Status::Ok;
    for file in &args.files {
        let outcome = match run::open(file, &args.common, split) {
            Ok(capture) => summarise(capture, &args)?,
            Err(e) if e.downcast_ref::<run::UsageError>().is_some() => return Err(e),
            Err(e) => unreadable(&file.display().to_string(), &format!("{e:#}"), args.json),
        };
        match outcome {
            Status::Ok => {}
            Status::Interrupted => return Ok(Status::Interrupted),
            Status::Failed => status = Status::Failed,
        }
        streams::flush();
    }
    Ok(status)
}

/// Reads one capture and prints its summary.
fn summarise(capture: Capture, args: &InfoArgs) -> anyhow::Result<Status> {
    let id = Identity {
        name: capture.name().to_string(),
        format: capture.format(),
        compression: capture.compression(),
    };
    let (capture, bar) = Bar::attach(capture, &args.common, &id.name);
    let (stats, header, mut report) = match args.chunking.flows {
        Some(k) => count_by_flow(capture, k, &args.flow),
        None => count_by_chunk(capture),
    };
    drop(bar);
    run::usage_error_in(&mut report)?;
    if run::nothing_read(&report) {
        let e = report.input_error.expect("nothing read: an error");
        return Ok(unreadable(&id.name, &e.to_string(), args.json));
    }
    let error = report.input_error.as_ref().map(|e| e.to_string());
    let summary = Summary::new(&id, stats, header.as_ref(), report.chunks, error);
    if args.json {
        outln!("{}", summary.to_json());
    } else {
        streams::write_out_fmt(format_args!("{summary}"));
    }
    Ok(run::finish(report.input_error, &report.skipped))
}

/// The error of an input of which nothing could be read, and its JSON line.
fn unreadable(file: &str, error: &str, json: bool) -> Status {
    if json {
        let line = Unreadable {
            file,
            error: error.to_string(),
        };
        outln!(
            "{}",
            serde_json::to_string(&line).expect("a string pair serialises")
        );
    }
    errln!("pcap-parallel: {error}");
    Status::Failed
}

/// Counts chunk by chunk, merged in file order.
fn count_by_chunk(capture: Capture) -> (Stats, Option<PcapHeader>, Report) {
    let mut stats = Some(Stats::default());
    let mut header = None;
    let report = capture.run(
        |chunk| Ok((Stats::of(chunk), chunk.pcap_header().cloned())),
        |r| {
            if let Ok((s, h)) = r.result {
                stats = stats.take().map(|acc| acc.merge(s));
                header = header.take().or(h);
            }
        },
    );
    (stats.expect("set"), header, report)
}

/// Counts per flow shard, then merged: the same summary.
fn count_by_flow(
    capture: Capture,
    shards: usize,
    flow: &FlowArgs,
) -> (Stats, Option<PcapHeader>, Report) {
    let mut whole = Stats::default();
    let mut header = None;
    let (per_shard, report) = capture.flows(shards).key(flow.key()).fold_observing(
        |_| Stats::default(),
        |s, p| s.add(p),
        |_, s| s,
        |chunk| {
            whole.sections_of(chunk);
            if header.is_none() {
                header = chunk.pcap_header().cloned();
            }
        },
    );
    let mut report = report;
    let stats = match per_shard {
        Ok(shards) => shards.into_iter().fold(whole, Stats::merge),
        Err(e) => {
            // A shard worker failed: the summary would be short of its packets.
            report.input_error.get_or_insert(e);
            whole
        }
    };
    (stats, header, report)
}

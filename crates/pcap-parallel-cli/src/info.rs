//! `info`: a capinfos-like summary, computed in parallel.
//!
//! Every input gets its answer, in order: a summary, or (for an input of
//! which nothing could be read: missing, not a capture, a header this reader
//! does not accept) only its error, which `--json` prints as a line of its
//! own, `{"file": ..., "error": ...}`, so that scripts can line the lines up
//! with their inputs.

use clap::Args;
use pcap_parallel::Capture;
use pcap_parallel::summary::summarise;

use crate::args::{Chunking, Common, FlowArgs, Input};
use crate::run::{self, Bar, Status, UsageError};
use crate::summary::{Summary, Unreadable};
use crate::{errln, outln, streams};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Capture files (`-` for standard input), or quoted glob patterns;
    /// each is summarised on its own.
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
    let files = pcap_parallel::expand_inputs(&args.files).map_err(|e| UsageError(e.to_string()))?;
    for file in &files {
        let outcome = match run::open(file, &args.common, split) {
            Ok(capture) => summarise_one(capture, &args)?,
            Err(e)
                if e.downcast_ref::<run::UsageError>().is_some()
                    || e.downcast_ref::<run::Interrupted>().is_some() =>
            {
                return Err(e);
            }
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
fn summarise_one(capture: Capture, args: &InfoArgs) -> anyhow::Result<Status> {
    let name = capture.name().to_string();
    let (capture, bar) = Bar::attach(capture, &args.common, &name);
    let flows = args.chunking.flows.map(|k| (k, args.flow.key()));
    let (summary, mut report) = summarise(capture, flows);
    drop(bar);
    run::usage_error_in(&mut report)?;
    if run::nothing_read(&report) {
        let e = report.input_error.expect("nothing read: an error");
        return Ok(unreadable(&name, &e.to_string(), args.json));
    }
    let error = report.input_error.as_ref().map(|e| e.to_string());
    let summary = Summary::new(summary, error);
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

//! `exec`: one run of a command per chunk, in parallel, output in chunk order.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};

use clap::Args;
use pcap_parallel::{CaptureFormat, Chunk};

use crate::args::{Chunking, Common, FlowArgs, Input as InputPath};
use crate::run::{self, Bar, Status, UsageError};
use crate::{errln, streams};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Capture file (`-` for standard input).
    file: InputPath,

    #[command(flatten, next_help_heading = "Chunking")]
    chunking: Chunking,

    /// Stop starting runs after the first one fails.
    #[arg(long)]
    fail_fast: bool,

    #[command(flatten, next_help_heading = "Chunking")]
    flow: FlowArgs,

    #[command(flatten)]
    common: Common,

    /// The command and its arguments, after `--`; `{}` is the chunk's file.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// Stops a command and everything in its process group: SIGTERM, then
/// SIGKILL if it has not exited within two seconds.
fn stop_group(child: &mut std::process::Child) -> std::io::Result<ExitStatus> {
    let group = child.id() as i32;
    // SAFETY: signalling a process group we created.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if let Some(status) = child.try_wait()? {
            // Whatever it left behind in its group goes too.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            return Ok(status);
        }
        if std::time::Instant::now() > deadline {
            unsafe { libc::kill(-group, libc::SIGKILL) };
            return child.wait();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// What one run produced.
struct RunOutput {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: ExitStatus,
}

fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// What a run is given: a chunk, or a flow shard already written to a file.
enum Input<'a> {
    Chunk(&'a Chunk),
    Shard {
        path: &'a std::path::Path,
        index: usize,
    },
}

fn run_one(
    input: Input<'_>,
    command: &[OsString],
    placeholder: bool,
) -> std::io::Result<RunOutput> {
    // A chunk given as `{}` lives in a temporary capture until this
    // function returns, and is then removed.
    let temp = match input {
        Input::Chunk(chunk) if placeholder => Some(chunk_file(chunk)?),
        _ => None,
    };
    let path = match (&input, &temp) {
        (_, Some(t)) => Some(t.path()),
        (Input::Shard { path, .. }, None) => Some(*path),
        _ => None,
    };
    let mut child = command_for(&input, command, placeholder.then_some(path).flatten()).spawn()?;
    supervise(&mut child, input)
}

/// The chunk as a temporary capture file, for `{}`.
fn chunk_file(chunk: &Chunk) -> std::io::Result<tempfile::NamedTempFile> {
    let suffix = match chunk.format() {
        CaptureFormat::Pcapng => ".pcapng",
        CaptureFormat::Pcap { .. } => ".pcap",
    };
    let mut f = tempfile::Builder::new()
        .prefix("pcap-parallel-chunk-")
        .suffix(suffix)
        .tempfile()?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
    chunk.write_standalone(&mut w)?;
    w.flush()?;
    drop(w);
    Ok(f)
}

/// The command for one input: `{}` replaced by `path` (when given, else
/// the input goes to its standard input), its environment, its pipes.
fn command_for(input: &Input<'_>, command: &[OsString], path: Option<&std::path::Path>) -> Command {
    let mut args: Vec<OsString> = command[1..].to_vec();
    if let Some(path) = path {
        for a in &mut args {
            if let Some(s) = a.to_str()
                && s.contains("{}")
            {
                *a = OsString::from(s.replace("{}", &path.to_string_lossy()));
            }
        }
    }
    let mut cmd = Command::new(&command[0]);
    // Its own process group, so that stopping it stops what it started too
    // (a shell's children hold its output pipes open).
    cmd.process_group(0)
        .args(&args)
        .stdin(if path.is_some() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match input {
        Input::Chunk(chunk) => cmd
            .env("PCAP_PARALLEL_CHUNK", chunk.index().to_string())
            .env(
                "PCAP_PARALLEL_FIRST_PACKET",
                chunk.first_packet_number().to_string(),
            )
            .env("PCAP_PARALLEL_PACKETS", kept_packets(chunk).to_string()),
        Input::Shard { index, .. } => cmd.env("PCAP_PARALLEL_CHUNK", index.to_string()),
    };
    cmd
}

/// The packets of `chunk` the command gets: those that pass the filter, if any.
fn kept_packets(chunk: &Chunk) -> u64 {
    match chunk.filter() {
        Some(_) => chunk.packets().count() as u64,
        None => chunk.packet_count(),
    }
}

/// Feeds the command its input (when it reads standard input), reads both
/// its outputs, and waits for it, stopping it if we are interrupted (a
/// SIGTERM sent to us alone would otherwise leave it running).
fn supervise(child: &mut std::process::Child, input: Input<'_>) -> std::io::Result<RunOutput> {
    let interrupted = crate::run::interrupt_flag();
    let (stdout, stderr, status) = std::thread::scope(|s| -> std::io::Result<_> {
        if let Some(mut stdin) = child.stdin.take() {
            s.spawn(move || {
                // A command may stop reading early (`head`): not an error of ours.
                let _ = match input {
                    Input::Chunk(chunk) => chunk.write_standalone(&mut stdin),
                    Input::Shard { path, .. } => std::fs::File::open(path)
                        .and_then(|mut f| std::io::copy(&mut f, &mut stdin)),
                };
            });
        }
        let out = read_all(s, child.stdout.take().expect("piped"));
        let err = read_all(s, child.stderr.take().expect("piped"));
        let mut pause = std::time::Duration::from_micros(100);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                break stop_group(child)?;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(10));
        };
        Ok((
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
            status,
        ))
    })?;
    Ok(RunOutput {
        stdout,
        stderr,
        status,
    })
}

/// Reads `pipe` to its end on a thread of `scope`.
fn read_all<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    mut pipe: impl std::io::Read + Send + 's,
) -> std::thread::ScopedJoinHandle<'s, Vec<u8>> {
    scope.spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    })
}

/// Runs the command on one input; a failed run keeps what it printed.
fn attempt(
    input: Input<'_>,
    command: &[OsString],
    placeholder: bool,
) -> Result<RunOutput, pcap_parallel::BoxError> {
    let out = run_one(input, command, placeholder)
        .map_err(|e| format!("could not run {}: {e}", command[0].to_string_lossy()))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Box::new(FailedRun(out)))
    }
}

/// Prints a run's output: standard output whole, standard error line by
/// line behind the chunk's label.
fn print(out: &RunOutput, label: &str) {
    streams::write_out(&out.stdout);
    streams::flush();
    for line in out.stderr.split_inclusive(|&b| b == b'\n') {
        let mut labelled = Vec::with_capacity(label.len() + line.len() + 1);
        labelled.extend_from_slice(label.as_bytes());
        labelled.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            labelled.push(b'\n');
        }
        streams::write_err(&labelled);
    }
}

/// Prints a failed run's output and says what went wrong.
fn failure_text(e: &pcap_parallel::BoxError, label: &str) -> String {
    match e.downcast_ref::<FailedRun>() {
        Some(FailedRun(out)) => {
            print(out, label);
            describe(&out.status)
        }
        None => e.to_string(),
    }
}

/// `exec --flows K`: the shards are written to a temporary directory, then
/// the command runs on each, `workers` at a time, output in shard order.
fn run_on_shards(args: &ExecArgs, shards: usize, placeholder: bool) -> anyhow::Result<Status> {
    let capture = run::open(&args.file, &args.common, pcap_parallel::Split::Auto)?;
    let workers = capture.worker_count();
    let (capture, bar) = Bar::attach(capture, &args.common, "exec");
    let dir = tempfile::Builder::new()
        .prefix("pcap-parallel-shards-")
        .tempdir()?;
    let files = pcap_parallel::output::ShardFiles::new(dir.path(), "shard");
    let (names, mut report) = capture
        .flows(shards)
        .key(args.flow.key())
        .write_shards(&files);
    drop(bar);
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    let names = match names {
        Ok(n) => n,
        Err(pcap_parallel::Error::Cancelled) => return Ok(Status::Interrupted),
        Err(e) => {
            errln!("pcap-parallel: {e}");
            return Ok(Status::Failed);
        }
    };
    let failures = run_on_files(&names, workers, &args.command, placeholder);
    Ok(with_failures(status, &failures, names.len()))
}

/// Runs the command on each shard file, `workers` at a time, printing the
/// output in shard order as runs finish; returns the failures.
fn run_on_files(
    names: &[std::path::PathBuf],
    workers: usize,
    command: &[OsString],
    placeholder: bool,
) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut failures = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..workers.min(names.len()).max(1) {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= names.len()
                        || run::interrupt_flag().load(std::sync::atomic::Ordering::Relaxed)
                    {
                        break;
                    }
                    let shard = Input::Shard {
                        path: &names[i],
                        index: i,
                    };
                    if tx.send((i, attempt(shard, command, placeholder))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut want = 0;
        for (i, r) in rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                let label = format!("[shard {want}] ");
                match r {
                    Ok(out) => print(&out, &label),
                    Err(e) => failures.push(format!("shard {want}: {}", failure_text(&e, &label))),
                }
                want += 1;
            }
        }
    });
    failures
}

pub fn run(args: ExecArgs) -> anyhow::Result<Status> {
    let placeholder = args.command[1..]
        .iter()
        .any(|a| a.to_string_lossy().contains("{}"));
    if args.command[0].is_empty() {
        return Err(UsageError("no command given after --".into()).into());
    }
    let split = args.chunking.checked()?;
    if let Some(k) = args.chunking.flows {
        return run_on_shards(&args, k, placeholder);
    }
    let capture = run::open(&args.file, &args.common, split)?.fail_fast(args.fail_fast);
    let (capture, bar) = Bar::attach(capture, &args.common, "exec");
    let command = &args.command;
    let mut failures: Vec<String> = Vec::new();
    let mut runs = 0usize;
    let mut report = capture.run(
        |chunk| attempt(Input::Chunk(chunk), command, placeholder),
        |r| {
            runs += 1;
            let label = format!("[chunk {}] ", r.index);
            match r.result {
                Ok(out) => print(&out, &label),
                Err(failure) => {
                    let what = match &failure.cause {
                        pcap_parallel::ChunkFailureCause::Error(e) => failure_text(e, &label),
                        cause => cause.to_string(),
                    };
                    failures.push(format!(
                        "chunk {} (bytes {}..{}, packets {}..{}): {what}",
                        r.index,
                        r.byte_range.start,
                        r.byte_range.end,
                        r.first_packet_number,
                        r.first_packet_number + r.packet_count.saturating_sub(1)
                    ));
                }
            }
        },
    );
    drop(bar);
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    Ok(with_failures(status, &failures, runs))
}

/// Lists the failed runs (unless the run was stopped, which stops commands
/// too) and says how the command ends.
fn with_failures(status: Status, failures: &[String], runs: usize) -> Status {
    let interrupted = run::interrupt_flag().load(std::sync::atomic::Ordering::Relaxed);
    if interrupted {
        return Status::Interrupted;
    }
    if failures.is_empty() {
        return status;
    }
    errln!("pcap-parallel: {} of {runs} runs failed:", failures.len());
    for f in failures {
        errln!("  {f}");
    }
    Status::Failed
}

/// A run that exited unsuccessfully, with what it printed.
struct FailedRun(RunOutput);

impl std::fmt::Debug for FailedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FailedRun({})", describe(&self.0.status))
    }
}

impl std::fmt::Display for FailedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0.status))
    }
}

impl std::error::Error for FailedRun {}

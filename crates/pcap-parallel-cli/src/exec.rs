//! `exec`: one run of a command per chunk, in parallel, output in chunk order.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};

use clap::Args;
use pcap_parallel::Chunk;

use crate::args::{Chunking, Common, FlowArgs, Inputs};
use crate::exec_output::{Out, Spool, Turn, collect};
use crate::run::{self, Bar, Status, UsageError};
use crate::{errln, streams};

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    inputs: Inputs,

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

/// What one run produced: what is left to print of its standard output
/// (the rest went straight out while it was its turn), and its standard
/// error.
struct RunOutput {
    stdout: Spool,
    stderr: Spool,
    status: ExitStatus,
}

/// Why a run could not be made or its output was lost.
#[derive(Debug)]
enum RunError {
    /// Writing the chunk's temporary capture for `{}` failed.
    TempFile(std::io::Error),
    /// Starting or waiting for the command failed.
    Command(std::io::Error),
    /// Keeping the command's output until its turn failed.
    Output(std::io::Error),
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
    turn: (&Turn, usize),
) -> Result<RunOutput, RunError> {
    // A chunk given as `{}` lives in a temporary capture until this
    // function returns, and is then removed.
    let temp = match input {
        Input::Chunk(chunk) if placeholder => Some(chunk_file(chunk).map_err(RunError::TempFile)?),
        _ => None,
    };
    let path = match (&input, &temp) {
        (_, Some(t)) => Some(t.path()),
        (Input::Shard { path, .. }, None) => Some(*path),
        _ => None,
    };
    let mut child = command_for(&input, command, placeholder.then_some(path).flatten())
        .spawn()
        .map_err(RunError::Command)?;
    supervise(&mut child, input, turn)
}

/// The chunk as a temporary capture file, for `{}`.
fn chunk_file(chunk: &Chunk) -> std::io::Result<tempfile::NamedTempFile> {
    let suffix = format!(".{}", chunk.format().extension());
    let mut f = tempfile::Builder::new()
        .prefix(&crate::stale::ours(crate::stale::CHUNK_PREFIX))
        .suffix(&suffix)
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
/// its outputs (see [`crate::exec_output`]), and waits for it, stopping it
/// if we are interrupted (a SIGTERM sent to us alone would otherwise leave
/// it running).
fn supervise(
    child: &mut std::process::Child,
    input: Input<'_>,
    turn: (&Turn, usize),
) -> Result<RunOutput, RunError> {
    let interrupted = crate::run::interrupt_flag();
    let (stdout, stderr, status) = std::thread::scope(|s| -> Result<_, RunError> {
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
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let out = s.spawn(move || collect(out, Some((turn.1, turn.0))));
        let err = s.spawn(move || collect(err, None));
        let mut pause = std::time::Duration::from_micros(100);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(RunError::Command)? {
                break status;
            }
            if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                break stop_group(child).map_err(RunError::Command)?;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(10));
        };
        let joined = |h: std::thread::ScopedJoinHandle<'_, std::io::Result<Spool>>| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("output reader panicked")))
                .map_err(RunError::Output)
        };
        Ok((joined(out)?, joined(err)?, status))
    })?;
    Ok(RunOutput {
        stdout,
        stderr,
        status,
    })
}

/// Runs the command on one input; a failed run keeps what it printed.
fn attempt(
    input: Input<'_>,
    command: &[OsString],
    placeholder: bool,
    turn: (&Turn, usize),
) -> Result<RunOutput, pcap_parallel::BoxError> {
    let name = command[0].to_string_lossy();
    let tmp = std::env::temp_dir();
    let out = run_one(input, command, placeholder, turn).map_err(|e| match e {
        RunError::TempFile(e) => format!(
            "could not write the chunk's temporary capture for {{}} (in {}): {e}",
            tmp.display()
        ),
        RunError::Command(e) => format!("could not run {name}: {e}"),
        RunError::Output(e) => format!(
            "the output of {name} was lost: it could not be kept in a temporary file (in {}) \
             until its turn: {e}",
            tmp.display()
        ),
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Box::new(FailedRun(out)))
    }
}

/// Prints what is left of a run's output (its turn has come): standard
/// output whole, standard error line by line behind the chunk's label.
fn print(out: &mut RunOutput, label: &str) {
    // Our writes are checked in `streams`; a spool that cannot be read
    // back is reported like any failed write there.
    let _ = out.stdout.drain_to(&mut Out);
    streams::flush();
    let Ok(mut lines) = out.stderr.reader() else {
        return;
    };
    let mut line = Vec::new();
    while let Ok(n) = std::io::BufRead::read_until(&mut lines, b'\n', &mut line) {
        if n == 0 {
            break;
        }
        let mut labelled = Vec::with_capacity(label.len() + line.len() + 1);
        labelled.extend_from_slice(label.as_bytes());
        labelled.extend_from_slice(&line);
        if !line.ends_with(b"\n") {
            labelled.push(b'\n');
        }
        streams::write_err(&labelled);
        line.clear();
    }
}

/// Prints a failed run's output and says what went wrong.
fn failure_text(e: &mut pcap_parallel::BoxError, label: &str) -> String {
    match e.downcast_mut::<FailedRun>() {
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
    let (capture, _) = run::open_inputs(&args.inputs, &args.common, pcap_parallel::Split::Auto)?;
    let workers = capture.worker_count();
    let (capture, bar) = Bar::attach(capture, &args.common, "exec");
    let dir = tempfile::Builder::new()
        .prefix(&crate::stale::ours(crate::stale::SHARDS_PREFIX))
        .tempdir()
        .map_err(|e| {
            anyhow::anyhow!(
                "could not make a temporary directory for the shards in {}: {e}",
                std::env::temp_dir().display()
            )
        })?;
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
    let turn = Turn::default();
    let (tx, rx) = crossbeam_channel::bounded(2 * workers + 2);
    let mut failures = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..workers.min(names.len()).max(1) {
            let tx = tx.clone();
            let (next, turn) = (&next, &turn);
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
                    let r = attempt(shard, command, placeholder, (turn, i));
                    if tx.send((i, r)).is_err() {
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
                    Ok(mut out) => print(&mut out, &label),
                    Err(mut e) => {
                        failures.push(format!("shard {want}: {}", failure_text(&mut e, &label)))
                    }
                }
                turn.pass(want);
                want += 1;
            }
        }
    });
    failures
}

pub fn run(args: ExecArgs) -> anyhow::Result<Status> {
    // What runs that were killed left in $TMPDIR.
    let tmp = std::env::temp_dir();
    crate::stale::remove_stale(&tmp, crate::stale::CHUNK_PREFIX);
    crate::stale::remove_stale(&tmp, crate::stale::SHARDS_PREFIX);
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
    let capture = run::open_inputs(&args.inputs, &args.common, split)?
        .0
        .fail_fast(args.fail_fast);
    let (capture, bar) = Bar::attach(capture, &args.common, "exec");
    let command = &args.command;
    let mut failures: Vec<String> = Vec::new();
    let mut runs = 0usize;
    let turn = Turn::default();
    let mut report = capture.run(
        |chunk| {
            // A chunk without packets (an input that holds none) runs nothing.
            if chunk.packet_count() == 0 {
                return Ok(None);
            }
            let input = Input::Chunk(chunk);
            attempt(input, command, placeholder, (&turn, chunk.index())).map(Some)
        },
        |r| {
            let label = format!("[chunk {}] ", r.index);
            match r.result {
                Ok(None) => {}
                Ok(Some(mut out)) => {
                    runs += 1;
                    print(&mut out, &label);
                }
                Err(mut failure) => {
                    runs += 1;
                    let what = match &mut failure.cause {
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
            turn.pass(r.index);
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

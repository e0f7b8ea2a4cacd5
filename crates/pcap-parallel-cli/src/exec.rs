//! `exec`: one run of a command per chunk, in parallel, output in chunk order.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};

use clap::Args;
use pcap_parallel::{CaptureFormat, Chunk};

use crate::run::{self, Bar, Status, UsageError};
use crate::{Chunking, Common, Input};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Capture file (`-` for standard input).
    file: Input,

    #[command(flatten)]
    chunking: Chunking,

    /// Stop starting runs after the first one fails.
    #[arg(long)]
    fail_fast: bool,

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

fn run_one(chunk: &Chunk, command: &[OsString], placeholder: bool) -> std::io::Result<RunOutput> {
    let suffix = match chunk.format() {
        CaptureFormat::Pcapng => ".pcapng",
        CaptureFormat::Pcap { .. } => ".pcap",
    };
    // The temporary capture lives until this function returns, and is then removed.
    let file = if placeholder {
        let mut f = tempfile::Builder::new()
            .prefix("pcap-parallel-chunk-")
            .suffix(suffix)
            .tempfile()?;
        {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f.as_file_mut());
            chunk.write_standalone(&mut w)?;
            w.flush()?;
        }
        Some(f)
    } else {
        None
    };
    let mut args: Vec<OsString> = command[1..].to_vec();
    if let Some(f) = &file {
        let path = f.path().as_os_str();
        for a in &mut args {
            if let Some(s) = a.to_str()
                && s.contains("{}")
            {
                let replaced = s.replace("{}", &path.to_string_lossy());
                *a = OsString::from(replaced);
            }
        }
    }
    let mut child = Command::new(&command[0])
        // Its own process group, so that stopping it stops what it started
        // too (a shell's children hold its output pipes open).
        .process_group(0)
        .args(&args)
        .stdin(if placeholder {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PCAP_PARALLEL_CHUNK", chunk.index().to_string())
        .env(
            "PCAP_PARALLEL_FIRST_PACKET",
            chunk.first_packet_number().to_string(),
        )
        .env("PCAP_PARALLEL_PACKETS", chunk.packet_count().to_string())
        .spawn()?;
    // Read both outputs while feeding stdin, and stop the command if we are
    // interrupted (a SIGTERM sent to us alone would otherwise leave it running).
    let interrupted = crate::run::interrupt_flag();
    let (stdout, stderr, status) = std::thread::scope(|s| -> std::io::Result<_> {
        if let Some(mut stdin) = child.stdin.take() {
            s.spawn(move || {
                // A command may stop reading early (`head`): not an error of ours.
                let _ = chunk.write_standalone(&mut stdin);
            });
        }
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let out = s.spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut v);
            v
        });
        let err = s.spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut err, &mut v);
            v
        });
        let mut pause = std::time::Duration::from_micros(100);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                break stop_group(&mut child)?;
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

pub fn run(args: ExecArgs) -> anyhow::Result<Status> {
    let placeholder = args.command[1..]
        .iter()
        .any(|a| a.to_string_lossy().contains("{}"));
    if args.command[0].is_empty() {
        return Err(UsageError("no command given after --".into()).into());
    }
    let capture =
        run::open(&args.file, &args.common, args.chunking.split())?.fail_fast(args.fail_fast);
    let (capture, bar) = Bar::attach(capture, &args.common, "exec");
    let command = &args.command;
    let mut failures: Vec<String> = Vec::new();
    let mut runs = 0usize;
    let report = capture.run(
        |chunk| {
            let out = run_one(chunk, command, placeholder)
                .map_err(|e| format!("could not run {}: {e}", command[0].to_string_lossy()))?;
            if out.status.success() {
                Ok(out)
            } else {
                // Still show what it printed, then report the failure.
                Err(Box::new(FailedRun(out)) as pcap_parallel::BoxError)
            }
        },
        |r| {
            runs += 1;
            let label = format!("[chunk {}] ", r.index);
            let print = |out: &RunOutput| {
                let mut so = std::io::stdout().lock();
                let _ = so.write_all(&out.stdout);
                let _ = so.flush();
                let mut se = std::io::stderr().lock();
                for line in out.stderr.split_inclusive(|&b| b == b'\n') {
                    let _ = se.write_all(label.as_bytes());
                    let _ = se.write_all(line);
                    if !line.ends_with(b"\n") {
                        let _ = se.write_all(b"\n");
                    }
                }
            };
            match r.result {
                Ok(out) => print(&out),
                Err(failure) => {
                    let what = match &failure.cause {
                        pcap_parallel::ChunkFailureCause::Error(e) => {
                            match e.downcast_ref::<FailedRun>() {
                                Some(FailedRun(out)) => {
                                    print(out);
                                    describe(&out.status)
                                }
                                None => e.to_string(),
                            }
                        }
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
    let mut status = run::finish(report.input_error, &report.skipped);
    if !failures.is_empty() {
        eprintln!("pcap-parallel: {} of {runs} runs failed:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
        if status != Status::Interrupted {
            status = Status::Failed;
        }
    }
    Ok(status)
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

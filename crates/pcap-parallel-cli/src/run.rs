//! What every command shares: opening the input with the common options,
//! the progress bar, Ctrl-C, and how outcomes become exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pcap_parallel::{Capture, OnError, Progress, Report, Split};

use crate::args::{Common, Inputs, OnErrorArg};
use crate::errln;

/// How a command ended, when it did not end in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything worked.
    Ok,
    /// Some of the work failed; the reasons were printed.
    Failed,
    /// Stopped by SIGINT or SIGTERM.
    Interrupted,
}

/// An error in how the command was called (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// How long an interrupted run may take to stop on its own (stopping its
/// commands, removing its temporary files) before the process exits anyway.
pub const GRACE: Duration = Duration::from_secs(5);

/// Set by SIGINT, SIGTERM or SIGHUP (a closed terminal or SSH connection):
/// the run stops, commands are stopped, temporary files removed. A second
/// signal exits at once. Should the run not have stopped after [`GRACE`]
/// (work that cannot look at the flag, like compiling a huge filter), the
/// process exits with status 130 anyway; temporary files it leaves carry
/// its process id and are removed by the next run (see [`crate::stale`]).
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let signals = [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ];
        for sig in signals {
            // The order matters: the conditional exit sees the flag as it
            // was before this signal set it.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone());
            let _ = signal_hook::flag::register(sig, flag.clone());
        }
        if let Ok(mut waiting) = signal_hook::iterator::Signals::new(signals) {
            std::thread::spawn(move || {
                if waiting.forever().next().is_some() {
                    std::thread::sleep(GRACE);
                    crate::errln!("pcap-parallel: interrupted");
                    std::process::exit(crate::EXIT_INTERRUPTED.into());
                }
            });
        }
        flag
    })
    .clone()
}

/// Opens `input` with the common options and `split` (checked already,
/// see [`crate::args::Chunking::checked`]).
pub fn open(input: &Path, common: &Common, split: Split) -> anyhow::Result<Capture> {
    let decoding = decoding(common)?;
    let capture = Capture::open_with(input, &decoding).map_err(with_hint)?;
    configure(capture, common, split)
}

/// Opens the inputs as one capture (see [`Capture::open_many`]), with the
/// common options and `split`; returns the paths too.
pub fn open_inputs(
    inputs: &Inputs,
    common: &Common,
    split: Split,
) -> anyhow::Result<(Capture, Vec<PathBuf>)> {
    let paths = inputs.paths()?;
    let decoding = decoding(common)?;
    let capture = if paths.len() == 1 {
        Capture::open_with(&paths[0], &decoding)
    } else {
        Capture::open_many_with(&paths, inputs.order(), &decoding)
    }
    .map_err(|e| match e {
        // Inputs that cannot go together are a usage error.
        pcap_parallel::Error::Inputs(e) => anyhow::Error::new(UsageError(e.to_string())),
        e => with_hint(e),
    })?;
    Ok((configure(capture, common, split)?, paths))
}

/// How compressed input is decoded, from the common options.
fn decoding(common: &Common) -> Result<pcap_parallel::Decoding, UsageError> {
    match common.jobs {
        Some(0) => return Err(UsageError("--jobs must be at least 1".into())),
        Some(j) if j > pcap_parallel::MAX_WORKERS => {
            return Err(UsageError(format!(
                "--jobs must be at most {} (got {j})",
                pcap_parallel::MAX_WORKERS
            )));
        }
        _ => {}
    }
    Ok(pcap_parallel::Decoding {
        threads: common.jobs,
        max_zstd_window: common.max_zstd_window,
        ..pcap_parallel::Decoding::default()
    })
}

/// The common options and `split`, set on `capture`.
fn configure(capture: Capture, common: &Common, split: Split) -> anyhow::Result<Capture> {
    let mut capture = capture
        .split(split)
        .max_packets(common.max_packets)
        .on_error(match common.on_error {
            OnErrorArg::Stop => OnError::Stop,
            OnErrorArg::Skip => OnError::Skip,
        })
        .limits(pcap_parallel::Limits {
            max_packet_len: common.max_caplen,
            max_interfaces: common.max_interfaces,
            ..pcap_parallel::Limits::default()
        })
        .cancel_flag(interrupt_flag());
    if let Some(j) = common.jobs {
        capture = capture.workers(j);
    }
    if let Some(expr) = &common.filter {
        // A filter that cannot be honoured is a usage error, never ignored.
        let filter = compile_interruptibly(expr)?;
        capture = capture.filter(filter);
    }
    Ok(capture)
}

/// The run was interrupted before it started (exit status 130).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Compiles a filter on a thread of its own, so that a signal stops the
/// process at once however long libpcap takes (thousands of `host` terms
/// take minutes): nothing has been written yet, so there is nothing to
/// clean up. A filter that does not compile is a usage error.
fn compile_interruptibly(expr: &str) -> anyhow::Result<pcap_parallel::Filter> {
    let flag = interrupt_flag();
    let owned = expr.to_string();
    let compiling = std::thread::spawn(move || pcap_parallel::Filter::new(&owned));
    while !compiling.is_finished() {
        if flag.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match compiling.join() {
        Ok(Ok(filter)) => Ok(filter),
        Ok(Err(e)) => Err(UsageError(e.to_string()).into()),
        Err(_) => Err(UsageError(format!("the filter {expr:?} could not be compiled")).into()),
    }
}

/// A filter that compiles but does not suit the capture's link type is a
/// usage error found by the run itself, before any chunk reached the
/// command: it is taken out of `report` and returned as such, so that the
/// command prints no results and exits with status 2.
pub fn usage_error_in(report: &mut Report) -> Result<(), UsageError> {
    match report.input_error.take() {
        Some(pcap_parallel::Error::Filter(e)) => Err(UsageError(e.to_string())),
        other => {
            report.input_error = other;
            Ok(())
        }
    }
}

/// A progress bar on standard error, drawn only when it is a terminal and
/// `--quiet` was not given. Dropping it clears it.
pub struct Bar {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Bar {
    /// Attaches a bar to `capture` (or nothing, if there is no terminal).
    pub fn attach(capture: Capture, common: &Common, label: &str) -> (Capture, Bar) {
        let done = Arc::new(AtomicBool::new(false));
        if common.quiet || !std::io::stderr().is_terminal() {
            return (capture, Bar { done, thread: None });
        }
        let progress = Arc::new(Progress::default());
        let capture = capture.progress(progress.clone());
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(label.to_string());
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let total = progress.bytes_total.load(Ordering::Relaxed);
                if total > 0 {
                    bar.set_length(total);
                }
                bar.set_position(progress.bytes_done.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{} packets",
                    progress.packets_done.load(Ordering::Relaxed)
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        (
            capture,
            Bar {
                done,
                thread: Some(thread),
            },
        )
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// True when nothing of the input could be read (it is missing its header,
/// say): a command then prints no results at all, only the error, rather
/// than a summary or table of nothing.
pub fn nothing_read(report: &Report) -> bool {
    report.chunks == 0
        && report
            .input_error
            .as_ref()
            .is_some_and(|e| !matches!(e, pcap_parallel::Error::Cancelled))
}

/// Prints what was skipped and the input error, if any (after the results
/// of everything before it), and says whether the command failed. Damage
/// passed over under `--on-error skip` is a warning, not a failure.
pub fn finish(error: Option<pcap_parallel::Error>, skipped: &[pcap_parallel::Skipped]) -> Status {
    if !skipped.is_empty() {
        let bytes: u64 = skipped.iter().map(|s| s.len).sum();
        for s in skipped {
            errln!("pcap-parallel: warning: {s}");
        }
        errln!(
            "pcap-parallel: warning: {} skipped ({})",
            count(skipped.len() as u64, "damaged stretch", "damaged stretches"),
            count(bytes, "byte", "bytes")
        );
    }
    match error {
        None => Status::Ok,
        Some(pcap_parallel::Error::Cancelled) => {
            // Stopped because an output stream failed: that says it all.
            if !crate::streams::failed_already() {
                errln!("pcap-parallel: interrupted");
            }
            Status::Interrupted
        }
        Some(e) => {
            errln!("pcap-parallel: {:#}", with_hint(e));
            Status::Failed
        }
    }
}

/// `1 byte`, `2 bytes`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The library's error, with what to do about it where the command line
/// has an option for that.
pub fn with_hint(e: pcap_parallel::Error) -> anyhow::Error {
    match &e {
        pcap_parallel::Error::ZstdWindow {
            name,
            window,
            offset,
        } => {
            let need = window.window;
            let size = if need % (1 << 30) == 0 {
                format!("{}G", need >> 30)
            } else {
                format!("{}M", need.div_ceil(1 << 20))
            };
            anyhow::anyhow!(
                "{name}: {window}, after {offset} decompressed bytes; to read it, raise the limit with --max-zstd-window {size}"
            )
        }
        _ => e.into(),
    }
}

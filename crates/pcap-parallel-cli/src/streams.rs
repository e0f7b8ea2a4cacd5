//! Standard output and standard error, with every write checked.
//!
//! Everything the command line prints goes through this module: results
//! with [`outln!`](crate::outln) or [`write_out`] (buffered; [`flush`] at the
//! end of each unit of output), messages with [`errln!`](crate::errln) or
//! [`write_err`] (unbuffered, one write per line). No write is left
//! unchecked and none can panic; `println!` and friends are refused by
//! clippy in this crate (`clippy.toml`).
//!
//! The first write that fails ends the run as an interrupt would (no new
//! chunk starts, running commands are stopped, temporary files are
//! removed), nothing more is written to that stream, and the exit status
//! says what happened ([`exit_status`]):
//!
//! * a **closed pipe** on either stream (`pcap-parallel top big.pcap | head
//!   -1`: the reader has gone) is the normal end of a Unix pipeline: the
//!   process stops quietly and exits with **141**, the status of a tool
//!   killed by SIGPIPE (128 + 13), as `cat` or `tcpdump` would in the same
//!   place;
//! * **any other failure** (a full disk, `/dev/full`, an I/O error) is
//!   reported on standard error (when that still works) and exits with 1:
//!   output that did not arrive is never a success.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

/// Exit status after a closed pipe: 128 + SIGPIPE, as a shell reports a
/// tool that SIGPIPE killed.
pub const EXIT_CLOSED: u8 = 141;

/// One of the two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "standard output",
            Stream::Stderr => "standard error",
        })
    }
}

/// How a stream failed: the first failure is the one that counts.
#[derive(Debug)]
enum Failure {
    /// The reading end of a pipe was closed (EPIPE).
    Closed,
    /// Any other write error.
    Error(Stream, io::Error),
}

static STDOUT: LazyLock<Mutex<BufWriter<io::Stdout>>> =
    LazyLock::new(|| Mutex::new(BufWriter::with_capacity(64 << 10, io::stdout())));
static FAILURE: Mutex<Option<Failure>> = Mutex::new(None);
/// Set with the first failure: nothing more goes to standard output.
static STDOUT_DONE: AtomicBool = AtomicBool::new(false);
/// Set when standard error failed, or a pipe closed (the end is quiet then).
static STDERR_DONE: AtomicBool = AtomicBool::new(false);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records a failed write and stops the run.
fn failed(stream: Stream, error: io::Error) {
    let closed = error.kind() == io::ErrorKind::BrokenPipe;
    STDOUT_DONE.store(true, Ordering::Relaxed);
    if closed || stream == Stream::Stderr {
        STDERR_DONE.store(true, Ordering::Relaxed);
    }
    lock(&FAILURE).get_or_insert(if closed {
        Failure::Closed
    } else {
        Failure::Error(stream, error)
    });
    crate::run::interrupt_flag().store(true, Ordering::Relaxed);
}

/// Appends `bytes` to standard output (buffered; see [`flush`]).
pub fn write_out(bytes: &[u8]) {
    if STDOUT_DONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = lock(&STDOUT).write_all(bytes) {
        failed(Stream::Stdout, e);
    }
}

/// Formats onto standard output; see [`outln!`](crate::outln).
pub fn write_out_fmt(args: fmt::Arguments<'_>) {
    if STDOUT_DONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = lock(&STDOUT).write_fmt(args) {
        failed(Stream::Stdout, e);
    }
}

/// Writes what standard output holds: at the end of each unit of output
/// (a part's name, a run's output, a summary), so that it arrives as it is
/// made and a failure is found at once.
pub fn flush() {
    if STDOUT_DONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = lock(&STDOUT).flush() {
        failed(Stream::Stdout, e);
    }
}

/// Writes `bytes` to standard error at once.
pub fn write_err(bytes: &[u8]) {
    if STDERR_DONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = io::stderr().lock().write_all(bytes) {
        failed(Stream::Stderr, e);
    }
}

/// Formats a line onto standard error in one write; see [`errln!`](crate::errln).
pub fn write_err_line(args: fmt::Arguments<'_>) {
    if STDERR_DONE.load(Ordering::Relaxed) {
        return;
    }
    write_err(format!("{args}\n").as_bytes());
}

/// True once a write failed (the run is being stopped because of it).
pub fn failed_already() -> bool {
    STDOUT_DONE.load(Ordering::Relaxed)
}

/// Flushes standard output and says how the process must end if a stream
/// failed: 141 for a closed pipe, 1 for any other failure (reported here,
/// on standard error, when that still works). `None` when all went well.
pub fn exit_status() -> Option<u8> {
    flush();
    let failure = lock(&FAILURE).take();
    match failure? {
        Failure::Closed => Some(EXIT_CLOSED),
        Failure::Error(stream, e) => {
            write_err_line(format_args!("pcap-parallel: {stream}: {e}"));
            Some(crate::EXIT_FAILURE)
        }
    }
}

/// Formats a line onto standard output, buffered (see [`streams`](crate::streams)).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::streams::write_out_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Formats a line onto standard error, in one write (see [`streams`](crate::streams)).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::streams::write_err_line(format_args!($($arg)*))
    };
}

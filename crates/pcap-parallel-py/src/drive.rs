//! Running library work off the interpreter's thread, while that thread
//! reports progress and answers Ctrl-C.
//!
//! The library's runs block until they end. Here they run on a thread of
//! their own with the interpreter released; the calling thread wakes ten
//! times a second to call the progress callback and to let Python handle
//! signals. A KeyboardInterrupt sets the run's cancel flag: no further chunk
//! starts, the workers stop, and the interrupt is raised once they have.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, bounded};
use pcap_parallel::{Capture, Progress};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often the waiting thread wakes.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// A run's cancel flag, progress counters and progress callback.
pub(crate) struct Watch {
    pub cancel: Arc<AtomicBool>,
    pub progress: Arc<Progress>,
    callback: Option<Py<PyAny>>,
}

impl Watch {
    /// A watch calling `callback(bytes_done, bytes_total, packets_done)`.
    pub fn new(callback: Option<Py<PyAny>>) -> Watch {
        Watch {
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Progress::default()),
            callback,
        }
    }

    /// `capture`, cancelled and counted by this watch.
    pub fn attach(&self, capture: Capture) -> Capture {
        capture
            .cancel_flag(self.cancel.clone())
            .progress(self.progress.clone())
    }

    /// Reports progress and handles pending signals; an exception from
    /// either (KeyboardInterrupt, most likely) cancels the run.
    pub fn tick(&self, py: Python<'_>) -> PyResult<()> {
        let outcome = self.report(py).and_then(|_| py.check_signals());
        if outcome.is_err() {
            self.cancel.store(true, Ordering::Relaxed);
        }
        outcome
    }

    /// Calls the progress callback with the counters as they are.
    pub fn report(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(cb) = &self.callback {
            let p = &self.progress;
            cb.call1(
                py,
                (
                    p.bytes_done.load(Ordering::Relaxed),
                    p.bytes_total.load(Ordering::Relaxed),
                    p.packets_done.load(Ordering::Relaxed),
                ),
            )?;
        }
        Ok(())
    }
}

/// Runs `job` on a thread of its own with the interpreter released, ticking
/// `watch` while it runs. An interrupt is raised after the job has ended.
pub(crate) fn drive<T: Send>(
    py: Python<'_>,
    watch: &Watch,
    job: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    let (tx, rx) = bounded(1);
    let (value, interrupted) = py.detach(|| {
        std::thread::scope(|s| {
            s.spawn(move || {
                let _ = tx.send(job());
            });
            let mut interrupted: Option<PyErr> = None;
            loop {
                match rx.recv_timeout(TICK) {
                    Ok(v) => return (Some(v), interrupted),
                    Err(RecvTimeoutError::Disconnected) => return (None, interrupted),
                    Err(RecvTimeoutError::Timeout) if interrupted.is_none() => {
                        interrupted = Python::attach(|py| watch.tick(py)).err();
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
        })
    });
    if let Some(e) = interrupted {
        return Err(e);
    }
    watch.report(py)?;
    value.ok_or_else(|| PyRuntimeError::new_err("internal error: the run panicked"))
}

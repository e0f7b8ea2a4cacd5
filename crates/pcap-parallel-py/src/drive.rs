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

/// How long an interrupted run is waited for before it is left to end on
/// its own (a read of a silent pipe cannot be interrupted).
pub(crate) const GRACE: Duration = Duration::from_secs(2);

/// Runs `job` on a thread of its own with the interpreter released, ticking
/// `watch` while it runs. On an interrupt the run is cancelled and waited
/// for (at most [`GRACE`]), then the interrupt is raised.
pub(crate) fn drive<T: Send + 'static>(
    py: Python<'_>,
    watch: &Watch,
    job: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = bounded(1);
    std::thread::Builder::new()
        .name("pcap-parallel-run".into())
        .spawn(move || {
            let _ = tx.send(job());
        })
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    let value = py.detach(|| {
        loop {
            match rx.recv_timeout(TICK) {
                Ok(v) => return Ok(Some(v)),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = Python::attach(|py| watch.tick(py)) {
                        let _ = rx.recv_timeout(GRACE);
                        return Err(e);
                    }
                }
            }
        }
    })?;
    watch.report(py)?;
    value.ok_or_else(|| PyRuntimeError::new_err("internal error: the run panicked"))
}

//! Chunks in file order, handed to Python one at a time as the library cuts
//! them on its own threads.
//!
//! A thread runs the library's ordered run; each chunk (or its locator) goes
//! through a small bounded channel, so at most a few chunks wait for Python
//! beyond those the library has in flight: memory stays bounded whatever the
//! input's size. Dropping the iterator (a `break`, an exception) cancels the
//! run and waits for its threads.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use pcap_parallel::locator::ChunkLocator;
use pcap_parallel::{Chunk, Error};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::chunk::PyChunk;
use crate::drive::{GRACE, TICK, Watch};
use crate::errors::to_py;
use crate::locator::Locator;
use crate::source::Opener;

/// What the stream hands out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The chunks themselves (in this process).
    Chunks,
    /// Locators: by byte range for a plain file, else with the records.
    Locators,
    /// For worker processes: locators for a plain file, else the chunks
    /// themselves (which pickle as locators carrying their records,
    /// copied once, when they are sent).
    ForWorkers,
}

enum Item {
    Chunk(Chunk),
    Locator(ChunkLocator),
}

enum Msg {
    Item(Item),
    End(Option<Error>),
}

/// Iterator over the chunks (or locators) of a run, in file order.
#[pyclass(module = "pcap_parallel._native")]
pub struct ChunkStream {
    rx: Option<Receiver<Msg>>,
    watch: Watch,
    thread: Option<JoinHandle<()>>,
    /// True for locators that point into a file.
    in_file: bool,
}

#[pymethods]
impl ChunkStream {
    /// Starts a run of `opener`: `kind` is `"chunks"`, `"locators"` or
    /// `"for_workers"`.
    #[new]
    #[pyo3(signature = (opener, kind, progress=None))]
    fn new(
        py: Python<'_>,
        opener: &Opener,
        kind: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<ChunkStream> {
        let kind = match kind {
            "chunks" => Kind::Chunks,
            "locators" => Kind::Locators,
            "for_workers" => Kind::ForWorkers,
            other => return Err(PyValueError::new_err(format!("unknown kind {other:?}"))),
        };
        let capture = opener.open(py)?;
        let in_file = kind != Kind::Chunks && opener.all_in_file(&capture);
        let watch = Watch::new(progress);
        let capture = watch.attach(capture);
        let (tx, rx) = bounded::<Msg>(1);
        let thread = std::thread::Builder::new()
            .name("pcap-parallel-stream".into())
            .spawn(move || {
                // Chunks of a mapped file travel as its byte ranges.
                let path = |c: &Chunk| {
                    c.mapped_file()
                        .filter(|p| p.as_os_str() != "-")
                        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
                };
                let make = |c: &Chunk| match (kind, path(c)) {
                    (Kind::Chunks, _) | (Kind::ForWorkers, None) => Item::Chunk(c.clone()),
                    (_, Some(p)) => Item::Locator(ChunkLocator::in_file(c, p)),
                    (Kind::Locators, None) => Item::Locator(ChunkLocator::inline(c)),
                };
                let report = capture.run(
                    |c| Ok(make(c)),
                    |r| {
                        if let Ok(item) = r.result {
                            let _ = tx.send(Msg::Item(item));
                        }
                    },
                );
                let _ = tx.send(Msg::End(report.input_error));
            })
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
        Ok(ChunkStream {
            rx: Some(rx),
            watch,
            thread: Some(thread),
            in_file,
        })
    }

    /// True when the locators point into the file (a plain file): workers
    /// then read their chunks themselves.
    #[getter]
    fn in_file(&self) -> bool {
        self.in_file
    }

    /// Counters so far: (bytes done, bytes total, packets done).
    fn progress(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let p = &self.watch.progress;
        (
            p.bytes_done.load(Relaxed),
            p.bytes_total.load(Relaxed),
            p.packets_done.load(Relaxed),
        )
    }

    /// Stops the run: no further chunk is cut.
    fn cancel(&self) {
        self.watch
            .cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(rx) = self.rx.clone() else {
            return Ok(None);
        };
        loop {
            match py.detach(|| rx.recv_timeout(TICK)) {
                Ok(Msg::Item(Item::Chunk(chunk))) => {
                    return Ok(Some(Py::new(py, PyChunk { chunk })?.into_any()));
                }
                Ok(Msg::Item(Item::Locator(inner))) => {
                    return Ok(Some(Py::new(py, Locator { inner })?.into_any()));
                }
                Ok(Msg::End(error)) => {
                    self.finish(py);
                    self.watch.report(py)?;
                    return match error {
                        None => Ok(None),
                        Some(e) => Err(to_py(py, e)),
                    };
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish(py);
                    return Ok(None);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.watch.tick(py) {
                        self.finish(py);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Cancels the run (if it is still going) and waits for its threads.
    fn close(&mut self, py: Python<'_>) {
        self.cancel();
        self.finish(py);
    }
}

impl ChunkStream {
    /// Cancels the run (a no-op once it has ended) and waits for its
    /// threads, with the interpreter released (a file object source needs
    /// it to be read); a run stuck reading a silent pipe is left to end on
    /// its own after a grace period.
    fn finish(&mut self, py: Python<'_>) {
        self.watch
            .cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let rx = self.rx.take();
        if let Some(t) = self.thread.take() {
            py.detach(|| {
                let start = std::time::Instant::now();
                // Drain what the run still delivers, so it never blocks on a full channel.
                while !t.is_finished() && start.elapsed() < GRACE {
                    if let Some(rx) = &rx {
                        let _ = rx.recv_timeout(Duration::from_millis(10));
                    }
                }
                if t.is_finished() {
                    let _ = t.join();
                }
            });
        }
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        if self.thread.is_some() {
            Python::attach(|py| self.finish(py));
        }
    }
}

//! Packet tables for Python: `pcap-parallel-arrow`'s table of a capture,
//! handed to pyarrow without copying, or written to a file.
//!
//! The batches cross into Python through the Arrow C data interface
//! (`arrow-pyarrow`, of the same arrow and pyo3 versions as the rest of the
//! workspace): pyarrow's arrays point at the buffers the workers built, and
//! free them through Rust when they are dropped. [`TableStream`] hands the
//! batches out in file order as the workers finish them, so a table larger
//! than memory can be streamed; `pcap_parallel.Capture.to_batches()` wraps it
//! in a `pyarrow.RecordBatchReader`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::task::Poll;

use arrow_pyarrow::ToPyArrow;
use arrow_schema::{ArrowError, SchemaRef};
use pcap_parallel::decode::Tunnels;
use pcap_parallel::output::IfExists;
use pcap_parallel_arrow::{
    BatchReader, Column, Format, IpFormat, PacketTable, ParquetCompression, TableError,
    TableOptions,
};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::drive::{GRACE, TICK, Watch, drive};
use crate::errors::to_py;
use crate::source::Opener;

/// The table's options from Python's arguments (those of the command
/// line's `table`).
pub(crate) fn table_options(
    columns: Option<Vec<String>>,
    data: bool,
    ip_as: &str,
    decapsulate: Option<&str>,
) -> PyResult<TableOptions> {
    let mut options = TableOptions::default();
    if let Some(names) = columns {
        let columns = names
            .iter()
            .map(|n| n.trim().parse::<Column>())
            .collect::<Result<Vec<_>, TableError>>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if columns.is_empty() {
            return Err(PyValueError::new_err("columns needs at least one name"));
        }
        options = options.columns(columns);
    }
    if data {
        options = options.with_data();
    }
    options = options.ip_format(match ip_as {
        "text" | "string" => IpFormat::String,
        "binary" => IpFormat::Binary,
        other => {
            return Err(PyValueError::new_err(format!(
                "ip_as must be 'text' or 'binary', not {other:?}"
            )));
        }
    });
    match decapsulate {
        None => {}
        Some("gre") => options = options.tunnels(Tunnels::Gre),
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "decapsulate must be None or 'gre', not {other:?}"
            )));
        }
    }
    Ok(options)
}

fn parquet_compression(name: &str) -> PyResult<ParquetCompression> {
    Ok(match name {
        "zstd" => ParquetCompression::Zstd,
        "snappy" => ParquetCompression::Snappy,
        "lz4" => ParquetCompression::Lz4,
        "gzip" => ParquetCompression::Gzip,
        "none" => ParquetCompression::None,
        other => {
            return Err(PyValueError::new_err(format!(
                "compression must be 'zstd', 'snappy', 'lz4', 'gzip' or 'none', not {other:?}"
            )));
        }
    })
}

/// A table error as a Python exception: the capture's own errors as the rest
/// of the package raises them (with `file`, `offset`, `packet`).
pub(crate) fn table_error(py: Python<'_>, e: TableError) -> PyErr {
    table_error_at(py, e, None)
}

/// The system error inside a table error, if it is one (a full disk under
/// the Parquet or Arrow writer, a file that cannot be created...): Parquet's
/// and Arrow's errors give it as their source.
fn io_error_in<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e std::io::Error> {
    let mut at = Some(e);
    while let Some(err) = at {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        at = err.source();
    }
    None
}

/// A table error as a Python exception: `OSError` (with its errno, and
/// `path` as its filename) for a system error writing the output, however
/// deep in the writer it was.
pub(crate) fn table_error_at(
    py: Python<'_>,
    e: TableError,
    path: Option<&std::path::Path>,
) -> PyErr {
    if let TableError::Capture(e) = e {
        return to_py(py, e);
    }
    if let Some(io) = io_error_in(&e) {
        let message = e.to_string();
        let errno = io.raw_os_error().unwrap_or(0);
        return match path {
            Some(p) => PyOSError::new_err((errno, message, p.display().to_string())),
            None => PyOSError::new_err((errno, message)),
        };
    }
    pyo3::exceptions::PyRuntimeError::new_err(e.to_string())
}

/// The error a [`BatchReader`] ends with, as a Python exception.
fn stream_error(py: Python<'_>, e: ArrowError) -> PyErr {
    match e {
        ArrowError::ExternalError(inner) => match inner.downcast::<TableError>() {
            Ok(t) => table_error(py, *t),
            Err(other) => pyo3::exceptions::PyRuntimeError::new_err(other.to_string()),
        },
        other => table_error(py, TableError::Arrow(other)),
    }
}

/// The batches of a capture's table, in file order, as `pyarrow.RecordBatch`
/// objects built on the workers (zero-copy). A broken capture yields the
/// batches before the fault, then raises its error. Waiting for a batch
/// releases the interpreter, reports progress and answers Ctrl-C.
#[pyclass(module = "pcap_parallel._native")]
pub struct TableStream {
    reader: Option<BatchReader>,
    schema: SchemaRef,
    watch: Watch,
}

#[pymethods]
impl TableStream {
    /// Starts building the table of `opener`'s capture.
    #[new]
    #[pyo3(signature = (opener, columns=None, data=false, ip_as="text", decapsulate=None, progress=None))]
    fn new(
        py: Python<'_>,
        opener: &Opener,
        columns: Option<Vec<String>>,
        data: bool,
        ip_as: &str,
        decapsulate: Option<&str>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<TableStream> {
        let options = table_options(columns, data, ip_as, decapsulate)?;
        let watch = Watch::new(progress);
        let capture = watch.attach(opener.open(py)?);
        let table = PacketTable::new(capture).options(options);
        Ok(TableStream {
            schema: table.schema(),
            reader: Some(table.reader()),
            watch,
        })
    }

    /// The table's schema, a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.schema.as_ref().to_pyarrow(py)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        loop {
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            match py.detach(|| reader.next_timeout(TICK)) {
                Poll::Ready(Some(Ok(batch))) => return batch.to_pyarrow(py).map(Some),
                Poll::Ready(Some(Err(e))) => {
                    self.finish(py);
                    self.watch.report(py)?;
                    return Err(stream_error(py, e));
                }
                Poll::Ready(None) => {
                    self.finish(py);
                    self.watch.report(py)?;
                    return Ok(None);
                }
                Poll::Pending => {
                    if let Err(e) = self.watch.tick(py) {
                        self.finish(py);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Stops the run (if it is still going) and waits for its threads.
    fn close(&mut self, py: Python<'_>) {
        self.finish(py);
    }
}

impl TableStream {
    /// Cancels the run (a no-op once it has ended) and lets its threads
    /// end, with the interpreter released (a file object source needs it
    /// to be read); a run stuck reading a silent pipe is left to end on its
    /// own after a grace period. A run that has ended is not waited for:
    /// all its thread has left to do is release the input (unmap a mapped
    /// file), which it does while Python goes on.
    fn finish(&mut self, py: Python<'_>) {
        self.watch.cancel.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let ended = reader.report().is_some();
            py.detach(|| {
                let (done, wait) = crossbeam_channel::bounded::<()>(1);
                let dropped = std::thread::Builder::new()
                    .name("pcap-parallel-table-end".into())
                    .spawn(move || {
                        drop(reader);
                        let _ = done.send(());
                    });
                if dropped.is_ok() && !ended {
                    let _ = wait.recv_timeout(GRACE);
                }
            });
        }
    }
}

impl Drop for TableStream {
    fn drop(&mut self) {
        if self.reader.is_some() {
            Python::attach(|py| self.finish(py));
        }
    }
}

/// Writes the table of `opener`'s capture to `path` atomically, in `format`
/// ("parquet", "arrow", "arrows", "csv", "ndjson"); returns the rows
/// written. A broken capture leaves a complete file of the rows before the
/// fault, then raises its error.
#[pyfunction]
#[pyo3(signature = (opener, path, format="parquet", columns=None, data=false, ip_as="text", decapsulate=None, compression="zstd", force=false, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn write_table(
    py: Python<'_>,
    opener: &Opener,
    path: PathBuf,
    format: &str,
    columns: Option<Vec<String>>,
    data: bool,
    ip_as: &str,
    decapsulate: Option<&str>,
    compression: &str,
    force: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<u64> {
    let options = table_options(columns, data, ip_as, decapsulate)?;
    let format = match format {
        "parquet" => Format::Parquet(parquet_compression(compression)?),
        "arrow" => Format::ArrowFile,
        "arrows" => Format::ArrowStream,
        "csv" => Format::Csv,
        "ndjson" => Format::Ndjson,
        other => {
            return Err(PyValueError::new_err(format!(
                "format must be 'parquet', 'arrow', 'arrows', 'csv' or 'ndjson', not {other:?}"
            )));
        }
    };
    let if_exists = if force {
        IfExists::Replace
    } else {
        IfExists::Fail
    };
    if if_exists == IfExists::Fail && path.exists() {
        return Err(pyo3::exceptions::PyFileExistsError::new_err(format!(
            "{} exists (force=True replaces it)",
            path.display()
        )));
    }
    let watch = Watch::new(progress);
    let capture = watch.attach(opener.open(py)?);
    let table = PacketTable::new(capture).options(options);
    let out = path.clone();
    let (written, report) = drive(py, &watch, move || {
        table.write_file(format, &path, if_exists)
    })?;
    if let Some(e) = report.input_error {
        return Err(to_py(py, e));
    }
    written
        .map(|w| w.rows)
        .map_err(|e| table_error_at(py, e, Some(&out)))
}

/// The Arrow schema (a `pyarrow.Schema`) of the packet table with these
/// options (those of `Capture.to_arrow`).
#[pyfunction]
#[pyo3(signature = (columns=None, data=false, ip_as="text", decapsulate=None))]
pub fn table_schema(
    py: Python<'_>,
    columns: Option<Vec<String>>,
    data: bool,
    ip_as: &str,
    decapsulate: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let options = table_options(columns, data, ip_as, decapsulate)?;
    Ok(options.schema().as_ref().to_pyarrow(py)?.unbind())
}

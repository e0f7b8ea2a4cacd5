//! What a Python capture object opens: a path or a file object, and the
//! options of the library's `Capture`.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Mutex;

use pcap_parallel::{Capture, Decoding, Filter, InputOrder, Limits, OnError, Split};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;

use crate::drive::{Watch, drive};
use crate::errors::IntoPy;

/// Where the bytes come from.
enum Source {
    /// Paths (`-` for standard input, alone), opened anew for every run:
    /// several are read as one capture.
    Paths(Vec<PathBuf>, InputOrder),
    /// A Python binary file object: read once.
    File(Mutex<Option<Py<PyAny>>>),
}

/// The options of a run.
#[derive(Debug, Clone)]
struct Options {
    split: Split,
    workers: Option<usize>,
    max_packets: Option<u64>,
    filter: Option<String>,
    on_error: OnError,
    max_caplen: Option<u32>,
}

/// A capture to open, with its options: `pcap_parallel.open` makes one.
#[pyclass(frozen, module = "pcap_parallel._native")]
pub struct Opener {
    source: Source,
    name: String,
    options: Options,
}

/// A Python file object as a reader (called from the library's reading
/// thread, which takes the interpreter for each read).
struct PyReader(Py<PyAny>);

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let data = self.0.call_method1(py, "read", (buf.len(),))?;
            let bytes: PyBackedBytes = data.extract(py)?;
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok::<usize, PyErr>(n)
        })
        .map_err(io::Error::other)
    }
}

fn split_of(kind: Option<&str>, value: u64) -> PyResult<Split> {
    let positive = |what: &str| {
        if value == 0 {
            Err(PyValueError::new_err(format!("{what} must be at least 1")))
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        None | Some("auto") => Split::Auto,
        Some("packets") => {
            positive("packets per chunk")?;
            Split::Packets(value)
        }
        Some("bytes") => {
            positive("bytes per chunk")?;
            Split::Bytes(value)
        }
        Some("chunks") => {
            positive("the number of chunks")?;
            Split::Chunks(value as usize)
        }
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "unknown way to split: {other:?} (packets, bytes, chunks or auto)"
            )));
        }
    })
}

#[pymethods]
impl Opener {
    /// `source` is a path (str or os.PathLike; `-` for standard input) or a
    /// binary file object. The filter is compiled here, so that a bad
    /// expression fails at once.
    #[new]
    #[pyo3(signature = (source, *, split_kind=None, split_value=0, workers=None, max_packets=None, filter=None, on_error="stop", max_caplen=None, order="given"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: Bound<'_, PyAny>,
        split_kind: Option<&str>,
        split_value: u64,
        workers: Option<usize>,
        max_packets: Option<u64>,
        filter: Option<String>,
        on_error: &str,
        max_caplen: Option<u32>,
        order: &str,
    ) -> PyResult<Opener> {
        let order = match order {
            "given" => InputOrder::Given,
            "time" => InputOrder::Time,
            other => {
                return Err(PyValueError::new_err(format!(
                    "order must be 'given' or 'time', not {other:?}"
                )));
            }
        };
        let on_error = match on_error {
            "stop" => OnError::Stop,
            "skip" => OnError::Skip,
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_error must be 'stop' or 'skip', not {other:?}"
                )));
            }
        };
        if workers == Some(0) {
            return Err(PyValueError::new_err("workers must be at least 1"));
        }
        if let Some(w) = workers
            && w > max_workers()
        {
            return Err(PyValueError::new_err(format!(
                "workers={w} is more than {} (4 × the {} cores available, at least 32): \
                 each worker is a process of its own",
                max_workers(),
                pcap_parallel::default_workers()
            )));
        }
        if let Some(expr) = &filter {
            Filter::new(expr)
                .map_err(pcap_parallel::Error::from)
                .py_err(py)?;
        }
        let (source, name) = if source.hasattr("read")? {
            let name = source
                .getattr("name")
                .ok()
                .and_then(|n| n.str().ok().map(|s| s.to_string()))
                .unwrap_or_else(|| "<file object>".to_string());
            if source.is_instance(&py.import("io")?.getattr("TextIOBase")?)? {
                return Err(PyTypeError::new_err(format!(
                    "{name}: a capture must be read in binary mode: open it with open(path, 'rb')"
                )));
            }
            (Source::File(Mutex::new(Some(source.unbind()))), name)
        } else {
            // A path, a glob pattern, or a list of them: read as one.
            let args: Vec<PathBuf> = match source.extract::<PathBuf>() {
                Ok(path) => vec![path],
                Err(_) => source.extract()?,
            };
            let paths = pcap_parallel::expand_inputs(&args)
                .map_err(pcap_parallel::Error::from)
                .py_err(py)?;
            let name = paths[0].display().to_string();
            (Source::Paths(paths, order), name)
        };
        Ok(Opener {
            source,
            name,
            options: Options {
                split: split_of(split_kind, split_value)?,
                workers,
                max_packets,
                filter,
                on_error,
                max_caplen,
            },
        })
    }

    /// The input's name: its path (of several, the first's), or the file
    /// object's name.
    #[getter]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The paths read as one capture (patterns expanded); empty for a file object.
    #[getter]
    fn paths(&self) -> Vec<PathBuf> {
        match &self.source {
            Source::Paths(paths, _) => paths.clone(),
            Source::File(_) => Vec::new(),
        }
    }

    /// The worker count runs use (the cores available, unless set).
    #[getter]
    fn workers(&self) -> usize {
        self.options
            .workers
            .unwrap_or_else(pcap_parallel::default_workers)
    }

    /// True for a source that can be read only once (a file object).
    #[getter]
    fn one_shot(&self) -> bool {
        matches!(self.source, Source::File(_))
    }
}

/// The most workers a capture takes: they are processes (`map`), each
/// with its own interpreter and memory, so 4 × the cores available (at
/// least 32, at most the library's `MAX_WORKERS`).
pub(crate) fn max_workers() -> usize {
    (4 * pcap_parallel::default_workers()).clamp(32, pcap_parallel::MAX_WORKERS)
}

/// Chunk size for streamed input (compressed files, pipes, file objects)
/// when none is asked for: 1 MiB instead of the library's 4 MiB. Each such
/// chunk exists in the parent several times over while it travels to a
/// worker process (the library's buffer, the pickled copy, the queue to the
/// pool), so smaller chunks keep the parent's memory flat and well under
/// 100 MiB; at about 3,000 packets a chunk the per-chunk cost stays small.
const STREAMED_CHUNK_BYTES: u64 = 1 << 20;

/// Decoding options for the parent process: compressed chunks travel to
/// worker processes and wait there too, so the parent holds less decoded
/// data in flight than the library's default (16 MiB instead of 64 MiB),
/// which keeps its memory flat and small whatever the input size.
fn parallel_decoding_in_parent() -> Decoding {
    Decoding {
        max_in_flight: 16 << 20,
        ..Decoding::default()
    }
}

impl Opener {
    /// The paths read as one capture, as text.
    pub(crate) fn path_names(&self) -> Vec<String> {
        match &self.source {
            Source::Paths(paths, _) => paths.iter().map(|p| p.display().to_string()).collect(),
            Source::File(_) => Vec::new(),
        }
    }

    /// Opens the library capture with every option set. Opening reads the
    /// first bytes, which for a pipe may take any time: it runs off the
    /// interpreter's thread and answers Ctrl-C.
    pub(crate) fn open(&self, py: Python<'_>) -> PyResult<Capture> {
        let name = self.name.clone();
        let opened = match &self.source {
            Source::Paths(paths, order) => {
                let (paths, order) = (paths.clone(), *order);
                drive(py, &Watch::new(None), move || match paths.as_slice() {
                    [one] => Capture::open_with(one, &parallel_decoding_in_parent()),
                    _ => Capture::open_many_with(&paths, order, &parallel_decoding_in_parent()),
                })?
            }
            Source::File(slot) => {
                let obj = slot
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .ok_or_else(|| {
                        PyRuntimeError::new_err(format!(
                            "{name}: a file object can be read only once; open it again"
                        ))
                    })?;
                // The library reads the first bytes on its reading thread,
                // which takes the interpreter to call `read`.
                drive(py, &Watch::new(None), move || {
                    Capture::from_reader(&name, PyReader(obj))
                })?
            }
        };
        let mut capture = opened.py_err(py)?;
        let o = &self.options;
        let split = match o.split {
            // Streamed chunks are copied into the worker processes: smaller
            // ones keep the parent's memory flat and small (see
            // STREAMED_CHUNK_BYTES).
            Split::Auto if !capture.is_mapped() => Split::Bytes(STREAMED_CHUNK_BYTES),
            s => s,
        };
        capture = capture
            .split(split)
            .max_packets(o.max_packets)
            .on_error(o.on_error);
        if let Some(w) = o.workers {
            capture = capture.workers(w);
        }
        if let Some(m) = o.max_caplen {
            capture = capture.limits(Limits {
                max_packet_len: m,
                ..Limits::default()
            });
        }
        if let Some(expr) = &o.filter {
            capture = capture.filter(
                Filter::new(expr)
                    .map_err(pcap_parallel::Error::from)
                    .py_err(py)?,
            );
        }
        Ok(capture)
    }

    /// Whether every chunk of `capture` can be found in its file by byte
    /// range (one plain file, mapped): workers then read their chunks
    /// themselves ([`pcap_parallel::Chunk::mapped_file`] says so chunk by chunk).
    pub(crate) fn all_in_file(&self, capture: &Capture) -> bool {
        matches!(&self.source, Source::Paths(p, _) if p.len() == 1 && p[0].as_os_str() != "-")
            && capture.is_mapped()
    }
}

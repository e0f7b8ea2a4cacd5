//! Whole runs returning Python data: `info`, `top`, `count`, `split` and
//! flow shards, each the same computation as the command line's.

use std::path::PathBuf;

use pcap_parallel::output::{OutputCompression, PartSet, PartsError, check_prefix, default_prefix};
use pcap_parallel::summary::{self, Summary};
use pcap_parallel::tally::{self, By};
use pcap_parallel::{Error, FlowKey, Report};
use pyo3::exceptions::{PyFileExistsError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::drive::{Watch, drive};
use crate::errors::{IntoPy, to_py};
use crate::source::Opener;

fn flow_key(name: &str) -> PyResult<FlowKey> {
    match name {
        "five-tuple" => Ok(FlowKey::FiveTuple),
        "host-pair" => Ok(FlowKey::HostPair),
        other => Err(PyValueError::new_err(format!(
            "flow_key must be 'five-tuple' or 'host-pair', not {other:?}"
        ))),
    }
}

fn flows_of(flows: Option<usize>, key: &str) -> PyResult<Option<(usize, FlowKey)>> {
    match flows {
        Some(0) => Err(PyValueError::new_err("flows must be at least 1")),
        Some(k) => Ok(Some((k, flow_key(key)?))),
        None => Ok(None),
    }
}

fn compression_of(name: Option<&str>) -> PyResult<OutputCompression> {
    match name {
        None | Some("none") => Ok(OutputCompression::None),
        Some("gzip") => Ok(OutputCompression::Gzip),
        Some("zstd") => Ok(OutputCompression::Zstd),
        Some(other) => Err(PyValueError::new_err(format!(
            "compress must be None, 'gzip' or 'zstd', not {other:?}"
        ))),
    }
}

/// The `info` summary as a dict, key for key the command line's `--json`.
fn summary_dict<'py>(
    py: Python<'py>,
    s: &Summary,
    error: Option<&Error>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("file", &s.name)?;
    d.set_item(
        "format",
        if s.format.is_pcapng() {
            "pcapng"
        } else {
            "pcap"
        },
    )?;
    d.set_item("format_detail", s.format.name())?;
    d.set_item("compression", s.compression.name())?;
    d.set_item("byte_order", &s.byte_orders)?;
    d.set_item("ts_resolution", &s.ts_resolutions)?;
    let interfaces = PyList::empty(py);
    for i in &s.interfaces {
        let e = PyDict::new(py);
        e.set_item("section", i.section)?;
        e.set_item("id", i.id)?;
        e.set_item("link_type", i.link_type.0)?;
        e.set_item("link_type_name", i.link_type.name())?;
        e.set_item("snaplen", i.snaplen)?;
        e.set_item("ts_resolution", &i.ts_resolution)?;
        interfaces.append(e)?;
    }
    d.set_item("interfaces", interfaces)?;
    let link_types = PyList::empty(py);
    for (lt, n) in &s.link_types {
        let e = PyDict::new(py);
        e.set_item("link_type", lt.0)?;
        e.set_item("link_type_name", lt.name())?;
        e.set_item("packets", n)?;
        link_types.append(e)?;
    }
    d.set_item("link_types", link_types)?;
    d.set_item("sections", s.sections)?;
    d.set_item("packets", s.packets)?;
    d.set_item("captured_bytes", s.captured_bytes)?;
    d.set_item("original_bytes", s.original_bytes)?;
    d.set_item("first_time", s.first_time.map(|t| t.to_string()))?;
    d.set_item("last_time", s.last_time.map(|t| t.to_string()))?;
    d.set_item("duration_seconds", s.duration_seconds())?;
    d.set_item("average_packet_size", s.average_packet_size())?;
    let p = &s.protocols;
    let protocols = PyDict::new(py);
    for (k, v) in [
        ("ipv4", p.ipv4),
        ("ipv6", p.ipv6),
        ("tcp", p.tcp),
        ("udp", p.udp),
        ("icmp", p.icmp),
        ("other_ip", p.other_ip),
        ("not_ip", p.not_ip),
    ] {
        protocols.set_item(k, v)?;
    }
    d.set_item("protocols", protocols)?;
    d.set_item("chunks", s.chunks)?;
    d.set_item("error", error.map(|e| e.to_string()))?;
    Ok(d)
}

/// A strict ending: the run's input error, raised (after the work before it).
fn strict(py: Python<'_>, report: Report) -> PyResult<()> {
    match report.input_error {
        Some(e) => Err(to_py(py, e)),
        None => Ok(()),
    }
}

/// The capinfos-like summary (see `Capture.info`).
#[pyfunction]
#[pyo3(signature = (opener, flows=None, flow_key="five-tuple", strict_errors=true, progress=None))]
pub fn info<'py>(
    py: Python<'py>,
    opener: &Opener,
    flows: Option<usize>,
    flow_key: &str,
    strict_errors: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let flows = flows_of(flows, flow_key)?;
    let watch = Watch::new(progress);
    let capture = watch.attach(opener.open(py)?);
    let (s, report) = drive(py, &watch, move || summary::summarise(capture, flows))?;
    let d = summary_dict(py, &s, report.input_error.as_ref())?;
    if strict_errors {
        strict(py, report)?;
    }
    Ok(d)
}

/// Packets and bytes per key (see `Capture.top`).
#[pyfunction]
#[pyo3(signature = (opener, by="src", limit=10, flows=None, flow_key="five-tuple", progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn top<'py>(
    py: Python<'py>,
    opener: &Opener,
    by: &str,
    limit: usize,
    flows: Option<usize>,
    flow_key: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let by_kind = By::from_name(by).ok_or_else(|| {
        PyValueError::new_err(format!(
            "by must be one of src, dst, sport, dport, proto, conversation; not {by:?}"
        ))
    })?;
    let flows = flows_of(flows, flow_key)?;
    let watch = Watch::new(progress);
    let capture = watch.attach(opener.open(py)?);
    let (top, report) = drive(py, &watch, move || tally::count(capture, by_kind, flows))?;
    strict(py, report)?;
    let d = PyDict::new(py);
    d.set_item("file", opener.name())?;
    let paths = opener.path_names();
    if paths.len() > 1 {
        // As `pcap-parallel top --json` of several files.
        d.set_item("files", paths)?;
    }
    d.set_item("by", by_kind.name())?;
    d.set_item("packets", top.packets)?;
    d.set_item("bytes", top.bytes)?;
    d.set_item("keys", top.keys)?;
    let rows = PyList::empty(py);
    let shown = if limit > 0 { limit } else { top.rows.len() };
    for (k, n, b) in top.rows.iter().take(shown) {
        let r = PyDict::new(py);
        r.set_item("key", k.to_string())?;
        r.set_item("packets", n)?;
        r.set_item("bytes", b)?;
        rows.append(r)?;
    }
    d.set_item("rows", rows)?;
    Ok(d)
}

/// The number of packets (those the filter passes, if any).
#[pyfunction]
#[pyo3(signature = (opener, progress=None))]
pub fn count(py: Python<'_>, opener: &Opener, progress: Option<Py<PyAny>>) -> PyResult<u64> {
    let watch = Watch::new(progress);
    let capture = watch.attach(opener.open(py)?);
    let n = drive(py, &watch, move || {
        capture.map_reduce(|c| c.packets().count() as u64, |a, b| a + b)
    })?;
    n.py_err(py)
}

/// The library's part-set errors as Python exceptions, with the Python
/// face's advice.
fn parts_err(e: PartsError) -> PyErr {
    use pyo3::exceptions::{
        PyBlockingIOError, PyIsADirectoryError, PyNotADirectoryError, PyOSError,
    };
    let message = e.to_string();
    match e {
        PartsError::BadPrefix(p) => {
            PyValueError::new_err(format!("prefix must be a file name, not {p:?}"))
        }
        PartsError::InputIsPart { .. } => PyValueError::new_err(format!(
            "{message}; choose another prefix or directory (a split never replaces its input)"
        )),
        PartsError::NotADirectory(_) => PyNotADirectoryError::new_err(message),
        PartsError::DirectoryIsPart(_) => PyIsADirectoryError::new_err(message),
        PartsError::PartsExist { .. } => {
            PyFileExistsError::new_err(format!("{message} (force=True replaces them)"))
        }
        PartsError::Locked { .. } => PyBlockingIOError::new_err(message),
        PartsError::Staging { error, .. } | PartsError::Io { error, .. } => {
            PyOSError::new_err((error.raw_os_error().unwrap_or(0), message))
        }
        _ => PyOSError::new_err(message),
    }
}

/// How writing a set of parts ended, off the interpreter's thread.
enum Ended {
    /// Put in place: the parts' paths.
    Done(Vec<PathBuf>),
    /// A part could not be written, or the new set put in place.
    WriteFailed(String),
    /// Reading the input failed (strict: nothing is put in place).
    Input(Error),
}

/// Puts `count` parts in place unless anything failed: the Python faces
/// are strict, so a broken input, like a failed write, leaves the
/// directory as it was (the set is dropped, and with it every new part).
fn settle(parts: PartSet, count: u64, failure: Option<String>, report: Report) -> Ended {
    if let Some(message) = failure {
        return Ended::WriteFailed(message);
    }
    if let Some(e) = report.input_error {
        return Ended::Input(e);
    }
    match parts.commit(count) {
        Ok(names) => Ended::Done(names),
        Err(e) => Ended::WriteFailed(format!("{e} (no part replaced)")),
    }
}

impl Ended {
    fn py(self, py: Python<'_>) -> PyResult<Vec<PathBuf>> {
        match self {
            Ended::Done(names) => Ok(names),
            Ended::WriteFailed(m) => Err(pyo3::exceptions::PyOSError::new_err(m)),
            Ended::Input(e) => Err(to_py(py, e)),
        }
    }
}

/// Opens the capture and prepares the set of parts in `directory`: the
/// library's checks (prefix, lock, input guard, staging directory).
fn prepare(
    py: Python<'_>,
    opener: &Opener,
    watch: &Watch,
    directory: &std::path::Path,
    prefix: Option<String>,
    compression: OutputCompression,
    force: bool,
) -> PyResult<(pcap_parallel::Capture, PartSet)> {
    let prefix = prefix.unwrap_or_else(|| default_prefix(std::path::Path::new(opener.name())));
    check_prefix(&prefix).map_err(parts_err)?;
    let capture = watch.attach(opener.open(py)?);
    let inputs: Vec<PathBuf> = opener.path_names().into_iter().map(PathBuf::from).collect();
    let parts = PartSet::prepare(
        directory,
        &prefix,
        capture.format(),
        compression,
        force,
        &inputs,
    )
    .map_err(parts_err)?;
    Ok((capture, parts))
}

/// Writes every chunk as a standalone capture file (see `Capture.split`),
/// all or nothing, through the command line's implementation.
#[pyfunction]
#[pyo3(signature = (opener, directory, prefix=None, compress=None, force=false, progress=None))]
pub fn split(
    py: Python<'_>,
    opener: &Opener,
    directory: PathBuf,
    prefix: Option<String>,
    compress: Option<&str>,
    force: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Vec<PathBuf>> {
    let compression = compression_of(compress)?;
    let watch = Watch::new(progress);
    let (capture, parts) = prepare(py, opener, &watch, &directory, prefix, compression, force)?;
    let ended = drive(py, &watch, move || {
        let mut failure = None;
        let (count, report) = parts.write_chunks(capture, |e| {
            failure.get_or_insert_with(|| match &e.cause {
                pcap_parallel::ChunkFailureCause::Error(inner) => inner.to_string(),
                _ => e.to_string(),
            });
        });
        settle(parts, count, failure, report)
    })?;
    ended.py(py)
}

/// Writes one capture file per flow shard (see `Flows.write`), all or
/// nothing, through the command line's implementation.
#[pyfunction]
#[pyo3(signature = (opener, shards, directory, prefix=None, flow_key="five-tuple", compress=None, force=false, max_open=32, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn write_flows(
    py: Python<'_>,
    opener: &Opener,
    shards: usize,
    directory: PathBuf,
    prefix: Option<String>,
    flow_key: &str,
    compress: Option<&str>,
    force: bool,
    max_open: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Vec<PathBuf>> {
    let Some((k, key)) = flows_of(Some(shards), flow_key)? else {
        unreachable!("a shard count was given");
    };
    let compression = compression_of(compress)?;
    let watch = Watch::new(progress);
    let (capture, parts) = prepare(py, opener, &watch, &directory, prefix, compression, force)?;
    let ended = drive(py, &watch, move || {
        let (count, report) = parts.write_shards(capture.flows(k).key(key), max_open);
        match count {
            // The input's error, if any, is the report's.
            Err(e) if report.input_error.is_none() => Ended::Input(e),
            Err(_) => Ended::Input(report.input_error.expect("checked")),
            Ok(count) => settle(parts, count, None, report),
        }
    })?;
    ended.py(py)
}

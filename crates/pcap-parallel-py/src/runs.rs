//! Whole runs returning Python data: `info`, `top`, `count`, `split` and
//! flow shards, each the same computation as the command line's.

use std::path::PathBuf;

use pcap_parallel::output::{
    IfExists, OutputCompression, ShardFiles, default_prefix, part_extension, part_file_name,
    part_number, write_chunk,
};
use pcap_parallel::summary::{self, Summary};
use pcap_parallel::tally::{self, By};
use pcap_parallel::{Error, FlowKey, Report};
use pyo3::exceptions::{PyFileExistsError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::drive::{Watch, drive};
use crate::errors::{IntoPy, to_py};
use crate::source::Opener;

/// Python's `force=True`: replace files already there.
fn if_exists_for(force: bool) -> IfExists {
    if force {
        IfExists::Replace
    } else {
        IfExists::Fail
    }
}

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

/// Writes every chunk as a standalone capture file (see `Capture.split`).
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
    let prefix = prefix.unwrap_or_else(|| default_prefix(std::path::Path::new(opener.name())));
    if prefix.is_empty() || prefix.contains('/') {
        return Err(PyValueError::new_err(format!(
            "prefix must be a file name, not {prefix:?}"
        )));
    }
    let watch = Watch::new(progress);
    let capture = watch.attach(opener.open(py)?);
    let ext = part_extension(capture.format(), compression);
    let format = capture.format();
    std::fs::create_dir_all(&directory)?;
    let existing: Vec<(u64, PathBuf)> = std::fs::read_dir(&directory)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            part_number(&name, &prefix, &ext).map(|n| (n, e.path()))
        })
        .collect();
    if !existing.is_empty() && !force {
        return Err(PyFileExistsError::new_err(format!(
            "{} already holds parts named {prefix}-*{ext} (force=True replaces them)",
            directory.display()
        )));
    }
    let dir = directory.clone();
    let if_exists = if_exists_for(force);
    let (written, report) = drive(py, &watch, move || {
        let mut written: Vec<Result<PathBuf, String>> = Vec::new();
        let report = capture.run(
            |chunk| {
                if chunk.format().extension() != format.extension() {
                    // Several files read as one, in two formats.
                    return Err(format!(
                        "{}: {} input among {} ones: split the formats apart",
                        chunk.input_name(),
                        chunk.format().extension(),
                        format.extension()
                    )
                    .into());
                }
                let path = dir.join(part_file_name(&prefix, chunk.index(), format, compression));
                write_chunk(chunk, &path, compression, if_exists)
                    .map(|_| path)
                    .map_err(|e| e.into())
            },
            |r| written.push(r.result.map_err(|e| e.to_string())),
        );
        (written, report)
    })?;
    let written: Vec<PathBuf> = written
        .into_iter()
        .collect::<Result<_, String>>()
        .map_err(pyo3::exceptions::PyOSError::new_err)?;
    strict(py, report)?;
    // Parts of an earlier, longer split would now be misleading.
    for (n, path) in existing {
        if n >= written.len() as u64 {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(written)
}

/// Writes one capture file per flow shard (see `Flows.write`).
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
    let prefix = prefix.unwrap_or_else(|| default_prefix(std::path::Path::new(opener.name())));
    let mut files = ShardFiles::new(&directory, &prefix);
    files.compression = compression_of(compress)?;
    files.if_exists = if_exists_for(force);
    files.max_open = max_open.max(1);
    let watch = Watch::new(progress);
    let capture = watch.attach(opener.open(py)?);
    let (names, report) = drive(py, &watch, move || {
        capture.flows(k).key(key).write_shards(&files)
    })?;
    strict(py, report)?;
    names.py_err(py)
}

//! Byte-range partitions of a capture, for clusters (`pcap_parallel.dask`,
//! `pcap_parallel.spark`): the library's `partition` module seen from
//! Python. A partition is read by a worker from a local path or from a
//! Python file-like object (an fsspec file: ranged reads); its report is a
//! plain tuple (picklable), checked in file order by a `Verifier` on the
//! driver.

use std::io;

use pcap_parallel::locator::{ChunkContext, SectionBlocks};
use pcap_parallel::partition::{
    self, Boundary, Entry, LocalFile, Partition, PartitionFault, PartitionRead, PartitionReport,
    RangeRead, Verdict, Verified, Verifier,
};
use pcap_parallel::{CaptureFormat, Compression, Limits};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use arrow_pyarrow::ToPyArrow;
use pcap_parallel_arrow::chunk_batches;

use crate::chunk::PyChunk;
use crate::errors::{IntoPy, to_py};
use crate::table::{table_error, table_options};

/// A Python file-like object read by ranges (`seek` then `read`): an
/// fsspec file reads only the bytes asked for.
struct PyFileSource {
    name: String,
    len: u64,
    file: Py<PyAny>,
}

impl RangeRead for PyFileSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let file = self.file.bind(py);
            let mut read = || -> PyResult<usize> {
                file.call_method1("seek", (offset,))?;
                let mut done = 0;
                while done < buf.len() {
                    let got = file.call_method1("read", (buf.len() - done,))?;
                    let got: &[u8] = got.extract()?;
                    if got.is_empty() {
                        break;
                    }
                    buf[done..done + got.len()].copy_from_slice(got);
                    done += got.len();
                }
                Ok(done)
            };
            read().map_err(|e| io::Error::other(e.to_string()))
        })
    }
}

/// The source of a partition: a path, or a file-like object with its name
/// and size.
fn source(py: Python<'_>, src: &Bound<'_, PyAny>) -> PyResult<Box<dyn RangeRead>> {
    if let Ok(path) = src.extract::<std::path::PathBuf>() {
        return Ok(Box::new(LocalFile::open(path).py_err(py)?));
    }
    let (file, name, len): (Py<PyAny>, String, u64) = src.extract()?;
    Ok(Box::new(PyFileSource { name, len, file }))
}

/// A partition's report as a tuple: (index, entry, exit, packets, fault),
/// with entry None or (offset, context bytes), exit (offset, context
/// bytes), fault None or (offset, packets before it).
type ReportTuple = (
    usize,
    Option<(u64, Vec<u8>)>,
    (u64, Vec<u8>),
    u64,
    Option<(u64, u64)>,
);

/// Contexts up to this size travel in reports as they are. A larger one (a
/// pcapng section with many interfaces: 2 MB for 100,000) travels as what
/// the receiver cannot rebuild itself: [`ENTRY`] for an exit in the state
/// its partition started in, [`GIVEN`] for an entry the driver gave, and
/// otherwise relative to the state the file's head gives (every guessed
/// partition starts in it, and any worker reads it from the file: see
/// [`head_relative`]). So a report carries only the blocks that differ
/// from the head's, not the section's whole interface table.
const INLINE_CONTEXT: usize = 4096;

/// Starts a context given relative to the file head's (`partition::head_context`).
const HEAD: &[u8] = b"\0pcap-parallel:head";

/// An exit in the same context as its partition's entry.
const ENTRY: &[u8] = b"\0pcap-parallel:entry";

/// An entry in the context the driver gave the partition to start from
/// (a recompute): the driver puts it back (`partition.verify`).
pub const GIVEN: &[u8] = b"\0pcap-parallel:given";

/// A pcapng context as [`HEAD`], its section's offset, how many bytes of its
/// blocks are the head state's first ones, then the rest of its blocks;
/// None when it shares nothing with `head`. Canonical (the longest common
/// start), so two contexts are equal exactly when their names are.
fn head_relative(context: &ChunkContext, head: &ChunkContext) -> Option<Vec<u8>> {
    let (ChunkContext::Pcapng { section: Some(s) }, ChunkContext::Pcapng { section: Some(h) }) =
        (context, head)
    else {
        return None;
    };
    if s.offset != h.offset {
        return None;
    }
    let same = s
        .blocks
        .iter()
        .zip(&h.blocks)
        .take_while(|(a, b)| a == b)
        .count();
    if same == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(HEAD.len() + 16 + s.blocks.len() - same);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(&s.offset.to_le_bytes());
    out.extend_from_slice(&(same as u64).to_le_bytes());
    out.extend_from_slice(&s.blocks[same..]);
    Some(out)
}

/// The driver's stand-in for a named context in the verifier, which
/// compares contexts: no file gives a section at this offset.
fn placeholder(name: &[u8]) -> ChunkContext {
    ChunkContext::Pcapng {
        section: Some(SectionBlocks {
            offset: u64::MAX,
            blocks: name.to_vec(),
        }),
    }
}

/// A boundary as a report carries it: a large context named (see
/// [`INLINE_CONTEXT`]); `entry` is the partition's entry context (for its
/// exit), `given` says the entry was the driver's.
fn boundary_tuple(
    b: &Boundary,
    head: Option<&ChunkContext>,
    entry: Option<&ChunkContext>,
    given: bool,
) -> (u64, Vec<u8>) {
    let encoded = b.context.encode();
    let context = if encoded.len() <= INLINE_CONTEXT {
        encoded
    } else if entry == Some(&b.context) {
        ENTRY.to_vec()
    } else if given {
        GIVEN.to_vec()
    } else {
        match head.and_then(|h| head_relative(&b.context, h)) {
            Some(named) if named.len() < encoded.len() => named,
            _ => encoded,
        }
    };
    (b.offset, context)
}

/// Decodes a context's bytes; one relative to the head is rebuilt on
/// `head()`'s.
fn context_of(
    py: Python<'_>,
    bytes: &[u8],
    head: &mut dyn FnMut() -> PyResult<ChunkContext>,
) -> PyResult<ChunkContext> {
    if let Some(named) = bytes.strip_prefix(HEAD) {
        let bad = || {
            pyo3::exceptions::PyValueError::new_err(
                "a partition state this file's head does not give (the file changed?)",
            )
        };
        let (offset, rest) = named.split_first_chunk::<8>().ok_or_else(bad)?;
        let (same, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
        let (offset, same) = (u64::from_le_bytes(*offset), u64::from_le_bytes(*same));
        let head = head()?;
        let ChunkContext::Pcapng { section: Some(h) } = &head else {
            return Err(bad());
        };
        let same = usize::try_from(same).map_err(|_| bad())?;
        if h.offset != offset || h.blocks.len() < same {
            return Err(bad());
        }
        let mut blocks = h.blocks[..same].to_vec();
        blocks.extend_from_slice(rest);
        return Ok(ChunkContext::Pcapng {
            section: Some(SectionBlocks { offset, blocks }),
        });
    }
    ChunkContext::decode(bytes)
        .map_err(pcap_parallel::Error::from)
        .py_err(py)
}

/// A boundary given to a worker: a context relative to the head is
/// rebuilt on `head()`'s.
fn boundary_at(
    py: Python<'_>,
    (offset, context): (u64, Vec<u8>),
    head: &mut dyn FnMut() -> PyResult<ChunkContext>,
) -> PyResult<Boundary> {
    let context = context_of(py, &context, head)?;
    Ok(Boundary { offset, context })
}

fn boundary(py: Python<'_>, (offset, context): (u64, Vec<u8>)) -> PyResult<Boundary> {
    let context = ChunkContext::decode(&context)
        .map_err(pcap_parallel::Error::from)
        .py_err(py)?;
    Ok(Boundary { offset, context })
}

/// A partition read by `read_partition`.
#[pyclass(frozen, module = "pcap_parallel._native", name = "PartitionRead")]
pub struct PyPartitionRead {
    read: PartitionRead,
    name: String,
    /// Read from an entry the driver gave.
    given: bool,
}

#[pymethods]
impl PyPartitionRead {
    /// The report the driver verifies the partition by (a picklable tuple).
    #[getter]
    fn report(&self) -> ReportTuple {
        let r = &self.read.report;
        let head = self.read.head_context();
        let entry = r.entry.as_ref().map(|b| &b.context);
        (
            r.index,
            r.entry
                .as_ref()
                .map(|b| boundary_tuple(b, head.as_ref(), None, self.given)),
            boundary_tuple(&r.exit, head.as_ref(), entry, false),
            r.packets,
            r.fault.as_ref().map(|f| (f.offset, f.packets_before)),
        )
    }

    /// The partition's records as a chunk, its packets numbered from
    /// `packets_before + 1`.
    #[pyo3(signature = (packets_before=0))]
    fn chunk(&self, packets_before: u64) -> PyChunk {
        PyChunk {
            chunk: self.read.clone().into_chunk(packets_before),
        }
    }

    /// Raises `CaptureError` if the file shrank under the map the partition
    /// was read from: what was computed from its chunk since is not to be
    /// trusted (call it after taking the chunk's bytes).
    fn check_unchanged(&self, py: Python<'_>) -> PyResult<()> {
        if self.read.input_changed() {
            let name = self.name.clone();
            return Err(to_py(py, pcap_parallel::Error::InputChanged { name }));
        }
        Ok(())
    }

    /// The partition's packet table: (pyarrow schema, [pyarrow
    /// RecordBatch]), frame numbers counting from `packets_before + 1`;
    /// the options are those of `Capture.to_arrow`.
    #[pyo3(signature = (packets_before=0, columns=None, data=false, ip_as="text", decapsulate=None))]
    fn table(
        &self,
        py: Python<'_>,
        packets_before: u64,
        columns: Option<Vec<String>>,
        data: bool,
        ip_as: &str,
        decapsulate: Option<&str>,
    ) -> PyResult<(Py<PyAny>, Vec<Py<PyAny>>)> {
        let options = table_options(columns, data, ip_as, decapsulate)?;
        let chunk = self.read.clone().into_chunk(packets_before);
        let batches = py
            .detach(|| chunk_batches(&chunk, &options))
            .map_err(|e| table_error(py, e))?;
        self.check_unchanged(py)?;
        let schema = options.schema().as_ref().to_pyarrow(py)?.unbind();
        let batches = batches
            .iter()
            .map(|b| b.to_pyarrow(py).map(Bound::unbind))
            .collect::<PyResult<_>>()?;
        Ok((schema, batches))
    }

    /// The fault the walk stopped at as the exception to raise, given the
    /// packets of the capture before the partition; None without a fault.
    fn error(&self, py: Python<'_>, packets_before: u64) -> Option<Py<PyAny>> {
        let f: &PartitionFault = self.read.report.fault.as_ref()?;
        Some(
            to_py(py, f.to_error(&self.name, packets_before))
                .into_value(py)
                .into_any(),
        )
    }
}

/// Reads partition `index` (bytes `start..end`) of `source` (a path, or a
/// tuple (file-like object, name, size)): from a guessed boundary, or from
/// `entry` = (offset, context bytes) when the driver asks for a recompute.
/// With `verified` = (exit, packets) of the partition's accepted report as
/// well, the records are not walked again where they cannot change the
/// state (the library's `Entry::Verified`).
#[pyfunction]
#[pyo3(signature = (source, index, start, end, entry=None, verified=None))]
pub fn read_partition(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    index: usize,
    start: u64,
    end: u64,
    entry: Option<(u64, Vec<u8>)>,
    verified: Option<((u64, Vec<u8>), u64)>,
) -> PyResult<PyPartitionRead> {
    let src = self::source(py, source)?;
    // Contexts relative to the head: the file's head is read, once.
    let mut head_read: Option<ChunkContext> = None;
    let mut head = || -> PyResult<ChunkContext> {
        if let Some(h) = &head_read {
            return Ok(h.clone());
        }
        let h = py
            .detach(|| partition::head_context(&*src, Limits::default()))
            .py_err(py)?;
        head_read = Some(h.clone());
        Ok(h)
    };
    let given = entry.is_some();
    let entry = match (entry, verified) {
        (Some(start), Some(((exit_offset, exit), packets))) => {
            let start = boundary_at(py, start, &mut head)?;
            let exit = match exit.as_slice() {
                ENTRY => start.context.clone(),
                bytes => context_of(py, bytes, &mut head)?,
            };
            Entry::Verified(Verified {
                exit: Boundary {
                    offset: exit_offset,
                    context: exit,
                },
                start,
                packets,
            })
        }
        (Some(b), None) => Entry::Exact(boundary_at(py, b, &mut head)?),
        (None, _) => Entry::Guess,
    };
    let part = Partition {
        index,
        range: start..end,
    };
    let name = src.name();
    let src: &dyn RangeRead = &*src;
    let read = py
        .detach(|| partition::read_partition(src, &part, &entry, Limits::default()))
        .py_err(py)?;
    Ok(PyPartitionRead { read, name, given })
}

/// What an input is, from its first bytes (at least `DETECT_LEN` of
/// them, fewer for a shorter input): (compression, capture format), by
/// the library's own detection. Compression is `none`, `gzip`, `bzip2`,
/// `xz`, `zstd` (pzstd's skippable frames too) or `lz4` (the legacy
/// `lz4 -l` too); the format `pcap` or `pcapng`, None when unknown or
/// inside a compression (read only after decompressing).
#[pyfunction]
pub fn detect_format(head: &[u8]) -> (&'static str, Option<&'static str>) {
    let compression = Compression::detect(head);
    let format = match compression {
        Compression::None => CaptureFormat::detect(head).map(CaptureFormat::extension),
        _ => None,
    };
    (compression.name(), format)
}

/// How many first bytes `detect_format` needs.
pub const DETECT_LEN: usize = if Compression::MAGIC_LEN > 4 {
    Compression::MAGIC_LEN
} else {
    4
};

/// The partitions of `len` bytes of `target_bytes` each: (index, start, end).
#[pyfunction]
pub fn partition_ranges(len: u64, target_bytes: u64) -> Vec<(usize, u64, u64)> {
    partition::partitions(len, target_bytes)
        .into_iter()
        .map(|p| (p.index, p.range.start, p.range.end))
        .collect()
}

/// Checks partition reports in file order (the library's `Verifier`).
#[pyclass(module = "pcap_parallel._native", name = "Verifier")]
pub struct PyVerifier {
    inner: Verifier,
}

#[pymethods]
impl PyVerifier {
    #[new]
    fn new(name: String) -> PyVerifier {
        PyVerifier {
            inner: Verifier::new(name),
        }
    }

    /// Checks the next report: `("accept", packets_before)`, `("recompute",
    /// (offset, context bytes))` to read the partition again from there, or
    /// `("after_fault", None)`. A partition accepted whose report has a
    /// fault is the last to use (the caller stops there): its read's
    /// `error(packets_before)` is the error to raise.
    fn check(&mut self, py: Python<'_>, report: ReportTuple) -> PyResult<(String, Py<PyAny>)> {
        let (index, entry, exit, packets, fault) = report;
        // The driver never reads the file: a named context stays a name,
        // compared as one.
        let named = |(offset, context): (u64, Vec<u8>)| -> PyResult<Boundary> {
            if context.starts_with(HEAD) {
                return Ok(Boundary {
                    offset,
                    context: placeholder(&context),
                });
            }
            boundary(py, (offset, context))
        };
        let entry = entry.map(named).transpose()?;
        let exit = match (exit.1.as_slice(), &entry) {
            (ENTRY, Some(e)) => Boundary {
                offset: exit.0,
                context: e.context.clone(),
            },
            (ENTRY, None) => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "a report whose exit names an entry it does not have",
                ));
            }
            _ => named(exit)?,
        };
        let report = PartitionReport {
            index,
            entry,
            exit,
            packets,
            // The fault itself stays with the worker's read (`error`), and
            // the driver stops at the first partition accepted with one.
            fault: None,
        };
        let _ = fault;
        Ok(match self.inner.check(&report) {
            Verdict::Accepted { packets_before, .. } => (
                "accept".into(),
                packets_before.into_pyobject(py)?.into_any().unbind(),
            ),
            Verdict::Recompute(Entry::Exact(b)) => {
                let context = match &b.context {
                    ChunkContext::Pcapng { section: Some(s) } if s.offset == u64::MAX => {
                        s.blocks.clone()
                    }
                    c => c.encode(),
                };
                let t = (b.offset, PyBytes::new(py, &context));
                ("recompute".into(), t.into_pyobject(py)?.into_any().unbind())
            }
            Verdict::Recompute(_) | Verdict::AfterFault => ("after_fault".into(), py.None()),
        })
    }

    /// Partitions read again because their start or state was wrong.
    #[getter]
    fn recomputed(&self) -> usize {
        self.inner.recomputed()
    }

    /// Packets accepted so far.
    #[getter]
    fn packets(&self) -> u64 {
        self.inner.packets()
    }
}

//! Chunk locators as picklable Python objects.

use pcap_parallel::locator::{ChunkLocator, Placement};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::chunk::PyChunk;
use crate::errors::IntoPy;

/// A chunk described as plain data: where its records are (a byte range of
/// a file, or the records themselves), its first packet number and the
/// header context it needs. Pickles to a few hundred bytes for a chunk of
/// a file; `open()` rebuilds the chunk in any process that can read the
/// file, and checks that the file still holds what was described.
#[pyclass(frozen, module = "pcap_parallel._native", name = "ChunkLocator")]
pub struct Locator {
    pub(crate) inner: ChunkLocator,
}

#[pymethods]
impl Locator {
    /// Position of the chunk in file order, from 0.
    #[getter]
    fn index(&self) -> usize {
        self.inner.index
    }

    /// The chunk's records in the (decompressed) input: (start, end).
    #[getter]
    fn byte_range(&self) -> (u64, u64) {
        (self.inner.byte_range.start, self.inner.byte_range.end)
    }

    /// Number (1-based) of the chunk's first packet.
    #[getter]
    fn first_packet_number(&self) -> u64 {
        self.inner.first_packet_number
    }

    /// Packets in the chunk (before any filter).
    #[getter]
    fn packet_count(&self) -> u64 {
        self.inner.packet_count
    }

    /// The file holding the records, or None when they are carried inline.
    #[getter]
    fn path(&self) -> Option<String> {
        match &self.inner.placement {
            Placement::File(p) => Some(p.to_string_lossy().into_owned()),
            Placement::Inline(_) => None,
        }
    }

    /// Rebuilds the chunk (maps its byte range, walks it, checks it). A
    /// file that no longer holds the range (shorter, or changed) raises
    /// `CaptureError`; a file truncated later, while the chunk is in use,
    /// is reported by the chunk (`check_unchanged`, and its `bytes`,
    /// `file` and packet iteration raise), never a SIGBUS.
    fn open(&self, py: Python<'_>) -> PyResult<PyChunk> {
        let inner = &self.inner;
        let chunk = py.detach(|| inner.open()).py_err(py)?;
        Ok(PyChunk { chunk })
    }

    /// The locator encoded as bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode())
    }

    /// Decodes what `to_bytes` made.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Locator> {
        let inner = ChunkLocator::decode(data)
            .map_err(pcap_parallel::Error::from)
            .py_err(py)?;
        Ok(Locator { inner })
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let from_bytes = py.get_type::<Locator>().getattr("from_bytes")?;
        Ok((from_bytes, (slf.get().to_bytes(py),)))
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.inner == other.inner
    }

    fn __repr__(&self) -> String {
        let where_ = match &self.inner.placement {
            Placement::File(p) => p.display().to_string(),
            Placement::Inline(_) => "inline".to_string(),
        };
        format!(
            "<ChunkLocator {} {} bytes {}..{}>",
            self.inner.index, where_, self.inner.byte_range.start, self.inner.byte_range.end
        )
    }
}

//! Chunks and packets as Python objects.
//!
//! A `Chunk` holds the library's chunk: its bytes are the memory map of the
//! input (or the chunk's own buffer, for streamed input), never copied to
//! be looked at. Its packet iterator hands out `Packet` objects that refer
//! into those bytes: `packet.data` is a read-only memoryview of the captured
//! bytes, valid as long as anyone holds it (it keeps the chunk alive).

use std::ffi::{c_int, c_void};

use pcap_parallel::locator::ChunkLocator;
use pcap_parallel::{Chunk as LibChunk, Packets};
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;
use crate::locator::Locator;

/// A run of whole packets of a capture, in file order.
#[pyclass(frozen, module = "pcap_parallel._native", name = "Chunk")]
pub struct PyChunk {
    pub(crate) chunk: LibChunk,
}

/// Fills a read-only buffer view of `bytes`, owned by `owner`.
///
/// # Safety
/// `view` is the view Python passed to `__getbuffer__`, and `bytes` stays
/// valid as long as `owner` lives (the view holds a reference to it).
unsafe fn fill_view(
    owner: &Bound<'_, PyAny>,
    view: *mut ffi::Py_buffer,
    flags: c_int,
    bytes: &[u8],
) -> PyResult<()> {
    if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
        return Err(PyBufferError::new_err("packet data is read-only"));
    }
    // SAFETY: as the function's contract says; PyBuffer_FillInfo takes a
    // new reference to `owner` for the view.
    let rc = unsafe {
        ffi::PyBuffer_FillInfo(
            view,
            owner.as_ptr(),
            bytes.as_ptr() as *mut c_void,
            bytes.len() as ffi::Py_ssize_t,
            1,
            flags,
        )
    };
    if rc == -1 {
        return Err(PyErr::fetch(owner.py()));
    }
    Ok(())
}

#[pymethods]
impl PyChunk {
    /// Position of the chunk in file order, from 0.
    #[getter]
    fn index(&self) -> usize {
        self.chunk.index()
    }

    /// The chunk's records in the (decompressed) input: (start, end).
    #[getter]
    fn byte_range(&self) -> (u64, u64) {
        let r = self.chunk.byte_range();
        (r.start, r.end)
    }

    /// Number (1-based, as Wireshark counts) of the chunk's first packet.
    #[getter]
    fn first_packet_number(&self) -> u64 {
        self.chunk.first_packet_number()
    }

    /// Packets in the chunk (before any filter).
    #[getter]
    fn packet_count(&self) -> u64 {
        self.chunk.packet_count()
    }

    /// `"pcap"` or `"pcapng"`.
    #[getter]
    fn format(&self) -> &'static str {
        self.chunk.format().extension()
    }

    /// The link types of the chunk's packets, in order of first appearance.
    fn link_types(&self) -> Vec<u16> {
        self.chunk.link_types().into_iter().map(|l| l.0).collect()
    }

    /// The chunk as a valid capture of its own (pcap: the file header and
    /// the records; pcapng: the section header and interface descriptions
    /// it needs, then its blocks), as bytes.
    fn bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let cap = self.chunk.raw_bytes().len() + 4096;
        let bytes = PyBytes::new_with_writer(py, cap, |w| {
            self.chunk.write_standalone(w)?;
            Ok(())
        });
        // Copied from a map whose file shrank: zeros, not the records (and
        // an error about them is that the file changed).
        self.check_unchanged(py)?;
        bytes
    }

    /// Raises `CaptureError` (the file changed) if the file the chunk's
    /// bytes are mapped from has shrunk under the map: its vanished pages
    /// read as zeros, so what was computed from the chunk is not to be
    /// trusted. Call it after using the chunk.
    pub(crate) fn check_unchanged(&self, py: Python<'_>) -> PyResult<()> {
        if self.chunk.input_changed() {
            let name = match self.chunk.input_name() {
                "" => format!("<chunk {}>", self.chunk.index()),
                n => n.to_string(),
            };
            return Err(to_py(py, pcap_parallel::Error::InputChanged { name }));
        }
        Ok(())
    }

    /// The chunk as a standalone capture in an `io.BytesIO`.
    fn file<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.bytes(py)?;
        py.import("io")?.getattr("BytesIO")?.call1((bytes,))
    }

    /// Iterates the packets (those the capture's filter passes): `Packet`
    /// objects with `number`, `ts` (nanoseconds since the epoch, or None),
    /// `cap_len`, `len`, `link_type`, `interface_id`, `offset` and `data`.
    fn packets(slf: Bound<'_, Self>) -> PyResult<PacketIter> {
        slf.get().check_unchanged(slf.py())?;
        Ok(PacketIter::new(slf.unbind()))
    }

    fn __iter__(slf: Bound<'_, Self>) -> PyResult<PacketIter> {
        slf.get().check_unchanged(slf.py())?;
        Ok(PacketIter::new(slf.unbind()))
    }

    fn __len__(&self) -> usize {
        self.chunk.packet_count() as usize
    }

    /// Describes the chunk as plain data (picklable), to be opened in
    /// another process: by byte range of `path` if given, else with a copy
    /// of its records.
    #[pyo3(signature = (path=None))]
    fn locator(&self, path: Option<std::path::PathBuf>) -> Locator {
        Locator {
            inner: match path {
                Some(p) => ChunkLocator::in_file(&self.chunk, p),
                None => ChunkLocator::inline(&self.chunk),
            },
        }
    }

    /// Pickles as a locator carrying the records (one copy, straight into
    /// the pickle): a chunk sent to a worker process opens there.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let from_bytes = py.get_type::<Locator>().getattr("from_bytes")?;
        let bytes = ChunkLocator::encode_inline(&self.chunk);
        Ok((from_bytes, (PyBytes::new(py, &bytes),)))
    }

    /// The chunk's records exactly as in the input (no file header), as a
    /// read-only buffer: `memoryview(chunk)`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let bytes = slf.get().chunk.raw_bytes();
        // SAFETY: the bytes belong to the chunk, which the view keeps alive.
        unsafe { fill_view(slf.as_any(), view, flags, bytes) }
    }

    fn __repr__(&self) -> String {
        let r = self.chunk.byte_range();
        format!(
            "<Chunk {} bytes {}..{} packets {}..{}>",
            self.chunk.index(),
            r.start,
            r.end,
            self.chunk.first_packet_number(),
            self.chunk.first_packet_number() + self.chunk.packet_count()
        )
    }
}

/// One packet: metadata, and its captured bytes as a read-only buffer.
#[pyclass(frozen, module = "pcap_parallel._native", name = "Packet")]
pub struct PyPacket {
    chunk: Py<PyChunk>,
    /// Where the captured bytes are in the chunk's records.
    start: usize,
    cap_len: usize,
    /// Number in the whole capture (1-based).
    #[pyo3(get)]
    number: u64,
    /// Byte offset of the record in the (decompressed) input.
    #[pyo3(get)]
    offset: u64,
    ts: Option<i128>,
    /// Length on the wire.
    #[pyo3(get)]
    len: u32,
    /// Link-layer type (a LINKTYPE_ value).
    #[pyo3(get)]
    link_type: u16,
    /// pcapng interface id (0 for pcap).
    #[pyo3(get)]
    interface_id: u32,
}

#[pymethods]
impl PyPacket {
    /// Nanoseconds since the epoch (None for pcapng simple packets).
    #[getter]
    fn ts<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(match self.ts {
            None => None,
            Some(t) => Some(match i64::try_from(t) {
                Ok(t) => t.into_pyobject(py)?.into_any(),
                Err(_) => t.into_pyobject(py)?.into_any(),
            }),
        })
    }

    /// Captured length (`len(packet.data)`).
    #[getter]
    fn cap_len(&self) -> usize {
        self.cap_len
    }

    /// The captured bytes: a read-only memoryview into the chunk, no copy.
    #[getter]
    fn data<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `slf` is a valid object; the call returns a new reference or NULL.
        unsafe {
            Bound::from_owned_ptr_or_err(slf.py(), ffi::PyMemoryView_FromObject(slf.as_ptr()))
        }
    }

    /// The captured bytes as `bytes` (a copy).
    fn tobytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.bytes(py))
    }

    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let bytes = slf.get().bytes(slf.py());
        // SAFETY: the bytes belong to the chunk, which the packet (kept
        // alive by the view) holds.
        unsafe { fill_view(slf.as_any(), view, flags, bytes) }
    }

    fn __len__(&self) -> usize {
        self.cap_len
    }

    fn __repr__(&self) -> String {
        format!(
            "<Packet {} ts={} cap_len={} len={} link_type={}>",
            self.number,
            self.ts.map_or("None".to_string(), |t| t.to_string()),
            self.cap_len,
            self.len,
            self.link_type
        )
    }
}

impl PyPacket {
    fn bytes<'a>(&'a self, py: Python<'_>) -> &'a [u8] {
        let raw = self.chunk.bind(py).get().chunk.raw_bytes();
        // SAFETY: borrowed from the frozen chunk, which `self` keeps alive
        // (and which is never mutated) for at least `'a`.
        let raw: &'a [u8] = unsafe { std::slice::from_raw_parts(raw.as_ptr(), raw.len()) };
        &raw[self.start..self.start + self.cap_len]
    }
}

/// Iterator over a chunk's packets.
#[pyclass(module = "pcap_parallel._native")]
pub struct PacketIter {
    /// Borrows from `chunk` (declared first, so dropped first).
    packets: Packets<'static>,
    /// Where the chunk's records begin in memory.
    base: usize,
    /// Keeps the chunk alive while `packets` borrows from it.
    chunk: Py<PyChunk>,
}

impl PacketIter {
    fn new(chunk: Py<PyChunk>) -> PacketIter {
        // SAFETY: the chunk is a frozen Python object that never moves and
        // is never mutated; `self.chunk` holds a strong reference to it for
        // as long as `packets` exists (fields drop in declaration order, so
        // `packets` goes first).
        let lib: &'static LibChunk = unsafe { &*(&chunk.get().chunk as *const LibChunk) };
        PacketIter {
            base: lib.raw_bytes().as_ptr() as usize,
            packets: lib.packets(),
            chunk,
        }
    }
}

#[pymethods]
impl PacketIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(mut slf: PyRefMut<'_, Self>) -> PyResult<Option<PyPacket>> {
        let py = slf.py();
        let Some(p) = slf.packets.next() else {
            // The packets handed out came from zeros if the file shrank.
            slf.chunk.get().check_unchanged(py)?;
            return Ok(None);
        };
        Ok(Some(PyPacket {
            chunk: slf.chunk.clone_ref(py),
            start: p.data.as_ptr() as usize - slf.base,
            cap_len: p.data.len(),
            number: p.number,
            offset: p.offset,
            ts: p.timestamp.map(|t| t.as_nanos()),
            len: p.original_len,
            link_type: p.link_type.0,
            interface_id: p.interface_id,
        }))
    }
}

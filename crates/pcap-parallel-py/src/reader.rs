//! A capture file's decompressed bytes, for `PCAPParallel.open_maybe_compressed`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::IntoPy;

/// The decompressed bytes of a file (gzip, bzip2, xz, zstd, lz4 or plain,
/// told by magic bytes), read sequentially.
#[pyclass(frozen, module = "pcap_parallel._native")]
pub struct DecompressedReader {
    reader: Mutex<Option<Box<dyn Read + Send>>>,
    /// The compression found: none, gzip, bzip2, xz, zstd or lz4.
    #[pyo3(get)]
    compression: &'static str,
    name: String,
}

#[pymethods]
impl DecompressedReader {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<DecompressedReader> {
        let (compression, reader) = pcap_parallel::reader::open_decompressed(&path).py_err(py)?;
        Ok(DecompressedReader {
            reader: Mutex::new(Some(reader)),
            compression: compression.name(),
            name: path.display().to_string(),
        })
    }

    /// Up to `n` bytes (fewer only at the end); b"" at the end.
    fn read<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(n.min(1 << 24));
        let result = py.detach(|| {
            let mut guard = self.reader.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(r) => r.take(n as u64).read_to_end(&mut out).map(|_| ()),
                None => Err(std::io::Error::other("read from a closed file")),
            }
        });
        result.map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{}: {e}", self.name)))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Releases the file.
    fn close(&self) {
        self.reader.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

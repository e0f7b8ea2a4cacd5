//! The library's errors as Python exceptions.
//!
//! The exception classes live in `pcap_parallel.errors` (Python, so that
//! they can also be `ValueError`s where the original package raised those);
//! each carries `file`, `offset` and `packet` attributes where the error
//! knows them.

use pcap_parallel::Error;
use pcap_parallel::InputsError;
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;

/// Raises the `pcap_parallel.errors` class `class` with `message` and the
/// location attributes.
fn raise(
    py: Python<'_>,
    class: &str,
    message: String,
    file: Option<String>,
    offset: Option<u64>,
    packet: Option<u64>,
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let module = py.import("pcap_parallel.errors")?;
        let exc = module.getattr(class)?.call1((message.clone(),))?;
        exc.setattr("file", file)?;
        exc.setattr("offset", offset)?;
        exc.setattr("packet", packet)?;
        Ok(PyErr::from_value(exc))
    })();
    made.unwrap_or_else(|e| e)
}

/// Converts a library error.
pub(crate) fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Io { name, error } => match error.kind() {
            std::io::ErrorKind::NotFound => {
                PyFileNotFoundError::new_err((2, error.to_string(), name))
            }
            _ => PyOSError::new_err((error.raw_os_error().unwrap_or(0), message, name)),
        },
        Error::UnknownFormat { name, .. } => {
            raise(py, "UnknownFormatError", message, Some(name), None, None)
        }
        Error::Format(f) => raise(
            py,
            "FormatError",
            message,
            Some(f.name),
            Some(f.offset),
            Some(f.packet),
        ),
        Error::Decompress { name, offset, .. } => raise(
            py,
            "DecompressError",
            message,
            Some(name),
            Some(offset),
            None,
        ),
        Error::Filter(_) => raise(py, "FilterError", message, None, None, None),
        Error::Inputs(InputsError::NoMatch { pattern }) => {
            PyFileNotFoundError::new_err((2, "no file matches", pattern))
        }
        Error::Inputs(_) => PyValueError::new_err(message),
        Error::Cancelled => PyKeyboardInterrupt::new_err("cancelled"),
        Error::Chunk(c) => raise(py, "CaptureError", message, None, Some(c.range.start), None),
        Error::Locator(pcap_parallel::locator::LocatorError::Changed { name, start, .. }) => {
            raise(py, "CaptureError", message, Some(name), Some(start), None)
        }
        _ => raise(py, "CaptureError", message, None, None, None),
    }
}

/// `Result<T, Error>` to `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

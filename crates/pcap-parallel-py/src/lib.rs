//! `pcap_parallel._native`: the Rust library, seen from Python.
//!
//! The Python package `pcap_parallel` (in `python/`) builds its API on these
//! classes and functions; see its docstrings for the user's view. Nothing
//! here parses packets itself: everything is the library's.

mod chunk;
mod drive;
mod errors;
mod locator;
mod partition;
mod reader;
mod runs;
mod source;
mod stream;
mod table;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<source::Opener>()?;
    m.add_class::<chunk::PyChunk>()?;
    m.add_class::<chunk::PyPacket>()?;
    m.add_class::<chunk::PacketIter>()?;
    m.add_class::<locator::Locator>()?;
    m.add_class::<stream::ChunkStream>()?;
    m.add_class::<reader::DecompressedReader>()?;
    m.add_class::<partition::PyPartitionRead>()?;
    m.add_class::<partition::PyVerifier>()?;
    m.add_function(wrap_pyfunction!(partition::read_partition, m)?)?;
    m.add_function(wrap_pyfunction!(partition::partition_ranges, m)?)?;
    m.add_function(wrap_pyfunction!(partition::detect_format, m)?)?;
    m.add("DETECT_LEN", partition::DETECT_LEN)?;
    m.add(
        "CONTEXT_GIVEN",
        pyo3::types::PyBytes::new(m.py(), partition::GIVEN),
    )?;
    m.add_class::<table::TableStream>()?;
    m.add_function(wrap_pyfunction!(runs::info, m)?)?;
    m.add_function(wrap_pyfunction!(runs::top, m)?)?;
    m.add_function(wrap_pyfunction!(runs::count, m)?)?;
    m.add_function(wrap_pyfunction!(runs::split, m)?)?;
    m.add_function(wrap_pyfunction!(runs::write_flows, m)?)?;
    m.add_function(wrap_pyfunction!(table::write_table, m)?)?;
    m.add_function(wrap_pyfunction!(table::table_schema, m)?)?;
    m.add("default_workers", pcap_parallel::default_workers())?;
    m.add("max_workers", source::max_workers())?;
    Ok(())
}

//! The error type.

/// What can go wrong while building or writing a packet table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Reading the capture failed (a broken input after the rows before the
    /// fault, a chunk whose work panicked, cancellation...).
    #[error(transparent)]
    Capture(#[from] pcap_parallel::Error),
    /// Building or encoding Arrow data failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Encoding Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Writing the output failed.
    #[error("writing the table: {0}")]
    Io(#[from] std::io::Error),
    /// A column name that is not one of the table's.
    #[error("unknown column {0:?} (the columns: {columns})", columns = crate::Column::ALL.map(|c| c.name()).join(", "))]
    UnknownColumn(String),
    /// The consumer of a streamed table went away.
    #[error("the table's reader was dropped")]
    ReaderGone,
}

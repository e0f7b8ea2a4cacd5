//! Writing a packet table: Parquet, Arrow IPC (file or stream), CSV, NDJSON.
//!
//! The expensive part of every format is done on the workers, chunk by
//! chunk: a chunk's batch is encoded there into a complete Parquet row
//! group (compressed column chunks), or formatted as CSV or NDJSON text.
//! The calling thread only appends the encoded pieces in file order, as
//! they come, so the output is streamed: never the whole table in memory,
//! and a Parquet row group per chunk (`Split` sets their size).

use std::io::Write;
use std::path::Path;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_ipc::writer::{FileWriter, StreamWriter};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding, GzipLevel, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::{ColumnDescPtr, ColumnPath};
use pcap_parallel::Report;
use pcap_parallel::output::{IfExists, write_atomically};

use crate::error::TableError;
use crate::schema::Column;
use crate::small_dict;
use crate::table::PacketTable;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet, one row group per chunk.
    Parquet(ParquetCompression),
    /// The Arrow IPC file format (Feather v2): random access, a footer.
    ArrowFile,
    /// The Arrow IPC stream format: for pipes.
    ArrowStream,
    /// Comma-separated values with a header line; timestamps in RFC 3339
    /// (UTC, nanoseconds), binary columns in hexadecimal.
    Csv,
    /// One JSON object per line, nulls written out, times as in CSV.
    Ndjson,
}

impl Format {
    /// Parquet with zstd.
    pub const PARQUET: Format = Format::Parquet(ParquetCompression::Zstd);

    /// The format a file name suggests: `.parquet`, `.arrow`/`.feather`/`.ipc`
    /// (IPC file), `.arrows` (IPC stream), `.csv`, `.ndjson`/`.jsonl`.
    ///
    /// ```
    /// use pcap_parallel_arrow::Format;
    /// assert_eq!(Format::from_path("t.parquet".as_ref()), Some(Format::PARQUET));
    /// assert_eq!(Format::from_path("t.jsonl".as_ref()), Some(Format::Ndjson));
    /// assert_eq!(Format::from_path("t".as_ref()), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "parquet" | "pq" => Format::PARQUET,
            "arrow" | "feather" | "ipc" => Format::ArrowFile,
            "arrows" => Format::ArrowStream,
            "csv" => Format::Csv,
            "ndjson" | "jsonl" => Format::Ndjson,
            _ => return None,
        })
    }
}

/// Compression of Parquet column chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetCompression {
    /// Zstandard, level 3 (the default).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// LZ4 (the raw LZ4 codec of recent Parquet).
    Lz4,
    /// gzip, level 6.
    Gzip,
    /// None.
    None,
}

impl ParquetCompression {
    fn codec(self) -> Compression {
        match self {
            ParquetCompression::Zstd => {
                Compression::ZSTD(ZstdLevel::try_new(1).expect("a valid level"))
            }
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Lz4 => Compression::LZ4_RAW,
            ParquetCompression::Gzip => {
                Compression::GZIP(GzipLevel::try_new(6).expect("a valid level"))
            }
            ParquetCompression::None => Compression::UNCOMPRESSED,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Rows.
    pub rows: u64,
    /// Record batches (Parquet: row groups).
    pub batches: u64,
}

impl PacketTable {
    /// Writes the table to `out` in `format`, streaming: pieces are written
    /// as chunks finish, in file order. A broken input leaves a complete,
    /// valid output of the rows before the fault (the report holds the
    /// error); a failure to encode or write is the result's error (and the
    /// output is then incomplete: write to a temporary file and rename it,
    /// as `pcap_parallel::output::write_atomically` does).
    pub fn write<W: Write + Send>(
        self,
        format: Format,
        out: W,
    ) -> (Result<Written, TableError>, Report) {
        match format {
            Format::Parquet(c) => write_parquet(self, c, out),
            Format::ArrowFile => write_ipc(self, out, IpcKind::File),
            Format::ArrowStream => write_ipc(self, out, IpcKind::Stream),
            Format::Csv => write_text(self, out, Text::Csv),
            Format::Ndjson => write_text(self, out, Text::Ndjson),
        }
    }
}

impl PacketTable {
    /// Writes the table to the file `path` atomically: under a temporary
    /// name beside it, renamed to `path` when complete. A broken input gives
    /// a complete file of the rows before the fault (the report holds the
    /// error); a run that was cancelled, whose filter does not suit the
    /// capture, or whose writing failed leaves no file and `path` as it was.
    ///
    /// ```
    /// use pcap_parallel::Capture;
    /// use pcap_parallel::output::IfExists;
    /// use pcap_parallel_arrow::{Format, PacketTable};
    /// # let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
    /// let dir = tempfile::tempdir()?;
    /// let out = dir.path().join("sample.parquet");
    /// let table = PacketTable::new(Capture::open(sample)?);
    /// let (written, report) = table.write_file(Format::PARQUET, &out, IfExists::Fail);
    /// assert_eq!(written?.rows, 1000);
    /// assert!(report.input_error.is_none() && out.is_file());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_file(
        self,
        format: Format,
        path: &Path,
        if_exists: IfExists,
    ) -> (Result<Written, TableError>, Report) {
        let mut report = None;
        let written = write_atomically(path, if_exists, |file| {
            let (written, r) = self.write(format, std::io::BufWriter::with_capacity(1 << 20, file));
            // Interrupted, or a filter that does not suit the capture: no file.
            let cancelled = matches!(
                r.input_error,
                Some(pcap_parallel::Error::Cancelled | pcap_parallel::Error::Filter(_))
            );
            report = Some(r);
            match written {
                Ok(_) if cancelled => Err(std::io::Error::other("no table")),
                Ok(w) => Ok(Ok(w)),
                // Nothing is left under the name: the temporary file goes.
                Err(e) => Err(std::io::Error::other(e)),
            }
        });
        let written = match written {
            Ok(w) => w,
            Err(e) => Err(match e.downcast::<TableError>() {
                Ok(t) => t,
                Err(e) => TableError::Io(e),
            }),
        };
        (written, report.unwrap_or_else(|| Report::empty(None)))
    }
}

/// Runs `table`, handing each chunk's encoded piece to `append` (which
/// says how many batches or row groups it wrote), counting.
fn stream<R: Send>(
    table: PacketTable,
    encode: impl Fn(usize, Vec<RecordBatch>) -> Result<R, TableError> + Sync,
    mut append: impl FnMut(R) -> Result<u64, TableError>,
) -> (Result<Written, TableError>, Report) {
    let mut written = Written::default();
    let (result, report) = table.run(encode, |piece, rows| {
        written.batches += append(piece)?;
        written.rows += rows as u64;
        Ok(())
    });
    (result.map(|()| written), report)
}

fn write_parquet<W: Write + Send>(
    table: PacketTable,
    compression: ParquetCompression,
    out: W,
) -> (Result<Written, TableError>, Report) {
    // Addresses as text come from the workers as dictionaries (each
    // distinct one formatted once), which small_dict writes as they are.
    let table = table.text_dictionary();
    let schema = table.schema();
    let encodings: Vec<ColumnEncoding> = schema
        .fields()
        .iter()
        .zip(table.batch_schema().fields())
        .map(|(field, built)| ColumnEncoding::of(field, built.data_type()))
        .collect();
    let props = parquet_properties(compression, &schema, &encodings);
    let started = ArrowWriter::try_new(out, schema.clone(), Some(props))
        .and_then(ArrowWriter::into_serialized_writer);
    let (mut file, factory) = match started {
        Ok(x) => x,
        Err(e) => return (Err(e.into()), Report::empty(None)),
    };
    let columns: Vec<Leaf> = file
        .schema_descr()
        .columns()
        .iter()
        .zip(&encodings)
        .map(|(descr, &encoding)| Leaf {
            descr: descr.clone(),
            compression: file.properties().compression(descr.path()),
            encoding,
        })
        .collect();
    let (factory, columns) = (&factory, &columns);
    let (result, report) = stream(
        table,
        |index, batches| encode_row_group(factory, columns, index, &batches),
        |chunks| {
            let mut group = file.next_row_group()?;
            for chunk in chunks {
                match chunk {
                    Piece::Arrow(chunk) => chunk.append_to_row_group(&mut group)?,
                    Piece::Own(bytes, close) => group.append_column(&bytes, close)?,
                }
            }
            group.close()?;
            Ok(1)
        },
    );
    let result = result.and_then(|w| {
        file.finish()?;
        Ok(w)
    });
    (result, report)
}

/// How a Parquet column is encoded. Dictionary encoding (Parquet's
/// default) suits columns with many repeated values among many possible
/// ones (lengths, addresses, ports, protocols, VLAN ids); elsewhere it
/// costs a hash and a comparison per value and pays nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnEncoding {
    /// Numbers and times rise steadily: `DELTA_BINARY_PACKED`.
    Delta,
    /// Flow ids, IP ids and packet bytes take a new value in nearly every
    /// row (a dictionary as large as the data), interface ids one value
    /// in long runs: `PLAIN`.
    Plain,
    /// The `parquet` crate's dictionary encoding (addresses as 16 bytes).
    Dictionary,
    /// The other integer columns (lengths, link type, VLAN, IP version,
    /// protocol, TTL, IP flags, fragment offset, ports, TCP flags) and
    /// addresses as text: dictionary-encoded by `small_dict`, in the same
    /// layout as the `parquet` crate's dictionaries, at a fraction of the
    /// cost.
    OwnDictionary,
}

impl ColumnEncoding {
    /// The encoding of `field`, whose workers' batches hold `built`.
    fn of(field: &Field, built: &DataType) -> ColumnEncoding {
        match field.name().parse::<Column>() {
            Ok(Column::FrameNumber | Column::Ts) => ColumnEncoding::Delta,
            Ok(Column::FlowId | Column::IpId | Column::Data | Column::InterfaceId) => {
                ColumnEncoding::Plain
            }
            _ if small_dict::encodes(built) => ColumnEncoding::OwnDictionary,
            _ => ColumnEncoding::Dictionary,
        }
    }
}

/// What the workers need to know of a column to encode it.
struct Leaf {
    descr: ColumnDescPtr,
    compression: Compression,
    encoding: ColumnEncoding,
}

/// A column chunk encoded on a worker.
enum Piece {
    /// By the `parquet` crate.
    Arrow(ArrowColumnChunk),
    /// By `small_dict`: its bytes, and its metadata.
    Own(Bytes, ColumnCloseResult),
}

/// The writer properties: each column's encoding (`encodings`, one per
/// field of `schema`); addresses get no min/max statistics.
fn parquet_properties(
    compression: ParquetCompression,
    schema: &Schema,
    encodings: &[ColumnEncoding],
) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_write_batch_size(8192)
        .set_compression(compression.codec())
        .set_created_by(format!("pcap-parallel {}", env!("CARGO_PKG_VERSION")));
    for (field, encoding) in schema.fields().iter().zip(encodings) {
        let path = ColumnPath::from(field.name().as_str());
        let encoding = match encoding {
            ColumnEncoding::Delta => Some(Encoding::DELTA_BINARY_PACKED),
            ColumnEncoding::Plain => Some(Encoding::PLAIN),
            ColumnEncoding::Dictionary | ColumnEncoding::OwnDictionary => None,
        };
        if matches!(
            field.name().parse::<Column>(),
            Ok(Column::SrcIp | Column::DstIp)
        ) {
            // The smallest and largest address as text prune nothing, and
            // comparing strings is a third of their encoding's cost.
            props = props.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        }
        if let Some(encoding) = encoding {
            props = props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, encoding);
        }
    }
    props.build()
}

/// Encodes a chunk's batches into the compressed column chunks of one row
/// group.
fn encode_row_group(
    factory: &ArrowRowGroupWriterFactory,
    columns: &[Leaf],
    index: usize,
    batches: &[RecordBatch],
) -> Result<Vec<Piece>, TableError> {
    let writers = factory.create_column_writers(index)?;
    let mut pieces = Vec::with_capacity(columns.len());
    for (c, (mut writer, leaf)) in writers.into_iter().zip(columns).enumerate() {
        if leaf.encoding == ColumnEncoding::OwnDictionary {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            let (bytes, close) = small_dict::encode(&arrays, leaf.descr.clone(), leaf.compression)?;
            pieces.push(Piece::Own(bytes, close));
            continue;
        }
        for batch in batches {
            for leaf in compute_leaves(batch.schema_ref().field(c), batch.column(c))? {
                writer.write(&leaf)?;
            }
        }
        pieces.push(Piece::Arrow(writer.close()?));
    }
    Ok(pieces)
}

enum IpcKind {
    File,
    Stream,
}

fn write_ipc<W: Write + Send>(
    table: PacketTable,
    out: W,
    kind: IpcKind,
) -> (Result<Written, TableError>, Report) {
    let schema = table.schema();
    enum Ipc<W: Write> {
        File(FileWriter<W>),
        Stream(StreamWriter<W>),
    }
    let started = match kind {
        IpcKind::File => FileWriter::try_new_buffered(out, &schema).map(Ipc::File),
        IpcKind::Stream => StreamWriter::try_new_buffered(out, &schema).map(Ipc::Stream),
    };
    let mut w = match started {
        Ok(w) => w,
        Err(e) => return (Err(e.into()), Report::empty(None)),
    };
    let (result, report) = stream(
        table,
        |_, batches| Ok(batches),
        |batches| {
            for batch in &batches {
                match &mut w {
                    Ipc::File(w) => w.write(batch)?,
                    Ipc::Stream(w) => w.write(batch)?,
                }
            }
            Ok(batches.len() as u64)
        },
    );
    let result = result.and_then(|written| {
        match &mut w {
            Ipc::File(w) => w.finish()?,
            Ipc::Stream(w) => w.finish()?,
        }
        match w {
            Ipc::File(w) => w.into_inner()?.flush()?,
            Ipc::Stream(w) => w.into_inner()?.flush()?,
        }
        Ok(written)
    });
    (result, report)
}

/// How CSV and NDJSON write times: RFC 3339, UTC, nanoseconds.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.9fZ";

enum Text {
    Csv,
    Ndjson,
}

fn write_text<W: Write + Send>(
    table: PacketTable,
    out: W,
    kind: Text,
) -> (Result<Written, TableError>, Report) {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    if matches!(kind, Text::Csv) {
        let names: Vec<String> = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if let Err(e) = writeln!(out, "{}", names.join(",")) {
            return (Err(e.into()), Report::empty(None));
        }
    }
    let (result, report) = stream(
        table,
        |_, batches| {
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let mut text = Vec::with_capacity(rows * 128);
            for batch in &batches {
                let batch = utc_as_offset(batch.clone())?;
                match kind {
                    Text::Csv => arrow_csv::WriterBuilder::new()
                        .with_header(false)
                        .with_timestamp_tz_format(TIME_FORMAT.into())
                        .build(&mut text)
                        .write(&batch)?,
                    Text::Ndjson => {
                        let mut w = arrow_json::WriterBuilder::new()
                            .with_explicit_nulls(true)
                            .with_timestamp_tz_format(TIME_FORMAT.into())
                            .build::<_, arrow_json::writer::LineDelimited>(&mut text);
                        w.write(&batch)?;
                        w.finish()?;
                    }
                }
            }
            Ok((text, batches.len() as u64))
        },
        |(text, batches)| {
            out.write_all(&text)?;
            Ok(batches)
        },
    );
    let result = result.and_then(|written| {
        out.flush()?;
        Ok(written)
    });
    (result, report)
}

/// The batch with its timestamps' zone named `+00:00` rather than `UTC`
/// (the same instants): the CSV and JSON writers format named zones only
/// with the IANA database compiled in, offsets without it.
fn utc_as_offset(batch: RecordBatch) -> Result<RecordBatch, TableError> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        match column.as_primitive_opt::<TimestampNanosecondType>() {
            Some(ts) => {
                let ts = ts.clone().with_timezone("+00:00");
                fields.push(
                    field
                        .as_ref()
                        .clone()
                        .with_data_type(ts.data_type().clone()),
                );
                columns.push(Arc::new(ts) as ArrayRef);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

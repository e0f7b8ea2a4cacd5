//! Parquet dictionary encoding of the columns of few distinct values
//! (integers, and addresses as text), without hashing every value.
//!
//! The `parquet` crate dictionary-encodes a value by hashing its bytes and
//! comparing them with the entry found, a general method that costs about
//! 10 ns an integer and more for a string: with a dozen such columns, a
//! third of the time a packet takes to reach a Parquet file. This module
//! builds those columns' chunks itself, in the layout `parquet` writes (a
//! PLAIN dictionary page, then data pages v1 of `RLE_DICTIONARY` indices
//! behind RLE definition levels, each page compressed with the column's
//! codec), and hands them to the row group as already-encoded chunks.
//! Readers cannot tell the difference.
//!
//! - An integer below 2^16 (every `uint8` and `uint16`, and nearly every
//!   length of a `uint32` column) indexes a table; a larger one a hash map.
//! - Addresses arrive already as a dictionary per batch (the builder
//!   formats each distinct address once: `dictionary<uint32, utf8>`); the
//!   batches' dictionaries are merged, a hash per distinct string.
//!
//! Indices and levels use Parquet's RLE/bit-packing hybrid: runs of at
//! least eight equal values as RLE runs, the rest bit-packed eight at a
//! time.

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt8Type, UInt16Type, UInt32Type};
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer};
use arrow_schema::DataType;
use bytes::Bytes;
use hashbrown::HashMap;
use parquet::basic::{Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::compression::{Codec, CodecOptions, create_codec};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Rows per data page (the `parquet` crate's default limit).
const PAGE_ROWS: usize = 20_000;

/// The types this module encodes: `uint8`, `uint16`, `uint32`, and
/// `dictionary<uint32, utf8>`.
pub(crate) fn encodes(data_type: &DataType) -> bool {
    match data_type {
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => true,
        DataType::Dictionary(k, v) => **k == DataType::UInt32 && **v == DataType::Utf8,
        _ => false,
    }
}

/// A column chunk's distinct values, in order of first appearance.
enum Values<'a> {
    /// Integers, written as Parquet `INT32` (unsigned logical types).
    Int(Vec<u32>),
    /// Strings (in the batches' dictionaries), written as `BYTE_ARRAY`.
    Text(Vec<&'a [u8]>),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// PLAIN encoding, as the dictionary page holds it.
    fn plain(&self) -> Vec<u8> {
        match self {
            Values::Int(v) => v.iter().flat_map(|&v| v.to_le_bytes()).collect(),
            Values::Text(v) => {
                let mut out = Vec::with_capacity(v.iter().map(|s| 4 + s.len()).sum());
                for s in v {
                    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    out.extend_from_slice(s);
                }
                out
            }
        }
    }

    /// The chunk's statistics: min and max of integers (compared unsigned,
    /// stored as `INT32` bits, as the logical type says); of strings none
    /// (the smallest and largest address as text prune nothing).
    fn statistics(&self, nulls: u64) -> Statistics {
        match self {
            Values::Int(v) => {
                let min = v.iter().min().map(|&m| m as i32);
                let max = v.iter().max().map(|&m| m as i32);
                Statistics::int32(min, max, None, Some(nulls), false)
            }
            Values::Text(_) => Statistics::byte_array(None, None, None, Some(nulls), false),
        }
    }
}

/// One column chunk's values as dictionary indices, and its dictionary.
struct Dictionary<'a> {
    values: Values<'a>,
    /// Per non-null row, the index of its value in `values`.
    indices: Vec<u32>,
}

impl<'a> Dictionary<'a> {
    /// The dictionary of `arrays` (of one of the types of [`encodes`]),
    /// one after another.
    fn build(arrays: &[&'a dyn Array]) -> Dictionary<'a> {
        let rows = arrays.iter().map(|a| a.len() - a.null_count()).sum();
        let mut ints = match arrays.first().map(|a| a.data_type()) {
            Some(DataType::Dictionary(..)) => return Self::of_text(arrays, rows),
            Some(DataType::UInt8) => Ints::new(1 << 8, rows),
            _ => Ints::new(1 << 16, rows),
        };
        for a in arrays {
            match a.data_type() {
                DataType::UInt8 => ints.add::<UInt8Type>(*a),
                DataType::UInt16 => ints.add::<UInt16Type>(*a),
                _ => ints.add::<UInt32Type>(*a),
            }
        }
        Dictionary {
            values: Values::Int(ints.values),
            indices: ints.indices,
        }
    }

    /// Merges the batches' dictionaries of strings into one.
    fn of_text(arrays: &[&'a dyn Array], rows: usize) -> Dictionary<'a> {
        let mut index: HashMap<&[u8], u32> = HashMap::new();
        let mut distinct = Vec::new();
        let mut indices = Vec::with_capacity(rows);
        for a in arrays {
            let d = a.as_dictionary::<UInt32Type>();
            let strings = d.values().as_string::<i32>();
            let to_merged: Vec<u32> = (0..strings.len())
                .map(|i| {
                    let s = strings.value(i).as_bytes();
                    *index.entry(s).or_insert_with(|| {
                        distinct.push(s);
                        distinct.len() as u32 - 1
                    })
                })
                .collect();
            let keys = d.keys().values();
            match d.nulls() {
                Some(n) => indices.extend(n.valid_indices().map(|i| to_merged[keys[i] as usize])),
                None => indices.extend(keys.iter().map(|&k| to_merged[k as usize])),
            }
        }
        Dictionary {
            values: Values::Text(distinct),
            indices,
        }
    }

    /// Bits an index takes.
    fn bit_width(&self) -> u8 {
        (u32::BITS - (self.values.len().max(1) as u32 - 1).leading_zeros()) as u8
    }
}

/// Integers being indexed: a value below the table's span (2^8 for
/// `uint8`, else 2^16) through the table, a larger one through a hash map.
struct Ints {
    slot: Vec<u32>,
    large: HashMap<u32, u32>,
    values: Vec<u32>,
    indices: Vec<u32>,
}

impl Ints {
    fn new(span: usize, rows: usize) -> Ints {
        Ints {
            slot: vec![u32::MAX; span],
            large: HashMap::new(),
            values: Vec::new(),
            indices: Vec::with_capacity(rows),
        }
    }

    fn add<T: ArrowPrimitiveType>(&mut self, array: &dyn Array)
    where
        T::Native: Into<u32>,
    {
        let values = array.as_primitive::<T>().values();
        match array.nulls() {
            Some(nulls) => nulls
                .valid_indices()
                .for_each(|i| self.push(values[i].into())),
            None => values.iter().for_each(|&v| self.push(v.into())),
        }
    }

    #[inline(always)]
    fn push(&mut self, v: u32) {
        let next = self.values.len() as u32;
        let s = match self.slot.get_mut(v as usize) {
            Some(s) => s,
            None => self.large.entry(v).or_insert(u32::MAX),
        };
        if *s == u32::MAX {
            *s = next;
            self.values.push(v);
        }
        self.indices.push(*s);
    }
}

/// The validity of `arrays` one after another (none if all are valid).
fn nulls_of(arrays: &[&dyn Array]) -> Option<NullBuffer> {
    match arrays {
        [one] => one.nulls().cloned(),
        _ if arrays.iter().all(|a| a.null_count() == 0) => None,
        _ => {
            let mut bits = BooleanBufferBuilder::new(arrays.iter().map(|a| a.len()).sum());
            for a in arrays {
                match a.nulls() {
                    Some(n) => bits.append_buffer(n.inner()),
                    None => bits.append_n(a.len(), true),
                }
            }
            Some(NullBuffer::new(bits.finish()))
        }
    }
}

/// Encodes `arrays` (one after another, of one of the types of
/// [`encodes`]: the caller's promise; another panics) as the column chunk
/// `descr`, compressed with `compression`: its bytes, and what the row
/// group needs to append it. A chunk of nulls only has no dictionary, and
/// data pages of levels only.
pub(crate) fn encode(
    arrays: &[&dyn Array],
    descr: ColumnDescPtr,
    compression: Compression,
) -> Result<(Bytes, ColumnCloseResult)> {
    let dict = Dictionary::build(arrays);
    let len: usize = arrays.iter().map(|a| a.len()).sum();
    let nulls = nulls_of(arrays);
    let mut chunk = Chunk::new(compression)?;
    let dictionary_page = match dict.values.len() {
        0 => None,
        _ => Some(chunk.dictionary_page(&dict.values)?),
    };
    let nullable = descr.max_def_level() > 0;
    let (mut start, mut done, mut first_data_page) = (0, 0, None);
    while start < len {
        let rows = PAGE_ROWS.min(len - start);
        let mut raw = Vec::with_capacity(rows + 16);
        if nullable {
            let levels = def_levels(nulls.as_ref(), start, rows);
            raw.extend_from_slice(&(levels.len() as u32).to_le_bytes());
            raw.extend_from_slice(&levels);
        }
        let valid = rows
            - nulls
                .as_ref()
                .map_or(0, |n| n.slice(start, rows).null_count());
        if dictionary_page.is_some() {
            raw.push(dict.bit_width());
            hybrid(
                &dict.indices[done..done + valid],
                dict.bit_width(),
                &mut raw,
            );
        }
        let offset = chunk.data_page(raw, rows, dictionary_page.is_some())?;
        first_data_page.get_or_insert(offset);
        (start, done) = (start + rows, done + valid);
    }
    let encodings = match dictionary_page {
        Some(_) => vec![Encoding::RLE, Encoding::PLAIN, Encoding::RLE_DICTIONARY],
        None => vec![Encoding::RLE, Encoding::PLAIN],
    };
    let null_count = nulls.as_ref().map_or(0, |n| n.null_count()) as u64;
    let (compressed, uncompressed) = (chunk.compressed, chunk.uncompressed);
    let bytes = chunk.finish()?;
    let metadata = ColumnChunkMetaData::builder(descr)
        .set_compression(compression)
        .set_encodings(encodings)
        .set_num_values(len as i64)
        .set_total_compressed_size(compressed)
        .set_total_uncompressed_size(uncompressed)
        .set_dictionary_page_offset(dictionary_page)
        .set_data_page_offset(first_data_page.unwrap_or(0))
        .set_statistics(dict.values.statistics(null_count))
        .build()?;
    let close = ColumnCloseResult {
        bytes_written: bytes.len() as u64,
        rows_written: len as u64,
        metadata,
        bloom_filter: None,
        column_index: None,
        offset_index: None,
    };
    Ok((bytes, close))
}

/// A column chunk being written: its pages, compressed, with their headers.
struct Chunk {
    codec: Option<Box<dyn Codec>>,
    sink: TrackedWrite<Vec<u8>>,
    /// Bytes written, headers included.
    compressed: i64,
    /// Bytes written with every page uncompressed.
    uncompressed: i64,
}

impl Chunk {
    fn new(compression: Compression) -> Result<Chunk> {
        Ok(Chunk {
            codec: create_codec(compression, &CodecOptions::default())?,
            sink: TrackedWrite::new(Vec::new()),
            compressed: 0,
            uncompressed: 0,
        })
    }

    /// The dictionary's values, PLAIN; returns the page's offset.
    fn dictionary_page(&mut self, values: &Values) -> Result<i64> {
        let (buf, len) = self.compress(values.plain())?;
        self.write(CompressedPage::new(
            Page::DictionaryPage {
                buf,
                num_values: values.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            },
            len,
        ))
    }

    /// A data page v1 of `rows` rows whose levels and values are `raw`
    /// (values as dictionary indices, or none); returns its offset.
    fn data_page(&mut self, raw: Vec<u8>, rows: usize, indices: bool) -> Result<i64> {
        let (buf, len) = self.compress(raw)?;
        self.write(CompressedPage::new(
            Page::DataPage {
                buf,
                num_values: rows as u32,
                encoding: match indices {
                    true => Encoding::RLE_DICTIONARY,
                    false => Encoding::PLAIN,
                },
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            len,
        ))
    }

    fn compress(&mut self, raw: Vec<u8>) -> Result<(Bytes, usize)> {
        let len = raw.len();
        match self.codec.as_mut() {
            Some(c) => {
                let mut out = Vec::with_capacity(len / 2 + 64);
                c.compress(&raw, &mut out)?;
                Ok((out.into(), len))
            }
            None => Ok((raw.into(), len)),
        }
    }

    fn write(&mut self, page: CompressedPage) -> Result<i64> {
        let spec = SerializedPageWriter::new(&mut self.sink).write_page(page)?;
        self.compressed += spec.compressed_size as i64;
        self.uncompressed += spec.uncompressed_size as i64;
        Ok(spec.offset as i64)
    }

    fn finish(self) -> Result<Bytes> {
        let bytes = self
            .sink
            .into_inner()
            .map_err(|e| ParquetError::External(e.into()))?;
        Ok(bytes.into())
    }
}

/// The definition levels of rows `start..start + rows` (1 for a value, 0
/// for a null), RLE/bit-packed at bit width 1: the validity bits 64 at a
/// time, a word of all values or all nulls extending an RLE run, a mixed
/// word bit-packed as it is (both are least significant bit first).
fn def_levels(nulls: Option<&NullBuffer>, start: usize, rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows / 8 + 16);
    let Some(nulls) = nulls else {
        rle_run(&mut out, rows, 1, 1);
        return out;
    };
    let bits = nulls.inner().slice(start, rows);
    let chunks = bits.bit_chunks();
    let mut packed: Vec<u8> = Vec::with_capacity(64); // pending, whole words
    let mut run: Option<(u32, usize)> = None; // pending RLE run: level, words
    for word in chunks.iter() {
        let level = match word {
            0 => Some(0),
            u64::MAX => Some(1),
            _ => None,
        };
        match (level, &mut run) {
            (Some(l), Some((r, n))) if *r == l => *n += 1,
            (Some(l), _) => {
                flush_levels(&mut out, &mut packed, &mut run);
                run = Some((l, 1));
            }
            (None, _) => {
                if let Some((l, n)) = run.take() {
                    rle_run(&mut out, n * 64, l, 1);
                }
                packed.extend_from_slice(&word.to_le_bytes());
                if packed.len() == 64 {
                    packed_levels(&mut out, &packed, 512);
                    packed.clear();
                }
            }
        }
    }
    flush_levels(&mut out, &mut packed, &mut run);
    let tail = chunks.remainder_len();
    if tail > 0 {
        let word = chunks.remainder_bits().to_le_bytes();
        packed_levels(&mut out, &word[..tail.div_ceil(8)], tail);
    }
    out
}

/// Writes the pending packed words or RLE run of [`def_levels`].
fn flush_levels(out: &mut Vec<u8>, packed: &mut Vec<u8>, run: &mut Option<(u32, usize)>) {
    if !packed.is_empty() {
        packed_levels(out, packed, packed.len() * 8);
        packed.clear();
    }
    if let Some((l, n)) = run.take() {
        rle_run(out, n * 64, l, 1);
    }
}

/// One bit-packed run of `count` levels at bit width 1, already packed in
/// `bytes` (padded to a whole group of eight).
fn packed_levels(out: &mut Vec<u8>, bytes: &[u8], count: usize) {
    let groups = count.div_ceil(8);
    varint(out, ((groups as u64) << 1) | 1);
    out.extend_from_slice(&bytes[..groups]);
}

/// Appends `values` at `width` bits each in the RLE/bit-packing hybrid:
/// taken eight at a time (a group), a group of equal values starts an RLE
/// run as long as the value repeats, the other groups are bit-packed (the
/// last padded with zeros). The `parquet` crate's `RleEncoder` writes the
/// same bytes, a value at a time through a general bit writer: in this
/// function's place, `table` → Parquet took 1.06–1.10× the CPU
/// (2026-11-27).
fn hybrid(values: &[u32], width: u8, out: &mut Vec<u8>) {
    let mut packed_from = 0; // the first value not yet written
    let mut i = 0;
    while i + 8 <= values.len() {
        let v = values[i];
        if values[i + 1..i + 8].iter().all(|&w| w == v) {
            let run = 8 + values[i + 8..].iter().take_while(|&&w| w == v).count();
            bit_packed(&values[packed_from..i], width, out);
            rle_run(out, run, v, width);
            i += run;
            packed_from = i;
        } else {
            i += 8;
        }
    }
    bit_packed(&values[packed_from..], width, out);
}

/// One RLE run: `count` times `value`.
fn rle_run(out: &mut Vec<u8>, count: usize, value: u32, width: u8) {
    varint(out, (count as u64) << 1);
    let bytes = usize::from(width).div_ceil(8);
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

/// Bit-packed runs of `values` (none: nothing), the last padded to a group
/// of 8; at most 64 groups a run, as the `parquet` crate writes them.
fn bit_packed(values: &[u32], width: u8, out: &mut Vec<u8>) {
    for run in values.chunks(64 * 8) {
        bit_packed_run(run, width, out);
    }
}

fn bit_packed_run(values: &[u32], width: u8, out: &mut Vec<u8>) {
    let groups = values.len().div_ceil(8);
    varint(out, ((groups as u64) << 1) | 1);
    // Bits gather in a word, written out 32 at a time: eight values of
    // `width` bits make `width` bytes, so the run ends on a byte.
    let start = out.len();
    out.resize(start + groups * usize::from(width), 0);
    let packed = &mut out[start..];
    let padding = std::iter::repeat_n(0, groups * 8 - values.len());
    let (mut acc, mut bits, mut at) = (0u64, 0u32, 0usize);
    for v in values.iter().copied().chain(padding) {
        acc |= u64::from(v) << bits;
        bits += u32::from(width);
        if bits >= 32 {
            packed[at..at + 4].copy_from_slice(&(acc as u32).to_le_bytes());
            (acc, bits, at) = (acc >> 32, bits - 32, at + 4);
        }
    }
    let rest = (bits / 8) as usize;
    packed[at..at + rest].copy_from_slice(&acc.to_le_bytes()[..rest]);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, DictionaryArray, RecordBatch, StringArray, UInt8Array, UInt16Array, UInt32Array,
    };
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowSchemaConverter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::ZstdLevel;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;

    use super::*;

    /// A deterministic stream of pseudo-random numbers (xorshift).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Columns of `rows` rows that stress each part of the encoding: runs
    /// and no runs, across groups of eight, words of 64 and pages; one
    /// value, two, hundreds, all 65 536; no nulls, all nulls, some.
    fn columns(rows: usize) -> Vec<(&'static str, ArrayRef)> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut random = |m: u64| -> Vec<u64> { (0..rows).map(|_| rng.next() % m).collect() };
        let (few, many, coin, bursts) = (random(3), random(1 << 16), random(2), random(40));
        let runs: Vec<u16> = (0..rows).map(|i| ((i / 13) % 5) as u16).collect();
        let every: Vec<u16> = (0..rows).map(|i| (i * 7919 % 65_536) as u16).collect();
        let nulls_some = |i: usize| coin[i] == 1;
        let nulls_runs = |i: usize| bursts[i / 100 % rows] < 30 && i % 700 > 90;
        vec![
            (
                "constant",
                Arc::new(UInt16Array::from(vec![7u16; rows])) as ArrayRef,
            ),
            ("runs", Arc::new(UInt16Array::from(runs.clone()))),
            (
                "few, nulls",
                Arc::new(UInt8Array::from_iter(
                    (0..rows).map(|i| nulls_some(i).then_some(few[i] as u8)),
                )),
            ),
            (
                "many, null runs",
                Arc::new(UInt16Array::from_iter(
                    (0..rows).map(|i| nulls_runs(i).then_some(many[i] as u16)),
                )),
            ),
            ("every value", Arc::new(UInt16Array::from(every))),
            (
                "all null",
                Arc::new(UInt16Array::from_iter((0..rows).map(|_| None::<u16>))),
            ),
            (
                "runs, null runs",
                Arc::new(UInt16Array::from_iter(
                    (0..rows).map(|i| nulls_runs(i).then_some(runs[i])),
                )),
            ),
        ]
    }

    /// Writes `array` as the one column of a Parquet file with this
    /// module's encoder, and reads it back with the `parquet` crate.
    fn round_trip(array: &ArrayRef, compression: Compression) -> ArrayRef {
        round_trip_parts(&[array.as_ref()], compression).0
    }

    /// Writes `arrays`, one after another, as the one column chunk of a
    /// Parquet file with this module's encoder; reads it back with the
    /// `parquet` crate: the column, and the chunk's statistics.
    fn round_trip_parts(
        arrays: &[&dyn Array],
        compression: Compression,
    ) -> (ArrayRef, Option<Statistics>) {
        let nullable = arrays.iter().any(|a| a.null_count() > 0);
        let data_type = match arrays[0].data_type() {
            DataType::Dictionary(_, v) => v.as_ref().clone(),
            t => t.clone(),
        };
        let schema = Arc::new(Schema::new(vec![Field::new("c", data_type, nullable)]));
        let descr = ArrowSchemaConverter::new().convert(&schema).unwrap();
        let props = Arc::new(WriterProperties::builder().build());
        let mut out = Vec::new();
        let mut file = SerializedFileWriter::new(&mut out, descr.root_schema_ptr(), props).unwrap();
        let mut group = file.next_row_group().unwrap();
        let (bytes, close) = encode(arrays, descr.column(0), compression).unwrap();
        group.append_column(&bytes, close).unwrap();
        group.close().unwrap();
        file.close().unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(out)).unwrap();
        let stats = builder
            .metadata()
            .row_group(0)
            .column(0)
            .statistics()
            .cloned();
        let batches: Vec<RecordBatch> = builder.build().unwrap().collect::<Result<_, _>>().unwrap();
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(0).as_ref()).collect();
        (arrow_select::concat::concat(&parts).unwrap(), stats)
    }

    #[test]
    fn lengths_of_any_size_read_back_with_unsigned_statistics() {
        let rows = PAGE_ROWS + 777;
        let mut rng = Rng(7);
        // Mostly small lengths; some past the table (2^16), past i32.
        let values: Vec<Option<u32>> = (0..rows)
            .map(|i| match rng.next() % 10 {
                0 => None,
                1 => Some(70_000 + (i as u32 % 5)),
                2 if i % 3 == 0 => Some(u32::MAX - (i as u32 % 2)),
                _ => Some(60 + (rng.next() % 1400) as u32),
            })
            .collect();
        let array: ArrayRef = Arc::new(UInt32Array::from(values.clone()));
        let (first, second) = (array.slice(0, 5_000), array.slice(5_000, rows - 5_000));
        let (back, stats) =
            round_trip_parts(&[first.as_ref(), second.as_ref()], Compression::SNAPPY);
        assert_eq!(back.as_ref(), array.as_ref());
        let Some(Statistics::Int32(s)) = stats else {
            panic!("int32 statistics expected, got {stats:?}")
        };
        let present = values.iter().flatten();
        assert_eq!(
            *s.min_opt().unwrap() as u32,
            *present.clone().min().unwrap()
        );
        assert_eq!(*s.max_opt().unwrap() as u32, u32::MAX);
        assert_eq!(
            s.null_count_opt(),
            Some(values.iter().filter(|v| v.is_none()).count() as u64)
        );
    }

    /// Indices wider than 16 bits: 100 000 distinct values.
    #[test]
    fn wide_indices_read_back() {
        let array: ArrayRef = Arc::new(UInt32Array::from_iter_values(
            (0..100_000u32).map(|i| i.wrapping_mul(2_654_435_761) >> 7),
        ));
        assert_eq!(
            round_trip(&array, Compression::UNCOMPRESSED).as_ref(),
            array.as_ref()
        );
    }

    /// A batch's addresses as `dictionary<uint32, utf8>`.
    fn text_dictionary(keys: Vec<Option<u32>>, values: &[&str]) -> DictionaryArray<UInt32Type> {
        DictionaryArray::try_new(
            UInt32Array::from(keys),
            Arc::new(StringArray::from(values.to_vec())),
        )
        .unwrap()
    }

    #[test]
    fn text_dictionaries_of_several_batches_merge() {
        let a = text_dictionary(
            (0..30_000).map(|i| (i % 7 != 0).then_some(i % 3)).collect(),
            &["10.0.0.1", "2001:db8::1", "192.168.1.200"],
        );
        // The same strings in another order, new ones, one unused.
        let b = text_dictionary(
            (0..9_000).map(|i| Some([0, 2, 3][i % 3])).collect(),
            &["192.168.1.200", "unused", "10.0.0.1", "fe80::1"],
        );
        let nothing = text_dictionary(vec![None; 100], &[]);
        let parts: [&dyn Array; 4] = [&a, &nothing, &b, &nothing];
        let (back, stats) = round_trip_parts(&parts, Compression::ZSTD(ZstdLevel::default()));
        let strings = |d: &DictionaryArray<UInt32Type>| -> Vec<Option<String>> {
            let values = d.values().as_string::<i32>();
            d.keys()
                .iter()
                .map(|k| k.map(|k| values.value(k as usize).to_string()))
                .collect()
        };
        let expected: Vec<Option<String>> = [&a, &nothing, &b, &nothing]
            .into_iter()
            .flat_map(strings)
            .collect();
        let back: Vec<Option<String>> = back
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect();
        assert_eq!(back, expected);
        let nulls = expected.iter().filter(|s| s.is_none()).count() as u64;
        assert_eq!(stats.unwrap().null_count_opt(), Some(nulls));
    }

    #[test]
    fn every_column_reads_back_as_written() {
        let zstd = Compression::ZSTD(ZstdLevel::default());
        // Whole pages and a part; a column shorter than a group of eight.
        for rows in [2 * PAGE_ROWS + 4_321, 5] {
            for (name, array) in columns(rows) {
                for compression in [zstd, Compression::UNCOMPRESSED] {
                    let back = round_trip(&array, compression);
                    assert_eq!(back.as_ref(), array.as_ref(), "{name}, {rows} rows");
                }
            }
        }
    }

    #[test]
    fn runs_are_rle_and_the_rest_bit_packed() {
        let mut out = Vec::new();
        // 3 bit-packed groups (the last padded), at bit width 2.
        hybrid(
            &[1, 2, 3, 0, 1, 2, 3, 0, 1, 1, 1, 1, 1, 1, 1, 2, 3],
            2,
            &mut out,
        );
        assert_eq!(out[0], (3 << 1) | 1);
        assert_eq!(out.len(), 1 + 3 * 2);
        // A run of 20 after one group: the group packed, then the run.
        out.clear();
        let values: Vec<u32> = (0..8).chain([5; 20]).collect();
        hybrid(&values, 3, &mut out);
        assert_eq!(out[0], (1 << 1) | 1);
        assert_eq!(&out[1 + 3..], &[20 << 1, 5]);
    }
}

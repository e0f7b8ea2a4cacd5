//! Building one chunk's record batches, on the worker that holds the chunk.
//!
//! Packets are decoded once each (only if a decoded column is chosen) into
//! a small block of rows that stays in the CPU's cache; each column then
//! takes the block in a tight loop of its own. Addresses are written as
//! text straight into the string column's buffer.
//!
//! A chunk gives one batch, or several when it is very large: a batch holds
//! at most [`MAX_BATCH_ROWS`] rows and [`MAX_BATCH_BYTES`] bytes of `data`,
//! so 32-bit offsets never overflow.

use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashMap;

use arrow_array::builder::{BinaryBuilder, FixedSizeBinaryBuilder, StringBuilder};
use arrow_array::types::{
    ArrowPrimitiveType, TimestampNanosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    ArrayRef, DictionaryArray, PrimitiveArray, RecordBatch, RecordBatchOptions, StringArray,
};
use arrow_buffer::{
    BooleanBuffer, Buffer, NullBuffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer,
};
use arrow_schema::{ArrowError, SchemaRef};
use pcap_parallel::decode::{Decoder, Ip};
use pcap_parallel::flow::{FlowBytes, FlowKey};
use pcap_parallel::{CaptureFormat, Chunk, Packet};

use crate::schema::{Column, IpFormat, TableOptions};

/// The most rows in one batch.
pub const MAX_BATCH_ROWS: usize = 1 << 20;
/// The most bytes of `data` in one batch.
pub const MAX_BATCH_BYTES: usize = 1 << 30;
/// Rows decoded before the columns take them.
const BLOCK: usize = 256;

/// One packet, decoded: what the columns are made of.
struct Row<'a> {
    number: u64,
    ts: Option<i64>,
    cap_len: u32,
    len: u32,
    link_type: u16,
    interface_id: Option<u32>,
    vlan: Option<u16>,
    ip: Option<Ip>,
    data: &'a [u8],
}

/// What decoding a packet takes.
struct Decoding {
    decoder: Option<Decoder>,
    flow_id: bool,
    pcapng: bool,
}

impl Decoding {
    /// The row of packet `p`; its flow bytes (if `flow_id` is chosen) go
    /// to `flows`, apart from the row, to be hashed a block at a time.
    fn row<'a>(&self, p: &Packet<'a>, flows: &mut Vec<FlowBytes>) -> Row<'a> {
        let mut row = Row {
            number: p.number,
            // Outside the years 1677-2262, timestamp[ns] cannot say: null.
            ts: p.timestamp.and_then(|t| i64::try_from(t.as_nanos()).ok()),
            cap_len: p.captured_len(),
            len: p.original_len,
            link_type: p.link_type.0,
            interface_id: self.pcapng.then_some(p.interface_id),
            vlan: None,
            ip: None,
            data: p.data,
        };
        if let Some(decoder) = self.decoder {
            let h = decoder.headers(p.link_type, p.data);
            row.vlan = h.vlan;
            row.ip = h.ip;
            if self.flow_id {
                // Always the outer headers' hash, as `Capture::flows` computes it.
                flows.push(FlowBytes::default());
                let slot = flows.last_mut().expect("just pushed");
                if h.tunnels == 0 {
                    slot.set(&h, FlowKey::FiveTuple);
                } else {
                    let outer = pcap_parallel::decode::headers(p.link_type, p.data);
                    slot.set(&outer, FlowKey::FiveTuple);
                }
            }
        }
        row
    }
}

/// Addresses as text: bytes and offsets written directly.
struct Text {
    values: Vec<u8>,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl Text {
    fn new(rows: usize) -> Text {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Text {
            // "10.1.2.3" is 8 bytes, "2001:db8::1" 11: 16 a row is plenty.
            values: Vec::with_capacity(rows * 16),
            offsets,
            nulls: NullBufferBuilder::new(rows),
        }
    }

    fn push(&mut self, addr: Option<IpAddr>) {
        match addr {
            Some(IpAddr::V4(a)) => {
                push_ipv4(&mut self.values, a.octets());
                self.nulls.append_non_null();
            }
            Some(IpAddr::V6(a)) => {
                push_ipv6(&mut self.values, a.segments());
                self.nulls.append_non_null();
            }
            None => self.nulls.append_null(),
        }
        self.offsets.push(self.values.len() as i32);
    }

    /// The strings so far; the builder starts again empty.
    fn finish(&mut self) -> Result<StringArray, ArrowError> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let values = Buffer::from_vec(std::mem::take(&mut self.values));
        StringArray::try_new(offsets, values, self.nulls.finish())
    }

    /// Strings so far.
    fn len(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Addresses as text, built as a dictionary: each distinct address of a
/// batch is formatted once, each row holds its index (for the Parquet
/// writer, which stores the column as a dictionary and indices anyway).
struct TextDictionary {
    distinct: Distinct,
    keys: Prim<UInt32Type>,
}

/// The distinct addresses of a batch, as text, and their indices.
struct Distinct {
    v4: HashMap<u32, u32>,
    v6: HashMap<u128, u32>,
    text: Text,
}

impl Distinct {
    fn new() -> Distinct {
        Distinct {
            v4: HashMap::new(),
            v6: HashMap::new(),
            text: Text::new(1024),
        }
    }

    /// The index of `a`, formatting it if it is new (a lookup, then an
    /// insert when missing: the hit, nearly every row, is a plain `get`).
    fn key(&mut self, a: IpAddr) -> u32 {
        let found = match a {
            IpAddr::V4(v4) => self.v4.get(&u32::from(v4)),
            IpAddr::V6(v6) => self.v6.get(&u128::from(v6)),
        };
        if let Some(&key) = found {
            return key;
        }
        let key = self.text.len() as u32;
        match a {
            IpAddr::V4(v4) => self.v4.insert(u32::from(v4), key),
            IpAddr::V6(v6) => self.v6.insert(u128::from(v6), key),
        };
        self.text.push(Some(a));
        key
    }

    /// The distinct addresses as text; empty again after.
    fn finish(&mut self) -> Result<StringArray, ArrowError> {
        self.v4.clear();
        self.v6.clear();
        self.text.finish()
    }
}

impl TextDictionary {
    fn new(rows: usize) -> TextDictionary {
        TextDictionary {
            distinct: Distinct::new(),
            keys: Prim::new(rows),
        }
    }

    fn extend(&mut self, addrs: impl ExactSizeIterator<Item = Option<IpAddr>>) {
        let distinct = &mut self.distinct;
        self.keys
            .extend_options(addrs.map(|a| a.map(|a| distinct.key(a))));
    }

    /// The batch's column; the dictionary starts again empty.
    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let values = Arc::new(self.distinct.finish()?);
        Ok(Arc::new(DictionaryArray::<UInt32Type>::try_new(
            self.keys.finish(),
            values,
        )?))
    }
}

/// Each octet value in decimal followed by a dot, padded to four bytes,
/// and the length of the digits and dot.
const OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let o = i as u8;
        t[i] = if o >= 100 {
            ([b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10, b'.'], 4)
        } else if o >= 10 {
            ([b'0' + o / 10, b'0' + o % 10, b'.', 0], 3)
        } else {
            ([b'0' + o, b'.', 0, 0], 2)
        };
        i += 1;
    }
    t
};

/// The longest address text: `ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff`
/// (39 bytes), rounded up: addresses are formatted in place at the end of
/// the column's bytes, in room of this size (fixed-size writes, no calls),
/// then the room is cut back to the text.
const ADDR_MAX: usize = 48;

/// Appends the text of an address to `out`: `format` writes it into room
/// at `out`'s end and returns its length.
fn push_formatted(out: &mut Vec<u8>, format: impl FnOnce(&mut [u8; ADDR_MAX]) -> usize) {
    let at = out.len();
    out.resize(at + ADDR_MAX, 0);
    let room: &mut [u8; ADDR_MAX] = (&mut out[at..]).try_into().expect("room for an address");
    let n = format(room);
    out.truncate(at + n);
}

/// An IPv4 address in dotted decimal.
fn push_ipv4(out: &mut Vec<u8>, octets: [u8; 4]) {
    push_formatted(out, |buf| write_ipv4(buf, 0, octets));
}

/// Writes an IPv4 address in dotted decimal at `at` in `buf` (at most 15
/// bytes, 16 written); returns the end.
fn write_ipv4(buf: &mut [u8; ADDR_MAX], at: usize, octets: [u8; 4]) -> usize {
    let mut n = at;
    for o in octets {
        let (text, len) = OCTETS[o as usize];
        buf[n..n + 4].copy_from_slice(&text);
        n += len as usize;
    }
    // No dot after the last octet.
    n - 1
}

/// An IPv6 address as RFC 5952 writes it (and Rust's `Display`, and
/// tshark): lower-case hex groups without leading zeros, the longest run of
/// two or more zero groups (the first, on a tie) as `::`, and an
/// IPv4-mapped address with its IPv4 part in dotted decimal.
fn push_ipv6(out: &mut Vec<u8>, s: [u16; 8]) {
    push_formatted(out, |buf| write_ipv6(buf, s));
}

/// Writes an IPv6 address (see [`push_ipv6`]) into `buf`; returns its
/// length.
fn write_ipv6(buf: &mut [u8; ADDR_MAX], s: [u16; 8]) -> usize {
    if s[..5] == [0; 5] && s[5] == 0xffff {
        buf[..7].copy_from_slice(b"::ffff:");
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return write_ipv4(buf, 7, [a, b, c, d]);
    }
    // The longest run of zero groups.
    let (mut best, mut best_len, mut at, mut len) = (0, 0, 0, 0);
    for (i, &g) in s.iter().enumerate() {
        if g == 0 {
            if len == 0 {
                at = i;
            }
            len += 1;
            if len > best_len {
                (best, best_len) = (at, len);
            }
        } else {
            len = 0;
        }
    }
    // A group in hex without leading zeros, then a colon (the last one
    // is cut off or overwritten): built in a register (bytes stored one by
    // one and read back as a word would stall the load), 8 bytes written,
    // `digits + 1` kept.
    let group = |buf: &mut [u8; ADDR_MAX], n: usize, g: u16| -> usize {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let digits = (4 - (g.leading_zeros() / 4) as usize).max(1);
        let mut text = (b':' as u64) << (8 * digits);
        for i in 0..digits {
            let d = DIGITS[(g >> (4 * (digits - 1 - i)) & 0xf) as usize];
            text |= (d as u64) << (8 * i);
        }
        buf[n..n + 8].copy_from_slice(&text.to_le_bytes());
        n + digits + 1
    };
    let mut n = 0;
    if best_len < 2 {
        for &g in &s {
            n = group(buf, n, g);
        }
        return n - 1;
    }
    if best == 0 {
        buf[0] = b':';
        n = 1;
    }
    for &g in &s[..best] {
        n = group(buf, n, g);
    }
    // The colon after the groups before the run (or the leading one) and
    // one more make `::`.
    buf[n] = b':';
    n += 1;
    for &g in &s[best + best_len..] {
        n = group(buf, n, g);
    }
    if best + best_len < 8 { n - 1 } else { n }
}

/// An address column.
enum Addresses {
    Text(Text),
    TextDictionary(TextDictionary),
    Binary(FixedSizeBinaryBuilder),
}

impl Addresses {
    fn extend(
        &mut self,
        addrs: impl ExactSizeIterator<Item = Option<IpAddr>>,
    ) -> Result<(), ArrowError> {
        match self {
            Addresses::Text(t) => addrs.for_each(|a| t.push(a)),
            Addresses::TextDictionary(t) => t.extend(addrs),
            Addresses::Binary(b) => {
                for a in addrs {
                    match a {
                        Some(IpAddr::V4(v4)) => b.append_value(v4.to_ipv6_mapped().octets())?,
                        Some(IpAddr::V6(v6)) => b.append_value(v6.octets())?,
                        None => b.append_null(),
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        match self {
            Addresses::Text(t) => Ok(Arc::new(t.finish()?)),
            Addresses::TextDictionary(t) => t.finish(),
            Addresses::Binary(b) => Ok(Arc::new(b.finish())),
        }
    }
}

/// A primitive column: its values and validity, appended a block at a time.
struct Prim<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
}

impl<T: ArrowPrimitiveType> Prim<T> {
    fn new(rows: usize) -> Self {
        Prim {
            values: Vec::with_capacity(rows),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    /// Appends a block of values that are never null.
    fn extend(&mut self, values: impl ExactSizeIterator<Item = T::Native>) {
        let n = values.len();
        self.values.extend(values);
        self.nulls.append_n_non_nulls(n);
    }

    /// Appends a block of values that may be null (at most [`BLOCK`]).
    /// Validity is gathered as bits, 64 rows to a word.
    fn extend_options(&mut self, values: impl ExactSizeIterator<Item = Option<T::Native>>) {
        let mut valid = [0u64; BLOCK / 64];
        let n = values.len();
        self.values.extend(values.enumerate().map(|(i, v)| {
            valid[i / 64] |= (v.is_some() as u64) << (i % 64);
            v.unwrap_or_default()
        }));
        let set: u32 = valid.iter().map(|w| w.count_ones()).sum();
        if set as usize == n {
            self.nulls.append_n_non_nulls(n);
        } else {
            let words = valid
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<u8>>();
            let bits = BooleanBuffer::new(Buffer::from_vec(words), 0, n);
            self.nulls.append_buffer(&NullBuffer::new(bits));
        }
    }

    fn finish(&mut self) -> PrimitiveArray<T> {
        PrimitiveArray::new(
            ScalarBuffer::from(std::mem::take(&mut self.values)),
            self.nulls.finish(),
        )
    }
}

/// One column being built.
enum Builder {
    U64(Column, Prim<UInt64Type>),
    U32(Column, Prim<UInt32Type>),
    U16(Column, Prim<UInt16Type>),
    U8(Column, Prim<UInt8Type>),
    Ts(Prim<TimestampNanosecondType>),
    Ip(Column, Addresses),
    /// The input's name, the same in every row of a chunk.
    File(StringBuilder, String),
    Data(BinaryBuilder),
}

impl Builder {
    fn new(
        column: Column,
        options: &TableOptions,
        rows: usize,
        bytes: usize,
        file: &str,
    ) -> Builder {
        match column {
            Column::File => Builder::File(
                StringBuilder::with_capacity(rows, rows * file.len()),
                file.to_string(),
            ),
            Column::FrameNumber | Column::FlowId => Builder::U64(column, Prim::new(rows)),
            Column::CapLen | Column::Len | Column::InterfaceId | Column::IpId => {
                Builder::U32(column, Prim::new(rows))
            }
            Column::LinkType
            | Column::Vlan
            | Column::FragOffset
            | Column::SrcPort
            | Column::DstPort
            | Column::TcpFlags => Builder::U16(column, Prim::new(rows)),
            Column::IpVersion | Column::IpProto | Column::Ttl | Column::IpFlags => {
                Builder::U8(column, Prim::new(rows))
            }
            Column::Ts => Builder::Ts(Prim::new(rows)),
            Column::SrcIp | Column::DstIp => Builder::Ip(
                column,
                match options.ip() {
                    IpFormat::String if options.builds_text_dictionary() => {
                        Addresses::TextDictionary(TextDictionary::new(rows))
                    }
                    IpFormat::String => Addresses::Text(Text::new(rows)),
                    IpFormat::Binary => {
                        Addresses::Binary(FixedSizeBinaryBuilder::with_capacity(rows, 16))
                    }
                },
            ),
            Column::Data => Builder::Data(BinaryBuilder::with_capacity(rows, bytes)),
        }
    }

    /// Appends a block of rows (and their flow ids, if chosen).
    fn extend(&mut self, rows: &[Row<'_>], flow_ids: &[u64]) -> Result<(), ArrowError> {
        let ip = || rows.iter().map(|r| r.ip.as_ref());
        let frag = || ip().map(|i| i.and_then(|i| i.fragmentation));
        match self {
            Builder::U64(Column::FrameNumber, b) => b.extend(rows.iter().map(|r| r.number)),
            Builder::U64(_, b) => b.extend(flow_ids.iter().copied()),
            Builder::U32(Column::CapLen, b) => b.extend(rows.iter().map(|r| r.cap_len)),
            Builder::U32(Column::Len, b) => b.extend(rows.iter().map(|r| r.len)),
            Builder::U32(Column::InterfaceId, b) => {
                b.extend_options(rows.iter().map(|r| r.interface_id))
            }
            Builder::U32(_, b) => b.extend_options(frag().map(|f| f.map(|f| f.id))),
            Builder::U16(Column::LinkType, b) => b.extend(rows.iter().map(|r| r.link_type)),
            Builder::U16(Column::Vlan, b) => b.extend_options(rows.iter().map(|r| r.vlan)),
            Builder::U16(Column::FragOffset, b) => {
                b.extend_options(frag().map(|f| f.map(|f| f.offset)))
            }
            Builder::U16(Column::SrcPort, b) => {
                b.extend_options(ip().map(|i| i.and_then(|i| i.ports).map(|p| p.0)))
            }
            Builder::U16(Column::DstPort, b) => {
                b.extend_options(ip().map(|i| i.and_then(|i| i.ports).map(|p| p.1)))
            }
            Builder::U16(_, b) => b.extend_options(ip().map(|i| i.and_then(|i| i.tcp_flags))),
            Builder::U8(Column::IpVersion, b) => b.extend_options(ip().map(|i| i.map(Ip::version))),
            Builder::U8(Column::IpProto, b) => {
                b.extend_options(ip().map(|i| i.map(|i| i.protocol)))
            }
            Builder::U8(Column::Ttl, b) => b.extend_options(ip().map(|i| i.map(|i| i.ttl))),
            Builder::U8(_, b) => b.extend_options(frag().map(|f| f.map(|f| f.flags))),
            Builder::Ts(b) => b.extend_options(rows.iter().map(|r| r.ts)),
            Builder::Ip(Column::SrcIp, b) => b.extend(ip().map(|i| i.map(|i| i.src)))?,
            Builder::Ip(_, b) => b.extend(ip().map(|i| i.map(|i| i.dst)))?,
            Builder::File(b, name) => rows.iter().for_each(|_| b.append_value(&*name)),
            Builder::Data(b) => rows.iter().for_each(|r| b.append_value(r.data)),
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::U64(_, b) => Arc::new(b.finish()),
            Builder::U32(_, b) => Arc::new(b.finish()),
            Builder::U16(_, b) => Arc::new(b.finish()),
            Builder::U8(_, b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish().with_timezone("UTC")),
            Builder::Ip(_, b) => b.finish()?,
            Builder::File(b, _) => Arc::new(b.finish()),
            Builder::Data(b) => Arc::new(b.finish()),
        })
    }
}

/// The batches being built for one chunk.
struct Batches<'o> {
    options: &'o TableOptions,
    schema: &'o SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
    data_bytes: usize,
    flow_ids: Vec<u64>,
    done: Vec<RecordBatch>,
    /// The most rows in a batch ([`MAX_BATCH_ROWS`]; fewer in tests).
    max_rows: usize,
}

impl<'o> Batches<'o> {
    fn new(
        options: &'o TableOptions,
        schema: &'o SchemaRef,
        (rows, bytes): (usize, usize),
        max_rows: usize,
        file: &str,
    ) -> Self {
        let rows = rows.min(max_rows);
        let bytes = bytes.min(MAX_BATCH_BYTES);
        Batches {
            options,
            schema,
            builders: options
                .selected()
                .iter()
                .map(|&c| Builder::new(c, options, rows, bytes, file))
                .collect(),
            rows: 0,
            data_bytes: 0,
            flow_ids: Vec::with_capacity(BLOCK),
            done: Vec::new(),
            max_rows,
        }
    }

    /// Takes a block of rows (and their flow bytes, if `flow_id` is
    /// chosen), starting a new batch first when it would not fit.
    fn extend(&mut self, block: &[Row<'_>], flows: &[FlowBytes]) -> Result<(), ArrowError> {
        let bytes: usize = if self.options.selected().contains(&Column::Data) {
            block.iter().map(|r| r.data.len()).sum()
        } else {
            0
        };
        if self.rows > 0
            && (self.rows + block.len() > self.max_rows
                || self.data_bytes + bytes > MAX_BATCH_BYTES)
        {
            self.finish_batch()?;
        }
        self.flow_ids.clear();
        FlowBytes::hash_all(flows, &mut self.flow_ids);
        for b in &mut self.builders {
            b.extend(block, &self.flow_ids)?;
        }
        self.rows += block.len();
        self.data_bytes += bytes;
        Ok(())
    }

    fn finish_batch(&mut self) -> Result<(), ArrowError> {
        let columns = self
            .builders
            .iter_mut()
            .map(Builder::finish)
            .collect::<Result<Vec<_>, _>>()?;
        self.done.push(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )?);
        self.rows = 0;
        self.data_bytes = 0;
        Ok(())
    }
}

/// The record batches of one chunk's packets (those its filter passes):
/// one, or several for a very large chunk; none without packets.
pub(crate) fn build(
    chunk: &Chunk,
    options: &TableOptions,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, ArrowError> {
    build_batches(chunk, options, schema, MAX_BATCH_ROWS)
}

/// [`build`], with batches of at most `max_rows` rows.
fn build_batches(
    chunk: &Chunk,
    options: &TableOptions,
    schema: &SchemaRef,
    max_rows: usize,
) -> Result<Vec<RecordBatch>, ArrowError> {
    let selected = options.selected();
    let decoding = Decoding {
        decoder: selected
            .iter()
            .any(|c| c.decoded())
            .then(|| options.decoder()),
        flow_id: selected.contains(&Column::FlowId),
        pcapng: chunk.format() == CaptureFormat::Pcapng,
    };
    let range = chunk.byte_range();
    let data_bytes = if selected.contains(&Column::Data) {
        (range.end - range.start) as usize
    } else {
        0
    };
    let sizes = (chunk.packet_count() as usize, data_bytes);
    let mut batches = Batches::new(options, schema, sizes, max_rows, chunk.input_name());
    let mut block = Vec::with_capacity(BLOCK);
    let mut flows = Vec::with_capacity(BLOCK);
    for packet in chunk.packets() {
        block.push(decoding.row(&packet, &mut flows));
        if block.len() == BLOCK {
            batches.extend(&block, &flows)?;
            block.clear();
            flows.clear();
        }
    }
    if !block.is_empty() {
        batches.extend(&block, &flows)?;
    }
    if batches.rows > 0 {
        batches.finish_batch()?;
    }
    Ok(batches.done)
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use pcap_parallel::{Capture, Split};

    use super::*;

    /// A chunk of more rows than a batch holds gives several batches whose
    /// rows, one after another, are the rows of one batch, in every column
    /// and for every form of the addresses.
    #[test]
    fn a_chunk_larger_than_a_batch_gives_the_same_rows_in_several() {
        let sample = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/sample.pcap"
        ))
        .unwrap();
        let capture = || {
            Capture::from_bytes("sample.pcap", sample.clone())
                .unwrap()
                .split(Split::Chunks(1))
        };
        // Each row of a column as text (a dictionary's rows as its values).
        let text = |a: &ArrayRef| -> Vec<String> {
            let a = match a.as_any_dictionary_opt() {
                Some(d) => arrow_select::take::take(d.values(), d.keys(), None).unwrap(),
                None => a.clone(),
            };
            (0..a.len())
                .map(|i| format!("{:?}", a.slice(i, 1)))
                .collect()
        };
        let forms = [
            TableOptions::default().with_data(),
            TableOptions::default().text_dictionary(),
            TableOptions::default().ip_format(IpFormat::Binary),
        ];
        for options in forms {
            let schema = options.batch_schema();
            let sizes: Vec<Vec<usize>> = capture()
                .try_map(|chunk| {
                    let one = build_batches(chunk, &options, &schema, usize::MAX)?;
                    let many = build_batches(chunk, &options, &schema, 300)?;
                    assert_eq!(one.len(), 1);
                    for c in 0..schema.fields().len() {
                        let whole = text(one[0].column(c));
                        let parts: Vec<String> =
                            many.iter().flat_map(|b| text(b.column(c))).collect();
                        assert_eq!(parts, whole, "{}", schema.field(c).name());
                    }
                    Ok::<_, ArrowError>(many.iter().map(|b| b.num_rows()).collect())
                })
                .unwrap();
            // Batches are cut between blocks of rows.
            assert_eq!(sizes, [vec![256, 256, 256, 232]], "{options:?}");
        }
    }

    #[test]
    fn addresses_as_text_as_display_writes_them() {
        let mut cases: Vec<IpAddr> = [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.100.255",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::1.2.3.4",
            "fe80::202:b3ff:fe1e:8329",
            "::",
            "::1",
            "1::",
            "1:0:0:2:0:0:0:3",
            "1:0:0:2:0:0:3:4",
            "1:0:2:3:4:5:6:7",
            "ff02::1:ff00:1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        // And every pattern of zero groups.
        for zeros in 0u32..256 {
            let s: Vec<u16> = (0..8)
                .map(|i| {
                    if zeros >> i & 1 == 1 {
                        0
                    } else {
                        0x1a0 + i as u16
                    }
                })
                .collect();
            let s: [u16; 8] = s.try_into().unwrap();
            cases.push(IpAddr::V6(std::net::Ipv6Addr::from(s)));
        }
        for addr in cases {
            let mut t = Text::new(1);
            t.push(Some(addr));
            assert_eq!(
                std::str::from_utf8(&t.values).unwrap(),
                addr.to_string(),
                "{addr:?}"
            );
        }
    }
}

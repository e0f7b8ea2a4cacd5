//! Building one chunk's record batch, on the worker that holds the chunk.
//!
//! Each chosen column has a builder sized for the chunk; every packet is
//! decoded once (only if a decoded column is chosen) and each builder takes
//! what it needs from it. Addresses are formatted into a stack buffer and
//! copied once into the string column.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, FixedSizeBinaryBuilder, StringBuilder, TimestampNanosecondBuilder, UInt8Builder,
    UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{ArrowError, SchemaRef};
use pcap_parallel::decode::{Decoder, Headers, Ip};
use pcap_parallel::flow::{self, FlowKey};
use pcap_parallel::{CaptureFormat, Chunk, Packet};

use crate::schema::{Column, IpFormat, TableOptions};

/// What one packet gives the builders.
struct Row<'p, 'a> {
    packet: &'p Packet<'a>,
    headers: Option<&'p Headers<'a>>,
    pcapng: bool,
}

impl Row<'_, '_> {
    fn ip(&self) -> Option<&Ip> {
        self.headers?.ip.as_ref()
    }

    fn flow_id(&self) -> u64 {
        match self.headers {
            // Always the outer headers' hash, as `Capture::flows` computes it.
            Some(h) if h.tunnels == 0 => flow::hash(h, FlowKey::FiveTuple),
            _ => flow::flow_hash(self.packet.link_type, self.packet.data, FlowKey::FiveTuple),
        }
    }
}

/// An address column, as text or as 16 bytes.
enum Addresses {
    Text(StringBuilder),
    Binary(FixedSizeBinaryBuilder),
}

impl Addresses {
    fn new(format: IpFormat, rows: usize) -> Self {
        match format {
            // "2001:db8::1" is 11 bytes, "10.1.2.3" 8: 16 a row is plenty.
            IpFormat::String => Addresses::Text(StringBuilder::with_capacity(rows, rows * 16)),
            IpFormat::Binary => Addresses::Binary(FixedSizeBinaryBuilder::with_capacity(rows, 16)),
        }
    }

    fn push(&mut self, addr: Option<IpAddr>) -> Result<(), ArrowError> {
        match (self, addr) {
            (Addresses::Text(b), Some(a)) => {
                let mut buf = [0u8; 64];
                let n = format_ip(&mut buf, a);
                b.append_value(std::str::from_utf8(&buf[..n]).expect("ASCII digits"));
            }
            (Addresses::Text(b), None) => b.append_null(),
            (Addresses::Binary(b), Some(a)) => b.append_value(match a {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            })?,
            (Addresses::Binary(b), None) => b.append_null(),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Addresses::Text(b) => Arc::new(b.finish()),
            Addresses::Binary(b) => Arc::new(b.finish()),
        }
    }
}

/// Writes `addr` as text into `buf`; returns its length. IPv4 by hand
/// (the common case, several times faster than `Display`), IPv6 by `Display`
/// (RFC 5952, as tshark prints it).
fn format_ip(buf: &mut [u8; 64], addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(v4) => {
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + octet % 10;
                n += 1;
            }
            n
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            write!(cursor, "{v6}").expect("an IPv6 address fits in 64 bytes");
            cursor.position() as usize
        }
    }
}

/// One column being built.
enum Builder {
    U64(Column, UInt64Builder),
    U32(Column, UInt32Builder),
    U16(Column, UInt16Builder),
    U8(Column, UInt8Builder),
    Ts(TimestampNanosecondBuilder),
    Ip(Column, Addresses),
    Data(BinaryBuilder),
}

impl Builder {
    fn new(column: Column, ip: IpFormat, rows: usize, bytes: usize) -> Builder {
        match column {
            Column::FrameNumber | Column::FlowId => {
                Builder::U64(column, UInt64Builder::with_capacity(rows))
            }
            Column::CapLen | Column::Len | Column::InterfaceId | Column::IpId => {
                Builder::U32(column, UInt32Builder::with_capacity(rows))
            }
            Column::LinkType
            | Column::Vlan
            | Column::FragOffset
            | Column::SrcPort
            | Column::DstPort
            | Column::TcpFlags => Builder::U16(column, UInt16Builder::with_capacity(rows)),
            Column::IpVersion | Column::IpProto | Column::Ttl | Column::IpFlags => {
                Builder::U8(column, UInt8Builder::with_capacity(rows))
            }
            Column::Ts => {
                Builder::Ts(TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"))
            }
            Column::SrcIp | Column::DstIp => Builder::Ip(column, Addresses::new(ip, rows)),
            Column::Data => Builder::Data(BinaryBuilder::with_capacity(rows, bytes)),
        }
    }

    fn push(&mut self, row: &Row<'_, '_>) -> Result<(), ArrowError> {
        let p = row.packet;
        let ip = row.ip();
        match self {
            Builder::U64(Column::FrameNumber, b) => b.append_value(p.number),
            Builder::U64(_, b) => b.append_value(row.flow_id()),
            Builder::U32(Column::CapLen, b) => b.append_value(p.captured_len()),
            Builder::U32(Column::Len, b) => b.append_value(p.original_len),
            Builder::U32(Column::InterfaceId, b) => {
                b.append_option(row.pcapng.then_some(p.interface_id))
            }
            Builder::U32(_, b) => b.append_option(ip.and_then(|i| i.fragmentation).map(|f| f.id)),
            Builder::U16(Column::LinkType, b) => b.append_value(p.link_type.0),
            Builder::U16(Column::Vlan, b) => b.append_option(row.headers.and_then(|h| h.vlan)),
            Builder::U16(Column::FragOffset, b) => {
                b.append_option(ip.and_then(|i| i.fragmentation).map(|f| f.offset))
            }
            Builder::U16(Column::SrcPort, b) => {
                b.append_option(ip.and_then(|i| i.ports).map(|x| x.0))
            }
            Builder::U16(Column::DstPort, b) => {
                b.append_option(ip.and_then(|i| i.ports).map(|x| x.1))
            }
            Builder::U16(_, b) => b.append_option(ip.and_then(|i| i.tcp_flags)),
            Builder::U8(Column::IpVersion, b) => b.append_option(ip.map(Ip::version)),
            Builder::U8(Column::IpProto, b) => b.append_option(ip.map(|i| i.protocol)),
            Builder::U8(Column::Ttl, b) => b.append_option(ip.map(|i| i.ttl)),
            Builder::U8(_, b) => b.append_option(ip.and_then(|i| i.fragmentation).map(|f| f.flags)),
            Builder::Ts(b) => {
                b.append_option(p.timestamp.and_then(|t| i64::try_from(t.as_nanos()).ok()))
            }
            Builder::Ip(Column::SrcIp, b) => b.push(ip.map(|i| i.src))?,
            Builder::Ip(_, b) => b.push(ip.map(|i| i.dst))?,
            Builder::Data(b) => b.append_value(p.data),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::U64(_, b) => Arc::new(b.finish()),
            Builder::U32(_, b) => Arc::new(b.finish()),
            Builder::U16(_, b) => Arc::new(b.finish()),
            Builder::U8(_, b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
            Builder::Ip(_, b) => b.finish(),
            Builder::Data(b) => Arc::new(b.finish()),
        }
    }
}

/// The record batch of one chunk's packets (those its filter passes).
pub(crate) fn build(
    chunk: &Chunk,
    options: &TableOptions,
    schema: &SchemaRef,
) -> Result<RecordBatch, ArrowError> {
    let rows = chunk.packet_count() as usize;
    let data_bytes = if options.selected().contains(&Column::Data) {
        chunk
            .byte_range()
            .end
            .saturating_sub(chunk.byte_range().start) as usize
    } else {
        0
    };
    let mut builders: Vec<Builder> = options
        .selected()
        .iter()
        .map(|&c| Builder::new(c, options.ip(), rows, data_bytes))
        .collect();
    let decoder: Option<Decoder> = options
        .selected()
        .iter()
        .any(|c| c.decoded())
        .then(|| options.decoder());
    let pcapng = chunk.format() == CaptureFormat::Pcapng;
    let mut count = 0;
    for packet in chunk.packets() {
        count += 1;
        let headers = decoder.map(|d| d.headers(packet.link_type, packet.data));
        let row = Row {
            packet: &packet,
            headers: headers.as_ref(),
            pcapng,
        };
        for b in &mut builders {
            b.push(&row)?;
        }
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        builders.iter_mut().map(Builder::finish).collect(),
        &RecordBatchOptions::new().with_row_count(Some(count)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_text() {
        for a in [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.100.255",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "fe80::202:b3ff:fe1e:8329",
            "::",
        ] {
            let addr: IpAddr = a.parse().unwrap();
            let mut buf = [0u8; 64];
            let n = format_ip(&mut buf, addr);
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), addr.to_string());
        }
    }
}

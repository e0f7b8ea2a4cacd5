//! The packet table's columns: names, Arrow types, and which are chosen.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use pcap_parallel::decode::{Decoder, Tunnels};

use crate::error::TableError;

/// One column of the packet table. Each is named after the Wireshark field
/// it equals (the first IP layer, defragmentation off), where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// `frame_number` (uint64): the packet's number in the capture, from 1
    /// (Wireshark's `frame.number`).
    FrameNumber,
    /// `file` (utf8): the input file the packet comes from, as given (for
    /// several captures read as one; `frame_number` counts in each file).
    /// Not among the default columns.
    File,
    /// `ts` (timestamp[ns, UTC]): when the packet was captured
    /// (`frame.time_epoch`); null for pcapng Simple Packet Blocks, which
    /// carry no time, and outside the years 1677–2262.
    Ts,
    /// `cap_len` (uint32): bytes captured (`frame.cap_len`).
    CapLen,
    /// `len` (uint32): bytes on the wire (`frame.len`).
    Len,
    /// `link_type` (uint16): the `LINKTYPE_` value of the packet's link layer.
    LinkType,
    /// `interface_id` (uint32): the pcapng interface (`frame.interface_id`);
    /// null for pcap.
    InterfaceId,
    /// `vlan` (uint16): the outermost VLAN id (`vlan.id`), null if untagged.
    Vlan,
    /// `ip_version` (uint8): 4 or 6 (`ip.version`), null without IP.
    IpVersion,
    /// `src_ip`: source address (`ip.src`, `ipv6.src`).
    SrcIp,
    /// `dst_ip`: destination address (`ip.dst`, `ipv6.dst`).
    DstIp,
    /// `ip_proto` (uint8): the payload's protocol (`ip.proto`; for IPv6
    /// `ipv6.nxt` after the extension headers).
    IpProto,
    /// `ttl` (uint8): time to live (`ip.ttl`), or hop limit (`ipv6.hlim`).
    Ttl,
    /// `ip_id` (uint32): identification (`ip.id`; IPv6:
    /// `ipv6.fraghdr.ident`, null without a fragment header).
    IpId,
    /// `ip_flags` (uint8): 0x4 reserved, 0x2 don't fragment, 0x1 more
    /// fragments (`ip.flags`; IPv6: the fragment header's M flag).
    IpFlags,
    /// `frag_offset` (uint16): fragment offset in 8-byte units
    /// (`ip.frag_offset`, `ipv6.fraghdr.offset`).
    FragOffset,
    /// `src_port` (uint16): TCP, UDP, UDP-Lite, DCCP or SCTP source port
    /// (`tcp.srcport`, ...), null otherwise and in non-first fragments.
    SrcPort,
    /// `dst_port` (uint16): destination port, likewise.
    DstPort,
    /// `tcp_flags` (uint16): TCP's 12 flag bits (`tcp.flags`), null unless TCP.
    TcpFlags,
    /// `flow_id` (uint64): the symmetric flow hash that
    /// `Capture::flows(K)` shards by (`pcap_parallel::flow::flow_hash`),
    /// equal for both directions of a conversation.
    FlowId,
    /// `data` (binary): the captured bytes. Only when asked for.
    Data,
}

impl Column {
    /// Every column, in table order.
    pub const ALL: [Column; 21] = [
        Column::FrameNumber,
        Column::File,
        Column::Ts,
        Column::CapLen,
        Column::Len,
        Column::LinkType,
        Column::InterfaceId,
        Column::Vlan,
        Column::IpVersion,
        Column::SrcIp,
        Column::DstIp,
        Column::IpProto,
        Column::Ttl,
        Column::IpId,
        Column::IpFlags,
        Column::FragOffset,
        Column::SrcPort,
        Column::DstPort,
        Column::TcpFlags,
        Column::FlowId,
        Column::Data,
    ];

    /// The column's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Column::FrameNumber => "frame_number",
            Column::File => "file",
            Column::Ts => "ts",
            Column::CapLen => "cap_len",
            Column::Len => "len",
            Column::LinkType => "link_type",
            Column::InterfaceId => "interface_id",
            Column::Vlan => "vlan",
            Column::IpVersion => "ip_version",
            Column::SrcIp => "src_ip",
            Column::DstIp => "dst_ip",
            Column::IpProto => "ip_proto",
            Column::Ttl => "ttl",
            Column::IpId => "ip_id",
            Column::IpFlags => "ip_flags",
            Column::FragOffset => "frag_offset",
            Column::SrcPort => "src_port",
            Column::DstPort => "dst_port",
            Column::TcpFlags => "tcp_flags",
            Column::FlowId => "flow_id",
            Column::Data => "data",
        }
    }

    /// True for the columns that need the packet's headers decoded.
    pub(crate) fn decoded(self) -> bool {
        !matches!(
            self,
            Column::FrameNumber
                | Column::File
                | Column::Ts
                | Column::CapLen
                | Column::Len
                | Column::LinkType
                | Column::InterfaceId
                | Column::Data
        )
    }

    fn field(self, ip: IpFormat) -> Field {
        let (kind, nullable) = match self {
            Column::FrameNumber => (DataType::UInt64, false),
            Column::File => (DataType::Utf8, false),
            Column::Ts => (
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
            Column::CapLen | Column::Len => (DataType::UInt32, false),
            Column::LinkType => (DataType::UInt16, false),
            Column::InterfaceId | Column::IpId => (DataType::UInt32, true),
            Column::Vlan | Column::FragOffset | Column::SrcPort | Column::DstPort => {
                (DataType::UInt16, true)
            }
            Column::TcpFlags => (DataType::UInt16, true),
            Column::IpVersion | Column::IpProto | Column::Ttl | Column::IpFlags => {
                (DataType::UInt8, true)
            }
            Column::SrcIp | Column::DstIp => match ip {
                IpFormat::String => (DataType::Utf8, true),
                IpFormat::Binary => (DataType::FixedSizeBinary(16), true),
            },
            Column::FlowId => (DataType::UInt64, false),
            Column::Data => (DataType::Binary, false),
        };
        Field::new(self.name(), kind, nullable)
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Column {
    type Err = TableError;

    /// A column by its name.
    ///
    /// ```
    /// use pcap_parallel_arrow::Column;
    /// assert_eq!("src_ip".parse::<Column>().unwrap(), Column::SrcIp);
    /// assert!("source".parse::<Column>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Column, TableError> {
        Column::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| TableError::UnknownColumn(s.to_string()))
    }
}

/// How addresses are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpFormat {
    /// Text, as tshark prints them (`192.0.2.1`, `2001:db8::1`): what
    /// polars, pandas and Spark can group on, having no IP type.
    #[default]
    String,
    /// 16 bytes (`fixed_size_binary[16]`): IPv6 as is, IPv4 as an
    /// IPv4-mapped IPv6 address (`::ffff:192.0.2.1`).
    Binary,
}

/// What the table holds: its columns, in order, how addresses are stored,
/// and how packets are decoded.
///
/// ```
/// use pcap_parallel_arrow::{Column, TableOptions};
/// let opts = TableOptions::default().columns([Column::Ts, Column::SrcIp, Column::Len]);
/// let names: Vec<String> = opts.schema().fields().iter().map(|f| f.name().clone()).collect();
/// assert_eq!(names, ["ts", "src_ip", "len"]);
/// assert_eq!(TableOptions::default().schema().fields().len(), 19); // all but `data`
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    columns: Vec<Column>,
    ip: IpFormat,
    tunnels: Tunnels,
    /// Addresses as text are built as dictionaries (each distinct address
    /// formatted once a batch) for a writer that encodes them so: see
    /// [`TableOptions::batch_schema`].
    text_dictionary: bool,
    /// The columns were chosen ([`TableOptions::columns`]): the table of
    /// several inputs then gets no `file` column unless it is among them.
    chosen: bool,
}

impl Default for TableOptions {
    /// Every column except `file` and `data`, addresses as text, tunnels
    /// not entered.
    fn default() -> Self {
        TableOptions {
            columns: Column::ALL
                .into_iter()
                .filter(|c| !matches!(c, Column::File | Column::Data))
                .collect(),
            ip: IpFormat::String,
            tunnels: Tunnels::Outer,
            text_dictionary: false,
            chosen: false,
        }
    }
}

impl TableOptions {
    /// These columns, in this order (duplicates dropped).
    pub fn columns(mut self, columns: impl IntoIterator<Item = Column>) -> Self {
        self.chosen = true;
        self.columns.clear();
        for c in columns {
            if !self.columns.contains(&c) {
                self.columns.push(c);
            }
        }
        self
    }

    /// Adds the `data` column (the captured bytes) at the end, if absent.
    pub fn with_data(mut self) -> Self {
        if !self.columns.contains(&Column::Data) {
            self.columns.push(Column::Data);
        }
        self
    }

    /// Adds the `file` column (the input each packet comes from) after
    /// `frame_number` (or first), if absent: what a table of several
    /// captures read as one has unless its columns are chosen.
    pub fn with_file(mut self) -> Self {
        if !self.columns.contains(&Column::File) {
            let at = self
                .columns
                .iter()
                .position(|c| *c == Column::FrameNumber)
                .map_or(0, |i| i + 1);
            self.columns.insert(at, Column::File);
        }
        self
    }

    /// The options for a table of `inputs` inputs read as one: with the
    /// `file` column when there are several, unless the columns were chosen.
    pub(crate) fn for_inputs(self, inputs: usize) -> Self {
        if inputs > 1 && !self.chosen {
            self.with_file()
        } else {
            self
        }
    }

    /// How addresses are stored (default: [`IpFormat::String`]).
    pub fn ip_format(mut self, ip: IpFormat) -> Self {
        self.ip = ip;
        self
    }

    /// Which tunnels the decoded columns look through (default: none; the
    /// first IP header). `flow_id` is always that of the outer headers, as
    /// `Capture::flows` computes it.
    pub fn tunnels(mut self, tunnels: Tunnels) -> Self {
        self.tunnels = tunnels;
        self
    }

    /// The chosen columns.
    pub fn selected(&self) -> &[Column] {
        &self.columns
    }

    /// How addresses are stored.
    pub fn ip(&self) -> IpFormat {
        self.ip
    }

    /// Has addresses as text built as dictionaries (the Parquet writer's
    /// choice: it writes them as a dictionary-encoded column anyway).
    pub(crate) fn text_dictionary(mut self) -> Self {
        self.text_dictionary = true;
        self
    }

    /// Whether addresses are built as a dictionary of text.
    pub(crate) fn builds_text_dictionary(&self) -> bool {
        self.text_dictionary && self.ip == IpFormat::String
    }

    /// The schema of the batches the workers build: [`TableOptions::schema`],
    /// with `dictionary<uint32, utf8>` for addresses as text when they are
    /// built as dictionaries.
    pub(crate) fn batch_schema(&self) -> SchemaRef {
        let dictionary = self.builds_text_dictionary();
        let fields = self.columns.iter().map(|&c| match c {
            Column::SrcIp | Column::DstIp if dictionary => c.field(self.ip).with_data_type(
                DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8)),
            ),
            _ => c.field(self.ip),
        });
        Arc::new(Schema::new(fields.collect::<Vec<_>>()))
    }

    pub(crate) fn decoder(&self) -> Decoder {
        Decoder::default().tunnels(self.tunnels)
    }

    /// The Arrow schema of the table.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| c.field(self.ip))
                .collect::<Vec<_>>(),
        ))
    }
}

//! # pcap-parallel-arrow
//!
//! Packet tables: any capture pcap-parallel reads (pcap or pcapng, plain
//! or compressed, a file or a pipe) as one row per packet, with time,
//! lengths, addresses, ports, protocol, TCP flags and the flow id, built in
//! parallel and delivered in file order as Arrow record batches; written
//! as Parquet, Arrow IPC, CSV or NDJSON, streamed in bounded memory.
//!
//! ```no_run
//! use pcap_parallel::Capture;
//! use pcap_parallel_arrow::{Format, PacketTable};
//!
//! let file = std::fs::File::create("trace.parquet")?;
//! let (written, report) = PacketTable::new(Capture::open("trace.pcap")?).write(Format::PARQUET, file);
//! println!("{} rows", written?.rows);
//! if let Some(e) = report.input_error {
//!     eprintln!("the capture is damaged: {e} (the rows before it were written)");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The columns ([`Column`]) are named after the Wireshark fields they equal
//! (the first IP layer, defragmentation off), and are the same in the
//! library, the command line (`pcap-parallel table`) and Python. Decoding
//! is `pcap_parallel::decode`'s; `flow_id` is the hash `Capture::flows`
//! shards by.
//!
//! * [`schema`]: the columns and their types ([`TableOptions`]).
//! * `builder`: one chunk's batch, built on its worker.
//! * [`table`]: [`PacketTable`], batches in file order, streamed
//!   ([`BatchReader`]).
//! * [`mod@write`]: the output formats, encoded on the workers.

mod builder;
pub mod error;
pub mod schema;
mod small_dict;
pub mod table;
pub mod write;

pub use error::TableError;
pub use schema::{Column, IpFormat, TableOptions};
pub use table::{BatchReader, PacketTable, chunk_batches};
pub use write::{Format, ParquetCompression, Written};

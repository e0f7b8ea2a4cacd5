//! # pcap-parallel
//!
//! Cut a packet capture of any size (pcap or pcapng, plain or compressed, a
//! file or a pipe) exactly at packet boundaries, and process the pieces on
//! every core, with results in file order.
//!
//! ```no_run
//! use pcap_parallel::Capture;
//!
//! // How many packets, in parallel: only record headers are read.
//! let n = Capture::open("trace.pcap")?.count()?;
//!
//! // Run your own code over chunks of the capture, on all cores.
//! let per_chunk: Vec<u64> = Capture::open("trace.pcapng.zst")?
//!     .map(|chunk| chunk.packets().filter(|p| p.data.len() > 1000).count() as u64)?;
//! # Ok::<(), pcap_parallel::Error>(())
//! ```
//!
//! ## How it works
//!
//! * [`format`](mod@format): the compression and capture format are told by magic
//!   bytes, never by the file name.
//! * `source`: a plain file is memory-mapped; compressed input and standard
//!   input are streamed through a bounded buffer, decompressed on a thread of
//!   their own.
//! * [`pcap`], [`pcapng`]: checked, zero-copy parsing of records and blocks.
//! * `resync` and `chunker`: workers find record boundaries in a mapped
//!   file on their own, from arbitrary byte offsets, and every guess is
//!   verified, so the chunks are exactly what a sequential reader sees.
//!   `streaming` cuts chunks from a stream as it is read.
//! * `capture`: [`Capture`] runs user code over [`Chunk`]s: a `producer`
//!   per kind of input cuts them in file order, and the ordered `pool` runs
//!   the code on worker threads, catching panics, with a bounded number of
//!   chunks in flight; the [`Report`] says what the run did.
//! * [`chunk`]: every chunk reads as a zero-copy packet iterator, or as a
//!   valid standalone capture.
//!
//! Every complete packet before a fault in the input is delivered; then the
//! error names the input, the byte offset and the packet number ([`error`]).

#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod admission;
mod block_type;
mod capture;
pub mod chunk;
mod chunker;
pub mod decode;
mod decompress;
pub mod error;
pub mod filter;
pub mod flow;
pub mod format;
mod hop;
mod inputs;
pub mod locator;
mod mapped;
pub mod output;
pub mod packet;
pub mod partition;
pub mod pcap;
pub mod pcapng;
mod pool;
mod producer;
pub mod reader;
mod report;
mod resync;
mod source;
pub mod split;
mod streaming;
pub mod summary;
pub mod tally;
#[cfg(test)]
mod testing;
mod walk;

pub use capture::{Capture, MAX_WORKERS, OnError, default_workers};
pub use chunk::{Chunk, Packets};
pub use decompress::{Decoding, WindowTooLarge};
pub use error::{ChunkFailure, ChunkFailureCause, Error, Fault, FormatError, Result, Skipped};
pub use filter::{Filter, FilterError};
pub use flow::{FlowKey, Flows};
pub use format::{CaptureFormat, Compression, Endian, PcapVariant};
pub use inputs::{InputOrder, InputsError, expand_inputs};
pub use packet::{LinkType, Packet, Timestamp};
pub use report::{BoxError, ChunkResult, Progress, Report};
pub use split::Split;
pub use walk::Limits;

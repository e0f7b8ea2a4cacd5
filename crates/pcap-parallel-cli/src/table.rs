//! `table`: one row per packet (time, lengths, addresses, ports, protocol,
//! flags, flow id) as Parquet, Arrow IPC, CSV or NDJSON, built in parallel
//! by `pcap-parallel-arrow` and written as chunks finish.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use pcap_parallel::decode::Tunnels;
use pcap_parallel::output::IfExists;
use pcap_parallel_arrow::{
    Column, Format, IpFormat, PacketTable, ParquetCompression, TableError, TableOptions,
};

use crate::args::{Chunking, Common, Inputs};
use crate::run::{self, Bar, Status, UsageError};
use crate::streams;

#[derive(Args, Debug)]
pub struct TableArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// Output file (`-` for standard output), written under a temporary
    /// name and renamed when complete.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    out: PathBuf,

    /// Output format [default: from OUT's extension: .parquet, .arrow
    /// (.feather, .ipc), .arrows, .csv, .ndjson (.jsonl)].
    #[arg(long, value_enum)]
    format: Option<FormatArg>,

    /// The columns, in order, comma-separated [default: all but data].
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    columns: Option<Vec<String>>,

    /// Add the `data` column: the captured bytes.
    #[arg(long)]
    data: bool,

    /// Addresses as text (`10.0.0.1`, `2001:db8::1`) or as 16 bytes (IPv4
    /// mapped into IPv6).
    #[arg(long, value_enum, default_value_t = IpAs::String)]
    ip_as: IpAs,

    /// Parquet compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Zstd)]
    compression: CompressionArg,

    /// Decode the IP header inside GRE tunnels (IP, Ethernet, ERSPAN, PPTP)
    /// rather than the outer one; flow_id stays the outer one's.
    #[arg(long, value_enum)]
    decapsulate: Option<Decapsulate>,

    /// Replace OUT if it exists.
    #[arg(short, long)]
    force: bool,

    #[command(flatten)]
    common: Common,

    #[command(flatten)]
    chunking: Chunking,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum FormatArg {
    /// Apache Parquet (a row group per chunk).
    Parquet,
    /// Arrow IPC file (Feather v2).
    Arrow,
    /// Arrow IPC stream.
    ArrowStream,
    /// CSV with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum IpAs {
    String,
    Binary,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum CompressionArg {
    Zstd,
    Snappy,
    Lz4,
    Gzip,
    None,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Decapsulate {
    Gre,
}

/// Examples, and the columns and what they hold.
pub const AFTER_HELP: &str = "\
Examples:
  pcap-parallel table trace.pcap -o trace.parquet
  pcap-parallel table trace.pcapng.zst -o - --format arrow-stream | python3 consume.py
  pcap-parallel table trace.pcap -o syn.csv --columns ts,src_ip,dst_ip,dst_port --filter 'tcp'

Columns (named after the Wireshark fields they equal; null where a layer is absent):
  frame_number  packet number from 1 (frame.number)      ts        capture time, ns, UTC
  cap_len, len  captured and on-the-wire bytes           link_type LINKTYPE_ value
  interface_id  pcapng interface (null for pcap)         vlan      outermost VLAN id
  ip_version    4 or 6                                   src_ip, dst_ip  first IP layer
  ip_proto      ip.proto / ipv6.nxt after ext. headers   ttl       ip.ttl / ipv6.hlim
  ip_id, ip_flags, frag_offset   IPv4 (or IPv6 fragment header) fields
  src_port, dst_port  TCP, UDP, UDP-Lite, DCCP, SCTP     tcp_flags tcp.flags
  flow_id       the symmetric flow hash --flows uses     data      captured bytes (--data)";

impl TableArgs {
    fn format(&self) -> Result<Format, UsageError> {
        let compression = match self.compression {
            CompressionArg::Zstd => ParquetCompression::Zstd,
            CompressionArg::Snappy => ParquetCompression::Snappy,
            CompressionArg::Lz4 => ParquetCompression::Lz4,
            CompressionArg::Gzip => ParquetCompression::Gzip,
            CompressionArg::None => ParquetCompression::None,
        };
        let format = match self.format {
            Some(FormatArg::Parquet) => Format::Parquet(compression),
            Some(FormatArg::Arrow) => Format::ArrowFile,
            Some(FormatArg::ArrowStream) => Format::ArrowStream,
            Some(FormatArg::Csv) => Format::Csv,
            Some(FormatArg::Ndjson) => Format::Ndjson,
            None if is_stdout(&self.out) => {
                return Err(UsageError(
                    "say which --format to write to standard output".into(),
                ));
            }
            None => match Format::from_path(&self.out) {
                Some(Format::Parquet(_)) => Format::Parquet(compression),
                Some(f) => f,
                None => {
                    return Err(UsageError(format!(
                        "cannot tell the format from {:?}: use --format",
                        self.out.display().to_string()
                    )));
                }
            },
        };
        Ok(format)
    }

    fn options(&self) -> Result<TableOptions, UsageError> {
        let mut options = TableOptions::default();
        if let Some(names) = &self.columns {
            let columns = names
                .iter()
                .map(|n| n.trim().parse::<Column>())
                .collect::<Result<Vec<_>, TableError>>()
                .map_err(|e| UsageError(e.to_string()))?;
            if columns.is_empty() {
                return Err(UsageError("--columns needs at least one name".into()));
            }
            options = options.columns(columns);
        }
        if self.data {
            options = options.with_data();
        }
        options = options.ip_format(match self.ip_as {
            IpAs::String => IpFormat::String,
            IpAs::Binary => IpFormat::Binary,
        });
        if self.decapsulate == Some(Decapsulate::Gre) {
            options = options.tunnels(Tunnels::Gre);
        }
        Ok(options)
    }
}

fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

pub fn run(args: TableArgs) -> anyhow::Result<Status> {
    if args.chunking.flows.is_some() {
        return Err(
            UsageError("table rows are in file order: --flows does not apply".into()).into(),
        );
    }
    let split = args.chunking.checked()?;
    let format = args.format()?;
    let options = args.options()?;
    // A device or a pipe (`/dev/null`, a FIFO) is written to directly: there
    // is nothing to replace atomically, and it must never be replaced.
    let special = !is_stdout(&args.out)
        && std::fs::metadata(&args.out).is_ok_and(|m| !m.file_type().is_file() && !m.is_dir());
    if !is_stdout(&args.out) && !special && !args.force && args.out.exists() {
        anyhow::bail!("{} exists (use --force to replace it)", args.out.display());
    }
    let (capture, inputs) = run::open_inputs(&args.inputs, &args.common, split)?;
    if !is_stdout(&args.out) && !special {
        refuse_to_replace_an_input(&args.out, &inputs)?;
    }
    let (capture, bar) = Bar::attach(capture, &args.common, "table");
    let table = PacketTable::new(capture).options(options);
    let (written, mut report) = if is_stdout(&args.out) {
        table.write(format, Stdout)
    } else if special {
        match std::fs::OpenOptions::new().write(true).open(&args.out) {
            Ok(f) => table.write(format, std::io::BufWriter::with_capacity(1 << 20, f)),
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", args.out.display())),
        }
    } else {
        let if_exists = if args.force {
            IfExists::Replace
        } else {
            IfExists::Fail
        };
        table.write_file(format, &args.out, if_exists)
    };
    drop(bar);
    run::usage_error_in(&mut report)?;
    let status = run::finish(report.input_error, &report.skipped);
    match written {
        Ok(_) => Ok(status),
        // A closed or failed standard output: `streams` has the failure.
        Err(_) if streams::failed_already() => Ok(status),
        // Interrupted: `finish` said so, and no file was left.
        Err(_) if status == Status::Interrupted => Ok(status),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", args.out.display())),
    }
}

/// A usage error when `out` is one of the inputs (by device and inode:
/// another name, a hard link): a table never replaces its input.
fn refuse_to_replace_an_input(out: &Path, inputs: &[PathBuf]) -> Result<(), UsageError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(o) = std::fs::metadata(out) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(i) = std::fs::metadata(input)
            && (i.dev(), i.ino()) == (o.dev(), o.ino())
        {
            return Err(UsageError(format!(
                "{} is an input: the table would replace it",
                out.display()
            )));
        }
    }
    Ok(())
}

/// Standard output through `streams`, where every write is checked: a
/// failed write ends the table's run.
struct Stdout;

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        streams::write_out(buf);
        if streams::failed_already() {
            return Err(std::io::Error::other("standard output failed"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        streams::flush();
        if streams::failed_already() {
            return Err(std::io::Error::other("standard output failed"));
        }
        Ok(())
    }
}

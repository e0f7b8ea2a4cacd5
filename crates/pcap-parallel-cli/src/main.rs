//! `pcap-parallel`: info, top, split and exec over packet captures, on every core.
//!
//! Each subcommand lives in its own module; this file holds the argument
//! definitions shared by all of them and maps outcomes to exit codes:
//! 0 success, 1 the work failed (a broken input, a failed command), 2 a
//! usage error.

mod exec;
mod info;
mod run;
mod split;
mod table;
mod top;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// Exit status when the work failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage error (what clap uses too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status after SIGINT or SIGTERM, as shells report a signal death.
pub const EXIT_INTERRUPTED: u8 = 130;

const AFTER_HELP: &str = "\
Inputs are pcap or pcapng files, plain or compressed (gzip, bzip2, xz, zstd, lz4), or `-` for
standard input; the format is told by magic bytes, never by the file name.

Exit status: 0 success (damage skipped under --on-error skip is only a warning), 1 the work
failed (a broken input, a failed command), 2 usage error, 130 interrupted (SIGINT or SIGTERM: the
workers stop, temporary files are removed and only complete outputs remain).";

#[derive(Parser, Debug)]
#[command(
    name = "pcap-parallel",
    version,
    about = "Cut packet captures exactly at packet boundaries and process the pieces on every core",
    after_help = AFTER_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summarise captures (like capinfos), computed in parallel.
    #[command(after_help = "Examples:
  pcap-parallel info trace.pcap
  pcap-parallel info --json *.pcapng | jq .packets
  zcat trace.pcap.gz | pcap-parallel info -")]
    Info(info::InfoArgs),

    /// Count packets and bytes per source, destination, port, protocol or conversation.
    #[command(after_help = "Examples:
  pcap-parallel top trace.pcap                       # the 10 busiest source addresses
  pcap-parallel top trace.pcap --by dport --limit 0  # every destination port
  pcap-parallel top trace.pcapng.zst --by conversation --json")]
    Top(top::TopArgs),

    /// Write the chunks as standalone capture files.
    #[command(after_help = "Examples:
  pcap-parallel split trace.pcap -o parts --packets 100000
  pcap-parallel split trace.pcapng.gz -o parts --bytes 1G --compress zstd
  pcap-parallel split trace.pcap -o parts --chunks 8 --force")]
    Split(split::SplitArgs),

    /// Run a command once per chunk, in parallel, with its output in chunk order.
    #[command(after_help = "Examples:
  pcap-parallel exec trace.pcap --chunks 8 -- tshark -r {} -q -z io,stat,0
  pcap-parallel exec trace.pcap -- tcpdump -nr - 'tcp port 80'
  pcap-parallel exec trace.pcap --packets 50000 -- python3 analyse.py {}

`{}` stands for the chunk as a temporary capture file (removed afterwards); with no `{}` the chunk
is written to the command's standard input. No shell is involved: call one yourself if you need it.
Each run sees PCAP_PARALLEL_CHUNK, PCAP_PARALLEL_FIRST_PACKET and PCAP_PARALLEL_PACKETS.")]
    Exec(exec::ExecArgs),

    /// Write one row per packet (time, lengths, addresses, ports, protocol, flags,
    /// flow id) as Parquet, Arrow, CSV or NDJSON, built on every core.
    #[command(after_help = table::AFTER_HELP)]
    Table(table::TableArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:
  pcap-parallel completions bash > /etc/bash_completion.d/pcap-parallel")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options every command that reads a capture takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Worker threads [default: the cores available].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,

    /// Stop after this many packets.
    #[arg(short = 'c', long, value_name = "N")]
    pub max_packets: Option<u64>,

    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,

    /// At damaged input: stop (after every complete packet before it), or
    /// skip to the next record boundary and go on, listing what was skipped.
    #[arg(long, value_enum, default_value_t = OnErrorArg::Stop)]
    pub on_error: OnErrorArg,

    /// Only packets matching this tcpdump filter expression (pcap-filter(7);
    /// needs libpcap, Debian's libpcap0.8).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,

    /// A pcap record claiming more captured bytes than this is damage.
    #[arg(long, value_name = "BYTES", default_value_t = 262_144)]
    pub max_caplen: u32,
}

/// What to do at damaged input.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErrorArg {
    /// Stop with an error (exit status 1).
    Stop,
    /// Skip the damage, warn, and go on (exit status 0).
    Skip,
}

/// How to cut the input into chunks (at most one).
#[derive(Args, Debug, Clone, Default)]
#[group(multiple = false)]
pub struct Chunking {
    /// Packets per chunk.
    #[arg(long, value_name = "N")]
    pub packets: Option<u64>,

    /// About this many bytes per chunk (suffixes K, M, G: powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub bytes: Option<u64>,

    /// This many chunks of about equal size.
    #[arg(long, value_name = "K")]
    pub chunks: Option<usize>,

    /// This many shards by flow: both directions of a conversation in the
    /// same shard, each shard's packets in file order.
    #[arg(long, value_name = "K")]
    pub flows: Option<usize>,
}

/// What a flow is, for `--flows`.
#[derive(Args, Debug, Clone, Default)]
pub struct FlowArgs {
    /// five-tuple: addresses, protocol and ports (fragments by addresses,
    /// protocol and IP id); host-pair: all traffic between two addresses.
    #[arg(long, value_enum, default_value_t = FlowKeyArg::FiveTuple)]
    pub flow_key: FlowKeyArg,
}

/// See [`FlowArgs`].
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlowKeyArg {
    #[default]
    FiveTuple,
    HostPair,
}

impl FlowArgs {
    pub fn key(&self) -> pcap_parallel::FlowKey {
        match self.flow_key {
            FlowKeyArg::FiveTuple => pcap_parallel::FlowKey::FiveTuple,
            FlowKeyArg::HostPair => pcap_parallel::FlowKey::HostPair,
        }
    }
}

impl Chunking {
    pub fn split(&self) -> pcap_parallel::Split {
        match (self.packets, self.bytes, self.chunks) {
            (Some(n), _, _) => pcap_parallel::Split::Packets(n),
            (_, Some(b), _) => pcap_parallel::Split::Bytes(b),
            (_, _, Some(k)) => pcap_parallel::Split::Chunks(k),
            _ => pcap_parallel::Split::Auto,
        }
    }
}

/// Parses `123`, `64K`, `100M`, `2G` (also `KiB`, `MB`...; powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (try 100M)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))?;
    if v == 0 {
        return Err("a size must be at least 1 byte".into());
    }
    Ok(v)
}

/// A capture to read: a path or `-`.
pub type Input = PathBuf;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Top(a) => top::run(a),
        Command::Split(a) => split::run(a),
        Command::Exec(a) => exec::run(a),
        Command::Table(a) => table::run(a),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "pcap-parallel",
                &mut std::io::stdout(),
            );
            Ok(run::Status::Ok)
        }
    };
    match result {
        Ok(run::Status::Ok) => ExitCode::SUCCESS,
        Ok(run::Status::Failed) => ExitCode::from(EXIT_FAILURE),
        Ok(run::Status::Interrupted) => ExitCode::from(EXIT_INTERRUPTED),
        Err(e) => {
            let usage = e.downcast_ref::<run::UsageError>().is_some();
            eprintln!("pcap-parallel: {e:#}");
            ExitCode::from(if usage { EXIT_USAGE } else { EXIT_FAILURE })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}

//! `pcap-parallel`: info, top, split and exec over packet captures, on every core.
//!
//! Each subcommand lives in its own module, the options they share in
//! [`args`]; this file holds the command table and maps outcomes to exit
//! codes: 0 success, 1 the work failed (a broken input, a failed command, a
//! failed write), 2 a usage error, 130 interrupted, 141 an output pipe
//! closed ([`streams`]).

mod args;
mod exec;
mod exec_output;
mod info;
mod run;
mod split;
mod stale;
mod streams;
mod summary;
mod table;
mod top;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
failed (a broken input, a failed command, a failed write, an input that shrank during the run),
2 usage error, 130 interrupted (SIGINT, SIGTERM or SIGHUP: the workers stop, temporary files are
removed and only complete outputs remain), 141
standard output or standard error is a pipe whose reader has gone (`| head -1`): the work stops
as after an interrupt, quietly, with the status of a tool killed by SIGPIPE.";

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
    #[command(
        after_help = "Only IP packets are counted (for sport and dport, those with ports); bytes are
lengths on the wire (each packet's original length, however much of it the capture kept).

Examples:
  pcap-parallel top trace.pcap                       # the 10 busiest source addresses
  pcap-parallel top trace.pcap --by dport --limit 0  # every destination port
  pcap-parallel top trace.pcapng.zst --by conversation --json"
    )]
    Top(top::TopArgs),

    /// Write the chunks as standalone capture files.
    #[command(after_help = "Examples:
  pcap-parallel split trace.pcap -o parts            # parts sized for the cores
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
Each run sees PCAP_PARALLEL_CHUNK (its number, from 0), PCAP_PARALLEL_FIRST_PACKET (the number of
the chunk's first packet in the capture, from 1) and PCAP_PARALLEL_PACKETS (how many packets the
chunk holds: with --filter, those that pass it).")]
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(e),
    };
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Top(a) => top::run(a),
        Command::Split(a) => split::run(a),
        Command::Exec(a) => exec::run(a),
        Command::Table(a) => table::run(a),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pcap-parallel", &mut script);
            streams::write_out(&script);
            Ok(run::Status::Ok)
        }
    };
    let status = match result {
        Ok(run::Status::Ok) => 0,
        Ok(run::Status::Failed) => EXIT_FAILURE,
        Ok(run::Status::Interrupted) => EXIT_INTERRUPTED,
        Err(e) if e.downcast_ref::<run::Interrupted>().is_some() => {
            errln!("pcap-parallel: interrupted");
            EXIT_INTERRUPTED
        }
        Err(e) => {
            let usage = e.downcast_ref::<run::UsageError>().is_some();
            errln!("pcap-parallel: {e:#}");
            if usage { EXIT_USAGE } else { EXIT_FAILURE }
        }
    };
    // A failed write decides the status, whatever the work's was.
    ExitCode::from(streams::exit_status().unwrap_or(status))
}

/// Help, version, or a bad command line, as clap prints them; a closed
/// stream is treated as everywhere else.
fn argument_error(e: clap::Error) -> ExitCode {
    match e.print() {
        Ok(()) => ExitCode::from(e.exit_code() as u8),
        Err(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(streams::EXIT_CLOSED)
        }
        Err(_) => ExitCode::from(EXIT_FAILURE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}

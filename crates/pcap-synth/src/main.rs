//! `pcap-synth`: writes a deterministic synthetic capture.
//!
//! ```text
//! pcap-synth [--seed N] [--format pcap|pcapng] (--packets N | --bytes SIZE) OUT
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, ValueEnum};
use pcap_synth::{Format, Synth};

/// Writes a deterministic synthetic capture (the same seed, format and size
/// give the same bytes) with a realistic traffic mix: IMIX frame sizes,
/// IPv4 and IPv6, TCP, UDP and ICMP, VLAN tags, some records cut short by
/// a snapshot length.
#[derive(Parser, Debug)]
#[command(name = "pcap-synth", version)]
#[command(group(ArgGroup::new("size").required(true).args(["packets", "bytes"])))]
struct Args {
    /// The seed of the traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// The capture format.
    #[arg(long, value_enum, default_value_t = FormatArg::Pcap)]
    format: FormatArg,

    /// How many packets.
    #[arg(long, value_name = "N")]
    packets: Option<u64>,

    /// About this many bytes (suffixes K, M, G: powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    bytes: Option<u64>,

    /// The file to write.
    out: PathBuf,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum FormatArg {
    /// Classic pcap, microsecond timestamps.
    Pcap,
    /// pcapng, Enhanced Packet Blocks on two interfaces.
    Pcapng,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("not a size: {s:?} (try 3M or 1G)"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let out = args.out.display();
    let file = match std::fs::File::create(&args.out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pcap-synth: {out}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = match args.format {
        FormatArg::Pcap => Format::Pcap,
        FormatArg::Pcapng => Format::Pcapng,
    };
    let mut synth = Synth::new(args.seed);
    let written = match (args.packets, args.bytes) {
        (Some(n), _) => synth.write(file, format, n),
        (None, Some(b)) => synth.write_bytes(file, format, b),
        (None, None) => unreachable!("clap requires one of them"),
    };
    match written {
        Ok(w) => {
            eprintln!("{out}: {} packets, {} bytes", w.packets, w.bytes);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pcap-synth: {out}: {e}");
            ExitCode::FAILURE
        }
    }
}

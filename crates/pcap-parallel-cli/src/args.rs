//! The options several commands share, and how they turn into the
//! library's settings.

use std::path::PathBuf;

use clap::Args;
use pcap_parallel::Split;

use crate::run::UsageError;

/// A capture to read: a path or `-`.
pub type Input = PathBuf;

/// The captures a command reads as one.
#[derive(Args, Debug, Clone)]
pub struct Inputs {
    /// Capture files (`-` for standard input). Several, or a quoted glob
    /// pattern ('day-*.pcap.gz'), are read as one capture: in the order
    /// given (a pattern's files sorted by name) or by --order.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<Input>,

    /// The order in which several files are read: as given, or by the time
    /// of each file's first packet (rotated files named trace9, trace10).
    #[arg(long, value_enum, default_value_t = OrderArg::Given)]
    pub order: OrderArg,
}

/// See [`Inputs::order`].
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderArg {
    /// As given.
    Given,
    /// By first packet time.
    Time,
}

impl Inputs {
    /// The paths the arguments name, patterns expanded.
    pub fn paths(&self) -> Result<Vec<PathBuf>, UsageError> {
        pcap_parallel::expand_inputs(&self.files).map_err(|e| UsageError(e.to_string()))
    }

    /// The library's order.
    pub fn order(&self) -> pcap_parallel::InputOrder {
        match self.order {
            OrderArg::Given => pcap_parallel::InputOrder::Given,
            OrderArg::Time => pcap_parallel::InputOrder::Time,
        }
    }
}

/// The help heading of chunking options in commands whose results do not
/// depend on them (`info`, `top`).
pub const SPEED_ONLY: &str = "Chunking (changes the speed, never the results)";

/// Options every command that reads a capture takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Worker threads [default: the cores available].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,

    /// Stop after this many packets (with --filter: this many that pass it,
    /// as tcpdump counts); the input after them is not read.
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

    /// A pcapng section describing more interfaces than this is damage
    /// (each costs memory while its section is read).
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    pub max_interfaces: u32,

    /// The largest window a zstd frame may ask for (zstd keeps that much
    /// decoded data in memory); `zstd --long=31` from a pipe needs 2G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "1G")]
    pub max_zstd_window: u64,
}

/// What to do at damaged input.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnErrorArg {
    /// Stop with an error (exit status 1).
    Stop,
    /// Skip the damage, warn, and go on (exit status 0).
    Skip,
}

/// How to cut the input into chunks (at most one; by default chunks are
/// sized for the worker count).
#[derive(Args, Debug, Clone, Default)]
#[group(multiple = false)]
pub struct Chunking {
    /// Packets per chunk.
    #[arg(long, value_name = "N")]
    pub packets: Option<u64>,

    /// About this many bytes per chunk (suffixes K, M, G, T: powers of 1024;
    /// decimals allowed, as in 1.5G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub bytes: Option<u64>,

    /// At most K chunks of about equal size: fewer when the input has fewer
    /// packets (a chunk always holds one) or ends early; damage passed over
    /// with --on-error skip stays inside a chunk. A stream (standard input,
    /// a pipe, a compressed file) is first decompressed into a temporary
    /// file in $TMPDIR, since its length must be known.
    #[arg(long, value_name = "K")]
    pub chunks: Option<usize>,

    /// This many shards by flow: both directions of a conversation in the
    /// same shard, each shard's packets in file order.
    #[arg(long, value_name = "K")]
    pub flows: Option<usize>,
}

impl Chunking {
    /// The library's chunking (automatic for `--flows`, which shards after chunking).
    pub fn split(&self) -> Split {
        match (self.packets, self.bytes, self.chunks) {
            (Some(n), _, _) => Split::Packets(n),
            (_, Some(b), _) => Split::Bytes(b),
            (_, _, Some(k)) => Split::Chunks(k),
            _ => Split::Auto,
        }
    }

    /// The chunking, or a usage error for counts and sizes of zero.
    pub fn checked(&self) -> Result<Split, UsageError> {
        if self.flows == Some(0) {
            return Err(UsageError("--flows must be at least 1".into()));
        }
        let split = self.split();
        split.validate().map_err(|e| UsageError(e.to_string()))?;
        Ok(split)
    }
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

/// Parses `123`, `64K`, `1.5M`, `2G`, `1T` (also `KiB`, `MB`...; powers of
/// 1024), rounding down to whole bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let end = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let not_a_number = || format!("not a size: {s:?} (try 100M or 1.5G)");
    if !unit.trim().bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(not_a_number());
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
    };
    let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() && fraction.is_empty()
        || fraction.contains('.')
        || fraction.len() > 18
        || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit())
    {
        return Err(not_a_number());
    }
    let too_large = || format!("size too large: {s:?}");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let fraction_bytes = if fraction.is_empty() {
        0
    } else {
        let digits: u128 = fraction.parse().map_err(|_| not_a_number())?;
        digits * mult as u128 / 10u128.pow(fraction.len() as u32)
    };
    let v = whole
        .checked_mul(mult as u128)
        .and_then(|w| w.checked_add(fraction_bytes))
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(too_large)?;
    if v == 0 {
        return Err("a size must be at least 1 byte".into());
    }
    Ok(v)
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
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("1.5M"), Ok(3 << 19));
        assert_eq!(parse_size("0.5K"), Ok(512));
        assert_eq!(parse_size(".25K"), Ok(256));
        assert_eq!(parse_size("2.K"), Ok(2048));
        assert!(parse_size("0").is_err());
        assert!(parse_size("0.0001").is_err(), "below one byte");
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
        let unit = parse_size("12Q").unwrap_err();
        assert!(unit.contains("unit"), "{unit}");
        // A bad number is not blamed on the unit.
        for bad in ["1.2.3M", ".M", "1,5M", "-1K", "1 .5M"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("not a size"), "{bad}: {e}");
        }
    }
}

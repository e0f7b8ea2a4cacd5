//! `pcap-synth`: writes a deterministic synthetic capture.
//!
//! ```text
//! pcap-synth [--seed N] [--format pcap|pcapng] (--packets N | --bytes N[K|M|G]) OUT
//! ```

use std::process::ExitCode;

use pcap_synth::{Format, Synth};

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

fn main() -> ExitCode {
    let usage =
        "usage: pcap-synth [--seed N] [--format pcap|pcapng] (--packets N | --bytes SIZE) OUT";
    let mut args = std::env::args().skip(1);
    let (mut seed, mut format, mut packets, mut bytes, mut out) =
        (1u64, Format::Pcap, None, None, None);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(usage);
        let parsed = match a.as_str() {
            "--seed" => value().map(|v| seed = v.parse().unwrap_or(seed)),
            "--format" => value().map(|v| {
                format = if v == "pcapng" {
                    Format::Pcapng
                } else {
                    Format::Pcap
                }
            }),
            "--packets" => value().map(|v| packets = v.parse().ok()),
            "--bytes" => value().map(|v| bytes = parse_size(&v)),
            _ if out.is_none() && !a.starts_with("--") => {
                out = Some(a.clone());
                Ok(())
            }
            _ => Err(usage),
        };
        if let Err(u) = parsed {
            eprintln!("{u}");
            return ExitCode::from(2);
        }
    }
    let Some(out) = out else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::create(&out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pcap-synth: {out}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut synth = Synth::new(seed);
    let written = match (packets, bytes) {
        (Some(n), _) => synth.write(file, format, n),
        (None, Some(b)) => synth.write_bytes(file, format, b),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
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

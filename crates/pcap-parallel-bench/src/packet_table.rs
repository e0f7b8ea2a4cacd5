//! Benchmark rows for packet tables (`pcap-parallel table`): Parquet and
//! Arrow IPC from the largest capture, against `tshark -T fields` printing
//! the same columns; packets per second, Parquet size against the capture's
//! size, peak heap.
//!
//! ```text
//! ./target/release/pcap-parallel-bench --table-only [--sizes 1G] [--runs N]
//! ```
//!
//! tshark takes minutes on the whole capture, so it reads a prefix of it
//! (the same generator and seed write the first [`PREFIX`] bytes of the same
//! packets), and the ratio compares time per packet; ours is also measured on
//! that prefix, in the same run.

use std::path::Path;

use super::{Measure, Opts, Row, measure, s, which};

/// How much of the capture tshark reads.
pub(crate) const PREFIX: u64 = 32 << 20;

/// The tshark fields that are the table's columns.
const TSHARK_FIELDS: &[&str] = &[
    "frame.number",
    "frame.time_epoch",
    "frame.cap_len",
    "frame.len",
    "frame.interface_id",
    "vlan.id",
    "ip.version",
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "ip.proto",
    "ipv6.nxt",
    "ip.ttl",
    "ipv6.hlim",
    "ip.id",
    "ip.flags",
    "ip.frag_offset",
    "tcp.srcport",
    "udp.srcport",
    "tcp.dstport",
    "udp.dstport",
    "tcp.flags",
];

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn packets(path: &Path) -> u64 {
    pcap_parallel::Capture::open(path).unwrap().count().unwrap()
}

/// Seconds per packet.
fn per_packet(m: &Measure, packets: u64) -> f64 {
    m.median() / packets as f64
}

/// The table rows of the suite, for the capture `label` (and its prefix).
pub(crate) fn rows(o: &Opts, pp: &str, label: &str, prefix: u64) -> (Vec<Row>, Vec<String>) {
    let input = o.data.join(format!("{label}.pcap"));
    let short = o
        .data
        .join(format!("{label}-prefix-{}M.pcap", prefix >> 20));
    if !short.exists() {
        pcap_synth::Synth::new(42)
            .write_bytes(
                std::fs::File::create(&short).unwrap(),
                pcap_synth::Format::Pcap,
                prefix,
            )
            .unwrap();
    }
    let out = o.data.join("table-out.parquet");
    let (i, sh, ou) = (
        input.to_string_lossy().to_string(),
        short.to_string_lossy().to_string(),
        out.to_string_lossy().to_string(),
    );
    let n = packets(&input);
    let n_short = packets(&short);
    eprintln!("table, {label} pcap ({n} packets):");
    let parquet = measure(
        "table → Parquet",
        &s(&[pp, "table", "-q", &i, "-o", &ou, "--force"]),
        o.runs,
        None,
    );
    let parquet_bytes = size_of(&out);
    let arrow = measure(
        "table → Arrow IPC /dev/null",
        &s(&[
            pp,
            "table",
            "-q",
            &i,
            "-o",
            "/dev/null",
            "--format",
            "arrow",
        ]),
        o.runs,
        None,
    );
    let cat = measure("cat", &s(&["cat", &i]), o.runs, None);
    let mut rows = vec![
        Row {
            what: format!("table → Parquet (zstd), {label} pcap"),
            ours: parquet.clone(),
            baseline: Some(cat.clone()),
            target: "≥ 5 M packets/s on 2 cores".into(),
        },
        Row {
            what: format!("table → Arrow IPC to /dev/null, {label} pcap"),
            ours: arrow.clone(),
            baseline: Some(cat),
            target: "(for to_arrow() in Python)".into(),
        },
    ];
    let mut notes = vec![
        format!(
            "table → Parquet, {label}: {:.2} M packets/s (median {:.3} s, {n} packets); Arrow IPC {:.2} M packets/s",
            n as f64 / parquet.median() / 1e6,
            parquet.median(),
            n as f64 / arrow.median() / 1e6
        ),
        format!(
            "Parquet {:.1} MiB for a {:.1} MiB capture: {:.1}% of its size ({:.1} bytes a packet)",
            parquet_bytes as f64 / (1 << 20) as f64,
            size_of(&input) as f64 / (1 << 20) as f64,
            100.0 * parquet_bytes as f64 / size_of(&input) as f64,
            parquet_bytes as f64 / n as f64
        ),
    ];
    if which("tshark") {
        let mut argv = s(&[
            "tshark",
            "-n",
            "-r",
            &sh,
            "-o",
            "ip.defragment:FALSE",
            "-o",
            "ipv6.defragment:FALSE",
            "-T",
            "fields",
        ]);
        for f in TSHARK_FIELDS {
            argv.push("-e".into());
            argv.push((*f).into());
        }
        let tshark = measure("tshark -T fields (prefix)", &argv, 1, None);
        let ours_short = measure(
            "table → Parquet (prefix)",
            &s(&[pp, "table", "-q", &sh, "-o", &ou, "--force"]),
            o.runs,
            None,
        );
        rows.push(Row {
            what: format!(
                "table → Parquet vs tshark -T fields, {}M prefix",
                prefix >> 20
            ),
            ours: ours_short,
            baseline: Some(tshark.clone()),
            target: "≥ 100× faster".into(),
        });
        notes.push(format!(
            "per packet, {label} table → Parquet against tshark on the {}M prefix ({n_short} packets, {:.3} s): {:.0}× faster",
            prefix >> 20,
            tshark.median(),
            per_packet(&tshark, n_short) / per_packet(&parquet, n)
        ));
    }
    let _ = std::fs::remove_file(&out);
    (rows, notes)
}

/// `pcap-parallel-bench --table-only [--sizes 1G] [--runs N]`: only these
/// rows, for the largest size.
pub(crate) fn main(o: &Opts, pp: &str) {
    let (label, bytes) = o.sizes[o.sizes.len() - 1].clone();
    let input = o.data.join(format!("{label}.pcap"));
    if !input.exists() {
        eprintln!("generating {}", input.display());
        std::fs::create_dir_all(&o.data).unwrap();
        let tmp = input.with_extension("tmp");
        pcap_synth::Synth::new(42)
            .write_bytes(
                std::fs::File::create(&tmp).unwrap(),
                pcap_synth::Format::Pcap,
                bytes,
            )
            .unwrap();
        std::fs::rename(tmp, &input).unwrap();
    }
    let (rows, notes) = rows(o, pp, &label, PREFIX);
    println!("{}", super::table(&rows));
    for n in notes {
        println!("- {n}");
    }
}

//! The example from the original pcap-parallel README, in Rust: count the
//! source IP address of every packet of a capture, in parallel, then merge
//! the per-chunk counts.
//!
//! ```text
//! cargo run --release --example count_sources -- samples/sample.pcap
//! ```
//!
//! The Python original handed each chunk to a callback as a file handle and
//! returned futures to merge; here each chunk is handed to a closure as a
//! [`Chunk`], and the results come back in file order. Unlike the original
//! (IPv4 over Ethernet only), every link type the crate decodes and IPv6
//! are counted.

use std::collections::HashMap;
use std::net::IpAddr;

use pcap_parallel::{Capture, Chunk, decode};

/// Process one chunk of a larger capture: count its packets' source addresses.
///
/// This runs on several threads at once, once per chunk.
pub fn process_partial_pcap(chunk: &Chunk) -> HashMap<IpAddr, u64> {
    let mut srcs = HashMap::new();
    for packet in chunk.packets() {
        if let Some(ip) = decode::ip(packet.link_type, packet.data) {
            *srcs.entry(ip.src).or_insert(0) += 1;
        }
    }
    srcs
}

/// Counts the source addresses of the capture at `path` (sorted by count,
/// then address).
pub fn count_sources(path: &str) -> Result<Vec<(IpAddr, u64)>, pcap_parallel::Error> {
    let partial_results = Capture::open(path)?.map(process_partial_pcap)?;

    // merge the results
    let mut total_counts: HashMap<IpAddr, u64> = HashMap::new();
    for partial in partial_results {
        for (key, count) in partial {
            *total_counts.entry(key).or_insert(0) += count;
        }
    }
    let mut sorted: Vec<(IpAddr, u64)> = total_counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(sorted)
}

#[allow(dead_code)] // not called when a test includes this file
fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "samples/sample.pcap".to_string());
    match count_sources(&path) {
        Ok(counts) => {
            // print the results
            for (key, count) in counts {
                println!("{:<30} {:>8}", key.to_string(), count);
            }
        }
        Err(e) => {
            eprintln!("count_sources: {e}");
            std::process::exit(1);
        }
    }
}

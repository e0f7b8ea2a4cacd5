//! Helpers shared by the integration tests: the corpus and its manifest,
//! and the fingerprints `fingerprint.py` computes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use pcap_parallel::{Chunk, Packet};
use sha2::{Digest, Sha256};

/// The shared corpus: `$PCAP_CORPUS`, else `../shared/corpus` beside the
/// repository. Its absence is a failure, never a skip.
pub fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("PCAP_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "the capture corpus is missing: set PCAP_CORPUS or put it at {}",
        dir.display()
    );
    dir
}

/// One row of MANIFEST.tsv.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: String,
    pub path: PathBuf,
    pub fields: HashMap<String, String>,
}

impl Entry {
    pub fn get(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
    pub fn packets(&self) -> u64 {
        self.get("packets_parser").parse().unwrap()
    }
    pub fn ok(&self) -> bool {
        self.get("parser_status") == "ok"
    }
}

pub fn manifest() -> Vec<Entry> {
    let dir = corpus_dir();
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let entries: Vec<Entry> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let fields: HashMap<String, String> = header
                .iter()
                .zip(l.split('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let file = fields["file"].clone();
            Entry {
                path: dir.join(&file),
                file,
                fields,
            }
        })
        .collect();
    assert!(
        entries.len() >= 89,
        "manifest lists {} files",
        entries.len()
    );
    entries
}

/// The fingerprints of a run of packets, computed as fingerprint.py does.
#[derive(Debug, Default, Clone)]
pub struct Fingerprint {
    pub packets: u64,
    data: Sha256,
    records: Sha256,
}

impl Fingerprint {
    pub fn add(&mut self, p: &Packet<'_>) {
        self.packets += 1;
        self.data.update(p.data);
        let ts = p.timestamp.map(|t| t.to_string()).unwrap_or_default();
        self.records
            .update(format!("{}\t{}\t{}\n", p.data.len(), p.original_len, ts).as_bytes());
    }
    pub fn add_chunk(&mut self, c: &Chunk) {
        for p in c.packets() {
            self.add(&p);
        }
    }
    pub fn data_sha256(&self) -> String {
        hex(&self.data.clone().finalize())
    }
    pub fn records_sha256(&self) -> String {
        hex(&self.records.clone().finalize())
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An owned copy of a packet, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub timestamp: Option<i128>,
    pub original_len: u32,
    pub link_type: u16,
    pub interface_id: u32,
    pub data: Vec<u8>,
}

pub fn owned(p: &Packet<'_>) -> Owned {
    Owned {
        timestamp: p.timestamp.map(|t| t.as_nanos()),
        original_len: p.original_len,
        link_type: p.link_type.0,
        interface_id: p.interface_id,
        data: p.data.to_vec(),
    }
}

impl Fingerprint {
    /// Appends another run's packets, as if they had been added here.
    /// Only possible because a chunk's fingerprint is recomputed from its
    /// packets: this replays them.
    pub fn merge(&mut self, other: Replay) {
        for (data, line) in other.items {
            self.packets += 1;
            self.data.update(&data);
            self.records.update(line.as_bytes());
        }
    }
}

/// Packets kept for replaying into a [`Fingerprint`] in order.
#[derive(Debug, Default)]
pub struct Replay {
    items: Vec<(Vec<u8>, String)>,
}

impl Replay {
    pub fn add_chunk(&mut self, c: &Chunk) {
        for p in c.packets() {
            let ts = p.timestamp.map(|t| t.to_string()).unwrap_or_default();
            self.items.push((
                p.data.to_vec(),
                format!("{}\t{}\t{}\n", p.data.len(), p.original_len, ts),
            ));
        }
    }
}

/// A packet as the tests compare it: offset, original length, timestamp, bytes.
pub type PacketTuple = (u64, u32, Option<i128>, Vec<u8>);

/// Every packet of a run, in order.
pub fn packet_tuples(
    capture: pcap_parallel::Capture,
) -> Result<Vec<PacketTuple>, pcap_parallel::Error> {
    Ok(capture
        .map(|c| {
            c.packets()
                .map(|p| {
                    (
                        p.offset,
                        p.original_len,
                        p.timestamp.map(|t| t.as_nanos()),
                        p.data.to_vec(),
                    )
                })
                .collect::<Vec<_>>()
        })?
        .concat())
}

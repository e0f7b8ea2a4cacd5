//! Helpers shared by the integration tests: the captures with a manifest
//! (the shared corpus, or the real captures shipped in `samples/real`), and
//! the fingerprints `fingerprint.py` computes.
//!
//! The shared corpus is found at `$PCAP_CORPUS`, else at `../shared/corpus`
//! beside the repository. When `PCAP_CORPUS` is set (CI sets it) or
//! `PCAP_CORPUS_REQUIRED=1`, its absence is a failure. Otherwise a clone
//! without it still runs every test: the manifest-driven ones over the
//! captures of `samples/real`, and those that need a particular corpus file
//! not shipped there return early; one line on standard error says so.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pcap_parallel::{Chunk, Packet};
use sha2::{Digest, Sha256};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The real captures shipped with the repository, with their manifest.
pub fn shipped_dir() -> PathBuf {
    repo_root().join("samples/real")
}

/// The shared corpus, if it is there (see the module documentation).
pub fn corpus() -> Option<PathBuf> {
    let explicit = std::env::var_os("PCAP_CORPUS");
    let required =
        explicit.is_some() || std::env::var("PCAP_CORPUS_REQUIRED").is_ok_and(|v| v == "1");
    let dir = match explicit {
        Some(d) => PathBuf::from(d),
        None => match repo_root().parent() {
            Some(beside) => beside.join("shared/corpus"),
            None => PathBuf::from("../shared/corpus"),
        },
    };
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    assert!(
        !required,
        "the capture corpus is missing at {} (PCAP_CORPUS or PCAP_CORPUS_REQUIRED=1 ask for it)",
        dir.display()
    );
    say_once(&format!(
        "corpus suite not run: no capture corpus at {} (set PCAP_CORPUS); \
         the manifest tests ran over the captures in samples/real",
        dir.display()
    ));
    None
}

/// Prints `line` on standard error once per `cargo test` run (the test
/// binaries are children of one cargo process), past the harness' capture.
fn say_once(line: &str) {
    use std::io::Write;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let marker = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corpus-note");
        let run = std::os::unix::process::parent_id().to_string();
        if std::fs::read_to_string(&marker).is_ok_and(|seen| seen == run) {
            return;
        }
        let _ = std::fs::write(&marker, &run);
        let _ = writeln!(std::io::stderr(), "{line}");
    });
}

/// A capture named as in the corpus: shipped in `samples/real`, or in the
/// corpus. `None` when neither has it: the test returns early.
pub fn capture_file(name: &str) -> Option<PathBuf> {
    let shipped = shipped_dir().join(name);
    if shipped.is_file() {
        return Some(shipped);
    }
    corpus().map(|c| c.join(name))
}

/// True when [`manifest`] lists the whole shared corpus (89 files or more),
/// not the few shipped captures.
pub fn whole_corpus() -> bool {
    corpus().is_some()
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

/// The captures the manifest-driven tests run over: every file of the
/// corpus, or without it the real captures shipped in `samples/real` (a
/// few of the corpus' files, with the same manifest rows).
pub fn manifest() -> Vec<Entry> {
    match corpus() {
        Some(dir) => {
            let entries = manifest_in(&dir);
            assert!(
                entries.len() >= 89,
                "manifest lists {} files",
                entries.len()
            );
            entries
        }
        None => manifest_in(&shipped_dir()),
    }
}

/// The rows of `dir/MANIFEST.tsv`, each with its file's path in `dir`.
pub fn manifest_in(dir: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
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
        .collect()
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

/// Every packet of a chunk, in order.
pub fn chunk_tuples(c: &pcap_parallel::Chunk) -> Vec<PacketTuple> {
    c.packets()
        .map(|p| {
            (
                p.offset,
                p.original_len,
                p.timestamp.map(|t| t.as_nanos()),
                p.data.to_vec(),
            )
        })
        .collect()
}

/// Every packet of a run, in order.
pub fn packet_tuples(
    capture: pcap_parallel::Capture,
) -> Result<Vec<PacketTuple>, pcap_parallel::Error> {
    Ok(capture.map(chunk_tuples)?.concat())
}

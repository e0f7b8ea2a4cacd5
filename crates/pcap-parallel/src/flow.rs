//! Whole flows per worker: sharding packets by conversation.
//!
//! [`Capture::flows`] routes every packet to one of K shards by a
//! *symmetric* hash of its flow, so both directions of a conversation land
//! in the same shard, and each shard sees its packets in file order, one
//! worker at a time: a closure can reassemble streams.
//!
//! **Keys** ([`FlowKey::FiveTuple`], the default): TCP, UDP, UDP-Lite, DCCP
//! and SCTP by addresses, protocol and ports; other IP traffic by addresses
//! and protocol; a fragment of an IP datagram (more-fragments set or a
//! non-zero offset, the first fragment included) by addresses, protocol and
//! IP identification, so that every fragment of a datagram, and the first
//! one that holds the ports, land together. Such a datagram may then be in
//! another shard than the unfragmented packets of its 5-tuple:
//! [`FlowKey::HostPair`] (all traffic between two addresses together) keeps
//! even those together, at the cost of balance. ICMP and ICMPv6 error
//! messages (unreachable, time exceeded, ...) go with the flow of the
//! datagram they quote, as Suricata and tshark associate them. Packets
//! without IP go by
//! their link-layer address pair (Ethernet MACs), or to shard 0. Tunnels are
//! not decapsulated. The hash (FNV-1a, 64 bits) is fixed: the same packet
//! goes to the same shard in every run and release.
//!
//! **How it runs.** Shard ids are computed in parallel, chunk by chunk, by
//! the usual workers. The shards are divided among a few shard workers (as
//! many as there are workers, or shards if fewer); each takes the chunks in
//! file order and walks them zero-copy, folding the packets of its own
//! shards. Only the shard ids of the chunks in flight (4 bytes a packet) are
//! held: memory stays flat in the input's size.
//!
//! ```no_run
//! use pcap_parallel::Capture;
//! // Bytes per shard, 8 shards, every conversation whole in one of them.
//! let per_shard: Vec<u64> = Capture::open("trace.pcap")?
//!     .flows(8)
//!     .fold(|_shard| 0u64, |acc, p| *acc += p.data.len() as u64, |_shard, acc| acc)?;
//! # Ok::<(), pcap_parallel::Error>(())
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use crossbeam_channel::bounded;

use crate::chunk::Chunk;
use crate::decode;
use crate::error::{ChunkFailure, ChunkFailureCause, Error, Result};
use crate::output::IfExists;
use crate::packet::{LinkType, Packet};
use crate::pcapng::Section;
use crate::pool::{guarded, panic_message};
use crate::{Capture, Report};

/// What a flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlowKey {
    /// Ports too, for TCP, UDP, SCTP and the like (see the module docs).
    #[default]
    FiveTuple,
    /// Only the two addresses: all traffic between two hosts together.
    HostPair,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn addr_bytes(a: &IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

/// The symmetric flow hash of a packet (equal for both directions): what
/// [`Capture::flows`] shards by, and a packet table's `flow_id`.
pub fn flow_hash(link_type: LinkType, data: &[u8], key: FlowKey) -> u64 {
    hash(&decode::headers(link_type, data), key)
}

/// The symmetric flow hash of a packet already decoded by
/// [`decode::headers`] (with tunnels not entered): the same as
/// [`flow_hash`], without decoding it again.
pub fn hash(headers: &decode::Headers<'_>, key: FlowKey) -> u64 {
    FlowBytes::of(headers, key).hash()
}

/// What a flow hash is computed from: the bytes that identify a packet's
/// flow, the same for both directions. [`FlowBytes::hash`] gives
/// [`flow_hash`]; [`FlowBytes::hash_all`] hashes many at once, faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowBytes {
    bytes: [u8; 48],
    len: u8,
}

impl Default for FlowBytes {
    /// No bytes: the hash is 0.
    fn default() -> Self {
        FlowBytes {
            bytes: [0; 48],
            len: 0,
        }
    }
}

/// Bytes of one end of a flow: a 16-byte address (IPv4 mapped), a port.
const END: usize = 18;

impl FlowBytes {
    /// Writes an end (address, port) at `at`, big-endian.
    fn put_end(&mut self, at: usize, (addr, port): (u128, u16)) {
        let end: &mut [u8; END] = (&mut self.bytes[at..at + END])
            .try_into()
            .expect("an end fits");
        end[..16].copy_from_slice(&addr.to_be_bytes());
        end[16..].copy_from_slice(&port.to_be_bytes());
    }

    fn push(&mut self, b: &[u8]) {
        let at = self.len as usize;
        self.bytes[at..at + b.len()].copy_from_slice(b);
        self.len += b.len() as u8;
    }

    /// The flow bytes of a decoded packet: a kind (`H` host pair, `F`
    /// fragment, `P` with ports, `A` addresses only, `L` link-layer
    /// addresses), the protocol, the two ends in order, and for fragments
    /// the datagram's identification. No bytes for a packet with neither
    /// IP nor link-layer addresses.
    pub fn of(headers: &decode::Headers<'_>, key: FlowKey) -> FlowBytes {
        let mut out = FlowBytes::default();
        out.set(headers, key);
        out
    }

    /// Makes these the flow bytes of a decoded packet, as [`FlowBytes::of`]
    /// gives them, in place: for a slot of a block of flows, written
    /// directly where they are hashed from (building them aside and copying
    /// them would read back, as wide words, bytes just stored piecemeal,
    /// which stalls the processor).
    pub fn set(&mut self, headers: &decode::Headers<'_>, key: FlowKey) {
        *self = FlowBytes::default();
        let out = self;
        // An ICMP error goes with the flow of the datagram it quotes (looked
        // for only in ICMP packets).
        let ip = headers.ip.map(|ip| match ip.protocol {
            1 | 58 => headers.icmp_quoted().unwrap_or(ip),
            _ => ip,
        });
        if let Some(ip) = ip {
            let (kind, sp, dp) = match (key, ip.fragment(), ip.ports) {
                (FlowKey::HostPair, _, _) => (b'H', 0, 0),
                (FlowKey::FiveTuple, Some(_), _) => (b'F', 0, 0),
                (FlowKey::FiveTuple, None, Some((sp, dp))) => (b'P', sp, dp),
                (FlowKey::FiveTuple, None, None) => (b'A', 0, 0),
            };
            // The two ends, address then port, in their byte order (the
            // order of the integers read big-endian): no byte comparison.
            let a = (u128::from_be_bytes(addr_bytes(&ip.src)), sp);
            let b = (u128::from_be_bytes(addr_bytes(&ip.dst)), dp);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            out.bytes[0] = kind;
            out.bytes[1] = ip.protocol;
            // A host pair has no protocol byte: its ends start at 1.
            let at = if kind == b'H' { 1 } else { 2 };
            out.put_end(at, lo);
            out.put_end(at + END, hi);
            out.len = (at + 2 * END) as u8;
            if let (FlowKey::FiveTuple, Some(f)) = (key, ip.fragment()) {
                out.push(&f.id.to_be_bytes());
            }
            return;
        }
        if let Some((s, d)) = headers.link_addresses() {
            let (lo, hi) = if s <= d { (s, d) } else { (d, s) };
            out.push(b"L");
            out.push(lo);
            out.push(hi);
        }
    }

    /// The flow hash: FNV-1a (64 bits) of the bytes, or 0 if there are none.
    pub fn hash(&self) -> u64 {
        match self.len {
            0 => 0,
            n => fnv(FNV_OFFSET, &self.bytes[..n as usize]),
        }
    }

    /// The hashes of many flows at once, into `out`: four computed side by
    /// side (FNV is a chain of multiplications, each waiting for the one
    /// before; four chains keep the multiplier busy), the same values as
    /// [`FlowBytes::hash`].
    pub fn hash_all(flows: &[FlowBytes], out: &mut Vec<u64>) {
        let mut quads = flows.chunks_exact(4);
        for q in &mut quads {
            let n = q.iter().map(|f| f.len).min().unwrap_or(0) as usize;
            let mut h = [FNV_OFFSET; 4];
            for i in 0..n {
                for lane in 0..4 {
                    h[lane] = (h[lane] ^ q[lane].bytes[i] as u64).wrapping_mul(FNV_PRIME);
                }
            }
            for lane in 0..4 {
                let f = &q[lane];
                out.push(match f.len {
                    0 => 0,
                    len => fnv(h[lane], &f.bytes[n..len as usize]),
                });
            }
        }
        out.extend(quads.remainder().iter().map(FlowBytes::hash));
    }
}

/// The shard (of `shards`) a packet belongs to.
pub fn shard_of(link_type: LinkType, data: &[u8], key: FlowKey, shards: usize) -> usize {
    shard_of_hash(flow_hash(link_type, data, key), shards)
}

/// The shard (of `shards`) of a packet whose flow hash is `hash`.
pub fn shard_of_hash(hash: u64, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    // The high bits of FNV mix best.
    (((hash >> 32) * shards as u64) >> 32) as usize
}

/// The shard of every packet of `chunk`, in order (hashed a block at a time).
fn chunk_shards(chunk: &Chunk, key: FlowKey, shards: usize) -> Vec<u32> {
    let mut ids = Vec::with_capacity(chunk.packet_count() as usize);
    if shards <= 1 {
        ids.resize(chunk.packets().count(), 0);
        return ids;
    }
    let mut block = Vec::with_capacity(256);
    let mut hashes = Vec::with_capacity(256);
    let mut packets = chunk.packets().peekable();
    while packets.peek().is_some() {
        block.clear();
        hashes.clear();
        for p in packets.by_ref().take(256) {
            block.push(FlowBytes::default());
            let slot = block.last_mut().expect("just pushed");
            slot.set(&decode::headers(p.link_type, p.data), key);
        }
        FlowBytes::hash_all(&block, &mut hashes);
        ids.extend(hashes.iter().map(|&h| shard_of_hash(h, shards) as u32));
    }
    ids
}

/// A capture to be processed shard by shard; see [`Capture::flows`].
#[derive(Debug)]
pub struct Flows {
    capture: Capture,
    shards: usize,
    key: FlowKey,
}

/// What a shard worker hands its fold for each packet, beyond the packet:
/// the record's bytes as in the input, and the pcapng section in force.
pub(crate) struct Item<'a> {
    pub packet: Packet<'a>,
    pub record: &'a [u8],
    pub section: Option<&'a Arc<Section>>,
    pub chunk: &'a Chunk,
}

impl Capture {
    /// Shards the capture by flow into `shards` shards; see [`crate::flow`].
    pub fn flows(self, shards: usize) -> Flows {
        Flows {
            capture: self,
            shards,
            key: FlowKey::FiveTuple,
        }
    }
}

impl Flows {
    /// What a flow is (default: [`FlowKey::FiveTuple`]).
    pub fn key(mut self, key: FlowKey) -> Self {
        self.key = key;
        self
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Folds each shard's packets, in file order: `init(shard)` makes a
    /// shard's state, `step` takes each of its packets, `finish` turns the
    /// state into the shard's result. Results come back by shard. Strict:
    /// a broken input or a panic fails the call (see [`Flows::fold_report`]).
    pub fn fold<S, R, I, F, D>(self, init: I, step: F, finish: D) -> Result<Vec<R>>
    where
        S: Send,
        R: Send,
        I: Fn(usize) -> S + Sync,
        F: Fn(&mut S, &Packet<'_>) + Sync,
        D: Fn(usize, S) -> R + Sync,
    {
        let (results, report) = self.fold_report(init, step, finish);
        match report.input_error {
            Some(e) => Err(e),
            None => results,
        }
    }

    /// Like [`Flows::fold`], and keeps what was done before a broken input:
    /// every shard is finished with the packets before the fault, and the
    /// report says what went wrong.
    pub fn fold_report<S, R, I, F, D>(self, init: I, step: F, finish: D) -> (Result<Vec<R>>, Report)
    where
        S: Send,
        R: Send,
        I: Fn(usize) -> S + Sync,
        F: Fn(&mut S, &Packet<'_>) + Sync,
        D: Fn(usize, S) -> R + Sync,
    {
        self.fold_observing(init, step, finish, |_| {})
    }

    /// Like [`Flows::fold_report`], and `each_chunk` sees every chunk (in
    /// file order, on the calling thread) as it is handed to the shard
    /// workers: for what belongs to the capture rather than to a shard (its
    /// sections and interfaces, say).
    pub fn fold_observing<S, R, I, F, D, C>(
        self,
        init: I,
        step: F,
        finish: D,
        each_chunk: C,
    ) -> (Result<Vec<R>>, Report)
    where
        S: Send,
        R: Send,
        I: Fn(usize) -> S + Sync,
        F: Fn(&mut S, &Packet<'_>) + Sync,
        D: Fn(usize, S) -> R + Sync,
        C: FnMut(&Chunk),
    {
        self.fold_items(init, |s, item| step(s, &item.packet), finish, each_chunk)
    }

    /// The engine of [`Flows::fold`], handing the fold whole items;
    /// `each_chunk` sees every chunk (in order, on one thread) first.
    pub(crate) fn fold_items<S, R, I, F, D, C>(
        self,
        init: I,
        step: F,
        finish: D,
        each_chunk: C,
    ) -> (Result<Vec<R>>, Report)
    where
        S: Send,
        R: Send,
        I: Fn(usize) -> S + Sync,
        F: Fn(&mut S, &Item<'_>) + Sync,
        D: Fn(usize, S) -> R + Sync,
        C: FnMut(&Chunk),
    {
        let mut each_chunk = each_chunk;
        let shards = self.shards.max(1);
        let groups = self.capture.worker_count().min(shards).max(1);
        let key = self.key;
        let (init, step, finish) = (&init, &step, &finish);
        std::thread::scope(|s| {
            let mut senders = Vec::with_capacity(groups);
            let mut handles = Vec::with_capacity(groups);
            for g in 0..groups {
                let (tx, rx) = bounded::<(Chunk, Arc<Vec<u32>>)>(4);
                senders.push(tx);
                handles.push(s.spawn(move || {
                    // This group's shards: g, g + groups, g + 2 groups, ...
                    let mut states: Vec<(usize, S)> =
                        (g..shards).step_by(groups).map(|i| (i, init(i))).collect();
                    let mut failure: Option<ChunkFailure> = None;
                    for (chunk, ids) in rx {
                        if failure.is_some() {
                            continue;
                        }
                        let outcome = guarded(chunk.index(), chunk.byte_range(), || {
                            let buf = chunk.raw_bytes();
                            let mut records = chunk.filtered_records();
                            let mut n = 0;
                            while let Some(r) = records.next_record() {
                                let Some(packet) = r.packet else { continue };
                                let id = ids[n] as usize;
                                n += 1;
                                if id % groups == g {
                                    let item = Item {
                                        packet,
                                        record: &buf[r.range],
                                        section: records.section(),
                                        chunk: &chunk,
                                    };
                                    step(&mut states[id / groups].1, &item);
                                }
                            }
                            Ok(())
                        });
                        failure = outcome.err();
                    }
                    match failure {
                        Some(f) => Err(f),
                        None => Ok(states
                            .into_iter()
                            .map(|(i, st)| (i, finish(i, st)))
                            .collect::<Vec<_>>()),
                    }
                }));
            }
            let report = self.capture.run(
                |chunk| {
                    let ids = chunk_shards(chunk, key, shards);
                    Ok((chunk.clone(), Arc::new(ids)))
                },
                |r| {
                    if let Ok((chunk, ids)) = r.result {
                        each_chunk(&chunk);
                        for tx in &senders {
                            let _ = tx.send((chunk.clone(), ids.clone()));
                        }
                    }
                },
            );
            drop(senders);
            let mut results: Vec<Option<R>> = (0..shards).map(|_| None).collect();
            let mut failure = None;
            for h in handles {
                match h.join() {
                    Ok(Ok(done)) => {
                        for (i, r) in done {
                            results[i] = Some(r);
                        }
                    }
                    Ok(Err(f)) => {
                        failure.get_or_insert(f);
                    }
                    Err(panic) => {
                        failure.get_or_insert(ChunkFailure {
                            index: 0,
                            range: 0..0,
                            cause: ChunkFailureCause::Panic(panic_message(&*panic)),
                        });
                    }
                }
            }
            let results = match failure {
                Some(f) => Err(Error::Chunk(f)),
                None => Ok(results
                    .into_iter()
                    .map(|r| r.expect("every shard finished"))
                    .collect()),
            };
            (results, report)
        })
    }
}

/// The state of one shard's file while it is written.
struct ShardWriter {
    n: usize,
    tmp: Option<tempfile::TempPath>,
    buf: Vec<u8>,
    started: bool,
    /// pcapng: the section written last (its offset), and how many of its
    /// interfaces and carried blocks have been written.
    section: Option<(u64, usize, usize)>,
    error: Option<std::io::Error>,
}

impl Flows {
    /// Writes each shard as a capture file of its own (in the input's
    /// format): `PREFIX-NNNNNNNN.pcap` (or `.pcapng`), one per shard, empty
    /// shards included. Never more than `files.max_open` files are open at
    /// once, however many shards. pcap shards start with the file header;
    /// pcapng shards with the section header and the interface
    /// descriptions of the section their packets come from (interface ids
    /// kept; a new section's header comes before its first packet), and the
    /// section's decryption secrets and name resolution blocks met before
    /// each packet (every shard gets them); other pcapng blocks
    /// (statistics, custom) are not copied.
    ///
    /// Each file is written under a temporary name and renamed when all are
    /// complete; after a broken input, the shards hold every packet before
    /// the fault; after cancellation, nothing is left. The files go into
    /// `files.dir` as it is — no lock, no check that a shard's name is not
    /// an input's, no removal of an earlier, longer set: to replace a set
    /// of shards whole, or not at all, write through a
    /// [`PartSet`](crate::output::PartSet) (as the command line's `split
    /// --flows` and the Python package's `Flows.write` do).
    pub fn write_shards(
        self,
        files: &crate::output::ShardFiles,
    ) -> (Result<Vec<std::path::PathBuf>>, Report) {
        use crate::output::{OpenFiles, OutputCompression, compress_piece, zstd_in_place};
        // zstd shards are written plain and compressed whole at the end, as
        // one frame: Wireshark 4.0 misreads files of many small frames.
        let piece_compression = match files.compression {
            OutputCompression::Zstd => OutputCompression::None,
            c => c,
        };
        let shards = self.shards.max(1);
        let format = self.capture.format();
        if self.capture.input_count() > 1 {
            let e = || Error::Inputs(crate::InputsError::ShardsOfSeveral);
            return (Err(e()), Report::empty(Some(e())));
        }
        if let Err(e) = std::fs::create_dir_all(&files.dir) {
            let dir = files.dir.display().to_string();
            let again = std::io::Error::new(e.kind(), e.to_string());
            let report = Report::empty(Some(Error::io(&dir, again)));
            return (Err(Error::io(&dir, e)), report);
        }
        let flush_at = ((32usize << 20) / shards).clamp(4 << 10, 256 << 10);
        let open = std::sync::Mutex::new(OpenFiles::new(files.max_open));
        let first_prefix: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);
        let flush = |w: &mut ShardWriter| -> std::io::Result<()> {
            if w.tmp.is_none() {
                let tmp = crate::output::temp_file_in(&files.dir)?;
                w.tmp = Some(tmp.into_temp_path());
            }
            if !w.buf.is_empty() {
                let piece = compress_piece(&w.buf, piece_compression)?;
                let path = w.tmp.as_ref().expect("created");
                open.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(w.n, path, &piece)?;
                w.buf.clear();
            }
            Ok(())
        };
        let (results, mut report) = self.fold_items(
            |n| ShardWriter {
                n,
                tmp: None,
                buf: Vec::new(),
                started: false,
                section: None,
                error: None,
            },
            |w, item| {
                if w.error.is_some() {
                    return;
                }
                match (item.chunk.pcap_header(), item.section) {
                    (Some(h), _) if !w.started => w.buf.extend_from_slice(&h.raw),
                    (_, Some(sec)) => {
                        let needed = item.packet.interface_id as usize + 1;
                        let (interfaces, carried) = match w.section {
                            Some((off, i, c)) if off == sec.offset => (i, c),
                            _ => {
                                w.buf.extend_from_slice(&sec.raw_shb);
                                (0, 0)
                            }
                        };
                        // Interfaces up to the one the packet needs (ids
                        // kept), and the secrets and names met so far.
                        let interfaces = if interfaces < needed {
                            for i in sec.interfaces.iter().skip(interfaces) {
                                w.buf.extend_from_slice(&i.raw);
                            }
                            sec.interfaces.len()
                        } else {
                            interfaces
                        };
                        for b in sec.carried.iter().skip(carried) {
                            w.buf.extend_from_slice(b);
                        }
                        w.section = Some((sec.offset, interfaces, sec.carried.len()));
                    }
                    _ => {}
                }
                w.started = true;
                w.buf.extend_from_slice(item.record);
                if w.buf.len() >= flush_at
                    && let Err(e) = flush(w)
                {
                    w.error = Some(e);
                }
            },
            |_, mut w| {
                if !w.started {
                    // An empty shard is still a capture: the header alone.
                    if let Some(p) = first_prefix
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                    {
                        w.buf.extend_from_slice(p);
                    }
                }
                if w.error.is_none()
                    && let Err(e) = flush(&mut w)
                {
                    w.error = Some(e);
                }
                open.lock().unwrap_or_else(|p| p.into_inner()).close(w.n);
                if w.error.is_none()
                    && files.compression == OutputCompression::Zstd
                    && let Some(tmp) = &w.tmp
                    && let Err(e) = zstd_in_place(tmp)
                {
                    w.error = Some(e);
                }
                match w.error {
                    Some(e) => Err(e),
                    None => Ok(w.tmp),
                }
            },
            |chunk| {
                let mut first = first_prefix.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = match chunk.pcap_header() {
                        Some(h) => Some(h.raw.to_vec()),
                        None => chunk
                            .section_states()
                            .last()
                            .map(|s| s.prefix(s.interfaces.len())),
                    };
                }
            },
        );
        let temps = match results {
            Ok(t) => t,
            Err(e) => return (Err(e), report),
        };
        if matches!(report.input_error, Some(Error::Cancelled)) {
            // Interrupted: the temporary files go with `temps`.
            return (Err(Error::Cancelled), report);
        }
        let mut names = Vec::with_capacity(shards);
        for (n, t) in temps.into_iter().enumerate() {
            let path = files.name(n, format);
            let done = t.and_then(|tmp| match tmp {
                Some(tmp) if files.if_exists == IfExists::Replace => {
                    tmp.persist(&path).map_err(|e| e.error)
                }
                Some(tmp) => tmp.persist_noclobber(&path).map_err(|e| e.error),
                None => Ok(()),
            });
            if let Err(e) = done {
                let err = Error::io(&path.display().to_string(), e);
                report.failed_chunks += 1;
                return (Err(err), report);
            }
            names.push(path);
        }
        (Ok(names), report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four at a time or one by one, of every length, the same hashes.
    #[test]
    fn hashing_many_flows_gives_each_ones_hash() {
        let flows: Vec<FlowBytes> = (0..103u8)
            .map(|i| {
                let mut f = FlowBytes::default();
                for j in 0..(i as usize * 7) % 45 {
                    f.push(&[i.wrapping_mul(31).wrapping_add(j as u8)]);
                }
                f
            })
            .collect();
        let mut all = Vec::new();
        FlowBytes::hash_all(&flows, &mut all);
        let one: Vec<u64> = flows.iter().map(FlowBytes::hash).collect();
        assert_eq!(all, one);
        assert_eq!(one[0], 0, "no bytes, no hash");
        // FNV-1a of "a", as published.
        let mut a = FlowBytes::default();
        a.push(b"a");
        assert_eq!(a.hash(), 0xaf63_dc4c_8601_ec8c);
    }

    /// The flow bytes are laid out as documented, each end (16-byte
    /// address, port) written out and ordered byte by byte, whatever the
    /// addresses' versions and however the ends compare.
    #[test]
    fn flow_bytes_are_kind_protocol_and_the_ends_in_byte_order() {
        use crate::decode::{Fragmentation, Ip};
        let addrs: Vec<IpAddr> = [
            "10.0.0.1",
            "10.0.0.2",
            "192.168.1.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "2001:db8::1:0",
            "fe80::1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let ports = [None, Some((80, 40000)), Some((40000, 80)), Some((7, 7))];
        let frags = [
            None,
            Some(Fragmentation {
                id: 0x1234_5678,
                offset: 0,
                flags: 1,
            }),
        ];
        for (&src, &dst) in addrs.iter().flat_map(|a| addrs.iter().map(move |b| (a, b))) {
            for (&p, &frag) in ports.iter().flat_map(|p| frags.iter().map(move |f| (p, f))) {
                let ip = Ip {
                    src,
                    dst,
                    protocol: 6,
                    ttl: 64,
                    fragmentation: frag,
                    ports: p,
                    tcp_flags: None,
                };
                let mut headers = decode::headers(LinkType::RAW, &[]);
                headers.ip = Some(ip);
                for key in [FlowKey::FiveTuple, FlowKey::HostPair] {
                    let fragment = ip.fragment().is_some();
                    let (sp, dp) = match (key, fragment) {
                        (FlowKey::FiveTuple, false) => p.unwrap_or((0, 0)),
                        _ => (0, 0),
                    };
                    let end = |a: &IpAddr, port: u16| {
                        let mut e = addr_bytes(a).to_vec();
                        e.extend_from_slice(&port.to_be_bytes());
                        e
                    };
                    let (x, y) = (end(&src, sp), end(&dst, dp));
                    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
                    let mut want = match (key, fragment, p) {
                        (FlowKey::HostPair, _, _) => vec![b'H'],
                        (_, true, _) => vec![b'F', 6],
                        (_, false, Some(_)) => vec![b'P', 6],
                        (_, false, None) => vec![b'A', 6],
                    };
                    want.extend_from_slice(&lo);
                    want.extend_from_slice(&hi);
                    if let (FlowKey::FiveTuple, Some(f)) = (key, ip.fragment()) {
                        want.extend_from_slice(&f.id.to_be_bytes());
                    }
                    let got = FlowBytes::of(&headers, key);
                    assert_eq!(
                        &got.bytes[..got.len as usize],
                        &want[..],
                        "{src} {dst} {p:?} {frag:?} {key:?}"
                    );
                }
            }
        }
    }
}

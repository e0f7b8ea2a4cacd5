//! Cutting an input held whole (a memory-mapped file) into chunks, in
//! parallel and exactly.
//!
//! 1. **Guess and walk, in parallel.** The data is divided into segments of
//!    equal byte length. The worker for segment *i* guesses the first record
//!    boundary at or after the segment's start ([`crate::resync`]), then
//!    walks record by record to the first record that starts at or after the
//!    segment's end, and reports where that is (`end`), how many packets it
//!    passed and, for pcapng, which section and interface blocks it met.
//! 2. **Verify, left to right.** Segment 0 starts at the true first record.
//!    If segment *i*'s walk is exact, its `end` is the true start of segment
//!    *i+1*; so segment *i+1* is exact if and only if its guess equals that
//!    `end`. Where it does not, the segment is walked again from the right
//!    place. By induction every segment is exact, whatever the payloads hold.
//!    This pass also resolves what a pcapng segment could not know alone:
//!    the section's interfaces, and whether its packets refer to interfaces
//!    that exist.
//! 3. **Cut.** Chunks are segments, or (for packet counts, small byte sizes
//!    and `max_packets`) are cut inside the verified segments by a walk from
//!    their exact start, in parallel again.

use std::sync::Arc;

use crate::chunk::Context;
use crate::error::{Fault, Skipped};
use crate::format::Endian;
use crate::pcapng::{self, Section};
use crate::resync;
use crate::split::Split;
use crate::walk::{Interfaces, Scan, Walker, scan};

/// What the planner was asked for.
#[derive(Debug, Clone)]
pub(crate) struct PlanRequest {
    pub split: Split,
    /// Workers for the parallel passes.
    pub workers: usize,
    /// Length of the segments whose boundaries are found independently
    /// (automatic when `None`).
    pub segment_len: Option<usize>,
    pub max_packets: Option<u64>,
    /// Pass over damaged bytes instead of stopping at the first fault.
    pub skip_damage: bool,
}

/// One chunk to be: a verified byte range.
#[derive(Debug, Clone)]
pub(crate) struct ChunkSpec {
    pub start: usize,
    pub end: usize,
    pub packets_before: u64,
    pub packets: u64,
    pub context: Context,
    /// pcapng: section states after the SHBs and IDBs inside the chunk.
    pub described: Vec<Arc<Section>>,
    /// Damaged stretches passed over inside the chunk (skip policy), as
    /// offsets in the input: the chunk's records are around them.
    pub holes: Vec<std::ops::Range<usize>>,
}

/// The chunks of an input, and the fault that ended it early, if any.
#[derive(Debug)]
pub(crate) struct Plan {
    pub chunks: Vec<ChunkSpec>,
    /// Byte offset, number of the packet that could not be read, and what was wrong.
    pub fault: Option<(usize, u64, Fault)>,
    /// Damaged stretches passed over (with the skip policy).
    pub skipped: Vec<Skipped>,
    /// Segments whose guessed start failed verification and were walked again.
    pub redone: usize,
    /// Segments walked in all.
    pub segments: usize,
}

/// A verified segment.
#[derive(Debug)]
struct Segment {
    /// Index of the byte range (of the parallel pass) it was walked for.
    bound: usize,
    start: usize,
    end: usize,
    packets_before: u64,
    packets: u64,
    /// The exact walker state at `start`.
    walker: Walker,
}

/// Runs `f` over `0..n` on `workers` threads; results in index order.
pub(crate) fn par_map<T: Send>(n: usize, workers: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if workers <= 1 || n <= 1 {
        return (0..n).map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let results = std::sync::Mutex::new(&mut out);
    std::thread::scope(|s| {
        for _ in 0..workers.min(n) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = f(i);
                    results.lock().expect("no panics while held")[i] = Some(r);
                }
            });
        }
    });
    out.into_iter()
        .map(|r| r.expect("every index ran"))
        .collect()
}

/// Byte size of segments below which a byte-sized split is cut by walking
/// inside larger segments rather than by guessing a boundary per chunk.
const MIN_SEGMENT: u64 = 1 << 20;

/// Plans the chunks of `buf`, whose records start at `data_start` and are
/// walked with `walker` (the state there).
pub(crate) fn plan(buf: &[u8], walker: Walker, data_start: usize, req: &PlanRequest) -> Plan {
    let len = buf.len();
    let data_start = data_start.min(len);
    let total = (len - data_start) as u64;
    let chunk_bytes = req.split.chunk_bytes(total, req.workers);
    let seg_len = match (req.segment_len, chunk_bytes) {
        (Some(s), _) => s.max(1) as u64,
        (None, Some(b)) if b >= MIN_SEGMENT => b,
        (None, _) => Split::auto_chunk_bytes(total, req.workers),
    };
    let direct = chunk_bytes == Some(seg_len);
    let mut bounds: Vec<usize> = (data_start..len).step_by(seg_len as usize).collect();
    if bounds.is_empty() {
        bounds.push(data_start);
    }
    bounds.push(len);
    let n = bounds.len() - 1;

    // 1. Guess and walk, in parallel.
    let hint = match &walker {
        Walker::Pcap(h) => h.endian,
        Walker::Pcapng { .. } => pcapng::read_block(buf, data_start, None, u32::MAX)
            .ok()
            .flatten()
            .map_or(Endian::Little, |b| b.endian),
    };
    let mut scans: Vec<Option<Scan>> = par_map(n, req.workers, |i| {
        if i == 0 {
            return Some(scan(buf, bounds[0], bounds[1], walker.clone(), u64::MAX));
        }
        let (guess, endian) = resync::find_boundary(&walker, buf, bounds[i], hint)?;
        Some(scan(
            buf,
            guess,
            bounds[i + 1],
            walker.mid_section(endian),
            u64::MAX,
        ))
    });

    // 2. Verify, left to right, redoing what does not join up. With the
    //    skip policy, a fault ends a piece of the segment, the damaged bytes
    //    are passed over to the next boundary found, and the walk goes on.
    let mut segments: Vec<Segment> = Vec::with_capacity(n);
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut redone = 0;
    let mut fault = None;
    let mut at = bounds[0];
    let mut state = walker.clone();
    let mut packets_before = 0u64;
    let mut states: Vec<(usize, Arc<Section>)> = Vec::new();
    let mut section: Option<Arc<Section>> = None;
    'segments: for (i, slot) in scans.iter_mut().enumerate() {
        let stop = bounds[i + 1];
        let known = known_interfaces(&state);
        let joins = |s: &Scan| {
            s.start == at
                && s.start_endian == state.endian()
                && match s.walker {
                    Walker::Pcapng {
                        interfaces: Interfaces::Unknown { need, here },
                        limits,
                        ..
                    } => need <= known && known + here <= limits.max_interfaces as usize,
                    _ => true,
                }
        };
        let mut s = match slot.take() {
            Some(s) if i == 0 || joins(&s) => s,
            _ => {
                redone += 1;
                scan(buf, at, stop, state.clone(), u64::MAX)
            }
        };
        loop {
            let known = known_interfaces(&state);
            for &off in &s.state_blocks {
                section = Section::apply(buf, off, 0, section.take());
                if let Some(sec) = &section {
                    states.push((off, sec.clone()));
                }
            }
            let end_state = match s.walker.clone() {
                Walker::Pcapng {
                    endian,
                    interfaces: Interfaces::Unknown { here, .. },
                    limits,
                } => Walker::Pcapng {
                    endian,
                    interfaces: Interfaces::Known(known + here),
                    limits,
                },
                w => w,
            };
            segments.push(Segment {
                bound: i,
                start: s.start,
                end: s.end,
                packets_before,
                packets: s.packets,
                walker: state.clone(),
            });
            packets_before += s.packets;
            let Some(f) = s.fault.take() else {
                at = s.end;
                state = end_state;
                break;
            };
            if !req.skip_damage {
                fault = Some((s.end, packets_before + 1, f));
                break 'segments;
            }
            let resume = resync_after(&end_state, buf, s.end, section.is_some());
            let next = resume.map_or(len, |r| r.0);
            skipped.push(Skipped {
                offset: s.end as u64,
                len: (next - s.end) as u64,
                packet: packets_before + 1,
                fault: f,
            });
            let Some((next, endian)) = resume else {
                break 'segments;
            };
            // Past the damage, in the same section as far as anyone can tell.
            let count = known_interfaces(&end_state);
            state = match end_state {
                Walker::Pcapng { limits, .. } => Walker::Pcapng {
                    endian: Some(endian),
                    interfaces: Interfaces::Known(count),
                    limits,
                },
                w => w,
            };
            at = next;
            if next >= stop {
                break;
            }
            s = scan(buf, next, stop, state.clone(), u64::MAX);
        }
    }
    let total_packets = packets_before;
    let mut end = segments.last().map_or(bounds[0], |s| s.end);
    let mut end_packets = total_packets;

    // 3. Cut.
    let mut cuts = if direct {
        // One chunk per byte range: from the first record walked for each.
        let mut cuts = Vec::new();
        for pair in segments.windows(2) {
            if pair[1].bound != pair[0].bound {
                cuts.push((pair[1].start, pair[1].packets_before));
            }
        }
        cuts
    } else {
        match (&req.split, chunk_bytes) {
            (Split::Packets(per), _) => {
                let per = (*per).max(1);
                cut_segments(buf, &segments, req.workers, |s, _, packets| {
                    let p = (packets / per + 1).saturating_mul(per);
                    (p <= s.packets_before + s.packets && p < total_packets)
                        .then_some(Target::Packets(p))
                })
            }
            (_, Some(b)) => cut_segments(buf, &segments, req.workers, |s, at, _| {
                // The next multiple of the size after the walk's position:
                // one cut per chunk, however small the size.
                let b = b.max(1);
                let k = ((at - data_start) as u64 / b).saturating_add(1);
                let o = usize::try_from(k.saturating_mul(b))
                    .ok()?
                    .checked_add(data_start)?;
                (o <= s.end).then_some(Target::Offset(o))
            }),
            (_, None) => Vec::new(),
        }
    };
    // The limit cuts when it leaves packets out, or when what follows its
    // last packet is damage: a run that stops after N packets never reads
    // past them (as `tcpdump -c N`), so it never meets that damage.
    let damage_after = |m: u64| fault.is_some() || skipped.iter().any(|k| k.packet > m);
    if let Some(m) = req
        .max_packets
        .filter(|&m| m < total_packets || m == total_packets && damage_after(m))
    {
        let at_limit = if m == 0 {
            vec![(bounds[0], 0)]
        } else {
            cut_segments(buf, &segments, 1, |s, _, packets| {
                (s.packets_before < m && m <= s.packets_before + s.packets && packets < m)
                    .then_some(Target::Packets(m))
            })
        };
        if let Some(&(off, _)) = at_limit.first() {
            end = off;
            end_packets = m;
            fault = None;
            skipped.retain(|k| k.offset < off as u64);
        }
    }
    cuts.insert(0, (bounds[0], 0));
    let starts = chunk_starts(&segments, cuts, end, end_packets);
    let mut chunks = Vec::with_capacity(starts.len());
    for (k, &(start, before)) in starts.iter().enumerate() {
        let (stop, after) = starts.get(k + 1).copied().unwrap_or((end, end_packets));
        if stop <= start {
            continue;
        }
        let context = match &walker {
            Walker::Pcap(h) => Context::Pcap(h.clone()),
            Walker::Pcapng { .. } => {
                let k = states.partition_point(|(off, _)| *off < start);
                Context::Pcapng(k.checked_sub(1).map(|k| states[k].1.clone()))
            }
        };
        let inside = states.partition_point(|(off, _)| *off < start)
            ..states.partition_point(|(off, _)| *off < stop);
        chunks.push(ChunkSpec {
            start,
            end: stop,
            packets_before: before,
            packets: after - before,
            context,
            described: states[inside].iter().map(|(_, s)| s.clone()).collect(),
            holes: skipped
                .iter()
                .map(|k| k.offset as usize..(k.offset + k.len) as usize)
                .filter(|h| h.start >= start && h.end <= stop)
                .collect(),
        });
    }
    if chunks.is_empty()
        && let Walker::Pcap(h) = &walker
    {
        // A pcap file without packets is still a capture: one empty chunk,
        // which reads as the file header alone. (A pcapng chunk without
        // bytes would not even have a section header.)
        chunks.push(ChunkSpec {
            start: bounds[0],
            end: bounds[0],
            packets_before: 0,
            packets: 0,
            context: Context::Pcap(h.clone()),
            described: Vec::new(),
            holes: Vec::new(),
        });
    }
    Plan {
        chunks,
        fault,
        skipped,
        redone,
        segments: n,
    }
}

/// Where the chunks start, from `cuts` (offset, packets before; the first
/// is the start of the input): each moved out of damaged bytes to the next
/// record, and dropped where the chunk before it would hold no packet. So a
/// chunk holds at least one packet, unless the input holds none (then
/// there is one chunk), and a chunk may span damage passed over.
fn chunk_starts(
    pieces: &[Segment],
    mut cuts: Vec<(usize, u64)>,
    end: usize,
    end_packets: u64,
) -> Vec<(usize, u64)> {
    let walked: Vec<&Segment> = pieces.iter().filter(|p| p.start < p.end).collect();
    for cut in &mut cuts {
        let i = walked.partition_point(|p| p.end <= cut.0);
        match walked.get(i) {
            Some(p) if p.start > cut.0 => *cut = (p.start, p.packets_before),
            Some(_) => {}
            None => cut.0 = end,
        }
    }
    cuts.sort_unstable();
    cuts.dedup_by_key(|c| c.0);
    let mut starts: Vec<(usize, u64)> = Vec::with_capacity(cuts.len());
    for cut in cuts {
        match starts.last() {
            None => starts.push(cut),
            Some(last) if cut.0 < end && cut.1 > last.1 => starts.push(cut),
            Some(_) => {}
        }
    }
    if starts.len() > 1 && starts.last().is_some_and(|l| l.1 >= end_packets) {
        starts.pop();
    }
    starts
}

/// The first record boundary after damaged bytes at `from`, with the
/// walker's state there (see [`resync::resync`]: a stream finds the same).
pub(crate) fn resync_after(
    state: &Walker,
    buf: &[u8],
    from: usize,
    have_section: bool,
) -> Option<(usize, Endian)> {
    let hint = state.endian().unwrap_or(Endian::Little);
    match resync::resync(state, buf, from + 1, true, hint, have_section) {
        resync::Resync::Found(at, endian) => Some((at, endian)),
        _ => None,
    }
}

fn known_interfaces(w: &Walker) -> usize {
    match w {
        Walker::Pcapng {
            interfaces: Interfaces::Known(n),
            ..
        } => *n,
        _ => 0,
    }
}

/// Where to cut inside a segment.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Right after this many packets of the whole capture.
    Packets(u64),
    /// At the first record starting at or after this offset.
    Offset(usize),
}

/// Finds the cuts that `next` asks for in each segment, by walking it
/// from its exact start, in parallel: `next(segment, offset, packets)` is
/// the next target after a walk that reached `offset` with `packets`
/// packets before it. Returns (offset, packets before) for each cut, in
/// file order: one per chunk, never one per byte.
fn cut_segments<F>(buf: &[u8], segments: &[Segment], workers: usize, next: F) -> Vec<(usize, u64)>
where
    F: Fn(&Segment, usize, u64) -> Option<Target> + Sync,
{
    let per_segment = par_map(segments.len(), workers, |i| {
        let s = &segments[i];
        let mut cuts = Vec::new();
        let mut at = s.start;
        let mut walker = s.walker.clone();
        let mut packets = s.packets_before;
        while let Some(t) = next(s, at, packets) {
            let r = match t {
                Target::Packets(p) => scan(buf, at, s.end, walker, p.saturating_sub(packets)),
                Target::Offset(o) => scan(buf, at, o.min(s.end), walker, u64::MAX),
            };
            if r.end <= at {
                break;
            }
            at = r.end;
            packets += r.packets;
            walker = r.walker;
            cuts.push((at, packets));
        }
        cuts
    });
    per_segment.into_iter().flatten().collect()
}

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

use crate::capture::OnError;
use crate::chunk::Context;
use crate::error::{Fault, Skipped};
use crate::format::Endian;
use crate::pcapng::{self, Section};
use crate::resync::{self, Horizon, Restart};
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
    /// Stop at the first fault, or pass over damaged bytes.
    pub on_error: OnError,
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
/// walked with `walker` (the state there): the three phases of the module
/// documentation, one function each.
pub(crate) fn plan(buf: &[u8], walker: Walker, data_start: usize, req: &PlanRequest) -> Plan {
    let layout = Layout::new(buf.len(), data_start, req);
    let scans = guess_and_walk(buf, &walker, &layout.bounds, req.workers);
    let mut verified = verify(buf, &walker, &layout.bounds, scans, req.on_error);
    let ends = cut(buf, &layout, &mut verified, req);
    let mut chunks = chunk_specs(&walker, &verified, &ends);
    if chunks.is_empty()
        && let Walker::Pcap(h) = &walker
    {
        // A pcap file without packets is still a capture: one empty chunk,
        // which reads as the file header alone. (A pcapng chunk without
        // bytes would not even have a section header.)
        chunks.push(ChunkSpec {
            start: layout.start(),
            end: layout.start(),
            packets_before: 0,
            packets: 0,
            context: Context::Pcap(h.clone()),
            described: Vec::new(),
            holes: Vec::new(),
        });
    }
    Plan {
        chunks,
        fault: verified.fault,
        skipped: verified.skipped,
        redone: verified.redone,
        segments: layout.segments(),
    }
}

/// How the input is divided for the parallel passes.
struct Layout {
    /// Segment *i* is `bounds[i]..bounds[i + 1]`; the first bound is where
    /// the records start, the last the end of the input.
    bounds: Vec<usize>,
    /// The chunk size asked for in bytes, if the split is by size.
    chunk_bytes: Option<u64>,
    /// The segments are the chunks (a byte size of a segment or more).
    direct: bool,
}

impl Layout {
    fn new(len: usize, data_start: usize, req: &PlanRequest) -> Layout {
        let data_start = data_start.min(len);
        let total = (len - data_start) as u64;
        let chunk_bytes = req.split.chunk_bytes(total, req.workers);
        let seg_len = match (req.segment_len, chunk_bytes) {
            (Some(s), _) => s.max(1) as u64,
            (None, Some(b)) if b >= MIN_SEGMENT => b,
            (None, _) => Split::auto_chunk_bytes(total, req.workers),
        };
        let mut bounds: Vec<usize> = (data_start..len).step_by(seg_len as usize).collect();
        if bounds.is_empty() {
            bounds.push(data_start);
        }
        bounds.push(len);
        Layout {
            bounds,
            chunk_bytes,
            direct: chunk_bytes == Some(seg_len),
        }
    }

    /// Where the records start.
    fn start(&self) -> usize {
        self.bounds[0]
    }

    fn segments(&self) -> usize {
        self.bounds.len() - 1
    }
}

/// Phase 1, in parallel: each segment but the first guesses its first
/// record boundary and walks to the first record at or after its end.
/// `None` where no boundary could be guessed (the segment is then walked in
/// phase 2).
fn guess_and_walk(
    buf: &[u8],
    walker: &Walker,
    bounds: &[usize],
    workers: usize,
) -> Vec<Option<Scan>> {
    let hint = match walker {
        Walker::Pcap(h) => h.endian,
        Walker::Pcapng { .. } => pcapng::read_block(buf, bounds[0], None, u32::MAX)
            .ok()
            .flatten()
            .map_or(Endian::Little, |b| b.endian),
    };
    par_map(bounds.len() - 1, workers, |i| {
        if i == 0 {
            return Some(scan(buf, bounds[0], bounds[1], walker.clone(), u64::MAX));
        }
        let (guess, endian) = resync::find_boundary(walker, buf, bounds[i], hint)?;
        Some(scan(
            buf,
            guess,
            bounds[i + 1],
            walker.mid_section(endian),
            u64::MAX,
        ))
    })
}

/// What phase 2 established: the exact walk of the input.
struct Verified {
    /// The verified pieces of the segments, in order (a segment is several
    /// pieces where damage was passed over inside it).
    segments: Vec<Segment>,
    /// pcapng: each SHB and IDB walked over, with the section state after it.
    states: Vec<(usize, Arc<Section>)>,
    skipped: Vec<Skipped>,
    /// The fault that ended the input (stop policy).
    fault: Option<(usize, u64, Fault)>,
    redone: usize,
}

impl Verified {
    fn packets(&self) -> u64 {
        self.segments
            .last()
            .map_or(0, |s| s.packets_before + s.packets)
    }
}

/// Phase 2, left to right: takes each segment's walk where its start is
/// the end of the walk before it, walks it again from there where not, and
/// passes over damage under [`OnError::Skip`].
fn verify(
    buf: &[u8],
    walker: &Walker,
    bounds: &[usize],
    scans: Vec<Option<Scan>>,
    on_error: OnError,
) -> Verified {
    let mut v = Verifier {
        buf,
        on_error,
        at: bounds[0],
        state: walker.clone(),
        packets_before: 0,
        section: None,
        out: Verified {
            segments: Vec::with_capacity(scans.len()),
            states: Vec::new(),
            skipped: Vec::new(),
            fault: None,
            redone: 0,
        },
    };
    for (i, guessed) in scans.into_iter().enumerate() {
        let stop = bounds[i + 1];
        let walked = match guessed {
            Some(s) if i == 0 || v.joins(&s) => s,
            _ => {
                v.out.redone += 1;
                scan(buf, v.at, stop, v.state.clone(), u64::MAX)
            }
        };
        if v.take(i, walked, stop) == Verdict::End {
            break;
        }
    }
    v.out
}

/// The state of phase 2 between segments.
struct Verifier<'a> {
    buf: &'a [u8],
    on_error: OnError,
    /// Where the next segment's walk must start.
    at: usize,
    /// The exact walker state there.
    state: Walker,
    packets_before: u64,
    /// pcapng: the section in force at `at`.
    section: Option<Arc<Section>>,
    out: Verified,
}

/// Whether phase 2 goes on to the next segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Next,
    End,
}

impl Verifier<'_> {
    /// Does a segment's guessed walk start where the walk before it ended,
    /// in the same byte order, with interfaces that exist?
    fn joins(&self, s: &Scan) -> bool {
        let known = known_interfaces(&self.state);
        s.start == self.at
            && s.start_endian == self.state.endian()
            && match s.walker {
                Walker::Pcapng {
                    interfaces: Interfaces::Unknown { need, here },
                    limits,
                    ..
                } => need <= known && known + here <= limits.max_interfaces as usize,
                _ => true,
            }
    }

    /// Takes the exact walk `s` of segment `i` (up to `stop`), passing
    /// over damage inside it under the skip policy.
    fn take(&mut self, i: usize, mut s: Scan, stop: usize) -> Verdict {
        loop {
            let known = known_interfaces(&self.state);
            for &off in &s.state_blocks {
                self.section = Section::apply(self.buf, off, 0, self.section.take());
                if let Some(sec) = &self.section {
                    self.out.states.push((off, sec.clone()));
                }
            }
            let end_state = s.walker.clone().with_interfaces_known(known);
            self.out.segments.push(Segment {
                bound: i,
                start: s.start,
                end: s.end,
                packets_before: self.packets_before,
                packets: s.packets,
                walker: self.state.clone(),
            });
            self.packets_before += s.packets;
            let Some(fault) = s.fault.take() else {
                self.at = s.end;
                self.state = end_state;
                return Verdict::Next;
            };
            if self.on_error == OnError::Stop {
                self.out.fault = Some((s.end, self.packets_before + 1, fault));
                return Verdict::End;
            }
            let Some(next) = self.pass_damage(end_state, s.end, fault) else {
                return Verdict::End;
            };
            if next >= stop {
                return Verdict::Next;
            }
            s = scan(self.buf, next, stop, self.state.clone(), u64::MAX);
        }
    }

    /// Passes over the damage at `at` to where records resume, records it
    /// as skipped, and returns where that is (`None`: damage to the end).
    fn pass_damage(&mut self, end_state: Walker, at: usize, fault: Fault) -> Option<usize> {
        let resume = resync_after(
            &end_state,
            self.buf,
            at,
            Restart::after(self.section.as_ref()),
        );
        let next = resume.map_or(self.buf.len(), |r| r.0);
        self.out.skipped.push(Skipped {
            offset: at as u64,
            len: (next - at) as u64,
            packet: self.packets_before + 1,
            fault,
        });
        let (next, endian) = resume?;
        self.state = end_state.resumed(endian);
        self.at = next;
        Some(next)
    }
}

/// Where each chunk begins, and where the last one ends.
struct Ends {
    /// Cuts: (offset, packets before), the first at the start of the records.
    cuts: Vec<(usize, u64)>,
    /// Where the last chunk ends, and the packets before that point.
    end: usize,
    end_packets: u64,
}

/// Phase 3: where chunks begin inside the verified segments (found by
/// walks from their exact starts, in parallel), and where the packet
/// limit ends the input.
fn cut(buf: &[u8], layout: &Layout, verified: &mut Verified, req: &PlanRequest) -> Ends {
    let segments = &verified.segments;
    let total_packets = verified.packets();
    let data_start = layout.start();
    let mut cuts = if layout.direct {
        // One chunk per byte range: from the first record walked for each.
        segments
            .windows(2)
            .filter(|pair| pair[1].bound != pair[0].bound)
            .map(|pair| (pair[1].start, pair[1].packets_before))
            .collect()
    } else {
        match (&req.split, layout.chunk_bytes) {
            (Split::Packets(per), _) => {
                let per = (*per).max(1);
                cut_segments(buf, segments, req.workers, |s, _, packets| {
                    let p = (packets / per + 1).saturating_mul(per);
                    (p <= s.packets_before + s.packets && p < total_packets)
                        .then_some(Target::Packets(p))
                })
            }
            (_, Some(b)) => cut_segments(buf, segments, req.workers, |s, at, _| {
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
    cuts.insert(0, (data_start, 0));
    let mut ends = Ends {
        cuts,
        end: segments.last().map_or(data_start, |s| s.end),
        end_packets: total_packets,
    };
    if let Some(m) = req.max_packets {
        apply_limit(buf, data_start, m, verified, &mut ends);
    }
    ends
}

/// Ends the input after `m` packets when that leaves packets out, or when
/// what follows the last of them is damage: a run that stops after N
/// packets never reads past them (as `tcpdump -c N`), so it never meets
/// that damage.
fn apply_limit(buf: &[u8], data_start: usize, m: u64, verified: &mut Verified, ends: &mut Ends) {
    let total_packets = verified.packets();
    let damage_after = verified.fault.is_some() || verified.skipped.iter().any(|k| k.packet > m);
    if !(m < total_packets || m == total_packets && damage_after) {
        return;
    }
    let at_limit = if m == 0 {
        vec![(data_start, 0)]
    } else {
        cut_segments(buf, &verified.segments, 1, |s, _, packets| {
            (s.packets_before < m && m <= s.packets_before + s.packets && packets < m)
                .then_some(Target::Packets(m))
        })
    };
    if let Some(&(off, _)) = at_limit.first() {
        ends.end = off;
        ends.end_packets = m;
        verified.fault = None;
        verified.skipped.retain(|k| k.offset < off as u64);
    }
}

/// The chunks, from where they begin and end: each with what it needs of
/// the capture before it, the section states inside it and the damage it
/// spans.
fn chunk_specs(walker: &Walker, verified: &Verified, ends: &Ends) -> Vec<ChunkSpec> {
    let starts = chunk_starts(
        &verified.segments,
        ends.cuts.clone(),
        ends.end,
        ends.end_packets,
    );
    let states = &verified.states;
    let mut chunks = Vec::with_capacity(starts.len());
    for (k, &(start, before)) in starts.iter().enumerate() {
        let (stop, after) = starts
            .get(k + 1)
            .copied()
            .unwrap_or((ends.end, ends.end_packets));
        if stop <= start {
            continue;
        }
        let first_inside = states.partition_point(|(off, _)| *off < start);
        let context = match walker {
            Walker::Pcap(h) => Context::Pcap(h.clone()),
            Walker::Pcapng { .. } => {
                Context::Pcapng(first_inside.checked_sub(1).map(|k| states[k].1.clone()))
            }
        };
        let inside = first_inside..states.partition_point(|(off, _)| *off < stop);
        chunks.push(ChunkSpec {
            start,
            end: stop,
            packets_before: before,
            packets: after - before,
            context,
            described: states[inside].iter().map(|(_, s)| s.clone()).collect(),
            holes: verified
                .skipped
                .iter()
                .map(|k| k.offset as usize..(k.offset + k.len) as usize)
                .filter(|h| h.start >= start && h.end <= stop)
                .collect(),
        });
    }
    chunks
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
/// byte order there (see [`resync::resync`]: a stream finds the same).
fn resync_after(
    state: &Walker,
    buf: &[u8],
    from: usize,
    restart: Restart,
) -> Option<(usize, Endian)> {
    let hint = state.endian().unwrap_or(Endian::Little);
    match resync::resync(state, buf, from + 1, Horizon::EndOfInput, hint, restart) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EPB, HUGE, IDB, LOOKALIKE, PLAIN, SHB, cat, pcap_of, walker_for};

    fn request(split: Split, segment_len: usize, on_error: OnError) -> PlanRequest {
        PlanRequest {
            split,
            workers: 2,
            segment_len: Some(segment_len),
            max_packets: None,
            on_error,
        }
    }

    /// (start, end, packets before, packets) of each chunk.
    fn shape(plan: &Plan) -> Vec<(usize, usize, u64, u64)> {
        plan.chunks
            .iter()
            .map(|c| (c.start, c.end, c.packets_before, c.packets))
            .collect()
    }

    #[test]
    fn packet_counts_cut_at_exact_record_boundaries() {
        let buf = pcap_of(&PLAIN, 10);
        let (walker, start) = walker_for(&buf);
        let plan = plan(
            &buf,
            walker,
            start,
            &request(Split::Packets(4), 50, OnError::Stop),
        );
        // Records are 20 bytes from byte 24.
        assert_eq!(
            shape(&plan),
            vec![(24, 104, 0, 4), (104, 184, 4, 4), (184, 224, 8, 2)]
        );
        assert_eq!((plan.fault.is_none(), plan.segments), (true, 4));
    }

    #[test]
    fn a_guess_fooled_by_lookalike_records_is_redone_and_the_chunks_stay_exact() {
        // 40 records of 32 bytes from byte 24; the segment bound at byte
        // 24 + 176 = 200 is the data of record 5, where a chain of fake
        // records 16 bytes late begins: the guess takes it.
        let buf = pcap_of(&LOOKALIKE, 40);
        let (walker, start) = walker_for(&buf);
        let plan = plan(
            &buf,
            walker,
            start,
            &request(Split::Chunks(3), 176, OnError::Stop),
        );
        assert!(
            plan.redone >= 1,
            "the fake chain must have been taken, then redone"
        );
        let chunks = shape(&plan);
        assert_eq!(chunks.iter().map(|c| c.3).sum::<u64>(), 40);
        for (s, e, before, n) in chunks {
            assert_eq!((s - 24) % 32, 0, "chunk starts at a record");
            assert_eq!((s - 24) / 32, before as usize);
            assert_eq!(e - s, 32 * n as usize);
        }
    }

    #[test]
    fn damage_stops_the_plan_or_is_passed_over() {
        // Records 1-3, a header claiming 2 GiB, records 4-5.
        let buf = cat(&[&pcap_of(&PLAIN, 3), &HUGE, &PLAIN, &PLAIN]);
        let (walker, start) = walker_for(&buf);
        let stop = plan(
            &buf,
            walker.clone(),
            start,
            &request(Split::Packets(2), 30, OnError::Stop),
        );
        assert_eq!(shape(&stop), vec![(24, 64, 0, 2), (64, 84, 2, 1)]);
        let (offset, packet, fault) = stop.fault.expect("a fault");
        assert_eq!((offset, packet), (84, 4));
        assert!(matches!(fault, Fault::CaplenTooLarge { .. }));

        let skip = plan(
            &buf,
            walker,
            start,
            &request(Split::Packets(2), 30, OnError::Skip),
        );
        assert!(skip.fault.is_none());
        assert_eq!(skip.skipped.len(), 1);
        assert_eq!((skip.skipped[0].offset, skip.skipped[0].len), (84, 16));
        // The chunk that spans the damage says where it is.
        assert_eq!(
            shape(&skip),
            vec![(24, 64, 0, 2), (64, 120, 2, 2), (120, 140, 4, 1)]
        );
        assert_eq!(skip.chunks[1].holes, vec![84..100]);
    }

    #[test]
    fn pcapng_chunks_know_their_section_and_the_sections_they_describe() {
        let buf = cat(&[&SHB, &IDB, &EPB, &EPB, &EPB, &SHB, &IDB, &EPB]);
        let (walker, start) = walker_for(&buf);
        let plan = plan(
            &buf,
            walker,
            start,
            &request(Split::Packets(2), 40, OnError::Stop),
        );
        assert_eq!(shape(&plan), vec![(0, 120, 0, 2), (120, 240, 2, 2)]);
        // The first chunk starts with its section header, so needs none
        // before it; the second starts in that section and describes the
        // second section itself.
        assert!(matches!(&plan.chunks[0].context, Context::Pcapng(None)));
        let Context::Pcapng(Some(section)) = &plan.chunks[1].context else {
            panic!("the second chunk starts inside the first section")
        };
        assert_eq!((section.offset, section.interfaces.len()), (0, 1));
        let offsets: Vec<u64> = plan.chunks[1].described.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, vec![156, 156]);
    }
}

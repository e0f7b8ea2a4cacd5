//! Finding a record boundary from an arbitrary byte offset.
//!
//! Nothing in a pcap file marks where a record starts, so a worker that
//! begins at byte X of a file has to *guess*. Every offset from X on is a
//! candidate; a candidate is plausible when its record header parses (see
//! [`crate::pcap::PcapHeader`]'s `hop` and [`crate::pcapng`]'s `hop`), and it
//! *survives* when the chain of records it implies stays plausible for
//! [`CHAIN_HOPS`] hops or ends exactly at the end of the input (a chain that
//! runs past the end is dead: that is what a fake length usually does). The guess is the
//! smallest surviving candidate: the convergence method of RAPCAP (Anderson
//! et al., 2017), computed lazily from X upward. Chains that run into a
//! position already known to be dead die at once, so a stretch of zeros or
//! of repeated bytes costs each offset a single hop.
//!
//! A guess is only a guess: payloads can hold bytes that look like record
//! headers, a whole capture even. [`crate::chunker`] verifies every guess
//! against the walk of the chunk before it and redoes the chunk when they
//! disagree, so the result is always what a sequential reader sees. See
//! `boundary-resync.md` in the design notes.
//!
//! For pcap, a chain must also keep its timestamps within a day of its first
//! record, and an all-zero record header is not plausible: both are true of
//! real captures and false of zero-filled payloads, which would otherwise
//! give long fake chains of empty records. The search is first made with a stricter test
//! (captured length at most the original length, which is at most 1 MiB):
//! it rejects the commonest fake, the true chain read 4 bytes late, which
//! is consistent whenever caplen equals origlen. Only if nothing survives
//! the strict test is the loose one used.
//!

use std::collections::HashSet;

use crate::format::Endian;
use crate::pcap::Hop;
use crate::walk::Walker;

/// How many hops a candidate's chain must survive.
pub const CHAIN_HOPS: usize = 32;

/// Largest gap between a chain's timestamps (pcap), in seconds.
const TS_SPREAD: u32 = 86_400;

/// Guesses the first record boundary at or after `from`, with the byte
/// order in force there. `None` when no candidate survives.
///
/// `hint` is the byte order to try first for pcapng: that of the file's
/// first section.
pub(crate) fn find_boundary(
    walker: &Walker,
    buf: &[u8],
    from: usize,
    hint: Endian,
) -> Option<(usize, Endian)> {
    find_boundary_in(walker, buf, from, hint, false, CHAIN_HOPS, false)
}

/// Finds where records resume after damaged bytes at `from - 1`. Unlike a
/// guess, a chain here may be cut short by *further* damage a few records on:
/// a candidate whose chain stays plausible for a few hops ([`RESYNC_HOPS`]
/// for pcapng, whose blocks carry their length twice; more for pcap) and only
/// then dies is taken, and the next damage is passed over in its turn.
///
/// Before any pcapng section header has been read, only a section header
/// will do: without one, nothing after it could be interpreted.
pub(crate) fn find_resync(
    walker: &Walker,
    buf: &[u8],
    from: usize,
    hint: Endian,
    open_end: bool,
    have_section: bool,
) -> Option<(usize, Endian)> {
    let (enough, shb_only) = match walker {
        Walker::Pcap(_) => (RESYNC_HOPS_PCAP, false),
        Walker::Pcapng { .. } => (RESYNC_HOPS, !have_section),
    };
    find_boundary_in(walker, buf, from, hint, open_end, enough, shb_only)
}

/// Hops a pcapng chain must survive to be taken after damage.
pub const RESYNC_HOPS: usize = 2;
/// Hops a pcap chain must survive to be taken after damage.
pub const RESYNC_HOPS_PCAP: usize = 6;

/// Like [`find_boundary`]; with `open_end`, `buf` is a window of a longer
/// stream, and a chain that runs past its end survives (what lies beyond
/// cannot be checked). A chain that dies after `enough` hops still counts.
fn find_boundary_in(
    walker: &Walker,
    buf: &[u8],
    from: usize,
    hint: Endian,
    open_end: bool,
    enough: usize,
    shb_only: bool,
) -> Option<(usize, Endian)> {
    if from >= buf.len() {
        return (!open_end).then(|| (buf.len(), walker.endian().unwrap_or(Endian::Little)));
    }
    // Searches in order of preference; the first that finds a survivor wins.
    // pcap: the strict test first, then the loose one. pcapng: the byte
    // order of the file's first section first, then the other (files whose
    // sections differ in byte order are rare; payloads in network byte
    // order that look like big-endian blocks are not).
    let (step, window, tiers) = match walker {
        Walker::Pcap(h) => (
            1,
            h.record_header_len() + h.max_caplen as usize,
            [(h.endian, true), (h.endian, false)],
        ),
        Walker::Pcapng { limits, .. } => (
            4,
            limits.max_block_len as usize,
            [(hint, false), (hint.swapped(), false)],
        ),
    };
    // pcapng blocks are 4-byte aligned: the SHB is at 0 and every length is
    // a multiple of 4.
    let first = from.next_multiple_of(step);
    let last = buf.len().min(from.saturating_add(window));
    for (endian, strict) in tiers {
        let mut dead: HashSet<(usize, Endian)> = HashSet::new();
        let mut c = first;
        while c <= last {
            let search = Search {
                strict,
                open_end,
                enough,
            };
            let allowed = !shb_only || buf.get(c..c + 4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a][..]);
            if allowed && survives(walker, buf, c, endian, search, &mut dead) {
                return Some((c, endian));
            }
            c += step;
        }
    }
    None
}

/// How a chain is judged.
#[derive(Clone, Copy)]
struct Search {
    /// Use the strict test of plausibility (pcap).
    strict: bool,
    /// The bytes are a window of a stream: a chain running past them lives.
    open_end: bool,
    /// A chain that dies after this many hops still counts.
    enough: usize,
}

/// Does the chain from `start` stay plausible for [`CHAIN_HOPS`] hops (or
/// end exactly at the end of the input)? Positions found structurally dead are
/// remembered in `dead`.
fn survives(
    walker: &Walker,
    buf: &[u8],
    start: usize,
    endian: Endian,
    Search {
        strict,
        open_end,
        enough,
    }: Search,
    dead: &mut HashSet<(usize, Endian)>,
) -> bool {
    // Most candidates fail the first check: make it before any bookkeeping.
    let (mut pos, mut e) = match walker.hop(buf, start, endian, true, strict) {
        (Hop::Next(next), ne) => (next, ne),
        (Hop::End, _) => return true,
        (Hop::Beyond, _) => return open_end,
        (Hop::Dead, _) => return false,
    };
    let first_ts = pcap_ts(walker, buf, start);
    let mut path: Vec<(usize, Endian)> = Vec::new();
    for _ in 1..CHAIN_HOPS {
        if dead.contains(&(pos, e)) {
            break;
        }
        if let (Some(a), Some(b)) = (first_ts, pcap_ts(walker, buf, pos))
            && a.abs_diff(b) > TS_SPREAD
        {
            // Incoherent for this chain only: not remembered as dead.
            return path.len() + 1 >= enough;
        }
        path.push((pos, e));
        match walker.hop(buf, pos, e, false, strict) {
            (Hop::Next(next), ne) => (pos, e) = (next, ne),
            (Hop::End, _) => return true,
            (Hop::Beyond, _) if open_end => return true,
            (Hop::Beyond, _) | (Hop::Dead, _) => {
                let hops = path.len();
                dead.extend(path);
                return hops >= enough;
            }
        }
    }
    if path.len() + 1 == CHAIN_HOPS {
        return true;
    }
    let hops = path.len();
    dead.extend(path);
    hops >= enough
}

/// The seconds field of a pcap record header at `off`, if there is one.
fn pcap_ts(walker: &Walker, buf: &[u8], off: usize) -> Option<u32> {
    match walker {
        Walker::Pcap(h) if buf.len().saturating_sub(off) >= 4 => Some(h.endian.u32(buf, off)),
        _ => None,
    }
}

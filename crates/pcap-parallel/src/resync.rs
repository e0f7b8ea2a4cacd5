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
//! `docs/boundary-resync.md` in the repository.
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

use crate::format::{Endian, SHB_MAGIC};
use crate::hop::{Hop, Link, Test};
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
    match find_boundary_windowed(walker, buf, from, hint, Horizon::EndOfInput) {
        Guess::Found(at, endian) => Some((at, endian)),
        Guess::NotFound | Guess::NeedMore => None,
    }
}

/// What [`find_boundary_windowed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guess {
    /// The guess [`find_boundary`] makes on the whole input.
    Found(usize, Endian),
    /// No candidate survives ([`find_boundary`] gives `None`).
    NotFound,
    /// The answer depends on bytes after the window: read more, search again.
    NeedMore,
}

/// Hops a pcapng chain must survive to be taken after damage.
pub const RESYNC_HOPS: usize = 2;
/// Hops a pcap chain must survive to be taken after damage.
pub const RESYNC_HOPS_PCAP: usize = 6;

/// Candidates tried with one test of plausibility (pcap's strict test, or
/// pcapng's first byte order) before the next test is tried on them.
pub const RESYNC_WINDOW: usize = 1 << 20;

/// The most bytes a candidate's chain is followed through after damage:
/// room for [`RESYNC_HOPS`] (or [`RESYNC_HOPS_PCAP`]) records of the
/// largest size and one more, at least 1 MiB, at most 64 MiB.
pub(crate) fn lookahead(walker: &Walker) -> usize {
    let (enough, record) = match walker {
        Walker::Pcap(h) => (
            RESYNC_HOPS_PCAP,
            h.record_header_len() + h.max_caplen as usize,
        ),
        Walker::Pcapng { limits, .. } => (RESYNC_HOPS, limits.max_block_len as usize),
    };
    ((enough + 1).saturating_mul(record)).clamp(1 << 20, 64 << 20)
}

/// Whether the bytes searched end where the input ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Horizon {
    /// They do: a chain that ends exactly at their end survives.
    EndOfInput,
    /// More may follow (a window of a stream): ending at their end is
    /// running past them.
    MoreToCome,
    /// More follows (a byte range read from a file), and a verdict that
    /// depends on it is not given: the search asks for more instead.
    WindowOfFile,
}

/// What may start the records again after damage (pcapng).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// No section header has been read yet: without one nothing after it
    /// could be interpreted, so only a section header will do.
    SectionHeader,
    /// Any block (or, for pcap, any record).
    AnyRecord,
}

impl Restart {
    /// What may restart records, given the section in force, if any.
    pub fn after<T>(section: Option<&T>) -> Restart {
        match section {
            Some(_) => Restart::AnyRecord,
            None => Restart::SectionHeader,
        }
    }
}

/// What a search for the next record boundary after damage found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resync {
    /// Records resume at this offset, read with this byte order.
    Found(usize, Endian),
    /// Nothing up to the end of the input.
    NotFound,
    /// The answer depends on bytes not yet in the buffer: search again
    /// from `resume` (bytes before it are no longer needed) with more.
    NeedMore { resume: usize },
}

/// Finds where records resume after damaged bytes, at or after `from`.
///
/// Unlike a guess, a chain here may be cut short by *further* damage a few
/// records on: a candidate whose chain stays plausible for a few hops
/// ([`RESYNC_HOPS`] for pcapng, whose blocks carry their length twice;
/// more for pcap) and only then dies is taken, and the next damage is
/// passed over in its turn. Every offset is a candidate (damage can shift
/// what follows by any number of bytes, so pcapng's 4-byte alignment no
/// longer holds).
///
/// **The same answer however the bytes arrive.** A candidate is judged on
/// the bytes `[c, c + lookahead)` alone (see [`lookahead`]), and on
/// whether the input ends among them: a chain that runs past them counts
/// the hops it made, like a chain that dies. Candidates are tried
/// [`RESYNC_WINDOW`] at a time, each window with the strict test first.
/// A mapped file ([`Horizon::EndOfInput`]: `buf` runs to the end of the
/// input) and a stream (which holds a window of the input and is asked for
/// more with [`Resync::NeedMore`]) therefore find the same boundary.
///
/// Before any pcapng section header has been read, only a section header
/// will do ([`Restart::SectionHeader`]).
pub(crate) fn resync(
    walker: &Walker,
    buf: &[u8],
    from: usize,
    horizon: Horizon,
    hint: Endian,
    restart: Restart,
) -> Resync {
    let eof = horizon == Horizon::EndOfInput;
    let (enough, shb_only, tiers) = match walker {
        Walker::Pcap(h) => (
            RESYNC_HOPS_PCAP,
            false,
            [(h.endian, Test::Strict), (h.endian, Test::Loose)],
        ),
        Walker::Pcapng { .. } => (
            RESYNC_HOPS,
            restart == Restart::SectionHeader,
            [(hint, Test::Loose), (hint.swapped(), Test::Loose)],
        ),
    };
    let look = lookahead(walker);
    let mut window = from;
    loop {
        if window >= buf.len() {
            return if eof {
                Resync::NotFound
            } else {
                Resync::NeedMore { resume: window }
            };
        }
        let window_end = window.saturating_add(RESYNC_WINDOW);
        if !eof && buf.len() < window_end.saturating_add(look) {
            return Resync::NeedMore { resume: window };
        }
        for (endian, test) in tiers {
            for c in window..window_end.min(buf.len()) {
                if shb_only && buf.get(c..c + 4) != Some(&SHB_MAGIC[..]) {
                    continue;
                }
                let view_end = buf.len().min(c.saturating_add(look));
                let search = Search {
                    test,
                    enough,
                    horizon: if eof && view_end == buf.len() {
                        Horizon::EndOfInput
                    } else {
                        Horizon::MoreToCome
                    },
                };
                if survives(walker, &buf[..view_end], c, endian, search, None) == Some(true) {
                    return Resync::Found(c, endian);
                }
            }
        }
        window = window_end;
    }
}

/// [`find_boundary`] on a window of the input that starts at a multiple of
/// 4 bytes of it (pcapng's alignment): the smallest candidate in `[from,
/// from + largest record]` whose chain survives, first with the strict
/// test. `horizon` is [`Horizon::EndOfInput`] when the window reaches the
/// end of the input (then this is exactly [`find_boundary`]'s guess) and
/// [`Horizon::WindowOfFile`] otherwise, where [`Guess::NeedMore`] says the
/// window is too short to tell.
pub(crate) fn find_boundary_windowed(
    walker: &Walker,
    buf: &[u8],
    from: usize,
    hint: Endian,
    horizon: Horizon,
) -> Guess {
    if from >= buf.len() {
        return match horizon {
            Horizon::EndOfInput => {
                Guess::Found(buf.len(), walker.endian().unwrap_or(Endian::Little))
            }
            Horizon::MoreToCome | Horizon::WindowOfFile => Guess::NeedMore,
        };
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
            [(h.endian, Test::Strict), (h.endian, Test::Loose)],
        ),
        Walker::Pcapng { limits, .. } => (
            4,
            limits.max_block_len as usize,
            [(hint, Test::Loose), (hint.swapped(), Test::Loose)],
        ),
    };
    // pcapng blocks are 4-byte aligned: the SHB is at 0 and every length is
    // a multiple of 4.
    let first = from.next_multiple_of(step);
    let wanted = from.saturating_add(window);
    let last = buf.len().min(wanted);
    let short = horizon != Horizon::EndOfInput && wanted > buf.len();
    for (endian, test) in tiers {
        let mut dead: HashSet<(usize, Endian)> = HashSet::new();
        let mut c = first;
        while c <= last {
            let search = Search {
                test,
                enough: CHAIN_HOPS,
                horizon,
            };
            match survives(walker, buf, c, endian, search, Some(&mut dead)) {
                Some(true) => return Guess::Found(c, endian),
                Some(false) => {}
                None => return Guess::NeedMore,
            }
            c += step;
        }
        if short {
            // Candidates past the window were not tried in this tier.
            return Guess::NeedMore;
        }
    }
    Guess::NotFound
}

/// How a chain is judged.
#[derive(Clone, Copy)]
struct Search {
    /// The test of plausibility (pcap).
    test: Test,
    /// A chain that dies, or runs past the bytes given, after this many
    /// hops still counts.
    enough: usize,
    /// Whether the bytes given end where the input ends.
    horizon: Horizon,
}

/// Does the chain from `start` stay plausible for [`CHAIN_HOPS`] hops (or
/// end exactly at the end of the input)? With `dead`, positions found
/// structurally dead are remembered there and chains that reach one stop.
/// `None` when the verdict depends on bytes past those given
/// ([`Horizon::WindowOfFile`]).
fn survives(
    walker: &Walker,
    buf: &[u8],
    start: usize,
    endian: Endian,
    Search {
        test,
        enough,
        horizon,
    }: Search,
    mut dead: Option<&mut HashSet<(usize, Endian)>>,
) -> Option<bool> {
    // Most candidates fail the first check: make it before any bookkeeping.
    let end_is_eof = horizon == Horizon::EndOfInput;
    let undecided = horizon == Horizon::WindowOfFile;
    let (mut pos, mut e) = match walker.hop(buf, start, endian, Link::First, test) {
        (Hop::Next(next), ne) => (next, ne),
        (Hop::End | Hop::Beyond, _) if undecided => return None,
        (Hop::End, _) => return Some(end_is_eof),
        (Hop::Beyond, _) | (Hop::Dead, _) => return Some(false),
    };
    let first_ts = pcap_ts(walker, buf, start);
    let mut path: Vec<(usize, Endian)> = Vec::new();
    for _ in 1..CHAIN_HOPS {
        if dead.as_ref().is_some_and(|d| d.contains(&(pos, e))) {
            break;
        }
        if let (Some(a), Some(b)) = (first_ts, pcap_ts(walker, buf, pos))
            && a.abs_diff(b) > TS_SPREAD
        {
            // Incoherent for this chain only: not remembered as dead.
            return Some(path.len() + 1 >= enough);
        }
        path.push((pos, e));
        match walker.hop(buf, pos, e, Link::Later, test) {
            (Hop::Next(next), ne) => (pos, e) = (next, ne),
            (Hop::End | Hop::Beyond, _) if undecided => return None,
            (Hop::End, _) if end_is_eof => return Some(true),
            (Hop::End, _) | (Hop::Beyond, _) => return Some(path.len() >= enough),
            (Hop::Dead, _) => {
                let hops = path.len();
                if let Some(d) = dead.as_mut() {
                    d.extend(path);
                }
                return Some(hops >= enough);
            }
        }
    }
    if path.len() + 1 == CHAIN_HOPS {
        return Some(true);
    }
    let hops = path.len();
    if let Some(d) = dead.as_mut() {
        d.extend(path);
    }
    Some(hops >= enough)
}

/// The seconds field of a pcap record header at `off`, if there is one.
fn pcap_ts(walker: &Walker, buf: &[u8], off: usize) -> Option<u32> {
    match walker {
        Walker::Pcap(h) if buf.len().saturating_sub(off) >= 4 => Some(h.endian.u32(buf, off)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EPB, HUGE, IDB, LOOKALIKE, PLAIN, SHB, cat, pcap_of, walker_for};

    #[test]
    fn a_guess_from_mid_record_finds_the_next_record() {
        let buf = pcap_of(&PLAIN, 40);
        let (walker, _) = walker_for(&buf);
        // Byte 30 is inside record 0 (bytes 24..44): the next starts at 44.
        assert_eq!(
            find_boundary(&walker, &buf, 30, Endian::Little),
            Some((44, Endian::Little))
        );
        // At the end of the input, the boundary is the end.
        assert_eq!(
            find_boundary(&walker, &buf, buf.len(), Endian::Little),
            Some((buf.len(), Endian::Little))
        );
    }

    #[test]
    fn a_guess_can_be_fooled_by_a_payload_that_looks_like_records() {
        // Each record's data is a copy of its header: from byte 40 (the data
        // of record 0) a chain of fake records runs 16 bytes behind the
        // real one. The guess takes it; only verification can tell.
        let buf = pcap_of(&LOOKALIKE, 40);
        let (walker, _) = walker_for(&buf);
        assert_eq!(
            find_boundary(&walker, &buf, 40, Endian::Little),
            Some((40, Endian::Little))
        );
    }

    #[test]
    fn records_resume_after_damage_where_a_chain_holds() {
        // Record 0, three bytes of garbage, then records again at 47.
        let buf = cat(&[&pcap_of(&PLAIN, 1), &[0xff, 0xfe, 0xfd], &PLAIN, &PLAIN]);
        let (walker, _) = walker_for(&buf);
        let found = resync(
            &walker,
            &buf,
            45,
            Horizon::EndOfInput,
            Endian::Little,
            Restart::AnyRecord,
        );
        assert_eq!(found, Resync::Found(47, Endian::Little));
        // The same bytes as a window of a stream with more to come: not
        // enough look-ahead yet to judge, so it asks for more.
        let window = resync(
            &walker,
            &buf,
            45,
            Horizon::MoreToCome,
            Endian::Little,
            Restart::AnyRecord,
        );
        assert_eq!(window, Resync::NeedMore { resume: 45 });
        // Damage to the end: nothing found.
        let buf = cat(&[&pcap_of(&PLAIN, 1), &HUGE]);
        let none = resync(
            &walker,
            &buf,
            45,
            Horizon::EndOfInput,
            Endian::Little,
            Restart::AnyRecord,
        );
        assert_eq!(none, Resync::NotFound);
    }

    #[test]
    fn before_any_section_header_only_a_section_header_restarts_pcapng() {
        // Damage, a packet block, then a new section.
        let buf = cat(&[&[0u8; 8], &EPB, &SHB, &IDB, &EPB]);
        let (walker, _) = walker_for(&cat(&[&SHB, &IDB]));
        let restart = |r| resync(&walker, &buf, 1, Horizon::EndOfInput, Endian::Little, r);
        assert_eq!(
            restart(Restart::SectionHeader),
            Resync::Found(44, Endian::Little)
        );
        assert_eq!(
            restart(Restart::AnyRecord),
            Resync::Found(8, Endian::Little)
        );
    }
}

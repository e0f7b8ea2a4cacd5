//! One hop along a chain of candidate records: the words [`crate::pcap`],
//! [`crate::pcapng`], [`crate::walk`] and [`crate::resync`] share when a
//! boundary is searched for (see `docs/boundary-resync.md`).

/// Where following a record header from a candidate offset leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hop {
    /// A plausible record; the next one would start at this offset.
    Next(usize),
    /// The input ends exactly here.
    End,
    /// A plausible start of a record that runs past the end of the bytes
    /// at hand: dead in a whole file, still alive in a window of a stream.
    Beyond,
    /// Not a plausible record header.
    Dead,
}

/// How plausible a pcap record header must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Test {
    /// What holds for nearly every real record and rarely for bytes read at
    /// the wrong offset, besides the loose test: captured length at most the
    /// original length, which is at most 1 MiB.
    Strict,
    /// Captured length within the limit, timestamp fraction below one
    /// second, not all zeros: true of every record a reader accepts.
    Loose,
}

/// Where in its chain a hop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// The candidate itself: a pcapng chain must start on a registered
    /// block type.
    First,
    /// Further along: a chain may pass through block types it does not know.
    Later,
}

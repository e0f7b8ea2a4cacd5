//! What every chunk goes through, in file order, before the workers get it:
//! the filter is checked against the chunk's link types and attached to it,
//! and with a filter, the packet limit counts the packets the filter keeps.
//!
//! Without a filter, [`crate::Capture::max_packets`] is applied where the
//! chunks are cut (it is a count of records there). With one, it counts the
//! packets that pass, as `tcpdump -c N` does: each chunk's kept packets are
//! counted here as it comes, and the chunk holding the last one wanted is
//! cut short right after it. Nothing after it is read or reported.

use std::sync::Arc;

use crate::chunk::Chunk;
use crate::error::Error;
use crate::filter::Filter;

/// The checks and the limit, with what they found.
pub(crate) struct Admission {
    filter: Option<Arc<Filter>>,
    /// With a filter and a packet limit: kept packets still wanted.
    wanted: Option<u64>,
    /// A filter that does not suit a chunk's link types.
    pub error: Option<Error>,
    /// Where the limit was reached (an offset in the input): nothing at or
    /// after it belongs to the run.
    pub limit_at: Option<u64>,
}

/// What to do with a chunk.
pub(crate) enum Verdict {
    /// Hand it to the workers and go on.
    Next(Chunk),
    /// Hand it to the workers: it is the last.
    Last(Chunk),
    /// Stop before it ([`Admission::error`] says why).
    Refuse,
}

impl Admission {
    /// For a run with `filter` and at most `max_packets` packets. Returns
    /// the admission and the limit the chunker must apply itself (the
    /// limit on records, without a filter).
    pub fn new(filter: Option<Arc<Filter>>, max_packets: Option<u64>) -> (Admission, Option<u64>) {
        let (wanted, cut_limit) = match (&filter, max_packets) {
            // Nothing wanted: the chunker's empty cut says so best.
            (Some(_), Some(m)) if m > 0 => (Some(m), None),
            (_, m) => (None, m),
        };
        let admission = Admission {
            filter,
            wanted,
            error: None,
            limit_at: None,
        };
        (admission, cut_limit)
    }

    /// Checks `chunk` and attaches the filter; cuts it short when it holds
    /// the last kept packet wanted.
    pub fn admit(&mut self, mut chunk: Chunk) -> Verdict {
        let Some(f) = &self.filter else {
            return Verdict::Next(chunk);
        };
        // The expression must suit every link type the chunk holds.
        chunk = match chunk.with_filter(f.clone()) {
            Ok(chunk) => chunk,
            Err(e) => {
                self.error = Some(Error::Filter(e));
                return Verdict::Refuse;
            }
        };
        let Some(wanted) = self.wanted else {
            return Verdict::Next(chunk);
        };
        let kept = chunk.keep_at_most(wanted);
        if kept < wanted {
            self.wanted = Some(wanted - kept);
            return Verdict::Next(chunk);
        }
        self.limit_at = Some(chunk.byte_range().end);
        Verdict::Last(chunk)
    }
}

//! The ordered worker pool: chunks in, results out in file order.
//!
//! One thread *feeds* chunks (a [`crate::producer::Producer`] behind the
//! capture's admission checks); `workers` threads run the user's closure on
//! them, each call [`guarded`] so that a panic becomes a [`ChunkFailure`];
//! the calling thread puts the results back in file order and hands each
//! to `deliver` as soon as it and every chunk before it are done.
//!
//! Memory stays bounded however slow one chunk is: a chunk needs a token
//! to be fed, and its token comes back only when its result has been
//! delivered, so at most `in_flight` chunks exist at once.

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use crate::chunk::Chunk;
use crate::error::{ChunkFailure, ChunkFailureCause};
use crate::report::{BoxError, ChunkResult};

/// How a pool runs.
pub(crate) struct Pool {
    /// Threads running the closure.
    pub workers: usize,
    /// Chunks that may exist at once (fed but not yet delivered).
    pub in_flight: usize,
    /// The index of the first chunk fed (chunks are fed in index order).
    pub first_index: usize,
    /// Stop feeding after the first failed chunk.
    pub after_failure: AfterFailure,
    /// Set from outside to stop the run: no chunk is fed or started after.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What the pool does after a chunk's closure failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// The other chunks go on.
    GoOn,
    /// No further chunk is fed or started.
    Stop,
}

/// Whether the pool goes on after a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Stop feeding and starting chunks (what is running finishes).
    Stop,
}

/// The feeding thread's handle: [`Feeder::send`] hands a chunk to the
/// workers once a token is free.
pub(crate) struct Feeder<'a> {
    chunks: Sender<Chunk>,
    tokens: Receiver<()>,
    stopped: &'a (dyn Fn() -> bool + Sync),
}

impl Feeder<'_> {
    /// Hands `chunk` to the workers; false when the run is stopping (the
    /// chunk is dropped, and the feeder should stop).
    pub fn send(&self, chunk: Chunk) -> bool {
        loop {
            if (self.stopped)() {
                return false;
            }
            match self.tokens.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => return self.chunks.send(chunk).is_ok(),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }
}

/// Runs `work` over the chunks `feed` hands to its [`Feeder`], on
/// `pool.workers` threads, and `deliver`s each result (with the chunk's
/// byte length) on the calling thread, in file order. Returns what `feed`
/// returned, or its panic.
pub(crate) fn ordered<P, R, W, D>(
    pool: &Pool,
    feed: impl FnOnce(&Feeder<'_>) -> P + Send,
    work: W,
    mut deliver: D,
) -> std::thread::Result<P>
where
    P: Send,
    R: Send,
    W: Fn(&Chunk) -> Result<R, BoxError> + Sync,
    D: FnMut(ChunkResult<R>, u64) -> Flow,
{
    let stop = AtomicBool::new(false);
    let stopped = || {
        stop.load(Ordering::Relaxed)
            || pool
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    let (chunk_tx, chunk_rx) = bounded::<Chunk>(pool.workers);
    let (res_tx, res_rx) = unbounded::<(ChunkResult<R>, u64)>();
    let (tok_tx, tok_rx) = bounded::<()>(pool.in_flight);
    for _ in 0..pool.in_flight {
        tok_tx.send(()).expect("room for every token");
    }
    let (work, stopped, stop) = (&work, &stopped, &stop);
    std::thread::scope(|s| {
        // On any exit from this scope (a panic in `deliver` included),
        // tell the other threads to stop, so the scope can end.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _guard = StopOnDrop(stop);
        let feeder = s.spawn(move || {
            feed(&Feeder {
                chunks: chunk_tx,
                tokens: tok_rx,
                stopped,
            })
        });
        for _ in 0..pool.workers {
            let (chunk_rx, res_tx) = (chunk_rx.clone(), res_tx.clone());
            s.spawn(move || {
                for chunk in chunk_rx {
                    if stopped() {
                        continue;
                    }
                    let result = guarded(chunk.index, chunk.byte_range(), || work(&chunk));
                    if result.is_err() && pool.after_failure == AfterFailure::Stop {
                        stop.store(true, Ordering::Relaxed);
                    }
                    let done = ChunkResult {
                        index: chunk.index,
                        byte_range: chunk.byte_range(),
                        first_packet_number: chunk.first_packet_number(),
                        packet_count: chunk.packet_count(),
                        result,
                    };
                    if res_tx.send((done, chunk.range.len() as u64)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        drop(chunk_rx);
        let mut hand_on = |(result, bytes): (ChunkResult<R>, u64)| {
            if deliver(result, bytes) == Flow::Stop {
                stop.store(true, Ordering::Relaxed);
            }
            let _ = tok_tx.send(());
        };
        let mut pending: BTreeMap<usize, (ChunkResult<R>, u64)> = BTreeMap::new();
        let mut next = pool.first_index;
        for item in res_rx.iter() {
            pending.insert(item.0.index, item);
            while let Some(item) = pending.remove(&next) {
                hand_on(item);
                next += 1;
            }
        }
        // Chunks skipped after a cancellation leave gaps; deliver the rest in order.
        for (_, item) in std::mem::take(&mut pending) {
            hand_on(item);
        }
        feeder.join()
    })
}

/// Runs `f` for the chunk `index` (bytes `range`), turning an error it
/// returns or a panic into a [`ChunkFailure`] that names the chunk.
pub(crate) fn guarded<R>(
    index: usize,
    range: Range<u64>,
    f: impl FnOnce() -> Result<R, BoxError>,
) -> Result<R, ChunkFailure> {
    let cause = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => ChunkFailureCause::Error(e),
        Err(panic) => ChunkFailureCause::Panic(panic_message(&*panic)),
    };
    Err(ChunkFailure {
        index,
        range,
        cause,
    })
}

/// The message a panic carried, as text.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

//! What `exec`'s runs print, kept in chunk order with bounded memory.
//!
//! Runs finish in any order, but their standard output must appear in
//! chunk order. The run whose turn it is (every run before it has been
//! printed) streams straight to our standard output as it prints. Every
//! other run's output goes to a [`Spool`]: memory up to [`SPOOL_MEMORY`]
//! bytes, then an unnamed temporary file (in `$TMPDIR`; the kernel removes
//! it whatever happens to this process). So memory stays bounded however
//! much the commands print, and nothing is lost: a spool that cannot be
//! written (a full `$TMPDIR`) fails its run, saying so.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of a run's output held in memory before it goes to a file.
pub const SPOOL_MEMORY: usize = 1 << 20;

/// Output held until its turn: in memory, then in a temporary file.
#[derive(Debug, Default)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<File>,
}

impl Spool {
    /// Appends `data`, moving everything to a temporary file once it
    /// outgrows [`SPOOL_MEMORY`].
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + data.len() <= SPOOL_MEMORY {
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let mut f = tempfile::tempfile()?;
                f.write_all(&self.memory)?;
                self.memory = Vec::new();
                self.file.insert(f)
            }
        };
        file.write_all(data)
    }

    /// Writes everything held to `out` and empties the spool.
    pub fn drain_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.rewind()?;
            io::copy(&mut f, out)?;
        } else {
            out.write_all(&self.memory)?;
            self.memory.clear();
        }
        Ok(())
    }

    /// Everything held, as a reader (for line-by-line printing).
    pub fn reader(&mut self) -> io::Result<Box<dyn BufRead + '_>> {
        Ok(match &mut self.file {
            Some(f) => {
                f.rewind()?;
                Box::new(io::BufReader::new(f))
            }
            None => Box::new(io::Cursor::new(&self.memory[..])),
        })
    }
}

/// Our standard output as a writer: every write goes through
/// [`crate::streams`], which checks it (a failure stops the run there).
pub struct Out;

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::streams::write_out(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        crate::streams::flush();
        Ok(())
    }
}

/// Whose turn it is to print.
#[derive(Debug, Default)]
pub struct Turn {
    next: AtomicUsize,
}

impl Turn {
    /// Is it run `n`'s turn (and can output still be printed)?
    pub fn is(&self, n: usize) -> bool {
        self.next.load(Ordering::Acquire) == n && !crate::streams::failed_already()
    }

    /// Run `n` is printed: the turn passes to the next one.
    pub fn pass(&self, n: usize) {
        self.next.store(n + 1, Ordering::Release);
    }
}

/// Reads a run's output to its end. Standard output passes `live =
/// Some((n, turn))`: while it is run `n`'s turn, what it reads goes straight
/// to our standard output (after what was spooled before); otherwise, and
/// always for standard error (`None`), it goes to the spool. Returns the
/// spool (what is left to print) or the error that lost output.
pub fn collect(mut from: impl Read, live: Option<(usize, &Turn)>) -> io::Result<Spool> {
    let mut spool = Spool::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut lost: Option<io::Error> = None;
    loop {
        let k = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if lost.is_some() || (live.is_some() && crate::streams::failed_already()) {
            continue; // keep reading, so that the command is not blocked
        }
        match live {
            Some((n, turn)) if turn.is(n) => {
                // Our own writes are checked by `streams`: a failure there
                // stops the run; nothing is lost silently.
                let _ = spool.drain_to(&mut Out);
                crate::streams::write_out(&buf[..k]);
                crate::streams::flush();
            }
            _ => {
                if let Err(e) = spool.write(&buf[..k]) {
                    lost = Some(e);
                }
            }
        }
    }
    match lost {
        Some(e) => Err(e),
        None => Ok(spool),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_moves_to_a_file_past_its_memory_and_gives_everything_back() {
        let mut s = Spool::default();
        let piece: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        for _ in 0..10 {
            s.write(&piece).unwrap();
        }
        assert!(s.file.is_some() && s.memory.is_empty());
        let mut out = Vec::new();
        s.drain_to(&mut out).unwrap();
        assert_eq!(out.len(), 3_000_000);
        assert!(out.chunks(300_000).all(|c| c == piece));
        assert!(s.memory.is_empty() && s.file.is_none());
    }
}

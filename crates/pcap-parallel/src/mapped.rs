//! Memory maps that survive their file shrinking under them.
//!
//! A plain file is read through a memory map. If another program truncates
//! the file meanwhile, the pages past its new end no longer exist: the
//! kernel answers a read of them with SIGBUS, which kills the process
//! without a word (and a system call handed such a page fails with EFAULT,
//! "Bad address"). Other tools that map their input accept that (ripgrep
//! documents it); a JVM turns the fault into an exception with a handler
//! like the one here.
//!
//! **How it is handled.** Every map is registered, by address range, in a
//! fixed table that a SIGBUS handler can read without locks or allocation.
//! The handler, installed the first time a file is mapped, looks the
//! faulting address up: inside one of our maps, it replaces the pages from
//! there to the map's end with zero-filled anonymous memory (`mmap` with
//! `MAP_FIXED`, a plain system call), marks the map as changed, and
//! returns, so the read goes on and sees zeros. The engine checks
//! [`GuardedMap::changed`] before it delivers each chunk (which also
//! compares the file's size with the map's, for the faults that system
//! calls report as EFAULT and for shrinking within the last page): once the
//! file changed, nothing more is delivered and the run ends with
//! [`crate::Error::InputChanged`], naming the file. Results computed from
//! zeros are never handed out; the process exits normally, so temporary
//! files are removed.
//!
//! A fault outside our maps is passed to the handler that was installed
//! before ours, or, if there was none, kills the process as SIGBUS always
//! does. A program that installs its own SIGBUS handler after mapping a
//! capture replaces ours; at most [`SLOTS`] maps are guarded at once
//! (further ones are mapped unguarded, as before).
//!
//! Bytes that change without the file shrinking (a program writing into
//! the file in place) are not detected: no tool that reads a file can tell.

use std::fs::File;
use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Maps guarded at once.
pub const SLOTS: usize = 64;

struct Slot {
    /// First byte of the map; 0 when the slot is free, 1 while it is claimed.
    start: AtomicUsize,
    /// One past its last byte.
    end: AtomicUsize,
    /// A fault was caught in it.
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS action before ours (written once, before ours is installed).
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A read-only map of a whole file, guarded against the file shrinking.
pub(crate) struct GuardedMap {
    map: memmap2::Mmap,
    file: File,
    /// Offset in the file of the map's first byte.
    offset: u64,
    slot: Option<usize>,
}

impl GuardedMap {
    /// Maps `file` (not empty), read-only.
    pub fn new(file: File) -> io::Result<GuardedMap> {
        // SAFETY: the map is read-only, and a file shrinking under it is
        // handled as the module docs say.
        let map = unsafe { memmap2::Mmap::map(&file) }?;
        Ok(GuardedMap::register(map, file, 0))
    }

    /// Maps `len` bytes (not 0) of `file` from `offset`, read-only (a
    /// chunk rebuilt from its locator). The caller checks that the file
    /// holds them: pages past its end would read as zeros and mark the
    /// map changed.
    pub fn range(file: File, offset: u64, len: usize) -> io::Result<GuardedMap> {
        // SAFETY: as in `new`.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len)
                .map(&file)
        }?;
        Ok(GuardedMap::register(map, file, offset))
    }

    fn register(map: memmap2::Mmap, file: File, offset: u64) -> GuardedMap {
        install();
        let (start, end) = (map.as_ptr() as usize, map.as_ptr() as usize + map.len());
        let slot = TABLE.iter().position(|s| {
            s.start
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(i) = slot {
            TABLE[i].faulted.store(false, Ordering::Relaxed);
            TABLE[i].end.store(end, Ordering::Release);
            TABLE[i].start.store(start, Ordering::Release);
        }
        GuardedMap {
            map,
            file,
            offset,
            slot,
        }
    }

    /// Lets go of the page-table entries of the whole pages inside `range`
    /// (`MADV_DONTNEED`), once the bytes there have been used: the work of
    /// tearing them down is then spread over the workers that used them,
    /// instead of all falling on the thread that unmaps the file at the end
    /// (tens of milliseconds for a file of a gigabyte). The map stays valid:
    /// the file's pages stay in the page cache, and a later read of the
    /// range maps them again. Only advice: errors are ignored.
    pub fn release(&self, range: std::ops::Range<usize>) {
        let page = PAGE.load(Ordering::Relaxed);
        let start = range.start.next_multiple_of(page);
        let end = range.end.min(self.map.len()) / page * page;
        if start < end {
            // SAFETY: the map is a read-only, private map of a file: after
            // MADV_DONTNEED its pages read as the file's bytes again (they
            // were never written), so no reader can see anything else.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
        }
    }

    /// Has the file shrunk under the map: a read of a vanished page was
    /// caught, or the file is now shorter than the map?
    pub fn changed(&self) -> bool {
        let faulted = self
            .slot
            .is_some_and(|i| TABLE[i].faulted.load(Ordering::Acquire));
        faulted
            || self
                .file
                .metadata()
                .is_ok_and(|m| m.len() < self.offset + self.map.len() as u64)
    }
}

impl std::fmt::Debug for GuardedMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedMap")
            .field("offset", &self.offset)
            .field("len", &self.map.len())
            .finish()
    }
}

impl AsRef<[u8]> for GuardedMap {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for GuardedMap {
    fn drop(&mut self) {
        // Out of the table before the map is unmapped (when `map` drops).
        if let Some(i) = self.slot {
            TABLE[i].end.store(0, Ordering::Release);
            TABLE[i].start.store(0, Ordering::Release);
        }
    }
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction with valid arguments; PREVIOUS is
        // written here once, before the handler that reads it exists.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE.store(page as usize, Ordering::Relaxed);
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut old) == 0 {
                PREVIOUS = Some(old);
            }
        }
    });
}

/// The SIGBUS handler: see the module docs. Only atomics and system calls.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        let end = slot.end.load(Ordering::Acquire);
        if start > 1 && start <= addr && addr < end {
            let page = addr & !(PAGE.load(Ordering::Relaxed) - 1);
            // SAFETY: the range lies inside a map of ours that is still
            // registered (so not yet unmapped): zero pages replace it.
            let p = unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    end - page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                slot.faulted.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: the handler before ours, or the default (death by SIGBUS
    // when the faulting read is made again on return).
    // SAFETY: PREVIOUS was written before this handler was installed.
    let previous = unsafe { *std::ptr::addr_of!(PREVIOUS) };
    match previous {
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler takes these arguments.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler takes the signal number.
                let f: extern "C" fn(libc::c_int) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // SAFETY: restoring the default action for SIGBUS.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

//! A set of parts (chunks or flow shards), written whole or not at all:
//! the one implementation behind the command line's `split` and the
//! Python package's `Capture.split` and `Flows.write`.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{
    IfExists, OutputCompression, ShardFiles, part_extension, part_file_name, part_number,
    write_chunk,
};
use crate::{Capture, CaptureFormat, ChunkFailure, Flows, Report};

/// The name prefix of staging directories (`.pcap-parallel-<pid>-XXXXXX`).
pub const STAGING_PREFIX: &str = ".pcap-parallel-";

/// Why a set of parts could not be prepared or put in place. The messages
/// are plain statements; the command line and the Python package add
/// their own advice (`--force`, `force=True`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartsError {
    /// The prefix is not a plain file name (empty, `.` or `..`, holding a
    /// `/` or a NUL byte, or named like a staging directory).
    #[error("the prefix must be a file name, not {0:?}")]
    BadPrefix(String),
    /// The output path is there but is not a directory.
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// An input has the name of a part of this split (or is a hard link
    /// to one): it would be replaced or removed.
    #[error(
        "the input {} is named like a part of this split in {}: it would be replaced",
        input.display(),
        dir.display()
    )]
    InputIsPart {
        /// The input, as given.
        input: PathBuf,
        /// The part it is.
        part: PathBuf,
        /// The output directory.
        dir: PathBuf,
    },
    /// A directory has the name of a part.
    #[error("{} is a directory named like a part: not replacing it", .0.display())]
    DirectoryIsPart(PathBuf),
    /// Parts of an earlier split are there, and replacing them was not asked for.
    #[error("{} already holds parts named {prefix}-*{ext}", dir.display())]
    PartsExist {
        /// The output directory.
        dir: PathBuf,
        /// The parts' prefix.
        prefix: String,
        /// The parts' extension (`.pcap`, `.pcapng.gz`, ...).
        ext: String,
    },
    /// Another split (another process, or another thread) holds the prefix's lock.
    #[error(
        "another split is writing parts named {prefix}-* in {} (it holds {})",
        dir.display(),
        lock.display()
    )]
    Locked {
        /// The output directory.
        dir: PathBuf,
        /// The parts' prefix.
        prefix: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// The staging directory could not be made (a read-only or full directory).
    #[error("{}: cannot write there (a staging directory could not be made: {error})", dir.display())]
    Staging {
        /// The output directory.
        dir: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// Any other file operation failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> PartsError + '_ {
    move |error| PartsError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Checks that `prefix` names files in the output directory and nowhere
/// else.
///
/// ```
/// use pcap_parallel::output::check_prefix;
/// assert!(check_prefix("trace").is_ok());
/// assert!(check_prefix("../escaped").is_err());
/// assert!(check_prefix("/tmp/abs").is_err());
/// assert!(check_prefix("..").is_err());
/// assert!(check_prefix("").is_err());
/// ```
pub fn check_prefix(prefix: &str) -> Result<(), PartsError> {
    let bad = prefix.is_empty()
        || prefix == "."
        || prefix == ".."
        || prefix.contains(['/', '\0'])
        || prefix.starts_with(STAGING_PREFIX);
    if bad {
        Err(PartsError::BadPrefix(prefix.to_string()))
    } else {
        Ok(())
    }
}

/// A set of parts being written, whole or not at all.
///
/// [`PartSet::prepare`] checks the prefix (a plain file name), takes a
/// lock on the prefix in the output directory (`.PREFIX.pcap-parallel.lock`,
/// held with `flock`, so that two splits never write the same parts at
/// once), finds the parts an earlier split left there and refuses if one
/// of them is an input (same device and inode: a split never deletes or
/// replaces its input, `force` or not), and makes a staging directory
/// inside the output directory (`.pcap-parallel-<pid>-XXXXXX`). The parts
/// are written there; [`PartSet::commit`] puts them in place of the
/// earlier set (stale parts past the new set go only then). A `PartSet`
/// dropped without a commit — a failed write, a broken input, an
/// interruption — removes the staging directory, the lock, and the output
/// directory too if it made it: the directory is as it was. Staging
/// directories of processes that died (SIGKILL, a power cut) are removed
/// by the next split into that directory.
///
/// ```
/// use pcap_parallel::{Capture, Split, output::{OutputCompression, PartSet}};
/// # let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
/// let dir = tempfile::tempdir()?;
/// let capture = Capture::open(sample)?.split(Split::Chunks(3));
/// let inputs = [std::path::PathBuf::from(sample)];
/// let parts = PartSet::prepare(dir.path(), "trace", capture.format(),
///     OutputCompression::None, false, &inputs)?;
/// let (count, report) = parts.write_chunks(capture, |_| {});
/// assert!(report.input_error.is_none() && report.failed_chunks == 0);
/// let names = parts.commit(count)?;
/// assert_eq!(names.len(), 3);
/// assert!(names[2].ends_with("trace-00000002.pcap"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PartSet {
    dir: PathBuf,
    prefix: String,
    format: CaptureFormat,
    compression: OutputCompression,
    /// Parts of an earlier split already there, by number (checked: none
    /// is an input, none a directory).
    existing: Vec<(u64, PathBuf)>,
    /// Where the new parts are written until all are complete.
    staging: Option<tempfile::TempDir>,
    /// Held until the set is dropped.
    lock: Option<PrefixLock>,
    /// Directories made for the output, deepest first: removed again
    /// unless the set is committed.
    created: Vec<PathBuf>,
    committed: bool,
}

impl PartSet {
    /// Checks the prefix and the output directory `dir` (creating it if
    /// needed), takes the prefix's lock, finds the parts an earlier split
    /// left there (refusing if one is among `inputs`, or is a directory,
    /// or — without `force` — if there is any) and makes the staging
    /// directory.
    pub fn prepare(
        dir: &Path,
        prefix: &str,
        format: CaptureFormat,
        compression: OutputCompression,
        force: bool,
        inputs: &[PathBuf],
    ) -> Result<PartSet, PartsError> {
        check_prefix(prefix)?;
        if dir.exists() && !dir.is_dir() {
            return Err(PartsError::NotADirectory(dir.to_path_buf()));
        }
        let mut set = PartSet {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            format,
            compression,
            existing: Vec::new(),
            staging: None,
            lock: None,
            created: missing_dirs(dir),
            committed: false,
        };
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        set.lock = Some(PrefixLock::take(dir, prefix)?);
        // What splits that were killed left here.
        remove_stale(dir, STAGING_PREFIX);
        let ext = part_extension(format, compression);
        set.existing = existing_parts(dir, prefix, &ext, inputs)?;
        if !set.existing.is_empty() && !force {
            return Err(PartsError::PartsExist {
                dir: dir.to_path_buf(),
                prefix: prefix.to_string(),
                ext,
            });
        }
        let staging = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{}-", std::process::id()))
            .tempdir_in(dir)
            .map_err(|error| PartsError::Staging {
                dir: dir.to_path_buf(),
                error,
            })?;
        set.staging = Some(staging);
        Ok(set)
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parts' prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The parts' compression.
    pub fn compression(&self) -> OutputCompression {
        self.compression
    }

    /// The staging directory, where the parts are written until the commit.
    pub fn staging_dir(&self) -> &Path {
        self.staging.as_ref().expect("made by prepare").path()
    }

    /// The file name of part `n`.
    pub fn name(&self, n: u64) -> String {
        part_file_name(&self.prefix, n as usize, self.format, self.compression)
    }

    /// The final path of part `n`.
    pub fn path(&self, n: u64) -> PathBuf {
        self.dir.join(self.name(n))
    }

    /// Where part `n` is written until the set is complete.
    pub fn staged(&self, n: u64) -> PathBuf {
        self.staging_dir().join(self.name(n))
    }

    /// Writes one part per chunk of `capture` into the staging directory,
    /// in parallel; `failed` is told of each chunk that could not be
    /// written (its message names the part's final path). Returns the
    /// number of parts written (numbers `0..count`, every chunk delivered
    /// before a broken input's fault) and the run's report. Several inputs
    /// of two formats fail: the parts would be named for the first's.
    pub fn write_chunks(
        &self,
        capture: Capture,
        mut failed: impl FnMut(ChunkFailure),
    ) -> (u64, Report) {
        let mut count = 0u64;
        let ext = part_extension(self.format, self.compression);
        let report = capture.run(
            |chunk| {
                let n = chunk.index() as u64;
                if part_extension(chunk.format(), self.compression) != ext {
                    return Err(format!(
                        "{}: {} input among {} ones: split the formats apart",
                        chunk.input_name(),
                        chunk.format().extension(),
                        self.format.extension()
                    )
                    .into());
                }
                write_chunk(chunk, &self.staged(n), self.compression, IfExists::Fail)
                    .map_err(|e| format!("{}: {e}", self.path(n).display()).into())
            },
            |r| match r.result {
                Ok(_) => count += 1,
                Err(e) => failed(e),
            },
        );
        (count, report)
    }

    /// Writes one part per shard of `flows` into the staging directory,
    /// with at most `max_open` files open at once. Returns the number of
    /// parts written, or the error, and the run's report.
    pub fn write_shards(&self, flows: Flows, max_open: usize) -> (crate::Result<u64>, Report) {
        let mut files = ShardFiles::new(self.staging_dir(), &self.prefix);
        files.compression = self.compression;
        files.max_open = max_open.max(1);
        let (names, report) = flows.write_shards(&files);
        (names.map(|n| n.len() as u64), report)
    }

    /// Puts the `count` parts written in place of the earlier set: the
    /// earlier parts are moved aside into the staging directory, the new
    /// ones renamed in; should a rename fail, everything is moved back
    /// (the directory as it was) and the error returned. The parts moved
    /// aside go with the staging directory. Returns the parts' paths.
    pub fn commit(mut self, count: u64) -> Result<Vec<PathBuf>, PartsError> {
        let aside = self.staging_dir().join(".earlier");
        fs::create_dir(&aside).map_err(io_at(&aside))?;
        let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut outcome = Ok(());
        for (_, path) in &self.existing {
            let to = aside.join(path.file_name().expect("a part's name"));
            outcome = fs::rename(path, &to).map_err(io_at(path));
            if outcome.is_err() {
                break;
            }
            moved.push((to, path.clone()));
        }
        let mut placed: Vec<(PathBuf, PathBuf)> = Vec::new();
        for n in 0..count {
            if outcome.is_err() {
                break;
            }
            let (from, to) = (self.staged(n), self.path(n));
            outcome = fs::rename(&from, &to).map_err(io_at(&to));
            if outcome.is_ok() {
                placed.push((to, from));
            }
        }
        if let Err(e) = outcome {
            // Back as it was: the new parts to staging, the earlier in place.
            for (from, to) in placed.iter().chain(moved.iter()) {
                let _ = fs::rename(from, to);
            }
            return Err(e);
        }
        self.committed = true;
        Ok((0..count).map(|n| self.path(n)).collect())
    }
}

impl Drop for PartSet {
    fn drop(&mut self) {
        drop(self.staging.take());
        drop(self.lock.take());
        if !self.committed {
            for d in &self.created {
                // Only if empty: nothing of anyone else's goes.
                let _ = fs::remove_dir(d);
            }
        }
    }
}

/// The directories `create_dir_all(dir)` would make, deepest first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .filter(|d| !d.as_os_str().is_empty())
        .take_while(|d| fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect()
}

/// The parts already in `dir`, checked: none may be an input (a split
/// never deletes or overwrites its input, whatever its name: same device
/// and inode, or a symbolic link given as the input), and none a directory.
fn existing_parts(
    dir: &Path,
    prefix: &str,
    ext: &str,
    inputs: &[PathBuf],
) -> Result<Vec<(u64, PathBuf)>, PartsError> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            part_number(&name, prefix, ext).map(|n| (n, e.path()))
        })
        .collect();
    found.sort();
    let mut input_ids: Vec<((u64, u64), &PathBuf)> = Vec::new();
    for input in inputs.iter().filter(|i| i.as_os_str() != "-") {
        for meta in [fs::metadata(input), fs::symlink_metadata(input)]
            .into_iter()
            .flatten()
        {
            input_ids.push(((meta.dev(), meta.ino()), input));
        }
    }
    for (_, path) in &found {
        let meta = fs::symlink_metadata(path).map_err(io_at(path))?;
        if let Some((_, input)) = input_ids
            .iter()
            .find(|(id, _)| *id == (meta.dev(), meta.ino()))
        {
            return Err(PartsError::InputIsPart {
                input: input.to_path_buf(),
                part: path.clone(),
                dir: dir.to_path_buf(),
            });
        }
        if meta.is_dir() {
            return Err(PartsError::DirectoryIsPart(path.clone()));
        }
    }
    Ok(found)
}

/// An exclusive lock on a prefix in an output directory: a lock file
/// `DIR/.PREFIX.pcap-parallel.lock`, held with `flock` (released by the
/// kernel if the process dies) and removed when the set is dropped.
#[derive(Debug)]
struct PrefixLock {
    path: PathBuf,
    _file: fs::File,
}

impl PrefixLock {
    fn take(dir: &Path, prefix: &str) -> Result<PrefixLock, PartsError> {
        use std::os::fd::AsRawFd;
        let path = dir.join(format!(".{prefix}.pcap-parallel.lock"));
        loop {
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io_at(&path))?;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Err(PartsError::Locked {
                        dir: dir.to_path_buf(),
                        prefix: prefix.to_string(),
                        lock: path,
                    });
                }
                return Err(io_at(&path)(e));
            }
            // The holder before us may have removed the file after we
            // opened it: then ours is not the lock; take the new one.
            let same = match (file.metadata(), fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if same {
                return Ok(PrefixLock { path, _file: file });
            }
        }
    }
}

impl Drop for PrefixLock {
    fn drop(&mut self) {
        // Removed while still held, then released when the file closes.
        let _ = fs::remove_file(&self.path);
    }
}

/// The name prefix for temporary files and directories of this process:
/// `prefix`, the process id, `-` (see [`remove_stale`]).
pub fn owned_prefix(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id())
}

/// The process id in a name made with [`owned_prefix`] and `prefix`.
fn owner(name: &str, prefix: &str) -> Option<i32> {
    let rest = name.strip_prefix(prefix)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Is process `pid` gone?
fn dead(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Removes what processes that died left in `dir` under names made with
/// [`owned_prefix`] and `prefix`; returns how many entries were removed.
/// A name with a live process id is never touched (it may be another
/// run's, or a recycled id's); errors leave the entry where it is.
pub fn remove_stale(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| owner(n, prefix)) else {
            continue;
        };
        if pid <= 0 || pid as u32 == std::process::id() || !dead(pid) {
            continue;
        }
        let path = e.path();
        let gone = match e.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

//! Temporary files that are certainly ours, and those left by runs that
//! died.
//!
//! Every temporary file or directory this program makes outside the
//! kernel's unnamed files carries its process id in its name
//! (`PREFIX<pid>-XXXXXX`). A run that was killed (SIGKILL, a power cut)
//! cannot remove its own; the next run removes those whose process no
//! longer exists. A name with a live process id is never touched (it may
//! be another run's, or a recycled id's: both are left alone).

use std::path::Path;

/// `exec`'s temporary chunk captures for `{}`, in `$TMPDIR`.
pub const CHUNK_PREFIX: &str = "pcap-parallel-chunk-";
/// `exec --flows`' temporary shard directories, in `$TMPDIR`.
pub const SHARDS_PREFIX: &str = "pcap-parallel-shards-";
/// `split`'s staging directories and temporary parts, in the output directory.
pub const SPLIT_PREFIX: &str = ".pcap-parallel-";

/// The name prefix for our temporary files: `prefix`, our process id, `-`.
pub fn ours(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id())
}

/// The process id in a name made with [`ours`] with `prefix`.
fn owner(name: &str, prefix: &str) -> Option<i32> {
    let rest = name.strip_prefix(prefix)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Is process `pid` gone?
fn dead(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Removes what runs that died left in `dir` under `prefix`; returns how
/// many entries were removed. Errors (permissions, a race with another
/// cleaner) leave the entry where it is.
pub fn remove_stale(dir: &Path, prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
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
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A process that has certainly exited: our own child, reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let ours = std::process::id();
        for name in [
            format!("{CHUNK_PREFIX}{gone}-abc.pcap"),
            format!("{CHUNK_PREFIX}{ours}-abc.pcap"),
            format!("{CHUNK_PREFIX}1-abc.pcap"),
            "pcap-parallel-chunk-x-abc.pcap".to_string(),
            format!("other-{gone}-abc.pcap"),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale(dir.path(), CHUNK_PREFIX), 1);
        assert!(
            !dir.path()
                .join(format!("{CHUNK_PREFIX}{gone}-abc.pcap"))
                .exists()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }
}

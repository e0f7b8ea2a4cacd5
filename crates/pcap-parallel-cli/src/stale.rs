//! Temporary files that are certainly ours, and those left by runs that
//! died.
//!
//! Every temporary file or directory this program makes outside the
//! kernel's unnamed files carries its process id in its name
//! (`PREFIX<pid>-XXXXXX`). A run that was killed (SIGKILL, a power cut)
//! cannot remove its own; the next run removes those whose process no
//! longer exists. A name with a live process id is never touched (it may
//! be another run's, or a recycled id's: both are left alone).

/// `exec`'s temporary chunk captures for `{}`, in `$TMPDIR`.
pub const CHUNK_PREFIX: &str = "pcap-parallel-chunk-";
/// `exec --flows`' temporary shard directories, in `$TMPDIR`.
pub const SHARDS_PREFIX: &str = "pcap-parallel-shards-";
// `split`'s staging directories are the library's
// (`pcap_parallel::output::STAGING_PREFIX`, in the output directory): its
// `PartSet` removes those of dead processes itself.

/// The name prefix for our temporary files: `prefix`, our process id, `-`.
pub use pcap_parallel::output::owned_prefix as ours;
/// Removes what runs that died left in `dir` under `prefix`; returns how
/// many entries were removed.
pub use pcap_parallel::output::remove_stale;

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

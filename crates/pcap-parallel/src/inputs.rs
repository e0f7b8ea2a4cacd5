//! Several captures as one: the paths that patterns name, and the order in
//! which [`crate::Capture::open_many`] reads them.

use std::path::{Path, PathBuf};

/// The order in which several inputs are read as one capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InputOrder {
    /// As given (patterns expanded in sorted order, as a shell does).
    #[default]
    Given,
    /// By the time of each file's first packet (files without a readable
    /// first packet first, in the order given): rotated files whose names
    /// do not sort by time (`trace.pcap9`, `trace.pcap10`).
    Time,
}

/// Why several inputs cannot be read as one capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputsError {
    /// No input was given.
    #[error("no input given")]
    None,
    /// A pattern matched no file.
    #[error("{pattern}: no file matches")]
    NoMatch {
        /// The pattern.
        pattern: String,
    },
    /// A pattern is not a valid glob pattern.
    #[error("{pattern}: not a valid pattern: {problem}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Flow shards are written from one input at a time (several inputs
    /// may differ in their headers and pcapng sections).
    #[error(
        "flow shards are written from one capture file at a time, not from several read as one"
    )]
    ShardsOfSeveral,
    /// Standard input (`-`) among other inputs.
    #[error("standard input (-) can only be read alone, not with other inputs")]
    StdinAmongOthers,
}

/// The paths that `args` name, in order: an argument that is an existing
/// path (or `-`) is taken as it is; one holding `*`, `?` or `[` that is not
/// is a glob pattern (`**` for any depth of directories), expanded in sorted order (a pattern that matches
/// nothing is an error, never silently no input); anything else is taken as
/// it is (opening it reports what is wrong).
///
/// ```
/// # use pcap_parallel::expand_inputs;
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples");
/// let paths = expand_inputs([format!("{dir}/sample.pcap"), format!("{dir}/real/*nanosecs*.pcap")])?;
/// assert_eq!(paths.len(), 2);
/// assert!(expand_inputs([format!("{dir}/no-such-*.pcap")]).is_err());
/// # Ok::<(), pcap_parallel::InputsError>(())
/// ```
pub fn expand_inputs<P: AsRef<Path>>(
    args: impl IntoIterator<Item = P>,
) -> Result<Vec<PathBuf>, InputsError> {
    let mut paths = Vec::new();
    for arg in args {
        let path = arg.as_ref();
        let pattern = match path.to_str() {
            Some(p) if p != "-" && !path.exists() && p.contains(['*', '?', '[']) => p,
            _ => {
                paths.push(path.to_path_buf());
                continue;
            }
        };
        let arg = pattern;
        let bad = |problem: String| InputsError::BadPattern {
            pattern: arg.to_string(),
            problem,
        };
        let matches = glob::glob(arg).map_err(|e| bad(e.msg.to_string()))?;
        let mut found = Vec::new();
        for m in matches {
            found.push(m.map_err(|e| bad(e.to_string()))?);
        }
        if found.is_empty() {
            return Err(InputsError::NoMatch {
                pattern: arg.to_string(),
            });
        }
        found.sort();
        paths.extend(found);
    }
    if paths.is_empty() {
        return Err(InputsError::None);
    }
    Ok(paths)
}

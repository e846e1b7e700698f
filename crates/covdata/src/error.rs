//! Typed errors: every failure names the file it concerns and, for bad
//! bytes, the offset where decoding stopped.

use std::path::PathBuf;

use crate::model::{CounterMode, Granularity};

/// What is wrong with the bytes of a coverage file (without the file name;
/// [`Error::Corrupt`] adds it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {kind}")]
pub struct Corruption {
    /// Offset from the start of the file where the problem was found.
    pub offset: u64,
    pub kind: CorruptionKind,
}

/// The kinds of damage the decoders recognise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorruptionKind {
    #[error("file ends inside the {0}")]
    Truncated(&'static str),
    #[error("not a Go coverage {0} file (wrong magic bytes)")]
    BadMagic(&'static str),
    #[error(
        "unsupported format version {found} (this reader knows version {known}); is the data from a newer Go?"
    )]
    UnsupportedVersion { found: u32, known: u32 },
    #[error("unknown counter mode {0}")]
    UnknownCounterMode(u8),
    #[error("unknown counter granularity {0}")]
    UnknownGranularity(u8),
    #[error("unknown counter flavor {0}")]
    UnknownFlavor(u8),
    #[error("counter file has no segments")]
    NoSegments,
    #[error("{what} {value} is out of range (limit {limit})")]
    OutOfRange {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("string table index {index} out of range ({entries} entries)")]
    BadStringIndex { index: u64, entries: usize },
    #[error("malformed args table: {0}")]
    BadArgs(&'static str),
}

impl Corruption {
    pub(crate) fn new(offset: u64, kind: CorruptionKind) -> Self {
        Corruption { offset, kind }
    }
}

/// Everything [`crate::load`] and the encoder can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input folder given by the user does not exist or is not a folder.
    /// The message starts as `go tool covdata`'s does (`reading inputs: `).
    #[error("reading inputs: input folder {}: {reason}", path.display())]
    BadInput { path: PathBuf, reason: String },
    /// Reading or writing a file failed at the OS level.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A coverage file is truncated, damaged or of an unknown version.
    #[error("corrupt coverage file {}: {corruption}", path.display())]
    Corrupt {
        path: PathBuf,
        corruption: Corruption,
    },
    /// No `covmeta.*` file (with or without counters) below any input folder.
    #[error(
        "no Go coverage data (covmeta.* files) found in {}; check that the counters were flushed and collected",
        fmt_paths(searched)
    )]
    NoData { searched: Vec<PathBuf> },
    /// Two inputs were recorded with different `-covermode`s and the caller
    /// asked for [`crate::ModeClash::Refuse`] (as `textfmt` does).
    /// The message starts with Go's own wording.
    #[error("counter mode clash while reading meta-data file {}: previous file had {previous}, new file has {new}; a text profile has one mode, so merge only data built with the same -covermode (select folders or use -pkg)", path.display(), previous = previous.as_str(), new = new.as_str())]
    ModeClash {
        path: PathBuf,
        previous: CounterMode,
        new: CounterMode,
    },
    /// A meta-data file read twice (once checked, once when reported) gave
    /// different bytes: it was replaced meanwhile.
    #[error("{}: the meta-data file changed while it was being read; run again", path.display())]
    Changed { path: PathBuf },
    /// Inputs disagree on counter granularity; Go refuses to merge these too.
    #[error("counter granularity clash while reading meta-data file {}: previous file had {}, new file has {}", path.display(), previous.as_str(), new.as_str())]
    GranularityClash {
        path: PathBuf,
        previous: Granularity,
        new: Granularity,
    },
}

fn fmt_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, corruption: Corruption) -> Self {
        Error::Corrupt {
            path: path.into(),
            corruption,
        }
    }
}

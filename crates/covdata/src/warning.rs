//! Things worth telling the user that do not stop a report.

use std::path::{Path, PathBuf};

/// A non-fatal finding of [`crate::load`] or [`crate::scan::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A file that is not Go coverage data sits in an input folder.
    ForeignFile(PathBuf),
    /// A half-written `tmp.cov…` file the Go runtime leaves if killed mid-write.
    TemporaryFile(PathBuf),
    /// A counter file whose meta-data file is missing (Go skips these silently).
    OrphanCounters(PathBuf),
    /// A counter-file name whose process id is out of range (Go skips it).
    BadCounterName(PathBuf),
    /// A symlink whose target is missing.
    DanglingLink(PathBuf),
    /// Counters for a package/function the meta-data file does not have.
    UnknownFunction {
        path: PathBuf,
        package: u32,
        function: u32,
    },
    /// Counts saturated at 2^32-1 while merging (as Go does).
    CounterOverflow { meta: PathBuf },
}

impl Warning {
    /// The file the warning is about.
    pub fn path(&self) -> &Path {
        match self {
            Warning::ForeignFile(p)
            | Warning::TemporaryFile(p)
            | Warning::OrphanCounters(p)
            | Warning::BadCounterName(p)
            | Warning::DanglingLink(p) => p,
            Warning::UnknownFunction { path, .. } => path,
            Warning::CounterOverflow { meta } => meta,
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::ForeignFile(p) => write!(f, "{}: not Go coverage data, skipped", p.display()),
            Warning::TemporaryFile(p) => write!(
                f,
                "{}: half-written temporary coverage file (process killed while flushing?), skipped",
                p.display()
            ),
            Warning::OrphanCounters(p) => write!(
                f,
                "{}: counter file without its covmeta.* file, skipped (was the meta-data file collected?)",
                p.display()
            ),
            Warning::BadCounterName(p) => {
                write!(
                    f,
                    "{}: counter file name has an out-of-range process id, skipped",
                    p.display()
                )
            }
            Warning::DanglingLink(p) => write!(f, "{}: broken symlink, skipped", p.display()),
            Warning::UnknownFunction {
                path,
                package,
                function,
            } => write!(
                f,
                "{}: counters for package {package} function {function}, which the meta-data file does not describe; ignored",
                path.display()
            ),
            Warning::CounterOverflow { meta } => write!(
                f,
                "{}: counter overflow while merging, counts capped at 4294967295",
                meta.display()
            ),
        }
    }
}

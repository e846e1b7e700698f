//! Coverage reports people and CI systems read, made from the merged
//! [`covdata::model::Profile`]: a self-contained HTML page, an LCOV tracefile,
//! Cobertura XML, versioned JSON and a Markdown summary.
//!
//! Coverage data names files by import path; [`SourceMap`] finds them on disk
//! (modules by their `go.mod` under a source root, the standard library in
//! GOROOT) so the HTML can show source and LCOV/Cobertura consumers can open it.
//!
//! ```no_run
//! # fn demo(profile: &covdata::model::Profile) -> Result<(), covformats::Error> {
//! use covformats::{Format, Options, Report, SourceMap};
//! let sources = SourceMap::discover(std::path::Path::new("."), covformats::find_goroot());
//! let report = Report::new(profile, &sources);
//! covformats::write_files(&report, &[Format::Html, Format::Lcov], &Options::default(),
//!     std::path::Path::new("reports"))?;
//! # Ok(()) }
//! ```
//!
//! The JSON schema is documented in [`json`].

pub mod cobertura;
mod escape;
pub mod html;
pub mod json;
pub mod lcov;
pub mod markdown;
pub mod sourcemap;
#[cfg(test)]
mod testprofile;
pub mod view;

pub use sourcemap::{Resolution, SourceMap, find_goroot};
pub use view::{FileView, FunctionView, PackageView, Report, Tally};

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// An output format of this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Html,
    Lcov,
    Cobertura,
    Json,
    Markdown,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Html,
        Format::Lcov,
        Format::Cobertura,
        Format::Json,
        Format::Markdown,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Lcov => "lcov",
            Format::Cobertura => "cobertura",
            Format::Json => "json",
            Format::Markdown => "markdown",
        }
    }

    /// The file name a format is written to in an output folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Html => "coverage.html",
            Format::Lcov => "lcov.info",
            Format::Cobertura => "cobertura.xml",
            Format::Json => "coverage.json",
            Format::Markdown => "coverage.md",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What every format may mention besides the data.
#[derive(Debug, Clone)]
pub struct Options {
    /// Heading of the HTML page and the Markdown summary.
    pub title: String,
    /// The producing tool and version (Cobertura `version`, JSON `generator`).
    pub generator: String,
    /// Milliseconds since the Unix epoch (Cobertura `timestamp`).
    pub timestamp_ms: u64,
    /// The folder Cobertura file names are made relative to.
    pub source_root: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            title: "Coverage report".into(),
            generator: concat!("cov-report ", env!("CARGO_PKG_VERSION")).into(),
            timestamp_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            source_root: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("writing {format} output: {source}")]
    Stream {
        format: &'static str,
        source: io::Error,
    },
}

/// Writes one format to a stream.
pub fn write<W: Write>(
    format: Format,
    report: &Report<'_>,
    options: &Options,
    out: &mut W,
) -> io::Result<()> {
    match format {
        Format::Html => html::write(report, options, out),
        Format::Lcov => lcov::write(report, out),
        Format::Cobertura => cobertura::write(report, options, out),
        Format::Json => json::write(report, options, out),
        Format::Markdown => markdown::write(report, options, out),
    }
}

/// Writes each format to `dir/<file name>` (the folder is created), each
/// through a temporary file renamed into place, so a reader never sees half
/// a report. Formats are written in parallel (they only read the report).
/// Returns the paths written, in the order asked; duplicates are written once.
pub fn write_files(
    report: &Report<'_>,
    formats: &[Format],
    options: &Options,
    dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut unique: Vec<Format> = Vec::with_capacity(formats.len());
    for &f in formats {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    let results: Vec<Result<PathBuf, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = unique
            .iter()
            .map(|&format| {
                spawn_elsewhere::spawn(s, move || {
                    let path = dir.join(format.file_name());
                    write_atomically(&path, |w| write(format, report, options, w)).map(|()| path)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.into_iter().collect()
}

/// Writes a file through `<name>.tmp` + rename.
pub fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<std::fs::File>) -> io::Result<()>,
) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    let result = body(&mut w).and_then(|()| w.flush());
    drop(w);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    std::fs::rename(&tmp, path).map_err(err)
}

//! Go's binary coverage data (`covmeta.*`, `covcounters.*`, Go 1.20+):
//! decode, merge, encode, and the coverage model reports are made from.
//!
//! The modules follow the data path, as Go's `internal/coverage` does:
//!
//! | step | module | Go counterpart |
//! |---|---|---|
//! | find files, pair meta + counters into groups | [`scan`] | `pods` |
//! | decode a meta-data file | [`decode_meta`] | `decodemeta` |
//! | decode a counter-data file | [`decode_counters`] | `decodecounter` |
//! | merge counters, then groups | [`merge`] | `cmerge`, `cformat` |
//! | the merged result | [`model`] | |
//! | text outputs of `go tool covdata` | [`format`] | `cformat` |
//! | write Go-format files | [`encode`] | `encodemeta`, `encodecounter` |
//! | what a file name says (loose checks for the Kubernetes side) | [`names`] | |
//! | `debugdump`: each group as read | [`dump`] | `cmd/covdata/dump.go` |
//! | `merge`: Go's merged file layout | [`gomerge`] | `cmd/covdata/metamerge.go` |
//!
//! (Go calls a meta file plus its counter files a "pod"; here that word
//! means a Kubernetes pod, so this crate says "group".)
//!
//! # Reading
//!
//! [`load`] does the whole read path: folders are searched recursively,
//! every group is decoded and merged with `go tool covdata`'s semantics, and
//! the result is a [`model::Profile`] plus warnings. [`load_lazily`] is the
//! same read path for the text reports: the data of a single binary (the
//! usual case) stays a [`OneBinary`], one count per block, whose packages
//! are decoded one at a time as a report writes them ([`model::Packages`]),
//! so memory stays that of the counts and one package.
//!
//! ```no_run
//! use covdata::{LoadOptions, ModeClash, PkgFilter};
//! let loaded = covdata::load(
//!     &["reports/coverage".into()],
//!     &LoadOptions {
//!         packages: Some(PkgFilter::parse("example.com/app/...")),
//!         mode_clash: ModeClash::Upgrade, // what percent/func do; textfmt uses Refuse
//!         ..LoadOptions::default()
//!     },
//! )?;
//! for w in &loaded.warnings {
//!     eprintln!("warning: {w}");
//! }
//! let mut out = std::io::stdout();
//! covdata::format::percent::write(&loaded.profile, &mut out)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing
//!
//! [`encode::write_dir`] writes any [`model::Profile`] (merged, filtered, or
//! computed, e.g. a difference of two profiles) as one `covmeta` +
//! `covcounters` pair that `go tool covdata` reads:
//!
//! ```no_run
//! fn save(profile: &covdata::model::Profile) -> Result<(), covdata::Error> {
//!     let written = covdata::encode::write_dir(profile, std::path::Path::new("merged"))?;
//!     println!("{}", written.meta.display());
//!     Ok(())
//! }
//! ```
//!
//! # Where this differs from `go tool covdata`
//!
//! Standard output for valid input is identical (golden tests check it).
//! Deliberately different:
//! - input folders are searched recursively; a file reached twice through
//!   overlapping inputs or symlinks is read once (the same bytes under two
//!   names still count twice, as separate processes do);
//! - foreign, half-written (`tmp.cov…`) and orphaned counter files produce
//!   [`Warning`]s instead of silence; no data at all is [`Error::NoData`];
//! - damaged input Go would panic on is an [`Error::Corrupt`]; counters
//!   for a function with more values than blocks are cut, with fewer are
//!   padded with zeros; names that are not UTF-8 get replacement characters;
//! - blocks at identical positions in different functions (only possible
//!   when different builds of a package are merged) have no stable order in
//!   Go; here they are ordered by function name (see [`format`]).
//!
//! # Errors
//!
//! Every failure is an [`Error`] naming the file; damaged bytes give
//! [`Error::Corrupt`] with the byte offset. No input makes this crate panic
//! (a property test feeds it mutated real files).

pub mod decode_counters;
pub mod decode_meta;
pub mod dump;
pub mod encode;
mod error;
pub mod format;
pub mod gomerge;
mod load;
pub mod merge;
pub mod model;
pub mod names;
mod one_binary;
pub mod pkgpattern;
mod reader;
pub mod scan;
pub mod setops;
mod warning;

pub use error::{Corruption, CorruptionKind, Error};
pub use load::{LoadOptions, Loaded, ModeClash, Timings, load, load_lazily, read_meta};
pub use one_binary::{Coverage, OneBinary};
pub use pkgpattern::PkgFilter;
pub use warning::Warning;

//! Step 4 of the data flow: the text outputs of `go tool covdata`,
//! byte for byte, written from a [`crate::model::Profile`].
//!
//! - [`percent`]: per package, `\t<pkg>\t\tcoverage: 12.3% of statements`
//! - [`func`]: per function, aligned like Go's `text/tabwriter`, plus a total
//! - [`textfmt`]: the legacy text profile `go tool cover` reads
//! - [`pkglist`]: the import paths
//!
//! Where Go's own order is not stable (blocks at the same position in
//! different functions, possible only when different builds of a package
//! are merged; Go sorts them with an unstable sort over a map), ties are
//! broken by function name, literal flag, then count, so our output is
//! deterministic; it matches one of the orders Go may print.

pub mod func;
pub mod percent;
pub mod pkglist;
pub mod tabwriter;
pub mod textfmt;

use crate::model::{Function, Package, Unit};

/// A package's blocks in Go's output order: by file, start line, end line,
/// start column, end column, statements.
pub(crate) fn sorted_units(pkg: &Package) -> Vec<(&Function, &Unit)> {
    let mut v: Vec<(&Function, &Unit)> = pkg
        .functions
        .iter()
        .flat_map(|f| f.units.iter().map(move |u| (f, u)))
        .collect();
    v.sort_unstable_by(|(fa, a), (fb, b)| {
        fa.file
            .cmp(&fb.file)
            .then(a.start_line.cmp(&b.start_line))
            .then(a.end_line.cmp(&b.end_line))
            .then(a.start_col.cmp(&b.start_col))
            .then(a.end_col.cmp(&b.end_col))
            .then(a.statements.cmp(&b.statements))
            .then_with(|| fa.name.cmp(&fb.name))
            .then(fa.literal.cmp(&fb.literal))
            .then(a.count.cmp(&b.count))
    });
    v
}

/// `%.1f` as Go prints it (round half to even on the exact binary value,
/// which is what Rust's formatter does too).
pub(crate) fn pct1(v: f64) -> String {
    format!("{v:.1}")
}

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
    // Files compared once, as ranks: the sort then compares integers, and
    // strings (names) only on ties.
    let mut files: Vec<&str> = pkg.functions.iter().map(|f| f.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    let rank = |f: &Function| files.binary_search(&f.file.as_str()).unwrap_or(0) as u32;
    let mut v: Vec<(u32, &Function, &Unit)> = pkg
        .functions
        .iter()
        .flat_map(|f| {
            let r = rank(f);
            f.units.iter().map(move |u| (r, f, u))
        })
        .collect();
    v.sort_unstable_by(|(ra, fa, a), (rb, fb, b)| {
        (
            ra,
            a.start_line,
            a.end_line,
            a.start_col,
            a.end_col,
            a.statements,
        )
            .cmp(&(
                rb,
                b.start_line,
                b.end_line,
                b.start_col,
                b.end_col,
                b.statements,
            ))
            .then_with(|| fa.name.cmp(&fb.name))
            .then(fa.literal.cmp(&fb.literal))
            .then(a.count.cmp(&b.count))
    });
    v.into_iter().map(|(_, f, u)| (f, u)).collect()
}

/// `%.1f` as Go prints it (round half to even on the exact binary value,
/// which is what Rust's formatter does too).
pub(crate) fn pct1(v: f64) -> String {
    format!("{v:.1}")
}

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
    // Files compared once, as ranks, and the order packed into three
    // integers: the sort compares those, and names only on ties.
    let mut files: Vec<&str> = pkg.functions.iter().map(|f| f.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    let rank = |f: &Function| files.binary_search(&f.file.as_str()).unwrap_or(0) as u64;
    let pair = |a: u32, b: u32| (u64::from(a) << 32) | u64::from(b);
    // Sized exactly, and indices instead of references: this vector is
    // the peak of a report's memory (a package can have 17k blocks).
    let total = pkg.functions.iter().map(|f| f.units.len()).sum();
    let mut v: Vec<([u64; 3], u32, u32)> = Vec::with_capacity(total);
    for (fi, f) in pkg.functions.iter().enumerate() {
        let r = rank(f);
        v.extend(f.units.iter().enumerate().map(|(ui, u)| {
            let key = [
                (r << 32) | u64::from(u.start_line),
                pair(u.end_line, u.start_col),
                pair(u.end_col, u.statements),
            ];
            (key, fi as u32, ui as u32)
        }));
    }
    let at = |f: u32, u: u32| {
        let f = &pkg.functions[f as usize];
        (f, &f.units[u as usize])
    };
    v.sort_unstable_by(|&(ka, fa, ua), &(kb, fb, ub)| {
        ka.cmp(&kb).then_with(|| {
            let ((fa, a), (fb, b)) = (at(fa, ua), at(fb, ub));
            fa.name
                .cmp(&fb.name)
                .then(fa.literal.cmp(&fb.literal))
                .then(a.count.cmp(&b.count))
        })
    });
    v.into_iter().map(|(_, f, u)| at(f, u)).collect()
}

/// `%.1f` as Go prints it (round half to even on the exact binary value,
/// which is what Rust's formatter does too).
pub(crate) fn pct1(v: f64) -> String {
    format!("{v:.1}")
}

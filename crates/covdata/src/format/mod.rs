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
pub mod split;
pub mod tabwriter;
pub mod textfmt;

use crate::decode_meta::UnitPos;
use crate::model::{Function, Package, Unit};

fn position(u: &Unit) -> UnitPos {
    UnitPos {
        start_line: u.start_line,
        start_col: u.start_col,
        end_line: u.end_line,
        end_col: u.end_col,
        statements: u.statements,
    }
}

/// A package's blocks in Go's output order: by file, start line, end line,
/// start column, end column, statements.
pub(crate) fn sorted_units(pkg: &Package) -> Vec<(&Function, &Unit)> {
    // Files compared once, as ranks, and the order packed into integers:
    // the sort compares those, and names only on ties.
    let mut files: Vec<&str> = pkg.functions.iter().map(|f| f.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    let ranks: Vec<u32> = pkg
        .functions
        .iter()
        .map(|f| files.binary_search(&f.file.as_str()).unwrap_or(0) as u32)
        .collect();
    let mut max = [0u32; 6];
    for (f, &r) in pkg.functions.iter().zip(&ranks) {
        for u in &f.units {
            for (m, v) in max.iter_mut().zip(key_fields(r, &position(u))) {
                *m = (*m).max(v);
            }
        }
    }
    if let Some(packer) = KeyPacker::new(max) {
        sort_blocks(pkg, &ranks, |r, u| packer.pack(key_fields(r, &position(u))))
    } else {
        let pair = |a: u32, b: u32| (u64::from(a) << 32) | u64::from(b);
        sort_blocks(pkg, &ranks, |r, u| {
            [
                pair(r, u.start_line),
                pair(u.end_line, u.start_col),
                pair(u.end_col, u.statements),
            ]
        })
    }
}

/// The fields of a block's place in Go's output order, most significant
/// first: file rank, start line, end line, start column, end column,
/// statements.
pub(crate) fn key_fields(file_rank: u32, u: &UnitPos) -> [u32; 6] {
    [
        file_rank,
        u.start_line,
        u.end_line,
        u.start_col,
        u.end_col,
        u.statements,
    ]
}

/// Packs [`key_fields`] into one u64 that sorts as they do, each field in
/// the bits its largest value in the package needs (in real code they add
/// up to far less than 64).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyPacker {
    widths: [u32; 6],
}

impl KeyPacker {
    /// `None` when the largest values `max` need more than 64 bits.
    pub(crate) fn new(max: [u32; 6]) -> Option<Self> {
        let widths = max.map(|m| 32 - m.leading_zeros());
        (widths.iter().sum::<u32>() <= 64).then_some(KeyPacker { widths })
    }

    #[inline]
    pub(crate) fn pack(&self, fields: [u32; 6]) -> u64 {
        fields
            .iter()
            .zip(self.widths)
            .fold(0u64, |k, (&v, w)| (k << w) | u64::from(v))
    }

    #[inline]
    pub(crate) fn unpack(&self, mut key: u64) -> [u32; 6] {
        let mut fields = [0u32; 6];
        for (f, &w) in fields.iter_mut().zip(&self.widths).rev() {
            // Each width is at most 32.
            *f = (key & ((1u64 << w) - 1)) as u32;
            key >>= w;
        }
        fields
    }
}

/// The blocks sorted by `key` (file rank and block), ties broken by
/// function name, literal flag and count.
fn sort_blocks<'p, K: Ord + Copy>(
    pkg: &'p Package,
    ranks: &[u32],
    key: impl Fn(u32, &Unit) -> K,
) -> Vec<(&'p Function, &'p Unit)> {
    // Sized exactly, and indices instead of references: this vector is
    // the peak of a report's memory (a package can have 17k blocks).
    let total = pkg.functions.iter().map(|f| f.units.len()).sum();
    let mut v: Vec<(K, u32, u32)> = Vec::with_capacity(total);
    for (fi, (f, &r)) in pkg.functions.iter().zip(ranks).enumerate() {
        v.extend(
            f.units
                .iter()
                .enumerate()
                .map(|(ui, u)| (key(r, u), fi as u32, ui as u32)),
        );
    }
    let at = |f: u32, u: u32| {
        let f = &pkg.functions[f as usize];
        (f, &f.units[u as usize])
    };
    // Integers only (cheap to compare), then blocks with equal keys (only
    // from merged builds) ordered by name, literal flag and count.
    v.sort_unstable();
    for tie in v.chunk_by_mut(|a, b| a.0 == b.0).filter(|c| c.len() > 1) {
        tie.sort_by(|&(_, fa, ua), &(_, fb, ub)| {
            let ((fa, a), (fb, b)) = (at(fa, ua), at(fb, ub));
            fa.name
                .cmp(&fb.name)
                .then(fa.literal.cmp(&fb.literal))
                .then(a.count.cmp(&b.count))
        });
    }
    v.into_iter().map(|(_, f, u)| at(f, u)).collect()
}

/// `%.1f` as Go prints it (round half to even on the exact binary value,
/// which is what Rust's formatter does too).
pub(crate) fn pct1(v: f64) -> String {
    format!("{v:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both key layouts (packed into one u64, and the wide fallback) give
    /// the order of a plain sort on all fields.
    #[test]
    fn sorted_units_follow_go_order_with_either_key() {
        for scale in [1u32, 1 << 29] {
            let unit = |sl: u32, sc: u32, el: u32, ec: u32, count| Unit {
                start_line: sl * scale,
                start_col: sc,
                end_line: el * scale,
                end_col: ec,
                statements: 1,
                count,
            };
            let function = |name: &str, file: &str, units| Function {
                name: name.into(),
                file: file.into(),
                literal: false,
                units,
            };
            let pkg = Package {
                functions: vec![
                    function("B", "b.go", vec![unit(3, 1, 4, 2, 0), unit(1, 5, 2, 1, 0)]),
                    function("A", "a.go", vec![unit(2, 1, 3, 1, 1), unit(2, 1, 2, 9, 0)]),
                    function("C", "a.go", vec![unit(2, 1, 3, 1, 0), unit(1, 9, 1, 9, 3)]),
                ],
                ..Package::default()
            };
            let mut naive: Vec<(&Function, &Unit)> = pkg
                .functions
                .iter()
                .flat_map(|f| f.units.iter().map(move |u| (f, u)))
                .collect();
            naive.sort_by_key(|(f, u)| {
                (
                    f.file.clone(),
                    u.start_line,
                    u.end_line,
                    u.start_col,
                    u.end_col,
                    u.statements,
                    f.name.clone(),
                    u.count,
                )
            });
            assert_eq!(sorted_units(&pkg), naive, "scale {scale}");
        }
    }
}

//! `go tool covdata func`: coverage per function, then a total.

use std::io::{self, Write};

use super::tabwriter::TabWriter;
use crate::model::Packages;

fn perc(covered: u64, total: u64) -> f64 {
    let total = if total == 0 { 1 } else { total };
    100.0 * covered as f64 / total as f64
}

/// Rows follow Go's algorithm: blocks in output order, a new row whenever
/// the function *name* changes, literal rows counted but not shown, the
/// row's line being that of its first block.
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    let mut text = Vec::new();
    let (mut all, mut covered_all) = (0u64, 0u64);
    packages.for_each(&mut |pkg| {
        let units = super::sorted_units(pkg);
        let Some(&(first, first_unit)) = units.first() else {
            return Ok(());
        };
        let (mut fname, mut ffile, mut flit, mut fline) = (
            &first.name,
            &first.file,
            first.literal,
            first_unit.start_line,
        );
        let (mut cov, mut tot) = (0u64, 0u64);
        let mut emit = |fname: &str, ffile: &str, flit: bool, fline: u32, cov: u64, tot: u64| {
            if !flit {
                text.extend_from_slice(
                    format!(
                        "{}:{fline}:\t{}\t{}%\n",
                        hostile_text::escape(ffile),
                        hostile_text::escape(fname),
                        super::pct1(perc(cov, tot))
                    )
                    .as_bytes(),
                );
            }
            all += tot;
            covered_all += cov;
        };
        for (k, &(f, u)) in units.iter().enumerate() {
            if k > 0 && *fname != f.name {
                emit(fname, ffile, flit, fline, cov, tot);
                (fname, ffile, flit, fline) = (&f.name, &f.file, f.literal, u.start_line);
                (cov, tot) = (0, 0);
            }
            tot += u64::from(u.statements);
            if u.count != 0 {
                cov += u64::from(u.statements);
            }
        }
        emit(fname, ffile, flit, fline, cov, tot);
        Ok(())
    })?;
    text.extend_from_slice(
        format!(
            "total\t(statements)\t{}%\n",
            super::pct1(perc(covered_all, all))
        )
        .as_bytes(),
    );
    let mut tw = TabWriter::new(1, 8, 1);
    tw.write(&text);
    w.write_all(&tw.flush())
}

//! `go tool covdata percent`.

use std::io::{self, Write};

use crate::model::Packages;

/// One line per package, sorted by import path. A package without
/// statements prints its name and no newline, exactly as Go does.
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    packages.statements(&mut |path, s| {
        write!(w, "\t{path}\t\t")?;
        if s.total != 0 {
            writeln!(w, "coverage: {}% of statements", super::pct1(s.percent()))?;
        }
        Ok(())
    })
}

//! `go tool covdata percent`.

use std::io::{self, Write};

use crate::model::Packages;

/// One line per package, sorted by import path. A package without
/// statements prints its name and no newline, exactly as Go does. Names
/// come from pods: escaped as [`hostile_text::escape`] does (a real Go
/// import path never needs it, so real output is Go's to the byte).
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    packages.statements(&mut |path, s| {
        write!(w, "\t{}\t\t", hostile_text::escape(path))?;
        if s.total != 0 {
            writeln!(w, "coverage: {}% of statements", super::pct1(s.percent()))?;
        }
        Ok(())
    })
}

//! `go tool covdata percent`.

use std::io::{self, Write};

use crate::model::Profile;

/// One line per package, sorted by import path. A package without
/// statements prints its name and no newline, exactly as Go does.
pub fn write(profile: &Profile, w: &mut dyn Write) -> io::Result<()> {
    for pkg in &profile.packages {
        let s = pkg.statements();
        write!(w, "\t{}\t\t", pkg.path)?;
        if s.total != 0 {
            writeln!(w, "coverage: {}% of statements", super::pct1(s.percent()))?;
        }
    }
    Ok(())
}

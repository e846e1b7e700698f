//! `go tool covdata pkglist`.

use std::io::{self, Write};

use crate::model::Profile;

/// The import paths of all packages, sorted.
pub fn write(profile: &Profile, w: &mut dyn Write) -> io::Result<()> {
    for pkg in &profile.packages {
        writeln!(w, "{}", pkg.path)?;
    }
    Ok(())
}

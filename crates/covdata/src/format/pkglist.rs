//! `go tool covdata pkglist`.

use std::io::{self, Write};

use crate::model::Packages;

/// The import paths of all packages, sorted.
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    packages.for_each(&mut |pkg| writeln!(w, "{}", pkg.path))
}

//! `go tool covdata pkglist`.

use std::io::{self, Write};

use crate::model::Packages;

/// The import paths of all packages, sorted (escaped as in
/// [`super::percent::write`]).
pub fn write(packages: &dyn Packages, w: &mut dyn Write) -> io::Result<()> {
    packages.for_each(&mut |pkg| writeln!(w, "{}", hostile_text::escape(&pkg.path)))
}

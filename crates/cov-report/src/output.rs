//! Writing results: stdout through a buffer, files atomically.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Run `f` against a buffered stdout and flush; a closed pipe (`| head`)
/// is not an error.
pub fn stdout(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let out = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out.lock());
    match f(&mut w).and_then(|()| w.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to standard output"),
    }
}

/// Render into memory, then write `path` via a temporary file and rename.
pub fn file(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let mut buf = Vec::new();
    f(&mut buf).context("formatting output")?;
    covdata::encode::write_atomic(path, &buf)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("writing {}", path.display()))
}

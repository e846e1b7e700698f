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
        Err(e) => Err(classify(e, "writing to standard output".into())),
        Ok(()) => Ok(()),
    }
}

/// A failure of the data being written (a meta-data file that changed
/// while it was read) is the input's error, reported as such (exit 2);
/// anything else is the output's.
fn classify(e: std::io::Error, writing: String) -> anyhow::Error {
    match e.downcast::<covdata::Error>() {
        Ok(input) => input.into(),
        Err(e) => anyhow::Error::from(e).context(writing),
    }
}

/// Write `path` through a buffered temporary file in the same folder, then
/// rename it into place: readers never see a half-written file, and a
/// failure leaves any previous file untouched. A path that is there but
/// not a regular file (`/dev/null`, `/dev/stdout`, a named pipe, a
/// symbolic link) is written through, as Go writes it: renaming over it
/// would replace the device or link itself.
pub fn file(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        let written = (|| -> std::io::Result<()> {
            let out = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
            f(&mut w)?;
            w.flush()
        })();
        return written.map_err(|e| classify(e, format!("writing {}", path.display())));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&tmp)?);
        f(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    })()
    .map_err(|e| classify(e, format!("writing {}", tmp.display())));
    let renamed = written.and_then(|()| {
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    /// Damaged input met while writing stays the input's error (exit 2);
    /// anything else is an error writing the named output.
    #[test]
    fn write_errors_are_the_inputs_or_the_outputs() {
        let changed = std::io::Error::other(covdata::Error::Changed {
            path: "covmeta.x".into(),
        });
        let e = super::classify(changed, "writing out.txt".into());
        assert!(e.downcast_ref::<covdata::Error>().is_some(), "{e:#}");

        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = super::classify(full, "writing out.txt".into());
        assert!(e.downcast_ref::<covdata::Error>().is_none());
        assert!(format!("{e:#}").starts_with("writing out.txt: "), "{e:#}");
    }
}

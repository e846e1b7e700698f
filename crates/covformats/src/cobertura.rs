//! Cobertura XML (`cobertura.xml`), valid against Cobertura's `coverage-04.dtd`.
//!
//! No DOCTYPE line: it would name the DTD by URL, and validators given the
//! DTD (`xmllint --dtdvalid coverage-04.dtd`) need none; nothing here reaches
//! for the network.
//!
//! One `package` per Go package (named by import path), one `class` per
//! source file, one `method` per function. Lines are statement lines with
//! the counts of [`crate::view`]; rates are covered lines over lines (1 for a
//! file without statement lines, as Cobertura does). Go coverage has no
//! branch data: every `branch-rate` is 1 and `branches-valid` is 0, and
//! `line` elements leave `branch` at the DTD's default, `false`. Line
//! elements are not indented: large reports are mostly lines.
//!
//! `filename` is relative to one of the `sources`: the source root when the
//! file is under it, `GOROOT/src` for the standard library; files without
//! source keep their coverage name.

use crate::Options;
use crate::escape::{Esc, push_u32};
use crate::view::{Report, Tally};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub fn write<W: Write>(report: &Report<'_>, options: &Options, out: &mut W) -> io::Result<()> {
    let mut sources: Vec<PathBuf> = Vec::new();
    if let Some(root) = &options.source_root {
        sources.push(root.to_path_buf());
    }
    // Modules outside the source root and GOROOT get their own source entry.
    for (_, file) in report.files() {
        if let Some(p) = &file.source
            && !sources.iter().any(|s| p.starts_with(s))
        {
            sources.push(source_dir_for(p, file.name));
        }
    }
    out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    writeln!(
        out,
        "<coverage line-rate=\"{}\" branch-rate=\"1\" lines-covered=\"{}\" lines-valid=\"{}\" \
         branches-covered=\"0\" branches-valid=\"0\" complexity=\"0\" version=\"{}\" timestamp=\"{}\">",
        report.lines.rate(),
        report.lines.hit,
        report.lines.total,
        Esc(&options.generator),
        options.timestamp_ms
    )?;
    out.write_all(b"  <sources>\n")?;
    for s in &sources {
        writeln!(out, "    <source>{}</source>", Esc(&s.to_string_lossy()))?;
    }
    out.write_all(b"  </sources>\n  <packages>\n")?;
    // Each package put together in one buffer, written at once (or in
    // pieces, when its lines run long).
    let mut buf = Vec::with_capacity(1 << 16);
    for pkg in &report.packages {
        buf.clear();
        write!(
            buf,
            "    <package name=\"{}\" line-rate=\"{}\" branch-rate=\"1\" complexity=\"0\">\n      <classes>\n",
            Esc(pkg.path),
            pkg.lines.rate()
        )?;
        for file in &pkg.files {
            let filename = match &file.source {
                Some(p) => sources
                    .iter()
                    .find_map(|s| p.strip_prefix(s).ok())
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned(),
                None => file.name.to_string(),
            };
            write!(
                buf,
                "        <class name=\"{}\" filename=\"{}\" line-rate=\"{}\" branch-rate=\"1\" complexity=\"0\">\n          <methods>\n",
                Esc(file.name),
                Esc(&filename),
                file.line_tally.rate()
            )?;
            for f in &file.functions {
                let mut t = Tally::default();
                f.lines.iter().for_each(|&(_, h)| {
                    t.total += 1;
                    t.hit += u64::from(h > 0);
                });
                write!(
                    buf,
                    "            <method name=\"{}\" signature=\"\" line-rate=\"{}\" branch-rate=\"1\" complexity=\"0\">\n              <lines>\n",
                    Esc(&f.name),
                    t.rate()
                )?;
                push_lines(&mut buf, &f.lines, out)?;
                buf.extend_from_slice(b"              </lines>\n            </method>\n");
            }
            buf.extend_from_slice(b"          </methods>\n          <lines>\n");
            push_lines(&mut buf, &file.lines, out)?;
            buf.extend_from_slice(b"          </lines>\n        </class>\n");
        }
        buf.extend_from_slice(b"      </classes>\n    </package>\n");
        out.write_all(&buf)?;
    }
    out.write_all(b"  </packages>\n</coverage>\n")
}

/// `<line>` records into `buf`, written out to `out` whenever `buf` holds
/// more than 64 KB.
fn push_lines<W: Write>(buf: &mut Vec<u8>, lines: &[(u32, u32)], out: &mut W) -> io::Result<()> {
    for &(line, hits) in lines {
        buf.extend_from_slice(b"<line number=\"");
        push_u32(buf, line);
        buf.extend_from_slice(b"\" hits=\"");
        push_u32(buf, hits);
        buf.extend_from_slice(b"\"/>\n");
        if buf.len() >= 1 << 16 {
            out.write_all(buf)?;
            buf.clear();
        }
    }
    Ok(())
}

/// The folder a file's coverage name is relative to: for `a/b/c.go` found at
/// `/x/y/a/b/c.go`, that is `/x/y`; otherwise the file's own folder.
fn source_dir_for(path: &Path, name: &str) -> PathBuf {
    let depth = name.split('/').count();
    let mut dir = path.to_path_buf();
    let matches = path.ends_with(name);
    for _ in 0..(if matches { depth } else { 1 }) {
        if !dir.pop() {
            break;
        }
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceMap, testprofile::sample};

    #[test]
    fn one_class_per_file_with_rates() {
        let profile = sample();
        let report = Report::new(&profile, &SourceMap::default());
        let mut out = Vec::new();
        write(&report, &Options::default(), &mut out).unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert_eq!(xml.matches("<class ").count(), 3);
        assert!(xml.contains("name=\"*DB.Get&lt;&amp;&gt;\""), "{xml}");
        assert!(
            xml.contains("filename=\"example.com/app/main.go\" line-rate=\"0.75\""),
            "{xml}"
        );
    }

    #[test]
    fn source_dir_strips_the_import_path() {
        assert_eq!(
            source_dir_for(Path::new("/g/src/fmt/print.go"), "fmt/print.go"),
            PathBuf::from("/g/src")
        );
        assert_eq!(
            source_dir_for(Path::new("/m/print.go"), "example.com/m/print.go"),
            PathBuf::from("/m")
        );
    }
}

//! LCOV tracefile (`lcov.info`), as `genhtml` and `lcov --summary` read it.
//!
//! One record per file: `SF` (the source path when found, else the coverage
//! file name), `FN:<line>,<name>` (the LCOV 1.x form, which 2.x reads too)
//! and `FNDA` per function (hits: the function's largest unit
//! count), `FNF`/`FNH`, `DA` per statement line (see [`crate::view`] for how
//! lines get their counts), `LF`/`LH`.

use crate::escape::push_u32;
use crate::view::Report;
use std::io::{self, Write};

pub fn write<W: Write>(report: &Report<'_>, out: &mut W) -> io::Result<()> {
    out.write_all(b"TN:\n")?;
    let mut first = true;
    for (_, file) in report.files() {
        if !first {
            out.write_all(b"TN:\n")?;
        }
        first = false;
        match &file.source {
            Some(p) => writeln!(out, "SF:{}", p.display())?,
            None => writeln!(out, "SF:{}", one_line(file.name))?,
        }
        for f in &file.functions {
            writeln!(out, "FN:{},{}", f.start_line, lcov_name(&f.name))?;
        }
        for f in &file.functions {
            writeln!(out, "FNDA:{},{}", f.hits, lcov_name(&f.name))?;
        }
        writeln!(out, "FNF:{}", file.function_tally.total)?;
        writeln!(out, "FNH:{}", file.function_tally.hit)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for lines in file.lines.chunks(4096) {
            buf.clear();
            for &(line, hits) in lines {
                buf.extend_from_slice(b"DA:");
                push_u32(&mut buf, line);
                buf.push(b',');
                push_u32(&mut buf, hits);
                buf.push(b'\n');
            }
            out.write_all(&buf)?;
        }
        writeln!(out, "LF:{}", file.line_tally.total)?;
        writeln!(out, "LH:{}", file.line_tally.hit)?;
        out.write_all(b"end_of_record\n")?;
    }
    Ok(())
}

/// LCOV 1.x reads a function name up to the next comma (`FN:<line>,<name>`),
/// and generic Go names may hold one (`Pair[K,V].Get`).
fn lcov_name(name: &str) -> std::borrow::Cow<'_, str> {
    let name = one_line(name);
    if name.contains(',') {
        name.replace(',', ";").into()
    } else {
        name
    }
}

/// A name from a pod on one record: a newline in it would start records of
/// its own (`DA:` lines for any file), so controls become U+FFFD. Real Go
/// names hold none.
fn one_line(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(char::is_control) {
        name.replace(char::is_control, "\u{fffd}").into()
    } else {
        name.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceMap, testprofile::sample};

    #[test]
    fn records_per_file() {
        let profile = sample();
        let report = Report::new(&profile, &SourceMap::default());
        let mut out = Vec::new();
        write(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("end_of_record").count(), 3);
        assert!(text.contains("SF:example.com/app/main.go\nFN:3,main\nFNDA:1,main\nFNF:1\nFNH:1\nDA:3,1\nDA:4,1\nDA:5,1\nDA:6,0\nLF:4\nLH:3\n"), "{text}");
        assert!(text.contains("FNDA:7,init\nFNDA:0,init#2\n"), "{text}");
    }
}

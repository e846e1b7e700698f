//! A Markdown summary (`coverage.md`) for a pull-request comment or
//! `$GITHUB_STEP_SUMMARY`: the total, then one table row per package.
//! Percentages are `go tool covdata percent`'s (`%.1f` of `100*covered/total`).

use crate::Options;
use crate::view::Report;
use std::io::{self, Write};

pub fn write<W: Write>(report: &Report<'_>, options: &Options, out: &mut W) -> io::Result<()> {
    let total = report.statements;
    writeln!(
        out,
        "### {}: {:.1}% of statements\n",
        cell(&options.title),
        total.percent()
    )?;
    let n = report.packages.len();
    writeln!(
        out,
        "{} of {} statements covered in {n} package{} ({} mode).\n",
        total.covered,
        total.total,
        if n == 1 { "" } else { "s" },
        report.profile.mode.as_str()
    )?;
    out.write_all(b"| Package | Statements | Covered | Coverage |\n")?;
    out.write_all(b"|:--|--:|--:|--:|\n")?;
    for p in &report.packages {
        writeln!(
            out,
            "| `{}` | {} | {} | {:.1}% {} |",
            code(p.path),
            p.statements.total,
            p.statements.covered,
            p.statements.percent(),
            bar(p.statements.percent())
        )?;
    }
    writeln!(
        out,
        "| **Total** | **{}** | **{}** | **{:.1}%** |",
        total.total,
        total.covered,
        total.percent()
    )
}

/// Text safe inside a table cell: `|` would end the cell, a newline the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A package path (from a pod) safe inside a code span in a table cell: a
/// backtick would end the span and let the rest be read as Markdown (links,
/// images); controls and backslashes escaped as on a terminal. A real
/// import path holds none of these.
fn code(s: &str) -> String {
    cell(&hostile_text::escape(s)).replace('`', "\\x60")
}

/// A ten-step text bar, readable where images and HTML are not.
fn bar(percent: f64) -> String {
    let full = ((percent / 10.0).round() as usize).min(10);
    format!("{}{}", "█".repeat(full), "░".repeat(10 - full))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceMap, testprofile::sample};

    #[test]
    fn table_with_total() {
        let profile = sample();
        let report = Report::new(&profile, &SourceMap::default());
        let mut out = Vec::new();
        write(&report, &Options::default(), &mut out).unwrap();
        let md = String::from_utf8(out).unwrap();
        let s = profile.statements();
        assert!(md.starts_with(&format!(
            "### Coverage report: {:.1}% of statements",
            s.percent()
        )));
        assert!(
            md.contains("| `example.com/app/store` | 6 | 4 | 66.7% "),
            "{md}"
        );
        assert!(md.contains(&format!(
            "| **Total** | **{}** | **{}** |",
            s.total, s.covered
        )));
    }
}

//! Machine-readable coverage (`coverage.json`), schema version 1.
//!
//! # SCHEMA (version 1)
//!
//! ```text
//! {
//!   "schema": "cov-report.coverage",   constant: what this document is
//!   "version": 1,                      bumped on any incompatible change
//!   "generator": "cov-report 0.1.0",
//!   "mode": "set" | "count" | "atomic" | "regonly" | "testmain",
//!   "granularity": "block" | "function",
//!   "totals": Totals,
//!   "packages": [Package]              sorted by import path
//! }
//! Totals    = { "statements": Count, "lines": Count, "functions": Count,
//!               "percent": number }    percent of statements, as `go tool covdata percent`
//! Count     = { "covered": int, "total": int }
//! Package   = { "path": "example.com/app/store", "name": "store",
//!               "module": "example.com/app", "totals": Totals, "files": [File] }
//! File      = { "name": "example.com/app/store/db.go",   the name in the coverage data
//!               "source": "/abs/path/db.go" | null,       where it was found on disk
//!               "totals": Totals,
//!               "lines": [[line, hits]],                   statement lines, ascending
//!               "functions": [Function] }                  in source order
//! Function  = { "name": "*DB.Get", "literal": bool, "start_line": int, "end_line": int,
//!               "hits": int,                               largest count of its units
//!               "statements": Count,
//!               "units": [[start_line, start_col, end_line, end_col, statements, count]] }
//! ```
//!
//! A line's hits are the largest count of the units with statements spanning
//! it (see [`crate::view`]). Counts are execution counts in `count`/`atomic`
//! mode and 0/1 in `set` mode. Readers should ignore fields they do not know:
//! fields may be added within a version.

use crate::Options;
use crate::view::{Report, Tally};
use covdata::model::{Granularity, Statements};
use serde::Serialize;
use std::io::{self, Write};

/// The `version` field of documents written by this crate.
pub const SCHEMA_VERSION: u32 = 1;
/// The `schema` field of documents written by this crate.
pub const SCHEMA_NAME: &str = "cov-report.coverage";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    version: u32,
    generator: &'a str,
    mode: &'static str,
    granularity: &'static str,
    totals: Totals,
    packages: Vec<Package<'a>>,
}

#[derive(Serialize)]
struct Count {
    covered: u64,
    total: u64,
}

#[derive(Serialize)]
struct Totals {
    statements: Count,
    lines: Count,
    functions: Count,
    percent: f64,
}

impl Totals {
    fn new(s: Statements, lines: Tally, functions: Tally) -> Totals {
        Totals {
            statements: Count {
                covered: s.covered,
                total: s.total,
            },
            lines: Count {
                covered: lines.hit,
                total: lines.total,
            },
            functions: Count {
                covered: functions.hit,
                total: functions.total,
            },
            percent: s.percent(),
        }
    }
}

#[derive(Serialize)]
struct Package<'a> {
    path: &'a str,
    name: &'a str,
    module: &'a str,
    totals: Totals,
    files: Vec<File<'a>>,
}

#[derive(Serialize)]
struct File<'a> {
    name: &'a str,
    source: Option<String>,
    totals: Totals,
    lines: &'a [(u32, u32)],
    functions: Vec<Function<'a>>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    literal: bool,
    start_line: u32,
    end_line: u32,
    hits: u32,
    statements: Count,
    units: Units<'a>,
}

/// Units as `[start_line, start_col, end_line, end_col, statements, count]`
/// arrays, serialized straight from the model (no copy per function).
struct Units<'a>(&'a [covdata::model::Unit]);

impl Serialize for Units<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for u in self.0 {
            seq.serialize_element(&[
                u.start_line,
                u.start_col,
                u.end_line,
                u.end_col,
                u.statements,
                u.count,
            ])?;
        }
        seq.end()
    }
}

pub fn write<W: Write>(report: &Report<'_>, options: &Options, out: &mut W) -> io::Result<()> {
    let doc = Document {
        schema: SCHEMA_NAME,
        version: SCHEMA_VERSION,
        generator: &options.generator,
        mode: report.profile.mode.as_str(),
        granularity: match report.profile.granularity {
            Granularity::PerBlock => "block",
            Granularity::PerFunc => "function",
        },
        totals: Totals::new(report.statements, report.lines, report.functions),
        packages: report
            .packages
            .iter()
            .map(|p| Package {
                path: p.path,
                name: p.name,
                module: p.module_path,
                totals: Totals::new(p.statements, p.lines, p.functions),
                files: p
                    .files
                    .iter()
                    .map(|f| File {
                        name: f.name,
                        source: f.source.as_ref().map(|p| p.to_string_lossy().into_owned()),
                        totals: Totals::new(f.statements, f.line_tally, f.function_tally),
                        lines: &f.lines,
                        functions: f
                            .functions
                            .iter()
                            .map(|fv| Function {
                                name: &fv.function.name,
                                literal: fv.function.literal,
                                start_line: fv.start_line,
                                end_line: fv.end_line,
                                hits: fv.hits,
                                statements: Count {
                                    covered: fv.statements.covered,
                                    total: fv.statements.total,
                                },
                                units: Units(&fv.function.units),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &doc).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SourceMap, testprofile::sample};

    #[test]
    fn documented_shape() {
        let profile = sample();
        let report = Report::new(&profile, &SourceMap::default());
        let mut out = Vec::new();
        write(&report, &Options::default(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["schema"], SCHEMA_NAME);
        assert_eq!(v["version"], 1);
        assert_eq!(v["mode"], "count");
        let total = profile.statements();
        assert_eq!(v["totals"]["statements"]["covered"], total.covered);
        assert_eq!(v["totals"]["statements"]["total"], total.total);
        let main = &v["packages"][0]["files"][0];
        assert_eq!(main["name"], "example.com/app/main.go");
        assert!(main["source"].is_null());
        assert_eq!(
            main["lines"],
            serde_json::json!([[3, 1], [4, 1], [5, 1], [6, 0]])
        );
        assert_eq!(
            main["functions"][0]["units"][0],
            serde_json::json!([3, 2, 5, 10, 3, 1])
        );
    }
}

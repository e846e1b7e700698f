//! The per-file view every format reads: a [`Profile`] regrouped by source
//! file, with per-line hit counts and per-function summaries computed once.
//!
//! Lines: a line's hit count is the largest count of the units with
//! statements that span it (a line is covered if any statement on it ran).
//! Units without statements mark no line. Every format that has lines (LCOV,
//! Cobertura, JSON) uses this one definition, so their totals agree.

use crate::sourcemap::{Resolution, Resolved, SourceMap};
use covdata::format::split;
use covdata::model::{Function, Package, Profile, Statements, Unit};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Covered and total counts of anything (lines, functions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub hit: u64,
    pub total: u64,
}

impl Tally {
    fn add(&mut self, hit: bool) {
        self.total += 1;
        if hit {
            self.hit += 1;
        }
    }

    fn merge(&mut self, other: Tally) {
        self.hit += other.hit;
        self.total += other.total;
    }

    /// Fraction 0..=1 (1 when there is nothing to cover, as Cobertura does).
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.hit as f64 / self.total as f64
        }
    }
}

/// A report ready to be written in any format.
#[derive(Debug)]
pub struct Report<'a> {
    pub profile: &'a Profile,
    pub packages: Vec<PackageView<'a>>,
    pub statements: Statements,
    pub lines: Tally,
    pub functions: Tally,
    /// File names no source file was found for, each once, sorted.
    pub unmapped: Vec<&'a str>,
}

#[derive(Debug)]
pub struct PackageView<'a> {
    pub path: &'a str,
    pub name: &'a str,
    pub module_path: &'a str,
    pub files: Vec<FileView<'a>>,
    pub statements: Statements,
    pub lines: Tally,
    pub functions: Tally,
}

#[derive(Debug)]
pub struct FileView<'a> {
    /// The file name as coverage data has it (`<importpath>/<base>`).
    pub name: &'a str,
    /// The file on disk, when the source map found it.
    pub source: Option<PathBuf>,
    /// In source order.
    pub functions: Vec<FunctionView<'a>>,
    /// Every unit of the file, sorted by position.
    pub units: Vec<Unit>,
    /// `(line, hits)`, ascending by line.
    pub lines: Vec<(u32, u32)>,
    pub statements: Statements,
    pub line_tally: Tally,
    pub function_tally: Tally,
}

#[derive(Debug)]
pub struct FunctionView<'a> {
    pub function: &'a Function,
    /// Unique within its file: a repeated name (several `init`s) gets `#2`, `#3`, ….
    pub name: String,
    pub start_line: u32,
    pub end_line: u32,
    /// Largest count of any unit: nonzero when the function ran.
    pub hits: u32,
    pub statements: Statements,
    /// `(line, hits)` of this function's statement lines, ascending.
    pub lines: Vec<(u32, u32)>,
}

impl<'a> Report<'a> {
    /// Groups the profile by file and resolves each file once.
    pub fn new(profile: &'a Profile, sources: &SourceMap) -> Report<'a> {
        // Packages are independent: with enough of them and two cores, the
        // second half is viewed on another thread.
        let all = &profile.packages[..];
        let sizes = || {
            all.iter()
                .map(|p| p.functions.iter().map(|f| f.units.len()).sum())
        };
        let cut = if split::worth_it(sizes().sum()) {
            split::half(sizes())
        } else {
            all.len()
        };
        let (mut views, second) = std::thread::scope(|s| {
            let second = (cut < all.len()).then(|| s.spawn(|| view_packages(&all[cut..], sources)));
            let first = view_packages(&all[..cut], sources);
            let second = second.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (first, second)
        });
        if let Some(second) = second {
            views.packages.extend(second.packages);
            views.unmapped.extend(second.unmapped);
            views.refused.extend(second.refused);
        }
        let Views {
            packages,
            mut unmapped,
            refused,
        } = views;
        let mut report = Report {
            profile,
            packages,
            statements: Statements::default(),
            lines: Tally::default(),
            functions: Tally::default(),
            unmapped: Vec::new(),
        };
        for view in &report.packages {
            report.statements.covered += view.statements.covered;
            report.statements.total += view.statements.total;
            report.lines.merge(view.lines);
            report.functions.merge(view.functions);
        }
        unmapped.sort_unstable();
        unmapped.dedup();
        for name in &unmapped {
            tracing::debug!(file = name, "no source file found");
        }
        if !unmapped.is_empty() {
            tracing::warn!(
                count = unmapped.len(),
                first = unmapped[0],
                "source files not found for some coverage files (give --source-root or --goroot); \
                 they are still counted, shown without source"
            );
        }
        warn_refused(refused);
        report.unmapped = unmapped;
        report
    }

    pub fn files(&self) -> impl Iterator<Item = (&PackageView<'a>, &FileView<'a>)> {
        self.packages
            .iter()
            .flat_map(|p| p.files.iter().map(move |f| (p, f)))
    }
}

/// The views of some packages, with the file names that were not found or
/// not read.
struct Views<'a> {
    packages: Vec<PackageView<'a>>,
    unmapped: Vec<&'a str>,
    refused: Vec<(&'a str, &'static str)>,
}

fn view_packages<'a>(packages: &'a [Package], sources: &SourceMap) -> Views<'a> {
    let mut resolved = Resolved::default();
    let mut views = Views {
        packages: Vec::with_capacity(packages.len()),
        unmapped: Vec::new(),
        refused: Vec::new(),
    };
    for pkg in packages {
        let mut by_file: BTreeMap<&str, Vec<&Function>> = BTreeMap::new();
        for f in &pkg.functions {
            by_file.entry(f.file.as_str()).or_default().push(f);
        }
        let mut view = PackageView {
            path: &pkg.path,
            name: &pkg.name,
            module_path: &pkg.module_path,
            files: Vec::with_capacity(by_file.len()),
            statements: Statements::default(),
            lines: Tally::default(),
            functions: Tally::default(),
        };
        for (name, functions) in by_file {
            let source = match resolved.get(sources, name) {
                Resolution::Found(path) => Some(path),
                Resolution::Missing => {
                    views.unmapped.push(name);
                    None
                }
                Resolution::Refused(why) => {
                    views.refused.push((name, why));
                    None
                }
            };
            let file = FileView::new(name, source, functions);
            view.statements.covered += file.statements.covered;
            view.statements.total += file.statements.total;
            view.lines.merge(file.line_tally);
            view.functions.merge(file.function_tally);
            view.files.push(file);
        }
        views.packages.push(view);
    }
    views
}

/// One warning per coverage file name that was not read (each once, the
/// first few; a hostile meta-data file can name thousands). The names come
/// from a pod: the binaries log through [`hostile_text::escaped_fields`].
fn warn_refused(mut refused: Vec<(&str, &str)>) {
    refused.sort_unstable();
    refused.dedup();
    let shown = refused.len().min(hostile_text::DEFAULT_CAP);
    for (name, why) in &refused[..shown] {
        tracing::warn!(
            "source \"{name}\" not read: {why}; the file is still counted, shown without source"
        );
    }
    if refused.len() > shown {
        tracing::warn!(
            "… and {} more source file names not read",
            refused.len() - shown
        );
    }
}

impl<'a> FileView<'a> {
    fn new(name: &'a str, source: Option<PathBuf>, mut functions: Vec<&'a Function>) -> Self {
        functions.sort_by_key(|f| first_position(f));
        let mut units: Vec<Unit> = functions
            .iter()
            .flat_map(|f| f.units.iter().copied())
            .collect();
        units.sort_unstable_by_key(|u| (u.start_line, u.start_col, u.end_line, u.end_col));
        let lines = line_hits(&units);
        let mut statements = Statements::default();
        units.iter().for_each(|u| statements.add(u));
        let mut line_tally = Tally::default();
        lines.iter().for_each(|&(_, h)| line_tally.add(h > 0));

        let mut seen: HashMap<&str, u32> = HashMap::new();
        let mut function_tally = Tally::default();
        let functions: Vec<FunctionView<'a>> = functions
            .into_iter()
            .map(|f| {
                let n = seen.entry(f.name.as_str()).or_insert(0);
                *n += 1;
                let name = if *n == 1 {
                    f.name.clone()
                } else {
                    format!("{}#{}", f.name, n)
                };
                let hits = f.units.iter().map(|u| u.count).max().unwrap_or(0);
                function_tally.add(hits > 0);
                FunctionView {
                    function: f,
                    name,
                    start_line: f.units.iter().map(|u| u.start_line).min().unwrap_or(0),
                    end_line: f.units.iter().map(|u| u.end_line).max().unwrap_or(0),
                    hits,
                    statements: f.statements(),
                    lines: line_hits(&f.units),
                }
            })
            .collect();
        FileView {
            name,
            source,
            functions,
            units,
            lines,
            statements,
            line_tally,
            function_tally,
        }
    }

    /// The largest count in the file (HTML shades counts relative to it).
    pub fn max_count(&self) -> u32 {
        self.units.iter().map(|u| u.count).max().unwrap_or(0)
    }

    /// The file's base name.
    pub fn base_name(&self) -> &'a str {
        self.name.rsplit('/').next().unwrap_or(self.name)
    }
}

fn first_position(f: &Function) -> (u32, u32) {
    f.units
        .iter()
        .map(|u| (u.start_line, u.start_col))
        .min()
        .unwrap_or((0, 0))
}

/// Per-line hits of a set of units; see the module doc for the rule.
fn line_hits(units: &[Unit]) -> Vec<(u32, u32)> {
    let with_statements = || units.iter().filter(|u| u.statements > 0);
    let Some(first) = with_statements().map(|u| u.start_line).min() else {
        return Vec::new();
    };
    let last = with_statements()
        .map(|u| u.end_line.max(u.start_line))
        .max()
        .unwrap_or(first);
    // Dense per-line slots: units of one file or function span few lines.
    let mut slots: Vec<Option<u32>> = vec![None; (last - first + 1) as usize];
    for u in with_statements() {
        for line in u.start_line..=u.end_line.max(u.start_line) {
            let slot = &mut slots[(line - first) as usize];
            *slot = Some(slot.map_or(u.count, |h| h.max(u.count)));
        }
    }
    slots
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| h.map(|h| (first + i as u32, h)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testprofile::sample;

    #[test]
    fn groups_by_file_and_counts_lines() {
        let profile = sample();
        let report = Report::new(&profile, &SourceMap::default());
        assert_eq!(report.statements, profile.statements());
        let files: Vec<&str> = report.files().map(|(_, f)| f.name).collect();
        assert_eq!(
            files,
            [
                "example.com/app/main.go",
                "example.com/app/util.go",
                "example.com/app/store/db.go"
            ]
        );
        let main = &report.packages[0].files[0];
        // main: units 3-5 (count 1), 6-6 (count 0), 8-8 (0 stmts: no line)
        assert_eq!(main.lines, vec![(3, 1), (4, 1), (5, 1), (6, 0)]);
        assert_eq!(main.line_tally, Tally { hit: 3, total: 4 });
        // two init functions in util.go get distinct names
        let util = &report.packages[0].files[1];
        let names: Vec<&str> = util.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["init", "init#2", "helper"]);
        assert_eq!(report.unmapped.len(), 3);
    }
}

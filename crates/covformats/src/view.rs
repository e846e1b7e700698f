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
        let claims: Vec<u128> = all.iter().map(|p| claimed_lines(&p.functions)).collect();
        let budgets = fair_shares(&claims, MAX_LISTED_LINES);
        let (mut views, second) = split::halves(all.len(), cut, |r| {
            view_packages(&all[r.clone()], sources, &budgets[r])
        });
        if let Some(second) = second {
            views.packages.extend(second.packages);
            views.unmapped.extend(second.unmapped);
            views.refused.extend(second.refused);
            views.cut.extend(second.cut);
        }
        let Views {
            packages,
            mut unmapped,
            refused,
            cut,
        } = views;
        if let Some(first) = cut.first() {
            tracing::warn!(
                files = cut.len(),
                first = *first,
                "the coverage data claims more lines than a report lists (at most {MAX_LISTED_LINES} \
                 in all): some of these files' lines are left out of LCOV, Cobertura and JSON; \
                 their statements are still counted"
            );
        }
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
    /// Files whose lines were not all listed (see [`MAX_LISTED_LINES`]).
    cut: Vec<&'a str>,
}

/// Lines the line-based formats list at most, in all: a real program has a
/// few hundred thousand (the standard library about 190,000); a meta-data
/// file from a pod may claim billions.
const MAX_LISTED_LINES: u128 = 4_000_000;

/// The lines some functions' units claim, each unit counted whole, twice
/// (files and functions list their lines separately): at least what their
/// line lists need.
fn claimed_lines<'f>(functions: impl IntoIterator<Item = &'f Function>) -> u128 {
    let one: u128 = functions
        .into_iter()
        .flat_map(|f| &f.units)
        .filter(|u| u.statements > 0)
        .map(|u| u128::from(u.end_line.max(u.start_line) - u.start_line) + 1)
        .sum();
    2 * one
}

/// `total` shared out over `claims`: each gets its claim if it is at most
/// an equal share of what is left, the largest claims split the rest. So
/// when the claims fit (a real program's always do) each gets its claim,
/// and a meta-data file claiming billions of lines for one file takes
/// nothing from the others.
fn fair_shares(claims: &[u128], total: u128) -> Vec<usize> {
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by_key(|&i| claims[i]);
    let mut shares = vec![0; claims.len()];
    let mut left = total;
    for (k, &i) in order.iter().enumerate() {
        let share = claims[i].min(left / (claims.len() - k) as u128);
        left -= share;
        shares[i] = usize::try_from(share).unwrap_or(usize::MAX);
    }
    shares
}

/// The views of `packages`; `budgets` are their shares of
/// [`MAX_LISTED_LINES`].
fn view_packages<'a>(packages: &'a [Package], sources: &SourceMap, budgets: &[usize]) -> Views<'a> {
    let mut resolved = Resolved::default();
    let mut views = Views {
        packages: Vec::with_capacity(packages.len()),
        unmapped: Vec::new(),
        refused: Vec::new(),
        cut: Vec::new(),
    };
    for (pkg, &budget) in packages.iter().zip(budgets) {
        let mut by_file: BTreeMap<&str, Vec<&Function>> = BTreeMap::new();
        for f in &pkg.functions {
            by_file.entry(f.file.as_str()).or_default().push(f);
        }
        let claims: Vec<u128> = by_file
            .values()
            .map(|fs| claimed_lines(fs.iter().copied()))
            .collect();
        let file_budgets = fair_shares(&claims, budget as u128);
        let mut view = PackageView {
            path: &pkg.path,
            name: &pkg.name,
            module_path: &pkg.module_path,
            files: Vec::with_capacity(by_file.len()),
            statements: Statements::default(),
            lines: Tally::default(),
            functions: Tally::default(),
        };
        for ((name, functions), mut budget) in by_file.into_iter().zip(file_budgets) {
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
            let (file, cut) = FileView::new(name, source, functions, &mut budget);
            if cut {
                views.cut.push(name);
            }
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
    /// The view of a file; its lines take from `budget` (see [`line_hits`]),
    /// and the flag tells whether some were left out.
    fn new(
        name: &'a str,
        source: Option<PathBuf>,
        mut functions: Vec<&'a Function>,
        budget: &mut usize,
    ) -> (Self, bool) {
        functions.sort_by_key(|f| first_position(f));
        let mut units: Vec<Unit> = functions
            .iter()
            .flat_map(|f| f.units.iter().copied())
            .collect();
        units.sort_unstable_by_key(|u| (u.start_line, u.start_col, u.end_line, u.end_col));
        let (lines, mut cut) = line_hits(&units, budget);
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
                    lines: {
                        let (lines, short) = line_hits(&f.units, budget);
                        cut |= short;
                        lines
                    },
                }
            })
            .collect();
        let view = FileView {
            name,
            source,
            functions,
            units,
            lines,
            statements,
            line_tally,
            function_tally,
        };
        (view, cut)
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

/// Per-line hits of a set of units; see the module doc for the rule. At
/// most `budget` lines, the first ones; `budget` goes down by as many.
/// The flag tells whether lines were left out.
///
/// The line numbers come from a pod: a unit may claim lines 1 to 4e9. Lines
/// are walked one by one only where units have them, memory stays
/// proportional to the units plus the lines listed, and the budget bounds
/// the listing.
fn line_hits(units: &[Unit], budget: &mut usize) -> (Vec<(u32, u32)>, bool) {
    let mut spans: Vec<(u32, u32, u32)> = units
        .iter()
        .filter(|u| u.statements > 0)
        .map(|u| (u.start_line, u.end_line.max(u.start_line), u.count))
        .collect();
    let (Some(first), Some(last)) = (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) else {
        return (Vec::new(), false);
    };
    let range = (last - first) as usize + 1;
    let claimed: u64 = spans.iter().map(|s| u64::from(s.1 - s.0) + 1).sum();
    let mut lines = Vec::new();
    let mut cut = false;
    if range <= 4 * spans.len() + 64 && claimed <= *budget as u64 {
        // Dense per-line slots: the usual case, units of one file or
        // function span few lines. Filling them costs what the units
        // claim, within the budget; the lines listed are fewer still.
        let mut slots: Vec<Option<u32>> = vec![None; range];
        for &(start, end, count) in &spans {
            for slot in &mut slots[(start - first) as usize..=(end - first) as usize] {
                *slot = Some(slot.map_or(count, |h| h.max(count)));
            }
        }
        lines.extend(
            slots
                .into_iter()
                .enumerate()
                .filter_map(|(i, h)| h.map(|h| (first + i as u32, h))),
        );
    } else {
        // Sparse: line by line where spans are, jumping to the next start
        // where none is; the spans under way in a heap by count (those
        // that ended are dropped when they come on top).
        spans.sort_unstable();
        let mut under_way = std::collections::BinaryHeap::new();
        let mut next = spans.iter().peekable();
        let mut line = first;
        loop {
            while let Some(&&(start, end, count)) = next.peek()
                && start <= line
            {
                under_way.push((count, end));
                next.next();
            }
            while under_way.peek().is_some_and(|&(_, end)| end < line) {
                under_way.pop();
            }
            match under_way.peek() {
                Some(&(count, _)) => {
                    if lines.len() == *budget {
                        cut = true;
                        break;
                    }
                    lines.push((line, count));
                    let Some(after) = line.checked_add(1) else {
                        break;
                    };
                    line = after;
                }
                None => match next.peek() {
                    Some(&&(start, _, _)) => line = start,
                    None => break,
                },
            }
        }
    }
    *budget -= lines.len();
    (lines, cut)
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

    fn unit(start_line: u32, end_line: u32, statements: u32, count: u32) -> Unit {
        Unit {
            start_line,
            start_col: 1,
            end_line,
            end_col: 2,
            statements,
            count,
        }
    }

    /// Line by line, as the module doc defines it.
    fn reference(units: &[Unit]) -> Vec<(u32, u32)> {
        let mut lines = BTreeMap::new();
        for u in units.iter().filter(|u| u.statements > 0) {
            for line in u.start_line..=u.end_line.max(u.start_line) {
                let h = lines.entry(line).or_insert(u.count);
                *h = (*h).max(u.count);
            }
        }
        lines.into_iter().collect()
    }

    /// Dense and sparse walks give the rule's lines, nested and
    /// overlapping units and far-apart ones alike, and a budget keeps the
    /// first lines and says lines were left out.
    #[test]
    fn line_hits_follow_the_rule_within_the_budget() {
        let mut seed = 7u64;
        let mut next = |n: u32| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % u64::from(n)) as u32
        };
        for case in 0..300 {
            // Every third case spreads units far apart (the sparse walk).
            let spread = if case % 3 == 0 { 100_000 } else { 40 };
            let units: Vec<Unit> = (0..1 + next(12))
                .map(|_| {
                    let start = 1 + next(spread);
                    // Some end before they start (read as one line).
                    let end = start + next(6) - next(2).min(start - 1);
                    unit(start, end, next(3), next(5))
                })
                .collect();
            let want = reference(&units);
            let mut budget = usize::MAX;
            assert_eq!(
                line_hits(&units, &mut budget),
                (want.clone(), false),
                "{units:?}"
            );
            assert_eq!(budget, usize::MAX - want.len());
            let mut small = want.len() / 2;
            let (some, cut) = line_hits(&units, &mut small);
            assert_eq!(
                (some.as_slice(), cut),
                (&want[..want.len() / 2], !want.is_empty())
            );
            assert_eq!(small, 0);
        }
    }

    #[test]
    fn fair_shares_give_small_claims_in_full() {
        assert_eq!(fair_shares(&[5, 7, 3], 100), vec![5, 7, 3]);
        assert_eq!(fair_shares(&[4_000_000_000, 2, 10], 100), vec![88, 2, 10]);
        assert_eq!(fair_shares(&[50, 50, 50], 90), vec![30, 30, 30]);
        assert_eq!(fair_shares(&[], 90), Vec::<usize>::new());
    }

    /// Many units each claiming the same long stretch: the work is bounded
    /// by the budget, not by units times lines (here 1.6e11 slot updates,
    /// which would not end).
    #[test]
    fn many_long_units_cost_their_budget() {
        let units: Vec<Unit> = (0..200_000).map(|i| unit(1, 800_000, 1, i)).collect();
        let mut budget = 1000;
        let (lines, cut) = line_hits(&units, &mut budget);
        assert!(cut);
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[0], (1, 199_999));
    }

    /// A unit claiming four billion lines costs its budget, not memory.
    #[test]
    fn a_unit_claiming_billions_of_lines_is_bounded() {
        let units = [
            unit(1, 4_000_000_000, 1, 3),
            unit(u32::MAX - 1, u32::MAX, 1, 9),
        ];
        let mut budget = 1000;
        let (lines, cut) = line_hits(&units, &mut budget);
        assert!(cut);
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999], (1000, 3));
        let tail = [unit(u32::MAX - 1, u32::MAX, 1, 9), unit(5, 5, 1, 1)];
        let mut budget = usize::MAX;
        assert_eq!(
            line_hits(&tail, &mut budget),
            (vec![(5, 1), (u32::MAX - 1, 9), (u32::MAX, 9)], false)
        );
    }
}

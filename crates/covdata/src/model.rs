//! The coverage model every report is made from: the merged units of all
//! inputs, each with its final counter, grouped by package and function.
//!
//! This is what `go tool covdata` computes internally before printing; the
//! decoders produce it and every output format (text, HTML, LCOV, …) reads it.

/// How counters were recorded (`-covermode`). Numeric values are those of
/// the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CounterMode {
    Set = 1,
    Count = 2,
    Atomic = 3,
    RegOnly = 4,
    TestMain = 5,
}

impl CounterMode {
    /// The name Go prints (`mode: atomic`).
    pub fn as_str(self) -> &'static str {
        match self {
            CounterMode::Set => "set",
            CounterMode::Count => "count",
            CounterMode::Atomic => "atomic",
            CounterMode::RegOnly => "regonly",
            CounterMode::TestMain => "testmain",
        }
    }
}

/// Whether a counter covers a basic block or a whole function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    PerBlock = 1,
    PerFunc = 2,
}

impl Granularity {
    /// The name Go prints (`Cover granularity: perblock`).
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::PerBlock => "perblock",
            Granularity::PerFunc => "perfunc",
        }
    }
}

/// All coverage of one report: the union of every input's units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub mode: CounterMode,
    pub granularity: Granularity,
    /// Sorted bytewise by import path; each path appears once.
    pub packages: Vec<Package>,
}

/// One Go package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    /// Import path, e.g. `example.com/app/internal/store`.
    pub path: String,
    /// Package name, e.g. `store`.
    pub name: String,
    pub module_path: String,
    pub functions: Vec<Function>,
}

/// One function (or function literal) of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// `F`, `T.M`, `*T.M`, or `func.L<line>.C<col>` for a top-level literal.
    pub name: String,
    /// `<importpath>/<base>`, or an absolute path for `command-line-arguments`.
    pub file: String,
    pub literal: bool,
    pub units: Vec<Unit>,
}

/// One coverable block with its merged execution count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit {
    pub start_line: u32,
    pub start_col: u32,
    pub end_line: u32,
    pub end_col: u32,
    pub statements: u32,
    pub count: u32,
}

/// Covered and total statement counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statements {
    pub covered: u64,
    pub total: u64,
}

impl Statements {
    pub fn add(&mut self, unit: &Unit) {
        self.total += u64::from(unit.statements);
        if unit.count != 0 {
            self.covered += u64::from(unit.statements);
        }
    }

    /// Percentage as Go computes it (`100.0 * covered / total`), 0 for no statements.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.covered as f64 / self.total as f64
        }
    }
}

impl Function {
    pub fn statements(&self) -> Statements {
        let mut s = Statements::default();
        self.units.iter().for_each(|u| s.add(u));
        s
    }
}

impl Package {
    pub fn statements(&self) -> Statements {
        let mut s = Statements::default();
        self.functions
            .iter()
            .flat_map(|f| &f.units)
            .for_each(|u| s.add(u));
        s
    }
}

impl Profile {
    pub fn statements(&self) -> Statements {
        let mut s = Statements::default();
        self.packages
            .iter()
            .flat_map(|p| &p.functions)
            .flat_map(|f| &f.units)
            .for_each(|u| s.add(u));
        s
    }
}

/// Packages in import-path order, handed out one at a time: all the text
/// outputs need. A [`Profile`] has them all in memory; a
/// [`crate::OneBinary`] decodes each from its meta-data file when asked,
/// so a report of one binary never holds more than one package.
pub trait Packages: Sync {
    /// The counter mode of the merged data (`mode:` of a text profile).
    fn mode(&self) -> CounterMode;
    /// Call `visit` on each package, in import-path order, until it fails.
    fn for_each(
        &self,
        visit: &mut dyn FnMut(&Package) -> std::io::Result<()>,
    ) -> std::io::Result<()>;
    /// Each package's import path and statements, in import-path order
    /// (what `percent` prints; a source may know them without building
    /// the packages).
    fn statements(
        &self,
        visit: &mut dyn FnMut(&str, Statements) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.for_each(&mut |p| visit(&p.path, p.statements()))
    }
    /// The number of blocks of each package, in import-path order (a
    /// measure of the work each takes, to share it out).
    fn sizes(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        let _ = self.for_each(&mut |p| {
            sizes.push(p.functions.iter().map(|f| f.units.len()).sum());
            Ok(())
        });
        sizes
    }
    /// Every block with its file, for the packages at `range` of the
    /// import-path order, each package's blocks in Go's text-profile
    /// order (by file, start line, end line, start column, end column,
    /// statements): what `textfmt` prints.
    fn blocks(
        &self,
        range: std::ops::Range<usize>,
        visit: &mut dyn FnMut(&str, &Unit) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut i = 0;
        self.for_each(&mut |p| {
            i += 1;
            if !range.contains(&(i - 1)) {
                return Ok(());
            }
            crate::format::sorted_units(p)
                .into_iter()
                .try_for_each(|(f, u)| visit(&f.file, u))
        })
    }
}

impl Packages for Profile {
    fn mode(&self) -> CounterMode {
        self.mode
    }
    fn for_each(
        &self,
        visit: &mut dyn FnMut(&Package) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.packages.iter().try_for_each(visit)
    }
}

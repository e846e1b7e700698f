//! Merge groups (binaries) into one [`Profile`], as Go's `cformat.Formatter`
//! does: blocks are keyed by (package, file, function name, literal flag,
//! position, statement count); identical blocks from different groups
//! become one, their counts combined with the first group's counter mode.

use super::FxHashMap;
use super::counters::Layout;
use crate::decode_meta::{MetaFile, UnitPos};
use crate::model::{CounterMode, Function, Granularity, Package, Profile, Unit};
use crate::pkgpattern::PkgFilter;

/// Accumulates groups into a [`Profile`].
#[derive(Debug, Default)]
pub struct ProfileBuilder {
    /// The first group's mode and granularity (Go's formatter mode).
    first: Option<(CounterMode, Granularity)>,
    packages: FxHashMap<String, PackageAcc>,
}

#[derive(Debug, Default)]
struct PackageAcc {
    name: String,
    module_path: String,
    functions: Vec<Function>,
    /// file -> function name -> [plain, literal] function index.
    by_name: FxHashMap<String, FxHashMap<String, [Option<u32>; 2]>>,
    /// (function index, position) -> unit index within the function.
    units: FxHashMap<(u32, UnitPos), u32>,
}

impl ProfileBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one group: its meta-data, the layout made from it and its merged
    /// counters (one per slot of the layout). Packages not selected by `filter` are left out entirely
    /// (as `-pkg` does: they do not even appear with zero statements).
    pub fn add_group(
        &mut self,
        meta: &MetaFile,
        layout: &Layout,
        counts: &[u32],
        filter: Option<&PkgFilter>,
    ) {
        let mode = self.first.get_or_insert((meta.mode, meta.granularity)).0;
        for (pi, pkg) in meta.packages.iter().enumerate() {
            if let Some(f) = filter
                && !f.matches(&pkg.path)
            {
                continue;
            }
            let acc = self
                .packages
                .entry(pkg.path.clone())
                .or_insert_with(|| PackageAcc {
                    name: pkg.name.clone(),
                    module_path: pkg.module_path.clone(),
                    ..PackageAcc::default()
                });
            acc.units.reserve(pkg.units.len());
            acc.functions.reserve(pkg.functions.len());
            for (fi, f) in pkg.functions.iter().enumerate() {
                let units = pkg.function_units(f);
                if units.is_empty() {
                    continue;
                }
                let counts = &counts[layout.slot_start(pi, fi)..][..units.len()];
                let fidx = acc.function(pkg.function_file(f), pkg.function_name(f), f.literal);
                for (u, &count) in units.iter().zip(counts) {
                    acc.add_unit(fidx, *u, count, mode);
                }
            }
        }
    }

    /// The merged profile; packages sorted by import path.
    pub fn finish(self) -> Option<Profile> {
        let (mode, granularity) = self.first?;
        let mut packages: Vec<Package> = self
            .packages
            .into_iter()
            .map(|(path, acc)| Package {
                path,
                name: acc.name,
                module_path: acc.module_path,
                functions: acc.functions,
            })
            .collect();
        packages.sort_by(|a, b| a.path.cmp(&b.path));
        Some(Profile {
            mode,
            granularity,
            packages,
        })
    }
}

impl PackageAcc {
    fn function(&mut self, file: &str, name: &str, literal: bool) -> u32 {
        let slot = match self.by_name.get_mut(file) {
            Some(m) => match m.get_mut(name) {
                Some(s) => s,
                None => m.entry(name.to_string()).or_default(),
            },
            None => self
                .by_name
                .entry(file.to_string())
                .or_default()
                .entry(name.to_string())
                .or_default(),
        };
        let slot = &mut slot[usize::from(literal)];
        if let Some(i) = *slot {
            return i;
        }
        let i = self.functions.len() as u32;
        self.functions.push(Function {
            name: name.to_string(),
            file: file.to_string(),
            literal,
            units: Vec::new(),
        });
        *slot = Some(i);
        i
    }

    #[inline]
    fn add_unit(&mut self, fidx: u32, u: UnitPos, count: u32, mode: CounterMode) {
        let func = &mut self.functions[fidx as usize];
        match self.units.entry((fidx, u)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let unit = &mut func.units[*e.get() as usize];
                unit.count = if mode == CounterMode::Set {
                    u32::from(count != 0 || unit.count != 0)
                } else {
                    unit.count.saturating_add(count)
                };
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(func.units.len() as u32);
                // Go's formatter merges even the first count with the
                // mode: in set mode a stored 7 becomes 1.
                let count = if mode == CounterMode::Set {
                    u32::from(count != 0)
                } else {
                    count
                };
                func.units.push(Unit {
                    start_line: u.start_line,
                    start_col: u.start_col,
                    end_line: u.end_line,
                    end_col: u.end_col,
                    statements: u.statements,
                    count,
                });
            }
        }
    }
}

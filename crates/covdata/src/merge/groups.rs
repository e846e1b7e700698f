//! Merge groups (binaries) into one [`Profile`], as Go's `cformat.Formatter`
//! does: blocks are keyed by (package, file, function name, literal flag,
//! position, statement count); identical blocks from different groups
//! become one, their counts combined with the first group's counter mode.
//!
//! A group goes in two steps, so the first can run while its counter files
//! are still being merged: [`ProfileBuilder::add_structure`] takes the
//! meta-data (functions and blocks, counts zero) and returns a [`Plan`];
//! [`ProfileBuilder::apply_counts`] then folds in the merged counters.
//! Identical blocks are collapsed once, in [`ProfileBuilder::finish`]: that
//! keeps hashing out of the per-block path (collapsing is rare; checking
//! for it is a sort of each function's few blocks).

use super::FxHashMap;
use super::counters::Layout;
use crate::decode_meta::{MetaFile, MetaPackage, UnitPos, walk_package};
use crate::error::Corruption;
use crate::model::{CounterMode, Function, Granularity, Package, Profile, Unit};
use crate::pkgpattern::PkgFilter;

/// Accumulates groups into a [`Profile`].
#[derive(Debug, Default)]
pub struct ProfileBuilder {
    /// The first group's mode and granularity (Go's formatter mode).
    first: Option<(CounterMode, Granularity)>,
    /// Import path -> index in `packages`.
    index: FxHashMap<String, u32>,
    packages: Vec<PackageAcc>,
}

/// (file, function name) -> [plain, literal] function index.
type NameIndex = FxHashMap<(String, String), [Option<u32>; 2]>;

#[derive(Debug, Default)]
struct PackageAcc {
    path: String,
    name: String,
    module_path: String,
    functions: Vec<Function>,
    /// (file, function name) -> [plain, literal] function index. Built
    /// only when a second group adds to the package (rare); the first one
    /// uses a map borrowing the meta-data's names.
    by_name: Option<NameIndex>,
}

/// Where one group's counters go: per function of the meta-data (in
/// layout order), the function's first slot, its block count, and the
/// profile position of its first block (package, function, block).
#[derive(Debug, Default)]
pub struct Plan {
    targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy)]
struct Target {
    slot: u32,
    len: u32,
    package: u32,
    function: u32,
    unit: u32,
}

impl ProfileBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one group in one go: its meta-data, the layout made from it and
    /// its merged counters (one per slot of the layout).
    pub fn add_group(
        &mut self,
        meta: &MetaFile,
        layout: &Layout,
        counts: &[u32],
        filter: Option<&PkgFilter>,
    ) {
        let plan = self.add_structure(meta, layout, filter);
        self.apply_counts(&plan, counts);
    }

    /// Add one group's functions and blocks (counts zero). Packages not
    /// selected by `filter` are left out entirely (as `-pkg` does: they do
    /// not even appear with zero statements).
    pub fn add_structure(
        &mut self,
        meta: &MetaFile,
        layout: &Layout,
        filter: Option<&PkgFilter>,
    ) -> Plan {
        self.first.get_or_insert((meta.mode, meta.granularity));
        let mut plan = Plan::default();
        for (pi, pkg) in meta.packages.iter().enumerate() {
            if let Some(f) = filter
                && !f.matches(&pkg.path)
            {
                continue;
            }
            let pidx = match self.index.get(pkg.path.as_str()) {
                Some(&i) => {
                    let acc = &mut self.packages[i as usize];
                    if acc.by_name.is_none() {
                        acc.by_name = Some(acc.name_index());
                    }
                    i
                }
                None => {
                    let i = self.packages.len() as u32;
                    self.index.insert(pkg.path.clone(), i);
                    self.packages.push(PackageAcc {
                        path: pkg.path.clone(),
                        name: pkg.name.clone(),
                        module_path: pkg.module_path.clone(),
                        functions: Vec::with_capacity(pkg.functions.len()),
                        by_name: None,
                    });
                    i
                }
            };
            let acc = &mut self.packages[pidx as usize];
            // (file, name) -> [plain, literal] function index, borrowing
            // the names: no allocation per function.
            let mut local: FxHashMap<(&str, &str), [Option<u32>; 2]> =
                FxHashMap::with_capacity_and_hasher(pkg.functions.len(), Default::default());
            for (fi, f) in pkg.functions.iter().enumerate() {
                let units = pkg.function_units(f);
                if units.is_empty() {
                    continue;
                }
                let slot = &mut match &mut acc.by_name {
                    Some(m) => m
                        .entry((
                            pkg.function_file(f).to_string(),
                            pkg.function_name(f).to_string(),
                        ))
                        .or_default(),
                    None => local
                        .entry((pkg.function_file(f), pkg.function_name(f)))
                        .or_default(),
                }[usize::from(f.literal)];
                let fidx = match *slot {
                    Some(i) => i,
                    None => {
                        let i = acc.functions.len() as u32;
                        acc.functions.push(Function {
                            name: pkg.function_name(f).to_string(),
                            file: pkg.function_file(f).to_string(),
                            literal: f.literal,
                            units: Vec::with_capacity(units.len()),
                        });
                        *slot = Some(i);
                        i
                    }
                };
                let func = &mut acc.functions[fidx as usize];
                plan.targets.push(Target {
                    slot: layout.slot_start(pi, fi) as u32,
                    len: units.len() as u32,
                    package: pidx,
                    function: fidx,
                    unit: func.units.len() as u32,
                });
                func.units.extend(units.iter().map(|u| Unit {
                    start_line: u.start_line,
                    start_col: u.start_col,
                    end_line: u.end_line,
                    end_col: u.end_col,
                    statements: u.statements,
                    count: 0,
                }));
            }
        }
        plan
    }

    /// Fold a group's merged counters (one per slot of the layout given to
    /// [`ProfileBuilder::add_structure`]) into its blocks, with the first
    /// group's mode.
    pub fn apply_counts(&mut self, plan: &Plan, counts: &[u32]) {
        let Some((mode, _)) = self.first else { return };
        let set = mode == CounterMode::Set;
        for t in &plan.targets {
            let Some(src) = counts.get(t.slot as usize..(t.slot + t.len) as usize) else {
                continue;
            };
            let units = &mut self.packages[t.package as usize].functions[t.function as usize].units
                [t.unit as usize..][..t.len as usize];
            for (u, &c) in units.iter_mut().zip(src) {
                u.count = merge_count(u.count, c, set);
            }
        }
    }

    /// The merged profile; packages sorted by import path, identical
    /// blocks of a function collapsed into the first.
    pub fn finish(self) -> Option<Profile> {
        let (mode, granularity) = self.first?;
        let set = mode == CounterMode::Set;
        let mut scratch = Vec::new();
        let mut packages: Vec<Package> = self
            .packages
            .into_iter()
            .map(|acc| {
                let mut functions = acc.functions;
                for f in &mut functions {
                    collapse(&mut f.units, set, &mut scratch);
                }
                Package {
                    path: acc.path,
                    name: acc.name,
                    module_path: acc.module_path,
                    functions,
                }
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

/// The [`Package`] of a binary that is the only input, decoded from its
/// meta-data blob (at file offset `base`) straight into `out`: what
/// [`ProfileBuilder`] makes of it with the merged counts (its blocks'
/// slots start at `first_slot`, in meta order). `plain`: the package is
/// known to list no function twice and to have no blocks that collapse
/// (then neither is looked for). `out` and `scratch` are reused from one
/// package to the next, as reports go through packages one at a time.
#[allow(clippy::too_many_arguments)]
pub(crate) fn single_package(
    blob: &[u8],
    base: u64,
    first_slot: usize,
    counts: &[u32],
    set: bool,
    plain: bool,
    out: &mut Package,
    scratch: &mut SingleScratch,
) -> Result<(), Corruption> {
    let SingleScratch { head, units, spare } = scratch;
    spare.append(&mut out.functions);
    let functions = &mut out.functions;
    // Sized from the function count in the package header (a hint).
    let functions_hint = match plain {
        true => 0,
        false => blob
            .get(40..44)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .min(blob.len() / 4),
    };
    let mut by_name: FxHashMap<(&str, &str), [Option<u32>; 2]> =
        FxHashMap::with_capacity_and_hasher(functions_hint, Default::default());
    let mut slot = first_slot;
    walk_package(blob, base, head, units, |f| {
        let start = slot;
        slot += f.units.len();
        if f.units.is_empty() {
            return Ok(());
        }
        let mut new_function = || {
            let mut func = spare.pop().unwrap_or_else(|| Function {
                name: String::new(),
                file: String::new(),
                literal: false,
                units: Vec::new(),
            });
            func.name.clear();
            func.name.push_str(f.name);
            func.file.clear();
            func.file.push_str(f.file);
            func.literal = f.literal;
            // Reused, but not kept much larger than needed: a package's
            // memory stays that of its own functions.
            if func.units.capacity() > 2 * f.units.len() + 32 {
                func.units = Vec::new();
            }
            func.units.clear();
            functions.push(func);
            functions.len() as u32 - 1
        };
        let i = if plain {
            new_function()
        } else {
            let index = &mut by_name.entry((f.file, f.name)).or_default()[usize::from(f.literal)];
            *index.get_or_insert_with(new_function)
        };
        let src = counts.get(start..slot).unwrap_or_default();
        functions[i as usize]
            .units
            .extend(f.units.iter().enumerate().map(|(k, u)| Unit {
                start_line: u.start_line,
                start_col: u.start_col,
                end_line: u.end_line,
                end_col: u.end_col,
                statements: u.statements,
                count: merge_count(0, src.get(k).copied().unwrap_or(0), set),
            }));
        Ok(())
    })?;
    drop(by_name);
    for (to, from) in [
        (&mut out.path, &head.path),
        (&mut out.name, &head.name),
        (&mut out.module_path, &head.module_path),
    ] {
        to.clone_from(from);
    }
    if !plain {
        let mut starts = Vec::new();
        for f in out.functions.iter_mut() {
            collapse(&mut f.units, set, &mut starts);
        }
    }
    Ok(())
}

/// Buffers [`single_package`] reuses from one package to the next.
#[derive(Debug, Default)]
pub(crate) struct SingleScratch {
    head: MetaPackage,
    units: Vec<UnitPos>,
    /// Functions of earlier packages, for their allocations.
    spare: Vec<Function>,
}

impl PackageAcc {
    /// (file, name) -> [plain, literal] function index of what is there.
    fn name_index(&self) -> NameIndex {
        let mut m = NameIndex::default();
        for (i, f) in self.functions.iter().enumerate() {
            m.entry((f.file.clone(), f.name.clone())).or_default()[usize::from(f.literal)] =
                Some(i as u32);
        }
        m
    }
}

/// Go's formatter merge of two counts of one block: in set mode 1 if
/// either is nonzero (even a single stored 7 becomes 1), else a sum
/// saturating at `u32::MAX`.
#[inline]
fn merge_count(a: u32, b: u32, set: bool) -> u32 {
    if set {
        u32::from(a != 0 || b != 0)
    } else {
        a.saturating_add(b)
    }
}

/// Whether no two of `units` start at the same line and column (usually
/// they come in increasing order, which shows it at once).
pub(crate) fn distinct_starts<U: Start>(units: &[U], starts: &mut Vec<u64>) -> bool {
    if units.windows(2).all(|w| w[0].start() < w[1].start()) {
        return true;
    }
    starts.clear();
    starts.extend(units.iter().map(U::start));
    starts.sort_unstable();
    starts.windows(2).all(|w| w[0] != w[1])
}

/// A block's start, packed for comparison.
pub(crate) trait Start {
    fn start(&self) -> u64;
}

impl Start for Unit {
    fn start(&self) -> u64 {
        (u64::from(self.start_line) << 32) | u64::from(self.start_col)
    }
}

impl Start for u64 {
    fn start(&self) -> u64 {
        *self
    }
}

impl Start for UnitPos {
    fn start(&self) -> u64 {
        (u64::from(self.start_line) << 32) | u64::from(self.start_col)
    }
}

type Position = (u32, u32, u32, u32, u32);

fn position(u: &Unit) -> Position {
    (
        u.start_line,
        u.start_col,
        u.end_line,
        u.end_col,
        u.statements,
    )
}

/// Collapse blocks of identical position and statement count into the
/// first of them, merging counts. Blocks usually come in increasing order
/// of start position, which proves there are none; otherwise a sort tells.
fn collapse(units: &mut Vec<Unit>, set: bool, starts: &mut Vec<u64>) {
    // Identical blocks start alike: distinct starts prove there are none.
    if distinct_starts(units, starts) {
        return;
    }
    // Rare: fold each later duplicate into its first occurrence.
    let mut first_of: FxHashMap<Position, usize> = FxHashMap::default();
    let mut out: Vec<Unit> = Vec::with_capacity(units.len());
    for u in units.iter() {
        match first_of.entry(position(u)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let kept = &mut out[*e.get()];
                kept.count = merge_count(kept.count, u.count, set);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(*u);
            }
        }
    }
    *units = out;
}

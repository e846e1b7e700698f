//! The merged coverage of a single binary (one meta-data file: the usual
//! case) without building a [`Profile`]: the counts stay in one flat
//! vector, one per block, and a package is decoded from the meta-data file
//! only when a report asks for it. A report then holds one package at a
//! time instead of all ~100k blocks with their names (for `percent` on the
//! bench's data that is most of the peak memory and a third of the time).

use std::ops::Range;

use crate::decode_meta::{self, MetaPackage};
use crate::error::Corruption;
use crate::merge::counters::Layout;
use crate::merge::groups;
use crate::model::{CounterMode, Granularity, Package, Packages, Profile};
use crate::pkgpattern::PkgFilter;

/// One binary's merged coverage; see the module doc.
#[derive(Debug, Clone)]
pub struct OneBinary {
    meta: Vec<u8>,
    mode: CounterMode,
    granularity: Granularity,
    /// The packages selected, in import-path order.
    order: Vec<Selected>,
    /// Merged counts, one per block, in meta-data order.
    counts: Vec<u32>,
}

/// A package of the meta-data file: where its blob is, its first slot.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    path: String,
    blob: Range<usize>,
    first_slot: usize,
}

/// What [`index`] learns of a meta-data file.
#[derive(Debug)]
pub(crate) struct Index {
    mode: CounterMode,
    granularity: Granularity,
    order: Vec<Selected>,
}

/// Check all of `meta` as [`decode_meta::decode`] does (one package at a
/// time, so little is held) and list the packages `filter` selects, in
/// import-path order. `Ok(None)` when this view does not apply: the
/// counters were laid out differently, or an import path appears twice
/// (only in a crafted file; the general path merges such packages).
pub(crate) fn index(
    meta: &[u8],
    layout: &Layout,
    filter: Option<&PkgFilter>,
) -> Result<Option<Index>, Corruption> {
    let outline = decode_meta::outline(meta)?;
    let mut order = Vec::new();
    let mut slot = 0usize;
    for (i, blob) in outline.blobs.into_iter().enumerate() {
        let pkg = decode_meta::decode_package(&meta[blob.clone()], blob.start as u64)?;
        if !layout.package_fits(i, &pkg) {
            return Ok(None);
        }
        let first_slot = slot;
        slot += pkg.units.len();
        if filter.is_none_or(|f| f.matches(&pkg.path)) {
            order.push(Selected {
                path: pkg.path,
                blob,
                first_slot,
            });
        }
    }
    order.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    if order.windows(2).any(|w| w[0].path == w[1].path) {
        return Ok(None);
    }
    Ok(Some(Index {
        mode: outline.mode,
        granularity: outline.granularity,
        order,
    }))
}

impl OneBinary {
    /// `meta` checked by [`index`], and its merged counts (one per slot of
    /// the layout `index` accepted).
    pub(crate) fn new(meta: Vec<u8>, index: Index, counts: Vec<u32>) -> Self {
        OneBinary {
            meta,
            mode: index.mode,
            granularity: index.granularity,
            order: index.order,
            counts,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    fn package(&self, s: &Selected) -> Option<Package> {
        // Checked by `index`: decoding cannot fail now.
        let pkg: MetaPackage =
            decode_meta::decode_package(&self.meta[s.blob.clone()], s.blob.start as u64).ok()?;
        Some(groups::single_package(
            &pkg,
            s.first_slot,
            &self.counts,
            self.mode == CounterMode::Set,
        ))
    }

    /// Every package in memory, as a [`Profile`] (for the reports that
    /// need them all at once).
    pub fn into_profile(self) -> Profile {
        Profile {
            mode: self.mode,
            granularity: self.granularity,
            packages: self.order.iter().filter_map(|s| self.package(s)).collect(),
        }
    }
}

impl Packages for OneBinary {
    fn mode(&self) -> CounterMode {
        self.mode
    }
    fn for_each(
        &self,
        visit: &mut dyn FnMut(&Package) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for s in &self.order {
            if let Some(p) = self.package(s) {
                visit(&p)?;
            }
        }
        Ok(())
    }
}

/// What a load produced: all packages in memory, or one binary's data
/// decoded package by package.
#[derive(Debug, Clone)]
pub enum Coverage {
    Profile(Profile),
    OneBinary(OneBinary),
}

impl Coverage {
    pub fn into_profile(self) -> Profile {
        match self {
            Coverage::Profile(p) => p,
            Coverage::OneBinary(o) => o.into_profile(),
        }
    }
    /// No package (e.g. none matched `-pkg`).
    pub fn is_empty(&self) -> bool {
        match self {
            Coverage::Profile(p) => p.packages.is_empty(),
            Coverage::OneBinary(o) => o.is_empty(),
        }
    }
}

impl Packages for Coverage {
    fn mode(&self) -> CounterMode {
        match self {
            Coverage::Profile(p) => p.mode,
            Coverage::OneBinary(o) => o.mode,
        }
    }
    fn for_each(
        &self,
        visit: &mut dyn FnMut(&Package) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match self {
            Coverage::Profile(p) => p.for_each(visit),
            Coverage::OneBinary(o) => o.for_each(visit),
        }
    }
}

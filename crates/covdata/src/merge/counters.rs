//! Merge the counter files of one group into one count per block.
//!
//! Counts live in one flat vector indexed through a [`Layout`] made from the
//! meta-data file, so merging a function is a slice operation, and several
//! threads can each fill their own [`Tally`] and be combined at the end
//! (saturating addition and "set" are both order independent).

use crate::decode_counters::{CounterFile, Merge};
use crate::decode_meta::MetaFile;
use crate::error::Corruption;
use crate::model::CounterMode;

/// Where each (package, function) of a meta-data file lives in the flat
/// counter vector.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per package: index of its first function in `functions`.
    package_start: Vec<u32>,
    /// Per function: (first slot, number of units).
    functions: Vec<(u32, u32)>,
    slots: usize,
}

impl Layout {
    pub fn new(meta: &MetaFile) -> Self {
        let mut package_start = Vec::with_capacity(meta.packages.len() + 1);
        let mut functions = Vec::new();
        let mut slots = 0usize;
        for p in &meta.packages {
            package_start.push(functions.len() as u32);
            for f in &p.functions {
                functions.push((slots as u32, f.units_len));
                slots += f.units_len as usize;
            }
        }
        package_start.push(functions.len() as u32);
        Layout {
            package_start,
            functions,
            slots,
        }
    }

    /// Number of counter slots (units) in the whole file.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The slot range of a function, `None` if the meta-data has no such
    /// function.
    #[inline]
    pub fn function(&self, package: u32, function: u32) -> Option<(usize, usize)> {
        let p = package as usize;
        let start = *self.package_start.get(p)? as usize;
        let end = *self.package_start.get(p + 1)? as usize;
        let idx = start.checked_add(function as usize)?;
        if idx >= end {
            return None;
        }
        let (s, n) = self.functions[idx];
        Some((s as usize, n as usize))
    }

    /// The slot range of the `function`-th function of `package` in meta
    /// order, for reading results.
    pub fn slot_start(&self, package: usize, function: usize) -> usize {
        self.functions[self.package_start[package] as usize + function].0 as usize
    }
}

/// Merged counts of some counter files of one group.
#[derive(Debug, Clone)]
pub struct Tally {
    pub counts: Vec<u32>,
    pub overflow: bool,
    /// (package, function) pairs the meta-data does not describe.
    pub unknown: Vec<(u32, u32)>,
}

impl Tally {
    pub fn new(layout: &Layout) -> Self {
        Tally {
            counts: vec![0; layout.slots()],
            overflow: false,
            unknown: Vec::new(),
        }
    }

    /// Add one counter file. `mode` is the merge mode in effect for the
    /// group (Go upgrades it as groups of higher modes are read).
    pub fn add_file(
        &mut self,
        layout: &Layout,
        file: &mut CounterFile<'_>,
        mode: CounterMode,
    ) -> Result<(), Corruption> {
        let merge = if mode == CounterMode::Set {
            Merge::Set
        } else {
            Merge::Add
        };
        // Counters beyond a function's units are ignored, missing ones
        // count as zero (Go would index out of range).
        let ovf = file.merge_into(
            |p, f| layout.function(p, f),
            &mut self.counts,
            merge,
            &mut self.unknown,
        )?;
        self.overflow |= ovf;
        Ok(())
    }

    /// Fold another tally of the same layout into this one.
    pub fn combine(&mut self, other: &Tally, mode: CounterMode) {
        merge_into(&mut self.counts, &other.counts, mode, &mut self.overflow);
        self.overflow |= other.overflow;
        self.unknown.extend_from_slice(&other.unknown);
    }
}

/// Go's `cmerge.MergeCounters`: set mode keeps 1 for any hit; other modes
/// add, saturating at `u32::MAX` and flagging the overflow.
#[inline]
pub fn merge_into(dst: &mut [u32], src: &[u32], mode: CounterMode, overflow: &mut bool) {
    if mode == CounterMode::Set {
        for (d, &s) in dst.iter_mut().zip(src) {
            if s != 0 {
                *d = 1;
            }
        }
    } else {
        let mut ovf = false;
        for (d, &s) in dst.iter_mut().zip(src) {
            let (sum, o) = d.overflowing_add(s);
            *d = if o { u32::MAX } else { sum };
            ovf |= o;
        }
        *overflow |= ovf;
    }
}

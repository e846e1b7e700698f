//! Merge the counter files of one group into one count per block.
//!
//! Counts live in one flat vector indexed through a [`Layout`] made from the
//! meta-data file, so merging a function is a slice operation, and several
//! threads can each fill their own [`Tally`] and be combined at the end
//! (saturating addition and "set" are both order independent).

use crate::decode_counters::{CounterFile, Expectations, Forecast, Place, SMALL_LIMIT, Sums};
use crate::decode_meta::{MetaFile, Shape};
use crate::error::Corruption;
use crate::model::CounterMode;

/// The largest counter file (bytes) [`Tally::add_file`] merges the fast
/// way, about 16 MB: its one-byte values cannot take a `small` slot past
/// [`SMALL_LIMIT`].
pub const LARGEST_MERGED_FAST: u64 = SMALL_LIMIT as u64 / 127;

/// Where each (package, function) of a meta-data file lives in the flat
/// counter vector.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per package: index of its first function in `functions`.
    package_start: Vec<u32>,
    /// Per function: (first slot, number of units).
    functions: Vec<(u32, u32)>,
    slots: usize,
    /// The functions of [`Layout::in_listed_order`]'s list, as a counter
    /// file's entries, and per function its index there (`u32::MAX`: not
    /// listed). Empty for a layout in meta-data order.
    expected: Expectations,
    listed_at: Vec<u32>,
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
            expected: Expectations::default(),
            listed_at: Vec::new(),
        }
    }

    /// The layout of a meta-data file's [`Shape`] (the same as
    /// [`Layout::new`] of its decoded form).
    pub fn from_shape(shape: &Shape) -> Self {
        let mut package_start = Vec::with_capacity(shape.units.len() + 1);
        let mut functions = Vec::new();
        let mut slots = 0usize;
        for p in &shape.units {
            package_start.push(functions.len() as u32);
            for &n in p {
                functions.push((slots as u32, n));
                slots += n as usize;
            }
        }
        package_start.push(functions.len() as u32);
        Layout {
            package_start,
            functions,
            slots,
            expected: Expectations::default(),
            listed_at: Vec::new(),
        }
    }

    /// Whether this is the layout of `meta`.
    pub fn fits(&self, meta: &MetaFile) -> bool {
        meta.packages.len() + 1 == self.package_start.len()
            && meta
                .packages
                .iter()
                .flat_map(|p| &p.functions)
                .map(|f| f.units_len)
                .eq(self.functions.iter().map(|&(_, n)| n))
    }

    /// Number of functions in the whole file.
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Number of counter slots (units) in the whole file.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The slot range of a function, `None` if the meta-data has no such
    /// function.
    #[inline]
    pub fn function(&self, package: u32, function: u32) -> Option<(usize, usize)> {
        self.place(package, function).map(|p| (p.start, p.len))
    }

    /// [`Layout::function`] and the function's index in the listed order.
    #[inline]
    pub fn place(&self, package: u32, function: u32) -> Option<Place> {
        let idx = self.position(package, function)?;
        let &(start, len) = self.functions.get(idx)?;
        let listed = self.listed_at.get(idx).filter(|&&i| i != u32::MAX);
        Some(Place {
            start: start as usize,
            len: len as usize,
            listed: listed.map(|&i| i as usize),
        })
    }

    /// Where a function is in `functions`. On the reader's hot path: one
    /// bounds check per table (u32 indexes cannot overflow a usize sum).
    #[inline]
    fn position(&self, package: u32, function: u32) -> Option<usize> {
        let p = package as usize;
        let &[start, end] = self.package_start.get(p..p + 2)?.first_chunk::<2>()?;
        let idx = start as usize + function as usize;
        (idx < end as usize).then_some(idx)
    }

    /// The same functions, their slots numbered anew: first the functions
    /// `listed` (package and function indexes, as a counter file lists
    /// them), in that order, then the others in meta-data order.
    ///
    /// The files of a run list much the same functions in much the same
    /// order. Numbered that way, the slots a file adds to are packed
    /// together and mostly ascending, rather than spread over the whole
    /// tally in meta-data order: fewer cache lines, and in an order the
    /// hardware prefetches (the bench's 2000 files merge in 5-15% less
    /// time). [`Layout::counts_in`] puts the counts back. The listed
    /// functions are also the entries a file is expected to hold, in that
    /// order (see [`Forecast`]).
    pub fn in_listed_order(&self, listed: impl IntoIterator<Item = (u32, u32)>) -> Layout {
        let mut functions = self.functions.clone();
        let mut listed_at = vec![u32::MAX; functions.len()];
        let mut expected = Expectations::default();
        let mut next = 0u32;
        for (package, function) in listed {
            if let Some(idx) = self.position(package, function)
                && listed_at[idx] == u32::MAX
            {
                listed_at[idx] = expected.len() as u32;
                let len = functions[idx].1;
                functions[idx].0 = next;
                expected.push(package, function, len as usize);
                next += len;
            }
        }
        for (idx, (start, n)) in functions.iter_mut().enumerate() {
            if listed_at[idx] == u32::MAX {
                *start = next;
                next += *n;
            }
        }
        Layout {
            package_start: self.package_start.clone(),
            functions,
            slots: self.slots,
            expected,
            listed_at,
        }
    }

    /// `counts`, one per slot of this layout, moved to the slots of
    /// `other`, a layout of the same functions.
    pub fn counts_in(&self, other: &Layout, counts: Vec<u32>) -> Vec<u32> {
        if self.functions == other.functions {
            return counts;
        }
        let mut moved = vec![0; other.slots];
        for (&(from, n), &(to, _)) in self.functions.iter().zip(&other.functions) {
            let (from, to, n) = (from as usize, to as usize, n as usize);
            if let (Some(src), Some(dst)) = (counts.get(from..from + n), moved.get_mut(to..to + n))
            {
                dst.copy_from_slice(src);
            }
        }
        moved
    }

    /// The slot range of the `function`-th function of `package` in meta
    /// order, for reading results.
    pub fn slot_start(&self, package: usize, function: usize) -> usize {
        self.functions[self.package_start[package] as usize + function].0 as usize
    }
}

/// Merged counts of some counter files of one group.
///
/// Sums are kept wider than Go's u32 so the hot loop adds without overflow
/// checks (see [`Sums`]); [`Tally::finish`] saturates them at `u32::MAX`
/// as Go's `cmerge` does. That is exact: Go's running saturating sum of
/// non-negative values ends at `min(total, u32::MAX)`, and one of its
/// additions overflows exactly when the total exceeds `u32::MAX`.
#[derive(Debug, Clone)]
pub struct Tally {
    set: bool,
    /// One-byte values, one per slot.
    small: Vec<u32>,
    /// Everything else, and `small` once flushed; one per slot. Zeroed
    /// by the allocator and left untouched (out of the peak RSS) until
    /// `large_used`: in the usual runs nothing ever goes there.
    large: Vec<u64>,
    large_used: bool,
    overflow: bool,
    /// Scratch bytes for the merge (see [`Forecast`]).
    staging: Vec<u8>,
    /// Where the slots of `small` ever written end: the rest are 0 and
    /// untouched, and combining leaves them so (no page faults, no RSS).
    written: usize,
    /// (package, function) pairs the meta-data does not describe.
    pub unknown: Vec<(u32, u32)>,
    /// Upper bound of what one-byte values added to any `small` slot
    /// since the last flush (see [`Sums`]).
    small_bound: u64,
    /// Upper bound on the values added to any `large` slot since the last
    /// clamp (a value takes at least one byte of a file): below 2^32
    /// values of at most 2^32-1 each, a u64 cannot overflow.
    large_pending: u64,
}

/// The merged counts of a group, saturated as Go's.
#[derive(Debug, Clone)]
pub struct Merged {
    /// One per slot of the [`Layout`].
    pub counts: Vec<u32>,
    /// Some sum saturated at `u32::MAX` (Go warns).
    pub overflow: bool,
}

impl Tally {
    /// An empty tally; `mode` is the merge mode in effect for the group
    /// (Go upgrades it as groups of higher modes are read).
    pub fn new(layout: &Layout, mode: CounterMode) -> Self {
        Tally {
            set: mode == CounterMode::Set,
            small: vec![0; layout.slots()],
            large: vec![0; layout.slots()],
            large_used: false,
            overflow: false,
            unknown: Vec::new(),
            staging: Vec::new(),
            written: 0,
            small_bound: 0,
            large_pending: 0,
        }
    }

    /// Add one counter file.
    pub fn add_file(
        &mut self,
        layout: &Layout,
        file: &mut CounterFile<'_>,
    ) -> Result<(), Corruption> {
        // A file holds at most one value per byte for any slot.
        let most = file.byte_len() as u64;
        if self.large_pending.saturating_add(most) >= 1 << 32 {
            self.clamp();
        }
        self.large_pending += most;
        if most > LARGEST_MERGED_FAST {
            // No run writes that: value by value into `large`.
            return self.add_file_slowly(layout, file);
        }
        // A function entry gives each of its slots one value, so one-byte
        // values add at most 127 per entry to a slot. (Bounding by bytes
        // instead moved `small` to `large` every ~400 files of a real run,
        // each move faulting in all of `large`.)
        let small_most = 127 * file.function_count().min(most);
        if self.small_bound + small_most > u64::from(SMALL_LIMIT) {
            self.flush_small();
        }
        self.small_bound += small_most;
        // Counters beyond a function's units are ignored, missing ones
        // count as zero (Go would index out of range).
        file.merge_into(
            |p, f| layout.place(p, f),
            Sums {
                small: &mut self.small,
                large: &mut self.large,
                large_used: &mut self.large_used,
                written: &mut self.written,
            },
            Forecast {
                expected: &layout.expected,
                staging: &mut self.staging,
            },
            self.set,
            &mut self.unknown,
        )
    }

    fn add_file_slowly(
        &mut self,
        layout: &Layout,
        file: &mut CounterFile<'_>,
    ) -> Result<(), Corruption> {
        let mut values = Vec::new();
        while let Some(h) = file.next_function(&mut values)? {
            let Some((start, len)) = layout.function(h.package, h.function) else {
                self.unknown.push((h.package, h.function));
                continue;
            };
            let dst = self.large.get_mut(start..start + len).unwrap_or_default();
            self.large_used = true;
            for (d, &v) in dst.iter_mut().zip(&values) {
                if self.set {
                    *d |= u64::from(v != 0);
                } else {
                    *d += u64::from(v);
                }
            }
        }
        Ok(())
    }

    /// Move `small` into `large`.
    fn flush_small(&mut self) {
        if self.large_pending.saturating_add(1) >= 1 << 32 {
            self.clamp();
        }
        self.large_pending += 1;
        self.large_used = true;
        let written = self.written.min(self.small.len());
        for (d, s) in self.large.iter_mut().zip(&mut self.small[..written]) {
            if self.set {
                *d |= u64::from(*s);
            } else {
                *d += u64::from(*s);
            }
            *s = 0;
        }
        self.small_bound = 0;
    }

    /// Saturate every `large` slot at `u32::MAX`, noting whether any was
    /// above.
    fn clamp(&mut self) {
        self.large_pending = 0;
        if !self.large_used {
            return;
        }
        let max = u64::from(u32::MAX);
        let mut ovf = false;
        for c in &mut self.large {
            ovf |= *c > max;
            *c = (*c).min(max);
        }
        self.overflow |= ovf;
    }

    /// Fold another tally of the same layout and mode into this one.
    pub fn combine(&mut self, mut other: Tally) {
        if !self.large_used && !other.large_used {
            // Small sums only (the usual case): add them where they are,
            // moving a sum above SMALL_LIMIT (rare) to `large`, so `small`
            // keeps what the next file may add to it.
            // Only the slots either side ever wrote.
            self.written = self.written.max(other.written).min(self.small.len());
            let (small, large) = (&mut self.small[..self.written], &mut self.large);
            for ((d, &s), l) in small.iter_mut().zip(&other.small).zip(large.iter_mut()) {
                if self.set {
                    *d |= s;
                    continue;
                }
                let sum = u64::from(*d) + u64::from(s);
                match u32::try_from(sum) {
                    Ok(v) if v <= SMALL_LIMIT => *d = v,
                    _ => {
                        *d = 0;
                        *l += sum;
                        self.large_used = true;
                    }
                }
            }
            // Every slot is now at most SMALL_LIMIT, as right after a flush.
            self.small_bound = 0;
            self.large_pending = self.large_pending.saturating_add(other.large_pending);
            self.unknown.extend_from_slice(&other.unknown);
            if self.large_used {
                self.clamp();
            }
            return;
        }
        self.flush_small();
        self.clamp();
        other.flush_small();
        other.clamp();
        for (d, &s) in self.large.iter_mut().zip(&other.large) {
            if self.set {
                *d |= s;
            } else {
                *d += s;
            }
        }
        self.overflow |= other.overflow;
        self.unknown.extend_from_slice(&other.unknown);
        self.clamp();
    }

    /// The counts, saturated as Go's.
    pub fn finish(mut self) -> Merged {
        if !self.large_used {
            // Every sum is in `small`, at most SMALL_LIMIT: already final.
            return Merged {
                counts: self.small,
                overflow: self.overflow,
            };
        }
        self.flush_small();
        self.clamp();
        Merged {
            counts: self.large.iter().map(|&c| c as u32).collect(),
            overflow: self.overflow,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads' small sums, each above SMALL_LIMIT (one-byte values may
    /// take a slot there), combine without wrapping: Go's saturated sum
    /// and its overflow flag.
    #[test]
    fn combining_large_small_sums_saturates_as_go() {
        let layout = Layout {
            package_start: vec![0, 1],
            functions: vec![(0, 3)],
            slots: 3,
            expected: Expectations::default(),
            listed_at: Vec::new(),
        };
        let tally = |small: Vec<u32>| Tally {
            written: small.len(),
            small,
            small_bound: u64::from(SMALL_LIMIT),
            ..Tally::new(&layout, CounterMode::Count)
        };
        let mut a = tally(vec![SMALL_LIMIT + 100, 5, SMALL_LIMIT]);
        a.combine(tally(vec![SMALL_LIMIT, 7, 1]));
        let merged = a.finish();
        assert_eq!(merged.counts, vec![u32::MAX, 12, SMALL_LIMIT + 1]);
        assert!(merged.overflow);
    }

    /// Packages of 2 and 3 functions; function sizes 2, 0, 1, 3, 2.
    fn five_functions() -> Layout {
        Layout {
            package_start: vec![0, 2, 5],
            functions: vec![(0, 2), (2, 0), (2, 1), (3, 3), (6, 2)],
            slots: 8,
            expected: Expectations::default(),
            listed_at: Vec::new(),
        }
    }

    /// Slots numbered in a file's order cover every slot once, keep each
    /// function's size, and give its counts back in meta-data order;
    /// listed functions the meta-data lacks, or listed twice, change
    /// nothing.
    #[test]
    fn listed_order_moves_counts_back() {
        let meta = five_functions();
        let listed = [(1, 2), (0, 0), (7, 0), (1, 2), (0, 9), (1, 0)];
        let moved = meta.in_listed_order(listed);
        assert_eq!(
            moved.functions,
            vec![(2, 2), (5, 0), (4, 1), (5, 3), (0, 2)]
        );
        let mut slots: Vec<usize> = moved
            .functions
            .iter()
            .flat_map(|&(s, n)| s as usize..(s + n) as usize)
            .collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..8).collect::<Vec<_>>());
        // Each slot holds 10 * function + block, added through `moved`.
        let mut counts = vec![0; 8];
        for (i, &(_, n)) in meta.functions.iter().enumerate() {
            let (package, function) = if i < 2 { (0, i) } else { (1, i - 2) };
            let (start, len) = moved.function(package, function as u32).unwrap_or_default();
            assert_eq!(len, n as usize);
            for (k, c) in counts[start..start + len].iter_mut().enumerate() {
                *c = (10 * i + k) as u32;
            }
        }
        assert_eq!(
            moved.counts_in(&meta, counts),
            vec![0, 1, 20, 30, 31, 32, 40, 41]
        );
        assert_eq!(meta.counts_in(&meta, vec![7; 8]), vec![7; 8]);
        // The listed functions are expected in that order, each with its
        // place there.
        let place = |start, len, listed| Some(Place { start, len, listed });
        assert_eq!(moved.place(1, 2), place(0, 2, Some(0)));
        assert_eq!(moved.place(0, 0), place(2, 2, Some(1)));
        assert_eq!(moved.place(1, 0), place(4, 1, Some(2)));
        assert_eq!(moved.place(1, 1), place(5, 3, None));
        assert_eq!(moved.place(0, 2), None);
        assert_eq!(moved.expected.len(), 3);
    }

    /// A file merged through the listed layout's forecast (in order, out
    /// of order, one function missing, values of one and two bytes) counts
    /// what a merge in meta-data order counts. Each file lists its entries
    /// four times over: the fast path wants 40 bytes of file ahead.
    #[test]
    fn forecast_merge_counts_as_meta_order() -> Result<(), Corruption> {
        use crate::decode_counters::{Flavor, open};
        use crate::encode::{CounterEntry, Segment, encode_counters};
        let meta = five_functions();
        let moved = meta.in_listed_order([(1, 2), (0, 0), (1, 0), (1, 1)]);
        let entry = |package, function, counters: &[u32]| CounterEntry {
            package,
            function,
            counters: counters.to_vec(),
        };
        let files = [
            vec![
                entry(1, 2, &[1, 2]),
                entry(0, 0, &[3, 4]),
                entry(1, 0, &[5]),
            ],
            vec![
                entry(0, 0, &[300, 4]),
                entry(1, 1, &[1, 2, 3]),
                entry(1, 2, &[9, 9]),
            ],
            vec![
                entry(1, 2, &[1, 1]),
                entry(1, 0, &[7]),
                entry(1, 1, &[4, 5, 6]),
            ],
        ];
        let mut in_meta = Tally::new(&meta, CounterMode::Count);
        let mut listed = Tally::new(&moved, CounterMode::Count);
        for entries in files {
            let segment = Segment {
                entries: [&entries[..]; 4].concat(),
                ..Segment::default()
            };
            let bytes = encode_counters([0; 16], Flavor::Uleb128, &[segment]);
            in_meta.add_file(&meta, &mut open(&bytes)?)?;
            listed.add_file(&moved, &mut open(&bytes)?)?;
        }
        let want = in_meta.finish().counts;
        assert_eq!(want, [303, 8, 12, 5, 7, 9, 11, 12].map(|c| 4 * c));
        assert_eq!(moved.counts_in(&meta, listed.finish().counts), want);
        Ok(())
    }

    /// One-byte values are bounded per function entry, not per byte: a
    /// file listing one function ten times adds up to 10 * 127 to a slot.
    /// With less headroom than that left, `small` is moved out first (it
    /// would wrap otherwise); with exactly that much, the sum stays put.
    #[test]
    fn one_byte_values_are_bounded_per_function_entry() -> Result<(), Corruption> {
        use crate::decode_counters::{Flavor, open};
        use crate::encode::{CounterEntry, Segment, encode_counters};
        let layout = Layout {
            package_start: vec![0, 1],
            functions: vec![(0, 2)],
            slots: 2,
            expected: Expectations::default(),
            listed_at: Vec::new(),
        };
        let entry = CounterEntry {
            package: 0,
            function: 0,
            counters: vec![127, 1],
        };
        let segment = Segment {
            entries: vec![entry; 10],
            ..Segment::default()
        };
        let bytes = encode_counters([0; 16], Flavor::Uleb128, &[segment]);
        let headroom = 10 * 127;
        // In meta-data order and through a forecast.
        let listed = layout.in_listed_order([(0, 0)]);
        for (layout, (bound, want)) in [&layout, &listed].into_iter().flat_map(|l| {
            [
                // The slot may already hold SMALL_LIMIT from longer values
                // plus `bound` from one-byte ones: the first sum is 2^32.
                (SMALL_LIMIT - headroom + 2, u32::MAX),
                (SMALL_LIMIT - headroom, u32::MAX - 1),
            ]
            .map(|case| (l, case))
        }) {
            let mut tally = Tally {
                small: vec![SMALL_LIMIT + bound, 0],
                written: 1,
                small_bound: u64::from(bound),
                ..Tally::new(layout, CounterMode::Count)
            };
            tally.add_file(layout, &mut open(&bytes)?)?;
            let merged = tally.finish();
            assert_eq!(merged.counts, vec![want, 10], "bound {bound}");
            assert_eq!(merged.overflow, want == u32::MAX, "bound {bound}");
        }
        Ok(())
    }
}

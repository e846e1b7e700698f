//! The merged coverage of a single binary (one meta-data file: the usual
//! case) without building a [`Profile`]: the counts stay in one flat
//! vector, one per block, and a package is read and decoded from the
//! meta-data file only when a report asks for it. A report then holds one
//! package at a time instead of all ~100k blocks with their names, and
//! not even the meta-data file while counter files merge (for `percent` on
//! the bench's data that was most of the peak memory and a third of the
//! time).

use std::collections::hash_map::Entry;
use std::fs::File;
use std::hash::Hasher;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::decode_meta::UnitPos;
use crate::decode_meta::{self, FILE_HEADER_SIZE, MetaPackage, Outline, Shape};
use crate::error::Error;
use crate::format;
use crate::merge::counters::Layout;
use crate::merge::groups;
use crate::model::{CounterMode, Granularity, Package, Packages, Profile, Statements, Unit};
use crate::pkgpattern::PkgFilter;

/// One binary's merged coverage; see the module doc.
#[derive(Debug)]
pub struct OneBinary {
    /// The meta-data file, open; packages are read from it on demand.
    file: File,
    path: PathBuf,
    mode: CounterMode,
    granularity: Granularity,
    /// The packages selected, in import-path order.
    order: Vec<Selected>,
    /// Merged counts, one per block, in meta-data order.
    counts: Vec<u32>,
    statements: SlotStatements,
}

/// A package of the meta-data file: where its blob is, a checksum of the
/// blob as checked, its first slot.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    path: String,
    blob: Range<usize>,
    checksum: u64,
    first_slot: usize,
    slots: usize,
    /// No two blocks of a function start alike and no function appears
    /// twice: no blocks collapse, so the statements of its slots are the
    /// package's (what `percent` needs, without decoding it again).
    plain: bool,
}

/// A meta-data file, open, read one package blob at a time.
#[derive(Debug)]
pub(crate) struct MetaSource {
    file: File,
    path: PathBuf,
    outline: Outline,
}

/// What [`MetaSource::index`] learns of a meta-data file.
#[derive(Debug)]
pub(crate) struct Index {
    order: Vec<Selected>,
    statements: SlotStatements,
}

/// Statements per slot: one byte each, larger counts (rare) on the side.
#[derive(Debug, Default)]
struct SlotStatements {
    small: Vec<u8>,
    wide: FxHashMap<usize, u32>,
}

impl SlotStatements {
    fn push(&mut self, n: u32) {
        match u8::try_from(n) {
            Ok(b) if b != u8::MAX => self.small.push(b),
            _ => {
                self.wide.insert(self.small.len(), n);
                self.small.push(u8::MAX);
            }
        }
    }
    fn get(&self, slot: usize) -> u32 {
        match self.small.get(slot) {
            Some(&u8::MAX) => self.wide.get(&slot).copied().unwrap_or(0),
            Some(&b) => u32::from(b),
            None => 0,
        }
    }
}

impl MetaSource {
    /// Open the meta-data file at `path` and read its outline and
    /// [`Shape`]. `Ok(None)` for anything out of place: the general path
    /// then reads the file whole and reports the damage as Go would.
    pub(crate) fn open(path: &Path) -> Result<Option<(Self, Shape)>, Error> {
        let io = |e| Error::io(path, e);
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut buf = vec![0; FILE_HEADER_SIZE];
        if read_at(&file, &mut buf, 0).is_err() {
            return Ok(None);
        }
        let Some(n) = decode_meta::outline_len(&buf).filter(|&n| n <= len) else {
            return Ok(None);
        };
        buf.resize(n as usize, 0);
        read_at(&file, &mut buf, 0).map_err(io)?;
        let Ok(outline) = decode_meta::outline(&buf, len as usize) else {
            return Ok(None);
        };
        let mut source = MetaSource {
            file,
            path: path.to_path_buf(),
            outline,
        };
        let mut units = Vec::with_capacity(source.outline.blobs.len());
        for i in 0..source.outline.blobs.len() {
            source.read(i, &mut buf).map_err(io)?;
            let Some(u) = decode_meta::package_shape(&buf) else {
                return Ok(None);
            };
            units.push(u);
        }
        let shape = Shape {
            mode: source.outline.mode,
            granularity: source.outline.granularity,
            units,
        };
        Ok(Some((source, shape)))
    }

    /// Read package blob `i` into `buf`.
    fn read(&mut self, i: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        let blob = &self.outline.blobs[i];
        buf.clear();
        buf.resize(blob.len(), 0);
        read_at(&self.file, buf, blob.start as u64)
    }

    /// Check every package as [`decode_meta::decode`] does (one at a time,
    /// so little is held) and list those `filter` selects, in import-path
    /// order. `Ok(None)` when this view does not apply: the counters were
    /// laid out differently, or an import path appears twice (only in a
    /// crafted file; the general path merges such packages).
    pub(crate) fn index(
        &mut self,
        layout: &Layout,
        filter: Option<&PkgFilter>,
    ) -> Result<Option<Index>, Error> {
        let mut order = Vec::new();
        let mut slot = 0usize;
        let mut buf = Vec::new();
        let mut pkg = MetaPackage::default();
        let mut units = Vec::new();
        let mut statements = SlotStatements::default();
        let (mut starts, mut all_starts) = (Vec::new(), Vec::new());
        for i in 0..self.outline.blobs.len() {
            self.read(i, &mut buf)
                .map_err(|e| Error::io(&self.path, e))?;
            let blob = self.outline.blobs[i].clone();
            // The blocks of each function, as the counters were laid out.
            let (mut fits, mut functions, mut blocks) = (true, 0u32, 0usize);
            let mut plain = true;
            // Sized from the package header's function count (a hint).
            let hint = buf
                .get(40..44)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            let mut keys: FxHashMap<_, Range<usize>> =
                FxHashMap::with_capacity_and_hasher(hint.min(buf.len() / 4), Default::default());
            let mut repeated: FxHashMap<_, Vec<u64>> = FxHashMap::default();
            all_starts.clear();
            decode_meta::walk_package(&buf, blob.start as u64, &mut pkg, &mut units, |f| {
                fits &= layout.function(i as u32, functions).map(|(_, n)| n) == Some(f.units.len());
                functions += 1;
                blocks += f.units.len();
                for u in f.units {
                    statements.push(u.statements);
                }
                if !f.units.is_empty() {
                    // A function seen again (several `init`s of a file) is
                    // merged with the first: their blocks together must
                    // start apart.
                    let at = all_starts.len();
                    all_starts.extend(f.units.iter().map(groups::Start::start));
                    match keys.entry((f.file, f.name, f.literal)) {
                        Entry::Vacant(e) => {
                            e.insert(at..all_starts.len());
                            plain &= groups::distinct_starts(f.units, &mut starts);
                        }
                        Entry::Occupied(e) => {
                            let merged = repeated
                                .entry(*e.key())
                                .or_insert_with(|| all_starts[e.get().clone()].to_vec());
                            merged.extend_from_slice(&all_starts[at..]);
                            plain &= groups::distinct_starts(merged, &mut starts);
                        }
                    }
                }
                Ok(())
            })
            .map_err(|c| Error::corrupt(&self.path, c))?;
            drop((keys, repeated));
            if !fits || layout.function(i as u32, functions).is_some() {
                return Ok(None);
            }
            let first_slot = slot;
            slot += blocks;
            if filter.is_none_or(|f| f.matches(&pkg.path)) {
                order.push(Selected {
                    path: pkg.path.clone(),
                    checksum: checksum(&buf),
                    blob,
                    first_slot,
                    slots: blocks,
                    plain,
                });
            }
        }
        order.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        if order.windows(2).any(|w| w[0].path == w[1].path) {
            return Ok(None);
        }
        Ok(Some(Index { order, statements }))
    }
}

fn checksum(blob: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(blob);
    h.finish()
}

impl OneBinary {
    /// A meta-data file whose packages [`MetaSource::index`] checked,
    /// and its merged counts (one per slot of the layout `index` accepted).
    pub(crate) fn new(source: MetaSource, index: Index, counts: Vec<u32>) -> Self {
        OneBinary {
            file: source.file,
            path: source.path,
            mode: source.outline.mode,
            granularity: source.outline.granularity,
            order: index.order,
            counts,
            statements: index.statements,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn changed(&self) -> Error {
        Error::Changed {
            path: self.path.clone(),
        }
    }

    /// Read package blob `s` again into `buf`: the bytes
    /// [`MetaSource::index`] checked, or an error if the file changed since.
    fn blob(&self, s: &Selected, buf: &mut Vec<u8>) -> Result<(), Error> {
        buf.clear();
        buf.resize(s.blob.len(), 0);
        read_at(&self.file, buf, s.blob.start as u64).map_err(|_| self.changed())?;
        if checksum(buf) != s.checksum {
            return Err(self.changed());
        }
        Ok(())
    }

    /// Read and decode one package again into `out`.
    fn package(&self, s: &Selected, scratch: &mut Scratch, out: &mut Package) -> Result<(), Error> {
        self.blob(s, &mut scratch.buf)?;
        let set = self.mode == CounterMode::Set;
        let base = s.blob.start as u64;
        groups::single_package(
            &scratch.buf,
            base,
            s.first_slot,
            &self.counts,
            set,
            s.plain,
            out,
            &mut scratch.single,
        )
        .map_err(|_| self.changed())
    }

    /// [`Packages::blocks`] of a plain package straight from its blob: no
    /// [`Package`] is built, and a block is sorted as one packed integer
    /// with its slot. `Ok(false)` (nothing visited) where that does not
    /// apply: a package whose keys do not fit 64 bits, or with two blocks
    /// at the same place (their order needs the function names).
    fn plain_blocks(
        &self,
        s: &Selected,
        scratch: &mut Scratch,
        visit: &mut dyn FnMut(&str, &Unit) -> io::Result<()>,
    ) -> io::Result<bool> {
        self.blob(s, &mut scratch.buf).map_err(io::Error::other)?;
        let Scratch {
            buf,
            head,
            units,
            blocks,
            keyed,
            ..
        } = scratch;
        blocks.clear();
        decode_meta::walk_package(buf, s.blob.start as u64, head, units, |f| {
            blocks.extend(f.units.iter().map(|u| (f.file_index, *u)));
            Ok(())
        })
        .map_err(|_| io::Error::other(self.changed()))?;
        // Files ranked by name, through their string-table index.
        let mut files: Vec<u32> = blocks.iter().map(|&(f, _)| f).collect();
        files.sort_unstable();
        files.dedup();
        files.sort_unstable_by_key(|&f| head.strings.get(f));
        let mut rank = vec![0u32; head.strings.len()];
        for (r, &f) in files.iter().enumerate() {
            rank[f as usize] = r as u32;
        }
        let fields = |&(f, ref u): &(u32, UnitPos)| format::key_fields(rank[f as usize], u);
        let max = blocks
            .iter()
            .map(fields)
            .fold([0u32; 6], |m, k| std::array::from_fn(|i| m[i].max(k[i])));
        let Some(packer) = format::KeyPacker::new(max) else {
            return Ok(false);
        };
        keyed.clear();
        keyed.extend(
            blocks
                .iter()
                .enumerate()
                .map(|(k, b)| (packer.pack(fields(b)), k as u32)),
        );
        // A radix sort: the keys are integers of a few dozen bits, and a
        // package of the standard library has thousands of blocks
        // (a third fewer instructions than a comparison sort here).
        radsort::sort_by_key(keyed, |&(key, _)| key);
        if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
            return Ok(false);
        }
        let set = self.mode == CounterMode::Set;
        for &(key, k) in keyed.iter() {
            let [r, start_line, end_line, start_col, end_col, statements] = packer.unpack(key);
            let count = self
                .counts
                .get(s.first_slot + k as usize)
                .copied()
                .unwrap_or(0);
            let unit = Unit {
                start_line,
                start_col,
                end_line,
                end_col,
                statements,
                count: if set { u32::from(count != 0) } else { count },
            };
            visit(head.strings.get(files[r as usize]), &unit)?;
        }
        Ok(true)
    }

    /// Every package in memory, as a [`Profile`] (for the reports that
    /// need them all at once). With enough blocks and two cores, the second
    /// half of the packages is decoded on another thread.
    pub fn to_profile(&self) -> Result<Profile, Error> {
        let decode = |order: &[Selected]| -> Result<Vec<Package>, Error> {
            let mut scratch = Scratch::default();
            order
                .iter()
                .map(|s| {
                    let mut p = Package::default();
                    self.package(s, &mut scratch, &mut p).map(|()| p)
                })
                .collect()
        };
        let sizes = || self.order.iter().map(|s| s.slots);
        if !format::split::worth_it(sizes().sum()) {
            return Ok(self.profile_of(decode(&self.order)?));
        }
        let cut = format::split::half(sizes());
        let (first, second) =
            format::split::halves(self.order.len(), cut, |r| decode(&self.order[r]));
        let mut packages = first?;
        packages.extend(second.transpose()?.unwrap_or_default());
        Ok(self.profile_of(packages))
    }

    fn profile_of(&self, packages: Vec<Package>) -> Profile {
        Profile {
            mode: self.mode,
            granularity: self.granularity,
            packages,
        }
    }
}

/// Buffers reused from one package to the next.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    single: groups::SingleScratch,
    head: MetaPackage,
    units: Vec<UnitPos>,
    /// A plain package's blocks with their file, in slot order.
    blocks: Vec<(u32, UnitPos)>,
    /// Their sort keys and slots.
    keyed: Vec<(u64, u32)>,
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

impl Packages for OneBinary {
    fn mode(&self) -> CounterMode {
        self.mode
    }
    fn for_each(
        &self,
        visit: &mut dyn FnMut(&Package) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut scratch = Scratch::default();
        let mut package = Package::default();
        for s in &self.order {
            self.package(s, &mut scratch, &mut package)
                .map_err(io::Error::other)?;
            visit(&package)?;
        }
        Ok(())
    }

    fn sizes(&self) -> Vec<usize> {
        self.order.iter().map(|s| s.slots).collect()
    }

    /// Plain packages from their blobs, the others through [`Package`].
    fn blocks(
        &self,
        range: Range<usize>,
        visit: &mut dyn FnMut(&str, &Unit) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut scratch = Scratch::default();
        let mut package = Package::default();
        let n = self.order.len();
        for s in &self.order[range.start.min(n)..range.end.min(n)] {
            if s.plain && self.plain_blocks(s, &mut scratch, visit)? {
                continue;
            }
            self.package(s, &mut scratch, &mut package)
                .map_err(io::Error::other)?;
            for (f, u) in format::sorted_units(&package) {
                visit(&f.file, u)?;
            }
        }
        Ok(())
    }

    /// Plain packages from the slots' statements and counts, without
    /// decoding them again.
    fn statements(
        &self,
        visit: &mut dyn FnMut(&str, Statements) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut scratch = Scratch::default();
        let mut package = Package::default();
        for s in &self.order {
            if s.plain {
                let mut st = Statements::default();
                for slot in s.first_slot..s.first_slot + s.slots {
                    let n = u64::from(self.statements.get(slot));
                    st.total += n;
                    if self.counts.get(slot).is_some_and(|&c| c != 0) {
                        st.covered += n;
                    }
                }
                visit(&s.path, st)?;
            } else {
                self.package(s, &mut scratch, &mut package)
                    .map_err(io::Error::other)?;
                visit(&package.path, package.statements())?;
            }
        }
        Ok(())
    }
}

/// What a load produced: all packages in memory, or one binary's data
/// decoded package by package.
#[derive(Debug)]
pub enum Coverage {
    Profile(Profile),
    OneBinary(OneBinary),
}

impl Coverage {
    /// Every package in memory. Fails only if a meta-data file changed
    /// while it was being read.
    pub fn into_profile(self) -> Result<Profile, Error> {
        match self {
            Coverage::Profile(p) => Ok(p),
            Coverage::OneBinary(o) => o.to_profile(),
        }
    }

    /// [`Coverage::into_profile`], keeping this view (other threads may
    /// still be reading it).
    pub fn as_profile(&self) -> Result<std::borrow::Cow<'_, Profile>, Error> {
        match self {
            Coverage::Profile(p) => Ok(std::borrow::Cow::Borrowed(p)),
            Coverage::OneBinary(o) => o.to_profile().map(std::borrow::Cow::Owned),
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
    fn statements(
        &self,
        visit: &mut dyn FnMut(&str, Statements) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Coverage::Profile(p) => Packages::statements(p, visit),
            Coverage::OneBinary(o) => o.statements(visit),
        }
    }
    fn sizes(&self) -> Vec<usize> {
        match self {
            Coverage::Profile(p) => p.sizes(),
            Coverage::OneBinary(o) => o.sizes(),
        }
    }
    fn blocks(
        &self,
        range: Range<usize>,
        visit: &mut dyn FnMut(&str, &Unit) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Coverage::Profile(p) => p.blocks(range, visit),
            Coverage::OneBinary(o) => o.blocks(range, visit),
        }
    }
}

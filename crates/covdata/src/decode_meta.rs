//! Step 1 of the data flow: decode a meta-data file (`covmeta.<hash>`), the
//! static description of every instrumented package, function and block of
//! one binary.
//!
//! Layout (little-endian), from Go's `internal/coverage` (defs.go,
//! decodemeta): a 56-byte file header, a u64 offset and a u64 length per
//! package, a file-level string table, then one self-contained blob per
//! package (44-byte header, u32 offset per function, string table,
//! functions encoded as ULEB128 values).

use crate::error::{Corruption, CorruptionKind};
use crate::model::{CounterMode, Granularity};
use crate::reader::{Reader, StringTable};

pub const META_MAGIC: [u8; 4] = [0x00, 0x63, 0x76, 0x6d];
pub const META_VERSION: u32 = 1;
pub const FILE_HEADER_SIZE: usize = 56;
pub const PACKAGE_HEADER_SIZE: usize = 44;

/// One decoded meta-data file.
#[derive(Debug, Clone)]
pub struct MetaFile {
    pub hash: [u8; 16],
    pub mode: CounterMode,
    pub granularity: Granularity,
    pub packages: Vec<MetaPackage>,
}

/// One package of a meta-data file. Function names and files are indices
/// into `strings`, units of all functions live in one flat `units` vector.
#[derive(Debug, Clone, Default)]
pub struct MetaPackage {
    pub path: String,
    pub name: String,
    pub module_path: String,
    pub hash: [u8; 16],
    /// The package's string table (function names and files).
    pub strings: Strings,
    pub functions: Vec<MetaFunction>,
    pub units: Vec<UnitPos>,
}

/// A function of a [`MetaPackage`].
#[derive(Debug, Clone, Copy)]
pub struct MetaFunction {
    pub name: u32,
    pub file: u32,
    pub literal: bool,
    /// Range into [`MetaPackage::units`].
    pub units_start: u32,
    pub units_len: u32,
}

/// Where a coverable block is and how many statements it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitPos {
    pub start_line: u32,
    pub start_col: u32,
    pub end_line: u32,
    pub end_col: u32,
    pub statements: u32,
}

/// A string table in one allocation (a package has thousands of names).
#[derive(Debug, Clone, Default)]
pub struct Strings {
    text: String,
    ends: Vec<u32>,
}

impl Strings {
    /// Replace the contents with `entries` (keeping the allocations).
    fn fill(&mut self, entries: &[&[u8]]) {
        // Names are nearly always valid UTF-8 (ASCII, in fact): copied as
        // they are and checked in one go, not one call per name. Valid
        // text cut only at character boundaries is valid piece by piece.
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        bytes.clear();
        self.ends.clear();
        bytes.reserve(entries.iter().map(|e| e.len()).sum());
        self.ends.reserve(entries.len());
        for e in entries {
            bytes.extend_from_slice(e);
            self.ends.push(bytes.len() as u32);
        }
        let bytes = match String::from_utf8(bytes) {
            Ok(text) if self.ends.iter().all(|&e| text.is_char_boundary(e as usize)) => {
                self.text = text;
                return;
            }
            Ok(text) => text.into_bytes(),
            Err(e) => e.into_bytes(),
        };
        // Some name is not UTF-8: each is repaired on its own, as before.
        let mut text = String::with_capacity(bytes.len());
        self.ends.clear();
        for e in entries {
            text.push_str(&String::from_utf8_lossy(e));
            self.ends.push(text.len() as u32);
        }
        self.text = text;
    }

    /// Entry `i`; callers pass indices validated at decode time.
    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0) as usize
        };
        self.text.get(start..end).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl MetaPackage {
    pub fn function_name(&self, f: &MetaFunction) -> &str {
        self.strings.get(f.name)
    }
    pub fn function_file(&self, f: &MetaFunction) -> &str {
        self.strings.get(f.file)
    }
    pub fn function_units(&self, f: &MetaFunction) -> &[UnitPos] {
        let s = f.units_start as usize;
        &self.units[s..s + f.units_len as usize]
    }
}

pub(crate) fn counter_mode(v: u8) -> Option<CounterMode> {
    Some(match v {
        1 => CounterMode::Set,
        2 => CounterMode::Count,
        3 => CounterMode::Atomic,
        4 => CounterMode::RegOnly,
        5 => CounterMode::TestMain,
        _ => return None,
    })
}

pub(crate) fn granularity(v: u8) -> Option<Granularity> {
    Some(match v {
        1 => Granularity::PerBlock,
        2 => Granularity::PerFunc,
        _ => return None,
    })
}

/// What merging counter files needs from a meta-data file, read without
/// decoding it all: the counter mode, the granularity, and per package
/// each function's block count. [`shape`] reads these fields exactly as
/// [`decode`] does, so wherever `decode` succeeds the two agree.
#[derive(Debug, Clone)]
pub struct Shape {
    pub mode: CounterMode,
    pub granularity: Granularity,
    /// Per package, per function: the number of blocks.
    pub units: Vec<Vec<u32>>,
}

/// The [`Shape`] of a meta-data file, a small fraction of the work of
/// [`decode`] (so counter files can be merged while `decode` runs).
/// `None` for anything out of place: callers then rely on `decode`, which
/// reports the damage.
pub fn shape(buf: &[u8]) -> Option<Shape> {
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            buf.get(at..at.checked_add(8)?)?.try_into().ok()?,
        ))
    };
    if buf.get(..4)? != META_MAGIC {
        return None;
    }
    let mode = counter_mode(*buf.get(48)?)?;
    let granularity = granularity(*buf.get(49)?)?;
    let entries = usize::try_from(u64_at(16)?).ok()?;
    if entries > buf.len().saturating_sub(FILE_HEADER_SIZE) / 16 {
        return None;
    }
    let mut units = Vec::with_capacity(entries);
    for i in 0..entries {
        let off = usize::try_from(u64_at(FILE_HEADER_SIZE + 8 * i)?).ok()?;
        let len = usize::try_from(u64_at(FILE_HEADER_SIZE + 8 * (entries + i))?).ok()?;
        units.push(package_shape(buf.get(off..off.checked_add(len)?)?)?);
    }
    Some(Shape {
        mode,
        granularity,
        units,
    })
}

/// A package blob's part of [`Shape::units`]: per function, the number of
/// blocks (`None` where [`decode_package`] would fail on them).
pub fn package_shape(blob: &[u8]) -> Option<Vec<u32>> {
    let mut r = Reader::new(blob, 0);
    r.seek(40, "").ok()?;
    let num_funcs = r.u32_le("").ok()? as usize;
    if num_funcs > blob.len() / 4 {
        return None;
    }
    let mut counts = Vec::with_capacity(num_funcs);
    for f in 0..num_funcs {
        r.seek(PACKAGE_HEADER_SIZE + 4 * f, "").ok()?;
        let foff = r.u32_le("").ok()? as usize;
        r.seek(foff, "").ok()?;
        let n = r.uleb32("").ok()?;
        // As in `decode`: each block takes at least five bytes (and this
        // bounds what callers allocate for counters).
        if n as usize > r.remaining() / 5 {
            return None;
        }
        counts.push(n);
    }
    Some(counts)
}

/// How many bytes from the start of a meta-data file [`outline`] reads,
/// from the first [`FILE_HEADER_SIZE`] bytes (`None` if they are not a
/// meta-data file header).
pub fn outline_len(header: &[u8]) -> Option<u64> {
    if header.get(..4)? != META_MAGIC {
        return None;
    }
    let entries = u64::from_le_bytes(header.get(16..24)?.try_into().ok()?);
    let strtab_len = u32::from_le_bytes(header.get(44..48)?.try_into().ok()?);
    (FILE_HEADER_SIZE as u64)
        .checked_add(entries.checked_mul(16)?)?
        .checked_add(u64::from(strtab_len))
}

/// A meta-data file's header, checked, and where its package blobs are.
#[derive(Debug, Clone)]
pub struct Outline {
    pub hash: [u8; 16],
    pub mode: CounterMode,
    pub granularity: Granularity,
    /// Per package: the blob's byte range in the file.
    pub blobs: Vec<std::ops::Range<usize>>,
}

/// Decode a whole meta-data file. Checks what Go checks (magic, version,
/// offsets against the total length) plus everything Go would panic on.
pub fn decode(buf: &[u8]) -> Result<MetaFile, Corruption> {
    let outline = outline(buf, buf.len())?;
    let mut packages = Vec::with_capacity(outline.blobs.len());
    for blob in &outline.blobs {
        packages.push(decode_package(&buf[blob.clone()], blob.start as u64)?);
    }
    Ok(MetaFile {
        hash: outline.hash,
        mode: outline.mode,
        granularity: outline.granularity,
        packages,
    })
}

/// The file-level part of [`decode`]: the header, the package offsets and
/// lengths, the file string table; packages are then decoded one at a time
/// with [`decode_package`]. `buf` may be just the start of a file of
/// `file_len` bytes, as long as it holds those parts ([`outline_len`]).
pub fn outline(buf: &[u8], file_len: usize) -> Result<Outline, Corruption> {
    let mut r = Reader::new(buf, 0);
    if r.bytes(4, "meta-data file header")? != META_MAGIC {
        return Err(Corruption::new(0, CorruptionKind::BadMagic("meta-data")));
    }
    let version = r.u32_le("meta-data file header")?;
    if version > META_VERSION {
        return Err(Corruption::new(
            4,
            CorruptionKind::UnsupportedVersion {
                found: version,
                known: META_VERSION,
            },
        ));
    }
    let total_len = r.u64_le("meta-data file header")?;
    let entries = r.u64_le("meta-data file header")?;
    let hash = r.array16("meta-data file header")?;
    let _strtab_offset = r.u32_le("meta-data file header")?;
    let strtab_len = r.u32_le("meta-data file header")?;
    let mode_at = r.offset();
    let mode_byte = r.u8("meta-data file header")?;
    let gran_byte = r.u8("meta-data file header")?;
    r.bytes(6, "meta-data file header")?;
    let mode = counter_mode(mode_byte).ok_or(Corruption::new(
        mode_at,
        CorruptionKind::UnknownCounterMode(mode_byte),
    ))?;
    let granularity = granularity(gran_byte).ok_or(Corruption::new(
        mode_at + 1,
        CorruptionKind::UnknownGranularity(gran_byte),
    ))?;

    // 16 bytes of offset+length per package must fit in the file.
    let room = (file_len.saturating_sub(r.pos())) as u64 / 16;
    if entries > room {
        return Err(Corruption::new(
            24,
            CorruptionKind::OutOfRange {
                what: "package count",
                value: entries,
                limit: room,
            },
        ));
    }
    let mut offsets = Vec::with_capacity(entries as usize);
    for _ in 0..entries {
        let at = r.offset();
        let off = r.u64_le("package offsets")?;
        if off > total_len {
            return Err(Corruption::new(
                at,
                CorruptionKind::OutOfRange {
                    what: "package offset",
                    value: off,
                    limit: total_len,
                },
            ));
        }
        offsets.push(off);
    }
    let mut lengths = Vec::with_capacity(entries as usize);
    for _ in 0..entries {
        let at = r.offset();
        let len = r.u64_le("package lengths")?;
        if len > total_len {
            return Err(Corruption::new(
                at,
                CorruptionKind::OutOfRange {
                    what: "package length",
                    value: len,
                    limit: total_len,
                },
            ));
        }
        lengths.push(len);
    }
    // The file-level string table is read (Go does) but carries nothing used.
    let st_at = r.offset();
    let st = r.bytes(strtab_len as usize, "file string table")?;
    StringTable::read(&mut Reader::new(st, st_at))?;

    let mut blobs = Vec::with_capacity(entries as usize);
    for (i, (&off, &len)) in offsets.iter().zip(&lengths).enumerate() {
        let end = off.saturating_add(len);
        let blob = usize::try_from(off)
            .ok()
            .zip(usize::try_from(end).ok())
            .filter(|&(s, e)| s <= e && e <= file_len)
            .ok_or(Corruption::new(
                FILE_HEADER_SIZE as u64 + 8 * (entries + i as u64),
                CorruptionKind::OutOfRange {
                    what: "package end",
                    value: end,
                    limit: file_len as u64,
                },
            ))?;
        blobs.push(blob.0..blob.1);
    }
    Ok(Outline {
        hash,
        mode,
        granularity,
        blobs,
    })
}

/// The package blobs of a meta-data file `buf` that decoded as `meta`.
pub(crate) fn package_blobs(buf: &[u8], meta: &MetaFile) -> Vec<Vec<u8>> {
    let n = meta.packages.len();
    let u64_at = |at: usize| -> usize {
        buf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u64::from_le_bytes(b) as usize)
    };
    (0..n)
        .map(|i| {
            let off = u64_at(FILE_HEADER_SIZE + 8 * i);
            let len = u64_at(FILE_HEADER_SIZE + 8 * (n + i));
            buf.get(off..off.saturating_add(len))
                .unwrap_or_default()
                .to_vec()
        })
        .collect()
}

/// Decode one package blob found at file offset `base`.
pub fn decode_package(blob: &[u8], base: u64) -> Result<MetaPackage, Corruption> {
    let mut p = MetaPackage::default();
    decode_package_into(blob, base, &mut p)?;
    Ok(p)
}

/// [`decode_package`] into `out`, reusing its allocations (for readers
/// that go through many packages one at a time). On error `out` holds
/// part of the package.
pub fn decode_package_into(
    blob: &[u8],
    base: u64,
    out: &mut MetaPackage,
) -> Result<(), Corruption> {
    let mut functions = std::mem::take(&mut out.functions);
    let mut units = std::mem::take(&mut out.units);
    functions.clear();
    units.clear();
    let mut scratch = Vec::new();
    let walked = walk_package(blob, base, out, &mut scratch, |f| {
        let start = units.len();
        units.extend_from_slice(f.units);
        // The flat vector is indexed with u32 (a 20 GB package).
        let len = u32::try_from(units.len()).map_err(|_| {
            Corruption::new(
                base,
                CorruptionKind::OutOfRange {
                    what: "unit count",
                    value: units.len() as u64,
                    limit: u64::from(u32::MAX),
                },
            )
        })?;
        functions.push(MetaFunction {
            name: f.name_index,
            file: f.file_index,
            literal: f.literal,
            units_start: start as u32,
            units_len: len - start as u32,
        });
        Ok(())
    });
    out.functions = functions;
    out.units = units;
    walked
}

/// One function of a package blob, as [`walk_package`] hands it out.
pub struct FunctionView<'s, 'u> {
    pub name: &'s str,
    pub file: &'s str,
    /// Indices of `name` and `file` in the package's string table.
    pub name_index: u32,
    pub file_index: u32,
    pub literal: bool,
    pub units: &'u [UnitPos],
}

/// Decode a package blob found at file offset `base` without keeping its
/// functions: the header and string table into `head` (its `functions`
/// and `units` are left as they are), then each function to `visit`, its
/// blocks decoded into `units` (a buffer reused from one to the next).
/// Checks what [`decode_package`] checks; `visit`'s error stops the walk.
pub fn walk_package<'s>(
    blob: &[u8],
    base: u64,
    head: &'s mut MetaPackage,
    units: &mut Vec<UnitPos>,
    mut visit: impl FnMut(FunctionView<'s, '_>) -> Result<(), Corruption>,
) -> Result<(), Corruption> {
    let mut r = Reader::new(blob, base);
    let length = r.u32_le("package header")?;
    let name_idx = r.u32_le("package header")?;
    let path_idx = r.u32_le("package header")?;
    let module_idx = r.u32_le("package header")?;
    let hash = r.array16("package header")?;
    r.bytes(4, "package header")?;
    let _num_strings = r.u32_le("package header")?;
    let num_funcs = r.u32_le("package header")?;

    let strtab_at = (PACKAGE_HEADER_SIZE as u64).saturating_add(4 * u64::from(num_funcs));
    let strtab_at = usize::try_from(strtab_at).unwrap_or(usize::MAX);
    r.seek(strtab_at, "package string table offset")?;
    let strtab = StringTable::read(&mut r)?;
    head.strings.fill(&strtab.entries);
    for (field, i) in [
        (&mut head.path, path_idx),
        (&mut head.name, name_idx),
        (&mut head.module_path, module_idx),
    ] {
        strtab.get(u64::from(i))?;
        field.clear();
        field.push_str(head.strings.get(i));
    }
    head.hash = hash;
    let head: &'s MetaPackage = head;
    for fidx in 0..num_funcs {
        let loc = PACKAGE_HEADER_SIZE + 4 * fidx as usize;
        r.seek(loc, "function offset table")?;
        let foff = r.u32_le("function offset table")?;
        if (foff as usize) < loc || foff > length {
            return Err(Corruption::new(
                base + loc as u64,
                CorruptionKind::OutOfRange {
                    what: "function offset",
                    value: u64::from(foff),
                    limit: u64::from(length),
                },
            ));
        }
        r.seek(foff as usize, "function offset")?;
        // Go truncates these to 32 bits before use; so do we.
        let n_units = u64::from(r.uleb32("function")?);
        let name = r.uleb32("function")?;
        let file = r.uleb32("function")?;
        for index in [name, file] {
            // Names index the package table; validate once here so the
            // accessors above can index directly.
            strtab.get(u64::from(index))?;
        }
        // Each unit takes at least five bytes.
        let remaining = (blob.len() - r.pos()) as u64 / 5;
        if n_units > remaining {
            return Err(r.err(CorruptionKind::OutOfRange {
                what: "unit count",
                value: n_units,
                limit: remaining,
            }));
        }
        units.clear();
        for _ in 0..n_units {
            let [start_line, start_col, end_line, end_col, statements] = match r.uleb32x5() {
                Some(v) => v,
                None => [
                    r.uleb32("unit")?,
                    r.uleb32("unit")?,
                    r.uleb32("unit")?,
                    r.uleb32("unit")?,
                    r.uleb32("unit")?,
                ],
            };
            units.push(UnitPos {
                start_line,
                start_col,
                end_line,
                end_col,
                statements,
            });
        }
        let literal = r.uleb("function")? != 0;
        visit(FunctionView {
            name: head.strings.get(name),
            file: head.strings.get(file),
            name_index: name,
            file_index: file,
            literal,
            units,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Strings;

    /// Names checked in one go read as names repaired one by one: valid
    /// text, a character cut between two names, and bytes that are not
    /// UTF-8.
    #[test]
    fn strings_read_as_each_name_repaired_alone() {
        let cases: [&[&[u8]]; 4] = [
            &[b"main", b"", b"caf\xc3\xa9.go"],
            &[b"caf\xc3", b"\xa9x"],
            &[b"a\xff", b"b"],
            &[],
        ];
        let mut strings = Strings::default();
        for entries in cases {
            strings.fill(entries);
            let got: Vec<&str> = (0..strings.len() as u32).map(|i| strings.get(i)).collect();
            let want: Vec<String> = entries
                .iter()
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect();
            assert_eq!(got, want, "{entries:?}");
        }
    }
}

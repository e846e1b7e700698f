//! Step 5 of the data flow: write Go-format coverage files that
//! `go tool covdata` (and this crate) read back.
//!
//! [`write_dir`] writes a [`Profile`] as one group: a `covmeta.<hash>` file
//! describing every package, function and block, and one
//! `covcounters.<hash>.<pid>.<nanotime>` file with the counts (pid 0, as
//! `go tool covdata merge` writes). Identical profiles give identical meta
//! files; files are written to a temporary name and renamed.
//!
//! Lower-level pieces ([`encode_meta`], [`encode_counters`],
//! [`counter_entries`]) let tests build unusual but valid files (raw or
//! big-endian counters, several segments).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::decode_counters::{COUNTER_MAGIC, COUNTER_VERSION, Flavor, RunArgs};
use crate::decode_meta::{FILE_HEADER_SIZE, META_MAGIC, META_VERSION, PACKAGE_HEADER_SIZE};
use crate::error::Error;
use crate::model::{Granularity, Profile};

/// FNV-1a, 128 bits, as Go's `hash/fnv.New128a` (sum in big-endian bytes).
#[derive(Clone)]
pub(crate) struct Fnv128a(u128);

impl Fnv128a {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    pub(crate) fn new() -> Self {
        Fnv128a(Self::OFFSET)
    }
    pub(crate) fn write(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
    pub(crate) fn sum(&self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let mut c = (v & 0x7f) as u8;
        v >>= 7;
        if v != 0 {
            c |= 0x80;
        }
        out.push(c);
        if v == 0 {
            break;
        }
    }
}

/// Go's `stringtab.Writer`: strings numbered in order of first lookup.
#[derive(Default)]
struct StringTab {
    index: BTreeMap<String, u32>,
    strings: Vec<String>,
}

impl StringTab {
    fn new() -> Self {
        let mut t = StringTab::default();
        t.lookup("");
        t
    }
    fn lookup(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.index.insert(s.to_string(), i);
        self.strings.push(s.to_string());
        i
    }
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        uleb(&mut out, self.strings.len() as u64);
        for s in &self.strings {
            uleb(&mut out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        out
    }
}

/// An encoded meta-data file and its hash (which names the file).
pub struct EncodedMeta {
    pub bytes: Vec<u8>,
    pub hash: [u8; 16],
}

/// Encode the meta-data of `profile`: package `i` of the profile becomes
/// package index `i`, function `j` of a package function index `j`.
pub fn encode_meta(profile: &Profile) -> EncodedMeta {
    let mut blobs = Vec::with_capacity(profile.packages.len());
    let mut file_hash = Fnv128a::new();
    for pkg in &profile.packages {
        let blob = encode_package(pkg);
        let mut h = Fnv128a::new();
        h.write(&blob);
        file_hash.write(&h.sum());
        blobs.push(blob);
    }
    // As the runtime does, the mode and granularity are part of the hash,
    // so a set-mode and a count-mode profile never share a file name.
    file_hash.write(profile.mode.as_str().as_bytes());
    file_hash.write(match profile.granularity {
        Granularity::PerBlock => b"perblock",
        Granularity::PerFunc => b"perfunc",
    });
    let hash = file_hash.sum();
    let bytes = encode_meta_file(&blobs, hash, profile.mode, profile.granularity);
    EncodedMeta { bytes, hash }
}

/// A meta-data file of some packages' blobs, named as Go's merge names it
/// (`emitMeta`: the FNV-1a hash of the blobs' FNV-1a hashes); returns the
/// bytes and that hash.
pub(crate) fn encode_selected_meta(
    blobs: &[Vec<u8>],
    mode: crate::model::CounterMode,
    granularity: Granularity,
) -> (Vec<u8>, [u8; 16]) {
    let mut file_hash = Fnv128a::new();
    for b in blobs {
        let mut h = Fnv128a::new();
        h.write(b);
        file_hash.write(&h.sum());
    }
    let hash = file_hash.sum();
    (encode_meta_file(blobs, hash, mode, granularity), hash)
}

/// A meta-data file holding the package `blobs` as they are, under `hash`
/// (Go's `encodemeta.CoverageMetaFileWriter`).
pub(crate) fn encode_meta_file(
    blobs: &[Vec<u8>],
    hash: [u8; 16],
    mode: crate::model::CounterMode,
    granularity: Granularity,
) -> Vec<u8> {
    let strtab = StringTab::new().encode();
    let n = blobs.len() as u64;
    let strtab_off = FILE_HEADER_SIZE as u64 + 16 * n;
    let preamble = strtab_off + strtab.len() as u64;
    let total = preamble + blobs.iter().map(|b| b.len() as u64).sum::<u64>();

    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&META_MAGIC);
    out.extend_from_slice(&META_VERSION.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&hash);
    out.extend_from_slice(&(strtab_off as u32).to_le_bytes());
    out.extend_from_slice(&(strtab.len() as u32).to_le_bytes());
    out.push(mode as u8);
    out.push(granularity as u8);
    out.extend_from_slice(&[0; 6]);
    let mut off = preamble;
    for b in blobs {
        out.extend_from_slice(&off.to_le_bytes());
        off += b.len() as u64;
    }
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(&strtab);
    for b in blobs {
        out.extend_from_slice(b);
    }
    out
}

fn h32(h: &mut Fnv128a, v: u32) {
    h.write(&v.to_le_bytes());
}

/// One package blob, laid out as Go's `encodemeta` builder does.
pub(crate) fn encode_package(pkg: &crate::model::Package) -> Vec<u8> {
    let mut st = StringTab::new();
    let path = st.lookup(&pkg.path);
    let name = st.lookup(&pkg.name);
    let module = st.lookup(&pkg.module_path);
    let mut h = Fnv128a::new();
    h.write(pkg.path.as_bytes());
    h.write(pkg.name.as_bytes());
    h.write(pkg.module_path.as_bytes());

    let mut funcs: Vec<Vec<u8>> = Vec::with_capacity(pkg.functions.len());
    for f in &pkg.functions {
        h.write(f.name.as_bytes());
        h.write(f.file.as_bytes());
        let mut e = Vec::with_capacity(8 + 6 * f.units.len());
        uleb(&mut e, f.units.len() as u64);
        uleb(&mut e, u64::from(st.lookup(&f.name)));
        uleb(&mut e, u64::from(st.lookup(&f.file)));
        for u in &f.units {
            for v in [
                u.start_line,
                u.start_col,
                u.end_line,
                u.end_col,
                u.statements,
            ] {
                uleb(&mut e, u64::from(v));
                h32(&mut h, v);
            }
        }
        uleb(&mut e, u64::from(f.literal));
        h32(&mut h, u32::from(f.literal));
        funcs.push(e);
    }
    let strtab = st.encode();
    let nf = funcs.len();
    let mut out = Vec::new();
    out.extend_from_slice(&[0; 4]); // length, patched below
    out.extend_from_slice(&name.to_le_bytes());
    out.extend_from_slice(&path.to_le_bytes());
    out.extend_from_slice(&module.to_le_bytes());
    out.extend_from_slice(&h.sum());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(st.strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&(nf as u32).to_le_bytes());
    let mut foff = PACKAGE_HEADER_SIZE + 4 * nf + strtab.len();
    for f in &funcs {
        out.extend_from_slice(&(foff as u32).to_le_bytes());
        foff += f.len();
    }
    out.extend_from_slice(&strtab);
    for f in &funcs {
        out.extend_from_slice(f);
    }
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// One function's counters in a counter segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterEntry {
    pub package: u32,
    pub function: u32,
    pub counters: Vec<u32>,
}

/// The counters of `profile` in the numbering of [`encode_meta`]; like the
/// runtime, functions whose counters are all zero are left out.
pub fn counter_entries(profile: &Profile) -> Vec<CounterEntry> {
    let mut v = Vec::new();
    for (pi, pkg) in profile.packages.iter().enumerate() {
        for (fi, f) in pkg.functions.iter().enumerate() {
            if f.units.iter().any(|u| u.count != 0) {
                v.push(CounterEntry {
                    package: pi as u32,
                    function: fi as u32,
                    counters: f.units.iter().map(|u| u.count).collect(),
                });
            }
        }
    }
    v
}

/// One segment of a counter file.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// Args table entries (`argc`, `argv0`, `GOOS`, …), written sorted.
    pub args: BTreeMap<String, String>,
    pub entries: Vec<CounterEntry>,
}

impl RunArgs {
    /// The args table form of these values, as Go's `merge` writes it.
    pub fn to_table(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if !self.os_args.is_empty() {
            m.insert("argc".to_string(), self.os_args.len().to_string());
            for (i, a) in self.os_args.iter().enumerate() {
                m.insert(format!("argv{i}"), a.clone());
            }
        }
        if !self.goos.is_empty() {
            m.insert("GOOS".to_string(), self.goos.clone());
        }
        if !self.goarch.is_empty() {
            m.insert("GOARCH".to_string(), self.goarch.clone());
        }
        m
    }
}

/// Encode a counter file with the given segments (normally one; readers,
/// Go's included, only read the first).
pub fn encode_counters(meta_hash: [u8; 16], flavor: Flavor, segments: &[Segment]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&COUNTER_MAGIC);
    out.extend_from_slice(&COUNTER_VERSION.to_le_bytes());
    out.extend_from_slice(&meta_hash);
    let (fl, be) = match flavor {
        Flavor::RawLittleEndian => (1u8, 0u8),
        Flavor::RawBigEndian => (1, 1),
        Flavor::Uleb128 => (2, 0),
    };
    out.push(fl);
    out.push(be);
    out.extend_from_slice(&[0; 6]);
    for (n, seg) in segments.iter().enumerate() {
        let mut st = StringTab::new();
        for (k, v) in &seg.args {
            st.lookup(k);
            st.lookup(v);
        }
        let strtab = st.encode();
        let mut args = Vec::new();
        uleb(&mut args, seg.args.len() as u64);
        for (k, v) in &seg.args {
            uleb(&mut args, u64::from(st.lookup(k)));
            uleb(&mut args, u64::from(st.lookup(v)));
        }
        // Pad to 4 bytes from the segment start; the padding counts as args.
        let unpadded = 16 + strtab.len() + args.len();
        args.resize(args.len() + (unpadded.next_multiple_of(4) - unpadded), 0);
        out.extend_from_slice(&(seg.entries.len() as u64).to_le_bytes());
        out.extend_from_slice(&(strtab.len() as u32).to_le_bytes());
        out.extend_from_slice(&(args.len() as u32).to_le_bytes());
        out.extend_from_slice(&strtab);
        out.extend_from_slice(&args);
        let val = |out: &mut Vec<u8>, v: u32| match flavor {
            Flavor::Uleb128 => uleb(out, u64::from(v)),
            Flavor::RawLittleEndian => out.extend_from_slice(&v.to_le_bytes()),
            Flavor::RawBigEndian => out.extend_from_slice(&v.to_be_bytes()),
        };
        for e in &seg.entries {
            val(&mut out, e.counters.len() as u32);
            val(&mut out, e.package);
            val(&mut out, e.function);
            for &c in &e.counters {
                val(&mut out, c);
            }
        }
        // Footer after every segment, holding the running segment count;
        // Go reads the last one.
        out.extend_from_slice(&COUNTER_MAGIC);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(n as u32 + 1).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
    }
    out
}

/// Options of [`write_dir_with`].
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    pub flavor: Flavor,
    /// Program arguments to record (see [`crate::Loaded::args`]).
    pub args: RunArgs,
    /// Process id in the counter file name; Go's `merge` uses 0.
    pub pid: u64,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            flavor: Flavor::Uleb128,
            args: RunArgs::default(),
            pid: 0,
        }
    }
}

/// The files [`write_dir`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub meta: PathBuf,
    pub counters: PathBuf,
}

/// Write `profile` into `dir` (created if missing) as one meta-data file
/// and one counter file that `go tool covdata` reads.
pub fn write_dir(profile: &Profile, dir: &Path) -> Result<Written, Error> {
    write_dir_with(profile, dir, &EncodeOptions::default())
}

/// [`write_dir`] with a chosen counter flavor, args and pid.
pub fn write_dir_with(
    profile: &Profile,
    dir: &Path,
    options: &EncodeOptions,
) -> Result<Written, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let meta = encode_meta(profile);
    let hex: String = meta.hash.iter().map(|b| format!("{b:02x}")).collect();
    let meta_path = dir.join(format!("covmeta.{hex}"));
    write_atomic(&meta_path, &meta.bytes)?;
    let seg = Segment {
        args: options.args.to_table(),
        entries: counter_entries(profile),
    };
    let counters = encode_counters(meta.hash, options.flavor, &[seg]);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let counters_path = dir.join(format!("covcounters.{hex}.{}.{nanos}", options.pid));
    write_atomic(&counters_path, &counters)?;
    Ok(Written {
        meta: meta_path,
        counters: counters_path,
    })
}

/// Write to `<dir>/.<name>.tmp-<pid>`, then rename over `path`, so readers
/// never see a half-written file. (No fsync: the data can be regenerated
/// from its inputs, and syncing would dominate the time of a report.)
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

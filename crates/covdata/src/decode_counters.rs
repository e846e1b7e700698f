//! Step 2 of the data flow: decode a counter-data file
//! (`covcounters.<metahash>.<pid>.<nanotime>`), the execution counts one
//! process wrote for the functions it ran.
//!
//! Layout (from Go's `internal/coverage/decodecounter`): a 32-byte header
//! (magic, version, meta hash, flavor, big-endian flag), then segments, then
//! a 16-byte footer at the very end holding the segment count. Each segment
//! has a 16-byte header, a string table, an args table padded to 4 bytes,
//! and per function: counter count, package index, function index, counters.
//! Counters are raw u32 or ULEB128 depending on the flavor.
//!
//! Like `go tool covdata`, only the first segment is read; the runtime and
//! `go tool covdata merge` only ever write one.

use crate::error::{Corruption, CorruptionKind};
use crate::reader::{Reader, StringTable, lossy};
use std::ops::Range;

pub const COUNTER_MAGIC: [u8; 4] = [0x00, 0x63, 0x77, 0x6d];
pub const COUNTER_VERSION: u32 = 1;
pub const FILE_HEADER_SIZE: usize = 32;
pub const SEGMENT_HEADER_SIZE: usize = 16;
pub const FOOTER_SIZE: usize = 16;

/// How counter values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Four bytes per value, little-endian.
    RawLittleEndian,
    /// Four bytes per value, big-endian (written on big-endian hosts).
    RawBigEndian,
    /// ULEB128, what the runtime writes.
    Uleb128,
}

/// Program arguments recorded by the process (`argc`, `argv<N>`, `GOOS`,
/// `GOARCH` in the args table). `go tool covdata merge` keeps a value only
/// when every input agrees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    pub os_args: Vec<String>,
    pub goos: String,
    pub goarch: String,
}

/// A counter file's header and first segment, ready to iterate.
pub struct CounterFile<'a> {
    pub meta_hash: [u8; 16],
    pub flavor: Flavor,
    pub segments: u32,
    pub args: RunArgs,
    functions: u64,
    body: Reader<'a>,
}

/// Parse the header, footer and first segment preamble of a counter file.
pub fn open(buf: &[u8]) -> Result<CounterFile<'_>, Corruption> {
    let mut r = Reader::new(buf, 0);
    if r.bytes(4, "counter file header")? != COUNTER_MAGIC {
        return Err(Corruption::new(0, CorruptionKind::BadMagic("counter-data")));
    }
    let version = r.u32_le("counter file header")?;
    if version > COUNTER_VERSION {
        return Err(Corruption::new(
            4,
            CorruptionKind::UnsupportedVersion {
                found: version,
                known: COUNTER_VERSION,
            },
        ));
    }
    let meta_hash = r.array16("counter file header")?;
    let flavor_byte = r.u8("counter file header")?;
    let big_endian = r.u8("counter file header")? != 0;
    r.bytes(6, "counter file header")?;

    // Footer: last 16 bytes.
    let footer_at = buf.len().checked_sub(FOOTER_SIZE).ok_or(Corruption::new(
        buf.len() as u64,
        CorruptionKind::Truncated("footer"),
    ))?;
    let mut f = Reader::new(&buf[footer_at..], footer_at as u64);
    if f.bytes(4, "footer")? != COUNTER_MAGIC {
        return Err(Corruption::new(
            footer_at as u64,
            CorruptionKind::BadMagic("counter-data footer of a"),
        ));
    }
    f.bytes(4, "footer")?;
    let segments = f.u32_le("footer")?;
    if segments == 0 {
        return Err(Corruption::new(
            footer_at as u64 + 8,
            CorruptionKind::NoSegments,
        ));
    }

    // First segment preamble.
    let functions = r.u64_le("segment header")?;
    let strtab_len = r.u32_le("segment header")?;
    let args_len = r.u32_le("segment header")?;
    let st_at = r.offset();
    let st = r.bytes(strtab_len as usize, "segment string table")?;
    let strtab = StringTable::read(&mut Reader::new(st, st_at))?;
    let args_at = r.offset();
    let args = r.bytes(args_len as usize, "args table")?;
    let args = read_args(&mut Reader::new(args, args_at), &strtab)?;
    // The args length includes padding to 4 bytes; align (a no-op for
    // well-formed files, as in Go's reader).
    let aligned = r.pos().next_multiple_of(4);
    r.seek(aligned, "segment body")?;

    let flavor = match (flavor_byte, big_endian) {
        (1, false) => Flavor::RawLittleEndian,
        (1, true) => Flavor::RawBigEndian,
        (2, _) => Flavor::Uleb128,
        // Go only objects to the flavor when there is something to read.
        _ if functions == 0 => Flavor::Uleb128,
        _ => {
            return Err(Corruption::new(
                24,
                CorruptionKind::UnknownFlavor(flavor_byte),
            ));
        }
    };
    Ok(CounterFile {
        meta_hash,
        flavor,
        segments,
        args,
        functions,
        body: r,
    })
}

fn read_args(r: &mut Reader<'_>, st: &StringTable<'_>) -> Result<RunArgs, Corruption> {
    let n = r.uleb("args table")?;
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    for _ in 0..n {
        let at = r.offset();
        let k = st.get(r.uleb("args table")?)?;
        let v = st.get(r.uleb("args table")?)?;
        if pairs.iter().any(|(pk, _)| *pk == k) {
            return Err(Corruption::new(
                at,
                CorruptionKind::BadArgs("duplicate key"),
            ));
        }
        pairs.push((k, v));
    }
    let get = |key: &[u8]| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut args = RunArgs::default();
    if let Some(argc) = get(b"argc") {
        let argc: usize = std::str::from_utf8(argc)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(r.err(CorruptionKind::BadArgs("argc is not a number")))?;
        if argc > pairs.len() {
            return Err(r.err(CorruptionKind::BadArgs(
                "argc exceeds the number of arguments",
            )));
        }
        for i in 0..argc {
            let key = format!("argv{i}");
            args.os_args
                .push(get(key.as_bytes()).map(lossy).unwrap_or_default());
        }
    }
    if let Some(v) = get(b"GOOS") {
        args.goos = lossy(v);
    }
    if let Some(v) = get(b"GOARCH") {
        args.goarch = lossy(v);
    }
    Ok(args)
}

/// One function's counters as stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncHeader {
    pub package: u32,
    pub function: u32,
    /// Number of counters that follow.
    pub count: u32,
}

impl<'a> CounterFile<'a> {
    /// Number of function entries in the first segment.
    pub fn function_count(&self) -> u64 {
        self.functions
    }

    /// Size of the whole file in bytes.
    pub fn byte_len(&self) -> usize {
        self.body.buffer().len()
    }

    /// Current file offset (for error reports by callers).
    pub fn offset(&self) -> u64 {
        self.body.offset()
    }

    /// Read the next function's counters into `out` (cleared first).
    /// Returns `None` after the last function of the first segment.
    pub fn next_function(&mut self, out: &mut Vec<u32>) -> Result<Option<FuncHeader>, Corruption> {
        let Some(h) = self.next_header()? else {
            return Ok(None);
        };
        out.clear();
        out.resize(h.count as usize, 0);
        let mut ignored = false;
        self.read_counters(h.count, out, Merge::Replace, &mut ignored)?;
        Ok(Some(h))
    }

    /// Read the next function's header; its `count` counters must then be
    /// consumed with [`CounterFile::read_counters`].
    #[inline]
    pub fn next_header(&mut self) -> Result<Option<FuncHeader>, Corruption> {
        if self.functions == 0 {
            return Ok(None);
        }
        self.functions -= 1;
        let r = &mut self.body;
        let (count, package, function) = match self.flavor {
            Flavor::Uleb128 => (
                r.uleb32("function counters")?,
                r.uleb32("function counters")?,
                r.uleb32("function counters")?,
            ),
            Flavor::RawLittleEndian => (
                r.u32_le("function counters")?,
                r.u32_le("function counters")?,
                r.u32_le("function counters")?,
            ),
            Flavor::RawBigEndian => (
                r.u32_be("function counters")?,
                r.u32_be("function counters")?,
                r.u32_be("function counters")?,
            ),
        };
        // Each value takes at least one (ULEB) or four (raw) bytes.
        let min = if self.flavor == Flavor::Uleb128 { 1 } else { 4 };
        if (count as usize).saturating_mul(min) > r.remaining() {
            return Err(r.err(CorruptionKind::Truncated("function counters")));
        }
        Ok(Some(FuncHeader {
            package,
            function,
            count,
        }))
    }

    /// Consume `count` counter values, combining the first `dst.len()` of
    /// them into `dst` with `merge` (further values are skipped; missing
    /// ones leave `dst` as it is). Sets `overflow` if a sum saturated.
    #[inline]
    pub fn read_counters(
        &mut self,
        count: u32,
        dst: &mut [u32],
        merge: Merge,
        overflow: &mut bool,
    ) -> Result<(), Corruption> {
        let n = count as usize;
        match self.flavor {
            Flavor::Uleb128 => read_uleb_counters(&mut self.body, n, dst, merge, overflow),
            Flavor::RawLittleEndian | Flavor::RawBigEndian => {
                let be = self.flavor == Flavor::RawBigEndian;
                for i in 0..n {
                    let v = if be {
                        self.body.u32_be("function counters")?
                    } else {
                        self.body.u32_le("function counters")?
                    };
                    if let Some(d) = dst.get_mut(i) {
                        merge.apply(d, v, overflow);
                    }
                }
                Ok(())
            }
        }
    }
}

/// Where [`CounterFile::merge_into`] puts values: wrapping u32 sums in
/// `small`, no overflow check per value. The caller keeps one-byte values
/// (below 128: the vast majority) from adding up to more than
/// [`SMALL_LIMIT`] between moves of `small` into `large` (a file adds at
/// most 127 per function entry it holds to any slot); a longer value goes
/// to `small` only while that stays at most [`SMALL_LIMIT`] too, else to
/// `large`. So `small` never wraps, and `large` (u64) stays out of the
/// hot loop's working set. In set mode both hold 0 or 1.
pub struct Sums<'a> {
    /// One per slot.
    pub small: &'a mut [u32],
    /// One per slot.
    pub large: &'a mut [u64],
    /// Set when anything was written to `large`: until then its pages need
    /// never be touched (nor counted in the peak RSS).
    pub large_used: &'a mut bool,
    /// Where the slots of `small` ever written end: from there on all are
    /// still 0 (raised as slots are written).
    pub written: &'a mut usize,
}

/// See [`Sums`]: two of these stay below 2^32.
pub const SMALL_LIMIT: u32 = (1 << 31) - 1;

/// Where a function's values go: `len` slots from `start`, and, for a
/// function of the [`Forecast`], its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub start: usize,
    pub len: usize,
    pub listed: Option<usize>,
}

/// One entry a counter file is expected to hold: its header's bytes (the
/// count, package and function as ULEB128) and its slots.
#[derive(Debug, Clone, Copy)]
struct Expected {
    /// The header's bytes, little-endian, in as many bytes as `at`.
    header: u64,
    start: u32,
    /// The header's length (0: never matches), and the number of values
    /// and slots (1 to 32).
    at: u8,
    len: u8,
}

impl Expected {
    /// The entry of a function with `len` slots from `start`. One whose
    /// header takes more than 8 bytes, or with no slots or more than 32,
    /// never matches (such entries take the general path).
    fn new(package: u32, function: u32, start: usize, len: usize) -> Expected {
        let mut bytes = Vec::with_capacity(15);
        for v in [len as u64, u64::from(package), u64::from(function)] {
            push_uleb(&mut bytes, v);
        }
        let start = u32::try_from(start).unwrap_or(u32::MAX);
        if !(1..=32).contains(&len) || bytes.len() > 8 || start == u32::MAX {
            return Expected {
                header: 0,
                start,
                at: 0,
                len: 0,
            };
        }
        let mut word = [0u8; 8];
        word[..bytes.len()].copy_from_slice(&bytes);
        Expected {
            header: u64::from_le_bytes(word),
            start,
            at: bytes.len() as u8,
            len: len as u8,
        }
    }
}

/// Per number of values (0 to 32): the high bits of that many bytes, as
/// four words.
const HIGH_OF: [[u64; 4]; 33] = {
    let mut t = [[0u64; 4]; 33];
    let mut n = 0usize;
    while n <= 32 {
        let mut w = 0;
        while w < 4 {
            let bytes = n.saturating_sub(8 * w);
            t[n][w] = match bytes {
                0 => 0,
                8.. => HIGH_BITS,
                b => HIGH_BITS >> (64 - 8 * b),
            };
            w += 1;
        }
        n += 1;
    }
    t
};

fn push_uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The entries a file most likely holds, in order (see
/// `Layout::in_listed_order`), their slots following one another from 0.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    entries: Vec<Expected>,
    /// The end of the last entry's slots.
    end: usize,
}

impl Expectations {
    /// The next entry: a function with `len` slots, after the last one's.
    pub fn push(&mut self, package: u32, function: u32, len: usize) {
        self.entries
            .push(Expected::new(package, function, self.end, len));
        self.end += len;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What [`CounterFile::merge_into`] expects a file to hold, and bytes to
/// stage its values in (kept from file to file).
pub struct Forecast<'a> {
    pub expected: &'a Expectations,
    pub staging: &'a mut Vec<u8>,
}

impl CounterFile<'_> {
    /// Merge every remaining function of the first segment into `sums`
    /// (`set`: a slot becomes 1 for a nonzero value; otherwise values are
    /// added; the caller saturates at u32::MAX as Go does).
    /// `slots(package, function)` gives a function's [`Place`] (`None`:
    /// unknown function, recorded in `unknown`, its values skipped).
    ///
    /// This is the reader's hot path (about 3,300 functions and 25,000
    /// values per file in the bench's data, most functions with a few
    /// one-byte values). For the ULEB128 flavor, an entry that is the one
    /// `forecast` expects next (95% of a real run's) is recognised by its
    /// header bytes, and its values (32 bytes whatever their number) are
    /// copied into the staging bytes, whose slots follow one another; each
    /// run of such entries is then added to `sums` in one vectorised pass.
    /// No header decoding, no lookup, no branch on the number of values
    /// (unless one takes more than a byte: those go to their slots one by
    /// one). Any other entry takes the general path: its header decoded,
    /// its place looked up, and the forecast resumed after it. The bench's
    /// 2000 files merge in about 15% less time.
    pub fn merge_into(
        &mut self,
        slots: impl Fn(u32, u32) -> Option<Place>,
        sums: Sums<'_>,
        forecast: Forecast<'_>,
        set: bool,
        unknown: &mut Vec<(u32, u32)>,
    ) -> Result<(), Corruption> {
        if self.flavor == Flavor::Uleb128 {
            let done = if set {
                self.merge_uleb::<true>(slots, sums, forecast, unknown)
            } else {
                self.merge_uleb::<false>(slots, sums, forecast, unknown)
            };
            if done.is_some() {
                return Ok(());
            }
            // Ran out of bytes: the body is truncated.
            let end = self.body.buffer().len();
            self.body.set_pos(end);
            return Err(self
                .body
                .err(CorruptionKind::Truncated("function counters")));
        }
        let be = self.flavor == Flavor::RawBigEndian;
        while let Some(h) = self.next_header()? {
            let (start, len) = match slots(h.package, h.function) {
                Some(place) => (place.start, place.len),
                None => {
                    unknown.push((h.package, h.function));
                    (0, 0)
                }
            };
            for i in 0..h.count as usize {
                let v = if be {
                    self.body.u32_be("function counters")?
                } else {
                    self.body.u32_le("function counters")?
                };
                if i < len
                    && let Some(d) = sums.large.get_mut(start + i)
                {
                    add_large(d, v, set);
                    *sums.large_used = true;
                }
            }
        }
        Ok(())
    }

    fn merge_uleb<const SET: bool>(
        &mut self,
        slots: impl Fn(u32, u32) -> Option<Place>,
        sums: Sums<'_>,
        forecast: Forecast<'_>,
        unknown: &mut Vec<(u32, u32)>,
    ) -> Option<()> {
        let Sums {
            small,
            large,
            large_used,
            written,
        } = sums;
        // One bound for both, checked once per function.
        let slots_len = small.len().min(large.len());
        // Expected entries are staged by slot: all must be slots of
        // `sums`, with 32 staging bytes to spare.
        let Forecast { expected, staging } = forecast;
        let (expected, end) = match expected.end <= slots_len {
            true => (&expected.entries[..], expected.end),
            false => (&[][..], 0),
        };
        if staging.len() < end + 32 {
            staging.resize(end + 32, 0);
        }
        let staging = &mut staging[..];
        let buf = self.body.buffer();
        let mut pos = self.body.pos();
        // Locals, not fields, in the loop: keeps them in registers.
        let mut functions = self.functions;
        // The next expected entry, and the slots staged since the last
        // fold into `small`: those of the expected entries just read (one
        // run of slots, as the expected entries' slots follow one
        // another).
        let mut next = 0usize;
        let first_slot = |next: usize| expected.get(next).map_or(0, |e| e.start as usize);
        let mut staged_from = first_slot(0);
        let mut staged_to = staged_from;
        while functions > 0 {
            // Expected entries, as long as they come.
            while functions > 0
                && let Some(e) = expected.get(next)
                && e.at != 0
                && let Some(chunk) = buf.get(pos..).and_then(<[u8]>::first_chunk::<40>)
                && let Some(values) = chunk[usize::from(e.at) & 15..].first_chunk::<32>()
                && u64::from_le_bytes(chunk[..8].try_into().unwrap_or_default())
                    & u64::MAX >> (64 - 8 * u32::from(e.at).min(8))
                    == e.header
                && let Some(dst) = staging
                    .get_mut(staged_to..)
                    .and_then(<[u8]>::first_chunk_mut::<32>)
            {
                *dst = *values;
                let high = HIGH_OF[usize::from(e.len).min(32)];
                let mut h = 0;
                for (w, m) in values.as_chunks::<8>().0.iter().zip(high) {
                    h |= u64::from_le_bytes(*w) & m;
                }
                let n = usize::from(e.len);
                if h != 0 {
                    // Some value takes more bytes: the values go straight
                    // to their slots, zeros to the staging bytes.
                    *dst = [0; 32];
                    let mut at = pos + usize::from(e.at);
                    let (Some(small), Some(large)) = (
                        small.get_mut(staged_to..staged_to + n),
                        large.get_mut(staged_to..staged_to + n),
                    ) else {
                        break;
                    };
                    *large_used |= add_values::<SET>(buf, &mut at, small, large)?;
                    pos = at;
                } else {
                    pos += usize::from(e.at) + n;
                }
                staged_to += usize::from(e.len);
                next += 1;
                functions -= 1;
            }
            if functions == 0 {
                break;
            }
            fold::<SET>(small, staging, staged_from..staged_to, written);
            functions -= 1;
            // The usual entry takes one bounds check: its header from the
            // next 16 bytes, then its first 8 value bytes (at most 13 in
            // all). Well-formed data is followed by the 16-byte footer, so
            // only odd headers go the slow way.
            let mut first8 = None;
            let head = buf.get(pos..).and_then(<[u8]>::first_chunk::<16>);
            let (n, package, function) = match head.and_then(short_header) {
                Some((n, package, function, at)) => {
                    first8 = head.and_then(|h| h[at..].first_chunk::<8>());
                    pos += at;
                    (n, package, function)
                }
                None => (
                    uleb_at(buf, &mut pos)? as u32 as usize,
                    uleb_at(buf, &mut pos)? as u32,
                    uleb_at(buf, &mut pos)? as u32,
                ),
            };
            let (start, len) = match slots(package, function) {
                Some(place) => {
                    // The forecast resumes after this function.
                    if let Some(i) = place.listed {
                        next = i + 1;
                    }
                    match place.start.checked_add(place.len) {
                        Some(end) if end <= slots_len => (place.start, place.len),
                        _ => (0, 0),
                    }
                }
                None => {
                    unknown.push((package, function));
                    (0, 0)
                }
            };
            staged_from = first_slot(next);
            staged_to = staged_from;
            // Values beyond the function's blocks are skipped (Go would
            // index out of range); missing ones leave the slots as they are.
            let m = n.min(len);
            *written = (*written).max(start + m);
            // The commonest entry: 1 to 8 values, each one byte, so all in
            // those 8 bytes.
            if n.wrapping_sub(1) < 8
                && m == n
                && let Some(w) = first8
            {
                let w = u64::from_le_bytes(*w) & (u64::MAX >> (64 - 8 * n));
                if w & HIGH_BITS == 0 {
                    for (k, d) in small[start..start + n].iter_mut().enumerate() {
                        add_small::<SET>(d, (w >> (8 * k)) as u8);
                    }
                    pos += n;
                    continue;
                }
            }
            // Otherwise every value of one byte is still the common case:
            // one check, then a plain loop.
            if m == n
                && let Some(bytes) = buf.get(pos..pos + n)
                && all_short(bytes)
            {
                for (d, &b) in small[start..start + n].iter_mut().zip(bytes) {
                    add_small::<SET>(d, b);
                }
                pos += n;
                continue;
            }
            let range = start..start + m;
            *large_used |=
                add_values::<SET>(buf, &mut pos, &mut small[range.clone()], &mut large[range])?;
            for _ in m..n {
                uleb_at(buf, &mut pos)?;
            }
        }
        fold::<SET>(small, staging, staged_from..staged_to, written);
        self.functions = 0;
        self.body.set_pos(pos);
        Some(())
    }
}

/// Add the values at `pos`, one per slot of `small` and `large`, some of
/// them longer than a byte; true if any went to `large`. `None` if the
/// buffer ends first.
#[inline(never)]
fn add_values<const SET: bool>(
    buf: &[u8],
    pos: &mut usize,
    small: &mut [u32],
    large: &mut [u64],
) -> Option<bool> {
    let mut large_used = false;
    for (d, l) in small.iter_mut().zip(large.iter_mut()) {
        let b = *buf.get(*pos)?;
        if b < 0x80 {
            add_small::<SET>(d, b);
            *pos += 1;
        } else {
            // Two bytes (nearly always), or more (Go keeps the low 32
            // bits).
            let v = match buf.get(*pos + 1) {
                Some(&c) if c < 0x80 => {
                    *pos += 2;
                    u32::from(b & 0x7f) | u32::from(c) << 7
                }
                _ => uleb_at(buf, pos)? as u32,
            };
            large_used |= add_long::<SET>(d, l, v);
        }
    }
    Some(large_used)
}

/// Add the staged one-byte values of `slots` to `small` (and the expected
/// entries with longer values of that run, already added: they are
/// written too).
#[inline(always)]
fn fold<const SET: bool>(
    small: &mut [u32],
    staging: &[u8],
    slots: Range<usize>,
    written: &mut usize,
) {
    if slots.is_empty() {
        return;
    }
    *written = (*written).max(slots.end);
    if let (Some(dst), Some(src)) = (small.get_mut(slots.clone()), staging.get(slots)) {
        for (d, &b) in dst.iter_mut().zip(src) {
            add_small::<SET>(d, b);
        }
    }
}

/// The high bit of each byte: set on all but the last byte of a ULEB128
/// value.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// A function entry's header (counter count, package index, function
/// index) at the start of `h` when the count takes one byte and the
/// indexes one or two (all but a few entries of a real file), and the
/// header's length; `None` otherwise.
#[inline(always)]
fn short_header(h: &[u8; 16]) -> Option<(usize, u32, u32, usize)> {
    if h[0] >= 0x80 {
        return None;
    }
    let (package, at) = short_index(h, 1)?;
    let (function, at) = short_index(h, at)?;
    Some((usize::from(h[0]), package, function, at))
}

/// A one- or two-byte ULEB128 value at `h[at]` (`at` < 14), and where the
/// next value starts.
#[inline(always)]
fn short_index(h: &[u8; 16], at: usize) -> Option<(u32, usize)> {
    let b = u32::from(h[at]);
    if b < 0x80 {
        return Some((b, at + 1));
    }
    let c = u32::from(h[at + 1]);
    if c < 0x80 {
        return Some((b & 0x7f | c << 7, at + 2));
    }
    None
}

/// Combine one value read from a raw-flavor file into a u64 sum: in set
/// mode the slot becomes 1 for a nonzero value, otherwise it is added.
#[inline(always)]
fn add_large(d: &mut u64, v: u32, set: bool) {
    if set {
        *d |= u64::from(v != 0);
    } else {
        *d += u64::from(v);
    }
}

/// A value of two or more bytes: into `small` while it stays within
/// [`SMALL_LIMIT`], else into `large` (see [`Sums`]); true for the latter.
#[inline(always)]
fn add_long<const SET: bool>(small: &mut u32, large: &mut u64, v: u32) -> bool {
    if SET {
        *small |= u32::from(v != 0);
    } else if v <= SMALL_LIMIT - (*small).min(SMALL_LIMIT) {
        *small += v;
    } else {
        *large += u64::from(v);
        return true;
    }
    false
}

/// A one-byte value into a u32 slot (wrapping, never reached: see
/// [`Sums`]).
#[inline(always)]
fn add_small<const SET: bool>(d: &mut u32, b: u8) {
    if SET {
        *d |= u32::from(b != 0);
    } else {
        *d = d.wrapping_add(u32::from(b));
    }
}

/// Whether all `bytes` have their high bit clear, i.e. are one-byte
/// ULEB128 values (a word at a time; the last word may overlap the one
/// before, so there is no byte-by-byte tail).
#[inline(always)]
fn all_short(bytes: &[u8]) -> bool {
    let mut high = match bytes.last_chunk::<8>() {
        Some(last) => u64::from_le_bytes(*last),
        None => bytes.iter().fold(0, |h, &b| h | u64::from(b)),
    };
    for w in bytes.as_chunks::<8>().0 {
        high |= u64::from_le_bytes(*w);
    }
    high & HIGH_BITS == 0
}

/// One ULEB128 value at `pos` (bits past the 64th dropped, as Go does);
/// `None` if the buffer ends first.
#[inline(always)]
fn uleb_at(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let b = *buf.get(*pos)?;
    *pos += 1;
    if b < 0x80 {
        return Some(u64::from(b));
    }
    let mut value = u64::from(b & 0x7f);
    let mut shift = 7u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift < 64 {
            value |= u64::from(b & 0x7f) << shift;
        }
        if b < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
}

/// How a decoded counter value is combined into its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Store the value (plain decoding).
    Replace,
    /// Go's set mode: the slot becomes 1 if the value is nonzero.
    Set,
    /// Go's count/atomic modes: add, saturating at `u32::MAX`.
    Add,
}

impl Merge {
    #[inline(always)]
    fn apply(self, d: &mut u32, v: u32, overflow: &mut bool) {
        match self {
            Merge::Replace => *d = v,
            Merge::Set => {
                if v != 0 {
                    *d = 1;
                }
            }
            Merge::Add => {
                let (sum, o) = d.overflowing_add(v);
                *d = if o { u32::MAX } else { sum };
                *overflow |= o;
            }
        }
    }
}

/// The hot loop of the reader: ULEB128 counters, mostly single bytes.
/// Eight values at a time when none of the next eight bytes continues.
#[inline]
fn read_uleb_counters(
    r: &mut Reader<'_>,
    n: usize,
    dst: &mut [u32],
    merge: Merge,
    overflow: &mut bool,
) -> Result<(), Corruption> {
    let buf = r.buffer();
    let mut pos = r.pos();
    let mut i = 0;
    let m = n.min(dst.len());
    while i < n {
        if i + 8 <= m
            && let Some(chunk) = buf.get(pos..pos + 8)
        {
            let w = u64::from_le_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ]);
            if w & 0x8080_8080_8080_8080 == 0 {
                let d = &mut dst[i..i + 8];
                for (k, slot) in d.iter_mut().enumerate() {
                    merge.apply(slot, u32::from(chunk[k]), overflow);
                }
                i += 8;
                pos += 8;
                continue;
            }
        }
        // One value, any length (Go keeps the low 32 bits).
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&b) = buf.get(pos) else {
                r.set_pos(pos);
                return Err(r.err(CorruptionKind::Truncated("function counters")));
            };
            pos += 1;
            if shift < 64 {
                value |= u64::from(b & 0x7f) << shift;
            }
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        if let Some(d) = dst.get_mut(i) {
            merge.apply(d, value as u32, overflow);
        }
        i += 1;
    }
    r.set_pos(pos);
    Ok(())
}
